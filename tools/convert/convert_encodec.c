/* KIND encodec: Encodec 32 kHz (facebook/encodec_32khz) -> GGUF architecture "encodec", read by
 * core/models/seanet.c (the SpeechTokenizer SEANet, configured by the KVs).
 * INPUT: an HF folder (config.json + model.safetensors or pytorch_model.bin), or an audiocraft
 * compression state dict (state_dict.bin / compression_state_dict.bin, optionally wrapped in
 * {'best_state': ...}), or one of those files directly. The naming is told by the keys:
 *   HF:         encoder.layers.N.conv.*, decoder.layers.N.conv.* (ConvTranspose too),
 *               *.block.J.conv.*, *.lstm.*, quantizer.layers.Q.codebook.embed
 *   audiocraft: encoder.model.N.conv.conv.*, decoder.model.N.convtr.convtr.*,
 *               *.block.J.conv.conv.*, *.lstm.*, quantizer.vq.layers.Q._codebook.embed
 * Weight norm (weight_g/weight_v or parametrizations.weight.original0/1) is folded; training-only
 * codebook buffers are dropped; any other key is an error naming it. Without config.json the
 * published facebook/encodec_32khz config is used. GGUF tensor names are those of
 * convert_speechtokenizer.c (enc.I.*, dec.I.*, vq.Q.embed). */
#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "json.h"
#include "seanet_plan.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EC_MAX_RATIOS 8

typedef struct {
    int64_t sample_rate, n_filters, hidden, codebook_dim, codebook_size, n_q, lstm_layers, kernel, last_kernel,
        res_kernel, compress;
    int64_t ratios[EC_MAX_RATIOS];
    int n_ratios;
    bool cfg_conv_shortcut; /* what config.json says; the checkpoint's keys decide */
    bool conv_shortcut;
} ec_cfg;

/* How the checkpoint spells module names. */
typedef struct {
    const char *pfx; /* "" or "best_state." */
    bool ac;         /* audiocraft */
} ec_names;

/* torch module of layer idx of "encoder"/"decoder" */
static void layer_mod(const ec_names *nms, char *dst, size_t n, const char *part, int idx)
{
    cv_nm(dst, n, "%s%s.%s.%d", nms->pfx, part, nms->ac ? "model" : "layers", idx);
}

/* A weight-normed conv inside module `mod` (HF: mod.conv; audiocraft: mod.conv.conv or
 * mod.convtr.convtr). transposed: v is (cin, cout, k). */
static int add_conv(sp_plan *p, const ec_names *nms, const char *g, const char *mod, int64_t cin, int64_t cout,
                    int64_t k, bool transposed)
{
    char kn[160];
    cv_nm(kn, sizeof kn, "%s.%s", mod, !nms->ac ? "conv" : transposed ? "convtr.convtr" : "conv.conv");
    return sp_add_conv(p, g, kn, cin, cout, k, transposed);
}

/* residual block: ELU has no weights; a shortcut conv only where the checkpoint has them */
static int add_res(sp_plan *p, const ec_names *nms, const ec_cfg *c, const char *g, const char *mod, int64_t ch)
{
    return sp_add_res(p, g, mod, nms->ac ? "conv.conv" : "conv", ch, ch / c->compress, c->res_kernel, false,
                      c->conv_shortcut);
}

