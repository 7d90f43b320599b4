/* KIND speechtokenizer: a SpeechTokenizer folder (config.json + ckpt.dev or SpeechTokenizer.pt,
 * a torch zip) -> GGUF architecture "speechtokenizer" read by core/models/seanet.c.
 * Weight norm (g, v) is folded here: w = g * v / ||v||, the norm over every dim but 0 (Conv1d:
 * per output channel; ConvTranspose1d: per input channel, both dim 0 of v). GGUF names:
 * enc.I.* / dec.I.* (I = index in encoder.model / decoder.model; convs: weight, bias [1, C];
 * Snake: alpha [1, C]; resblocks: block.1/block.3/shortcut and block.0/block.2 alpha; LSTM:
 * lstm.weight_ih_lN[_reverse] ...), vq.Q.embed [D, K]. Training-only keys are dropped. */
#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "json.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_MAX_RATIOS 8

/* snprintf without -Wformat-truncation noise: names are short and bounded by construction */
static void nm(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nm(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}


typedef struct {
    int64_t n_filters, dimension, lstm_layers, codebook_size, n_q, sample_rate, res_kernel, dil_base;
    int64_t ratios[ST_MAX_RATIOS];
    int n_ratios;
    bool bidirectional, snake;
} st_cfg;

enum { SRC_PLAIN, SRC_WNORM };

typedef struct {
    char gguf[96];
    char key[128]; /* torch key; for SRC_WNORM the module prefix (…conv.conv) */
    int src_kind;
    int n_dims;
    int64_t shape[3]; /* torch shape, outermost first */
    const ckpt_tensor *a, *b; /* plain: a; weight norm: a = g, b = v */
    int idx;
    bool half; /* written as F16 (--dtype f16: conv and LSTM matrices; codebooks stay F32) */
} st_entry;

typedef struct {
    st_entry *e;
    size_t n, cap;
} st_plan;

static st_entry *plan_add(st_plan *p, const char *gguf, const char *key, int kind, int n_dims, int64_t s0, int64_t s1,
                          int64_t s2)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 128;
        st_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ag_set_error("out of memory");
            return NULL;
        }
        p->e = e;
        p->cap = cap;
    }
    st_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    nm(e->gguf, sizeof e->gguf, "%s", gguf);
    nm(e->key, sizeof e->key, "%s", key);
    e->src_kind = kind;
    e->n_dims = n_dims;
    e->shape[0] = s0;
    e->shape[1] = s1;
    e->shape[2] = s2;
    return e;
}

/* A weight-normed conv (weight + bias) at torch module `mod`, GGUF prefix `g`. transposed: v is
 * (cin, cout, k). */
static int add_conv(st_plan *p, const char *g, const char *mod, int64_t cin, int64_t cout, int64_t k, bool transposed)
{
    char gn[96], kn[128];
    nm(gn, sizeof gn, "%s.weight", g);
    if (!plan_add(p, gn, mod, SRC_WNORM, 3, transposed ? cin : cout, transposed ? cout : cin, k))
        return -1;
    nm(gn, sizeof gn, "%s.bias", g);
    nm(kn, sizeof kn, "%s.bias", mod);
    return plan_add(p, gn, kn, SRC_PLAIN, 1, cout, 1, 1) ? 0 : -1;
}

static int add_act(st_plan *p, const st_cfg *c, const char *g, const char *mod, int64_t ch)
{
    if (!c->snake)
        return 0;
    char gn[96], kn[128];
    nm(gn, sizeof gn, "%s.alpha", g);
    nm(kn, sizeof kn, "%s.alpha", mod);
    return plan_add(p, gn, kn, SRC_PLAIN, 3, 1, ch, 1) ? 0 : -1;
}

static int add_res(st_plan *p, const st_cfg *c, const char *g, const char *mod, int64_t ch)
{
    char gn[96], kn[128];
    const int64_t h = ch / 2;
#define SUB(gs, ks) (nm(gn, sizeof gn, "%s." gs, g), nm(kn, sizeof kn, "%s." ks, mod))
    SUB("block.0", "block.0");
    if (add_act(p, c, gn, kn, ch))
        return -1;
    SUB("block.1", "block.1.conv.conv");
    if (add_conv(p, gn, kn, ch, h, c->res_kernel, false))
        return -1;
    SUB("block.2", "block.2");
    if (add_act(p, c, gn, kn, h))
        return -1;
    SUB("block.3", "block.3.conv.conv");
    if (add_conv(p, gn, kn, h, ch, 1, false))
        return -1;
    SUB("shortcut", "shortcut.conv.conv");
#undef SUB
    return add_conv(p, gn, kn, ch, ch, 1, false);
}

