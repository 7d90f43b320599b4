/* CLIPTextModel (transformers' modeling_clip semantics) run once by the converter, on the core's
 * cpu backend in F32, for the unCLIP pipeline's constant empty-prompt context:
 * x = token_embedding[ids] + position_embedding[0..n); per layer (pre-LN)
 * x += out_proj(causal_attention(layer_norm1 x)); x += fc2(act(fc1(layer_norm2 x)));
 * last_hidden_state = final_layer_norm(x). No attention mask beyond the causal one: the pipeline
 * passes none (use_attention_mask is not a CLIPTextConfig field), so pad positions attend to
 * everything before them. One graph per layer, its weights converted to F32 just for that layer,
 * so the 23-layer SD 2.x encoder never sits in memory as F32 at once. */
#include "seed_unclip.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(...) ((const int64_t[]){__VA_ARGS__})

static int get_int(const json_value *cfg, const char *path, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out)
{
    const json_value *v = json_get(cfg, key);
    *out = def;
    if (v && (v->kind != JSON_NUMBER || !v->is_int)) {
        ag_set_error("%s: '%s' must be an integer", path, key);
        return -1;
    }
    if (v)
        *out = v->i;
    if (*out < lo || *out > hi) {
        ag_set_error("%s: '%s' %lld is outside %lld..%lld", path, key, (long long)*out, (long long)lo, (long long)hi);
        return -1;
    }
    return 0;
}

int clip_text_config_parse(const json_value *cfg, const char *path, clip_text_config *o)
{
    memset(o, 0, sizeof *o);
    if (!cfg || cfg->kind != JSON_OBJECT) {
        ag_set_error("%s: not a JSON object", path);
        return -1;
    }
    const json_value *arch = json_get(cfg, "architectures");
    if (arch && (arch->kind != JSON_ARRAY || arch->n != 1 || arch->items[0]->kind != JSON_STRING ||
                 strcmp(arch->items[0]->str, "CLIPTextModel"))) {
        ag_set_error("%s: 'architectures' is not [\"CLIPTextModel\"]", path);
        return -1;
    }
    const char *mt = json_get_str(cfg, "model_type");
    if (mt && strcmp(mt, "clip_text_model")) {
        ag_set_error("%s: model_type '%s' is not clip_text_model", path, mt);
        return -1;
    }
    bool mask = false;
    if (json_get_bool(cfg, "use_attention_mask", &mask) && mask) {
        ag_set_error("%s: use_attention_mask true (the pipeline would mask the padding) is not supported", path);
        return -1;
    }
    /* CLIPTextConfig's defaults for what a config leaves out */
    if (get_int(cfg, path, "vocab_size", 49408, 1, 1 << 24, &o->vocab) ||
        get_int(cfg, path, "hidden_size", 512, 1, 65536, &o->hidden) ||
        get_int(cfg, path, "intermediate_size", 2048, 1, 1 << 20, &o->inter) ||
        get_int(cfg, path, "num_hidden_layers", 12, 1, 1024, &o->layers) ||
        get_int(cfg, path, "num_attention_heads", 8, 1, 4096, &o->heads) ||
        get_int(cfg, path, "max_position_embeddings", 77, 1, 65536, &o->max_pos))
        return -1;
    double eps = 1e-5;
    const json_value *e = json_get(cfg, "layer_norm_eps");
    if (e && (e->kind != JSON_NUMBER || !(e->num > 0.0) || e->num > 1.0)) {
        ag_set_error("%s: 'layer_norm_eps' must be a number in (0, 1]", path);
        return -1;
    }
    if (e)
        eps = e->num;
    o->eps = (float)eps;
    const json_value *a = json_get(cfg, "hidden_act");
    const char *act = a ? (a->kind == JSON_STRING ? a->str : NULL) : "quick_gelu";
    if (!act || (strcmp(act, "gelu") && strcmp(act, "quick_gelu"))) {
        ag_set_error("%s: hidden_act '%s' is not supported (gelu or quick_gelu)", path, act ? act : "(not a string)");
        return -1;
    }
    o->quick_gelu = !strcmp(act, "quick_gelu");
    if (o->hidden % o->heads) {
        ag_set_error("%s: hidden_size %lld is not divisible by num_attention_heads %lld", path, (long long)o->hidden,
                     (long long)o->heads);
        return -1;
    }
    return 0;
}

