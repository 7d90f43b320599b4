/* Graph construction: tensor descriptors, views, op constructors (shape and type checks),
 * and the post-order node list a backend executes. */
#include "anygpt/graph.h"
#include "anygpt/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ag_ctx {
    ag_tensor *tensors;
    size_t n, cap;
};

struct ag_graph {
    ag_ctx *ctx;
    ag_tensor **nodes, **leafs;
    size_t n_nodes, n_leafs, cap;
    /* visited set: open addressing on pointers */
    const ag_tensor **seen;
    size_t seen_cap;
};

ag_ctx *ag_ctx_new(size_t max_tensors)
{
    ag_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->tensors = calloc(max_tensors ? max_tensors : 1, sizeof *ctx->tensors);
    if (!ctx->tensors) {
        free(ctx);
        ag_set_error("out of memory for %zu tensor descriptors", max_tensors);
        return NULL;
    }
    ctx->cap = max_tensors;
    return ctx;
}

void ag_ctx_free(ag_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->tensors);
    free(ctx);
}

void ag_ctx_reset(ag_ctx *ctx)
{
    memset(ctx->tensors, 0, ctx->n * sizeof *ctx->tensors);
    ctx->n = 0;
}

size_t ag_ctx_n_tensors(const ag_ctx *ctx) { return ctx->n; }

ag_tensor *ag_ctx_tensor(ag_ctx *ctx, size_t i) { return i < ctx->n ? &ctx->tensors[i] : NULL; }

ag_tensor *ag_ctx_find(ag_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->n; i++)
        if (strcmp(ctx->tensors[i].name, name) == 0)
            return &ctx->tensors[i];
    return NULL;
}

static ag_tensor *alloc_desc(ag_ctx *ctx)
{
    if (ctx->n >= ctx->cap) {
        ag_set_error("tensor context full (%zu descriptors): raise max_tensors", ctx->cap);
        return NULL;
    }
    ag_tensor *t = &ctx->tensors[ctx->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static void set_contiguous_strides(ag_tensor *t)
{
    t->nb[0] = ag_type_block_size(t->type);
    t->nb[1] = ag_row_size(t->type, t->ne[0]);
    for (int i = 2; i < AG_MAX_DIMS; i++)
        t->nb[i] = t->nb[i - 1] * (size_t)t->ne[i - 1];
}

ag_tensor *ag_new_tensor(ag_ctx *ctx, ag_type type, int n_dims, const int64_t *ne)
{
    if (!ag_type_valid(type)) {
        ag_set_error("unknown tensor type %d", (int)type);
        return NULL;
    }
    if (n_dims < 1 || n_dims > AG_MAX_DIMS) {
        ag_set_error("tensor with %d dims (1..%d allowed)", n_dims, AG_MAX_DIMS);
        return NULL;
    }
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0) {
            ag_set_error("tensor dim %d is %lld (must be > 0)", i, (long long)ne[i]);
            return NULL;
        }
    }
    if (ne[0] % ag_type_block_elems(type) != 0) {
        ag_set_error("%s tensor rows must be a multiple of %lld elements (got %lld)", ag_type_name(type),
                     (long long)ag_type_block_elems(type), (long long)ne[0]);
        return NULL;
    }
    ag_tensor *t = alloc_desc(ctx);
    if (!t)
        return NULL;
    t->type = type;
    for (int i = 0; i < AG_MAX_DIMS; i++)
        t->ne[i] = i < n_dims ? ne[i] : 1;
    set_contiguous_strides(t);
    return t;
}

ag_tensor *ag_new_1d(ag_ctx *ctx, ag_type type, int64_t ne0) { return ag_new_tensor(ctx, type, 1, &ne0); }

ag_tensor *ag_new_2d(ag_ctx *ctx, ag_type type, int64_t ne0, int64_t ne1)
{
    const int64_t ne[2] = {ne0, ne1};
    return ag_new_tensor(ctx, type, 2, ne);
}

ag_tensor *ag_new_3d(ag_ctx *ctx, ag_type type, int64_t ne0, int64_t ne1, int64_t ne2)
{
    const int64_t ne[3] = {ne0, ne1, ne2};
    return ag_new_tensor(ctx, type, 3, ne);
}

ag_tensor *ag_new_4d(ag_ctx *ctx, ag_type type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    const int64_t ne[4] = {ne0, ne1, ne2, ne3};
    return ag_new_tensor(ctx, type, 4, ne);
}

void ag_set_name(ag_tensor *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
}

void ag_set_input(ag_tensor *t) { t->flags |= AG_FLAG_INPUT; }
void ag_set_output(ag_tensor *t) { t->flags |= AG_FLAG_OUTPUT; }

/* ---------------- helpers for constructors ---------------- */

static ag_tensor *new_op(ag_ctx *ctx, ag_op op, ag_type type, const int64_t ne[AG_MAX_DIMS])
{
    ag_tensor *t = ag_new_tensor(ctx, type, AG_MAX_DIMS, ne);
    if (t)
        t->op = op;
    return t;
}

static void set_param_f32(ag_tensor *t, int i, float v)
{
    union { int32_t i; float f; } u;
    u.f = v;
    t->op_params[i] = u.i;
}

#define CHECK(cond, ...)                                                                                              \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            ag_set_error(__VA_ARGS__);                                                                                \
            return NULL;                                                                                              \
        }                                                                                                             \
    } while (0)

#define CHECK_SRC(t) CHECK((t) != NULL, "%s: missing source tensor (an earlier op failed?)", __func__)

