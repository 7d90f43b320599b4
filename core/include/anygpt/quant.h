/* anygpt core: quantization (ggml Q8_0 / Q4_0 block formats) and the dot-product kernels the
 * cpu backend builds its matmuls on. Kernels are picked at run time (AVX-512, AVX2, scalar). */
#ifndef ANYGPT_QUANT_H
#define ANYGPT_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "anygpt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows of n elements (n % 32 == 0 for quantized types). Same rounding as ggml's reference
 * quantizers: Q8_0 d = amax/127, q = round(x/d); Q4_0 d = max/-8 (max = the value with the
 * largest magnitude, sign kept), q = min(15, (int8)(x/d + 8.5)). */
void ag_quantize_row_q8_0(const float *x, ag_block_q8_0 *y, int64_t n);
void ag_quantize_row_q4_0(const float *x, ag_block_q4_0 *y, int64_t n);
void ag_dequantize_row_q8_0(const ag_block_q8_0 *x, float *y, int64_t n);
void ag_dequantize_row_q4_0(const ag_block_q4_0 *x, float *y, int64_t n);
void ag_fp32_to_fp16_row(const float *x, ag_fp16 *y, int64_t n);
void ag_fp16_to_fp32_row(const ag_fp16 *x, float *y, int64_t n);
/* y[i] += alpha * x[i] with F16 x (one fused multiply-add per element, every level alike). */
void ag_axpy_f16(int64_t n, float alpha, const ag_fp16 *x, float *y);
/* y[i] += sum over rows j < nr of p[j] * x_j[i] (F16 rows `stride` bytes apart), rows with
 * p[j] == 0 skipped: bit for bit ag_axpy_f16 row after row (same fused multiply-adds, j in
 * order), but y stays in registers across the rows (attention's weighted sum of V rows). */
void ag_mad_rows_f16(int64_t n, int64_t nr, const float *p, const ag_fp16 *x, size_t stride, float *y);
/* Any supported type -> F32 row. */
void ag_dequantize_row(ag_type type, const void *x, float *y, int64_t n);
/* F32 -> any of F32/F16/Q8_0/Q4_0 for a whole tensor of nrows rows of n; returns bytes written. */
size_t ag_quantize(ag_type type, const float *x, void *y, int64_t nrows, int64_t n);

/* Dot products of one weight row (type of the row) with an activation row prepared for it:
 *  - F32 weights: activation F32;
 *  - F16 weights: activation F32;
 *  - Q8_0 / Q4_0 weights: activation quantized to Q8_0 blocks (ag_quantize_row_q8_0), as ggml
 *    does, so the inner loop is integer.
 * ag_vec_dot returns sum over n elements. */
typedef float (*ag_vec_dot_fn)(int64_t n, const void *w_row, const void *act_row);
ag_vec_dot_fn ag_vec_dot_for(ag_type weight_type);
/* The activation format a weight type's dot product wants (F32 or Q8_0). */
ag_type ag_vec_dot_act_type(ag_type weight_type);

/* Several output rows at once (register blocking for matvec/matmul): out[r] = dot(w_rows[r], act)
 * for r < nr, rows at stride w_stride bytes. */
void ag_vec_dot_rows(ag_type weight_type, int64_t n, const void *w_rows, size_t w_stride, int nr, const void *act_row,
                     float *out);

/* ---- Packed row groups: Q8_0 / Q4_0 matrices rearranged for the matmul kernels ----
 * Rows are taken 16 at a time (a group; a last short group is padded with zero rows). Per block
 * column (32 elements) a group stores the 16 rows' F16 scales (32 bytes), then the quants in
 * 64-byte chunks, lane j of a chunk being 4 bytes of row j, all unsigned:
 *   Q4_0: 4 chunks, chunk c = the block's qs[4c..4c+3] as in the file (low nibble element 4c+e,
 *         high nibble 16+4c+e, value nibble - 8);
 *   Q8_0: 8 chunks, chunk c = q[4c..4c+3] + 128 (value byte - 128).
 * F16 / F32 rows pack too: per column k the 16 rows' values (lane j = row j).
 * So a group is exactly as large as its 16 rows in the file format. */
#define AG_PACK_ROWS 16
/* Bytes of one block column (one column for F16/F32) of a group, 0 if the type cannot be packed. */
size_t ag_packed_block_bytes(ag_type t);
/* Bytes of n_rows rows of K packed (whole groups), 0 if the type or K cannot be packed. */
size_t ag_packed_size(ag_type t, int64_t n_rows, int64_t K);
/* n_rows rows of K (file format, src_stride bytes apart) into dst (ag_packed_size bytes). */
int ag_pack_rows(ag_type t, const void *src, size_t src_stride, int64_t n_rows, int64_t K, void *dst);
/* The activation row the packed kernels read: x quantized exactly as ag_quantize_row_q8_0 does,
 * stored as K int8 quants, K/32 F32 scales, K/32 int32 offset corrections for weights of type
 * wt. ag_packed_act_size(K) bytes (a multiple of 64). */
size_t ag_packed_act_size(int64_t K);
void ag_packed_act_row(ag_type wt, const float *x, int64_t K, void *dst);
/* out[m * ldo + n] = dot(row n, activation row m) for n < n_rows and m < M: the ceil(n_rows/16)
 * groups at `groups` times M activation rows act_stride bytes apart. Every kernel level returns
 * the same bits: per output an exact integer dot per block, then fma over the blocks in order. */
void ag_packed_matmul(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const void *act, size_t act_stride,
                      int64_t M, float *out, size_t ldo);

/* F16 / F32 groups times F32 activation rows (lda floats apart): out[m * ldo + n]. Every level:
 * per block of AG_PACK_KBLOCK columns an fma chain in order from zero, added to the output in
 * block order (so the sum error grows with the block, not with K). */
#define AG_PACK_KBLOCK 256
void ag_packed_matmul_f(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const float *A, size_t lda,
                        int64_t M, float *out, size_t ldo);

/* Elementwise float math on the same SIMD level (exp within ~1 ulp; exp of -inf is 0):
 * x[i] *= scale, returning the max; x[i] = exp(x[i] - sub), returning the sum (softmax rows);
 * y = x / (1 + exp(-x)) (SiLU; y may be x). */
float ag_vec_scale_max(float *x, int64_t n, float scale);
float ag_vec_exp_sum(float *x, int64_t n, float sub);
void ag_vec_silu(const float *x, float *y, int64_t n);

/* Which SIMD level the kernels run on: "avx512-amx", "avx512", "avx2" or "scalar". AG_SIMD=scalar|avx2 in the
 * environment caps it (for tests of every path on one machine). */
const char *ag_simd_level(void);
/* The hint of the x86 kernels' stream prefetches ("non-temporal" or "L2"; AG_PREFETCH=nta|l2
 * overrides the choice by CPU vendor), or "" where the level has none (scalar). */
const char *ag_simd_prefetch(void);

#ifdef __cplusplus
}
#endif
#endif