static int add_lstm(st_plan *p, const char *g, const char *mod, int64_t h, int64_t layers, bool bidir)
{
    static const char *const parts[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int64_t l = 0; l < layers; l++) {
        for (int dir = 0; dir < (bidir ? 2 : 1); dir++) {
            for (int k = 0; k < 4; k++) {
                char gn[96], kn[128];
                const char *suf = dir ? "_reverse" : "";
                nm(gn, sizeof gn, "%s.lstm.%s_l%lld%s", g, parts[k], (long long)l, suf);
                nm(kn, sizeof kn, "%s.lstm.%s_l%lld%s", mod, parts[k], (long long)l, suf);
                const int64_t in = l == 0 ? h : h * (bidir ? 2 : 1);
                st_entry *e = k < 2 ? plan_add(p, gn, kn, SRC_PLAIN, 2, 4 * h, k == 0 ? in : h, 1)
                                    : plan_add(p, gn, kn, SRC_PLAIN, 1, 4 * h, 1, 1);
                if (!e)
                    return -1;
            }
        }
    }
    return 0;
}

static int build_plan(st_plan *p, const st_cfg *c)
{
    char g[64], m[96];
    const int R = c->n_ratios;
    int64_t ch = c->n_filters;
#define NAME(gf, mf, i) (nm(g, sizeof g, gf, i), nm(m, sizeof m, mf, i))
    NAME("enc.%d", "encoder.model.%d.conv.conv", 0);
    if (add_conv(p, g, m, 1, ch, 7, false))
        return -1;
    for (int i = 0; i < R; i++) {
        const int64_t r = c->ratios[R - 1 - i];
        const int idx = 3 * i + 1;
        NAME("enc.%d", "encoder.model.%d", idx);
        if (add_res(p, c, g, m, ch))
            return -1;
        NAME("enc.%d", "encoder.model.%d", idx + 1);
        if (add_act(p, c, g, m, ch))
            return -1;
        NAME("enc.%d", "encoder.model.%d.conv.conv", idx + 2);
        if (add_conv(p, g, m, ch, 2 * ch, 2 * r, false))
            return -1;
        ch *= 2;
    }
    const int64_t lo = c->bidirectional ? 2 * ch : ch;
    NAME("enc.%d", "encoder.model.%d", 3 * R + 1);
    if (add_lstm(p, g, m, ch, c->lstm_layers, c->bidirectional))
        return -1;
    NAME("enc.%d", "encoder.model.%d", 3 * R + 2);
    if (add_act(p, c, g, m, lo))
        return -1;
    NAME("enc.%d", "encoder.model.%d.conv.conv", 3 * R + 3);
    if (add_conv(p, g, m, lo, c->dimension, 7, false))
        return -1;

    NAME("dec.%d", "decoder.model.%d.conv.conv", 0);
    if (add_conv(p, g, m, c->dimension, ch, 7, false))
        return -1;
    NAME("dec.%d", "decoder.model.%d", 1);
    if (add_lstm(p, g, m, ch, c->lstm_layers, false))
        return -1;
    NAME("dec.%d", "decoder.model.%d", 2);
    if (add_act(p, c, g, m, ch))
        return -1;
    for (int i = 0; i < R; i++) {
        const int64_t r = c->ratios[i];
        const int idx = 3 * i + 3;
        NAME("dec.%d", "decoder.model.%d.convtr.convtr", idx);
        if (add_conv(p, g, m, ch, ch / 2, 2 * r, true))
            return -1;
        ch /= 2;
        NAME("dec.%d", "decoder.model.%d", idx + 1);
        if (add_res(p, c, g, m, ch))
            return -1;
        NAME("dec.%d", "decoder.model.%d", idx + 2);
        if (add_act(p, c, g, m, ch))
            return -1;
    }
    NAME("dec.%d", "decoder.model.%d.conv.conv", 3 * R + 3);
    if (add_conv(p, g, m, ch, 1, 7, false))
        return -1;
    for (int q = 0; q < c->n_q; q++) {
        NAME("vq.%d.embed", "quantizer.vq.layers.%d._codebook.embed", q);
        if (!plan_add(p, g, m, SRC_PLAIN, 2, c->codebook_size, c->dimension, 1))
            return -1;
    }
#undef NAME
    return 0;
}