static ag_tensor *view_of(ag_ctx *ctx, ag_tensor *a, const int64_t ne[AG_MAX_DIMS], const size_t nb[AG_MAX_DIMS],
                          size_t offs)
{
    ag_tensor *t = alloc_desc(ctx);
    if (!t)
        return NULL;
    t->type = a->type;
    memcpy(t->ne, ne, sizeof t->ne);
    memcpy(t->nb, nb, sizeof t->nb);
    t->op = AG_OP_VIEW;
    t->src[0] = a;
    /* collapse view chains so storage is always found in one step */
    t->view_src = a->view_src ? a->view_src : a;
    t->view_offs = (a->view_src ? a->view_offs : 0) + offs;
    snprintf(t->name, sizeof t->name, "%.56s (view)", a->name);
    return t;
}

/* ---------------- views ---------------- */

ag_tensor *ag_reshape(ag_ctx *ctx, ag_tensor *a, int n_dims, const int64_t *ne)
{
    CHECK_SRC(a);
    CHECK(n_dims >= 1 && n_dims <= AG_MAX_DIMS, "reshape: %d dims", n_dims);
    CHECK(ag_is_contiguous(a), "reshape: source '%s' is not contiguous (use ag_cont)", a->name);
    int64_t full[AG_MAX_DIMS] = {1, 1, 1, 1}, n = 1;
    for (int i = 0; i < n_dims; i++) {
        CHECK(ne[i] > 0, "reshape: dim %d is %lld", i, (long long)ne[i]);
        full[i] = ne[i];
        n *= ne[i];
    }
    CHECK(n == ag_nelements(a), "reshape: %lld elements into %lld", (long long)ag_nelements(a), (long long)n);
    CHECK(full[0] % ag_type_block_elems(a->type) == 0, "reshape: row not a whole number of blocks");
    ag_tensor tmp = {.type = a->type};
    memcpy(tmp.ne, full, sizeof full);
    set_contiguous_strides(&tmp);
    return view_of(ctx, a, tmp.ne, tmp.nb, 0);
}

ag_tensor *ag_reshape_2d(ag_ctx *ctx, ag_tensor *a, int64_t ne0, int64_t ne1)
{
    const int64_t ne[2] = {ne0, ne1};
    return ag_reshape(ctx, a, 2, ne);
}

ag_tensor *ag_reshape_3d(ag_ctx *ctx, ag_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2)
{
    const int64_t ne[3] = {ne0, ne1, ne2};
    return ag_reshape(ctx, a, 3, ne);
}

ag_tensor *ag_reshape_4d(ag_ctx *ctx, ag_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    const int64_t ne[4] = {ne0, ne1, ne2, ne3};
    return ag_reshape(ctx, a, 4, ne);
}

ag_tensor *ag_view(ag_ctx *ctx, ag_tensor *a, int n_dims, const int64_t *ne, const size_t *nb, size_t offs)
{
    CHECK_SRC(a);
    CHECK(n_dims >= 1 && n_dims <= AG_MAX_DIMS, "view: %d dims", n_dims);
    int64_t fne[AG_MAX_DIMS] = {1, 1, 1, 1};
    size_t fnb[AG_MAX_DIMS];
    for (int i = 0; i < n_dims; i++) {
        CHECK(ne[i] > 0, "view: dim %d is %lld", i, (long long)ne[i]);
        fne[i] = ne[i];
        fnb[i] = nb[i];
    }
    for (int i = n_dims; i < AG_MAX_DIMS; i++)
        fnb[i] = fnb[i - 1] * (size_t)fne[i - 1];
    CHECK(fnb[0] == ag_type_block_size(a->type), "view: nb[0] must be the element size");
    ag_tensor tmp = {.type = a->type};
    memcpy(tmp.ne, fne, sizeof fne);
    memcpy(tmp.nb, fnb, sizeof fnb);
    size_t base_bytes = ag_nbytes(a->view_src ? a->view_src : a);
    size_t base_offs = (a->view_src ? a->view_offs : 0) + offs;
    CHECK(base_offs + ag_nbytes(&tmp) <= base_bytes, "view of '%s' reaches past its storage (%zu + %zu > %zu)",
          a->name, base_offs, ag_nbytes(&tmp), base_bytes);
    return view_of(ctx, a, fne, fnb, offs);
}

ag_tensor *ag_permute(ag_ctx *ctx, ag_tensor *a, int ax0, int ax1, int ax2, int ax3)
{
    CHECK_SRC(a);
    const int ax[AG_MAX_DIMS] = {ax0, ax1, ax2, ax3};
    int seen = 0;
    for (int i = 0; i < AG_MAX_DIMS; i++) {
        CHECK(ax[i] >= 0 && ax[i] < AG_MAX_DIMS && !(seen & (1 << ax[i])), "permute: axes are not a permutation");
        seen |= 1 << ax[i];
    }
    CHECK(!ag_type_is_quantized(a->type), "permute: quantized tensors cannot be permuted");
    int64_t ne[AG_MAX_DIMS];
    size_t nb[AG_MAX_DIMS];
    for (int i = 0; i < AG_MAX_DIMS; i++) {
        ne[ax[i]] = a->ne[i];
        nb[ax[i]] = a->nb[i];
    }
    return view_of(ctx, a, ne, nb, 0);
}

ag_tensor *ag_transpose(ag_ctx *ctx, ag_tensor *a) { return ag_permute(ctx, a, 1, 0, 2, 3); }

/* ---------------- ops ---------------- */

