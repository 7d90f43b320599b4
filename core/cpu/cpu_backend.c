/* The cpu backend object: host buffers, node support checks, and graph execution on the
 * thread pool (every thread walks the node list; a barrier separates nodes). */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"
#include "ag_config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    cpu_pool *pool;
    int nth;
    char *work;
    size_t wcap;
    pthread_mutex_t lock; /* one graph at a time: elements may share the backend across threads */
    char devname[160];
} cpu_backend;

static cpu_backend *impl_of(ag_backend *be) { return be->impl; }

/* ---------------- buffers ---------------- */

static ag_buffer *cpu_buffer_alloc(ag_backend *be, size_t size)
{
    ag_buffer *b = calloc(1, sizeof *b);
    size_t padded = cpu_align(size ? size : 1);
    void *mem = padded >= size ? aligned_alloc(CPU_ALIGN, padded) : NULL;
    if (!b || !mem) {
        free(b);
        free(mem);
        ag_set_error("cpu: cannot allocate a buffer of %zu bytes", size);
        return NULL;
    }
    b->backend = be;
    b->size = size;
    b->host = mem;
    return b;
}

static ag_buffer *cpu_buffer_from_host(ag_backend *be, void *ptr, size_t size)
{
    if (!ptr && size) {
        ag_set_error("cpu: cannot wrap a NULL pointer");
        return NULL;
    }
    ag_buffer *b = calloc(1, sizeof *b);
    if (!b) {
        ag_set_error("cpu: out of memory");
        return NULL;
    }
    b->backend = be;
    b->size = size;
    b->host = ptr;
    b->borrowed = true;
    return b;
}

static void cpu_buffer_free(ag_buffer *buf)
{
    if (!buf)
        return;
    if (!buf->borrowed)
        free(buf->host);
    free(buf);
}

static int cpu_buffer_write(ag_buffer *buf, size_t offset, const void *src, size_t n)
{
    if (offset > buf->size || n > buf->size - offset) {
        ag_set_error("cpu: write of %zu bytes at %zu past the end of a %zu-byte buffer", n, offset, buf->size);
        return -1;
    }
    if (n)
        memcpy((char *)buf->host + offset, src, n);
    return 0;
}

static int cpu_buffer_read(ag_buffer *buf, size_t offset, void *dst, size_t n)
{
    if (offset > buf->size || n > buf->size - offset) {
        ag_set_error("cpu: read of %zu bytes at %zu past the end of a %zu-byte buffer", n, offset, buf->size);
        return -1;
    }
    if (n)
        memcpy(dst, (const char *)buf->host + offset, n);
    return 0;
}

/* ---------------- op tables ---------------- */

static const cpu_kernel_fn kernels[AG_OP_COUNT] = {
    [AG_OP_CPY] = cpu_op_cpy,
    [AG_OP_ADD] = cpu_op_add,
    [AG_OP_MUL] = cpu_op_mul,
    [AG_OP_SCALE] = cpu_op_scale,
    [AG_OP_RMS_NORM] = cpu_op_rms_norm,
    [AG_OP_LAYER_NORM] = cpu_op_layer_norm,
    [AG_OP_GROUP_NORM] = cpu_op_group_norm,
    [AG_OP_SOFTMAX] = cpu_op_softmax,
    [AG_OP_ROPE] = cpu_op_rope,
    [AG_OP_UNARY] = cpu_op_unary,
    [AG_OP_SNAKE] = cpu_op_snake,
    [AG_OP_GLU] = cpu_op_glu,
    [AG_OP_MUL_MAT] = cpu_op_mul_mat,
    [AG_OP_CONV1D] = cpu_op_conv1d,
    [AG_OP_CONV_TRANSPOSE1D] = cpu_op_conv_transpose1d,
    [AG_OP_CONV2D] = cpu_op_conv2d,
    [AG_OP_PAD] = cpu_op_pad,
    [AG_OP_UPSAMPLE] = cpu_op_upsample,
    [AG_OP_GET_ROWS] = cpu_op_get_rows,
    [AG_OP_CONCAT] = cpu_op_concat,
    [AG_OP_LSTM] = cpu_op_lstm,
    [AG_OP_VQ_ARGMIN] = cpu_op_vq_argmin,
    [AG_OP_ATTENTION] = cpu_op_attention,
    [AG_OP_ARGMAX] = cpu_op_argmax,
};

