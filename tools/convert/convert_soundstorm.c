/* KIND soundstorm: speechtokenizer_soundstorm_mls.pt (AnyGPT naming: conv.net1 / ds_conv /
 * net2) or an original soundstorm-speechtokenizer checkpoint (conv.net.{0,2,4.conv,6,7}), a torch
 * zip state dict, or a folder holding one -> GGUF architecture "soundstorm"
 * (core/models/soundstorm.c). Shapes give every hyper-parameter except the head count, which
 * the file does not hold: 8, as AnyGPT's voice_clone.py builds the model. to_kv is split into
 * attn_k / attn_v; to_logits.2.weight (q, d, l) is stored per level as [d, l] rows of l.
 * Non-persistent buffers (rotary inv_freq, quantizer offsets, mask tokens), should an export
 * carry them, are dropped; any other unknown key is an error naming it. */
#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SS_HEADS 8

enum { K_PLAIN, K_ROWS, K_LOGITS };

typedef struct {
    char gguf[64];
    const ckpt_tensor *src;
    int kind;
    int64_t row0, rows; /* K_ROWS */
    int nd;
    int64_t ne[4]; /* ggml order */
    bool half;
    int idx;
} ss_entry;

typedef struct {
    const ckpt *c;
    bool *used;
    ss_entry *e;
    size_t n, cap;
    int64_t dim, depth, ff, inner, ci, kernel, K, nq, sem;
} ss_plan;

/* AnyGPT key -> original naming */
static const char *const ORIG[][2] = {{"conv.net1.0.", "conv.net.0."},
                                      {"conv.net1.2.", "conv.net.2."},
                                      {"conv.ds_conv.conv.", "conv.net.4.conv."},
                                      {"conv.net2.1.gamma", "conv.net.6.gamma"},
                                      {"conv.net2.2.", "conv.net.7."}};

/* The tensor under its AnyGPT key or its original-repository key; NULL if neither. */
static const ckpt_tensor *lookup(const ckpt *c, const char *key)
{
    const ckpt_tensor *t = ckpt_find(c, key);
    for (size_t i = 0; !t && i < sizeof ORIG / sizeof ORIG[0]; i++) {
        const char *at = strstr(key, ORIG[i][0]);
        if (!at)
            continue;
        char alt[256];
        cv_nm(alt, sizeof alt, "%.*s%s%s", (int)(at - key), key, ORIG[i][1], at + strlen(ORIG[i][0]));
        t = ckpt_find(c, alt);
    }
    return t;
}

/* Find key with the torch shape s (nd dims); error naming the key otherwise. */
static const ckpt_tensor *need(ss_plan *p, const char *key, int nd, const int64_t *s)
{
    const ckpt_tensor *t = lookup(p->c, key);
    if (!t) {
        ag_set_error("checkpoint lacks tensor '%s'", key);
        return NULL;
    }
    if (!ckpt_has_shape(t, nd, s)) {
        ag_set_error("tensor '%s' has an unexpected shape (%d dims, first %lld)", t->name, t->n_dims,
                     (long long)(t->n_dims ? t->shape[0] : 0));
        return NULL;
    }
    p->used[t - p->c->t] = true;
    return t;
}

static ss_entry *add(ss_plan *p, const char *gguf, const ckpt_tensor *src, int kind, int nd, int64_t e0, int64_t e1,
                     int64_t e2)
{
    if (!src)
        return NULL;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        ss_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ag_set_error("out of memory");
            return NULL;
        }
        p->e = e;
        p->cap = cap;
    }
    ss_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    cv_nm(e->gguf, sizeof e->gguf, "%s", gguf);
    e->src = src;
    e->kind = kind;
    e->nd = nd;
    e->ne[0] = e0;
    e->ne[1] = e1;
    e->ne[2] = e2;
    e->ne[3] = 1;
    return e;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})

/* LayerNorm weight + bias */
static int add_norm(ss_plan *p, const char *g, const char *k)
{
    char gn[64], kn[160];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", k);
    if (!add(p, gn, need(p, kn, 1, S(p->dim)), K_PLAIN, 1, p->dim, 1, 1))
        return -1;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", k);
    return add(p, gn, need(p, kn, 1, S(p->dim)), K_PLAIN, 1, p->dim, 1, 1) ? 0 : -1;
}

