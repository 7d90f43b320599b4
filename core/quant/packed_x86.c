/* x86 kernels for packed row groups (layout in quant.h, portable kernel in packed.c). Built
 * three times beside dot_x86.c, with the same flags:
 *   AVX2         ymm: 8 lanes, a group in two halves; vpmaddubsw into int16, vpmaddwd to int32
 *   AVX-512      zmm: 16 lanes = the group's rows; the same int16 scheme
 *   AVX-512 VNNI zmm: vpdpbusd straight into int32
 * One lane per weight row: per block the quants of all 16 rows are 64-byte chunks dotted with
 * broadcast 4-byte pieces of the activation, so the float work (scales, one FMA) is paid once
 * per block for the whole group, and an activation tile of R rows reuses every unpacked weight
 * vector R times (the GEMM). Results are bit-identical to the portable kernel.
 *
 * Int16 bounds (non-VNNI): a vpmaddubsw lane is u0*a0 + u1*a1 with u <= 15 (a nibble: Q4_0
 * quants, or either nibble of a Q8_0 quant + 128) and |a| <= 127, so <= 3810; eight of them per
 * block stay below 32767, so the int16 sums never wrap. */
#include <immintrin.h>
#include <string.h>

#include "anygpt/quant.h"
#include "quant_internal.h"

#define AI static inline __attribute__((always_inline, unused)) /* not every helper is used at every SIMD level */
/* Decode streams every weight once per token. Hardware prefetchers stop at 4 KiB page edges;
 * prefetching 8 KiB ahead took the packed matvec over the whole 7B model from ~75% to ~90% of a
 * plain read pass over the same bytes (noisy 2-core VM, alternating runs). The hint depends on
 * the CPU (ag_kernels.stream_nta, chosen in dispatch.c): on AMD Zen 5 VMs T1 (into L2) beat T0
 * (8.69 -> 9.18 tok/s) and a non-temporal prefetch beat T1 at every alternating round (isolated
 * Q4_0 kernel 49-88% -> 85-94% of the read pass, 7B decode 72% -> 80% of the paired read bound,
 * Q8_0 78-93% -> 92-99%); on Intel Emerald Rapids the non-temporal one halves the decode (55-62%
 * -> 103-108% of the paired read bound, 4 pairs), T0 and T1 even. Intel's non-temporal
 * prefetch fills L1 only, so every line of the stream holds one of the core's few L1 miss
 * buffers until DRAM answers; that is our reading of the difference, not a measurement. */
#ifndef AG_GEMV_PREFETCH /* bytes ahead; both settable (-D) so a tuning build can try others */
#define AG_GEMV_PREFETCH 4096
#endif