static int need_int(const json_value *cfg, const char *key, int64_t *out, int64_t lo, int64_t hi, const char *path)
{
    if (!json_get_int(cfg, key, out) || *out < lo || *out > hi) {
        ag_set_error("%s: '%s' missing or outside [%lld, %lld]", path, key, (long long)lo, (long long)hi);
        return -1;
    }
    return 0;
}

static int read_cfg(const char *path, st_cfg *c)
{
    json_value *cfg = json_parse_file(path);
    if (!cfg)
        return -1;
    int rc = -1;
    int64_t nres = 1;
    memset(c, 0, sizeof *c);
    c->res_kernel = 3;
    c->dil_base = 2;
    if (need_int(cfg, "n_filters", &c->n_filters, 1, 4096, path) ||
        need_int(cfg, "dimension", &c->dimension, 1, 65536, path) ||
        need_int(cfg, "lstm_layers", &c->lstm_layers, 1, 16, path) ||
        need_int(cfg, "codebook_size", &c->codebook_size, 1, 1 << 20, path) ||
        need_int(cfg, "n_q", &c->n_q, 1, 64, path) || need_int(cfg, "sample_rate", &c->sample_rate, 1, 1 << 20, path))
        goto out;
    if ((json_get(cfg, "residual_kernel_size") &&
         need_int(cfg, "residual_kernel_size", &c->res_kernel, 1, 63, path)) ||
        (json_get(cfg, "n_residual_layers") && need_int(cfg, "n_residual_layers", &nres, 1, 1, path)) ||
        (json_get(cfg, "dilation_base") && need_int(cfg, "dilation_base", &c->dil_base, 1, 16, path)))
        goto out;
    if (c->res_kernel % 2 == 0) {
        ag_set_error("%s: even residual_kernel_size %lld is not supported", path, (long long)c->res_kernel);
        goto out;
    }
    const char *act = json_get_str(cfg, "activation");
    if (act && strcmp(act, "ELU") != 0 && strcmp(act, "Snake") != 0) {
        ag_set_error("%s: activation '%s' is not supported (ELU, Snake)", path, act);
        goto out;
    }
    c->snake = act && !strcmp(act, "Snake"); /* also set when the checkpoint has .alpha keys */
    c->bidirectional = true;
    if (json_get(cfg, "bidirectional") && !json_get_bool(cfg, "bidirectional", &c->bidirectional)) {
        ag_set_error("%s: 'bidirectional' is not a boolean", path);
        goto out;
    }
    const json_value *st = json_get(cfg, "strides");
    if (!st || st->kind != JSON_ARRAY || st->n < 1 || st->n > ST_MAX_RATIOS) {
        ag_set_error("%s: 'strides' missing or not an array of 1..%d numbers", path, ST_MAX_RATIOS);
        goto out;
    }
    c->n_ratios = (int)st->n;
    for (size_t i = 0; i < st->n; i++) {
        if (st->items[i]->kind != JSON_NUMBER || !st->items[i]->is_int || st->items[i]->i < 1 ||
            st->items[i]->i > 64) {
            ag_set_error("%s: strides[%zu] is not an integer in [1, 64]", path, i);
            goto out;
        }
        c->ratios[i] = st->items[i]->i;
    }
    if (c->n_filters << c->n_ratios > 65536) {
        ag_set_error("%s: n_filters %lld too large for %d strides", path, (long long)c->n_filters, c->n_ratios);
        goto out;
    }
    rc = 0;
out:
    json_free(cfg);
    return rc;
}

static bool ignorable(const char *k)
{
    if (!strncmp(k, "transform.", 10))
        return true;
    if (strncmp(k, "quantizer.", 10) != 0)
        return false;
    const char *tail = strrchr(k, '.');
    return tail && (!strcmp(tail, ".inited") || !strcmp(tail, ".cluster_size") || !strcmp(tail, ".embed_avg"));
}

static int check_shape(const ckpt_tensor *t, int n_dims, const int64_t *shape)
{
    bool ok = t->n_dims == n_dims;
    for (int d = 0; ok && d < n_dims; d++)
        ok = t->shape[d] == shape[d];
    if (!ok) {
        char got[128] = "", want[128] = "";
        for (int d = 0; d < t->n_dims; d++)
            nm(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
        for (int d = 0; d < n_dims; d++)
            nm(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)shape[d]);
        ag_set_error("tensor '%s' has shape (%s), expected (%s)", t->name, got, want);
        return -1;
    }
    return 0;
}

