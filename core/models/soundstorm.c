/* SoundStorm on the graph API: the conformer forward pass (one graph, reused for every decoding
 * pass) and AnyGPT's masked decoding on the host. Activations are [dim, N] (features
 * innermost); the conv module's depthwise convolution runs on a transposed [N, C] copy.
 * Block: x += FF1/2; x += Attn (NeoX rotary, full attention); x += Conv; x += FF2/2; LN.
 * The masked decoding is in soundstorm_decode.c. */
#include "anygpt/soundstorm.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "soundstorm_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SS_MAX_TENSORS 4096

struct ag_soundstorm {
    ag_backend *be;
    ag_weights *w;
    ag_soundstorm_info info;
    float theta, eps, chan_eps;
    ag_ctx *ctx;
    ag_allocator *alloc;
    /* the graph of the current length */
    ag_graph *g;
    int64_t g_n;
    ag_tensor *in_ids, *in_cond, *in_pos, *out_logits;
    ag_soundstorm_timing timing; /* of the last generate */
};

static ag_tensor *wget(ag_soundstorm *m, int n_dims, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ag_tensor *wget(ag_soundstorm *m, int n_dims, const int64_t *ne, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return ag_weights_get_shaped(m->w, name, n_dims, ne);
}

/* Contiguous transpose of x [A, B] -> [B, A] (CPY wants a unit-strided dim 0: view [1, B, A]). */
static ag_tensor *transpose_copy(ag_ctx *ctx, ag_tensor *x)
{
    if (!x)
        return NULL;
    const int64_t a = x->ne[0], b = x->ne[1];
    ag_tensor *v = ag_view(ctx, x, 3, (const int64_t[]){1, b, a}, (const size_t[]){x->nb[0], x->nb[1], x->nb[0]}, 0);
    ag_tensor *c = v ? ag_cont(ctx, v) : NULL;
    return c ? ag_reshape_2d(ctx, c, b, a) : NULL;
}

static ag_tensor *norm(ag_soundstorm *m, ag_tensor *x, const char *name)
{
    const int64_t d = m->info.dim;
    ag_tensor *w = wget(m, 1, &d, "%s.weight", name), *b = wget(m, 1, &d, "%s.bias", name);
    if (!x || !w || !b)
        return NULL;
    return ag_add(m->ctx, ag_mul(m->ctx, ag_layer_norm(m->ctx, x, m->eps), w), b);
}

/* y = W x + b with W [in, out] */
static ag_tensor *linear(ag_soundstorm *m, ag_tensor *x, const char *name, int64_t in, int64_t out, bool bias)
{
    ag_tensor *w = wget(m, 2, (const int64_t[]){in, out}, "%s.weight", name);
    ag_tensor *b = bias ? wget(m, 1, &out, "%s.bias", name) : NULL;
    if (!x || !w || (bias && !b))
        return NULL;
    ag_tensor *y = ag_mul_mat(m->ctx, w, x);
    return bias ? ag_add(m->ctx, y, b) : y;
}

static ag_tensor *ffn(ag_soundstorm *m, ag_tensor *x, int l, const char *which)
{
    char n[64];
    snprintf(n, sizeof n, "blk.%d.%s_norm", l, which);
    ag_tensor *h = norm(m, x, n);
    snprintf(n, sizeof n, "blk.%d.%s_up", l, which);
    h = ag_silu(m->ctx, linear(m, h, n, m->info.dim, m->info.ff_dim, true));
    snprintf(n, sizeof n, "blk.%d.%s_down", l, which);
    h = linear(m, h, n, m->info.ff_dim, m->info.dim, true);
    return ag_add(m->ctx, x, ag_scale(m->ctx, h, 0.5f, 0.0f));
}

/* [inner, N] -> rotated heads [Dh, H, N] */
static ag_tensor *heads_rope(ag_soundstorm *m, ag_tensor *t, ag_tensor *pos, bool rope)
{
    const int64_t dh = m->info.dim_head, h = m->info.heads;
    t = t ? ag_reshape_3d(m->ctx, t, dh, h, t->ne[1]) : NULL;
    if (t && rope)
        t = ag_rope(m->ctx, t, pos, (int)dh, AG_ROPE_NEOX, m->theta, 1.0f);
    /* attention wants [Dh, N, H]: a strided view is enough */
    return t ? ag_permute(m->ctx, t, 0, 2, 1, 3) : NULL;
}

static ag_tensor *attn(ag_soundstorm *m, ag_tensor *x, int l, ag_tensor *pos)
{
    char n[64];
    const int64_t d = m->info.dim, inner = (int64_t)m->info.heads * m->info.dim_head;
    snprintf(n, sizeof n, "blk.%d.attn_norm", l);
    ag_tensor *h = norm(m, x, n);
    snprintf(n, sizeof n, "blk.%d.attn_q", l);
    ag_tensor *q = heads_rope(m, linear(m, h, n, d, inner, false), pos, true);
    snprintf(n, sizeof n, "blk.%d.attn_k", l);
    ag_tensor *k = heads_rope(m, linear(m, h, n, d, inner, false), pos, true);
    snprintf(n, sizeof n, "blk.%d.attn_v", l);
    ag_tensor *v = heads_rope(m, linear(m, h, n, d, inner, false), pos, false);
    if (!q || !k || !v)
        return NULL;
    ag_tensor *o = ag_attention(m->ctx, q, k, v, NULL, 1.0f / sqrtf((float)m->info.dim_head), false);
    o = o ? ag_reshape_2d(m->ctx, o, inner, x->ne[1]) : NULL;
    snprintf(n, sizeof n, "blk.%d.attn_out", l);
    return ag_add(m->ctx, x, linear(m, o, n, inner, d, true));
}

/* LN -> 1x1 conv -> GLU -> depthwise conv (zero "same" pad) -> SiLU -> ChanLayerNorm -> 1x1.
 * ChanLayerNorm is (x - mean) * rsqrt(max(var, eps)) * gamma; layer_norm gives
 * rsqrt(var + eps): the two differ by at most eps / (2 var) relatively (1e-6 / 2 var). */
static ag_tensor *conv_module(ag_soundstorm *m, ag_tensor *x, int l)
{
    char n[64];
    ag_ctx *ctx = m->ctx;
    const int64_t d = m->info.dim, ci = m->info.conv_dim, k = m->info.conv_kernel, len = x->ne[1];
    snprintf(n, sizeof n, "blk.%d.conv_norm", l);
    ag_tensor *h = norm(m, x, n);
    snprintf(n, sizeof n, "blk.%d.conv_pw1", l);
    h = ag_glu(ctx, linear(m, h, n, d, 2 * ci, true));
    ag_tensor *dw = wget(m, 3, (const int64_t[]){k, 1, ci}, "blk.%d.conv_dw.weight", l);
    ag_tensor *dwb = wget(m, 2, (const int64_t[]){1, ci}, "blk.%d.conv_dw.bias", l);
    ag_tensor *gamma = wget(m, 1, &ci, "blk.%d.conv_gamma", l);
    if (!h || !dw || !dwb || !gamma)
        return NULL;
    h = transpose_copy(ctx, h); /* [N, ci] */
    h = ag_pad(ctx, h, (int)(k / 2), (int)(k / 2), 0, 0, AG_PAD_ZERO);
    h = h ? ag_conv1d(ctx, ag_reshape_3d(ctx, h, len + 2 * (k / 2), ci, 1), dw, 1, 1, (int)ci) : NULL;
    h = h ? ag_silu(ctx, ag_add(ctx, ag_reshape_2d(ctx, h, len, ci), dwb)) : NULL;
    h = transpose_copy(ctx, h); /* [ci, N] */
    h = ag_mul(ctx, ag_layer_norm(ctx, h, m->chan_eps), gamma);
    snprintf(n, sizeof n, "blk.%d.conv_pw2", l);
    return ag_add(ctx, x, linear(m, h, n, ci, d, true));
}

/* Graph for n frames: inputs ids [n * n_q] (level-major, q * (K + 1) + token), cond [n],
 * pos [n]; output logits [K, n, n_q]. */
static int build(ag_soundstorm *m, int64_t n)
{
    const ag_soundstorm_info *in = &m->info;
    ag_ctx *ctx = m->ctx;
    const int64_t d = in->dim, nq = in->n_q, K = in->codebook_size;
    ag_graph_free(m->g);
    m->g = NULL;
    m->g_n = 0;
    ag_ctx_reset(ctx);
    ag_graph *g = ag_graph_new(ctx, SS_MAX_TENSORS);
    if (!g)
        return -1;
    m->in_ids = ag_new_1d(ctx, AG_TYPE_I32, n * nq);
    m->in_cond = ag_new_1d(ctx, AG_TYPE_I32, n);
    m->in_pos = ag_new_1d(ctx, AG_TYPE_I32, n);
    if (!m->in_ids || !m->in_cond || !m->in_pos)
        goto fail;
    ag_set_input(m->in_ids);
    ag_set_input(m->in_cond);
    ag_set_input(m->in_pos);
    ag_tensor *ce = wget(m, 2, (const int64_t[]){d, nq * (K + 1)}, "code_embd");
    ag_tensor *se = wget(m, 2, (const int64_t[]){d, in->semantic_vocab}, "sem_embd");
    if (!ce || !se)
        goto fail;
    ag_tensor *e = ag_get_rows(ctx, ce, m->in_ids); /* [d, n * nq], level-major */
    ag_tensor *x = ag_get_rows(ctx, se, m->in_cond);
    for (int64_t q = 0; q < nq && e && x; q++) {
        ag_tensor *v = ag_view(ctx, e, 2, (const int64_t[]){d, n}, (const size_t[]){e->nb[0], e->nb[1]},
                               (size_t)(q * n) * e->nb[1]);
        x = ag_add(ctx, x, v);
    }
    for (int l = 0; l < in->depth && x; l++) {
        char nm[64];
        x = ffn(m, x, l, "ff1");
        x = x ? attn(m, x, l, m->in_pos) : NULL;
        x = x ? conv_module(m, x, l) : NULL;
        x = x ? ffn(m, x, l, "ff2") : NULL;
        snprintf(nm, sizeof nm, "blk.%d.post_norm", l);
        x = norm(m, x, nm);
    }
    ag_tensor *h = linear(m, x, "head", d, nq * d, true);
    h = h ? norm(m, ag_reshape_3d(ctx, h, d, nq, n), "logits_norm") : NULL;
    h = h ? ag_cont(ctx, ag_permute(ctx, h, 0, 2, 1, 3)) : NULL; /* [d, n, nq] */
    ag_tensor *lw = wget(m, 3, (const int64_t[]){d, K, nq}, "logits.weight");
    ag_tensor *lb = wget(m, 3, (const int64_t[]){K, 1, nq}, "logits.bias");
    if (!h || !lw || !lb)
        goto fail;
    ag_tensor *y = ag_add(ctx, ag_mul_mat(ctx, lw, h), lb);
    if (!y || ag_graph_expand(g, y) != 0)
        goto fail;
    ag_set_output(y);
    m->out_logits = y;
    if (ag_allocator_alloc_graph(m->alloc, g) != 0)
        goto fail;
    m->g = g;
    m->g_n = n;
    return 0;
fail:
    ag_graph_free(g);
    return -1;
}

static bool get_u32(const ag_gguf *f, const char *key, int32_t *out, int32_t lo, int32_t hi, const char *path)
{
    char k[96];
    uint32_t v;
    snprintf(k, sizeof k, "soundstorm.%s", key);
    if (!ag_gguf_get_u32(f, k, &v) || v < (uint32_t)lo || v > (uint32_t)hi) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", path, k);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static bool get_f32(const ag_gguf *f, const char *key, float *out, const char *path)
{
    char k[96];
    snprintf(k, sizeof k, "soundstorm.%s", key);
    if (!ag_gguf_get_f32(f, k, out) || !(*out > 0.0f) || !isfinite(*out)) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", path, k);
        return false;
    }
    return true;
}

static int read_hparams(ag_soundstorm *m, const char *path)
{
    const ag_gguf *f = ag_weights_gguf(m->w);
    ag_soundstorm_info *in = &m->info;
    if (!get_u32(f, "dim", &in->dim, 1, 16384, path) || !get_u32(f, "depth", &in->depth, 1, 256, path) ||
        !get_u32(f, "heads", &in->heads, 1, 256, path) || !get_u32(f, "dim_head", &in->dim_head, 2, 1024, path) ||
        !get_u32(f, "ff_dim", &in->ff_dim, 1, 65536, path) || !get_u32(f, "conv_dim", &in->conv_dim, 1, 65536, path) ||
        !get_u32(f, "conv_kernel", &in->conv_kernel, 1, 255, path) ||
        !get_u32(f, "codebook_size", &in->codebook_size, 2, 1 << 16, path) ||
        !get_u32(f, "num_quantizers", &in->n_q, 1, 64, path) ||
        !get_u32(f, "semantic_vocab", &in->semantic_vocab, 1, AG_MAX_MODEL_DIM, path) ||
        !get_f32(f, "rope_theta", &m->theta, path) || !get_f32(f, "norm_eps", &m->eps, path) ||
        !get_f32(f, "chan_norm_eps", &m->chan_eps, path))
        return -1;
    if (in->dim_head % 2 || in->conv_kernel % 2 == 0) {
        ag_set_error("%s: unsupported shape (dim_head %d must be even, conv_kernel %d odd)", path, in->dim_head,
                     in->conv_kernel);
        return -1;
    }
    return 0;
}

ag_soundstorm *ag_soundstorm_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user)
{
    ag_soundstorm *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error("out of memory");
        return NULL;
    }
    m->be = be;
    m->w = ag_weights_load(be, path, "soundstorm", progress, user);
    if (!m->w || read_hparams(m, path) != 0)
        goto fail;
    m->ctx = ag_ctx_new(SS_MAX_TENSORS);
    m->alloc = ag_allocator_new(be);
    /* validate every weight now by building the graph for one frame */
    if (!m->ctx || !m->alloc || build(m, 1) != 0)
        goto fail;
    ag_clear_error();
    return m;
