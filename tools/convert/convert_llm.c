/* anygpt-convert llm: AnyGPT (LLaMA-2-7B, HF layout) -> GGUF with llama.cpp's `llama` conventions:
 * key names, tensor names, Q/K rows permuted from HF's rotate-half order back to interleaved
 * pairs, norms F32, 2-D weights F32 or F16. Tensors are streamed one at a time. */
#include "convert.h"
#include "ckpt.h"
#include "gguf_stream.h"
#include "json.h"
#include "llm_vocab.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/quant.h"
#include "anygpt/tensor.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    int64_t n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, n_ctx;
    double rms_eps, rope_theta;
    bool tie_embeddings;
    const char *rope_scaling_type;
    double rope_scaling_factor;
} llm_hparams;

enum { PERM_NONE, PERM_Q, PERM_K };

#define CHUNK_ELEMS ((int64_t)1 << 22) /* 16 MiB of f32 scratch per chunk */

typedef struct {
    char gguf[96];
    char hf[128];
    int perm;
    int n_dims;
    int64_t shape[2]; /* torch order: rows, cols */
    const ckpt_tensor *src;
    int idx;
} plan_entry;

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int need_int(const json_value *cfg, const char *key, int64_t *out, const char *path)
{
    if (!json_get_int(cfg, key, out) || *out <= 0) {
        ag_set_error("%s: '%s' missing or not a positive integer", path, key);
        return -1;
    }
    return 0;
}

static int read_hparams(const json_value *cfg, const char *path, llm_hparams *h)
{
    memset(h, 0, sizeof *h);
    const char *mt = json_get_str(cfg, "model_type");
    if (mt && strcmp(mt, "llama") != 0) {
        ag_set_error("%s: model_type is '%s', expected 'llama' (AnyGPT is a LlamaForCausalLM)", path, mt);
        return -1;
    }
    if (need_int(cfg, "vocab_size", &h->n_vocab, path) || need_int(cfg, "hidden_size", &h->n_embd, path) ||
        need_int(cfg, "intermediate_size", &h->n_ff, path) ||
        need_int(cfg, "num_hidden_layers", &h->n_layer, path) ||
        need_int(cfg, "num_attention_heads", &h->n_head, path))
        return -1;
    if (!json_get(cfg, "num_key_value_heads"))
        h->n_head_kv = h->n_head;
    else if (need_int(cfg, "num_key_value_heads", &h->n_head_kv, path))
        return -1;
    if (!json_get(cfg, "max_position_embeddings"))
        h->n_ctx = 4096;
    else if (need_int(cfg, "max_position_embeddings", &h->n_ctx, path))
        return -1;
    if (!json_get_num(cfg, "rms_norm_eps", &h->rms_eps) || !(h->rms_eps > 0)) {
        ag_set_error("%s: 'rms_norm_eps' missing or not positive", path);
        return -1;
    }
    h->rope_theta = 10000.0;
    if (json_get(cfg, "rope_theta") && (!json_get_num(cfg, "rope_theta", &h->rope_theta) || !(h->rope_theta > 0))) {
        ag_set_error("%s: 'rope_theta' is not a positive number", path);
        return -1;
    }
    json_get_bool(cfg, "tie_word_embeddings", &h->tie_embeddings);
    const json_value *rs = json_get(cfg, "rope_scaling");
    if (rs && rs->kind == JSON_OBJECT) {
        h->rope_scaling_type = json_get_str(rs, "type");
        if (!h->rope_scaling_type)
            h->rope_scaling_type = json_get_str(rs, "rope_type");
        if (!h->rope_scaling_type || strcmp(h->rope_scaling_type, "linear") != 0 ||
            !json_get_num(rs, "factor", &h->rope_scaling_factor)) {
            ag_set_error("%s: rope_scaling other than {type: linear, factor} is not supported", path);
            return -1;
        }
    }
    if (h->n_embd % h->n_head || (h->n_embd / h->n_head) % 2 || h->n_head % h->n_head_kv) {
        ag_set_error("%s: hidden_size %lld, %lld heads and %lld kv heads do not give an even head size", path,
                     (long long)h->n_embd, (long long)h->n_head, (long long)h->n_head_kv);
        return -1;
    }
    if (h->n_layer > 4096 || h->n_vocab > (1 << 24)) {
        ag_set_error("%s: implausible num_hidden_layers or vocab_size", path);
        return -1;
    }
    return 0;
}

/* Shards named by model.safetensors.index.json / pytorch_model.bin.index.json (weight_map),
 * or the single-file model.safetensors / pytorch_model.bin. Index entries are checked against
 * what the files hold. */
