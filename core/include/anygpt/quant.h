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

/* Which SIMD level the kernels run on: "avx512", "avx2" or "scalar". AG_SIMD=scalar|avx2 in the
 * environment caps it (for tests of every path on one machine). */
const char *ag_simd_level(void);

#ifdef __cplusplus
}
#endif
#endif
