/* SEED's decode MLP on the graph API (see seed_decode.h). Activations are [features, tokens]
 * (features innermost); the fused qkv output [3 * dim, n] is read as q, k, v through strided
 * views [dh, n, heads] for the attention op. One graph, built once: the input is always n codes. */
#include "seed_decode.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SD_MAX_TENSORS 1024
#define KV_PREFIX "seed-unclip.seed_decode."

struct ag_seed_decode {
    ag_backend *be;
    ag_weights *w;
    ag_seed_decode_info info;
    ag_ctx *ctx;
    ag_allocator *alloc;
    ag_graph *g;
    ag_tensor *in_codes, *out;
};

static ag_tensor *wget(ag_seed_decode *m, int n_dims, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ag_tensor *wget(ag_seed_decode *m, int n_dims, const int64_t *ne, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return ag_weights_get_shaped(m->w, name, n_dims, ne);
}

/* y = W x (+ b), W [in, out] */
static ag_tensor *linear(ag_seed_decode *m, ag_tensor *x, const char *name, int64_t in, int64_t out, bool bias)
{
    ag_tensor *w = wget(m, 2, (const int64_t[]){in, out}, "%s.weight", name);
    ag_tensor *b = bias ? wget(m, 1, &out, "%s.bias", name) : NULL;
    if (!x || !w || (bias && !b))
        return NULL;
    ag_tensor *y = ag_mul_mat(m->ctx, w, x);
    return bias ? ag_add(m->ctx, y, b) : y;
}

static ag_tensor *norm(ag_seed_decode *m, ag_tensor *x, const char *name)
{
    const int64_t d = m->info.dim;
    ag_tensor *w = wget(m, 1, &d, "%s.weight", name), *b = wget(m, 1, &d, "%s.bias", name);
    if (!x || !w || !b)
        return NULL;
    return ag_add(m->ctx, ag_mul(m->ctx, ag_layer_norm(m->ctx, x, m->info.norm_eps), w), b);
}

/* Part s (0 q, 1 k, 2 v) of the fused qkv [3 * dim, n] as [dh, n, heads]: feature index
 * s * dim + h * dh + i, as the reference's reshape(B, N, 3, H, dh) reads it. */
static ag_tensor *qkv_part(ag_seed_decode *m, ag_tensor *qkv, int s)
{
    const int64_t h = m->info.heads, dh = m->info.dim / h, n = qkv->ne[1];
    const size_t es = qkv->nb[0];
    return ag_view(m->ctx, qkv, 3, (const int64_t[]){dh, n, h}, (const size_t[]){es, qkv->nb[1], (size_t)dh * es},
                   (size_t)(s * m->info.dim) * es);
}

/* x += proj(attn(norm1 x)); x += fc2(gelu(fc1(norm2 x))) */
static ag_tensor *block(ag_seed_decode *m, ag_tensor *x, int l)
{
    char n[64];
    const int64_t d = m->info.dim, tokens = x->ne[1];
    snprintf(n, sizeof n, "seed_decode.blk.%d.norm1", l);
    ag_tensor *h = norm(m, x, n);
    snprintf(n, sizeof n, "seed_decode.blk.%d.attn_qkv", l);
    ag_tensor *qkv = linear(m, h, n, d, 3 * d, true);
    if (!qkv)
        return NULL;
    ag_tensor *o = ag_attention(m->ctx, qkv_part(m, qkv, 0), qkv_part(m, qkv, 1), qkv_part(m, qkv, 2), NULL,
                                1.0f / sqrtf((float)(d / m->info.heads)), false);
    o = o ? ag_reshape_2d(m->ctx, o, d, tokens) : NULL;
    snprintf(n, sizeof n, "seed_decode.blk.%d.attn_out", l);
    x = ag_add(m->ctx, x, linear(m, o, n, d, d, true));
    snprintf(n, sizeof n, "seed_decode.blk.%d.norm2", l);
    h = norm(m, x, n);
    snprintf(n, sizeof n, "seed_decode.blk.%d.ffn_up", l);
    h = ag_gelu(m->ctx, linear(m, h, n, d, m->info.ff_dim, true));
    snprintf(n, sizeof n, "seed_decode.blk.%d.ffn_down", l);
    return x ? ag_add(m->ctx, x, linear(m, h, n, m->info.ff_dim, d, true)) : NULL;
}

static int build(ag_seed_decode *m)
{
    const ag_seed_decode_info *in = &m->info;
    ag_ctx *ctx = m->ctx;
    const int64_t n = in->n_codes, cd = in->codebook_dim, d = in->dim;
    m->g = ag_graph_new(ctx, SD_MAX_TENSORS);
    m->in_codes = ag_new_1d(ctx, AG_TYPE_I32, n);
    if (!m->g || !m->in_codes)
        return -1;
    ag_set_input(m->in_codes);
    ag_tensor *cb = wget(m, 2, (const int64_t[]){cd, in->codebook_size}, "seed_decode.codebook");
    ag_tensor *pos = wget(m, 2, (const int64_t[]){d, n}, "seed_decode.pos_embd");
    if (!cb || !pos)
        return -1;
    ag_tensor *x = ag_get_rows(ctx, cb, m->in_codes); /* [cd, n] */
    x = ag_tanh(ctx, linear(m, x, "seed_decode.task_in", cd, cd, true));
    x = ag_add(ctx, linear(m, x, "seed_decode.task_out", cd, d, true), pos);
    for (int l = 0; l < in->depth && x; l++)
        x = block(m, x, l);
    const int64_t dims[4] = {d, in->down[0], in->down[1], in->down[2]};
    for (int j = 0; j < 3 && x; j++) {
        char nm[64];
        snprintf(nm, sizeof nm, "seed_decode.down.%d", j);
        x = linear(m, x, nm, dims[j], dims[j + 1], false);
        if (j < 2)
            x = ag_relu(ctx, x);
    }
    /* [d3, n] contiguous is already token-major: index token * d3 + f */
    x = x ? ag_reshape_2d(ctx, x, n * in->down[2], 1) : NULL;
    x = linear(m, x, "seed_decode.proj", n * in->down[2], in->embed_dim, true);
    if (!x || ag_graph_expand(m->g, x) != 0)
        return -1;
    ag_set_output(x);
    m->out = x;
    return ag_allocator_alloc_graph(m->alloc, m->g);
}

static bool get_u32(const ag_gguf *f, const char *key, int32_t *out, int32_t lo, int32_t hi, const char *path)
{
    char k[96];
    uint32_t v;
    snprintf(k, sizeof k, KV_PREFIX "%s", key);
    if (!ag_gguf_get_u32(f, k, &v) || v < (uint32_t)lo || v > (uint32_t)hi) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", path, k);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static int read_hparams(ag_seed_decode *m)
{
    const ag_gguf *f = ag_weights_gguf(m->w);
    const char *path = ag_weights_path(m->w);
    ag_seed_decode_info *in = &m->info;
    if (!get_u32(f, "n_codes", &in->n_codes, 1, 4096, path) ||
        !get_u32(f, "codebook_size", &in->codebook_size, 1, 1 << 24, path) ||
        !get_u32(f, "codebook_dim", &in->codebook_dim, 1, 65536, path) ||
        !get_u32(f, "dim", &in->dim, 1, 65536, path) ||
        !get_u32(f, "depth", &in->depth, 0, 1024, path) || !get_u32(f, "heads", &in->heads, 1, 4096, path) ||
        !get_u32(f, "ff_dim", &in->ff_dim, 1, AG_MAX_MODEL_DIM, path) ||
        !get_u32(f, "embed_dim", &in->embed_dim, 1, AG_MAX_MODEL_DIM, path))
        return -1;
    const int64_t k = ag_gguf_find_key(f, KV_PREFIX "down_dims");
    if (k < 0 || ag_gguf_kv_type(f, k) != AG_GGUF_ARRAY || ag_gguf_arr_type(f, k) != AG_GGUF_UINT32 ||
        ag_gguf_arr_n(f, k) != 3) {
        ag_set_error("%s: missing or invalid hyper-parameter '" KV_PREFIX "down_dims' (3 u32)", path);
        return -1;
    }
    const uint32_t *dd = ag_gguf_arr_data(f, k);
    for (int j = 0; j < 3; j++) {
        if (dd[j] < 1 || dd[j] > AG_MAX_MODEL_DIM) {
            ag_set_error("%s: invalid hyper-parameter '" KV_PREFIX "down_dims'", path);
            return -1;
        }
        in->down[j] = (int32_t)dd[j];
    }
    if (!ag_gguf_get_f32(f, KV_PREFIX "norm_eps", &in->norm_eps) || !(in->norm_eps > 0.0f) ||
        !isfinite(in->norm_eps)) {
        ag_set_error("%s: missing or invalid hyper-parameter '" KV_PREFIX "norm_eps'", path);
        return -1;
    }
    if (in->dim % in->heads) {
        ag_set_error("%s: seed_decode dim %d is not divisible by its %d heads", path, in->dim, in->heads);
        return -1;
    }
    return 0;
}

ag_seed_decode *ag_seed_decode_new(ag_backend *be, ag_weights *w)
{
    ag_seed_decode *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error("out of memory");
        return NULL;
    }
    m->be = be;
    m->w = w;
    if (read_hparams(m) != 0 || !(m->ctx = ag_ctx_new(SD_MAX_TENSORS)) || !(m->alloc = ag_allocator_new(be)) ||
        build(m) != 0) {
        ag_seed_decode_free(m);
        return NULL;
    }
    ag_clear_error();
    return m;
}

void ag_seed_decode_free(ag_seed_decode *m)
{
    if (!m)
        return;
    ag_graph_free(m->g);
    ag_allocator_free(m->alloc);
    ag_ctx_free(m->ctx);
    free(m);
}

const ag_seed_decode_info *ag_seed_decode_info_of(const ag_seed_decode *m) { return &m->info; }

int ag_seed_decode_run(ag_seed_decode *m, const int32_t *codes, int32_t n_codes, float *embed)
{
    const ag_seed_decode_info *in = &m->info;
    if (!codes || !embed) {
        ag_set_error("seed decode: no codes or no output");
        return -1;
    }
    if (n_codes != in->n_codes) {
        ag_set_error("seed decode: %d codes given, an image is exactly %d", n_codes, in->n_codes);
        return -1;
    }
    for (int32_t i = 0; i < n_codes; i++)
        if (codes[i] < 0 || codes[i] >= in->codebook_size) {
            ag_set_error("seed decode: code %d at index %d is outside 0..%d", codes[i], i, in->codebook_size - 1);
            return -1;
        }
    return ag_tensor_set(m->in_codes, codes, 0, (size_t)n_codes * sizeof *codes) != 0 ||
                   ag_backend_compute(m->be, m->g) != 0 ||
                   ag_tensor_get(m->out, embed, 0, (size_t)in->embed_dim * sizeof *embed) != 0
               ? -1
               : 0;
}