static int build_plan(sp_plan *p, const ec_names *nms, const ec_cfg *c)
{
    char g[64], m[160];
    const int R = c->n_ratios;
    int64_t ch = c->n_filters;
    cv_nm(g, sizeof g, "enc.0");
    layer_mod(nms, m, sizeof m, "encoder", 0);
    if (add_conv(p, nms, g, m, 1, ch, c->kernel, false))
        return -1;
    for (int i = 0; i < R; i++) {
        const int idx = 3 * i + 1;
        cv_nm(g, sizeof g, "enc.%d", idx);
        layer_mod(nms, m, sizeof m, "encoder", idx);
        if (add_res(p, nms, c, g, m, ch))
            return -1;
        cv_nm(g, sizeof g, "enc.%d", idx + 2);
        layer_mod(nms, m, sizeof m, "encoder", idx + 2);
        if (add_conv(p, nms, g, m, ch, 2 * ch, 2 * c->ratios[R - 1 - i], false))
            return -1;
        ch *= 2;
    }
    cv_nm(g, sizeof g, "enc.%d", 3 * R + 1);
    layer_mod(nms, m, sizeof m, "encoder", 3 * R + 1);
    if (sp_add_lstm(p, g, m, ch, c->lstm_layers, false))
        return -1;
    cv_nm(g, sizeof g, "enc.%d", 3 * R + 3);
    layer_mod(nms, m, sizeof m, "encoder", 3 * R + 3);
    if (add_conv(p, nms, g, m, ch, c->hidden, c->last_kernel, false))
        return -1;

    cv_nm(g, sizeof g, "dec.0");
    layer_mod(nms, m, sizeof m, "decoder", 0);
    if (add_conv(p, nms, g, m, c->hidden, ch, c->kernel, false))
        return -1;
    cv_nm(g, sizeof g, "dec.1");
    layer_mod(nms, m, sizeof m, "decoder", 1);
    if (sp_add_lstm(p, g, m, ch, c->lstm_layers, false))
        return -1;
    for (int i = 0; i < R; i++) { /* layer 3i+2 is the ELU before the ConvTranspose */
        const int idx = 3 * i + 3;
        cv_nm(g, sizeof g, "dec.%d", idx);
        layer_mod(nms, m, sizeof m, "decoder", idx);
        if (add_conv(p, nms, g, m, ch, ch / 2, 2 * c->ratios[i], true))
            return -1;
        ch /= 2;
        cv_nm(g, sizeof g, "dec.%d", idx + 1);
        layer_mod(nms, m, sizeof m, "decoder", idx + 1);
        if (add_res(p, nms, c, g, m, ch))
            return -1;
    }
    cv_nm(g, sizeof g, "dec.%d", 3 * R + 3);
    layer_mod(nms, m, sizeof m, "decoder", 3 * R + 3);
    if (add_conv(p, nms, g, m, ch, 1, c->last_kernel, false))
        return -1;
    for (int q = 0; q < c->n_q; q++) {
        cv_nm(g, sizeof g, "vq.%d.embed", q);
        if (nms->ac)
            cv_nm(m, sizeof m, "%squantizer.vq.layers.%d._codebook.embed", nms->pfx, q);
        else
            cv_nm(m, sizeof m, "%squantizer.layers.%d.codebook.embed", nms->pfx, q);
        if (!sp_add(p, g, m, SP_PLAIN, 2, c->codebook_size, c->codebook_dim, 1))
            return -1;
    }
    return 0;
}

/* ---- config.json (HF EncodecConfig; absent optional keys take its class defaults) ---- */

static int opt_int(const json_value *cfg, const char *key, int64_t *out, int64_t lo, int64_t hi, const char *path)
{
    const json_value *v = json_get(cfg, key);
    if (!v)
        return 0;
    if (v->kind == JSON_NULL && !strcmp(key, "codebook_dim"))
        return 0; /* null: = hidden_size */
    if (!json_get_int(cfg, key, out) || *out < lo || *out > hi) {
        ag_set_error("%s: '%s' is not an integer in [%lld, %lld]", path, key, (long long)lo, (long long)hi);
        return -1;
    }
    return 0;
}

static int need_int(const json_value *cfg, const char *key, int64_t *out, int64_t lo, int64_t hi, const char *path)
{
    if (!json_get(cfg, key)) {
        ag_set_error("%s: '%s' missing", path, key);
        return -1;
    }
    return opt_int(cfg, key, out, lo, hi, path);
}

/* A string/bool option that must have one value (the one facebook/encodec_32khz uses). */
static int require_str(const json_value *cfg, const char *key, const char *dflt, const char *want, const char *path)
{
    const json_value *v = json_get(cfg, key);
    const char *s = v ? json_get_str(cfg, key) : dflt;
    if (!s || strcmp(s, want) != 0) {
        ag_set_error("%s: %s '%s' is not supported (only '%s')", path, key, s ? s : "(not a string)", want);
        return -1;
    }
    return 0;
}

