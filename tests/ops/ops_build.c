/* Building one fixture case's graph from the graph.h constructors and running it on a backend:
 * inputs come from the fixture (views and permutes applied as the case says), weights get
 * buffers of their own as a model loader gives them, everything else goes through the planner. */
#include "ops_harness.h"

#include "anygpt/error.h"
#include "anygpt/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_IN 8

/* ---------------------------------------------------------------- fixture keys */

static const char *ck(const tcase *c, const char *fmt, ...)
{
    static char key[160];
    int n = snprintf(key, sizeof key, "case.%d.", c->idx);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key + n, sizeof key - (size_t)n, fmt, ap);
    va_end(ap);
    return key;
}

static bool has(const tcase *c, const char *sub) { return ag_gguf_find_key(c->f, ck(c, "%s", sub)) >= 0; }

static int32_t geti(const tcase *c, const char *sub, int32_t def)
{
    int32_t v;
    if (!has(c, sub) || !ag_gguf_get_i32(c->f, ck(c, "%s", sub), &v))
        return def;
    return v;
}

static float getf(const tcase *c, const char *sub, float def)
{
    float v;
    if (!has(c, sub) || !ag_gguf_get_f32(c->f, ck(c, "%s", sub), &v))
        return def;
    return v;
}

/* An i32[4] array key; false when absent or malformed. */
static bool get4(const tcase *c, const char *sub, int64_t out[4])
{
    int64_t k = ag_gguf_find_key(c->f, ck(c, "%s", sub));
    if (k < 0 || ag_gguf_kv_type(c->f, k) != AG_GGUF_ARRAY || ag_gguf_arr_type(c->f, k) != AG_GGUF_INT32 ||
        ag_gguf_arr_n(c->f, k) != 4)
        return false;
    int32_t v[4];
    memcpy(v, ag_gguf_arr_data(c->f, k), sizeof v);
    for (int i = 0; i < 4; i++)
        out[i] = v[i];
    return true;
}

static ag_type type_of(const char *s)
{
    if (s && strcmp(s, "f16") == 0)
        return AG_TYPE_F16;
    if (s && strcmp(s, "i32") == 0)
        return AG_TYPE_I32;
    return AG_TYPE_F32;
}

int32_t ops_geti(const tcase *c, const char *sub, int32_t def) { return geti(c, sub, def); }
float ops_getf(const tcase *c, const char *sub, float def) { return getf(c, sub, def); }
const char *ops_key(const tcase *c, const char *sub) { return ck(c, "%s", sub); }

/* ---------------------------------------------------------------- building a case */

typedef struct {
    ag_ctx *ctx;
    ag_graph *g;
    ag_tensor *leaf[MAX_IN]; /* the stored tensors (NULL for inputs that view another's) */
    const void *data[MAX_IN];
    size_t size[MAX_IN];
    ag_tensor *in[MAX_IN]; /* what the op reads */
    ag_buffer *wbuf[MAX_IN];
    void *wmem[MAX_IN]; /* host memory of borrowed weight buffers */
    ag_tensor *out, *res;
} built;

bool ops_borrow_weights;

static void built_free(built *b)
{
    for (int j = 0; j < MAX_IN; j++) {
        ag_buffer_free(b->wbuf[j]);
        free(b->wmem[j]);
    }
    ag_graph_free(b->g);
    ag_ctx_free(b->ctx);
    memset(b, 0, sizeof *b);
}