static bool is_plain(ag_type t) { return t == AG_TYPE_F32 || t == AG_TYPE_F16 || t == AG_TYPE_I32; }

ag_tensor *ag_cpy(ag_ctx *ctx, ag_tensor *a, ag_tensor *b)
{
    CHECK_SRC(a);
    CHECK_SRC(b);
    CHECK(is_plain(a->type) && is_plain(b->type), "cpy: %s -> %s not supported", ag_type_name(a->type),
          ag_type_name(b->type));
    CHECK((a->type == AG_TYPE_I32) == (b->type == AG_TYPE_I32), "cpy: int <-> float conversion not supported");
    CHECK(ag_same_shape(a, b), "cpy: shapes differ");
    CHECK(a->nb[0] == ag_type_block_size(a->type) && b->nb[0] == ag_type_block_size(b->type),
          "cpy: elements must be contiguous along dim 0");
    /* the result is a view of b that carries the copy */
    ag_tensor *t = view_of(ctx, b, b->ne, b->nb, 0);
    if (!t)
        return NULL;
    t->op = AG_OP_CPY;
    t->src[0] = a;
    t->src[1] = b;
    snprintf(t->name, sizeof t->name, "%.56s (copy)", b->name);
    return t;
}

ag_tensor *ag_cast(ag_ctx *ctx, ag_tensor *a, ag_type type)
{
    CHECK_SRC(a);
    CHECK(type == AG_TYPE_F32 || type == AG_TYPE_F16, "cast: to %s not supported", ag_type_name(type));
    CHECK(a->type == AG_TYPE_F32 || a->type == AG_TYPE_F16, "cast: from %s not supported", ag_type_name(a->type));
    CHECK(a->nb[0] == ag_type_block_size(a->type), "cast: elements must be contiguous along dim 0");
    ag_tensor *t = new_op(ctx, AG_OP_CPY, type, a->ne);
    if (t)
        t->src[0] = a;
    return t;
}

ag_tensor *ag_cont(ag_ctx *ctx, ag_tensor *a)
{
    CHECK_SRC(a);
    if (a->type == AG_TYPE_I32) {
        CHECK(a->nb[0] == 4, "cont: elements must be contiguous along dim 0");
        ag_tensor *t = new_op(ctx, AG_OP_CPY, AG_TYPE_I32, a->ne);
        if (t)
            t->src[0] = a;
        return t;
    }
    return ag_cast(ctx, a, a->type);
}

static ag_tensor *binary(ag_ctx *ctx, ag_op op, ag_tensor *a, ag_tensor *b)
{
    CHECK_SRC(a);
    CHECK_SRC(b);
    CHECK(a->type == AG_TYPE_F32 && b->type == AG_TYPE_F32, "%s: both operands must be f32 ('%s' %s, '%s' %s)",
          ag_op_name(op), a->name, ag_type_name(a->type), b->name, ag_type_name(b->type));
    CHECK(ag_is_contiguous(a) && ag_is_contiguous(b), "%s: operands must be contiguous", ag_op_name(op));
    for (int i = 0; i < AG_MAX_DIMS; i++)
        CHECK(b->ne[i] == a->ne[i] || b->ne[i] == 1, "%s: cannot broadcast '%s' dim %d (%lld) to %lld",
              ag_op_name(op), b->name, i, (long long)b->ne[i], (long long)a->ne[i]);
    ag_tensor *t = new_op(ctx, op, AG_TYPE_F32, a->ne);
    if (t) {
        t->src[0] = a;
        t->src[1] = b;
    }
    return t;
}

ag_tensor *ag_add(ag_ctx *ctx, ag_tensor *a, ag_tensor *b) { return binary(ctx, AG_OP_ADD, a, b); }
ag_tensor *ag_mul(ag_ctx *ctx, ag_tensor *a, ag_tensor *b) { return binary(ctx, AG_OP_MUL, a, b); }

static ag_tensor *unary_like(ag_ctx *ctx, ag_op op, ag_tensor *a)
{
    CHECK_SRC(a);
    CHECK(a->type == AG_TYPE_F32, "%s: source '%s' must be f32", ag_op_name(op), a->name);
    CHECK(ag_is_contiguous(a), "%s: source '%s' must be contiguous", ag_op_name(op), a->name);
    ag_tensor *t = new_op(ctx, op, AG_TYPE_F32, a->ne);
    if (t)
        t->src[0] = a;
    return t;
}

ag_tensor *ag_scale(ag_ctx *ctx, ag_tensor *a, float s, float bias)
{
    ag_tensor *t = unary_like(ctx, AG_OP_SCALE, a);
    if (t) {
        set_param_f32(t, 0, s);
        set_param_f32(t, 1, bias);
    }
    return t;
}

ag_tensor *ag_rms_norm(ag_ctx *ctx, ag_tensor *a, float eps)
{
    ag_tensor *t = unary_like(ctx, AG_OP_RMS_NORM, a);
    if (t)
        set_param_f32(t, 0, eps);
    return t;
}

ag_tensor *ag_layer_norm(ag_ctx *ctx, ag_tensor *a, float eps)
{
    ag_tensor *t = unary_like(ctx, AG_OP_LAYER_NORM, a);
    if (t)
        set_param_f32(t, 0, eps);
    return t;
}

ag_tensor *ag_group_norm(ag_ctx *ctx, ag_tensor *a, int n_groups, float eps)
{
    CHECK_SRC(a);
    CHECK(n_groups > 0 && a->ne[2] % n_groups == 0, "group_norm: %lld channels (dim 2) not divisible by %d groups",
          (long long)a->ne[2], n_groups);
    ag_tensor *t = unary_like(ctx, AG_OP_GROUP_NORM, a);
    if (t) {
        t->op_params[0] = n_groups;
        set_param_f32(t, 1, eps);
    }
    return t;
}

