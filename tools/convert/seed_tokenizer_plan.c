/* KIND seed-tokenizer: the key plan (see seed_tokenizer_plan.h). Sizes come from shapes:
 * ViT width from patch_embed, heads = width / 88, depth = blocks in the file - 1 (BLIP-2 runs the
 * 40-block EVA-g file as 39 blocks: penultimate features), MLP width from fc1; Q-Former hidden and
 * query count from query_tokens, heads = hidden / 64, layers from the keys, cross-attention on
 * exactly the layers carrying crossattention.* keys, FFN width from intermediate_query; image
 * size from pos_embed's token count and the patch size; codebook from quantize.embedding. */
#include "seed_tokenizer_plan.h"
#include "convert.h"

#include "anygpt/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIT_FILE "eva_vit_g.pth"
#define SEED_FILE "seed_quantizer.pt"
#define S(...) ((const int64_t[]){__VA_ARGS__})

typedef struct {
    const ckpt *c;
    bool *used;
    const char *file;
} src_file;

typedef struct {
    seedtok_plan *p;
    src_file vit, seed;
} builder;

/* ---- known keys encoding ignores ('#' stands for a decimal index) ---- */

/* The keys of one vit.py / EVA Block (the ViT's last block, the recon and decode-side blocks). */
static const char *const BLOCK_KEYS[] = {
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.q_bias", "attn.v_bias",
    "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
    "mlp.fc2.weight", "mlp.fc2.bias",
};

static const char *const SEED_IGNORED[] = {
    /* the Q-Former's text branch (BertLMHeadModel's word/position embeddings, text FFN, LM head) */
    "Qformer.bert.embeddings.word_embeddings.weight",
    "Qformer.bert.embeddings.position_embeddings.weight",
    "Qformer.bert.embeddings.position_ids",
    "Qformer.bert.encoder.layer.#.intermediate.dense.weight",
    "Qformer.bert.encoder.layer.#.intermediate.dense.bias",
    "Qformer.bert.encoder.layer.#.output.dense.weight",
    "Qformer.bert.encoder.layer.#.output.dense.bias",
    "Qformer.bert.encoder.layer.#.output.LayerNorm.weight",
    "Qformer.bert.encoder.layer.#.output.LayerNorm.bias",
    "Qformer.cls.predictions.bias",
    "Qformer.cls.predictions.transform.dense.weight",
    "Qformer.cls.predictions.transform.dense.bias",
    "Qformer.cls.predictions.transform.LayerNorm.weight",
    "Qformer.cls.predictions.transform.LayerNorm.bias",
    "Qformer.cls.predictions.decoder.weight",
    "Qformer.cls.predictions.decoder.bias",
    /* recon_s: the feature-reconstruction blocks */
    "pos_embed",
    /* the decode side (KIND seed-unclip converts it; the codebook is shared) */
    "decode_task_layer.0.weight",
    "decode_task_layer.0.bias",
    "decode_task_layer.2.weight",
    "decode_task_layer.2.bias",
    "pos_embed_image",
    "image_down.0.weight",
    "image_down.2.weight",
    "image_down.4.weight",
    "distill_image_proj.weight",
    "distill_image_proj.bias",
};

/* pat with '#' matching one or more digits (index into *idx when given) */
static bool match(const char *pat, const char *s, long *idx)
{
    while (*pat) {
        if (*pat == '#') {
            if (*s < '0' || *s > '9')
                return false;
            char *end;
            const long v = strtol(s, &end, 10);
            if (idx)
                *idx = v;
            s = end;
            pat++;
            continue;
        }
        if (*pat++ != *s++)
            return false;
    }
    return *s == 0;
}

/* prefix + '#.' + one of BLOCK_KEYS; the block index into *idx */
static bool is_block_key(const char *prefix, const char *name, long *idx)
{
    const size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return false;
    for (size_t i = 0; i < sizeof BLOCK_KEYS / sizeof BLOCK_KEYS[0]; i++) {
        char pat[96];
        cv_nm(pat, sizeof pat, "#.%s", BLOCK_KEYS[i]);
        if (match(pat, name + n, idx))
            return true;
    }
    return false;
}