/* Resolve the plan's sources; mark used keys. */
static int resolve(st_plan *p, const ckpt *c, bool *used)
{
    for (size_t i = 0; i < p->n; i++) {
        st_entry *e = &p->e[i];
        if (e->src_kind == SRC_PLAIN) {
            e->a = ckpt_find(c, e->key);
            if (!e->a) {
                ag_set_error("checkpoint lacks tensor '%s'", e->key);
                return -1;
            }
            if (check_shape(e->a, e->n_dims, e->shape))
                return -1;
        } else {
            char kg[160], kv[160];
            nm(kg, sizeof kg, "%s.weight_g", e->key);
            nm(kv, sizeof kv, "%s.weight_v", e->key);
            e->a = ckpt_find(c, kg);
            e->b = ckpt_find(c, kv);
            if (!e->a && !e->b) { /* torch >= 2.1 parametrizations */
                nm(kg, sizeof kg, "%s.parametrizations.weight.original0", e->key);
                nm(kv, sizeof kv, "%s.parametrizations.weight.original1", e->key);
                e->a = ckpt_find(c, kg);
                e->b = ckpt_find(c, kv);
            }
            if (!e->a || !e->b) {
                ag_set_error("checkpoint lacks tensor '%s'", e->a ? kv : kg);
                return -1;
            }
            const int64_t gs[3] = {e->shape[0], 1, 1};
            if (check_shape(e->a, 3, gs) || check_shape(e->b, 3, e->shape))
                return -1;
        }
        if (e->a)
            used[e->a - c->t] = true;
        if (e->b)
            used[e->b - c->t] = true;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (!used[i] && !ignorable(c->t[i].name)) {
            ag_set_error("unexpected tensor '%s' in the checkpoint (not part of this configuration)", c->t[i].name);
            return -1;
        }
    }
    return 0;
}

static int write_kvs(gs_writer *w, const st_cfg *c, bool f16)
{
    int32_t r[ST_MAX_RATIOS];
    for (int i = 0; i < c->n_ratios; i++)
        r[i] = (int32_t)c->ratios[i];
    return gs_set_str(w, "general.architecture", "speechtokenizer") || gs_set_str(w, "general.type", "model") ||
           gs_set_str(w, "general.name", "SpeechTokenizer") || gs_set_u32(w, "general.file_type", f16 ? 1 : 0) ||
           gs_set_u32(w, "speechtokenizer.sample_rate", (uint32_t)c->sample_rate) ||
           gs_set_u32(w, "speechtokenizer.n_filters", (uint32_t)c->n_filters) ||
           gs_set_arr(w, "speechtokenizer.ratios", AG_GGUF_INT32, r, (uint64_t)c->n_ratios) ||
           gs_set_u32(w, "speechtokenizer.dimension", (uint32_t)c->dimension) ||
           gs_set_u32(w, "speechtokenizer.lstm_layers", (uint32_t)c->lstm_layers) ||
           gs_set_bool(w, "speechtokenizer.encoder_bidirectional", c->bidirectional) ||
           gs_set_str(w, "speechtokenizer.shortcut", "conv") ||
           gs_set_str(w, "speechtokenizer.activation", c->snake ? "snake" : "elu") ||
           gs_set_u32(w, "speechtokenizer.kernel_size", 7) || gs_set_u32(w, "speechtokenizer.last_kernel_size", 7) ||
           gs_set_u32(w, "speechtokenizer.residual_kernel_size", (uint32_t)c->res_kernel) ||
           gs_set_u32(w, "speechtokenizer.compress", 2) ||
           gs_set_u32(w, "speechtokenizer.codebook_size", (uint32_t)c->codebook_size) ||
           gs_set_u32(w, "speechtokenizer.codebook_dim", (uint32_t)c->dimension) ||
           gs_set_u32(w, "speechtokenizer.n_q", (uint32_t)c->n_q)
               ? -1
               : 0;
}

/* data: the entry's weight as F32 (weight norm folded), numel floats. */
static int entry_data(const st_entry *e, float *data)
{
    if (e->src_kind == SRC_PLAIN)
        return ckpt_to_f32(e->a, data);
    const int64_t rows = e->shape[0], per = e->shape[1] * e->shape[2];
    float *g = malloc((size_t)rows * sizeof *g);
    if (!g || ckpt_to_f32(e->a, g) || ckpt_to_f32(e->b, data)) {
        if (!g)
            ag_set_error("out of memory");
        free(g);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        float *v = data + r * per;
        double ss = 0;
        for (int64_t k = 0; k < per; k++)
            ss += (double)v[k] * v[k];
        const double s = ss > 0 ? g[r] / sqrt(ss) : 0.0;
        for (int64_t k = 0; k < per; k++)
            v[k] = (float)(v[k] * s);
    }
    free(g);
    return 0;
}