/* nn.Linear (out, in) (+ bias): GGUF [in, out], [out]. k1: trailing 1 (1x1 Conv1d). */
static int add_linear(ss_plan *p, const char *g, const char *k, int64_t in, int64_t out, bool bias, bool k1)
{
    char gn[64], kn[160];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", k);
    ss_entry *e = add(p, gn, need(p, kn, k1 ? 3 : 2, S(out, in, 1)), K_PLAIN, 2, in, out, 1);
    if (!e)
        return -1;
    e->half = true;
    if (!bias)
        return 0;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", k);
    return add(p, gn, need(p, kn, 1, S(out)), K_PLAIN, 1, out, 1, 1) ? 0 : -1;
}

static int add_layer(ss_plan *p, int l)
{
    char g[64], k[160];
    const int64_t d = p->dim;
#define PK(gf, kf) (cv_nm(g, sizeof g, "blk.%d." gf, l), cv_nm(k, sizeof k, "net.conformer.layers.%d." kf, l))
    static const char *const ffs[2] = {"ff1", "ff2"};
    for (int f = 0; f < 2; f++) {
        cv_nm(g, sizeof g, "blk.%d.%s_norm", l, ffs[f]);
        cv_nm(k, sizeof k, "net.conformer.layers.%d.%s.fn.norm", l, ffs[f]);
        if (add_norm(p, g, k))
            return -1;
        cv_nm(g, sizeof g, "blk.%d.%s_up", l, ffs[f]);
        cv_nm(k, sizeof k, "net.conformer.layers.%d.%s.fn.fn.net.0", l, ffs[f]);
        if (add_linear(p, g, k, d, p->ff, true, false))
            return -1;
        cv_nm(g, sizeof g, "blk.%d.%s_down", l, ffs[f]);
        cv_nm(k, sizeof k, "net.conformer.layers.%d.%s.fn.fn.net.3", l, ffs[f]);
        if (add_linear(p, g, k, p->ff, d, true, false))
            return -1;
    }
    if ((PK("attn_norm", "attn.norm"), add_norm(p, g, k)) ||
        (PK("attn_q", "attn.fn.to_q"), add_linear(p, g, k, d, p->inner, false, false)))
        return -1;
    PK("attn_k.weight", "attn.fn.to_kv.weight");
    const ckpt_tensor *kv = need(p, k, 2, S(2 * p->inner, d));
    ss_entry *e = add(p, g, kv, K_ROWS, 2, d, p->inner, 1);
    if (!e)
        return -1;
    e->rows = p->inner;
    e->half = true;
    PK("attn_v.weight", "attn.fn.to_kv.weight");
    if (!(e = add(p, g, kv, K_ROWS, 2, d, p->inner, 1)))
        return -1;
    e->row0 = e->rows = p->inner;
    e->half = true;
    if ((PK("attn_out", "attn.fn.to_out"), add_linear(p, g, k, p->inner, d, true, false)) ||
        (PK("conv_norm", "conv.net1.0"), add_norm(p, g, k)) ||
        (PK("conv_pw1", "conv.net1.2"), add_linear(p, g, k, d, 2 * p->ci, true, true)) ||
        (PK("conv_pw2", "conv.net2.2"), add_linear(p, g, k, p->ci, d, true, true)) ||
        (PK("post_norm", "post_norm"), add_norm(p, g, k)))
        return -1;
    PK("conv_dw.weight", "conv.ds_conv.conv.weight");
    if (!add(p, g, need(p, k, 3, S(p->ci, 1, p->kernel)), K_PLAIN, 3, p->kernel, 1, p->ci))
        return -1;
    PK("conv_dw.bias", "conv.ds_conv.conv.bias");
    if (!add(p, g, need(p, k, 1, S(p->ci)), K_PLAIN, 2, 1, p->ci, 1))
        return -1;
    PK("conv_gamma", "conv.net2.1.gamma");
    if (!add(p, g, need(p, k, 3, S(1, p->ci, 1)), K_PLAIN, 1, p->ci, 1, 1))
        return -1;
#undef PK
    return 0;
}

static int64_t dim_of(const ckpt *c, const char *key, int nd, int d)
{
    const ckpt_tensor *t = lookup(c, key);
    if (!t || t->n_dims != nd) {
        ag_set_error(t ? "tensor '%s' has an unexpected number of dims" : "checkpoint lacks tensor '%s'", key);
        return -1;
    }
    return t->shape[d];
}