static int load_weights(ckpt *c, const char *dir)
{
    static const char *const idx_names[] = {"model.safetensors.index.json", "pytorch_model.bin.index.json"};
    static const char *const single[] = {"model.safetensors", "pytorch_model.bin"};
    char path[4096];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, idx_names[k]);
        if (!is_file(path))
            continue;
        json_value *idx = json_parse_file(path);
        if (!idx)
            return -1;
        const json_value *wm = json_get(idx, "weight_map");
        int rc = -1;
        const char **files = NULL;
        size_t nf = 0;
        if (!wm || wm->kind != JSON_OBJECT || wm->n == 0) {
            ag_set_error("%s: no 'weight_map' object", path);
            goto idx_done;
        }
        files = calloc(wm->n, sizeof *files);
        if (!files) {
            ag_set_error("out of memory");
            goto idx_done;
        }
        for (size_t e = 0; e < wm->n; e++) {
            const json_value *f = wm->items[e];
            if (f->kind != JSON_STRING || strchr(f->str, '/') || !strcmp(f->str, "..") || !f->str[0]) {
                ag_set_error("%s: weight_map entry for '%s' is not a file name in the folder", path, wm->keys[e]);
                goto idx_done;
            }
            size_t j = 0;
            while (j < nf && strcmp(files[j], f->str))
                j++;
            if (j == nf)
                files[nf++] = f->str;
        }
        for (size_t j = 0; j < nf; j++) {
            char fp[4096];
            snprintf(fp, sizeof fp, "%s/%s", dir, files[j]);
            if (!is_file(fp)) {
                ag_set_error("%s: shard '%s' named in %s is missing", dir, files[j], idx_names[k]);
                goto idx_done;
            }
            fprintf(stderr, "anygpt-convert: reading %s\n", fp);
            if (ckpt_load_file(c, fp))
                goto idx_done;
        }
        for (size_t e = 0; e < wm->n; e++) {
            const ckpt_tensor *t = ckpt_find(c, wm->keys[e]);
            const char *f = wm->items[e]->str;
            size_t fl = strlen(f), tl = t ? strlen(t->file) : 0;
            if (!t || tl < fl + 1 || strcmp(t->file + tl - fl, f) || t->file[tl - fl - 1] != '/') {
                ag_set_error("tensor '%s' is listed in %s for shard '%s' but %s", wm->keys[e], idx_names[k], f,
                             t ? "found in another shard" : "is missing from it (incomplete download?)");
                goto idx_done;
            }
        }
        for (size_t e = 0; e < c->n; e++)
            if (!json_get(wm, c->t[e].name)) {
                ag_set_error("%s: tensor '%s' is not listed in %s", c->t[e].file, c->t[e].name, idx_names[k]);
                goto idx_done;
            }
        rc = 0;
    idx_done:
        free(files);
        json_free(idx);
        return rc;
    }
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, single[k]);
        if (is_file(path)) {
            fprintf(stderr, "anygpt-convert: reading %s\n", path);
            return ckpt_load_file(c, path);
        }
    }
    ag_set_error("%s: no weights found (model.safetensors[.index.json] or pytorch_model.bin[.index.json])", dir);
    return -1;
}

static int add_plan(plan_entry *p, size_t *n, const char *gguf, const char *hf, int perm, int n_dims, int64_t r,
                    int64_t cols)
{
    plan_entry *e = &p[(*n)++];
    memset(e, 0, sizeof *e);
    snprintf(e->gguf, sizeof e->gguf, "%s", gguf);
    snprintf(e->hf, sizeof e->hf, "%s", hf);
    e->perm = perm;
    e->n_dims = n_dims;
    e->shape[0] = r;
    e->shape[1] = cols;
    return 0;
}