static int get_bool(const json_value *cfg, const char *key, bool dflt, bool *out, const char *path)
{
    *out = dflt;
    if (json_get(cfg, key) && !json_get_bool(cfg, key, out)) {
        ag_set_error("%s: '%s' is not a boolean", path, key);
        return -1;
    }
    return 0;
}

static void published_cfg(ec_cfg *c)
{
    static const int64_t r[4] = {8, 5, 4, 4};
    memset(c, 0, sizeof *c);
    c->sample_rate = 32000;
    c->n_filters = 64;
    c->hidden = c->codebook_dim = 128;
    c->codebook_size = 2048;
    c->n_q = 4;
    c->lstm_layers = 2;
    c->kernel = c->last_kernel = 7;
    c->res_kernel = 3;
    c->compress = 2;
    c->n_ratios = 4;
    memcpy(c->ratios, r, sizeof r);
}

static int read_cfg(const char *path, ec_cfg *c)
{
    json_value *cfg = json_parse_file(path);
    if (!cfg)
        return -1;
    int rc = -1;
    int64_t channels = 1, nres = 1, dil = 2;
    bool causal, normalize;
    double bw;
    published_cfg(c);
    c->codebook_dim = -1;
    if (need_int(cfg, "sampling_rate", &c->sample_rate, 1, 1 << 20, path) ||
        need_int(cfg, "num_filters", &c->n_filters, 1, 4096, path) ||
        need_int(cfg, "hidden_size", &c->hidden, 1, 65536, path) ||
        need_int(cfg, "codebook_size", &c->codebook_size, 1, 1 << 20, path) ||
        opt_int(cfg, "codebook_dim", &c->codebook_dim, 1, 65536, path) ||
        opt_int(cfg, "num_lstm_layers", &c->lstm_layers, 1, 16, path) ||
        opt_int(cfg, "kernel_size", &c->kernel, 1, 63, path) ||
        opt_int(cfg, "last_kernel_size", &c->last_kernel, 1, 63, path) ||
        opt_int(cfg, "residual_kernel_size", &c->res_kernel, 1, 63, path) ||
        opt_int(cfg, "compress", &c->compress, 1, 64, path) ||
        opt_int(cfg, "audio_channels", &channels, 1, 64, path) ||
        opt_int(cfg, "num_residual_layers", &nres, 1, 64, path) ||
        opt_int(cfg, "dilation_growth_rate", &dil, 1, 64, path) ||
        require_str(cfg, "norm_type", "weight_norm", "weight_norm", path) ||
        require_str(cfg, "pad_mode", "reflect", "reflect", path) ||
        get_bool(cfg, "use_causal_conv", true, &causal, path) || get_bool(cfg, "normalize", false, &normalize, path) ||
        get_bool(cfg, "use_conv_shortcut", true, &c->cfg_conv_shortcut, path))
        goto out;
    if (c->codebook_dim < 0)
        c->codebook_dim = c->hidden;
    /* one residual layer: its dilation is growth^0 = 1, so dilation_growth_rate has no effect */
    const char *why = causal                         ? "use_causal_conv true (only non-causal is supported)"
                      : normalize                      ? "normalize true (only false is supported)"
                      : channels != 1                  ? "audio_channels != 1 (only mono is supported)"
                      : nres != 1                      ? "num_residual_layers != 1 (only 1 is supported)"
                      : c->codebook_dim != c->hidden   ? "codebook_dim != hidden_size (no VQ projections)"
                      : c->res_kernel % 2 == 0         ? "even residual_kernel_size"
                                                       : NULL;
    if (why) {
        ag_set_error("%s: unsupported Encodec variant: %s", path, why);
        goto out;
    }
    const json_value *ck = json_get(cfg, "chunk_length_s");
    if (ck && ck->kind != JSON_NULL) {
        ag_set_error("%s: chunked encoding (chunk_length_s) is not supported", path);
        goto out;
    }
    const json_value *st = json_get(cfg, "upsampling_ratios");
    if (!st || st->kind != JSON_ARRAY || st->n < 1 || st->n > EC_MAX_RATIOS) {
        ag_set_error("%s: 'upsampling_ratios' missing or not an array of 1..%d numbers", path, EC_MAX_RATIOS);
        goto out;
    }
    c->n_ratios = (int)st->n;
    int64_t hop = 1;
    for (size_t i = 0; i < st->n; i++) {
        const json_value *r = st->items[i];
        if (r->kind != JSON_NUMBER || !r->is_int || r->i < 1 || r->i > 64) {
            ag_set_error("%s: upsampling_ratios[%zu] is not an integer in [1, 64]", path, i);
            goto out;
        }
        c->ratios[i] = r->i;
        hop *= r->i;
    }
    if (c->n_filters << c->n_ratios > 65536 || c->compress > c->n_filters) {
        ag_set_error("%s: num_filters %lld does not fit %d ratios / compress %lld", path, (long long)c->n_filters,
                     c->n_ratios, (long long)c->compress);
        goto out;
    }
    /* HF: num_quantizers = 1000 * target_bandwidths[-1] // (frame_rate * 10) */
    const json_value *bws = json_get(cfg, "target_bandwidths");
    if (!bws || bws->kind != JSON_ARRAY || bws->n < 1 || bws->items[bws->n - 1]->kind != JSON_NUMBER ||
        !((bw = bws->items[bws->n - 1]->num) > 0 && bw < 1e6)) {
        ag_set_error("%s: 'target_bandwidths' missing or not an array of positive numbers", path);
        goto out;
    }
    const int64_t frame_rate = (c->sample_rate + hop - 1) / hop;
    c->n_q = (int64_t)floor(1000.0 * bw / (double)(frame_rate * 10));
    if (c->n_q < 1 || c->n_q > 64) {
        ag_set_error("%s: target bandwidth %g kbps gives %lld codebooks (1..64 supported)", path, bw,
                     (long long)c->n_q);
        goto out;
    }
    rc = 0;
out:
    json_free(cfg);
    return rc;
}