static const cpu_work_fn work_fns[AG_OP_COUNT] = {
    [AG_OP_ROPE] = cpu_work_rope,
    [AG_OP_MUL_MAT] = cpu_work_mul_mat,
    [AG_OP_CONV1D] = cpu_work_conv1d,
    [AG_OP_CONV_TRANSPOSE1D] = cpu_work_conv_transpose1d,
    [AG_OP_CONV2D] = cpu_work_conv2d,
    [AG_OP_ATTENTION] = cpu_work_attention,
    [AG_OP_LSTM] = cpu_work_lstm,
    [AG_OP_VQ_ARGMIN] = cpu_work_vq_argmin,
};

/* ---------------- support checks ---------------- */

static bool is_f32c(const ag_tensor *t) { return t && t->type == AG_TYPE_F32 && ag_is_contiguous(t); }
static bool is_plain(ag_type t) { return t == AG_TYPE_F32 || t == AG_TYPE_F16 || t == AG_TYPE_I32; }
static bool is_weight(ag_type t)
{
    return t == AG_TYPE_F32 || t == AG_TYPE_F16 || t == AG_TYPE_Q8_0 || t == AG_TYPE_Q4_0;
}
static bool is_fp(ag_type t) { return t == AG_TYPE_F32 || t == AG_TYPE_F16; }
static bool elem_contig(const ag_tensor *t) { return t->nb[0] == ag_type_block_size(t->type); }

static bool cpu_supports_node(ag_backend *be, const ag_tensor *n)
{
    (void)be;
    const ag_tensor *a = n->src[0], *b = n->src[1];
    switch (n->op) {
    case AG_OP_NONE:
    case AG_OP_VIEW: return true;
    case AG_OP_CPY:
        return a && is_plain(a->type) && is_plain(n->type) && (a->type == AG_TYPE_I32) == (n->type == AG_TYPE_I32) &&
               elem_contig(a) && elem_contig(n) && ag_same_shape(a, n);
    case AG_OP_ADD:
    case AG_OP_MUL:
        if (!is_f32c(a) || !is_f32c(b) || !is_f32c(n) || !ag_same_shape(a, n))
            return false;
        for (int i = 0; i < AG_MAX_DIMS; i++)
            if (b->ne[i] != 1 && b->ne[i] != a->ne[i])
                return false;
        return true;
    case AG_OP_SCALE:
    case AG_OP_RMS_NORM:
    case AG_OP_LAYER_NORM:
    case AG_OP_UNARY: return is_f32c(a) && is_f32c(n) && ag_same_shape(a, n);
    case AG_OP_GROUP_NORM:
        return is_f32c(a) && is_f32c(n) && ag_same_shape(a, n) && n->op_params[0] > 0 &&
               a->ne[2] % n->op_params[0] == 0;
    case AG_OP_SOFTMAX:
        return is_f32c(a) && is_f32c(n) && ag_same_shape(a, n) &&
               (!b || (is_f32c(b) && b->ne[0] == a->ne[0] && b->ne[1] == a->ne[1] &&
                       (b->ne[2] == 1 || b->ne[2] == a->ne[2]) && b->ne[3] == 1));
    case AG_OP_ROPE:
        return is_f32c(a) && is_f32c(n) && ag_same_shape(a, n) && b && b->type == AG_TYPE_I32 &&
               ag_is_contiguous(b) && ag_nelements(b) == a->ne[2] && n->op_params[0] > 0 &&
               n->op_params[0] % 2 == 0 && n->op_params[0] <= a->ne[0];
    case AG_OP_SNAKE:
        return is_f32c(a) && is_f32c(n) && ag_same_shape(a, n) && is_f32c(b) && ag_nelements(b) == a->ne[1];
    case AG_OP_GLU:
        return is_f32c(a) && is_f32c(n) && a->ne[0] == 2 * n->ne[0];
    case AG_OP_MUL_MAT:
        return a && is_weight(a->type) && ag_is_contiguous(a) && is_f32c(b) && is_f32c(n) && a->ne[0] == b->ne[0] &&
               b->ne[2] % a->ne[2] == 0 && b->ne[3] % a->ne[3] == 0 && n->ne[0] == a->ne[1] && n->ne[1] == b->ne[1];
    case AG_OP_CONV1D:
    case AG_OP_CONV_TRANSPOSE1D:
    case AG_OP_CONV2D:
        return is_f32c(a) && b && is_fp(b->type) && ag_is_contiguous(b) && is_f32c(n);
    case AG_OP_PAD:
    case AG_OP_UPSAMPLE:
    case AG_OP_ARGMAX: return is_f32c(a) && n->type == (n->op == AG_OP_ARGMAX ? AG_TYPE_I32 : AG_TYPE_F32);
    case AG_OP_GET_ROWS:
        return a && is_weight(a->type) && ag_is_contiguous(a) && b && b->type == AG_TYPE_I32 &&
               ag_is_contiguous(b) && is_f32c(n) && n->ne[0] == a->ne[0] && n->ne[1] == ag_nelements(b);
    case AG_OP_CONCAT: return is_f32c(a) && is_f32c(b) && is_f32c(n) && n->op_params[0] >= 0 && n->op_params[0] < 4;
    case AG_OP_LSTM:
        return is_f32c(a) && b && is_fp(b->type) && ag_is_contiguous(b) && is_f32c(n) && b->ne[1] == 4 * b->ne[0] &&
               a->ne[0] == b->ne[1] && n->ne[0] == b->ne[0] && n->ne[1] == a->ne[1];
    case AG_OP_VQ_ARGMIN:
        return is_f32c(a) && is_f32c(b) && a->ne[0] == b->ne[0] && n->type == AG_TYPE_I32 && n->ne[0] == a->ne[1];
    case AG_OP_ATTENTION: {
        const ag_tensor *v = n->src[2], *m = n->src[3];
        return a && a->type == AG_TYPE_F32 && elem_contig(a) && b && is_fp(b->type) && elem_contig(b) && v &&
               is_fp(v->type) && elem_contig(v) && is_f32c(n) && b->ne[0] == a->ne[0] && v->ne[1] == b->ne[1] &&
               v->ne[2] == b->ne[2] && a->ne[2] % b->ne[2] == 0 && n->ne[0] == v->ne[0] &&
               (!m || (is_f32c(m) && m->ne[0] == b->ne[1] && m->ne[1] == a->ne[1]));
    }
    default: return false;
    }
}