ag_tensor *ag_group_norm_affine(ag_ctx *ctx, ag_tensor *a, int n_groups, float eps, ag_tensor *weight,
                                ag_tensor *bias, bool silu)
{
    ag_tensor *t = ag_group_norm(ctx, a, n_groups, eps);
    if (!t)
        return NULL;
    ag_tensor *ab[2] = {weight, bias};
    for (int i = 0; i < 2; i++) {
        ag_tensor *p = ab[i];
        CHECK(!p || (p->type == AG_TYPE_F32 && ag_is_contiguous(p) && ag_nelements(p) == a->ne[2]),
              "group_norm: %s '%s' must hold %lld contiguous f32 (one per channel, dim 2)", i ? "bias" : "weight",
              p ? p->name : "", (long long)a->ne[2]);
        t->src[1 + i] = p;
    }
    t->op_params[2] = silu ? 1 : 0;
    return t;
}

ag_tensor *ag_softmax(ag_ctx *ctx, ag_tensor *a, ag_tensor *mask, float scale, bool causal)
{
    CHECK_SRC(a);
    if (mask) {
        CHECK(mask->type == AG_TYPE_F32 && ag_is_contiguous(mask), "softmax: mask must be contiguous f32");
        CHECK(mask->ne[0] == a->ne[0] && mask->ne[1] == a->ne[1] && (mask->ne[2] == 1 || mask->ne[2] == a->ne[2]) &&
                  mask->ne[3] == 1,
              "softmax: mask shape [%lld,%lld,%lld] does not fit [%lld,%lld,%lld]", (long long)mask->ne[0],
              (long long)mask->ne[1], (long long)mask->ne[2], (long long)a->ne[0], (long long)a->ne[1],
              (long long)a->ne[2]);
    }
    ag_tensor *t = unary_like(ctx, AG_OP_SOFTMAX, a);
    if (t) {
        t->src[1] = mask;
        set_param_f32(t, 0, scale);
        t->op_params[1] = causal ? 1 : 0;
    }
    return t;
}

ag_tensor *ag_rope(ag_ctx *ctx, ag_tensor *a, ag_tensor *pos, int n_dims, ag_rope_mode mode, float freq_base,
                   float freq_scale)
{
    CHECK_SRC(a);
    CHECK_SRC(pos);
    CHECK(pos->type == AG_TYPE_I32 && ag_is_contiguous(pos) && ag_nelements(pos) == a->ne[2],
          "rope: positions must be %lld contiguous i32", (long long)a->ne[2]);
    CHECK(n_dims > 0 && n_dims % 2 == 0 && n_dims <= a->ne[0], "rope: n_dims %d invalid for head dim %lld", n_dims,
          (long long)a->ne[0]);
    CHECK(mode == AG_ROPE_INTERLEAVED || mode == AG_ROPE_NEOX, "rope: unknown mode %d", (int)mode);
    ag_tensor *t = unary_like(ctx, AG_OP_ROPE, a);
    if (t) {
        t->src[1] = pos;
        t->op_params[0] = n_dims;
        t->op_params[1] = (int32_t)mode;
        set_param_f32(t, 2, freq_base);
        set_param_f32(t, 3, freq_scale);
    }
    return t;
}

ag_tensor *ag_unary(ag_ctx *ctx, ag_tensor *a, ag_unary_op op)
{
    CHECK(op >= 0 && op < AG_UNARY_COUNT, "unary: unknown op %d", (int)op);
    ag_tensor *t = unary_like(ctx, AG_OP_UNARY, a);
    if (t)
        t->op_params[0] = (int32_t)op;
    return t;
}

ag_tensor *ag_silu(ag_ctx *ctx, ag_tensor *a) { return ag_unary(ctx, a, AG_UNARY_SILU); }
ag_tensor *ag_gelu(ag_ctx *ctx, ag_tensor *a) { return ag_unary(ctx, a, AG_UNARY_GELU); }
ag_tensor *ag_elu(ag_ctx *ctx, ag_tensor *a) { return ag_unary(ctx, a, AG_UNARY_ELU); }
ag_tensor *ag_tanh(ag_ctx *ctx, ag_tensor *a) { return ag_unary(ctx, a, AG_UNARY_TANH); }
ag_tensor *ag_sigmoid(ag_ctx *ctx, ag_tensor *a) { return ag_unary(ctx, a, AG_UNARY_SIGMOID); }
ag_tensor *ag_relu(ag_ctx *ctx, ag_tensor *a) { return ag_unary(ctx, a, AG_UNARY_RELU); }

ag_tensor *ag_snake(ag_ctx *ctx, ag_tensor *a, ag_tensor *alpha)
{
    CHECK_SRC(a);
    CHECK_SRC(alpha);
    CHECK(alpha->type == AG_TYPE_F32 && ag_is_contiguous(alpha) && ag_nelements(alpha) == a->ne[1],
          "snake: alpha '%s' must hold %lld f32 (one per channel, dim 1)", alpha->name, (long long)a->ne[1]);
    ag_tensor *t = unary_like(ctx, AG_OP_SNAKE, a);
    if (t)
        t->src[1] = alpha;
    return t;
}