#if defined(AG_ZMM)
#define LANES 16
typedef __m512i vi;
typedef __m512 vf;
AI vi v_load(const void *p) { return _mm512_loadu_si512(p); }
AI vi v_zero(void) { return _mm512_setzero_si512(); }
AI vi v_and(vi a, vi b) { return _mm512_and_si512(a, b); }
AI vi v_srl4(vi a) { return _mm512_srli_epi16(a, 4); }
AI vi v_set8(char c) { return _mm512_set1_epi8(c); }
AI vi v_set16(short c) { return _mm512_set1_epi16(c); }
AI vi v_set32(int c) { return _mm512_set1_epi32(c); }
AI vi v_add16(vi a, vi b) { return _mm512_add_epi16(a, b); }
AI vi v_add32(vi a, vi b) { return _mm512_add_epi32(a, b); }
AI vi v_maddubs(vi u, vi s) { return _mm512_maddubs_epi16(u, s); }
AI vi v_madd(vi a, vi b) { return _mm512_madd_epi16(a, b); }
AI vf v_fzero(void) { return _mm512_setzero_ps(); }
AI vf v_cvt(vi a) { return _mm512_cvtepi32_ps(a); }
AI vf v_fset(float x) { return _mm512_set1_ps(x); }
AI vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
AI vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
AI vf v_fadd(vf a, vf b) { return _mm512_add_ps(a, b); }
AI vf v_scales(const void *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
AI void v_store(float *o, vf v, int n)
{
    if (n == LANES)
        _mm512_storeu_ps(o, v);
    else
        _mm512_mask_storeu_ps(o, (__mmask16)((1u << n) - 1), v);
}
#if defined(AG_VNNI)
AI vi v_dpbusd(vi acc, vi u, vi s) { return _mm512_dpbusd_epi32(acc, u, s); }
AI vi v_sra32_4(vi a) { return _mm512_srai_epi32(a, 4); }
#define MR 8
#else
#define MR 6
#endif
#else
#define LANES 8
typedef __m256i vi;
typedef __m256 vf;
AI vi v_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
AI vi v_zero(void) { return _mm256_setzero_si256(); }
AI vi v_and(vi a, vi b) { return _mm256_and_si256(a, b); }
AI vi v_srl4(vi a) { return _mm256_srli_epi16(a, 4); }
AI vi v_set8(char c) { return _mm256_set1_epi8(c); }
AI vi v_set16(short c) { return _mm256_set1_epi16(c); }
AI vi v_set32(int c) { return _mm256_set1_epi32(c); }
AI vi v_add16(vi a, vi b) { return _mm256_add_epi16(a, b); }
AI vi v_add32(vi a, vi b) { return _mm256_add_epi32(a, b); }
AI vi v_maddubs(vi u, vi s) { return _mm256_maddubs_epi16(u, s); }
AI vi v_madd(vi a, vi b) { return _mm256_madd_epi16(a, b); }
AI vf v_fzero(void) { return _mm256_setzero_ps(); }
AI vf v_cvt(vi a) { return _mm256_cvtepi32_ps(a); }
AI vf v_fset(float x) { return _mm256_set1_ps(x); }
AI vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
AI vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
AI vf v_fadd(vf a, vf b) { return _mm256_add_ps(a, b); }
AI vf v_scales(const void *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
AI void v_store(float *o, vf v, int n)
{
    if (n == LANES) {
        _mm256_storeu_ps(o, v);
        return;
    }
    float t[LANES];
    _mm256_storeu_ps(t, v);
    memcpy(o, t, (size_t)n * sizeof(float));
}
#define MR 4
#endif

/* Weight groups a matvec streams in one pass: four with 32 zmm registers, two with 16 ymm (four
 * would spill the int16 sums). */
#if defined(AG_ZMM)
#define GMAX 4
_Static_assert(LANES == AG_PACK_ROWS, "tiles' four-group path takes a whole group per vector (half 0)");
#else
#define GMAX 2
#endif

/* 4 activation bytes broadcast to every lane */
AI vi v_bcst(const int8_t *p)
{
    int32_t x;
    memcpy(&x, p, 4);
    return v_set32(x);
}

/* R activation rows times LANES weight rows (lanes half*LANES.. of one group), every block; with
 * G = 2 or 4 (matvec only, R = 1) also the same lanes of the next groups, gstride bytes apart, in
 * the same pass: the activation pieces are broadcast once for all, and G weight streams are in
 * flight (a matvec is bound by the misses a core keeps in flight, not by arithmetic: in L2 this
 * kernel streams ~100 GB/s a thread, from DRAM ~70% of a plain read pass; in pairs 7B Q4_0 decode
 * on one thread went from 62-71% to 71-80% of the read bound measured beside it, 3 alternating
 * runs; fours over pairs on two threads: 10.66 -> 11.12 tok/s, means of 4 alternating pairs).
 * R, G, q4 and half are compile-time constants after inlining. */
AI void tile(int64_t K, const uint8_t *grp, size_t gstride, size_t bb, const int8_t *act, size_t astride, float *out,
             size_t ldo, const int *nvalid, const int R, const int G, const int q4, const int half, const int nta)
{
    const int64_t nb = K / 32;
    const int8_t *a[MR];
    const float *da[MR];
    const int32_t *corr[MR];
    vf accf[GMAX][MR];
    for (int r = 0; r < R; r++) {
        a[r] = act + (size_t)r * astride;
        da[r] = (const float *)(a[r] + K);
        corr[r] = (const int32_t *)(da[r] + nb);
        for (int j = 0; j < G; j++)
            accf[j][r] = v_fzero();
    }
    const vi m4 = v_set8(0x0f);
#if defined(AG_VNNI)
    const vi mhi = v_set8((char)0xf0);
#else
    const vi ones = v_set16(1);
#endif
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p[GMAX], *q[GMAX];
        for (int j = 0; j < G; j++) {
            p[j] = grp + (size_t)j * gstride + (size_t)b * bb;
            q[j] = p[j] + 2 * AG_PACK_ROWS + half * LANES * 4;
            if (AG_GEMV_PREFETCH > 0 && R == 1 && half == 0) /* a matvec streams the groups: ask ahead */
                for (size_t o = 0; o < bb; o += 64) {
                    if (nta)
                        _mm_prefetch((const char *)p[j] + AG_GEMV_PREFETCH + o, _MM_HINT_NTA);
                    else
                        _mm_prefetch((const char *)p[j] + AG_GEMV_PREFETCH + o, _MM_HINT_T1);
                }
        }
        vi acc[GMAX][MR];
#if defined(AG_VNNI)
        for (int r = 0; r < R; r++)
            for (int j = 0; j < G; j++)
                acc[j][r] = v_set32(corr[r][b]);
        if (q4 && R == 1) {
            /* the matvec: high nibbles dotted where they are (16 x hi, still a u8) into their own
             * sums, shifted down once per block: one shift per group and block instead of four,
             * the same integers (the sums of 16 x hi x y are multiples of 16) */
            vi acch[GMAX];
            for (int j = 0; j < G; j++)
                acch[j] = v_zero();
            for (int c = 0; c < 4; c++) {
                const vi ylo = v_bcst(a[0] + 32 * b + 4 * c), yhi = v_bcst(a[0] + 32 * b + 16 + 4 * c);
                for (int j = 0; j < G; j++) {
                    const vi raw = v_load(q[j] + 64 * c);
                    acc[j][0] = v_dpbusd(acc[j][0], v_and(raw, m4), ylo);
                    acch[j] = v_dpbusd(acch[j], v_and(raw, mhi), yhi);
                }
            }
            for (int j = 0; j < G; j++)
                acc[j][0] = v_add32(acc[j][0], v_sra32_4(acch[j]));
        } else if (q4) {
            for (int c = 0; c < 4; c++)
                for (int r = 0; r < R; r++) {
                    const vi ylo = v_bcst(a[r] + 32 * b + 4 * c), yhi = v_bcst(a[r] + 32 * b + 16 + 4 * c);
                    for (int j = 0; j < G; j++) {
                        const vi raw = v_load(q[j] + 64 * c);
                        acc[j][r] = v_dpbusd(acc[j][r], v_and(raw, m4), ylo);
                        acc[j][r] = v_dpbusd(acc[j][r], v_and(v_srl4(raw), m4), yhi);
                    }
                }
        } else {
            for (int c = 0; c < 8; c++)
                for (int r = 0; r < R; r++) {
                    const vi y = v_bcst(a[r] + 32 * b + 4 * c);
                    for (int j = 0; j < G; j++)
                        acc[j][r] = v_dpbusd(acc[j][r], v_load(q[j] + 64 * c), y);
                }
        }
#else
        vi slo[GMAX][MR], shi[GMAX][MR];
        for (int r = 0; r < R; r++)
            for (int j = 0; j < G; j++)
                slo[j][r] = shi[j][r] = v_zero();
        if (q4) {
            for (int c = 0; c < 4; c++)
                for (int r = 0; r < R; r++) {
                    const vi ylo = v_bcst(a[r] + 32 * b + 4 * c), yhi = v_bcst(a[r] + 32 * b + 16 + 4 * c);
                    for (int j = 0; j < G; j++) {
                        const vi raw = v_load(q[j] + 64 * c);
                        slo[j][r] = v_add16(slo[j][r], v_maddubs(v_and(raw, m4), ylo));
                        shi[j][r] = v_add16(shi[j][r], v_maddubs(v_and(v_srl4(raw), m4), yhi));
                    }
                }
            for (int r = 0; r < R; r++)
                for (int j = 0; j < G; j++)
                    acc[j][r] = v_add32(v_madd(v_add16(slo[j][r], shi[j][r]), ones), v_set32(corr[r][b]));
        } else {
            /* q + 128 = 16 * hi + lo, each nibble dotted on its own (vpmaddubsw would saturate on bytes) */
            const vi sixteen = v_set16(16);
            for (int c = 0; c < 8; c++)
                for (int r = 0; r < R; r++) {
                    const vi y = v_bcst(a[r] + 32 * b + 4 * c);
                    for (int j = 0; j < G; j++) {
                        const vi u = v_load(q[j] + 64 * c);
                        slo[j][r] = v_add16(slo[j][r], v_maddubs(v_and(u, m4), y));
                        shi[j][r] = v_add16(shi[j][r], v_maddubs(v_and(v_srl4(u), m4), y));
                    }
                }
            for (int r = 0; r < R; r++)
                for (int j = 0; j < G; j++)
                    acc[j][r] = v_add32(v_add32(v_madd(shi[j][r], sixteen), v_madd(slo[j][r], ones)),
                                        v_set32(corr[r][b]));
        }
#endif
        for (int j = 0; j < G; j++) {
            const vf sc = v_scales(p[j] + half * LANES * 2);
            for (int r = 0; r < R; r++)
                accf[j][r] = v_fma(v_cvt(acc[j][r]), v_mul(sc, v_fset(da[r][b])), accf[j][r]);
        }
    }
    for (int j = 0; j < G; j++)
        for (int r = 0; r < R; r++)
            v_store(out + (size_t)j * AG_PACK_ROWS + (size_t)r * ldo, accf[j][r], nvalid[j]);
}

/* Every group (and half) for an R-row activation tile; a matvec (R = 1) takes the groups four
 * at a time while four full ones are left (GMAX 4), then two at a time. */
AI void tiles(int64_t K, const uint8_t *groups, int64_t n_rows, const int8_t *act, size_t astride, float *out,
              size_t ldo, const int R, const int q4, const int nta)
{
    const size_t bb = q4 ? AG_PACK_ROWS * sizeof(ag_block_q4_0) : AG_PACK_ROWS * sizeof(ag_block_q8_0);
    const size_t gbytes = (size_t)(K / 32) * bb;
    for (int64_t n0 = 0; n0 < n_rows;) {
        const uint8_t *g = groups + (size_t)(n0 / AG_PACK_ROWS) * gbytes;
        if (GMAX == 4 && R == 1 && n_rows - n0 >= 4 * AG_PACK_ROWS) { /* four full groups (zmm: one half each) */
            const int nv4[4] = {LANES, LANES, LANES, LANES};
            tile(K, g, gbytes, bb, act, astride, out + n0, ldo, nv4, 1, GMAX, q4, 0, nta);
            n0 += 4 * AG_PACK_ROWS;
            continue;
        }
        const int two = R == 1 && n_rows - n0 > AG_PACK_ROWS;
        for (int h = 0; h < AG_PACK_ROWS / LANES; h++) {
            int nv[2];
            for (int j = 0; j < 2; j++) {
                const int64_t left = n_rows - n0 - j * AG_PACK_ROWS - h * LANES;
                nv[j] = left <= 0 ? 0 : left < LANES ? (int)left : LANES;
            }
            if (nv[0] == 0)
                break;
            float *o = out + n0 + h * LANES;
            if (two && nv[1] > 0) { /* (the second group may have no rows in an AVX2 second half) */
                if (h == 0)
                    tile(K, g, gbytes, bb, act, astride, o, ldo, nv, 1, 2, q4, 0, nta);
                else
                    tile(K, g, gbytes, bb, act, astride, o, ldo, nv, 1, 2, q4, 1, nta);
            } else if (h == 0)
                tile(K, g, gbytes, bb, act, astride, o, ldo, nv, R, 1, q4, 0, nta);
            else
                tile(K, g, gbytes, bb, act, astride, o, ldo, nv, R, 1, q4, 1, nta);
        }
        n0 += two ? 2 * AG_PACK_ROWS : AG_PACK_ROWS;
    }
}

#define PMM(name, Q4)                                                                                         \
    static void name(int64_t K, const void *groups, int64_t n_rows, const void *act, size_t as, int64_t M,     \
                     float *out, size_t ldo)                                                                   \
    {                                                                                                          \
        const int8_t *A = act;                                                                                 \
        for (int64_t m0 = 0; m0 < M; m0 += MR) {                                                               \
            const int64_t R = M - m0 < MR ? M - m0 : MR;                                                       \
            const int8_t *Am = A + (size_t)m0 * as;                                                            \
            float *Om = out + (size_t)m0 * ldo;                                                                \
            switch (R) {                                                                                       \
            case 1: tiles(K, groups, n_rows, Am, as, Om, ldo, 1, Q4, 0); break;                                  \
            case 2: tiles(K, groups, n_rows, Am, as, Om, ldo, 2, Q4, 0); break;                                  \
            case 3: tiles(K, groups, n_rows, Am, as, Om, ldo, 3, Q4, 0); break;                                  \
            case 4: tiles(K, groups, n_rows, Am, as, Om, ldo, 4, Q4, 0); break;                                  \
            PMM_WIDE(Q4)                                                                                       \
            default: break;                                                                                    \
            }                                                                                                  \
        }                                                                                                      \
    }                                                                                                          \
    /* the same, a decode's matvec prefetching non-temporal (ag_kernels.stream_nta) */                        \
    static void name##_nta(int64_t K, const void *groups, int64_t n_rows, const void *act, size_t as,          \
                           int64_t M, float *out, size_t ldo)                                                  \
    {                                                                                                          \
        if (M == 1)                                                                                            \
            tiles(K, groups, n_rows, act, as, out, ldo, 1, Q4, 1);                                             \
        else                                                                                                   \
            name(K, groups, n_rows, act, as, M, out, ldo);                                                     \
    }
