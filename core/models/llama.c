/* LLaMA decoder on the graph API: RMSNorm, rotary (llama.cpp's permuted Q/K, so interleaved
 * pairs), grouped-query attention over an F16 or F32 KV cache, SwiGLU feed-forward. */
#include "anygpt/llama.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest batch per graph: bounds the intermediate memory of a long prefill. */
#define LLAMA_MAX_BATCH 512

typedef struct {
    ag_tensor *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
    ag_tensor *k_cache, *v_cache; /* [head_dim, n_ctx, n_head_kv] */
} llama_layer;

struct ag_llama {
    ag_backend *be;
    ag_weights *w;
    ag_llama_hparams hp;
    int32_t n_ctx, n_past;
    ag_type kv_type;
    ag_tensor *tok_embd, *output_norm, *output;
    llama_layer *layers;
    ag_ctx *cache_ctx;
    ag_buffer *cache_buf;
    size_t cache_bytes;
    ag_ctx *graph_ctx;
    ag_allocator *alloc;
};

static bool get_u32(const ag_gguf *f, const char *key, int32_t *out, const char *path)
{
    uint32_t v;
    if (!ag_gguf_get_u32(f, key, &v) || v == 0 || v > (1u << 30)) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", path, key);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static int read_hparams(ag_llama *m, const char *path)
{
    const ag_gguf *f = ag_weights_gguf(m->w);
    ag_llama_hparams *hp = &m->hp;
    if (!get_u32(f, "llama.embedding_length", &hp->n_embd, path) || !get_u32(f, "llama.block_count", &hp->n_layer, path) ||
        !get_u32(f, "llama.feed_forward_length", &hp->n_ff, path) ||
        !get_u32(f, "llama.attention.head_count", &hp->n_head, path) ||
        !get_u32(f, "llama.context_length", &hp->n_ctx_train, path))
        return -1;
    hp->n_head_kv = hp->n_head;
    if (ag_gguf_find_key(f, "llama.attention.head_count_kv") >= 0 &&
        !get_u32(f, "llama.attention.head_count_kv", &hp->n_head_kv, path))
        return -1;
    if (hp->n_embd % hp->n_head != 0 || hp->n_head % hp->n_head_kv != 0) {
        ag_set_error("%s: %d heads (%d kv) do not divide embedding %d", path, hp->n_head, hp->n_head_kv, hp->n_embd);
        return -1;
    }
    hp->n_rot = hp->n_embd / hp->n_head;
    if (ag_gguf_find_key(f, "llama.rope.dimension_count") >= 0 &&
        !get_u32(f, "llama.rope.dimension_count", &hp->n_rot, path))
        return -1;
    if (hp->n_rot % 2 != 0 || hp->n_rot > hp->n_embd / hp->n_head) {
        ag_set_error("%s: rope dimension %d invalid for head size %d", path, hp->n_rot, hp->n_embd / hp->n_head);
        return -1;
    }
    if (!ag_gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps) || !(hp->rms_eps > 0)) {
        ag_set_error("%s: missing or invalid 'llama.attention.layer_norm_rms_epsilon'", path);
        return -1;
    }
    hp->rope_base = 10000.0f;
    if (ag_gguf_find_key(f, "llama.rope.freq_base") >= 0 &&
        (!ag_gguf_get_f32(f, "llama.rope.freq_base", &hp->rope_base) || !(hp->rope_base > 1.0f))) {
        ag_set_error("%s: invalid 'llama.rope.freq_base'", path);
        return -1;
    }
    ag_clear_error();
    return 0;
}