static ag_tensor *glu_mode(ag_ctx *ctx, ag_tensor *a, ag_glu_mode mode)
{
    CHECK_SRC(a);
    CHECK(a->ne[0] % 2 == 0, "glu: dim 0 (%lld) must be even", (long long)a->ne[0]);
    CHECK(a->type == AG_TYPE_F32 && ag_is_contiguous(a), "glu: source must be contiguous f32");
    int64_t ne[AG_MAX_DIMS] = {a->ne[0] / 2, a->ne[1], a->ne[2], a->ne[3]};
    ag_tensor *t = new_op(ctx, AG_OP_GLU, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = a;
        t->op_params[0] = (int32_t)mode;
    }
    return t;
}

ag_tensor *ag_glu(ag_ctx *ctx, ag_tensor *a) { return glu_mode(ctx, a, AG_GLU_SIGMOID); }
ag_tensor *ag_geglu(ag_ctx *ctx, ag_tensor *a) { return glu_mode(ctx, a, AG_GLU_GELU); }

static bool is_weight_type(ag_type t)
{
    return t == AG_TYPE_F32 || t == AG_TYPE_F16 || t == AG_TYPE_Q8_0 || t == AG_TYPE_Q4_0;
}

ag_tensor *ag_mul_mat(ag_ctx *ctx, ag_tensor *a, ag_tensor *b)
{
    CHECK_SRC(a);
    CHECK_SRC(b);
    CHECK(is_weight_type(a->type), "mul_mat: weight '%s' of type %s", a->name, ag_type_name(a->type));
    CHECK(b->type == AG_TYPE_F32, "mul_mat: activations '%s' must be f32", b->name);
    CHECK(ag_is_contiguous(a) && ag_is_contiguous(b), "mul_mat: operands must be contiguous ('%s', '%s')", a->name,
          b->name);
    CHECK(a->ne[0] == b->ne[0], "mul_mat: inner dims differ ('%s' %lld vs '%s' %lld)", a->name, (long long)a->ne[0],
          b->name, (long long)b->ne[0]);
    CHECK(b->ne[2] % a->ne[2] == 0 && b->ne[3] % a->ne[3] == 0, "mul_mat: cannot broadcast '%s' over '%s'", a->name,
          b->name);
    int64_t ne[AG_MAX_DIMS] = {a->ne[1], b->ne[1], b->ne[2], b->ne[3]};
    ag_tensor *t = new_op(ctx, AG_OP_MUL_MAT, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = a;
        t->src[1] = b;
    }
    return t;
}

static bool is_conv_weight(const ag_tensor *w)
{
    return (w->type == AG_TYPE_F32 || w->type == AG_TYPE_F16) && ag_is_contiguous(w);
}

ag_tensor *ag_conv1d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, int stride, int dilation, int groups)
{
    CHECK_SRC(x);
    CHECK_SRC(w);
    CHECK(x->type == AG_TYPE_F32 && ag_is_contiguous(x), "conv1d: input must be contiguous f32");
    CHECK(is_conv_weight(w), "conv1d: weight '%s' must be contiguous f32/f16", w->name);
    CHECK(stride >= 1 && dilation >= 1 && groups >= 1, "conv1d: stride/dilation/groups must be >= 1");
    CHECK(x->ne[3] == 1 && w->ne[3] == 1, "conv1d: 4-D tensors not supported");
    const int64_t K = w->ne[0], cin = x->ne[1], cout = w->ne[2];
    CHECK(cin % groups == 0 && cout % groups == 0 && w->ne[1] == cin / groups,
          "conv1d: weight '%s' [%lld,%lld,%lld] does not fit %lld input channels in %d groups", w->name,
          (long long)K, (long long)w->ne[1], (long long)cout, (long long)cin, groups);
    const int64_t span = (int64_t)dilation * (K - 1) + 1;
    CHECK(x->ne[0] >= span, "conv1d: input length %lld shorter than the kernel span %lld", (long long)x->ne[0],
          (long long)span);
    int64_t ne[AG_MAX_DIMS] = {(x->ne[0] - span) / stride + 1, cout, x->ne[2], 1};
    ag_tensor *t = new_op(ctx, AG_OP_CONV1D, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = x;
        t->src[1] = w;
        t->op_params[0] = stride;
        t->op_params[1] = dilation;
        t->op_params[2] = groups;
    }
    return t;
}

ag_tensor *ag_conv_transpose1d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, int stride)
{
    CHECK_SRC(x);
    CHECK_SRC(w);
    CHECK(x->type == AG_TYPE_F32 && ag_is_contiguous(x), "conv_transpose1d: input must be contiguous f32");
    CHECK(is_conv_weight(w), "conv_transpose1d: weight '%s' must be contiguous f32/f16", w->name);
    CHECK(stride >= 1, "conv_transpose1d: stride must be >= 1");
    CHECK(x->ne[3] == 1 && w->ne[3] == 1, "conv_transpose1d: 4-D tensors not supported");
    CHECK(w->ne[2] == x->ne[1], "conv_transpose1d: weight '%s' has %lld input channels, input has %lld", w->name,
          (long long)w->ne[2], (long long)x->ne[1]);
    int64_t ne[AG_MAX_DIMS] = {(x->ne[0] - 1) * stride + w->ne[0], w->ne[1], x->ne[2], 1};
    ag_tensor *t = new_op(ctx, AG_OP_CONV_TRANSPOSE1D, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = x;
        t->src[1] = w;
        t->op_params[0] = stride;
    }
    return t;
}