#if MR == 8
#define PMM_WIDE(Q4)                                                                                          \
    case 5: tiles(K, groups, n_rows, Am, as, Om, ldo, 5, Q4, 0); break;                                          \
    case 6: tiles(K, groups, n_rows, Am, as, Om, ldo, 6, Q4, 0); break;                                          \
    case 7: tiles(K, groups, n_rows, Am, as, Om, ldo, 7, Q4, 0); break;                                          \
    case 8: tiles(K, groups, n_rows, Am, as, Om, ldo, 8, Q4, 0); break;
#elif MR == 6
#define PMM_WIDE(Q4)                                                                                          \
    case 5: tiles(K, groups, n_rows, Am, as, Om, ldo, 5, Q4, 0); break;                                          \
    case 6: tiles(K, groups, n_rows, Am, as, Om, ldo, 6, Q4, 0); break;
#else
#define PMM_WIDE(Q4)
#endif
PMM(pmm_q4_0, 1)
PMM(pmm_q8_0, 0)

/* ---------------- F16 / F32 groups times F32 activations ----------------
 * V vectors of LANES columns per tile (zmm: two groups; ymm: the two halves of one group), R
 * activation rows; per k one weight load (+ F16 conversion) per vector, one broadcast and V
 * FMAs per row. K goes in blocks of AG_PACK_KBLOCK: each block is an fma chain in order from
 * zero, added to the output (the first block stores): the portable kernel's bits, a sum error
 * that grows with the block length rather than K, and an activation block that stays in L1
 * while the tile walks the weight groups. */