static bool seed_ignorable(const char *name)
{
    for (size_t i = 0; i < sizeof SEED_IGNORED / sizeof SEED_IGNORED[0]; i++)
        if (match(SEED_IGNORED[i], name, NULL))
            return true;
    return is_block_key("blocks.", name, NULL) || is_block_key("blocks_image.", name, NULL);
}

/* ---- lookups ---- */

static const ckpt_tensor *find_in(const src_file *f, const char *key)
{
    return ckpt_find(f->c, key);
}

static void shape_str(char *buf, size_t n, int nd, const int64_t *s)
{
    size_t at = 0;
    buf[0] = 0;
    for (int d = 0; d < nd && at + 24 < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? "," : "", (long long)s[d]);
}

/* key with exactly this torch shape, marked used; error naming the key and file otherwise */
static const ckpt_tensor *need(const src_file *f, const char *key, int nd, const int64_t *shape)
{
    const ckpt_tensor *t = find_in(f, key);
    if (!t) {
        ag_set_error("%s lacks tensor '%s'", f->file, key);
        return NULL;
    }
    if (!ckpt_has_shape(t, nd, shape)) {
        char have[128], want[128];
        shape_str(have, sizeof have, t->n_dims, t->shape);
        shape_str(want, sizeof want, nd, shape);
        ag_set_error("%s: tensor '%s' has shape [%s], expected [%s]", f->file, key, have, want);
        return NULL;
    }
    f->used[t - f->c->t] = true;
    return t;
}

/* A dim of a key the sizes are read from (n_dims checked); -1 with the error set. */
static int64_t dim_of(const src_file *f, const char *key, int nd, int d)
{
    const ckpt_tensor *t = find_in(f, key);
    if (!t) {
        ag_set_error("%s lacks tensor '%s'", f->file, key);
        return -1;
    }
    if (t->n_dims != nd) {
        ag_set_error("%s: tensor '%s' has %d dims, expected %d", f->file, key, t->n_dims, nd);
        return -1;
    }
    return t->shape[d];
}

static seedtok_entry *add(builder *b, const char *gguf, const ckpt_tensor *src, int nd, int64_t e0, int64_t e1,
                          int64_t e2, int64_t e3)
{
    seedtok_plan *p = b->p;
    if (!src)
        return NULL;
    if (p->n == p->cap) {
        const size_t cap = p->cap ? 2 * p->cap : 512;
        seedtok_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ag_set_error("out of memory");
            return NULL;
        }
        p->e = e;
        p->cap = cap;
    }
    seedtok_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    cv_nm(e->gguf, sizeof e->gguf, "%s", gguf);
    e->src = src;
    e->kind = SEEDTOK_PLAIN;
    e->nd = nd;
    e->ne[0] = e0;
    e->ne[1] = e1;
    e->ne[2] = e2;
    e->ne[3] = e3;
    return e;
}

/* 1-D F32 tensor of n elements */
static int add_vec(builder *b, const src_file *f, const char *gguf, const char *key, int64_t n)
{
    return add(b, gguf, need(f, key, 1, S(n)), 1, n, 1, 1, 1) ? 0 : -1;
}

/* nn.LayerNorm: g.weight / g.bias */
static int add_norm(builder *b, const src_file *f, const char *g, const char *k, int64_t n)
{
    char gn[64], kn[160];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", k);
    if (add_vec(b, f, gn, kn, n))
        return -1;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", k);
    return add_vec(b, f, gn, kn, n);
}

/* nn.Linear (out, in) + bias -> GGUF [in, out], [out] */
static int add_linear(builder *b, const src_file *f, const char *g, const char *k, int64_t in, int64_t out)
{
    char gn[64], kn[160];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", k);
    seedtok_entry *e = add(b, gn, need(f, kn, 2, S(out, in)), 2, in, out, 1, 1);
    if (!e)
        return -1;
    e->matrix = true;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", k);
    return add_vec(b, f, gn, kn, out);
}

/* ---- the ViT (eva_vit_g.pth) ---- */