static int infer(ss_plan *p)
{
    const ckpt *c = p->c;
    p->dim = dim_of(c, "net.code_embeds.weight", 2, 1);
    p->nq = dim_of(c, "net.to_logits.2.weight", 3, 0);
    p->K = dim_of(c, "net.to_logits.2.weight", 3, 2);
    p->sem = dim_of(c, "semantic_token_emb.weight", 2, 0);
    p->ff = dim_of(c, "net.conformer.layers.0.ff1.fn.fn.net.0.weight", 2, 0);
    p->inner = dim_of(c, "net.conformer.layers.0.attn.fn.to_q.weight", 2, 0);
    p->ci = dim_of(c, "net.conformer.layers.0.conv.ds_conv.conv.weight", 3, 0);
    p->kernel = dim_of(c, "net.conformer.layers.0.conv.ds_conv.conv.weight", 3, 2);
    if (p->dim < 0 || p->nq < 0 || p->K < 0 || p->sem < 0 || p->ff < 0 || p->inner < 0 || p->ci < 0 || p->kernel < 0)
        return -1;
    for (p->depth = 0; p->depth < 256; p->depth++) {
        char k[96];
        cv_nm(k, sizeof k, "net.conformer.layers.%lld.post_norm.weight", (long long)p->depth);
        if (!lookup(c, k))
            break;
    }
    if (p->depth < 1 || p->inner % (2 * SS_HEADS) || p->kernel % 2 == 0 || p->nq < 1 || p->nq > 64 || p->K < 2) {
        ag_set_error("unsupported SoundStorm shape (depth %lld, attention width %lld, kernel %lld)",
                     (long long)p->depth, (long long)p->inner, (long long)p->kernel);
        return -1;
    }
    return 0;
}

static int build_plan(ss_plan *p)
{
    const int64_t d = p->dim;
    ss_entry *e = add(p, "code_embd", need(p, "net.code_embeds.weight", 2, S(p->nq * (p->K + 1), d)), K_PLAIN, 2, d,
                      p->nq * (p->K + 1), 1);
    if (!e)
        return -1;
    e->half = true;
    if (!(e = add(p, "sem_embd", need(p, "semantic_token_emb.weight", 2, S(p->sem, d)), K_PLAIN, 2, d, p->sem, 1)))
        return -1;
    e->half = true;
    for (int l = 0; l < p->depth; l++)
        if (add_layer(p, l))
            return -1;
    if (add_linear(p, "head", "net.heads.0", d, p->nq * d, true, false) ||
        add_norm(p, "logits_norm", "net.to_logits.0"))
        return -1;
    if (!(e = add(p, "logits.weight", need(p, "net.to_logits.2.weight", 3, S(p->nq, d, p->K)), K_LOGITS, 3, d, p->K,
                  p->nq)))
        return -1;
    e->half = true;
    return add(p, "logits.bias", need(p, "net.to_logits.2.bias", 4, S(1, 1, p->nq, p->K)), K_PLAIN, 3, p->K, 1, p->nq)
               ? 0
               : -1;
}

static int write_kvs(gs_writer *w, const ss_plan *p, bool f16)
{
#define U(k, v) gs_set_u32(w, "soundstorm." k, (uint32_t)(v))
    return gs_set_str(w, "general.architecture", "soundstorm") || gs_set_str(w, "general.type", "model") ||
                   gs_set_str(w, "general.name", "SoundStorm (SpeechTokenizer)") ||
                   gs_set_u32(w, "general.file_type", f16 ? 1 : 0) || U("dim", p->dim) || U("depth", p->depth) ||
                   U("heads", SS_HEADS) || U("dim_head", p->inner / SS_HEADS) || U("ff_dim", p->ff) ||
                   U("conv_dim", p->ci) || U("conv_kernel", p->kernel) || U("codebook_size", p->K) ||
                   U("num_quantizers", p->nq) || U("semantic_vocab", p->sem) ||
                   gs_set_f32(w, "soundstorm.rope_theta", 10000.0f) || gs_set_f32(w, "soundstorm.norm_eps", 1e-5f) ||
                   gs_set_f32(w, "soundstorm.chan_norm_eps", 1e-6f)
               ? -1
               : 0;
#undef U
}