/* position_ids: a buffer older exports saved (always arange); not a weight. */
static bool ignorable(const char *k) { return !strcmp(k, "text_model.embeddings.position_ids"); }

typedef struct {
    ag_tensor *leaf;
    const ckpt_tensor *src;
} clip_bind;

typedef struct {
    const clip_text_config *cfg;
    tensor_plan *tp;
    ag_ctx *ctx;
    clip_bind b[32];
    int nb;
} clip_graph;

/* A weight leaf [ne0, ne1] from key (torch shape [ne1, ne0] or [ne0] for 1-D). */
static ag_tensor *weight(clip_graph *g, const char *key, int nd, int64_t ne0, int64_t ne1)
{
    const ckpt_tensor *t = nd == 2 ? tp_need(g->tp, key, 2, S(ne1, ne0)) : tp_need(g->tp, key, 1, S(ne0));
    if (!t || g->nb == (int)(sizeof g->b / sizeof g->b[0]))
        return NULL;
    ag_tensor *l = nd == 2 ? ag_new_2d(g->ctx, AG_TYPE_F32, ne0, ne1) : ag_new_1d(g->ctx, AG_TYPE_F32, ne0);
    if (!l)
        return NULL;
    ag_set_input(l);
    ag_set_name(l, "%s", key);
    g->b[g->nb++] = (clip_bind){l, t};
    return l;
}

static ag_tensor *lnorm(clip_graph *g, ag_tensor *x, const char *name)
{
    char k[128];
    cv_nm(k, sizeof k, "%s.weight", name);
    ag_tensor *w = weight(g, k, 1, g->cfg->hidden, 1);
    cv_nm(k, sizeof k, "%s.bias", name);
    ag_tensor *b = weight(g, k, 1, g->cfg->hidden, 1);
    if (!x || !w || !b)
        return NULL;
    return ag_add(g->ctx, ag_mul(g->ctx, ag_layer_norm(g->ctx, x, g->cfg->eps), w), b);
}

static ag_tensor *linear(clip_graph *g, ag_tensor *x, const char *name, int64_t in, int64_t out)
{
    char k[128];
    cv_nm(k, sizeof k, "%s.weight", name);
    ag_tensor *w = weight(g, k, 2, in, out);
    cv_nm(k, sizeof k, "%s.bias", name);
    ag_tensor *b = weight(g, k, 1, out, 1);
    if (!x || !w || !b)
        return NULL;
    return ag_add(g->ctx, ag_mul_mat(g->ctx, w, x), b);
}

/* [D, n] -> heads [dh, n, H] (a strided view) */
static ag_tensor *heads(clip_graph *g, ag_tensor *t)
{
    const int64_t h = g->cfg->heads, dh = g->cfg->hidden / h;
    t = t ? ag_reshape_3d(g->ctx, t, dh, h, t->ne[1]) : NULL;
    return t ? ag_permute(g->ctx, t, 0, 2, 1, 3) : NULL;
}