static int load_inputs(const tcase *c, built *b, char *why, size_t wl)
{
    if (c->n_src < 0 || c->n_src > MAX_IN) {
        snprintf(why, wl, "fixture: %d inputs", c->n_src);
        return -1;
    }
    for (int j = 0; j < c->n_src; j++) {
        char sub[32];
        snprintf(sub, sizeof sub, "src%d.same_as", j);
        int32_t same = geti(c, sub, -1);
        ag_tensor *base;
        if (same >= 0) {
            if (same >= j || !b->leaf[same]) {
                snprintf(why, wl, "fixture: src%d views bad input %d", j, same);
                return -1;
            }
            base = b->leaf[same];
        } else {
            int64_t ti = ag_gguf_find_tensor(c->f, ck(c, "src%d", j));
            if (ti < 0) {
                snprintf(why, wl, "fixture: tensor src%d missing", j);
                return -1;
            }
            int64_t ne[AG_MAX_DIMS];
            ag_gguf_tensor_ne(c->f, ti, ne);
            base = ag_new_tensor(b->ctx, ag_gguf_tensor_type(c->f, ti), AG_MAX_DIMS, ne);
            if (!base) {
                snprintf(why, wl, "src%d: %s", j, ag_last_error());
                return -1;
            }
            ag_set_name(base, "src%d", j);
            ag_set_input(base);
            b->leaf[j] = base;
            b->data[j] = ag_gguf_tensor_data(c->f, ti);
            b->size[j] = ag_gguf_tensor_size(c->f, ti);
            if (b->size[j] != ag_nbytes(base)) {
                snprintf(why, wl, "src%d: %zu bytes in the file, tensor needs %zu", j, b->size[j], ag_nbytes(base));
                return -1;
            }
        }
        int64_t perm[4], vne[4], vnb[4];
        snprintf(sub, sizeof sub, "src%d.perm", j);
        bool is_perm = get4(c, sub, perm);
        snprintf(sub, sizeof sub, "src%d.view_ne", j);
        bool is_view = get4(c, sub, vne);
        if (is_perm) {
            b->in[j] = ag_permute(b->ctx, base, (int)perm[0], (int)perm[1], (int)perm[2], (int)perm[3]);
        } else if (is_view) {
            snprintf(sub, sizeof sub, "src%d.view_nb", j);
            if (!get4(c, sub, vnb)) {
                snprintf(why, wl, "fixture: src%d view without strides", j);
                return -1;
            }
            size_t nb[4] = {(size_t)vnb[0], (size_t)vnb[1], (size_t)vnb[2], (size_t)vnb[3]};
            snprintf(sub, sizeof sub, "src%d.view_offs", j);
            b->in[j] = ag_view(b->ctx, base, 4, vne, nb, (size_t)geti(c, sub, 0));
        } else {
            b->in[j] = base;
        }
        if (!b->in[j]) {
            snprintf(why, wl, "src%d view: %s", j, ag_last_error());
            return -1;
        }
    }
    return 0;
}

static ag_tensor *build_op(const tcase *c, built *b)
{
    ag_ctx *x = b->ctx;
    ag_tensor **s = b->in;
    const char *op = c->op;
    if (strcmp(op, "cpy") == 0) {
        ag_tensor *dst = c->n_src >= 2 ? s[1]
                                       : ag_new_tensor(x, type_of(ag_gguf_get_str(c->f, ck(c, "dst_type"))),
                                                       AG_MAX_DIMS, s[0]->ne);
        return ag_cpy(x, s[0], dst);
    }
    if (strcmp(op, "cont") == 0)
        return ag_cont(x, s[0]);
    if (strcmp(op, "cast") == 0)
        return ag_cast(x, s[0], type_of(ag_gguf_get_str(c->f, ck(c, "dst_type"))));
    if (strcmp(op, "add") == 0)
        return ag_add(x, s[0], s[1]);
    if (strcmp(op, "mul") == 0)
        return ag_mul(x, s[0], s[1]);
    if (strcmp(op, "scale") == 0)
        return ag_scale(x, s[0], getf(c, "s", 1), getf(c, "bias", 0));
    if (strcmp(op, "rms_norm") == 0)
        return ag_rms_norm(x, s[0], getf(c, "eps", 0));
    if (strcmp(op, "layer_norm") == 0)
        return ag_layer_norm(x, s[0], getf(c, "eps", 0));
    if (strcmp(op, "group_norm") == 0)
        return ag_group_norm(x, s[0], geti(c, "n_groups", 1), getf(c, "eps", 0));
    if (strcmp(op, "softmax") == 0)
        return ag_softmax(x, s[0], c->n_src > 1 ? s[1] : NULL, getf(c, "scale", 1), geti(c, "causal", 0) != 0);
    if (strcmp(op, "rope") == 0)
        return ag_rope(x, s[0], s[1], geti(c, "n_dims", 0), (ag_rope_mode)geti(c, "mode", 0),
                       getf(c, "freq_base", 10000), getf(c, "freq_scale", 1));
    if (strcmp(op, "unary") == 0)
        return ag_unary(x, s[0], (ag_unary_op)geti(c, "unary_op", -1));
    if (strcmp(op, "snake") == 0)
        return ag_snake(x, s[0], s[1]);
    if (strcmp(op, "glu") == 0)
        return ag_glu(x, s[0]);
    if (strcmp(op, "geglu") == 0)
        return ag_geglu(x, s[0]);
    if (strcmp(op, "group_norm_affine") == 0) {
        const int hw = geti(c, "has_w", 0);
        return ag_group_norm_affine(x, s[0], geti(c, "n_groups", 1), getf(c, "eps", 0), hw ? s[1] : NULL,
                                    geti(c, "has_b", 0) ? s[1 + hw] : NULL, geti(c, "silu", 0) != 0);
    }
    if (strcmp(op, "mul_mat") == 0)
        return ag_mul_mat(x, s[0], s[1]);
    if (strcmp(op, "conv1d") == 0)
        return ag_conv1d(x, s[0], s[1], geti(c, "stride", 1), geti(c, "dilation", 1), geti(c, "groups", 1));
    if (strcmp(op, "conv_transpose1d") == 0)
        return ag_conv_transpose1d(x, s[0], s[1], geti(c, "stride", 1));
    if (strcmp(op, "conv2d") == 0)
        return ag_conv2d(x, s[0], s[1], geti(c, "s0", 1), geti(c, "s1", 1), geti(c, "p0", 0), geti(c, "p1", 0),
                         geti(c, "d0", 1), geti(c, "d1", 1));
    if (strcmp(op, "pad") == 0)
        return ag_pad(x, s[0], geti(c, "l0", 0), geti(c, "r0", 0), geti(c, "l1", 0), geti(c, "r1", 0),
                      (ag_pad_mode)geti(c, "mode", 0));
    if (strcmp(op, "upsample") == 0)
        return ag_upsample(x, s[0], geti(c, "f0", 1), geti(c, "f1", 1));
    if (strcmp(op, "get_rows") == 0)
        return ag_get_rows(x, s[0], s[1]);
    if (strcmp(op, "concat") == 0)
        return ag_concat(x, s[0], s[1], geti(c, "dim", 0));
    if (strcmp(op, "lstm") == 0)
        return ag_lstm(x, s[0], s[1], geti(c, "reverse", 0) != 0);
    if (strcmp(op, "lstm_layer") == 0)
        return ag_lstm_layer(x, s[0], s[1], s[2], s[3], s[4], geti(c, "reverse", 0) != 0);
    if (strcmp(op, "vq_argmin") == 0)
        return ag_vq_argmin(x, s[0], s[1]);
    if (strcmp(op, "attention") == 0)
        return ag_attention(x, s[0], s[1], s[2], c->n_src > 3 ? s[3] : NULL, getf(c, "scale", 1),
                            geti(c, "causal", 0) != 0);
    if (strcmp(op, "argmax") == 0)
        return ag_argmax(x, s[0]);
    ag_set_error("unknown op '%s' in the fixture", op);
    return NULL;
}