/* ---- checkpoint ---- */

static bool ignorable(const char *k)
{
    if (!strstr(k, "quantizer."))
        return false;
    const char *tail = strrchr(k, '.');
    return tail && (!strcmp(tail, ".inited") || !strcmp(tail, ".cluster_size") || !strcmp(tail, ".embed_avg"));
}

static int write_kvs(gs_writer *w, const ec_cfg *c, bool f16)
{
    int32_t r[EC_MAX_RATIOS];
    for (int i = 0; i < c->n_ratios; i++)
        r[i] = (int32_t)c->ratios[i];
    return gs_set_str(w, "general.architecture", "encodec") || gs_set_str(w, "general.type", "model") ||
           gs_set_str(w, "general.name", "Encodec") || gs_set_u32(w, "general.file_type", f16 ? 1 : 0) ||
           gs_set_u32(w, "encodec.sample_rate", (uint32_t)c->sample_rate) ||
           gs_set_u32(w, "encodec.n_filters", (uint32_t)c->n_filters) ||
           gs_set_arr(w, "encodec.ratios", AG_GGUF_INT32, r, (uint64_t)c->n_ratios) ||
           gs_set_u32(w, "encodec.dimension", (uint32_t)c->hidden) ||
           gs_set_u32(w, "encodec.lstm_layers", (uint32_t)c->lstm_layers) ||
           gs_set_bool(w, "encodec.encoder_bidirectional", false) ||
           gs_set_str(w, "encodec.shortcut", c->conv_shortcut ? "conv" : "identity") ||
           gs_set_str(w, "encodec.activation", "elu") || gs_set_bool(w, "encodec.causal", false) ||
           gs_set_str(w, "encodec.pad_mode", "reflect") || gs_set_u32(w, "encodec.kernel_size", (uint32_t)c->kernel) ||
           gs_set_u32(w, "encodec.last_kernel_size", (uint32_t)c->last_kernel) ||
           gs_set_u32(w, "encodec.residual_kernel_size", (uint32_t)c->res_kernel) ||
           gs_set_u32(w, "encodec.compress", (uint32_t)c->compress) ||
           gs_set_u32(w, "encodec.codebook_size", (uint32_t)c->codebook_size) ||
           gs_set_u32(w, "encodec.codebook_dim", (uint32_t)c->codebook_dim) ||
           gs_set_u32(w, "encodec.n_q", (uint32_t)c->n_q)
               ? -1
               : 0;
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds the checkpoint and the config: INPUT a folder or a checkpoint file. */
static int locate(const char *input, char *ckpt_path, size_t n1, char *cfg_path, size_t n2)
{
    static const char *const names[] = {"model.safetensors", "pytorch_model.bin", "state_dict.bin",
                                        "compression_state_dict.bin"};
    if (is_file(input)) {
        cv_nm(ckpt_path, n1, "%s", input);
        const char *slash = strrchr(input, '/');
        if (slash)
            cv_nm(cfg_path, n2, "%.*s/config.json", (int)(slash - input), input);
        else
            cv_nm(cfg_path, n2, "config.json");
        return 0;
    }
    cv_nm(cfg_path, n2, "%s/config.json", input);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cv_nm(ckpt_path, n1, "%s/%s", input, names[i]);
        if (is_file(ckpt_path))
            return 0;
    }
    ag_set_error("%s: no model.safetensors, pytorch_model.bin, state_dict.bin or compression_state_dict.bin", input);
    return -1;
}

