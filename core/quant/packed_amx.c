/* AMX int8 for the prompt GEMM over packed Q4_0 / Q8_0 groups (layout in quant.h), on CPUs with
 * AMX-INT8 (Intel Sapphire Rapids and later), installed over the AVX-512 VNNI kernels, which keep
 * the matvec (decode) and the rows left over from whole tiles of 16.
 *
 * The packed layout is already what the tile multiply wants for its second operand: in
 * TDPBSUD / TDPBSSD, B's row k holds, for each of 16 columns, the 4 bytes of K elements
 * 4k..4k+3, and a group's 64-byte chunk holds, for each of its 16 weight rows, 4 bytes of one
 * block. So a Q8_0 block column (8 chunks, quants + 128, unsigned) is B as it lies in memory
 * (TDPBSUD, the activation row's offset correction added after), and a Q4_0 one is its 4
 * chunks' low nibbles (elements 0..15) then high nibbles (16..31), unpacked minus 8 (signed:
 * TDPBSSD, no correction). A is 16 activation rows' 32 int8 quants of the block (the
 * activation rows as prepared, strided). C = A x B is then the integer dot of every
 * (activation row, weight row) pair for the block, the same integer the VNNI kernel gets, and
 * the AVX-512 epilogue does the VNNI kernel's float operations in the same order (one fma per
 * block with the weight and activation scales): the same bits as every other level.
 *
 * One tile multiply covers 16 x 16 x 32 (8192 multiply-adds) where VNNI needs 128 vpdpbusd;
 * what is left on the vector ports is the epilogue (16 rows x convert, multiply, fma). Measured
 * (one thread, 64 weight rows x 4096 x 512 activation rows, alternating, Emerald Rapids VM):
 * VNNI 375-391 GFLOP/s, AMX 487-496; 7B Q4_0 prefill of 504 tokens, 2 threads: 33.9-38.9 ->
 * 48.8-56.1 tok/s (3 pairs). Pipelining mattered: with one C tile (tile registers are not
 * renamed, so each block waited for the previous store) AMX was 5% slower than VNNI. */
#include <cpuid.h>
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "anygpt/quant.h"
#include "quant_internal.h"

/* two of each, alternating between blocks: tile registers are not renamed, so with one C the
 * next block's multiply would wait for this block's store */
#define TILE_C0 0 /* 16 activation rows x 16 weight rows, int32 */
#define TILE_C1 1
#define TILE_A0 2 /* 16 activation rows x 32 int8 (one block) */
#define TILE_A1 3
#define TILE_B0 4 /* 8 rows x 64 bytes: one block column of a group */
#define TILE_B1 5
#define TM 16    /* activation rows per tile */

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* The VNNI kernels this level falls back on (decode, and rows past the last whole tile). */
static ag_pmm_fn vnni_q4_0, vnni_q8_0;

static void tiles_configure(void)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 2; i++) {
        cfg.rows[TILE_C0 + i] = TM;
        cfg.colsb[TILE_C0 + i] = AG_PACK_ROWS * 4;
        cfg.rows[TILE_A0 + i] = TM;
        cfg.colsb[TILE_A0 + i] = 32;
        cfg.rows[TILE_B0 + i] = 8;
        cfg.colsb[TILE_B0 + i] = 64;
    }
    _tile_loadconfig(&cfg);
}

/* B for block column p of a group: Q8_0's chunks as they lie, Q4_0's unpacked into bq */
static inline __attribute__((always_inline)) const void *block_b(const uint8_t *p, int q4, uint8_t *bq)
{
    const uint8_t *q = p + 2 * AG_PACK_ROWS;
    if (!q4)
        return q;
    const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    for (int k = 0; k < 4; k++) {
        const __m512i raw = _mm512_loadu_si512(q + 64 * k);
        _mm512_store_si512(bq + 64 * k, _mm512_sub_epi8(_mm512_and_si512(raw, m4), eight));
        _mm512_store_si512(bq + 64 * (4 + k), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(raw, 4), m4), eight));
    }
    return bq;
}

/* accumulate block b's C (stored in c) as the VNNI kernel does */
static inline __attribute__((always_inline)) void block_epilogue(__m512 *acc, const int32_t *c, const uint8_t *p,
                                                                 const float *const *da, const int32_t *const *corr,
                                                                 int64_t b, int q4)
{
    const __m512 sc = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    for (int r = 0; r < TM; r++) {
        __m512i s = _mm512_load_si512(c + AG_PACK_ROWS * r);
        if (!q4)
            s = _mm512_add_epi32(s, _mm512_set1_epi32(corr[r][b]));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc, _mm512_set1_ps(da[r][b])), acc[r]);
    }
}

