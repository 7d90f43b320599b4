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

/* Slots are indexed by this, not by ag_type (whose ids are sparse). */
enum { AG_KSLOT_F32, AG_KSLOT_F16, AG_KSLOT_Q8_0, AG_KSLOT_Q4_0, AG_KSLOT_COUNT };

typedef struct ag_kernels {
    const char *name;
    ag_vec_dot_fn dot[AG_KSLOT_COUNT];
    ag_rows_fn rows[AG_KSLOT_COUNT];
    ag_h2f_fn h2f; /* NULL: the scalar conversion */
    ag_f2h_fn f2h;
} ag_kernels;

void ag_kernels_scalar(ag_kernels *k);
#if AG_HAVE_X86_KERNELS
void ag_kernels_avx2(ag_kernels *k);
void ag_kernels_avx512(ag_kernels *k);
#if AG_HAVE_AVX512VNNI
void ag_kernels_avx512vnni(ag_kernels *k);
#endif
#endif

/* The table in use (initialised once, thread-safe). */
const ag_kernels *ag_kernels_get(void);

#endif