static int bind_tensors(ag_llama *m)
{
    const ag_llama_hparams *hp = &m->hp;
    const int64_t hd = hp->n_embd / hp->n_head, kv_dim = hd * hp->n_head_kv;
    m->tok_embd = ag_weights_get(m->w, "token_embd.weight");
    if (!m->tok_embd || m->tok_embd->ne[0] != hp->n_embd || m->tok_embd->ne[2] != 1) {
        if (m->tok_embd)
            ag_set_error("%s: token_embd.weight is not [%d, n_vocab]", ag_weights_path(m->w), hp->n_embd);
        return -1;
    }
    m->hp.n_vocab = (int32_t)m->tok_embd->ne[1];
    const int64_t e = hp->n_embd, v = m->hp.n_vocab;
    m->output_norm = ag_weights_get_shaped(m->w, "output_norm.weight", 1, &e);
    if (!m->output_norm)
        return -1;
    /* tied embeddings: no output.weight in the file */
    m->output = ag_weights_find(m->w, "output.weight");
    if (!m->output)
        m->output = m->tok_embd;
    else if (!ag_weights_get_shaped(m->w, "output.weight", 2, (const int64_t[]){e, v}))
        return -1;
    /* block_count sizes allocations: the file must hold its last block before any is made (a
     * hostile header asks for 2^30 layers in a few bytes) */
    char last[64];
    snprintf(last, sizeof last, "blk.%d.attn_norm.weight", hp->n_layer - 1);
    if (!ag_weights_find(m->w, last)) {
        ag_set_error("%s: llama.block_count is %d but the file has no tensor %s", ag_weights_path(m->w),
                     hp->n_layer, last);
        return -1;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return -1;
    for (int i = 0; i < hp->n_layer; i++) {
        llama_layer *l = &m->layers[i];
        char name[96];
#define GET(field, fmt, nd, ...)                                                                                      \
    do {                                                                                                              \
        snprintf(name, sizeof name, fmt, i);                                                                          \
        l->field = ag_weights_get_shaped(m->w, name, nd, (const int64_t[]){__VA_ARGS__});                             \
        if (!l->field)                                                                                                \
            return -1;                                                                                                \
    } while (0)
        GET(attn_norm, "blk.%d.attn_norm.weight", 1, e);
        GET(wq, "blk.%d.attn_q.weight", 2, e, e);
        GET(wk, "blk.%d.attn_k.weight", 2, e, kv_dim);
        GET(wv, "blk.%d.attn_v.weight", 2, e, kv_dim);
        GET(wo, "blk.%d.attn_output.weight", 2, e, e);
        GET(ffn_norm, "blk.%d.ffn_norm.weight", 1, e);
        GET(w_gate, "blk.%d.ffn_gate.weight", 2, e, hp->n_ff);
        GET(w_up, "blk.%d.ffn_up.weight", 2, e, hp->n_ff);
        GET(w_down, "blk.%d.ffn_down.weight", 2, hp->n_ff, e);
#undef GET
    }
    return 0;
}

static int alloc_cache(ag_llama *m)
{
    const ag_llama_hparams *hp = &m->hp;
    const int64_t hd = hp->n_embd / hp->n_head;
    m->cache_ctx = ag_ctx_new(2 * (size_t)hp->n_layer + 1);
    if (!m->cache_ctx)
        return -1;
    const size_t align = 256;
    size_t total = 0;
    for (int i = 0; i < hp->n_layer; i++) {
        llama_layer *l = &m->layers[i];
        l->k_cache = ag_new_3d(m->cache_ctx, m->kv_type, hd, m->n_ctx, hp->n_head_kv);
        l->v_cache = ag_new_3d(m->cache_ctx, m->kv_type, hd, m->n_ctx, hp->n_head_kv);
        if (!l->k_cache || !l->v_cache)
            return -1;
        ag_set_name(l->k_cache, "cache_k.%d", i);
        ag_set_name(l->v_cache, "cache_v.%d", i);
        l->k_cache->flags |= AG_FLAG_PARAM;
        l->v_cache->flags |= AG_FLAG_PARAM;
        total += 2 * ((ag_nbytes(l->k_cache) + align - 1) / align * align);
        if (total > AG_MAX_KV_CACHE_BYTES) /* checked per layer: the sum cannot wrap */
            break;
    }
    if (total > AG_MAX_KV_CACHE_BYTES) {
        ag_set_error("%s: a KV cache of %d tokens needs more than the %.0f GiB accepted (%.1f GiB counted so far): "
                     "ask for a shorter context (element property context-length)",
                     ag_weights_path(m->w), m->n_ctx, (double)AG_MAX_KV_CACHE_BYTES / (1u << 30),
                     (double)total / (1u << 30));
        return -1;
    }
    m->cache_buf = ag_buffer_alloc(m->be, total);
    if (!m->cache_buf) {
        ag_set_error("cannot allocate the KV cache (%.1f MiB for %d tokens): %s", (double)total / 1048576.0, m->n_ctx,
                     ag_last_error());
        return -1;
    }
    ag_buffer_hint_grows(m->cache_buf); /* written a token at a time: resident as it fills */
    m->cache_bytes = total;
    size_t off = 0;
    for (int i = 0; i < hp->n_layer; i++) {
        llama_layer *l = &m->layers[i];
        if (ag_tensor_bind(l->k_cache, m->cache_buf, off) != 0)
            return -1;
        off += (ag_nbytes(l->k_cache) + align - 1) / align * align;
        if (ag_tensor_bind(l->v_cache, m->cache_buf, off) != 0)
            return -1;
        off += (ag_nbytes(l->v_cache) + align - 1) / align * align;
    }
    return 0;
}

ag_llama *ag_llama_load(ag_backend *be, const char *path, int32_t n_ctx, ag_type kv_type, ag_progress_fn progress,
                        void *user)
{
    if (kv_type != AG_TYPE_F16 && kv_type != AG_TYPE_F32) {
        ag_set_error("llama: KV cache type must be f16 or f32, not %s", ag_type_name(kv_type));
        return NULL;
    }
    ag_llama *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error("out of memory");
        return NULL;
    }
    m->be = be;
    m->kv_type = kv_type;
    m->w = ag_weights_load(be, path, "llama", progress, user);
    if (!m->w || read_hparams(m, path) != 0 || bind_tensors(m) != 0)
        goto fail;
    m->n_ctx = n_ctx > 0 ? n_ctx : m->hp.n_ctx_train;
    if (m->n_ctx < 1 || m->n_ctx > AG_MAX_CONTEXT) {
        ag_set_error("%s: context length %d out of range", path, m->n_ctx);
        goto fail;
    }
    if (alloc_cache(m) != 0)
        goto fail;
    m->graph_ctx = ag_ctx_new(64 * (size_t)m->hp.n_layer + 64);
    m->alloc = ag_allocator_new(be);
    if (!m->graph_ctx || !m->alloc)
        goto fail;
    return m;
fail:
    ag_llama_free(m);
    return NULL;
}

