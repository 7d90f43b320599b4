/* Packed row groups (see quant.h): the layout, the activation rows the packed kernels read, and
 * the portable kernel, which is also the yardstick every SIMD level matches bit for bit.
 *
 * Why this layout: in a group the 16 rows sit side by side in every 64-byte chunk, so one SIMD
 * lane per row accumulates a whole block with 4-byte integer dots (vpdpbusd / vpmaddubsw)
 * against broadcast activation bytes, and the float work (scale conversion, multiply-add) is
 * paid once per block for 16 rows instead of once per row. Quants are stored unsigned (the u8
 * operand of those instructions); the activation row carries the per-block offset correction. */
#include <math.h>
#include <string.h>

#include "anygpt/error.h"
#include "anygpt/quant.h"
#include "quant_internal.h"

size_t ag_packed_block_bytes(ag_type t)
{
    switch (t) {
    case AG_TYPE_Q4_0: return AG_PACK_ROWS * sizeof(ag_block_q4_0);
    case AG_TYPE_Q8_0: return AG_PACK_ROWS * sizeof(ag_block_q8_0);
    case AG_TYPE_F16: return AG_PACK_ROWS * sizeof(ag_fp16);
    case AG_TYPE_F32: return AG_PACK_ROWS * sizeof(float);
    default: return 0;
    }
}

size_t ag_packed_size(ag_type t, int64_t n_rows, int64_t K)
{
    const size_t bb = ag_packed_block_bytes(t);
    const int64_t be = ag_type_block_elems(t);
    if (!bb || n_rows < 0 || K <= 0 || K % be != 0)
        return 0;
    const int64_t groups = (n_rows + AG_PACK_ROWS - 1) / AG_PACK_ROWS;
    return (size_t)groups * (size_t)(K / be) * bb;
}

/* F16 / F32: per column k the 16 rows' values */
static void pack_float(size_t es, const char *src, size_t stride, int nr, int64_t K, uint8_t *dst)
{
    for (int64_t k = 0; k < K; k++, dst += AG_PACK_ROWS * es) {
        for (int j = 0; j < nr; j++)
            memcpy(dst + (size_t)j * es, src + (size_t)j * stride + (size_t)k * es, es);
        memset(dst + (size_t)nr * es, 0, (size_t)(AG_PACK_ROWS - nr) * es);
    }
}

/* One block column of one group: rows [0, nr) from src (row stride `stride`), zero rows after. */
static void pack_block_q4(const char *src, size_t stride, int nr, int64_t b, uint8_t *dst)
{
    ag_fp16 *d = (ag_fp16 *)dst;
    uint8_t *q = dst + 2 * AG_PACK_ROWS;
    for (int j = 0; j < AG_PACK_ROWS; j++) {
        if (j >= nr) { /* scale 0: the padding row contributes nothing whatever its quants */
            d[j] = 0;
            for (int c = 0; c < 4; c++)
                memset(q + 64 * c + 4 * j, 0x88, 4);
            continue;
        }
        const ag_block_q4_0 *x = (const ag_block_q4_0 *)(src + (size_t)j * stride) + b;
        memcpy(&d[j], &x->d, sizeof(ag_fp16));
        for (int c = 0; c < 4; c++)
            memcpy(q + 64 * c + 4 * j, x->qs + 4 * c, 4);
    }
}

static void pack_block_q8(const char *src, size_t stride, int nr, int64_t b, uint8_t *dst)
{
    ag_fp16 *d = (ag_fp16 *)dst;
    uint8_t *q = dst + 2 * AG_PACK_ROWS;
    for (int j = 0; j < AG_PACK_ROWS; j++) {
        if (j >= nr) {
            d[j] = 0;
            for (int c = 0; c < 8; c++)
                memset(q + 64 * c + 4 * j, 0x80, 4);
            continue;
        }
        const ag_block_q8_0 *x = (const ag_block_q8_0 *)(src + (size_t)j * stride) + b;
        memcpy(&d[j], &x->d, sizeof(ag_fp16));
        for (int c = 0; c < 8; c++)
            for (int e = 0; e < 4; e++)
                q[64 * c + 4 * j + e] = (uint8_t)((uint8_t)x->qs[4 * c + e] ^ 0x80); /* q + 128 */
    }
}

int ag_pack_rows(ag_type t, const void *src, size_t src_stride, int64_t n_rows, int64_t K, void *dst)
{
    const size_t bb = ag_packed_block_bytes(t);
    if (!bb || K <= 0 || K % ag_type_block_elems(t) != 0 || n_rows < 0) {
        ag_set_error("ag_pack_rows: cannot pack %s rows of %lld", ag_type_name(t), (long long)K);
        return -1;
    }
    const int64_t nb = K / 32;
    uint8_t *out = dst;
    for (int64_t r0 = 0; r0 < n_rows; r0 += AG_PACK_ROWS) {
        const int nr = n_rows - r0 < AG_PACK_ROWS ? (int)(n_rows - r0) : AG_PACK_ROWS;
        const char *s = (const char *)src + (size_t)r0 * src_stride;
        if (t == AG_TYPE_F16 || t == AG_TYPE_F32) {
            pack_float(ag_type_block_size(t), s, src_stride, nr, K, out);
            out += (size_t)K * bb;
            continue;
        }
        for (int64_t b = 0; b < nb; b++, out += bb) {
            if (t == AG_TYPE_Q4_0)
                pack_block_q4(s, src_stride, nr, b, out);
            else
                pack_block_q8(s, src_stride, nr, b, out);
        }
    }
    return 0;
}

size_t ag_packed_act_size(int64_t K)
{
    /* K quants, K/32 float scales, K/32 int32 corrections; rows start on cache lines */
    const size_t raw = (size_t)K + (size_t)(K / 32) * 8;
    return (raw + 63) / 64 * 64;
}