ag_tensor *ag_conv2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, int s0, int s1, int p0, int p1, int d0, int d1)
{
    CHECK_SRC(x);
    CHECK_SRC(w);
    CHECK(x->type == AG_TYPE_F32 && ag_is_contiguous(x), "conv2d: input must be contiguous f32");
    CHECK(is_conv_weight(w), "conv2d: weight '%s' must be contiguous f32/f16", w->name);
    CHECK(s0 >= 1 && s1 >= 1 && d0 >= 1 && d1 >= 1 && p0 >= 0 && p1 >= 0, "conv2d: bad stride/padding/dilation");
    CHECK(w->ne[2] == x->ne[2], "conv2d: weight '%s' has %lld input channels, input has %lld", w->name,
          (long long)w->ne[2], (long long)x->ne[2]);
    const int64_t sw = (int64_t)d0 * (w->ne[0] - 1) + 1, sh = (int64_t)d1 * (w->ne[1] - 1) + 1;
    CHECK(x->ne[0] + 2 * p0 >= sw && x->ne[1] + 2 * p1 >= sh, "conv2d: input smaller than the kernel");
    int64_t ne[AG_MAX_DIMS] = {(x->ne[0] + 2 * p0 - sw) / s0 + 1, (x->ne[1] + 2 * p1 - sh) / s1 + 1, w->ne[3],
                               x->ne[3]};
    ag_tensor *t = new_op(ctx, AG_OP_CONV2D, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = x;
        t->src[1] = w;
        const int32_t p[6] = {s0, s1, p0, p1, d0, d1};
        memcpy(t->op_params, p, sizeof p);
    }
    return t;
}

ag_tensor *ag_pad(ag_ctx *ctx, ag_tensor *a, int l0, int r0, int l1, int r1, ag_pad_mode mode)
{
    CHECK_SRC(a);
    CHECK(a->type == AG_TYPE_F32 && ag_is_contiguous(a), "pad: source must be contiguous f32");
    CHECK(l0 >= 0 && r0 >= 0 && l1 >= 0 && r1 >= 0, "pad: negative padding");
    CHECK(mode == AG_PAD_ZERO || mode == AG_PAD_REFLECT, "pad: unknown mode %d", (int)mode);
    if (mode == AG_PAD_REFLECT)
        CHECK(l0 < a->ne[0] && r0 < a->ne[0] && ((l1 == 0 && r1 == 0) || (l1 < a->ne[1] && r1 < a->ne[1])),
              "pad: reflect padding (%d,%d,%d,%d) must be smaller than the padded dims [%lld,%lld]", l0, r0, l1, r1,
              (long long)a->ne[0], (long long)a->ne[1]);
    int64_t ne[AG_MAX_DIMS] = {a->ne[0] + l0 + r0, a->ne[1] + l1 + r1, a->ne[2], a->ne[3]};
    ag_tensor *t = new_op(ctx, AG_OP_PAD, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = a;
        const int32_t p[5] = {l0, r0, l1, r1, (int32_t)mode};
        memcpy(t->op_params, p, sizeof p);
    }
    return t;
}

ag_tensor *ag_upsample(ag_ctx *ctx, ag_tensor *a, int f0, int f1)
{
    CHECK_SRC(a);
    CHECK(a->type == AG_TYPE_F32 && ag_is_contiguous(a), "upsample: source must be contiguous f32");
    CHECK(f0 >= 1 && f1 >= 1, "upsample: factors must be >= 1");
    int64_t ne[AG_MAX_DIMS] = {a->ne[0] * f0, a->ne[1] * f1, a->ne[2], a->ne[3]};
    ag_tensor *t = new_op(ctx, AG_OP_UPSAMPLE, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = a;
        t->op_params[0] = f0;
        t->op_params[1] = f1;
    }
    return t;
}

ag_tensor *ag_get_rows(ag_ctx *ctx, ag_tensor *table, ag_tensor *ids)
{
    CHECK_SRC(table);
    CHECK_SRC(ids);
    CHECK(is_weight_type(table->type) && ag_is_contiguous(table) && table->ne[2] == 1 && table->ne[3] == 1,
          "get_rows: table '%s' must be a contiguous 2-D f32/f16/q8_0/q4_0 tensor", table->name);
    CHECK(ids->type == AG_TYPE_I32 && ag_is_contiguous(ids), "get_rows: ids must be contiguous i32");
    int64_t ne[AG_MAX_DIMS] = {table->ne[0], ag_nelements(ids), 1, 1};
    ag_tensor *t = new_op(ctx, AG_OP_GET_ROWS, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = table;
        t->src[1] = ids;
    }
    return t;
}

ag_tensor *ag_concat(ag_ctx *ctx, ag_tensor *a, ag_tensor *b, int dim)
{
    CHECK_SRC(a);
    CHECK_SRC(b);
    CHECK(dim >= 0 && dim < AG_MAX_DIMS, "concat: dim %d", dim);
    CHECK(a->type == AG_TYPE_F32 && b->type == AG_TYPE_F32 && ag_is_contiguous(a) && ag_is_contiguous(b),
          "concat: operands must be contiguous f32");
    int64_t ne[AG_MAX_DIMS];
    for (int i = 0; i < AG_MAX_DIMS; i++) {
        CHECK(i == dim || a->ne[i] == b->ne[i], "concat: dim %d differs (%lld vs %lld)", i, (long long)a->ne[i],
              (long long)b->ne[i]);
        ne[i] = i == dim ? a->ne[i] + b->ne[i] : a->ne[i];
    }
    ag_tensor *t = new_op(ctx, AG_OP_CONCAT, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = a;
        t->src[1] = b;
        t->op_params[0] = dim;
    }
    return t;
}