void ag_llama_free(ag_llama *m)
{
    if (!m)
        return;
    ag_allocator_free(m->alloc);
    ag_ctx_free(m->graph_ctx);
    ag_buffer_free(m->cache_buf);
    ag_ctx_free(m->cache_ctx);
    free(m->layers);
    ag_weights_free(m->w);
    free(m);
}

const ag_llama_hparams *ag_llama_hparams_of(const ag_llama *m) { return &m->hp; }
ag_weights *ag_llama_weights(ag_llama *m) { return m->w; }
int32_t ag_llama_n_ctx(const ag_llama *m) { return m->n_ctx; }
int32_t ag_llama_n_past(const ag_llama *m) { return m->n_past; }
size_t ag_llama_cache_bytes(const ag_llama *m) { return m->cache_bytes; }

int ag_llama_truncate(ag_llama *m, int32_t n)
{
    if (n < 0 || n > m->n_past) {
        ag_set_error("llama: cannot truncate the cache to %d tokens (it holds %d)", n, m->n_past);
        return -1;
    }
    m->n_past = n;
    return 0;
}

/* Write cur [hd, heads, n] into positions n_past.. of cache [hd, n_ctx, heads]. */
static ag_tensor *store_cache(ag_ctx *ctx, ag_tensor *cur, ag_tensor *cache, int32_t n_past, int32_t n)
{
    const int64_t hd = cache->ne[0], heads = cache->ne[2];
    ag_tensor *dst = ag_view(ctx, cache, 3, (const int64_t[]){hd, n, heads},
                             (const size_t[]){cache->nb[0], cache->nb[1], cache->nb[2]}, (size_t)n_past * cache->nb[1]);
    return ag_cpy(ctx, ag_permute(ctx, cur, 0, 2, 1, 3), dst);
}

