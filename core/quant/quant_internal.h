/* Internal to core/quant: the kernel table each SIMD level fills in. Every level is built in its
 * own translation unit (own -m flags) and only called after a run-time CPU check. */
#ifndef AG_QUANT_INTERNAL_H
#define AG_QUANT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "anygpt/quant.h"
#include "quant/ag_quant_config.h"

/* nr rows of n elements at stride `stride` bytes, dotted with one activation row. Row r's result
 * must be bit-identical to what the same level's single dot gives (same summation order). */
typedef void (*ag_rows_fn)(int64_t n, const void *w, size_t stride, int nr, const void *act, float *out);
typedef void (*ag_h2f_fn)(const ag_fp16 *x, float *y, int64_t n);
typedef void (*ag_f2h_fn)(const float *x, ag_fp16 *y, int64_t n);
/* Packed row groups times prepared activation rows (quant.h: ag_packed_matmul, one weight type). */
typedef void (*ag_pmm_fn)(int64_t K, const void *groups, int64_t n_rows, const void *act, size_t act_stride,
                          int64_t M, float *out, size_t ldo);

/* Slots are indexed by this, not by ag_type (whose ids are sparse). */
enum { AG_KSLOT_F32, AG_KSLOT_F16, AG_KSLOT_Q8_0, AG_KSLOT_Q4_0, AG_KSLOT_COUNT };

typedef struct ag_kernels {
    const char *name;
    /* Set by dispatch.c before an x86 level fills the table: the cache hint of the software
     * prefetches that ask ahead for what a decode step reads once (the packed matvec's weight
     * groups, attention's K and V rows), by which the level picks its kernels. 1: non-temporal
     * (best on AMD Zen 5: 7B decode 72% -> 80% of the read bound against L2), 0: into L2 (best on
     * Intel Emerald Rapids, where a non-temporal one halved the decode: 2.9-3.1 -> 5.6-6.4 tok/s). */
    int stream_nta;
    ag_vec_dot_fn dot[AG_KSLOT_COUNT];
    ag_rows_fn rows[AG_KSLOT_COUNT];
    ag_h2f_fn h2f; /* NULL: the scalar conversion */
    void (*axpy_f16)(int64_t n, float alpha, const ag_fp16 *x, float *y); /* NULL: scalar */
    void (*mad_rows_f16)(int64_t n, int64_t nr, const float *p, const ag_fp16 *x, size_t stride,
                         float *y); /* NULL: axpy_f16 row after row */
    ag_f2h_fn f2h;
    ag_pmm_fn pmm_q8_0, pmm_q4_0;
    void (*pmm_f)(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const float *A, size_t lda, int64_t M,
                  float *out, size_t ldo); /* F16/F32 groups; NULL: the portable one */
    /* NULL: the portable code; else the same bits, faster */
    void (*act_row)(ag_type wt, const float *x, int64_t K, void *dst);
    void (*q8_0_row)(const float *x, ag_block_q8_0 *y, int64_t n);
    /* elementwise math (quant.h: ag_vec_scale_max, ag_vec_exp_sum, ag_vec_silu) */
    float (*scale_max)(float *x, int64_t n, float scale);
    float (*exp_sum)(float *x, int64_t n, float sub);
    void (*silu)(const float *x, float *y, int64_t n);
} ag_kernels;

void ag_packed_mm_f_scalar(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const float *A, size_t lda,
                           int64_t M, float *out, size_t ldo);
/* The portable packed kernel (packed.c), for the scalar level. */
void ag_packed_mm_scalar(ag_type wt, int64_t K, const void *groups, int64_t n_rows, const void *act,
                         size_t act_stride, int64_t M, float *out, size_t ldo);

void ag_kernels_scalar(ag_kernels *k);
#if AG_HAVE_X86_KERNELS
void ag_kernels_avx2(ag_kernels *k);
void ag_kernels_avx512(ag_kernels *k);
/* the elementwise math of each level (vmath_x86.c) */
void ag_vmath_avx2(ag_kernels *k);
void ag_vmath_avx512(ag_kernels *k);
#if AG_HAVE_AVX512VNNI
void ag_kernels_avx512vnni(ag_kernels *k);
void ag_vmath_avx512vnni(ag_kernels *k);
#endif
/* packed_x86.c: the packed-group kernels of each level, filled in by the level's entry */
void ag_packed_fill_avx2(ag_kernels *k);
void ag_packed_fill_avx512(ag_kernels *k);
void ag_packed_fill_avx512vnni(ag_kernels *k);
#if AG_HAVE_AMX
/* packed_amx.c: whether the CPU has AMX-INT8 and Linux lets this process use it (asks once) */
bool ag_amx_available(void);
/* the prompt GEMM on AMX tiles over a table the VNNI level filled (its kernels stay for decode) */
void ag_packed_fill_amx(ag_kernels *k);
#endif
#endif

/* The table in use (initialised once, thread-safe). */
const ag_kernels *ag_kernels_get(void);

#endif