ag_tensor *ag_lstm(ag_ctx *ctx, ag_tensor *gx, ag_tensor *whh, bool reverse)
{
    CHECK_SRC(gx);
    CHECK_SRC(whh);
    CHECK(gx->type == AG_TYPE_F32 && ag_is_contiguous(gx) && gx->ne[2] == 1 && gx->ne[3] == 1,
          "lstm: gate inputs must be contiguous 2-D f32");
    CHECK((whh->type == AG_TYPE_F32 || whh->type == AG_TYPE_F16) && ag_is_contiguous(whh),
          "lstm: recurrent weight '%s' must be contiguous f32/f16", whh->name);
    const int64_t H = whh->ne[0];
    CHECK(whh->ne[1] == 4 * H && gx->ne[0] == 4 * H, "lstm: shapes do not fit (gx %lld, w_hh [%lld,%lld])",
          (long long)gx->ne[0], (long long)whh->ne[0], (long long)whh->ne[1]);
    int64_t ne[AG_MAX_DIMS] = {H, gx->ne[1], 1, 1};
    ag_tensor *t = new_op(ctx, AG_OP_LSTM, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = gx;
        t->src[1] = whh;
        t->op_params[0] = reverse ? 1 : 0;
    }
    return t;
}

ag_tensor *ag_lstm_layer(ag_ctx *ctx, ag_tensor *x, ag_tensor *w_ih, ag_tensor *w_hh, ag_tensor *b_ih,
                         ag_tensor *b_hh, bool reverse)
{
    ag_tensor *gx = ag_mul_mat(ctx, w_ih, x);
    if (b_ih)
        gx = ag_add(ctx, gx, b_ih);
    if (b_hh)
        gx = ag_add(ctx, gx, b_hh);
    return ag_lstm(ctx, gx, w_hh, reverse);
}

ag_tensor *ag_vq_argmin(ag_ctx *ctx, ag_tensor *x, ag_tensor *codebook)
{
    CHECK_SRC(x);
    CHECK_SRC(codebook);
    CHECK(x->type == AG_TYPE_F32 && ag_is_contiguous(x) && codebook->type == AG_TYPE_F32 &&
              ag_is_contiguous(codebook),
          "vq_argmin: operands must be contiguous f32");
    CHECK(x->ne[0] == codebook->ne[0], "vq_argmin: vector size %lld vs codebook %lld", (long long)x->ne[0],
          (long long)codebook->ne[0]);
    CHECK(x->ne[2] == 1 && x->ne[3] == 1 && codebook->ne[2] == 1 && codebook->ne[3] == 1,
          "vq_argmin: 2-D operands required");
    int64_t ne[AG_MAX_DIMS] = {x->ne[1], 1, 1, 1};
    ag_tensor *t = new_op(ctx, AG_OP_VQ_ARGMIN, AG_TYPE_I32, ne);
    if (t) {
        t->src[0] = x;
        t->src[1] = codebook;
    }
    return t;
}

ag_tensor *ag_attention(ag_ctx *ctx, ag_tensor *q, ag_tensor *k, ag_tensor *v, ag_tensor *mask, float scale,
                        bool causal)
{
    CHECK_SRC(q);
    CHECK_SRC(k);
    CHECK_SRC(v);
    CHECK(q->type == AG_TYPE_F32, "attention: q must be f32");
    CHECK((k->type == AG_TYPE_F32 || k->type == AG_TYPE_F16) && (v->type == AG_TYPE_F32 || v->type == AG_TYPE_F16),
          "attention: k/v must be f32 or f16");
    CHECK(q->nb[0] == ag_type_block_size(q->type) && k->nb[0] == ag_type_block_size(k->type) &&
              v->nb[0] == ag_type_block_size(v->type),
          "attention: q/k/v must be contiguous along dim 0");
    CHECK(q->ne[3] == 1 && k->ne[3] == 1 && v->ne[3] == 1, "attention: 4-D operands not supported");
    const int64_t D = q->ne[0], Nq = q->ne[1], H = q->ne[2], Nk = k->ne[1], Hkv = k->ne[2];
    CHECK(k->ne[0] == D, "attention: q head dim %lld vs k %lld", (long long)D, (long long)k->ne[0]);
    CHECK(v->ne[1] == Nk && v->ne[2] == Hkv, "attention: k and v disagree on keys/heads");
    CHECK(H % Hkv == 0, "attention: %lld query heads not a multiple of %lld kv heads", (long long)H, (long long)Hkv);
    if (mask)
        CHECK(mask->type == AG_TYPE_F32 && ag_is_contiguous(mask) && mask->ne[0] == Nk && mask->ne[1] == Nq &&
                  mask->ne[2] == 1 && mask->ne[3] == 1,
              "attention: mask must be contiguous f32 [%lld, %lld]", (long long)Nk, (long long)Nq);
    int64_t ne[AG_MAX_DIMS] = {v->ne[0], H, Nq, 1};
    ag_tensor *t = new_op(ctx, AG_OP_ATTENTION, AG_TYPE_F32, ne);
    if (t) {
        t->src[0] = q;
        t->src[1] = k;
        t->src[2] = v;
        t->src[3] = mask;
        set_param_f32(t, 0, scale);
        t->op_params[1] = causal ? 1 : 0;
    }
    return t;
}