static int load_ckpt(ckpt *c, const char *dir)
{
    static const char *const names[] = {"ckpt.dev", "SpeechTokenizer.pt"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct stat st;
        nm(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            return ckpt_load_file(c, path);
    }
    ag_set_error("%s: neither ckpt.dev nor SpeechTokenizer.pt found", dir);
    return -1;
}

int convert_speechtokenizer(const char *dir, const char *out, const convert_opts *o)
{
    st_cfg cfg;
    ckpt c;
    st_plan p = {0};
    bool *used = NULL;
    float *buf = NULL;
    ag_fp16 *hbuf = NULL;
    gs_writer *w = NULL;
    int rc = -1;
    char path[4096];
    ckpt_init(&c);
    nm(path, sizeof path, "%s/config.json", dir);
    if (read_cfg(path, &cfg) || load_ckpt(&c, dir))
        goto out;
    /* Snake variant: the same modules plus a per-channel alpha wherever ELU stands */
    for (size_t i = 0; i < c.n; i++) {
        const size_t n = strlen(c.t[i].name);
        if (n > 6 && !strcmp(c.t[i].name + n - 6, ".alpha"))
            cfg.snake = true;
    }
    if (build_plan(&p, &cfg))
        goto out;
    used = calloc(c.n ? c.n : 1, sizeof *used);
    if (!used) {
        ag_set_error("out of memory");
        goto out;
    }
    if (resolve(&p, &c, used))
        goto out;
    if (!(w = gs_new()) || write_kvs(w, &cfg, o->wtype == AG_TYPE_F16))
        goto out;
    int64_t max_n = 0;
    for (size_t i = 0; i < p.n; i++) {
        st_entry *e = &p.e[i];
        /* ggml order is torch's reversed: same bytes; biases/alphas become [1, C] rows to broadcast */
        int64_t ne[3];
        int nd = e->n_dims;
        if (!strcmp(e->gguf + strlen(e->gguf) - 5, ".bias") && strstr(e->gguf, ".lstm.") == NULL) {
            ne[0] = 1;
            ne[1] = e->shape[0];
            nd = 2;
        } else if (e->n_dims == 3 && e->shape[0] == 1 && e->shape[2] == 1) { /* alpha (1, C, 1) */
            ne[0] = 1;
            ne[1] = e->shape[1];
            nd = 2;
        } else {
            for (int d = 0; d < nd; d++)
                ne[d] = e->shape[nd - 1 - d];
        }
        const int64_t n = e->shape[0] * e->shape[1] * e->shape[2];
        if (n > max_n)
            max_n = n;
        e->half = o->wtype == AG_TYPE_F16 && (e->src_kind == SRC_WNORM || strstr(e->gguf, ".lstm.weight_") != NULL);
        e->idx = gs_add_tensor(w, e->gguf, e->half ? AG_TYPE_F16 : AG_TYPE_F32, nd, ne);
        if (e->idx < 0)
            goto out;
    }
    buf = malloc((size_t)max_n * sizeof *buf);
    hbuf = malloc((size_t)max_n * sizeof *hbuf);
    if (!buf || !hbuf) {
        ag_set_error("out of memory");
        goto out;
    }
    if (gs_begin(w, out))
        goto out;
    for (size_t i = 0; i < p.n; i++) {
        const st_entry *e = &p.e[i];
        const int64_t n = e->shape[0] * e->shape[1] * e->shape[2];
        if (entry_data(e, buf))
            goto out;
        if (e->half)
            for (int64_t k = 0; k < n; k++)
                hbuf[k] = ag_fp32_to_fp16(buf[k]);
        if (gs_write_tensor(w, e->idx, e->half ? (const void *)hbuf : buf, (size_t)n * (e->half ? 2 : 4)))
            goto out;
        if (!o->quiet)
            fprintf(stderr, "  %-40s <- %s%s%s\n", e->gguf, e->key, e->src_kind == SRC_WNORM ? " (weight norm folded)" : "", e->half ? " F16" : "");
    }
    if (gs_finish(w))
        goto out;
    if (!o->quiet)
        fprintf(stderr, "wrote %s: %zu tensors (%s)\n", out, p.n, cfg.snake ? "snake" : "elu");
    rc = 0;
out:
    gs_free(w);
    free(buf);
    free(hbuf);
    free(used);
    free(p.e);
    ckpt_free(&c);
    return rc;
}
