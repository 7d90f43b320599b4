/* The cpu backend object: host buffers, node support checks, and graph execution on the
 * thread pool (every thread walks the node list; barriers where data dependences need them). */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"
#include "ag_config.h"
#include "backend_turns.h"

#include <pthread.h>
#include <stdarg.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Blocks from CPU_MAP_MIN bytes (buffers, graph scratch) are pages mapped for them alone, so
 * freeing one gives it back to the system at once. From malloc, glibc raises its mmap threshold
 * to the size of every mapped block freed, and later blocks up to that size are carved from the
 * arena of the thread that asks (a pipeline's streaming threads are new each time) and stay
 * there when freed: an application starting and stopping pipelines grew by ~0.6 MB a cycle
 * with nothing leaked (tools/voice-cycles.py; tests/stress). Whether a block is mapped follows
 * from its size, so nothing else is stored. */
#define CPU_MAP_MIN ((size_t)128 * 1024)

void *cpu_map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* a hint: where THP is off, small pages */
    return p;
}

/* Mapped blocks (graph intermediates, scratch) get huge pages as the packed weights do: 7B
 * prefill +2 to +20% over small pages (3 alternating pairs). Not a buffer that fills a little at
 * a time (ag_buffer_hint_grows): a KV cache is sized for the whole context and written a row per
 * head and token, so 2 MiB pages would make all of it resident at the first token (7B at 4096
 * tokens: 5.6 GB instead of 3.6). */
static void *cpu_mem_alloc(size_t padded)
{
    return padded < CPU_MAP_MIN ? aligned_alloc(CPU_ALIGN, padded) : cpu_map(padded); /* page aligned */
}

static void cpu_mem_free(void *p, size_t padded)
{
    if (!p)
        return;
    if (padded < CPU_MAP_MIN)
        free(p);
    else
        munmap(p, padded);
}

static void cpu_buffer_hint_grows(ag_buffer *b)
{
    const size_t padded = cpu_align(b->size);
    if (!b->borrowed && padded >= CPU_MAP_MIN) /* a mapped block (cpu_mem_alloc) */
        madvise(b->host, padded, MADV_NOHUGEPAGE);
}