ag_tensor *ag_argmax(ag_ctx *ctx, ag_tensor *a)
{
    CHECK_SRC(a);
    CHECK(a->type == AG_TYPE_F32 && ag_is_contiguous(a) && a->ne[2] == 1 && a->ne[3] == 1,
          "argmax: source must be contiguous 2-D f32");
    int64_t ne[AG_MAX_DIMS] = {a->ne[1], 1, 1, 1};
    ag_tensor *t = new_op(ctx, AG_OP_ARGMAX, AG_TYPE_I32, ne);
    if (t)
        t->src[0] = a;
    return t;
}

/* ---------------- graphs ---------------- */

ag_graph *ag_graph_new(ag_ctx *ctx, size_t max_nodes)
{
    ag_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->ctx = ctx;
    g->cap = max_nodes ? max_nodes : 1;
    g->nodes = calloc(g->cap, sizeof *g->nodes);
    g->leafs = calloc(g->cap, sizeof *g->leafs);
    g->seen_cap = 1;
    while (g->seen_cap < 4 * g->cap)
        g->seen_cap <<= 1;
    g->seen = calloc(g->seen_cap, sizeof *g->seen);
    if (!g->nodes || !g->leafs || !g->seen) {
        ag_graph_free(g);
        ag_set_error("out of memory for a graph of %zu nodes", max_nodes);
        return NULL;
    }
    return g;
}

void ag_graph_free(ag_graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->leafs);
    free(g->seen);
    free(g);
}

/* Returns true if t was already visited; marks it otherwise. */
static bool visit(ag_graph *g, const ag_tensor *t)
{
    size_t h = ((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull;
    for (size_t i = h & (g->seen_cap - 1);; i = (i + 1) & (g->seen_cap - 1)) {
        if (g->seen[i] == t)
            return true;
        if (!g->seen[i]) {
            g->seen[i] = t;
            return false;
        }
    }
}

int ag_graph_expand(ag_graph *g, ag_tensor *root)
{
    if (!root) {
        ag_set_error("graph: output tensor is NULL (an op constructor failed earlier)");
        return -1;
    }
    /* iterative DFS post-order: the stack holds (tensor, next source index) */
    struct frame {
        ag_tensor *t;
        int next;
    };
    size_t scap = 64, sp = 0;
    struct frame *stack = malloc(scap * sizeof *stack);
    if (!stack) {
        ag_set_error("out of memory");
        return -1;
    }
    int rc = 0;
    root->flags |= AG_FLAG_OUTPUT;
    if (visit(g, root))
        goto out;
    stack[sp++] = (struct frame){root, 0};
    while (sp) {
        struct frame *f = &stack[sp - 1];
        if (f->next < AG_MAX_SRC) {
            ag_tensor *s = f->t->src[f->next++];
            if (!s || visit(g, s))
                continue;
            if (sp == scap) {
                struct frame *ns = realloc(stack, 2 * scap * sizeof *stack);
                if (!ns) {
                    ag_set_error("out of memory");
                    rc = -1;
                    goto out;
                }
                stack = ns;
                scap *= 2;
            }
            stack[sp++] = (struct frame){s, 0};
            continue;
        }
        ag_tensor *t = f->t;
        sp--;
        if (g->n_nodes + g->n_leafs >= g->cap) {
            ag_set_error("graph: more than %zu tensors: raise max_nodes", g->cap);
            rc = -1;
            goto out;
        }
        if (t->op == AG_OP_NONE)
            g->leafs[g->n_leafs++] = t;
        else
            g->nodes[g->n_nodes++] = t;
    }
out:
    free(stack);
    return rc;
}

size_t ag_graph_n_nodes(const ag_graph *g) { return g->n_nodes; }
ag_tensor *ag_graph_node(const ag_graph *g, size_t i) { return i < g->n_nodes ? g->nodes[i] : NULL; }
size_t ag_graph_n_leafs(const ag_graph *g) { return g->n_leafs; }
ag_tensor *ag_graph_leaf(const ag_graph *g, size_t i) { return i < g->n_leafs ? g->leafs[i] : NULL; }

const char *ag_op_name(ag_op op)
{
    static const char *const names[AG_OP_COUNT] = {
        [AG_OP_NONE] = "none",
        [AG_OP_VIEW] = "view",
        [AG_OP_CPY] = "cpy",
        [AG_OP_ADD] = "add",
        [AG_OP_MUL] = "mul",
        [AG_OP_SCALE] = "scale",
        [AG_OP_RMS_NORM] = "rms_norm",
        [AG_OP_LAYER_NORM] = "layer_norm",
        [AG_OP_GROUP_NORM] = "group_norm",
        [AG_OP_SOFTMAX] = "softmax",
        [AG_OP_ROPE] = "rope",
        [AG_OP_UNARY] = "unary",
        [AG_OP_SNAKE] = "snake",
        [AG_OP_GLU] = "glu",
        [AG_OP_MUL_MAT] = "mul_mat",
        [AG_OP_CONV1D] = "conv1d",
        [AG_OP_CONV_TRANSPOSE1D] = "conv_transpose1d",
        [AG_OP_CONV2D] = "conv2d",
        [AG_OP_PAD] = "pad",
        [AG_OP_UPSAMPLE] = "upsample",
        [AG_OP_GET_ROWS] = "get_rows",
        [AG_OP_CONCAT] = "concat",
        [AG_OP_LSTM] = "lstm",
        [AG_OP_VQ_ARGMIN] = "vq_argmin",
        [AG_OP_ATTENTION] = "attention",
        [AG_OP_ARGMAX] = "argmax",
    };
    return (op >= 0 && op < AG_OP_COUNT && names[op]) ? names[op] : "invalid";
}