/* The first node this backend cannot run, or NULL. */
static const ag_tensor *unsupported_node(ag_backend *be, ag_graph *g)
{
    for (size_t i = 0; i < ag_graph_n_nodes(g); i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        if (n->op != AG_OP_VIEW && !ag_backend_supports_node(be, n))
            return n;
    }
    return NULL;
}

static void describe_node(const ag_tensor *n, char *out, size_t len)
{
    if (n->op == AG_OP_MUL_MAT || n->op == AG_OP_GET_ROWS || n->op == AG_OP_CONV1D ||
        n->op == AG_OP_CONV_TRANSPOSE1D || n->op == AG_OP_CONV2D || n->op == AG_OP_LSTM)
        snprintf(out, len, "%s %s", ag_op_name(n->op), ag_type_name(n->src[n->op == AG_OP_MUL_MAT ||
                                                                            n->op == AG_OP_GET_ROWS ? 0 : 1]->type));
    else if (n->op == AG_OP_CPY)
        snprintf(out, len, "cpy %s->%s", ag_type_name(n->src[0]->type), ag_type_name(n->type));
    else if (n->op == AG_OP_ATTENTION)
        snprintf(out, len, "attention k %s", ag_type_name(n->src[1]->type));
    else
        snprintf(out, len, "%s", ag_op_name(n->op));
}

