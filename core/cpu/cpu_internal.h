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
/* A barrier that also returns whether *flag was set when the last thread arrived: the same
 * answer on every thread, so all of them can stop at the same point. */
bool cpu_pool_barrier_check(cpu_pool *p, atomic_int *flag);

/* ---- kernels ---- */
/* What the graph executor decided for one node before running the graph (cpu_backend.c). */
typedef struct cpu_node_plan {
    const void *packed;  /* MUL_MAT: the weights as packed row groups (cpu_repack.c), or NULL */
    bool barrier_before; /* a data dependence on an earlier node since the last barrier */
    bool act_ready;      /* MUL_MAT: the previous node prepared the same activation in the same place */
    bool serial;         /* small: thread 0 runs it alone (with nth = 1) */
    atomic_int next;     /* next work item, for kernels that hand out chunks dynamically */
} cpu_node_plan;

typedef struct cpu_params {
    int ith, nth;
    cpu_pool *pool;
    char *work;      /* scratch shared by the threads for one node: layout decided by the op */
    size_t wsize;
    char *priv;      /* this thread's own scratch (MUL_MAT), kept from node to node */
    cpu_node_plan *plan;
    atomic_int *failed;
    char *errbuf;    /* first failing thread writes its message here */
    size_t errlen;
    long node_idx;   /* the node being run, and where cpu_fail records it */
    long *failed_node;
} cpu_params;

typedef void (*cpu_kernel_fn)(const cpu_params *p, ag_tensor *node);
/* Scratch bytes a node needs with nth threads (0 if none): shared p->work, in a layout of the
 * op's choosing. */
typedef size_t (*cpu_work_fn)(const ag_tensor *node, int nth);
/* Bytes of p->priv a node needs on each thread: ops whose scratch is per thread use that, so
 * they never make another thread wait. */
typedef size_t (*cpu_priv_fn)(const ag_tensor *node);

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

/* Anonymous pages mapped for one block (munmap to free), with the transparent huge pages hint:
 * the kernel puts huge pages only where 2 MiB fit wholly inside, so small blocks are unaffected.
 * NULL when mapping fails. Why huge pages: cpu_repack.c. */
void *cpu_map(size_t bytes);

/* ---- sgemm: C[M,N] (ldc) = A[M,K] * op(B) (+ C when accumulate), row-major.
 * trans_b: B is [N,K] (ldb) and used transposed, else B is [K,N] (ldb).
 * trans_a: A is stored [K,M] (lda) and used transposed.
 * Single-threaded: callers split the work across the pool themselves. */
void cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
               const float *B, int64_t ldb, float *C, int64_t ldc, bool accumulate);
/* Whether sgemm runs on OpenBLAS (AG_CPU_NO_BLAS=1 in the environment forces our own loops). */
bool cpu_have_blas(void);
/* OpenBLAS's kernel set ("Haswell", "SkylakeX", ...), NULL without OpenBLAS. */
const char *cpu_blas_core(void);
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
size_t cpu_priv_rope(const ag_tensor *node); /* bytes of p->priv */

void cpu_op_mul_mat(const cpu_params *p, ag_tensor *node);
/* MUL_MAT's scratch, given whether its weights come packed from the cache: bytes of shared
 * scratch (written, then read, by every thread) and of p->priv per thread. */
void cpu_mul_mat_scratch(const ag_tensor *node, bool packed, int nth, size_t *shared, size_t *priv);
/* Whether MUL_MAT node b may reuse the activation node a (run just before it) prepared. */
bool cpu_mul_mat_same_act(const ag_tensor *a, bool a_packed, const ag_tensor *b, bool b_packed);

/* ---- packed weights cache (cpu_repack.c) ---- */
bool cpu_repack_eligible(const ag_tensor *w);
const void *cpu_repack_find(const ag_tensor *w);
/* Packs those of ws not packed yet, on the pool (one whose copy cannot be allocated stays in the
 * file layout: the matmuls then read that). */
int cpu_repack_prepare(cpu_pool *pool, const ag_tensor *const *ws, size_t n);
/* Drops packed copies of rows in [off, off + n) of buf (written or freed). */
void cpu_repack_forget(const ag_buffer *buf, size_t off, size_t n);
size_t cpu_repack_bytes(void);

void cpu_op_conv1d(const cpu_params *p, ag_tensor *node);
size_t cpu_work_conv1d(const ag_tensor *node, int nth);
void cpu_op_conv_transpose1d(const cpu_params *p, ag_tensor *node);
size_t cpu_work_conv_transpose1d(const ag_tensor *node, int nth);
void cpu_op_conv2d(const cpu_params *p, ag_tensor *node);
size_t cpu_work_conv2d(const ag_tensor *node, int nth);
/* 3x3 stride-1 pad-1 convolutions by Winograd F(2x2, 3x3) (cpu_winograd.c), where they pay. */
bool cpu_winograd_applies(const ag_tensor *node);
size_t cpu_work_winograd(const ag_tensor *node, int nth);
void cpu_conv2d_winograd(const cpu_params *p, ag_tensor *node);

void cpu_op_attention(const cpu_params *p, ag_tensor *node);
size_t cpu_priv_attention(const ag_tensor *node);

void cpu_op_lstm(const cpu_params *p, ag_tensor *node);
size_t cpu_work_lstm(const ag_tensor *node, int nth);
void cpu_op_vq_argmin(const cpu_params *p, ag_tensor *node);
size_t cpu_work_vq_argmin(const ag_tensor *node, int nth);

#endif