static size_t build_plan(plan_entry *p, const llm_hparams *h)
{
    size_t n = 0;
    const int64_t D = h->n_embd, F = h->n_ff, V = h->n_vocab, KV = h->n_head_kv * (h->n_embd / h->n_head);
    add_plan(p, &n, "token_embd.weight", "model.embed_tokens.weight", PERM_NONE, 2, V, D);
    for (int64_t l = 0; l < h->n_layer; l++) {
        static const struct { const char *g, *hf; int perm, nd, rows, cols; } L[] = {
            /* rows/cols: 0 = D, 1 = F, 2 = KV */
            {"attn_norm", "input_layernorm", PERM_NONE, 1, 0, 0},
            {"attn_q", "self_attn.q_proj", PERM_Q, 2, 0, 0},
            {"attn_k", "self_attn.k_proj", PERM_K, 2, 2, 0},
            {"attn_v", "self_attn.v_proj", PERM_NONE, 2, 2, 0},
            {"attn_output", "self_attn.o_proj", PERM_NONE, 2, 0, 0},
            {"ffn_norm", "post_attention_layernorm", PERM_NONE, 1, 0, 0},
            {"ffn_gate", "mlp.gate_proj", PERM_NONE, 2, 1, 0},
            {"ffn_up", "mlp.up_proj", PERM_NONE, 2, 1, 0},
            {"ffn_down", "mlp.down_proj", PERM_NONE, 2, 0, 1},
        };
        const int64_t dims[3] = {D, F, KV};
        for (size_t k = 0; k < sizeof L / sizeof L[0]; k++) {
            char g[96], hf[128];
            snprintf(g, sizeof g, "blk.%lld.%s.weight", (long long)l, L[k].g);
            snprintf(hf, sizeof hf, "model.layers.%lld.%s.weight", (long long)l, L[k].hf);
            add_plan(p, &n, g, hf, L[k].perm, L[k].nd, dims[L[k].rows], dims[L[k].cols]);
        }
    }
    add_plan(p, &n, "output_norm.weight", "model.norm.weight", PERM_NONE, 1, D, 0);
    if (!h->tie_embeddings)
        add_plan(p, &n, "output.weight", "lm_head.weight", PERM_NONE, 2, V, D);
    return n;
}

/* HF stores Q/K rows per head as [first halves of the rotary pairs | second halves]; llama.cpp
 * wants the pairs interleaved. With rows viewed as (heads, 2, hd/2): swap the last two axes,
 * i.e. out row h*hd + 2i + j = in row h*hd + j*hd/2 + i. */
static void permute_rows(const float *in, float *out, int64_t rows, int64_t cols, int64_t n_heads)
{
    const int64_t hd = rows / n_heads, half = hd / 2;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++)
                memcpy(out + (h * hd + 2 * i + j) * cols, in + (h * hd + j * half + i) * cols,
                       (size_t)cols * sizeof *out);
}

static const char *variant_from(const char *dir, const json_value *cfg)
{
    const char *srcs[2] = {dir, json_get_str(cfg, "_name_or_path")};
    for (int s = 0; s < 2; s++) {
        if (!srcs[s])
            continue;
        /* the last path component, lower-cased */
        size_t n = strlen(srcs[s]);
        while (n > 1 && srcs[s][n - 1] == '/')
            n--;
        size_t b = n;
        while (b > 0 && srcs[s][b - 1] != '/')
            b--;
        char name[256];
        size_t len = n - b < sizeof name - 1 ? n - b : sizeof name - 1;
        for (size_t k = 0; k < len; k++)
            name[k] = (char)tolower((unsigned char)srcs[s][b + k]);
        name[len] = 0;
        if (strstr(name, "chat"))
            return "chat";
        if (strstr(name, "base"))
            return "base";
    }
    return "unknown";
}

static void base_name(const char *dir, char *out, size_t n)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t b = len;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    snprintf(out, n, "%.*s", (int)(len - b), dir + b);
}