/* ---------------- compute ---------------- */

typedef struct {
    ag_graph *g;
    char *work;
    size_t wsize;
    cpu_pool *pool;
    atomic_int failed;
    long failed_node;
    char errbuf[512];
} cpu_job;

void cpu_fail(const cpu_params *p, const char *fmt, ...)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(p->failed, &expected, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errbuf, p->errlen, fmt, ap);
    va_end(ap);
}

static bool is_noop(const ag_tensor *n) { return n->op == AG_OP_NONE || n->op == AG_OP_VIEW; }

static void run_graph(void *arg, int ith, int nth)
{
    cpu_job *job = arg;
    cpu_params p = {
        .ith = ith,
        .nth = nth,
        .pool = job->pool,
        .work = job->work,
        .wsize = job->wsize,
        .failed = &job->failed,
        .errbuf = job->errbuf,
        .errlen = sizeof job->errbuf,
    };
    const size_t n = ag_graph_n_nodes(job->g);
    for (size_t i = 0; i < n; i++) {
        ag_tensor *node = ag_graph_node(job->g, i);
        if (is_noop(node))
            continue;
        kernels[node->op](&p, node);
        cpu_barrier(&p);
        if (atomic_load(&job->failed)) {
            if (ith == 0)
                job->failed_node = (long)i;
            break;
        }
    }
}

static int check_node(ag_backend *be, const ag_tensor *n)
{
    if (!cpu_supports_node(be, n) || !kernels[n->op]) {
        ag_set_error("cpu: node '%s' (%s, %s [%lld,%lld,%lld,%lld]) is not supported with these operand types or "
                     "shapes",
                     n->name, ag_op_name(n->op), ag_type_name(n->type), (long long)n->ne[0], (long long)n->ne[1],
                     (long long)n->ne[2], (long long)n->ne[3]);
        return -1;
    }
    if (!cpu_data(n)) {
        ag_set_error("cpu: node '%s' (%s) has no host storage", n->name, ag_op_name(n->op));
        return -1;
    }
    for (int s = 0; s < AG_MAX_SRC; s++)
        if (n->src[s] && !cpu_data(n->src[s])) {
            ag_set_error("cpu: node '%s' (%s): source '%s' has no host storage", n->name, ag_op_name(n->op),
                         n->src[s]->name);
            return -1;
        }
    return 0;
}