static int infer_vit(builder *b)
{
    seedtok_plan *p = b->p;
    const src_file *f = &b->vit;
    const char *pe = "patch_embed.proj.weight";
    const ckpt_tensor *t = find_in(f, pe);
    if (!t) {
        ag_set_error("%s lacks tensor '%s'", f->file, pe);
        return -1;
    }
    if (t->n_dims != 4 || t->shape[1] != 3 || t->shape[2] != t->shape[3] || t->shape[2] < 1 || t->shape[0] < 1) {
        ag_set_error("%s: tensor '%s' is not a square RGB patch kernel (out, 3, p, p)", f->file, pe);
        return -1;
    }
    p->vit_width = t->shape[0];
    p->patch_size = t->shape[2];
    if (p->vit_width % SEEDTOK_EVA_HEAD_DIM) {
        ag_set_error("%s: ViT width %lld is not a multiple of EVA's head dim %d", f->file, (long long)p->vit_width,
                     SEEDTOK_EVA_HEAD_DIM);
        return -1;
    }
    p->vit_heads = p->vit_width / SEEDTOK_EVA_HEAD_DIM;
    if ((p->n_tokens = dim_of(f, "pos_embed", 3, 1)) < 0)
        return -1;
    const int64_t grid = (int64_t)llround(sqrt((double)(p->n_tokens - 1)));
    if (p->n_tokens < 2 || grid * grid != p->n_tokens - 1 || grid > 4096) {
        ag_set_error("%s: pos_embed holds %lld tokens, not CLS + a square grid of patches", f->file,
                     (long long)p->n_tokens);
        return -1;
    }
    p->image_size = grid * p->patch_size;
    for (p->vit_blocks_in_file = 0; p->vit_blocks_in_file < SEEDTOK_MAX_LAYERS; p->vit_blocks_in_file++) {
        char k[96];
        cv_nm(k, sizeof k, "blocks.%lld.attn.qkv.weight", (long long)p->vit_blocks_in_file);
        if (!find_in(f, k))
            break;
    }
    p->vit_depth = p->vit_blocks_in_file - 1;
    if (p->vit_depth < 1) {
        ag_set_error("%s: %lld ViT blocks; BLIP-2 runs all but the last, so at least 2 are needed", f->file,
                     (long long)p->vit_blocks_in_file);
        return -1;
    }
    return (p->vit_mlp = dim_of(f, "blocks.0.mlp.fc1.weight", 2, 0)) < 0 ? -1 : 0;
}

static int plan_vit(builder *b)
{
    seedtok_plan *p = b->p;
    const src_file *f = &b->vit;
    const int64_t W = p->vit_width, P = p->patch_size, M = p->vit_mlp;
    seedtok_entry *e = add(b, "v.patch_embd.weight", need(f, "patch_embed.proj.weight", 4, S(W, 3, P, P)), 4, P, P, 3, W);
    if (!e)
        return -1;
    e->matrix = true;
    if (add_vec(b, f, "v.patch_embd.bias", "patch_embed.proj.bias", W) ||
        !add(b, "v.cls_token", need(f, "cls_token", 3, S(1, 1, W)), 1, W, 1, 1, 1) ||
        !add(b, "v.pos_embd", need(f, "pos_embed", 3, S(1, p->n_tokens, W)), 2, W, p->n_tokens, 1, 1))
        return -1;
    for (int64_t i = 0; i < p->vit_depth; i++) {
        char g[64], k[96];
#define VK(gf, kf) (cv_nm(g, sizeof g, "v.blk.%lld." gf, (long long)i), cv_nm(k, sizeof k, "blocks.%lld." kf, (long long)i))
        if ((VK("ln1", "norm1"), add_norm(b, f, g, k, W)))
            return -1;
        VK("attn_qkv.weight", "attn.qkv.weight");
        if (!(e = add(b, g, need(f, k, 2, S(3 * W, W)), 2, W, 3 * W, 1, 1)))
            return -1;
        e->matrix = true;
        VK("attn_qkv.bias", "attn.q_bias");
        if (!(e = add(b, g, need(f, k, 1, S(W)), 1, 3 * W, 1, 1, 1)))
            return -1;
        e->kind = SEEDTOK_QKV_BIAS;
        VK("attn_qkv.bias", "attn.v_bias");
        if (!(e->src2 = need(f, k, 1, S(W))))
            return -1;
        if ((VK("attn_out", "attn.proj"), add_linear(b, f, g, k, W, W)) ||
            (VK("ln2", "norm2"), add_norm(b, f, g, k, W)) || (VK("ffn_up", "mlp.fc1"), add_linear(b, f, g, k, W, M)) ||
            (VK("ffn_down", "mlp.fc2"), add_linear(b, f, g, k, M, W)))
            return -1;
#undef VK
    }
    /* the last block is known but unused: any key of it passes, anything else is unknown */
    for (size_t i = 0; i < f->c->n; i++) {
        long idx = -1;
        if (!f->used[i] && !(is_block_key("blocks.", f->c->t[i].name, &idx) && idx == p->vit_depth)) {
            ag_set_error("%s: unexpected tensor '%s' (not part of EVA ViT-g as BLIP-2 packages it)", f->file,
                         f->c->t[i].name);
            return -1;
        }
    }
    return 0;
}