static int write_kvs(gs_writer *w, const llm_hparams *h, const char *dir, const json_value *cfg, ag_type wtype,
                     const llm_vocab *v)
{
    char name[256], path[4096];
    base_name(dir, name, sizeof name);
    /* general.type / quantization_version as llama.cpp's converter writes them */
    if (gs_set_str(w, "general.architecture", "llama") || gs_set_str(w, "general.type", "model") ||
        gs_set_str(w, "general.name", name) || gs_set_u32(w, "general.quantization_version", 2) ||
        gs_set_u32(w, "general.file_type", wtype == AG_TYPE_F16 ? 1 : 0) ||
        gs_set_u32(w, "llama.vocab_size", (uint32_t)h->n_vocab) ||
        gs_set_u32(w, "llama.context_length", (uint32_t)h->n_ctx) ||
        gs_set_u32(w, "llama.embedding_length", (uint32_t)h->n_embd) ||
        gs_set_u32(w, "llama.block_count", (uint32_t)h->n_layer) ||
        gs_set_u32(w, "llama.feed_forward_length", (uint32_t)h->n_ff) ||
        gs_set_u32(w, "llama.rope.dimension_count", (uint32_t)(h->n_embd / h->n_head)) ||
        gs_set_u32(w, "llama.attention.head_count", (uint32_t)h->n_head) ||
        gs_set_u32(w, "llama.attention.head_count_kv", (uint32_t)h->n_head_kv) ||
        gs_set_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)h->rms_eps) ||
        gs_set_f32(w, "llama.rope.freq_base", (float)h->rope_theta))
        return -1;
    if (h->rope_scaling_type && (gs_set_str(w, "llama.rope.scaling.type", "linear") ||
                                 gs_set_f32(w, "llama.rope.scaling.factor", (float)h->rope_scaling_factor)))
        return -1;
    if (llm_vocab_write_kvs(v, w))
        return -1;
    /* AnyGPT specifics: which model, its own generation defaults, where the added tokens start. */
    if (gs_set_str(w, "anygpt.variant", variant_from(dir, cfg)) ||
        gs_set_u32(w, "anygpt.added_tokens.first_id", (uint32_t)v->n_spm) ||
        gs_set_u32(w, "anygpt.added_tokens.count", (uint32_t)v->n_added))
        return -1;
    /* HF's slow LlamaTokenizer (transformers 4.34, as AnyGPT pins) treats a missing "legacy" as
     * true; it decides whether text after an added token gets SentencePiece's dummy prefix. */
    bool legacy = true;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (is_file(path)) {
        json_value *tc = json_parse_file(path);
        if (!tc)
            return -1;
        json_get_bool(tc, "legacy", &legacy);
        json_free(tc);
    }
    if (gs_set_bool(w, "anygpt.tokenizer.hf_legacy", legacy))
        return -1;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (is_file(path)) {
        size_t n;
        char *text = read_whole_file(path, &n);
        if (!text)
            return -1;
        json_value *g = json_parse(text, n, path);
        int rc = g ? gs_set_str(w, "anygpt.generation_config", text) : -1;
        json_free(g);
        free(text);
        if (rc)
            return -1;
    }
    return 0;
}