static int cpu_compute(ag_backend *be, ag_graph *g)
{
    cpu_backend *cb = impl_of(be);
    const size_t n = ag_graph_n_nodes(g);
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        const ag_tensor *node = ag_graph_node(g, i);
        if (is_noop(node))
            continue;
        if (check_node(be, node) != 0)
            return -1;
        if (work_fns[node->op]) {
            size_t w = work_fns[node->op](node, cb->nth);
            if (w == SIZE_MAX) {
                ag_set_error("cpu: node '%s' (%s): scratch size overflows", node->name, ag_op_name(node->op));
                return -1;
            }
            if (w > need)
                need = w;
        }
    }
    pthread_mutex_lock(&cb->lock);
    if (need > cb->wcap) {
        free(cb->work);
        cb->wcap = 0;
        cb->work = aligned_alloc(CPU_ALIGN, cpu_align(need));
        if (!cb->work) {
            pthread_mutex_unlock(&cb->lock);
            ag_set_error("cpu: cannot allocate %zu bytes of scratch memory", need);
            return -1;
        }
        cb->wcap = cpu_align(need);
    }
    cpu_job *job = calloc(1, sizeof *job);
    if (!job) {
        pthread_mutex_unlock(&cb->lock);
        ag_set_error("cpu: out of memory");
        return -1;
    }
    job->g = g;
    job->work = cb->work;
    job->wsize = cb->wcap;
    job->pool = cb->pool;
    job->failed_node = -1;
    cpu_pool_run(cb->pool, run_graph, job);
    int rc = 0;
    if (atomic_load(&job->failed)) {
        const ag_tensor *node = ag_graph_node(g, (size_t)(job->failed_node < 0 ? 0 : job->failed_node));
        ag_set_error("cpu: node '%s' (%s): %s", node ? node->name : "?", node ? ag_op_name(node->op) : "?",
                     job->errbuf);
        rc = -1;
    }
    free(job);
    pthread_mutex_unlock(&cb->lock);
    return rc;
}

/* ---------------- backend object ---------------- */

static const char *cpu_name(ag_backend *be)
{
    (void)be;
    return "cpu";
}

static const char *cpu_device_name(ag_backend *be) { return impl_of(be)->devname; }

static void cpu_free(ag_backend *be)
{
    if (!be)
        return;
    cpu_backend *cb = impl_of(be);
    if (cb) {
        cpu_pool_free(cb->pool);
        free(cb->work);
        pthread_mutex_destroy(&cb->lock);
        free(cb);
    }
    free(be);
}

static const ag_backend_iface cpu_iface = {
    .name = cpu_name,
    .device_name = cpu_device_name,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_from_host = cpu_buffer_from_host,
    .buffer_free = cpu_buffer_free,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .supports_node = cpu_supports_node,
    .compute = cpu_compute,
    .free = cpu_free,
};

ag_backend *ag_backend_cpu_new(int n_threads)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 512)
        n_threads = 512;
    cpu_gemm_init();
    ag_backend *be = calloc(1, sizeof *be);
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!be || !cb) {
        free(be);
        free(cb);
        ag_set_error("cpu: out of memory");
        return NULL;
    }
    pthread_mutex_init(&cb->lock, NULL);
    be->iface = &cpu_iface;
    be->alignment = CPU_ALIGN;
    be->impl = cb;
    cb->nth = n_threads;
    cb->pool = cpu_pool_new(n_threads);
    if (!cb->pool) {
        cpu_free(be);
        return NULL;
    }
    snprintf(cb->devname, sizeof cb->devname, "CPU, %d threads, %s kernels%s", n_threads, ag_simd_level(),
             cpu_have_blas() ? ", OpenBLAS sgemm" : "");
    return be;
}

int ag_backend_cpu_n_threads(ag_backend *be)
{
    if (!be || be->iface != &cpu_iface)
        return 0;
    return impl_of(be)->nth;
}