static ag_tensor *cache_view(ag_ctx *ctx, ag_tensor *cache, int32_t n_kv)
{
    return ag_view(ctx, cache, 3, (const int64_t[]){cache->ne[0], n_kv, cache->ne[2]},
                   (const size_t[]){cache->nb[0], cache->nb[1], cache->nb[2]}, 0);
}

/* Puts t (and what it needs) into the graph now, fixing the order of execution, without making
 * it a graph output (expand marks roots as outputs, and outputs are never reused). */
static int expand_now(ag_graph *g, ag_tensor *t)
{
    if (ag_graph_expand(g, t) != 0)
        return -1;
    t->flags &= ~AG_FLAG_OUTPUT;
    return 0;
}

/* Build the graph of one batch; returns the logits tensor or NULL. */
static ag_tensor *build(ag_llama *m, ag_graph *g, ag_tensor *ids, ag_tensor *pos, int32_t n, bool every_logit)
{
    ag_ctx *ctx = m->graph_ctx;
    const ag_llama_hparams *hp = &m->hp;
    const int64_t hd = hp->n_embd / hp->n_head;
    const int32_t n_kv = m->n_past + n;
    const float kq_scale = 1.0f / sqrtf((float)hd);

    ag_tensor *x = ag_get_rows(ctx, m->tok_embd, ids);
    for (int il = 0; il < hp->n_layer; il++) {
        const llama_layer *l = &m->layers[il];
        ag_tensor *h = ag_mul(ctx, ag_rms_norm(ctx, x, hp->rms_eps), l->attn_norm);
        ag_tensor *q = ag_mul_mat(ctx, l->wq, h), *k = ag_mul_mat(ctx, l->wk, h), *v = ag_mul_mat(ctx, l->wv, h);
        /* q, k and v back to back: the cpu backend prepares h once for the three and runs them
         * without a barrier in between */
        if (expand_now(g, q) != 0 || expand_now(g, k) != 0 || expand_now(g, v) != 0)
            return NULL;
        q = ag_reshape_3d(ctx, q, hd, hp->n_head, n);
        k = ag_reshape_3d(ctx, k, hd, hp->n_head_kv, n);
        v = ag_reshape_3d(ctx, v, hd, hp->n_head_kv, n);
        q = ag_rope(ctx, q, pos, hp->n_rot, AG_ROPE_INTERLEAVED, hp->rope_base, 1.0f);
        k = ag_rope(ctx, k, pos, hp->n_rot, AG_ROPE_INTERLEAVED, hp->rope_base, 1.0f);
        /* the cache writes go into the graph before anything that reads the cache */
        if (ag_graph_expand(g, store_cache(ctx, k, l->k_cache, m->n_past, n)) != 0 ||
            ag_graph_expand(g, store_cache(ctx, v, l->v_cache, m->n_past, n)) != 0)
            return NULL;
        ag_tensor *att = ag_attention(ctx, ag_permute(ctx, q, 0, 2, 1, 3), cache_view(ctx, l->k_cache, n_kv),
                                      cache_view(ctx, l->v_cache, n_kv), NULL, kq_scale, true);
        att = ag_reshape_2d(ctx, att, hp->n_embd, n);
        x = ag_add(ctx, x, ag_mul_mat(ctx, l->wo, att));

        h = ag_mul(ctx, ag_rms_norm(ctx, x, hp->rms_eps), l->ffn_norm);
        ag_tensor *gate = ag_mul_mat(ctx, l->w_gate, h), *up = ag_mul_mat(ctx, l->w_up, h);
        if (expand_now(g, gate) != 0 || expand_now(g, up) != 0) /* back to back, as q/k/v */
            return NULL;
        x = ag_add(ctx, x, ag_mul_mat(ctx, l->w_down, ag_mul(ctx, ag_silu(ctx, gate), up)));
        if (!x)
            return NULL;
    }
    if (!every_logit && n > 1) /* only the last position's logits are needed */
        x = ag_view(ctx, x, 2, (const int64_t[]){hp->n_embd, 1}, (const size_t[]){x->nb[0], x->nb[1]},
                    (size_t)(n - 1) * x->nb[1]);
    x = ag_mul(ctx, ag_rms_norm(ctx, x, hp->rms_eps), m->output_norm);
    return ag_mul_mat(ctx, m->output, x);
}