/* ---- the Q-Former and the SEED head (seed_quantizer.pt) ---- */

static int infer_seed(builder *b)
{
    seedtok_plan *p = b->p;
    const src_file *f = &b->seed;
    if ((p->n_query = dim_of(f, "query_tokens", 3, 1)) < 0 || (p->qf_hidden = dim_of(f, "query_tokens", 3, 2)) < 0 ||
        (p->codebook_size = dim_of(f, "quantize.embedding.weight", 2, 0)) < 0 ||
        (p->code_dim = dim_of(f, "quantize.embedding.weight", 2, 1)) < 0 ||
        (p->qf_ffn = dim_of(f, "Qformer.bert.encoder.layer.0.intermediate_query.dense.weight", 2, 0)) < 0)
        return -1;
    if (p->qf_hidden < 1 || p->qf_hidden % SEEDTOK_QF_HEAD_DIM) {
        ag_set_error("%s: Q-Former hidden size %lld is not a multiple of BERT's head dim %d", f->file,
                     (long long)p->qf_hidden, SEEDTOK_QF_HEAD_DIM);
        return -1;
    }
    if (p->n_query < 1 || p->codebook_size < 1 || p->code_dim < 1) {
        ag_set_error("%s: empty query_tokens or codebook", f->file);
        return -1;
    }
    p->qf_heads = p->qf_hidden / SEEDTOK_QF_HEAD_DIM;
    for (p->qf_layers = 0; p->qf_layers < SEEDTOK_MAX_LAYERS; p->qf_layers++) {
        char k[96];
        cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.attention.self.query.weight", (long long)p->qf_layers);
        if (!find_in(f, k))
            break;
    }
    if (p->qf_layers < 1 || p->qf_layers >= SEEDTOK_MAX_LAYERS) {
        ag_set_error("%s lacks tensor 'Qformer.bert.encoder.layer.0.attention.self.query.weight'", f->file);
        return -1;
    }
    /* cross-attention exactly where the layer carries crossattention.* keys */
    for (size_t i = 0; i < f->c->n; i++) {
        const char *name = f->c->t[i].name, *rest = name + 27;
        if (strncmp(name, "Qformer.bert.encoder.layer.", 27) != 0 || *rest < '0' || *rest > '9')
            continue;
        char *end;
        const long l = strtol(rest, &end, 10);
        if (strncmp(end, ".crossattention.", 16) != 0)
            continue;
        if (l >= p->qf_layers) {
            ag_set_error("%s: unexpected tensor '%s' (no such Q-Former layer)", f->file, name);
            return -1;
        }
        p->cross[l] = true;
    }
    p->n_cross = 0;
    for (int64_t l = 0; l < p->qf_layers; l++)
        p->n_cross += p->cross[l];
    if (!p->n_cross) {
        ag_set_error("%s: no Q-Former layer has cross-attention (crossattention.* keys)", f->file);
        return -1;
    }
    return 0;
}