/* Naming and wrapper prefix from the keys. */
static int detect_names(const ckpt *c, ec_names *n, const char *path)
{
    n->pfx = "";
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->t[i].name;
        if (!strncmp(k, "best_state.", 11)) {
            n->pfx = "best_state.";
            k += 11;
        }
        if (!strncmp(k, "encoder.model.", 14)) {
            n->ac = true;
            return 0;
        }
        if (!strncmp(k, "encoder.layers.", 15)) {
            n->ac = false;
            return 0;
        }
    }
    ag_set_error("%s: no encoder.layers.* (HF) or encoder.model.* (audiocraft) tensors: not an Encodec checkpoint",
                 path);
    return -1;
}

int convert_encodec(const char *input, const char *out, const convert_opts *o)
{
    ec_cfg cfg;
    ec_names names = {"", false};
    ckpt c;
    sp_plan p = {.name_width = 32};
    gs_writer *w = NULL;
    int rc = -1;
    char ck_path[4096], cfg_path[4096];
    ckpt_init(&c);
    if (locate(input, ck_path, sizeof ck_path, cfg_path, sizeof cfg_path))
        goto out;
    if (is_file(cfg_path)) {
        if (read_cfg(cfg_path, &cfg))
            goto out;
    } else {
        published_cfg(&cfg);
        if (!o->quiet)
            fprintf(stderr, "no %s: using facebook/encodec_32khz's config\n", cfg_path);
    }
    if (ckpt_load_file(&c, ck_path) || detect_names(&c, &names, ck_path))
        goto out;
    /* an old hub revision of encodec_32khz says use_conv_shortcut true; the weights tell */
    for (size_t i = 0; i < c.n; i++)
        cfg.conv_shortcut |= strstr(c.t[i].name, ".shortcut.") != NULL;
    if (cfg.conv_shortcut != cfg.cfg_conv_shortcut && !o->quiet && is_file(cfg_path))
        fprintf(stderr, "note: config says use_conv_shortcut %s, the checkpoint has %s shortcut convs: using %s\n",
                cfg.cfg_conv_shortcut ? "true" : "false", cfg.conv_shortcut ? "" : "no",
                cfg.conv_shortcut ? "conv shortcuts" : "identity shortcuts");
    if (build_plan(&p, &names, &cfg) || sp_resolve(&p, &c, ignorable) || !(w = gs_new()) ||
        write_kvs(w, &cfg, o->wtype == AG_TYPE_F16) || sp_write(&p, w, out, o))
        goto out;
    if (!o->quiet)
        fprintf(stderr, "wrote %s: %zu tensors (%s names, %lld codebooks)\n", out, p.n, names.ac ? "audiocraft" : "HF",
                (long long)cfg.n_q);
    rc = 0;
out:
    gs_free(w);
    sp_free(&p);
    ckpt_free(&c);
    return rc;
}