static ag_tensor *layer(clip_graph *g, ag_tensor *x, int l)
{
    const clip_text_config *c = g->cfg;
    const int64_t d = c->hidden, n = x->ne[1];
    char p[96], k[128];
    cv_nm(p, sizeof p, "text_model.encoder.layers.%d.", l);
    cv_nm(k, sizeof k, "%slayer_norm1", p);
    ag_tensor *h = lnorm(g, x, k);
    cv_nm(k, sizeof k, "%sself_attn.q_proj", p);
    ag_tensor *q = heads(g, linear(g, h, k, d, d));
    cv_nm(k, sizeof k, "%sself_attn.k_proj", p);
    ag_tensor *kk = heads(g, linear(g, h, k, d, d));
    cv_nm(k, sizeof k, "%sself_attn.v_proj", p);
    ag_tensor *v = heads(g, linear(g, h, k, d, d));
    if (!q || !kk || !v)
        return NULL;
    ag_tensor *o = ag_attention(g->ctx, q, kk, v, NULL, 1.0f / sqrtf((float)(d / c->heads)), true);
    o = o ? ag_reshape_2d(g->ctx, o, d, n) : NULL;
    cv_nm(k, sizeof k, "%sself_attn.out_proj", p);
    x = ag_add(g->ctx, x, linear(g, o, k, d, d));
    cv_nm(k, sizeof k, "%slayer_norm2", p);
    h = lnorm(g, x, k);
    cv_nm(k, sizeof k, "%smlp.fc1", p);
    h = linear(g, h, k, d, c->inter);
    if (h && c->quick_gelu)
        h = ag_mul(g->ctx, h, ag_sigmoid(g->ctx, ag_scale(g->ctx, h, 1.702f, 0.0f)));
    else if (h)
        h = ag_gelu(g->ctx, h);
    cv_nm(k, sizeof k, "%smlp.fc2", p);
    return x ? ag_add(g->ctx, x, linear(g, h, k, c->inter, d)) : NULL;
}

