/* Internal to core/cpu: the thread pool, the per-node kernel calling convention, scratch memory
 * and the helpers every kernel shares. */
#ifndef AG_CPU_INTERNAL_H
#define AG_CPU_INTERNAL_H

#include "anygpt/backend.h"
#include "anygpt/error.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- thread pool ---- */
typedef struct cpu_pool cpu_pool;
typedef void (*cpu_job_fn)(void *arg, int ith, int nth);

/* nth threads in all: the caller of cpu_pool_run is thread 0, nth-1 workers are created. */
cpu_pool *cpu_pool_new(int nth);
void cpu_pool_free(cpu_pool *p);
int cpu_pool_nth(const cpu_pool *p);
/* Runs fn(arg, ith, nth) on every thread and returns when all have finished. */
void cpu_pool_run(cpu_pool *p, cpu_job_fn fn, void *arg);
/* Every thread of the running job must call it the same number of times. */
void cpu_pool_barrier(cpu_pool *p);

/* ---- kernels ---- */
typedef struct cpu_params {
    int ith, nth;
    cpu_pool *pool;
    char *work;      /* scratch for the node: layout decided by the op (shared + per thread) */
    size_t wsize;
    atomic_int *failed;
    char *errbuf;    /* first failing thread writes its message here */
    size_t errlen;
} cpu_params;

typedef void (*cpu_kernel_fn)(const cpu_params *p, ag_tensor *node);
/* Scratch bytes a node needs with nth threads (0 if none). */
typedef size_t (*cpu_work_fn)(const ag_tensor *node, int nth);

/* Records an error for the node being run (first one wins); the caller returns right after. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void cpu_fail(const cpu_params *p, const char *fmt, ...);

static inline void cpu_barrier(const cpu_params *p)
{
    if (p->nth > 1)
        cpu_pool_barrier(p->pool);
}

/* Host address of a tensor's first element (views resolve through their storage tensor). */
static inline char *cpu_data(const ag_tensor *t)
{
    if (t->view_src)
        return t->view_src->data ? (char *)t->view_src->data + t->view_offs : NULL;
    return (char *)t->data;
}

/* Even split of n items: [*i0, *i1) for thread ith. */
static inline void cpu_range(int64_t n, int ith, int nth, int64_t *i0, int64_t *i1)
{
    int64_t per = (n + nth - 1) / nth;
    *i0 = per * ith < n ? per * ith : n;
    *i1 = *i0 + per < n ? *i0 + per : n;
}

#define CPU_ALIGN 64
static inline size_t cpu_align(size_t x) { return (x + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN; }

/* ---- sgemm: C[M,N] (ldc) = A[M,K] * op(B) (+ C when accumulate), row-major.
 * trans_b: B is [N,K] (ldb) and used transposed, else B is [K,N] (ldb).
 * trans_a: A is stored [K,M] (lda) and used transposed.
 * Single-threaded: callers split the work across the pool themselves. */
void cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
               const float *B, int64_t ldb, float *C, int64_t ldc, bool accumulate);
/* Whether sgemm runs on OpenBLAS (AG_CPU_NO_BLAS=1 in the environment forces our own loops). */
bool cpu_have_blas(void);
void cpu_gemm_init(void);

/* F32 dot product, summed in several lanes so the compiler vectorises it. */
float cpu_dot_f32(const float *a, const float *b, int64_t n);
/* Any plain/quantized type row -> F32. */
void cpu_to_f32(ag_type type, const void *src, float *dst, int64_t n);

/* ---- op kernels (one per op; *_work where scratch is needed) ---- */
void cpu_op_cpy(const cpu_params *p, ag_tensor *node);
void cpu_op_add(const cpu_params *p, ag_tensor *node);
void cpu_op_mul(const cpu_params *p, ag_tensor *node);
void cpu_op_scale(const cpu_params *p, ag_tensor *node);
void cpu_op_unary(const cpu_params *p, ag_tensor *node);
void cpu_op_snake(const cpu_params *p, ag_tensor *node);
void cpu_op_glu(const cpu_params *p, ag_tensor *node);
void cpu_op_pad(const cpu_params *p, ag_tensor *node);
void cpu_op_upsample(const cpu_params *p, ag_tensor *node);
void cpu_op_concat(const cpu_params *p, ag_tensor *node);
void cpu_op_argmax(const cpu_params *p, ag_tensor *node);
void cpu_op_get_rows(const cpu_params *p, ag_tensor *node);

void cpu_op_rms_norm(const cpu_params *p, ag_tensor *node);
void cpu_op_layer_norm(const cpu_params *p, ag_tensor *node);
void cpu_op_group_norm(const cpu_params *p, ag_tensor *node);
void cpu_op_softmax(const cpu_params *p, ag_tensor *node);
void cpu_op_rope(const cpu_params *p, ag_tensor *node);
size_t cpu_work_rope(const ag_tensor *node, int nth);

void cpu_op_mul_mat(const cpu_params *p, ag_tensor *node);
size_t cpu_work_mul_mat(const ag_tensor *node, int nth);

void cpu_op_conv1d(const cpu_params *p, ag_tensor *node);
size_t cpu_work_conv1d(const ag_tensor *node, int nth);
void cpu_op_conv_transpose1d(const cpu_params *p, ag_tensor *node);
size_t cpu_work_conv_transpose1d(const ag_tensor *node, int nth);
void cpu_op_conv2d(const cpu_params *p, ag_tensor *node);
size_t cpu_work_conv2d(const ag_tensor *node, int nth);

void cpu_op_attention(const cpu_params *p, ag_tensor *node);
size_t cpu_work_attention(const ag_tensor *node, int nth);

void cpu_op_lstm(const cpu_params *p, ag_tensor *node);
size_t cpu_work_lstm(const ag_tensor *node, int nth);
void cpu_op_vq_argmin(const cpu_params *p, ag_tensor *node);
size_t cpu_work_vq_argmin(const ag_tensor *node, int nth);

#endif