#if defined(AG_ZMM)
#define FMR 12
AI vf f_load(const uint8_t *p, int f16) { return f16 ? v_scales(p) : _mm512_loadu_ps((const float *)p); }
AI vf f_out(const float *o, int n)
{
    return n == LANES ? _mm512_loadu_ps(o) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), o);
}
#else
#define FMR 6
AI vf f_load(const uint8_t *p, int f16) { return f16 ? v_scales(p) : _mm256_loadu_ps((const float *)p); }
AI vf f_out(const float *o, int n)
{
    float t[LANES] = {0};
    memcpy(t, o, (size_t)n * sizeof(float));
    return _mm256_loadu_ps(t);
}
#endif

AI void ftile(int64_t k0, int64_t k1, const uint8_t *const *src, const float *A, size_t lda, float *const *out,
              size_t ldo, const int *nvalid, const int R, const int V, const int f16)
{
    const size_t step = (size_t)AG_PACK_ROWS * (f16 ? 2 : 4); /* bytes per k in a group */
    vf acc[FMR][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = v_fzero();
    for (int64_t k = k0; k < k1; k++) {
        vf w[2];
        for (int v = 0; v < V; v++)
            w[v] = f_load(src[v] + (size_t)k * step, f16);
        for (int r = 0; r < R; r++) {
            const vf a = v_fset(A[(size_t)r * lda + (size_t)k]);
            for (int v = 0; v < V; v++)
                acc[r][v] = v_fma(a, w[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            float *o = out[v] + (size_t)r * ldo;
            v_store(o, k0 == 0 ? acc[r][v] : v_fadd(f_out(o, nvalid[v]), acc[r][v]), nvalid[v]);
        }
}

AI void ftiles(int64_t K, const uint8_t *groups, int64_t n_rows, const float *A, size_t lda, float *out, size_t ldo,
               const int R, const int f16)
{
    const size_t es = f16 ? 2 : 4, gbytes = (size_t)K * AG_PACK_ROWS * es;
    for (int64_t k0 = 0; k0 < K; k0 += AG_PACK_KBLOCK) {
        const int64_t k1 = K - k0 < AG_PACK_KBLOCK ? K : k0 + AG_PACK_KBLOCK;
#if defined(AG_ZMM)
        /* two groups (32 columns) per tile while they last */
        for (int64_t n0 = 0; n0 < n_rows; n0 += 2 * AG_PACK_ROWS) {
            const uint8_t *g = groups + (size_t)(n0 / AG_PACK_ROWS) * gbytes;
            const uint8_t *src[2] = {g, g + gbytes};
            float *o[2] = {out + n0, out + n0 + AG_PACK_ROWS};
            const int64_t left = n_rows - n0;
            const int nv[2] = {left < 16 ? (int)left : 16, left - 16 < 16 ? (int)(left - 16) : 16};
            if (left > AG_PACK_ROWS)
                ftile(k0, k1, src, A, lda, o, ldo, nv, R, 2, f16);
            else
                ftile(k0, k1, src, A, lda, o, ldo, nv, R, 1, f16);
        }
#else
        for (int64_t n0 = 0; n0 < n_rows; n0 += AG_PACK_ROWS) {
            const uint8_t *g = groups + (size_t)(n0 / AG_PACK_ROWS) * gbytes;
            const uint8_t *src[2] = {g, g + LANES * es};
            float *o[2] = {out + n0, out + n0 + LANES};
            const int64_t left = n_rows - n0;
            const int nv[2] = {left < LANES ? (int)left : LANES, left - LANES < LANES ? (int)(left - LANES) : LANES};
            if (left > LANES)
                ftile(k0, k1, src, A, lda, o, ldo, nv, R, 2, f16);
            else
                ftile(k0, k1, src, A, lda, o, ldo, nv, R, 1, f16);
        }
#endif
    }
}

#define FCASE(n)                                                                                              \
    case n:                                                                                                   \
        if (f16)                                                                                              \
            ftiles(K, groups, n_rows, Am, lda, Om, ldo, n, 1);                                                \
        else                                                                                                  \
            ftiles(K, groups, n_rows, Am, lda, Om, ldo, n, 0);                                                \
        break;

static void pmm_f(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const float *A, size_t lda, int64_t M,
                  float *out, size_t ldo)
{
    const int f16 = wt == AG_TYPE_F16;
    for (int64_t m0 = 0; m0 < M; m0 += FMR) {
        const int64_t R = M - m0 < FMR ? M - m0 : FMR;
        const float *Am = A + (size_t)m0 * lda;
        float *Om = out + (size_t)m0 * ldo;
        switch (R) {
            FCASE(1)
            FCASE(2)
            FCASE(3)
            FCASE(4)
            FCASE(5)
            FCASE(6)
#if FMR == 12
            FCASE(7)
            FCASE(8)
            FCASE(9)
            FCASE(10)
            FCASE(11)
            FCASE(12)
#endif
        default: break;
        }
    }
}

/* ---------------- activation quantization ----------------
 * Bit for bit what ag_quantize_row_q8_0 (quant.c) does: d = amax / 127 in float, id = 1 / d,
 * q = x * id rounded half away from zero (trunc, then +-1 where the dropped fraction is >= 0.5:
 * exact, v - trunc(v) has no rounding), clamped to [-127, 127], NaN -> 0. */
#if defined(AG_ZMM)
AI float hmax_abs(const float *x)
{
    /* max(NaN, 0) = 0: NaNs are skipped, as the scalar comparison skips them */
    const __m512 z = _mm512_setzero_ps();
    const __m512 m = _mm512_max_ps(_mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), z),
                                   _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16)), z));
    return _mm512_reduce_max_ps(m);
}
/* 16 floats -> 16 int32 quants */
AI __m512i quant16(const float *x, float id)
{
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x), _mm512_set1_ps(id));
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
    __m512 r = _mm512_mask_add_ps(t, up, t, one);
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_setzero_ps());
    return _mm512_cvttps_epi32(r);
}
/* one block: 32 quants to q, their sum returned */
AI int32_t quant_block(const float *x, float id, int8_t *q)
{
    const __m512i a = quant16(x, id), b = quant16(x + 16, id);
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(a));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(b));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(a, b));
}
#else
AI float hmax_abs(const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    /* max(NaN, m) = m: NaNs are skipped, as the scalar comparison skips them */
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 32; i += 8)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
AI __m256i quant8(const float *x, float id)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), _mm256_set1_ps(id));
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
    __m256 r = _mm256_add_ps(t, _mm256_and_ps(up, one));
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    r = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), r);
    return _mm256_cvttps_epi32(r);
}
AI int32_t quant_block(const float *x, float id, int8_t *q)
{
    __m256i s = _mm256_setzero_si256();
    for (int i = 0; i < 32; i += 8) {
        const __m256i v = quant8(x + i, id);
        s = _mm256_add_epi32(s, v);
        /* int32 -> int8, in order: packs work per 128-bit lane, so fix the lane order after */
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        const __m128i b = _mm_packs_epi16(w, w);
        _mm_storel_epi64((__m128i *)(q + i), b);
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}
#endif

AI ag_fp16 block_scale(const float *x, float *id)
{
    const float amax = hmax_abs(x);
    const float d = amax / 127.0f;
    *id = d != 0.0f ? 1.0f / d : 0.0f;
    return ag_fp32_to_fp16(d);
}

static void q8_0_row(const float *x, ag_block_q8_0 *y, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++) {
        float id;
        y[b].d = block_scale(x + 32 * b, &id);
        (void)quant_block(x + 32 * b, id, y[b].qs);
    }
}

static void act_row(ag_type wt, const float *x, int64_t K, void *dst)
{
    const int64_t nb = K / 32;
    int8_t *q = dst;
    float *d = (float *)(q + K);
    int32_t *corr = (int32_t *)(d + nb);
    const int32_t off = wt == AG_TYPE_Q4_0 ? 8 : 128;
    for (int64_t b = 0; b < nb; b++) {
        float id;
        const ag_fp16 h = block_scale(x + 32 * b, &id);
        d[b] = _cvtsh_ss(h);
        corr[b] = -off * quant_block(x + 32 * b, id, q + 32 * b);
    }
}

#if defined(AG_VNNI)
void ag_packed_fill_avx512vnni(ag_kernels *k)
#elif defined(AG_ZMM)
void ag_packed_fill_avx512(ag_kernels *k)
#else
void ag_packed_fill_avx2(ag_kernels *k)
#endif
{
    k->pmm_q4_0 = k->stream_nta ? pmm_q4_0_nta : pmm_q4_0;
    k->pmm_q8_0 = k->stream_nta ? pmm_q8_0_nta : pmm_q8_0;
    k->act_row = act_row;
    k->q8_0_row = q8_0_row;
    k->pmm_f = pmm_f;
}