static ag_buffer *cpu_buffer_alloc(ag_backend *be, size_t size)
{
    ag_buffer *b = calloc(1, sizeof *b);
    size_t padded = cpu_align(size ? size : 1);
    void *mem = b && padded >= size ? cpu_mem_alloc(padded) : NULL;
    if (!b || !mem) {
        free(b);
        cpu_mem_free(mem, padded);
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
    cpu_repack_forget(buf, 0, buf->size);
    if (!buf->borrowed)
        cpu_mem_free(buf->host, cpu_align(buf->size ? buf->size : 1));
    free(buf);
}

static int cpu_buffer_write(ag_buffer *buf, size_t offset, const void *src, size_t n)
{
    if (offset > buf->size || n > buf->size - offset) {
        ag_set_error("cpu: write of %zu bytes at %zu past the end of a %zu-byte buffer", n, offset, buf->size);
        return -1;
    }
    if (n) {
        cpu_repack_forget(buf, offset, n);
        memcpy((char *)buf->host + offset, src, n);
    }
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
    [AG_OP_CONV1D] = cpu_work_conv1d,
    [AG_OP_CONV_TRANSPOSE1D] = cpu_work_conv_transpose1d,
    [AG_OP_CONV2D] = cpu_work_conv2d,
    [AG_OP_LSTM] = cpu_work_lstm,
    [AG_OP_VQ_ARGMIN] = cpu_work_vq_argmin,
};

static const cpu_priv_fn priv_fns[AG_OP_COUNT] = {
    [AG_OP_ROPE] = cpu_priv_rope,
    [AG_OP_ATTENTION] = cpu_priv_attention,
};

/* Cheap per element and without shared scratch: run on thread 0 alone when small (decode's
 * norms, residual adds, ropes, cache writes, SiLU), so a chain of them needs no barrier. */
static bool serial_op(ag_op op)
{
    switch (op) {
    case AG_OP_UNARY:
    case AG_OP_CPY:
    case AG_OP_ADD:
    case AG_OP_MUL:
    case AG_OP_SCALE:
    case AG_OP_RMS_NORM:
    case AG_OP_LAYER_NORM:
    case AG_OP_ROPE:
    case AG_OP_GET_ROWS: return true;
    default: return false;
    }
}
#define SERIAL_MAX_ELEMS 16384

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
        for (int i = 1; i <= 2; i++)
            if (n->src[i] && (!is_f32c(n->src[i]) || ag_nelements(n->src[i]) != a->ne[2]))
                return false;
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
        return is_f32c(a) && is_f32c(n) && a->ne[0] == 2 * n->ne[0] &&
               (n->op_params[0] == AG_GLU_SIGMOID || n->op_params[0] == AG_GLU_GELU);
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

/* ---------------- compute ----------------
 * Before a graph runs, one pass plans it (plan_graph): which weights come packed, which matmuls
 * reuse the activation the previous one prepared, how much scratch everything needs, and where
 * a barrier is really needed. A barrier goes before a node only when it reads memory an earlier
 * node wrote since the last barrier, or writes memory such a node read or wrote (the threads
 * split consecutive nodes differently, and the planner reuses memory), or when both use the
 * shared scratch. Independent nodes (q, k and v matmuls; the two ropes) then run back to back.
 * AG_CPU_PLAN=1 in the environment prints each graph's node and barrier counts to stderr, =2 the
 * whole plan (which node runs on thread 0 alone, where the barriers are). */

typedef struct {
    ag_graph *g;
    cpu_node_plan *plan;
    char *work, *priv;
    size_t wsize, priv_stride;
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
    *p->failed_node = p->node_idx;
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
        .priv = job->priv + (size_t)ith * job->priv_stride,
        .failed = &job->failed,
        .errbuf = job->errbuf,
        .errlen = sizeof job->errbuf,
        .failed_node = &job->failed_node,
    };
    const size_t n = ag_graph_n_nodes(job->g);
    for (size_t i = 0; i < n; i++) {
        ag_tensor *node = ag_graph_node(job->g, i);
        if (is_noop(node))
            continue;
        /* stop only where every thread learns the same answer: at a barrier */
        if (nth > 1 ? job->plan[i].barrier_before && cpu_pool_barrier_check(job->pool, &job->failed)
                    : atomic_load(&job->failed) != 0)
            break;
        p.plan = &job->plan[i];
        p.node_idx = (long)i;
        if (!job->plan[i].serial) {
            kernels[node->op](&p, node);
        } else if (ith == 0) {
            cpu_params one = p;
            one.nth = 1;
            kernels[node->op](&one, node);
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

/* ---- memory ranges touched since the last barrier ---- */
typedef struct {
    uintptr_t lo, hi;
} span;
typedef struct {
    span *v;
    size_t n, cap;
} spans;

static span span_of(const ag_tensor *t)
{
    const uintptr_t lo = (uintptr_t)cpu_data(t);
    return (span){lo, lo + ag_nbytes(t)};
}

static bool spans_hit(const spans *s, span x)
{
    for (size_t i = 0; i < s->n; i++)
        if (x.lo < s->v[i].hi && s->v[i].lo < x.hi)
            return true;
    return false;
}

static int spans_add(spans *s, span x)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 32;
        span *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = x;
    return 0;
}

typedef struct {
    size_t shared, priv; /* scratch needed: shared by all threads, per thread */
} scratch_need;

static void print_plan(ag_graph *g, const cpu_node_plan *plan, bool nodes)
{
    size_t nb = 0, nn = 0;
    for (size_t i = 0; i < ag_graph_n_nodes(g); i++) {
        const ag_tensor *node = ag_graph_node(g, i);
        if (is_noop(node))
            continue;
        nb += plan[i].barrier_before;
        nn++;
        if (nodes)
            fprintf(stderr, "%s%s %s%s%s%s\n", plan[i].barrier_before ? "--- barrier\n" : "", ag_op_name(node->op),
                    node->name, plan[i].packed ? " (packed weights)" : "", plan[i].act_ready ? " (activation ready)" : "",
                    plan[i].serial ? " [thread 0]" : "");
    }
    fprintf(stderr, "cpu plan: %zu nodes, %zu barriers\n", nn, nb);
}

/* Packs the weights this graph multiplies by that are not packed yet, then plans every node. */
static int plan_graph(cpu_backend *cb, ag_graph *g, cpu_node_plan *plan, scratch_need *need)
{
    const size_t n = ag_graph_n_nodes(g);
    const ag_tensor **pack = malloc((n ? n : 1) * sizeof *pack);
    if (!pack) {
        ag_set_error("cpu: out of memory");
        return -1;
    }
    size_t npack = 0;
    for (size_t i = 0; i < n; i++) {
        const ag_tensor *node = ag_graph_node(g, i);
        if (node->op == AG_OP_MUL_MAT && cpu_repack_eligible(node->src[0]) && !cpu_repack_find(node->src[0]))
            pack[npack++] = node->src[0];
    }
    int rc = cpu_repack_prepare(cb->pool, pack, npack);
    free(pack);
    if (rc != 0)
        return -1;

    /* memory read and written since the last barrier, by all threads and by thread 0 alone */
    spans rd = {0}, wr = {0}, rd1 = {0}, wr1 = {0};
    bool scr_rd = false, scr_wr = false, first = true, prev_packed = false;
    const ag_tensor *prev = NULL;
    rc = 0;
    *need = (scratch_need){0, 0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        const ag_tensor *node = ag_graph_node(g, i);
        if (is_noop(node))
            continue;
        cpu_node_plan *pl = &plan[i];
        size_t shared = 0, priv = 0;
        if (node->op == AG_OP_MUL_MAT) {
            if (cpu_repack_eligible(node->src[0]))
                pl->packed = cpu_repack_find(node->src[0]);
            cpu_mul_mat_scratch(node, pl->packed != NULL, cb->nth, &shared, &priv);
            pl->act_ready = prev && prev->op == AG_OP_MUL_MAT &&
                            cpu_mul_mat_same_act(prev, prev_packed, node, pl->packed != NULL);
        } else {
            if (work_fns[node->op])
                shared = work_fns[node->op](node, cb->nth);
            if (priv_fns[node->op])
                priv = priv_fns[node->op](node);
        }
        if (shared == SIZE_MAX || priv == SIZE_MAX) {
            ag_set_error("cpu: node '%s' (%s): scratch size overflows", node->name, ag_op_name(node->op));
            rc = -1;
            break;
        }
        need->shared = shared > need->shared ? shared : need->shared;
        need->priv = priv > need->priv ? priv : need->priv;
        pl->serial = cb->nth > 1 && serial_op(node->op) && shared == 0 && ag_nelements(node) <= SERIAL_MAX_ELEMS;
        /* a matmul reusing the previous one's shared activation only reads the scratch */
        const bool s_wr = shared > 0 && !pl->act_ready, s_rd = shared > 0;
        const span w = span_of(node);
        /* thread 0 alone is ordered after what thread 0 alone did before */
        bool dep = spans_hit(&rd, w) || spans_hit(&wr, w) || (s_wr && (scr_rd || scr_wr)) || (s_rd && scr_wr);
        if (!pl->serial)
            dep = dep || spans_hit(&rd1, w) || spans_hit(&wr1, w);
        for (int s = 0; s < AG_MAX_SRC && !dep; s++)
            if (node->src[s])
                dep = spans_hit(&wr, span_of(node->src[s])) || (!pl->serial && spans_hit(&wr1, span_of(node->src[s])));
        if (dep && !first) {
            pl->barrier_before = true;
            rd.n = wr.n = rd1.n = wr1.n = 0;
            scr_rd = scr_wr = false;
        }
        spans *r = pl->serial ? &rd1 : &rd, *wv = pl->serial ? &wr1 : &wr;
        for (int s = 0; s < AG_MAX_SRC; s++)
            if (node->src[s] && spans_add(r, span_of(node->src[s])) != 0)
                rc = -1;
        if (spans_add(wv, w) != 0)
            rc = -1;
        scr_rd |= s_rd;
        scr_wr |= s_wr;
        first = false;
        prev = node;
        prev_packed = pl->packed != NULL;
        if (rc)
            ag_set_error("cpu: out of memory");
    }
    free(rd.v);
    free(wr.v);
    free(rd1.v);
    free(wr1.v);
    const char *dbg = getenv("AG_CPU_PLAN");
    if (rc == 0 && dbg && *dbg && *dbg != '0')
        print_plan(g, plan, *dbg == '2');
    return rc;
}

static int cpu_compute(ag_backend *be, ag_graph *g)
{
    cpu_backend *cb = impl_of(be);
    const size_t n = ag_graph_n_nodes(g);
    for (size_t i = 0; i < n; i++) {
        const ag_tensor *node = ag_graph_node(g, i);
        if (!is_noop(node) && check_node(be, node) != 0)
            return -1;
    }
    pthread_mutex_lock(&cb->lock);
    cpu_job *job = calloc(1, sizeof *job);
    cpu_node_plan *plan = calloc(n ? n : 1, sizeof *plan);
    scratch_need need;
    if (!job || !plan) {
        ag_set_error("cpu: out of memory");
        goto fail;
    }
    if (plan_graph(cb, g, plan, &need) != 0)
        goto fail;
    const size_t priv_stride = cpu_align(need.priv), shared = cpu_align(need.shared);
    const size_t total = shared + (size_t)cb->nth * priv_stride;
    if (total > cb->wcap) {
        cpu_mem_free(cb->work, cb->wcap);
        cb->wcap = 0;
        cb->work = cpu_mem_alloc(total);
        if (!cb->work) {
            ag_set_error("cpu: cannot allocate %zu bytes of scratch memory", total);
            goto fail;
        }
        cb->wcap = total;
    }
    job->g = g;
    job->plan = plan;
    job->work = cb->work;
    job->wsize = shared;
    job->priv = cb->work + shared;
    job->priv_stride = priv_stride;
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
    free(plan);
    free(job);
    pthread_mutex_unlock(&cb->lock);
    return rc;
fail:
    free(plan);
    free(job);
    pthread_mutex_unlock(&cb->lock);
    return -1;
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
        cpu_mem_free(cb->work, cb->wcap);
        pthread_mutex_destroy(&cb->lock);
        free(cb);
    }
    free(be);
#if defined(__GLIBC__)
    /* The backend goes when its element stops: what it and its models freed (and the many
     * smaller blocks of a run, in the arenas of threads that are gone) goes back to the system,
     * or a process that starts and stops pipelines keeps it all (see CPU_MAP_MIN). */
    malloc_trim(0);
#endif
}

static const ag_backend_iface cpu_iface = {
    .name = cpu_name,
    .device_name = cpu_device_name,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_hint_grows = cpu_buffer_hint_grows,
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
    const char *core = cpu_blas_core();
    const char *pf = ag_simd_prefetch();
    snprintf(cb->devname, sizeof cb->devname, "CPU, %d threads, %s kernels%s%s%s%s%s", n_threads, ag_simd_level(),
             *pf ? ", prefetch " : "", pf, cpu_have_blas() ? ", OpenBLAS sgemm" : "", core ? " " : "",
             core ? core : "");
    if (ag_backend_turns_attach(be) != 0) {
        cpu_free(be);
        return NULL;
    }
    return be;
}

int ag_backend_cpu_n_threads(ag_backend *be)
{
    if (!be || be->iface != &cpu_iface)
        return 0;
    return impl_of(be)->nth;
}