/* Every key the model reads, with its shape, before any work: a bad file fails fast. */
static int check_keys(tensor_plan *tp, const clip_text_config *c)
{
    const int64_t d = c->hidden;
    static const char *const attn[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    char k[128];
    for (int l = 0; l < c->layers; l++) {
        for (int i = 0; i < 4; i++) {
            cv_nm(k, sizeof k, "text_model.encoder.layers.%d.self_attn.%s.weight", l, attn[i]);
            if (!tp_need(tp, k, 2, S(d, d)))
                return -1;
            cv_nm(k, sizeof k, "text_model.encoder.layers.%d.self_attn.%s.bias", l, attn[i]);
            if (!tp_need(tp, k, 1, S(d)))
                return -1;
        }
        for (int i = 1; i <= 2; i++) {
            cv_nm(k, sizeof k, "text_model.encoder.layers.%d.layer_norm%d.weight", l, i);
            if (!tp_need(tp, k, 1, S(d)))
                return -1;
            cv_nm(k, sizeof k, "text_model.encoder.layers.%d.layer_norm%d.bias", l, i);
            if (!tp_need(tp, k, 1, S(d)))
                return -1;
        }
        const int64_t fc[2][2] = {{c->inter, d}, {d, c->inter}};
        for (int i = 0; i < 2; i++) {
            cv_nm(k, sizeof k, "text_model.encoder.layers.%d.mlp.fc%d.weight", l, i + 1);
            if (!tp_need(tp, k, 2, fc[i]))
                return -1;
            cv_nm(k, sizeof k, "text_model.encoder.layers.%d.mlp.fc%d.bias", l, i + 1);
            if (!tp_need(tp, k, 1, fc[i]))
                return -1;
        }
    }
    if (!tp_need(tp, "text_model.final_layer_norm.weight", 1, S(d)) ||
        !tp_need(tp, "text_model.final_layer_norm.bias", 1, S(d)))
        return -1;
    return ckpt_check_used(tp->c, tp->used, ignorable, "CLIPTextModel as text_encoder/config.json describes it");
}

/* One graph: layer l (l < 0: the final layer norm) on x [n][D] in place. */
static int run(clip_graph *g, ag_backend *be, ag_allocator *al, int l, float *x, int64_t n, float **tmp, size_t *tmp_n)
{
    const int64_t d = g->cfg->hidden;
    ag_ctx_reset(g->ctx);
    g->nb = 0;
    ag_graph *gr = ag_graph_new(g->ctx, 512);
    ag_tensor *in = ag_new_2d(g->ctx, AG_TYPE_F32, d, n);
    int rc = -1;
    if (!gr || !in)
        goto out;
    ag_set_input(in);
    ag_tensor *y = l >= 0 ? layer(g, in, l) : lnorm(g, in, "text_model.final_layer_norm");
    if (!y || ag_graph_expand(gr, y) || ag_allocator_alloc_graph(al, gr))
        goto out;
    ag_set_output(y);
    for (int i = 0; i < g->nb; i++) {
        const size_t cnt = (size_t)ckpt_numel(g->b[i].src);
        if (cnt > *tmp_n) {
            float *t = realloc(*tmp, cnt * sizeof *t);
            if (!t) {
                ag_set_error("out of memory");
                goto out;
            }
            *tmp = t;
            *tmp_n = cnt;
        }
        if (ckpt_to_f32(g->b[i].src, *tmp) || ag_tensor_set(g->b[i].leaf, *tmp, 0, cnt * sizeof(float)))
            goto out;
    }
    const size_t bytes = (size_t)(n * d) * sizeof(float);
    rc = ag_tensor_set(in, x, 0, bytes) || ag_backend_compute(be, gr) || ag_tensor_get(y, x, 0, bytes) ? -1 : 0;
out:
    ag_graph_free(gr);
    return rc;
}

int clip_text_encode(const clip_text_config *cfg, const ckpt *c, const int32_t *ids, int64_t n, float *out)
{
    const int64_t d = cfg->hidden;
    tensor_plan tp;
    if (n < 1 || n > cfg->max_pos) {
        ag_set_error("text encoder: %lld tokens, but max_position_embeddings is %lld", (long long)n,
                     (long long)cfg->max_pos);
        return -1;
    }
    if (tp_init(&tp, c, "text_encoder"))
        return -1;
    ag_backend *be = NULL;
    ag_allocator *al = NULL;
    clip_graph g = {cfg, &tp, NULL, {{0}}, 0};
    float *tmp = NULL;
    size_t tmp_n = 0;
    int rc = -1;
    const ckpt_tensor *tok = tp_need(&tp, "text_model.embeddings.token_embedding.weight", 2, S(cfg->vocab, d));
    const ckpt_tensor *pos = tp_need(&tp, "text_model.embeddings.position_embedding.weight", 2, S(cfg->max_pos, d));
    if (!tok || !pos || check_keys(&tp, cfg))
        goto out;
    if (!(tmp = malloc((size_t)d * sizeof *tmp))) {
        ag_set_error("out of memory");
        goto out;
    }
    tmp_n = (size_t)d;
    for (int64_t t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= cfg->vocab) {
            ag_set_error("text encoder: token id %d outside its %lld embeddings", ids[t], (long long)cfg->vocab);
            goto out;
        }
        if (ckpt_rows_to_f32(tok, ids[t], 1, out + t * d) || ckpt_rows_to_f32(pos, t, 1, tmp))
            goto out;
        for (int64_t i = 0; i < d; i++)
            out[t * d + i] += tmp[i];
    }
    if (!(be = ag_backend_cpu_new(0)) || !(al = ag_allocator_new(be)) || !(g.ctx = ag_ctx_new(256)))
        goto out;
    for (int l = 0; l < cfg->layers; l++)
        if (run(&g, be, al, l, out, n, &tmp, &tmp_n))
            goto out;
    if (run(&g, be, al, -1, out, n, &tmp, &tmp_n))
        goto out;
    rc = 0;
out:
    free(tmp);
    ag_ctx_free(g.ctx);
    ag_allocator_free(al);
    ag_backend_free(be);
    tp_free(&tp);
    return rc;
}