static int plan_attention(builder *b, int64_t l, const char *which, const char *gname, int64_t kv_width)
{
    const src_file *f = &b->seed;
    const int64_t H = b->p->qf_hidden;
    char g[64], k[128];
    static const char *const qkv[3][2] = {{"q", "query"}, {"k", "key"}, {"v", "value"}};
    for (int i = 0; i < 3; i++) {
        cv_nm(g, sizeof g, "qf.blk.%lld.%s_%s", (long long)l, gname, qkv[i][0]);
        cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.%s.self.%s", (long long)l, which, qkv[i][1]);
        if (add_linear(b, f, g, k, i ? kv_width : H, H))
            return -1;
    }
    cv_nm(g, sizeof g, "qf.blk.%lld.%s_out", (long long)l, gname);
    cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.%s.output.dense", (long long)l, which);
    if (add_linear(b, f, g, k, H, H))
        return -1;
    cv_nm(g, sizeof g, "qf.blk.%lld.%s_ln", (long long)l, gname);
    cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.%s.output.LayerNorm", (long long)l, which);
    return add_norm(b, f, g, k, H);
}

static int plan_seed(builder *b)
{
    seedtok_plan *p = b->p;
    const src_file *f = &b->seed;
    const int64_t H = p->qf_hidden, F = p->qf_ffn;
    if (add_norm(b, f, "ln_vision", "ln_vision", p->vit_width) ||
        !add(b, "qf.query_tokens", need(f, "query_tokens", 3, S(1, p->n_query, H)), 2, H, p->n_query, 1, 1) ||
        add_norm(b, f, "qf.emb_ln", "Qformer.bert.embeddings.LayerNorm", H))
        return -1;
    for (int64_t l = 0; l < p->qf_layers; l++) {
        char g[64], k[128];
        if (plan_attention(b, l, "attention", "attn", H) ||
            (p->cross[l] && plan_attention(b, l, "crossattention", "cross", p->vit_width)))
            return -1;
        cv_nm(g, sizeof g, "qf.blk.%lld.ffn_up", (long long)l);
        cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.intermediate_query.dense", (long long)l);
        if (add_linear(b, f, g, k, H, F))
            return -1;
        cv_nm(g, sizeof g, "qf.blk.%lld.ffn_down", (long long)l);
        cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.output_query.dense", (long long)l);
        if (add_linear(b, f, g, k, F, H))
            return -1;
        cv_nm(g, sizeof g, "qf.blk.%lld.ffn_ln", (long long)l);
        cv_nm(k, sizeof k, "Qformer.bert.encoder.layer.%lld.output_query.LayerNorm", (long long)l);
        if (add_norm(b, f, g, k, H))
            return -1;
    }
    if (add_linear(b, f, "task.fc1", "encode_task_layer.0", H, H) ||
        add_linear(b, f, "task.fc2", "encode_task_layer.2", H, p->code_dim) ||
        !add(b, "vq.codebook", need(f, "quantize.embedding.weight", 2, S(p->codebook_size, p->code_dim)), 2,
             p->code_dim, p->codebook_size, 1, 1))
        return -1;
    for (size_t i = 0; i < f->c->n; i++) {
        if (!f->used[i] && !seed_ignorable(f->c->t[i].name)) {
            ag_set_error("%s: unexpected tensor '%s' (not part of the SEED tokenizer)", f->file, f->c->t[i].name);
            return -1;
        }
    }
    return 0;
}

int seedtok_plan_build(const ckpt *vit, const ckpt *seed, seedtok_plan *p)
{
    memset(p, 0, sizeof *p);
    builder b = {p, {vit, calloc(vit->n + 1, sizeof(bool)), VIT_FILE}, {seed, calloc(seed->n + 1, sizeof(bool)), SEED_FILE}};
    int rc = -1;
    if (!b.vit.used || !b.seed.used)
        ag_set_error("out of memory");
    else
        rc = infer_vit(&b) || infer_seed(&b) || plan_vit(&b) || plan_seed(&b) ? -1 : 0;
    free(b.vit.used);
    free(b.seed.used);
    return rc;
}

void seedtok_plan_free(seedtok_plan *p)
{
    free(p->e);
    memset(p, 0, sizeof *p);
}