void ag_packed_act_row(ag_type wt, const float *x, int64_t K, void *dst)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->act_row) {
        k->act_row(wt, x, K, dst);
        return;
    }
    const int64_t nb = K / 32;
    int8_t *q = dst;
    float *d = (float *)(q + K);
    int32_t *corr = (int32_t *)(d + nb);
    /* the stored weight quants are value + 8 (Q4_0) or value + 128 (Q8_0) */
    const int32_t off = wt == AG_TYPE_Q4_0 ? 8 : 128;
    for (int64_t b = 0; b < nb; b++) {
        ag_block_q8_0 blk;
        ag_quantize_row_q8_0(x + 32 * b, &blk, 32);
        memcpy(q + 32 * b, blk.qs, 32);
        d[b] = ag_fp16_to_fp32(blk.d);
        int32_t s = 0;
        for (int e = 0; e < 32; e++)
            s += blk.qs[e];
        corr[b] = -off * s;
    }
}

/* The portable kernel: per output an fmaf chain over the blocks in order, the same arithmetic
 * the SIMD lanes do (the integer block dot is exact; dw * da is exact in float), so every level
 * returns the same bits. */
void ag_packed_mm_scalar(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const void *act,
                         size_t act_stride, int64_t M, float *out, size_t ldo)
{
    const int64_t nb = K / 32;
    const size_t bb = ag_packed_block_bytes(wt);
    const int q4 = wt == AG_TYPE_Q4_0;
    for (int64_t m = 0; m < M; m++) {
        const int8_t *a = (const int8_t *)act + (size_t)m * act_stride;
        const float *da = (const float *)(a + K);
        const int32_t *corr = (const int32_t *)(da + nb);
        for (int64_t n = 0; n < n_rows; n++) {
            const int64_t g = n / AG_PACK_ROWS;
            const int j = (int)(n % AG_PACK_ROWS);
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *p = (const uint8_t *)groups + (size_t)(g * nb + b) * bb;
                const uint8_t *qp = p + 2 * AG_PACK_ROWS + 4 * j;
                const int8_t *ab = a + 32 * b;
                int32_t isum = corr[b];
                if (q4) {
                    for (int c = 0; c < 4; c++)
                        for (int e = 0; e < 4; e++) {
                            const uint8_t v = qp[64 * c + e];
                            isum += (v & 15) * ab[4 * c + e] + (v >> 4) * ab[16 + 4 * c + e];
                        }
                } else {
                    for (int c = 0; c < 8; c++)
                        for (int e = 0; e < 4; e++)
                            isum += qp[64 * c + e] * ab[4 * c + e];
                }
                ag_fp16 h;
                memcpy(&h, p + 2 * j, sizeof h);
                acc = fmaf((float)isum, ag_fp16_to_fp32(h) * da[b], acc);
            }
            out[(size_t)m * ldo + (size_t)n] = acc;
        }
    }
}

/* Float groups: per output and block of AG_PACK_KBLOCK columns an fmaf chain in order from zero,
 * added to the output (the first block stores), as every level's lanes do. */
void ag_packed_mm_f_scalar(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const float *A, size_t lda,
                           int64_t M, float *out, size_t ldo)
{
    const size_t gbytes = ag_packed_size(wt, AG_PACK_ROWS, K);
    for (int64_t n0 = 0; n0 < n_rows; n0 += AG_PACK_ROWS) {
        const uint8_t *g = (const uint8_t *)groups + (size_t)(n0 / AG_PACK_ROWS) * gbytes;
        const int nr = n_rows - n0 < AG_PACK_ROWS ? (int)(n_rows - n0) : AG_PACK_ROWS;
        for (int64_t m = 0; m < M; m++) {
            const float *a = A + (size_t)m * lda;
            float *o = out + (size_t)m * ldo + (size_t)n0;
            for (int64_t k0 = 0; k0 < K; k0 += AG_PACK_KBLOCK) {
                const int64_t k1 = K - k0 < AG_PACK_KBLOCK ? K : k0 + AG_PACK_KBLOCK;
                float acc[AG_PACK_ROWS] = {0};
                for (int64_t k = k0; k < k1; k++) {
                    for (int j = 0; j < nr; j++) {
                        float w;
                        if (wt == AG_TYPE_F16) {
                            ag_fp16 h;
                            memcpy(&h, g + ((size_t)k * AG_PACK_ROWS + (size_t)j) * 2, 2);
                            w = ag_fp16_to_fp32(h);
                        } else {
                            memcpy(&w, g + ((size_t)k * AG_PACK_ROWS + (size_t)j) * 4, 4);
                        }
                        acc[j] = fmaf(a[k], w, acc[j]);
                    }
                }
                for (int j = 0; j < nr; j++)
                    o[j] = k0 == 0 ? acc[j] : o[j] + acc[j];
            }
        }
    }
}

void ag_packed_matmul_f(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const float *A, size_t lda,
                        int64_t M, float *out, size_t ldo)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->pmm_f)
        k->pmm_f(wt, K, groups, n_rows, A, lda, M, out, ldo);
    else
        ag_packed_mm_f_scalar(wt, K, groups, n_rows, A, lda, M, out, ldo);
}

void ag_packed_matmul(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const void *act, size_t act_stride,
                      int64_t M, float *out, size_t ldo)
{
    const ag_kernels *k = ag_kernels_get();
    if (wt == AG_TYPE_Q4_0)
        k->pmm_q4_0(K, groups, n_rows, act, act_stride, M, out, ldo);
    else if (wt == AG_TYPE_Q8_0)
        k->pmm_q8_0(K, groups, n_rows, act, act_stride, M, out, ldo);
}