/* Weights go to buffers of their own (as a model loader does), inputs through the planner. */
static int place_and_fill(const tcase *c, built *b, ag_backend *be, ag_allocator *alloc, char *why, size_t wl)
{
    int32_t wmask = geti(c, "weights", 0);
    for (int j = 0; j < c->n_src; j++) {
        if (!b->leaf[j] || !(wmask & (1 << j)))
            continue;
        b->leaf[j]->flags |= AG_FLAG_PARAM;
        b->leaf[j]->flags &= ~AG_FLAG_INPUT;
        if (ops_borrow_weights && be->iface->buffer_from_host) {
            /* weights in memory the caller owns, as a mapped model file: the cpu backend keeps
             * such weights packed for its matmul kernels */
            const size_t sz = (b->size[j] + 63) / 64 * 64;
            b->wmem[j] = aligned_alloc(64, sz ? sz : 64);
            if (b->wmem[j])
                memcpy(b->wmem[j], b->data[j], b->size[j]);
            b->wbuf[j] = b->wmem[j] ? ag_buffer_from_host(be, b->wmem[j], b->size[j]) : NULL;
            if (!b->wbuf[j] || ag_tensor_bind(b->leaf[j], b->wbuf[j], 0) != 0) {
                snprintf(why, wl, "weight src%d: %s", j, b->wmem[j] ? ag_last_error() : "out of memory");
                return -1;
            }
            continue;
        }
        b->wbuf[j] = ag_buffer_alloc(be, b->size[j]);
        if (!b->wbuf[j] || ag_tensor_bind(b->leaf[j], b->wbuf[j], 0) != 0 ||
            ag_tensor_set(b->leaf[j], b->data[j], 0, b->size[j]) != 0) {
            snprintf(why, wl, "weight src%d: %s", j, ag_last_error());
            return -1;
        }
    }
    if (ag_allocator_alloc_graph(alloc, b->g) != 0) {
        snprintf(why, wl, "allocate: %s", ag_last_error());
        return -1;
    }
    for (int j = 0; j < c->n_src; j++) {
        if (!b->leaf[j] || (wmask & (1 << j)))
            continue;
        if (ag_tensor_set(b->leaf[j], b->data[j], 0, b->size[j]) != 0) {
            snprintf(why, wl, "input src%d: %s", j, ag_last_error());
            return -1;
        }
    }
    return 0;
}

double ops_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read a contiguous F32/F16/I32 tensor into doubles. */
static int read_values(const ag_tensor *t, result *r)
{
    if (!ag_is_contiguous(t)) {
        snprintf(r->why, sizeof r->why, "result is not contiguous");
        return -1;
    }
    const int64_t n = ag_nelements(t);
    const size_t bytes = ag_nbytes(t);
    void *raw = malloc(bytes ? bytes : 1);
    r->v = malloc((size_t)(n ? n : 1) * sizeof *r->v);
    if (!raw || !r->v || ag_tensor_get(t, raw, 0, bytes) != 0) {
        snprintf(r->why, sizeof r->why, "read result: %s", raw && r->v ? ag_last_error() : "out of memory");
        free(raw);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        switch (t->type) {
        case AG_TYPE_F32: r->v[i] = ((const float *)raw)[i]; break;
        case AG_TYPE_F16: r->v[i] = ag_fp16_to_fp32(((const ag_fp16 *)raw)[i]); break;
        case AG_TYPE_I32: r->v[i] = ((const int32_t *)raw)[i]; break;
        default:
            free(raw);
            snprintf(r->why, sizeof r->why, "result of type %s", ag_type_name(t->type));
            return -1;
        }
    }
    r->n = n;
    memcpy(r->ne, t->ne, sizeof r->ne);
    free(raw);
    return 0;
}

void ops_run_case(const tcase *c, ag_backend *be, ag_allocator *alloc, result *r)
{
    built b = {0};
    memset(r, 0, sizeof *r);
    r->st = RUN_FAIL;
    b.ctx = ag_ctx_new(64);
    b.g = ag_graph_new(b.ctx, 128);
    if (!b.ctx || !b.g) {
        snprintf(r->why, sizeof r->why, "out of memory");
        goto done;
    }
    if (load_inputs(c, &b, r->why, sizeof r->why) != 0)
        goto done;
    b.out = build_op(c, &b);
    if (!b.out) {
        snprintf(r->why, sizeof r->why, "constructor: %s", ag_last_error());
        goto done;
    }
    int32_t rs = geti(c, "result_src", -1);
    b.res = rs >= 0 && rs < c->n_src && b.leaf[rs] ? b.leaf[rs] : b.out;
    ag_set_output(b.res);
    if (ag_graph_expand(b.g, b.out) != 0) {
        snprintf(r->why, sizeof r->why, "graph: %s", ag_last_error());
        goto done;
    }
    const ag_tensor *un = unsupported_node(be, b.g);
    if (un) {
        char what[64];
        describe_node(un, what, sizeof what);
        snprintf(r->why, sizeof r->why, "%s does not implement %s yet", ag_backend_name(be), what);
        r->st = RUN_SKIP;
        goto done;
    }
    if (place_and_fill(c, &b, be, alloc, r->why, sizeof r->why) != 0)
        goto done;
    double t0 = ops_now();
    if (ag_backend_compute(be, b.g) != 0) {
        snprintf(r->why, sizeof r->why, "compute: %s", ag_last_error());
        goto done;
    }
    r->seconds = ops_now() - t0;
    if (read_values(b.res, r) == 0)
        r->st = RUN_OK;
done:
    built_free(&b);
}