fail:
    ag_soundstorm_free(m);
    return NULL;
}

void ag_soundstorm_free(ag_soundstorm *m)
{
    if (!m)
        return;
    ag_graph_free(m->g);
    ag_allocator_free(m->alloc);
    ag_ctx_free(m->ctx);
    ag_weights_free(m->w);
    free(m);
}

const ag_soundstorm_info *ag_soundstorm_info_of(const ag_soundstorm *m) { return &m->info; }

ag_soundstorm_timing *ss_timing(ag_soundstorm *m) { return &m->timing; }

void ag_soundstorm_last_timing(const ag_soundstorm *m, ag_soundstorm_timing *t) { *t = m->timing; }

/* Runs the network on a grid already validated; raw logits [n_q][n][K] (the graph's layout).
 * scratch: n * n_q ints. */
int ss_run(ag_soundstorm *m, const int32_t *tokens, const int32_t *cond, int64_t n, int32_t *scratch, float *raw)
{
    const int64_t nq = m->info.n_q, K = m->info.codebook_size;
    if (m->g_n != n && build(m, n) != 0)
        return -1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = 0; q < nq; q++)
            scratch[q * n + i] = (int32_t)(q * (K + 1) + tokens[i * nq + q]);
    if (ag_tensor_set(m->in_ids, scratch, 0, (size_t)(n * nq) * sizeof(int32_t)) != 0 ||
        ag_tensor_set(m->in_cond, cond, 0, (size_t)n * sizeof(int32_t)) != 0)
        return -1;
    for (int64_t i = 0; i < n; i++)
        scratch[i] = (int32_t)i;
    return ag_tensor_set(m->in_pos, scratch, 0, (size_t)n * sizeof(int32_t)) != 0 ||
                   ag_backend_compute(m->be, m->g) != 0 ||
                   ag_tensor_get(m->out_logits, raw, 0, (size_t)(n * nq * K) * sizeof(float)) != 0
               ? -1
               : 0;
}

