/* KIND speechtokenizer: a SpeechTokenizer folder (config.json + ckpt.dev or SpeechTokenizer.pt,
 * a torch zip) -> GGUF architecture "speechtokenizer" read by core/models/seanet.c.
 * Weight norm (g, v) is folded by seanet_plan.c: w = g * v / ||v||, the norm over every dim but 0
 * (Conv1d: per output channel; ConvTranspose1d: per input channel, both dim 0 of v). GGUF names:
 * enc.I.* / dec.I.* (I = index in encoder.model / decoder.model; convs: weight, bias [1, C];
 * Snake: alpha [1, C]; resblocks: block.1/block.3/shortcut and block.0/block.2 alpha; LSTM:
 * lstm.weight_ih_lN[_reverse] ...), vq.Q.embed [D, K]. Training-only keys are dropped. */
#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "json.h"
#include "seanet_plan.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_MAX_RATIOS 8

typedef struct {
    int64_t n_filters, dimension, lstm_layers, codebook_size, n_q, sample_rate, res_kernel, dil_base;
    int64_t ratios[ST_MAX_RATIOS];
    int n_ratios;
    bool bidirectional, snake;
} st_cfg;

/* Snake: a per-channel alpha wherever ELU stands (ELU has no parameters) */
static int add_act(sp_plan *p, const st_cfg *c, const char *g, const char *mod, int64_t ch)
{
    return c->snake ? sp_add_alpha(p, g, mod, ch) : 0;
}

static int build_plan(sp_plan *p, const st_cfg *c)
{
    char g[64], m[96];
    const int R = c->n_ratios;
    int64_t ch = c->n_filters;
#define NAME(gf, mf, i) (cv_nm(g, sizeof g, gf, i), cv_nm(m, sizeof m, mf, i))
    NAME("enc.%d", "encoder.model.%d.conv.conv", 0);
    if (sp_add_conv(p, g, m, 1, ch, 7, false))
        return -1;
    for (int i = 0; i < R; i++) {
        const int64_t r = c->ratios[R - 1 - i];
        const int idx = 3 * i + 1;
        NAME("enc.%d", "encoder.model.%d", idx);
        if (sp_add_res(p, g, m, "conv.conv", ch, ch / 2, c->res_kernel, c->snake, true))
            return -1;
        NAME("enc.%d", "encoder.model.%d", idx + 1);
        if (add_act(p, c, g, m, ch))
            return -1;
        NAME("enc.%d", "encoder.model.%d.conv.conv", idx + 2);
        if (sp_add_conv(p, g, m, ch, 2 * ch, 2 * r, false))
            return -1;
        ch *= 2;
    }
    const int64_t lo = c->bidirectional ? 2 * ch : ch;
    NAME("enc.%d", "encoder.model.%d", 3 * R + 1);
    if (sp_add_lstm(p, g, m, ch, c->lstm_layers, c->bidirectional))
        return -1;
    NAME("enc.%d", "encoder.model.%d", 3 * R + 2);
    if (add_act(p, c, g, m, lo))
        return -1;
    NAME("enc.%d", "encoder.model.%d.conv.conv", 3 * R + 3);
    if (sp_add_conv(p, g, m, lo, c->dimension, 7, false))
        return -1;

    NAME("dec.%d", "decoder.model.%d.conv.conv", 0);
    if (sp_add_conv(p, g, m, c->dimension, ch, 7, false))
        return -1;
    NAME("dec.%d", "decoder.model.%d", 1);
    if (sp_add_lstm(p, g, m, ch, c->lstm_layers, false))
        return -1;
    NAME("dec.%d", "decoder.model.%d", 2);
    if (add_act(p, c, g, m, ch))
        return -1;
    for (int i = 0; i < R; i++) {
        const int64_t r = c->ratios[i];
        const int idx = 3 * i + 3;
        NAME("dec.%d", "decoder.model.%d.convtr.convtr", idx);
        if (sp_add_conv(p, g, m, ch, ch / 2, 2 * r, true))
            return -1;
        ch /= 2;
        NAME("dec.%d", "decoder.model.%d", idx + 1);
        if (sp_add_res(p, g, m, "conv.conv", ch, ch / 2, c->res_kernel, c->snake, true))
            return -1;
        NAME("dec.%d", "decoder.model.%d", idx + 2);
        if (add_act(p, c, g, m, ch))
            return -1;
    }
    NAME("dec.%d", "decoder.model.%d.conv.conv", 3 * R + 3);
    if (sp_add_conv(p, g, m, ch, 1, 7, false))
        return -1;
    for (int q = 0; q < c->n_q; q++) {
        NAME("vq.%d.embed", "quantizer.vq.layers.%d._codebook.embed", q);
        if (!sp_add(p, g, m, SP_PLAIN, 2, c->codebook_size, c->dimension, 1))
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

static int load_ckpt(ckpt *c, const char *dir)
{
    static const char *const names[] = {"ckpt.dev", "SpeechTokenizer.pt"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct stat st;
        cv_nm(path, sizeof path, "%s/%s", dir, names[i]);
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
    sp_plan p = {.rows_1c1 = true, .name_width = 40}; /* alphas (1, C, 1) become [1, C] rows */
    gs_writer *w = NULL;
    int rc = -1;
    char path[4096];
    ckpt_init(&c);
    cv_nm(path, sizeof path, "%s/config.json", dir);
    if (read_cfg(path, &cfg) || load_ckpt(&c, dir))
        goto out;
    /* Snake variant: the same modules plus a per-channel alpha wherever ELU stands */
    for (size_t i = 0; i < c.n; i++) {
        const size_t n = strlen(c.t[i].name);
        if (n > 6 && !strcmp(c.t[i].name + n - 6, ".alpha"))
            cfg.snake = true;
    }
    if (build_plan(&p, &cfg) || sp_resolve(&p, &c, ignorable))
        goto out;
    if (!(w = gs_new()) || write_kvs(w, &cfg, o->wtype == AG_TYPE_F16) || sp_write(&p, w, out, o))
        goto out;
    if (!o->quiet)
        fprintf(stderr, "wrote %s: %zu tensors (%s)\n", out, p.n, cfg.snake ? "snake" : "elu");
    rc = 0;
out:
    gs_free(w);
    sp_free(&p);
    ckpt_free(&c);
    return rc;
}