/* Buffers some exports carry (derived from the config, rebuilt by the model code): dropped. */
static bool ignorable(const char *k)
{
    return !strcmp(k, "net.conformer.rotary_emb.inv_freq") || !strcmp(k, "net.quantizer_offsets") ||
           !strcmp(k, "net.mask_tokens");
}

static int64_t numel(const ss_entry *e) { return e->ne[0] * e->ne[1] * e->ne[2] * e->ne[3]; }

/* The entry's data as F32 in GGUF order. */
static int entry_data(const ss_entry *e, float *buf, float *tmp)
{
    if (e->kind == K_ROWS)
        return ckpt_rows_to_f32(e->src, e->row0, e->rows, buf);
    if (e->kind == K_PLAIN)
        return ckpt_to_f32(e->src, buf);
    /* (q, d, l) -> per level [d, l] transposed to l rows of d */
    const int64_t d = e->ne[0], l = e->ne[1], q = e->ne[2];
    if (ckpt_to_f32(e->src, tmp))
        return -1;
    for (int64_t a = 0; a < q; a++)
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < l; j++)
                buf[(a * l + j) * d + i] = tmp[(a * d + i) * l + j];
    return 0;
}

static int load_input(ckpt *c, const char *in)
{
    static const char *const names[] = {"speechtokenizer_soundstorm_mls.pt", "SoundStorm_best_dev.pt"};
    struct stat st;
    if (stat(in, &st) == 0 && S_ISDIR(st.st_mode)) {
        char path[4096];
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            cv_nm(path, sizeof path, "%s/%s", in, names[i]);
            if (stat(path, &st) == 0)
                return ckpt_load_file(c, path);
        }
        ag_set_error("%s: no %s or %s in this folder", in, names[0], names[1]);
        return -1;
    }
    return ckpt_load_file(c, in);
}

int convert_soundstorm(const char *input, const char *out, const convert_opts *o)
{
    ckpt c;
    ss_plan p = {0};
    gs_writer *w = NULL;
    float *buf = NULL, *tmp = NULL;
    ag_fp16 *hbuf = NULL;
    int rc = -1;
    ckpt_init(&c);
    if (load_input(&c, input))
        goto out;
    p.c = &c;
    p.used = calloc(c.n ? c.n : 1, sizeof *p.used);
    if (!p.used) {
        ag_set_error("out of memory");
        goto out;
    }
    if (infer(&p) || build_plan(&p) || ckpt_check_used(&c, p.used, ignorable, "SoundStorm"))
        goto out;
    if (!(w = gs_new()) || write_kvs(w, &p, o->wtype == AG_TYPE_F16))
        goto out;
    int64_t max_n = 0;
    for (size_t i = 0; i < p.n; i++) {
        ss_entry *e = &p.e[i];
        e->half = e->half && o->wtype == AG_TYPE_F16;
        if (numel(e) > max_n)
            max_n = numel(e);
        if ((e->idx = gs_add_tensor(w, e->gguf, e->half ? AG_TYPE_F16 : AG_TYPE_F32, e->nd, e->ne)) < 0)
            goto out;
    }
    buf = malloc((size_t)max_n * sizeof *buf);
    tmp = malloc((size_t)max_n * sizeof *tmp);
    hbuf = malloc((size_t)max_n * sizeof *hbuf);
    if (!buf || !tmp || !hbuf) {
        ag_set_error("out of memory");
        goto out;
    }
    if (gs_begin(w, out))
        goto out;
    for (size_t i = 0; i < p.n; i++) {
        const ss_entry *e = &p.e[i];
        const int64_t n = numel(e);
        if (entry_data(e, buf, tmp))
            goto out;
        if (e->half) {
            for (int64_t j = 0; j < n; j++)
                hbuf[j] = ag_fp32_to_fp16(buf[j]);
            if (gs_write_tensor(w, e->idx, hbuf, (size_t)n * sizeof *hbuf))
                goto out;
        } else if (gs_write_tensor(w, e->idx, buf, (size_t)n * sizeof *buf)) {
            goto out;
        }
        if (!o->quiet)
            fprintf(stderr, "  %-32s %s\n", e->gguf, e->half ? "f16" : "f32");
    }
    if (gs_finish(w))
        goto out;
    rc = 0;
out:
    gs_free(w);
    free(buf);
    free(tmp);
    free(hbuf);
    free(p.e);
    free(p.used);
    ckpt_free(&c);
    return rc;
}