static int eval_batch(ag_llama *m, const int32_t *tokens, int32_t n, float *logits, float *all_logits)
{
    ag_ctx_reset(m->graph_ctx);
    ag_graph *g = ag_graph_new(m->graph_ctx, ag_ctx_n_tensors(m->graph_ctx) + 64 * (size_t)m->hp.n_layer + 64);
    if (!g)
        return -1;
    int rc = -1;
    ag_tensor *ids = ag_new_1d(m->graph_ctx, AG_TYPE_I32, n), *pos = ag_new_1d(m->graph_ctx, AG_TYPE_I32, n);
    if (!ids || !pos)
        goto out;
    ag_set_name(ids, "tokens");
    ag_set_name(pos, "positions");
    ag_set_input(ids);
    ag_set_input(pos);
    ag_tensor *out = build(m, g, ids, pos, n, all_logits != NULL);
    if (!out || ag_graph_expand(g, out) != 0 || ag_allocator_alloc_graph(m->alloc, g) != 0)
        goto out;
    int32_t *p = malloc((size_t)n * sizeof *p);
    if (!p)
        goto out;
    for (int32_t i = 0; i < n; i++)
        p[i] = m->n_past + i;
    int set = ag_tensor_set(ids, tokens, 0, (size_t)n * 4) | ag_tensor_set(pos, p, 0, (size_t)n * 4);
    free(p);
    if (set != 0 || ag_backend_compute(m->be, g) != 0)
        goto out;
    const size_t row = (size_t)m->hp.n_vocab * sizeof(float);
    if (all_logits) {
        if (ag_tensor_get(out, all_logits, 0, row * (size_t)n) != 0)
            goto out;
        if (logits)
            memcpy(logits, all_logits + (size_t)(n - 1) * (size_t)m->hp.n_vocab, row);
    } else if (logits && ag_tensor_get(out, logits, 0, row) != 0) {
        goto out;
    }
    m->n_past += n;
    rc = 0;
out:
    ag_graph_free(g);
    return rc;
}

int ag_llama_eval(ag_llama *m, const int32_t *tokens, int32_t n, float *logits, float *all_logits)
{
    if (n <= 0) {
        ag_set_error("llama: nothing to evaluate");
        return -1;
    }
    if (n > m->n_ctx - m->n_past) {
        ag_set_error("llama: %d more tokens do not fit the context (%d of %d used)", n, m->n_past, m->n_ctx);
        return -1;
    }
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab) {
            ag_set_error("llama: token id %d at %d outside the vocabulary (%d)", tokens[i], i, m->hp.n_vocab);
            return -1;
        }
    }
    for (int32_t done = 0; done < n;) {
        const int32_t b = n - done < LLAMA_MAX_BATCH ? n - done : LLAMA_MAX_BATCH;
        const bool last = done + b == n;
        float *all = all_logits ? all_logits + (size_t)done * (size_t)m->hp.n_vocab : NULL;
        if (eval_batch(m, tokens + done, b, last ? logits : NULL, all) != 0)
            return -1;
        done += b;
    }
    return 0;
}