int convert_llm(const char *dir, const char *out, const convert_opts *o)
{
    char path[4096];
    ckpt c;
    ckpt_init(&c);
    llm_vocab v = {0};
    json_value *cfg = NULL;
    gs_writer *w = NULL;
    plan_entry *plan = NULL;
    float *f32 = NULL, *tmp = NULL;
    void *conv = NULL;
    int rc = -1;
    llm_hparams h;

    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!is_file(path)) {
        ag_set_error("%s: no config.json (expected the HF folder of fnlp/AnyGPT-chat or -base)", dir);
        goto done;
    }
    if (!(cfg = json_parse_file(path)) || read_hparams(cfg, path, &h))
        goto done;
    if (llm_vocab_load(&v, dir, h.n_vocab) || load_weights(&c, dir))
        goto done;

    plan = calloc((size_t)(3 + 9 * h.n_layer), sizeof *plan);
    if (!plan) {
        ag_set_error("out of memory");
        goto done;
    }
    const size_t n_plan = build_plan(plan, &h);
    int64_t max_perm = 1, max_row = 1;
    for (size_t k = 0; k < n_plan; k++) {
        plan_entry *e = &plan[k];
        e->src = ckpt_find(&c, e->hf);
        if (!e->src) {
            ag_set_error("%s: tensor '%s' is missing from the checkpoint", dir, e->hf);
            goto done;
        }
        const ckpt_tensor *t = e->src;
        bool ok = t->n_dims == e->n_dims && t->shape[0] == e->shape[0] && (e->n_dims == 1 || t->shape[1] == e->shape[1]);
        if (!ok) {
            char got[128] = "", *q = got;
            for (int d = 0; d < t->n_dims && q < got + 100; d++)
                q += sprintf(q, "%s%lld", d ? " x " : "", (long long)t->shape[d]);
            if (e->n_dims == 1)
                ag_set_error("%s: tensor '%s' has shape [%s], config.json implies [%lld]", t->file, t->name, got,
                             (long long)e->shape[0]);
            else
                ag_set_error("%s: tensor '%s' has shape [%s], config.json implies [%lld x %lld]", t->file, t->name,
                             got, (long long)e->shape[0], (long long)e->shape[1]);
            goto done;
        }
        if (t->dtype != CKPT_F32 && t->dtype != CKPT_F16 && t->dtype != CKPT_BF16) {
            ag_set_error("%s: tensor '%s' has dtype %s; F32, F16 or BF16 expected", t->file, t->name,
                         ckpt_dtype_name(t->dtype));
            goto done;
        }
        const int64_t row_len = e->n_dims == 1 ? e->shape[0] : e->shape[1]; /* smallest piece */
        if (row_len > max_row)
            max_row = row_len;
        if (e->perm != PERM_NONE && ckpt_numel(t) > max_perm)
            max_perm = ckpt_numel(t);
    }
    /* Anything else in the checkpoint is unexpected (rotary inv_freq buffers are derived data). */
    for (size_t k = 0; k < c.n; k++) {
        const char *nm = c.t[k].name;
        static const char inv_freq[] = ".rotary_emb.inv_freq";
        size_t l = strlen(nm), il = sizeof inv_freq - 1;
        if (l > il && !strcmp(nm + l - il, inv_freq))
            continue;
        bool known = false;
        for (size_t j = 0; j < n_plan && !known; j++)
            known = plan[j].src == &c.t[k];
        if (!known) {
            ag_set_error("%s: unexpected tensor '%s' (not part of a %lld-layer LLaMA per config.json)", c.t[k].file,
                         nm, (long long)h.n_layer);
            goto done;
        }
    }

    if (!(w = gs_new()) || write_kvs(w, &h, dir, cfg, o->wtype, &v))
        goto done;
    for (size_t k = 0; k < n_plan; k++) {
        plan_entry *e = &plan[k];
        const int64_t ne[2] = {e->n_dims == 1 ? e->shape[0] : e->shape[1], e->shape[0]};
        e->idx = gs_add_tensor(w, e->gguf, e->n_dims == 1 ? AG_TYPE_F32 : o->wtype, e->n_dims, ne);
        if (e->idx < 0)
            goto done;
    }
    /* Scratch: whole Q/K matrices (the permutation mixes rows within a head), otherwise chunks
     * of rows, so memory stays far below the model size. */
    const int64_t want_chunk = o->chunk_elems > 0 ? o->chunk_elems : CHUNK_ELEMS;
    int64_t chunk = max_perm > want_chunk ? max_perm : want_chunk;
    if (chunk < max_row)
        chunk = max_row;
    f32 = malloc((size_t)chunk * sizeof *f32);
    tmp = malloc((size_t)max_perm * sizeof *tmp);
    conv = malloc((size_t)chunk * sizeof(ag_fp16));
    if (!f32 || !tmp || !conv) {
        ag_set_error("out of memory (%lld-element scratch)", (long long)chunk);
        goto done;
    }
    if (gs_begin(w, out))
        goto done;
    for (size_t k = 0; k < n_plan; k++) {
        plan_entry *e = &plan[k];
        const bool half = e->n_dims == 2 && o->wtype == AG_TYPE_F16;
        const int64_t rows = e->shape[0], cols = e->n_dims == 2 ? e->shape[1] : 1;
        /* rows per chunk; a 1-D vector is one piece */
        int64_t step = e->perm != PERM_NONE ? rows : want_chunk / cols;
        if (step < 1 || e->n_dims == 1)
            step = 1;
        const int64_t n_outer = e->n_dims == 1 ? 1 : rows;
        for (int64_t r0 = 0; r0 < n_outer; r0 += step) {
            const int64_t nr = r0 + step <= n_outer ? step : n_outer - r0;
            const int64_t n = e->n_dims == 1 ? rows : nr * cols;
            if ((e->n_dims == 1 ? ckpt_to_f32(e->src, f32) : ckpt_rows_to_f32(e->src, r0, nr, f32)))
                goto done;
            const float *src = f32;
            if (e->perm != PERM_NONE) {
                permute_rows(f32, tmp, rows, cols, e->perm == PERM_Q ? h.n_head : h.n_head_kv);
                src = tmp;
            }
            const void *data = src;
            if (half) {
                ag_fp32_to_fp16_row(src, conv, n); /* round to nearest even */
                data = conv;
            }
            if (gs_write_part(w, e->idx, data, (size_t)n * (half ? 2 : 4)))
                goto done;
        }
        ckpt_release(e->src);
        if (!o->quiet) {
            if (e->n_dims == 2)
                fprintf(stderr, "[%4zu/%4zu] %-28s %-40s [%lld x %lld] %s -> %s\n", k + 1, n_plan, e->gguf, e->hf,
                        (long long)rows, (long long)cols, ckpt_dtype_name(e->src->dtype), half ? "F16" : "F32");
            else
                fprintf(stderr, "[%4zu/%4zu] %-28s %-40s [%lld] %s -> F32\n", k + 1, n_plan, e->gguf, e->hf,
                        (long long)rows, ckpt_dtype_name(e->src->dtype));
        }
    }
    if (gs_finish(w))
        goto done;
    fprintf(stderr, "anygpt-convert: wrote %s (%zu tensors, %lld tokens of which %lld added)\n", out, n_plan,
            (long long)v.n, (long long)v.n_added);
    rc = 0;
done:
    free(f32);
    free(tmp);
    free(conv);
    free(plan);
    gs_free(w);
    json_free(cfg);
    llm_vocab_free(&v);
    ckpt_free(&c);
    return rc;
}