/* 16 activation rows (m0..) times every group, whole K */
static void amx_rows16(int64_t K, const uint8_t *groups, int64_t n_rows, const int8_t *act, size_t as, float *out,
                       size_t ldo, int q4)
{
    const int64_t nb = K / 32;
    const size_t bb = q4 ? AG_PACK_ROWS * sizeof(ag_block_q4_0) : AG_PACK_ROWS * sizeof(ag_block_q8_0);
    const size_t gbytes = (size_t)nb * bb;
    const float *da[TM];
    const int32_t *corr[TM];
    for (int r = 0; r < TM; r++) {
        da[r] = (const float *)(act + (size_t)r * as + K);
        corr[r] = (const int32_t *)(da[r] + nb);
    }
    _Alignas(64) uint8_t bq0[8 * 64], bq1[8 * 64];
    _Alignas(64) int32_t c0[TM * AG_PACK_ROWS], c1[TM * AG_PACK_ROWS];
    for (int64_t n0 = 0; n0 < n_rows; n0 += AG_PACK_ROWS) {
        const uint8_t *grp = groups + (size_t)(n0 / AG_PACK_ROWS) * gbytes;
        __m512 acc[TM];
        for (int r = 0; r < TM; r++)
            acc[r] = _mm512_setzero_ps();
        /* software-pipelined: block b+1's multiply is issued before block b's store and
         * epilogue, so it runs while they do */
#define ISSUE(C, A, B, bq, b)                                                                                  \
    do {                                                                                                       \
        _tile_zero(C);                                                                                         \
        _tile_loadd(A, act + 32 * (b), (long)as);                                                              \
        _tile_loadd(B, block_b(grp + (size_t)(b) * bb, q4, bq), 64);                                           \
        if (q4)                                                                                                \
            _tile_dpbssd(C, A, B);                                                                             \
        else                                                                                                   \
            _tile_dpbsud(C, A, B);                                                                             \
    } while (0)
        ISSUE(TILE_C0, TILE_A0, TILE_B0, bq0, 0);
        for (int64_t b = 0; b < nb; b += 2) {
            if (b + 1 < nb)
                ISSUE(TILE_C1, TILE_A1, TILE_B1, bq1, b + 1);
            _tile_stored(TILE_C0, c0, AG_PACK_ROWS * 4);
            block_epilogue(acc, c0, grp + (size_t)b * bb, da, corr, b, q4);
            if (b + 1 >= nb)
                break;
            if (b + 2 < nb)
                ISSUE(TILE_C0, TILE_A0, TILE_B0, bq0, b + 2);
            _tile_stored(TILE_C1, c1, AG_PACK_ROWS * 4);
            block_epilogue(acc, c1, grp + (size_t)(b + 1) * bb, da, corr, b + 1, q4);
        }
#undef ISSUE
        const int64_t left = n_rows - n0;
        const __mmask16 keep = left >= AG_PACK_ROWS ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (int r = 0; r < TM; r++)
            _mm512_mask_storeu_ps(out + (size_t)r * ldo + n0, keep, acc[r]);
    }
}

static void amx_pmm(int64_t K, const void *groups, int64_t n_rows, const void *act, size_t as, int64_t M,
                    float *out, size_t ldo, int q4)
{
    const int8_t *A = act;
    int64_t m0 = 0;
    if (M >= TM) {
        tiles_configure();
        for (; m0 + TM <= M; m0 += TM)
            amx_rows16(K, groups, n_rows, A + (size_t)m0 * as, as, out + (size_t)m0 * ldo, ldo, q4);
        _tile_release(); /* the tile state would otherwise be saved at every context switch */
    }
    if (m0 < M)
        (q4 ? vnni_q4_0 : vnni_q8_0)(K, groups, n_rows, A + (size_t)m0 * as, as, M - m0, out + (size_t)m0 * ldo,
                                     ldo);
}

static void amx_pmm_q4_0(int64_t K, const void *groups, int64_t n_rows, const void *act, size_t as, int64_t M,
                         float *out, size_t ldo)
{
    amx_pmm(K, groups, n_rows, act, as, M, out, ldo, 1);
}

static void amx_pmm_q8_0(int64_t K, const void *groups, int64_t n_rows, const void *act, size_t as, int64_t M,
                         float *out, size_t ldo)
{
    amx_pmm(K, groups, n_rows, act, as, M, out, ldo, 0);
}

/* AMX-TILE and AMX-INT8 (CPUID.(7,0):EDX bits 24, 25), and Linux's leave to use the tile data
 * (an opt-in since 5.16: ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, 18). */
bool ag_amx_available(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
        return false;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0;
}

void ag_packed_fill_amx(ag_kernels *k)
{
    vnni_q4_0 = k->pmm_q4_0;
    vnni_q8_0 = k->pmm_q8_0;
    k->pmm_q4_0 = amx_pmm_q4_0;
    k->pmm_q8_0 = amx_pmm_q8_0;
    k->name = "avx512-amx";
}
