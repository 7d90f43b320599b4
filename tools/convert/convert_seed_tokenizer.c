/* KIND seed-tokenizer: a folder holding BLIP-2's eva_vit_g.pth and SEED's seed_quantizer.pt
 * (torch zips of flat state dicts, fp16 or fp32 each) -> GGUF architecture "seed-tokenizer"
 * (core/models/seed_tokenizer.c). The key plan and the sizes are in seed_tokenizer_plan.c; here
 * the KVs are written and the tensors streamed: weight matrices and the patch kernel F16 under
 * --dtype f16; norms, biases, CLS / position / query embeddings and the codebook always F32. */
#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "seed_tokenizer_plan.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int load_folder(ckpt *vit, ckpt *seed, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ag_set_error("%s: not a folder (the input is a folder holding BLIP-2's eva_vit_g.pth and SEED's "
                     "seed_quantizer.pt)",
                     dir);
        return -1;
    }
    static const char *const names[2] = {"eva_vit_g.pth", "seed_quantizer.pt"};
    ckpt *dst[2] = {vit, seed};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        cv_nm(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0) {
            ag_set_error("%s: no %s in this folder (both eva_vit_g.pth and seed_quantizer.pt are needed)", dir,
                         names[i]);
            return -1;
        }
        if (ckpt_load_file(dst[i], path))
            return -1;
    }
    return 0;
}

static int write_kvs(gs_writer *w, const seedtok_plan *p, bool f16)
{
    uint32_t cross[SEEDTOK_MAX_LAYERS];
    uint64_t nc = 0;
    for (int64_t l = 0; l < p->qf_layers; l++)
        if (p->cross[l])
            cross[nc++] = (uint32_t)l;
#define U(k, v) gs_set_u32(w, "seed-tokenizer." k, (uint32_t)(v))
#define F(k, v) gs_set_f32(w, "seed-tokenizer." k, v)
    return gs_set_str(w, "general.architecture", "seed-tokenizer") || gs_set_str(w, "general.type", "model") ||
                   gs_set_str(w, "general.name", "SEED tokenizer (EVA-CLIP ViT-g + causal Q-Former + VQ)") ||
                   gs_set_u32(w, "general.file_type", f16 ? 1 : 0) || U("image_size", p->image_size) ||
                   U("patch_size", p->patch_size) ||
                   /* the normalisation SEED's ImageTokenizer applies: OpenAI-CLIP's */
                   gs_set_arr(w, "seed-tokenizer.image_mean", AG_GGUF_FLOAT32, AG_CLIP_MEAN, 3) ||
                   gs_set_arr(w, "seed-tokenizer.image_std", AG_GGUF_FLOAT32, AG_CLIP_STD, 3) ||
                   U("vit.width", p->vit_width) || U("vit.depth", p->vit_depth) || U("vit.heads", p->vit_heads) ||
                   U("vit.mlp", p->vit_mlp) || F("vit.norm_eps", 1e-6f) || F("ln_vision.eps", 1e-5f) ||
                   U("qformer.hidden", p->qf_hidden) || U("qformer.layers", p->qf_layers) ||
                   U("qformer.heads", p->qf_heads) || U("qformer.ffn", p->qf_ffn) || F("qformer.norm_eps", 1e-12f) ||
                   /* BERT's additive causal mask; SEED's BertModel makes the queries causal only
                    * when there are exactly 32 of them (is_casual), else they attend both ways */
                   F("qformer.causal_mask", p->n_query == 32 ? -10000.0f : 0.0f) ||
                   gs_set_arr(w, "seed-tokenizer.qformer.cross_attention_layers", AG_GGUF_UINT32, cross, nc) ||
                   U("n_query", p->n_query) || U("codebook_size", p->codebook_size) || U("code_dim", p->code_dim)
               ? -1
               : 0;
#undef U
#undef F
}

static int64_t numel(const seedtok_entry *e) { return e->ne[0] * e->ne[1] * e->ne[2] * e->ne[3]; }

/* The entry's values as F32 in GGUF order. */
static int entry_data(const seedtok_entry *e, float *buf)
{
    if (e->kind == SEEDTOK_PLAIN)
        return ckpt_to_f32(e->src, buf);
    const int64_t d = e->ne[0] / 3;
    if (ckpt_to_f32(e->src, buf) || ckpt_to_f32(e->src2, buf + 2 * d))
        return -1;
    memset(buf + d, 0, (size_t)d * sizeof *buf);
    return 0;
}

int convert_seed_tokenizer(const char *input, const char *out, const convert_opts *o)
{
    ckpt vit, seed;
    seedtok_plan p = {0};
    gs_writer *w = NULL;
    float *buf = NULL;
    ag_fp16 *hbuf = NULL;
    bool *half = NULL;
    int *idx = NULL;
    int rc = -1;
    ckpt_init(&vit);
    ckpt_init(&seed);
    if (load_folder(&vit, &seed, input) || seedtok_plan_build(&vit, &seed, &p))
        goto out;
    const bool f16 = o->wtype == AG_TYPE_F16;
    half = calloc(p.n, sizeof *half);
    idx = calloc(p.n, sizeof *idx);
    if (!half || !idx) {
        ag_set_error("out of memory");
        goto out;
    }
    if (!(w = gs_new()) || write_kvs(w, &p, f16))
        goto out;
    int64_t max_n = 0;
    for (size_t i = 0; i < p.n; i++) {
        const seedtok_entry *e = &p.e[i];
        half[i] = f16 && e->matrix;
        max_n = numel(e) > max_n ? numel(e) : max_n;
        if ((idx[i] = gs_add_tensor(w, e->gguf, half[i] ? AG_TYPE_F16 : AG_TYPE_F32, e->nd, e->ne)) < 0)
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
        const seedtok_entry *e = &p.e[i];
        const int64_t n = numel(e);
        if (entry_data(e, buf))
            goto out;
        if (half[i]) {
            for (int64_t j = 0; j < n; j++)
                hbuf[j] = ag_fp32_to_fp16(buf[j]);
            if (gs_write_tensor(w, idx[i], hbuf, (size_t)n * sizeof *hbuf))
                goto out;
        } else if (gs_write_tensor(w, idx[i], buf, (size_t)n * sizeof *buf)) {
            goto out;
        }
        ckpt_release(e->src);
        if (!o->quiet)
            fprintf(stderr, "  %-32s %s\n", e->gguf, half[i] ? "f16" : "f32");
    }
    if (gs_finish(w))
        goto out;
    if (!o->quiet)
        fprintf(stderr,
                "seed-tokenizer: %dx%d input, ViT %lld wide x %lld blocks (%lld heads, MLP %lld), Q-Former %lld x %lld "
                "layers (%lld with cross-attention), %lld queries, codebook %lld x %lld\n",
                (int)p.image_size, (int)p.image_size, (long long)p.vit_width, (long long)p.vit_depth,
                (long long)p.vit_heads, (long long)p.vit_mlp, (long long)p.qf_hidden, (long long)p.qf_layers,
                (long long)p.n_cross, (long long)p.n_query, (long long)p.codebook_size, (long long)p.code_dim);
    rc = 0;
out:
    gs_free(w);
    free(buf);
    free(hbuf);
    free(half);
    free(idx);
    seedtok_plan_free(&p);
    ckpt_free(&vit);
    ckpt_free(&seed);
    return rc;
}