int ss_check_len(int64_t n)
{
    if (n < 1 || n > AG_SOUNDSTORM_MAX_FRAMES) {
        ag_set_error("soundstorm: %lld frames (1..%d accepted)", (long long)n, AG_SOUNDSTORM_MAX_FRAMES);
        return -1;
    }
    return 0;
}

int ss_check_ids(const int32_t *v, int64_t n, int64_t stride, int32_t hi, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        if (v[i * stride] < 0 || v[i * stride] > hi) {
            ag_set_error("soundstorm: %s %d at frame %lld outside 0..%d", what, v[i * stride], (long long)i, hi);
            return -1;
        }
    }
    return 0;
}

int ss_check_prompt(const ag_soundstorm_info *in, const int32_t *prompt, int64_t tp)
{
    const int64_t L = in->n_q + 1;
    if (tp == 0)
        return 0;
    if (ss_check_ids(prompt, tp, L, in->semantic_vocab - 1, "prompt semantic token") != 0)
        return -1;
    for (int64_t q = 1; q < L; q++)
        if (ss_check_ids(prompt + q, tp, L, in->codebook_size - 1, "prompt acoustic token") != 0)
            return -1;
    return 0;
}

int ag_soundstorm_forward(ag_soundstorm *m, const int32_t *tokens, const int32_t *cond, int64_t n, float *logits)
{
    const int64_t nq = m->info.n_q, K = m->info.codebook_size;
    if (!tokens || !cond || !logits || ss_check_len(n) != 0)
        return -1;
    for (int64_t q = 0; q < nq; q++)
        if (ss_check_ids(tokens + q, n, nq, (int32_t)K, "token") != 0)
            return -1;
    if (ss_check_ids(cond, n, 1, m->info.semantic_vocab - 1, "semantic token") != 0)
        return -1;
    int32_t *scratch = malloc((size_t)(n * nq) * sizeof *scratch);
    float *tmp = malloc((size_t)(n * nq * K) * sizeof *tmp);
    int rc = -1;
    if (!scratch || !tmp)
        ag_set_error("out of memory");
    else if ((rc = ss_run(m, tokens, cond, n, scratch, tmp)) == 0)
        for (int64_t q = 0; q < nq; q++) /* [nq][n][K] -> [n][nq][K] */
            for (int64_t i = 0; i < n; i++)
                memcpy(logits + (i * nq + q) * K, tmp + (q * n + i) * K, (size_t)K * sizeof(float));
    free(scratch);
    free(tmp);
    return rc;
}
