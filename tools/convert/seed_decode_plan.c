/* The decode side of seed_quantizer.pt (AnyGPT seed2 qformer_quantizer.py,
 * Blip2QformerQuantizer.get_codebook_entry) -> GGUF tensors "seed_decode.*" of
 * core/models/seed_decode.c. Shapes give every size; the head count (12) is the reference code's
 * constant. The rest of the file is the encoder side and training branches: skipped by the list
 * below; any other key is an error naming it. */
#include "seed_unclip.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <string.h>

#define S(...) ((const int64_t[]){__VA_ARGS__})

/* seed_quantizer.pt's other parts: the causal Q-Former and its BERT leftovers (word/position
 * embeddings, text FFNs, LM head), the query tokens, ln_vision, the ViT should a file carry it,
 * the encode side of the quantizer, the recon_s branch (pos_embed, blocks), and what SEED's
 * training model also saves: the text distillation branch, the reverse Q-Formers, BLIP-2's
 * contrastive heads and the CLIP teacher. */
bool seed_decode_ignorable(const char *k)
{
    static const char *const prefixes[] = {"Qformer.", "ln_vision.", "visual_encoder.", "encode_task_layer.", "blocks.",
                                           "blocks_text.", "Reverse_Qformer.", "Reverse_Qformer_text.",
                                           "distill_text_proj.", "vision_proj.", "text_proj.", "itm_head.",
                                           "clip_model.", "text_encoder."};
    static const char *const exact[] = {"query_tokens", "pos_embed", "pos_embed_text", "reverse_tokens",
                                        "reverse_tokens_text", "temp"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(k, prefixes[i], strlen(prefixes[i])))
            return true;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(k, exact[i]))
            return true;
    return false;
}

/* Dimension d of key (which must have nd dims). */
static int64_t dim_of(const ckpt *c, const char *key, int nd, int d)
{
    const ckpt_tensor *t = ckpt_find(c, key);
    if (!t) {
        ag_set_error("seed_quantizer.pt lacks tensor '%s'", key);
        return -1;
    }
    if (t->n_dims != nd || t->shape[d] < 1) {
        char have[160];
        tp_shape_str(have, sizeof have, t->n_dims, t->shape);
        ag_set_error("seed_quantizer.pt: tensor '%s' has shape %s, expected %d dims", key, have, nd);
        return -1;
    }
    return t->shape[d];
}

static int infer(const ckpt *c, seed_decode_dims *d)
{
    memset(d, 0, sizeof *d);
    if ((d->codebook_size = dim_of(c, "quantize.embedding.weight", 2, 0)) < 0 ||
        (d->codebook_dim = dim_of(c, "quantize.embedding.weight", 2, 1)) < 0 ||
        (d->dim = dim_of(c, "decode_task_layer.2.weight", 2, 0)) < 0 ||
        (d->n_codes = dim_of(c, "pos_embed_image", 3, 1)) < 0 ||
        (d->ff = dim_of(c, "blocks_image.0.mlp.fc1.weight", 2, 0)) < 0 ||
        (d->down[0] = dim_of(c, "image_down.0.weight", 2, 0)) < 0 ||
        (d->down[1] = dim_of(c, "image_down.2.weight", 2, 0)) < 0 ||
        (d->down[2] = dim_of(c, "image_down.4.weight", 2, 0)) < 0 ||
        (d->embed = dim_of(c, "distill_image_proj.weight", 2, 0)) < 0)
        return -1;
    while (d->depth < 1024) {
        char k[96];
        cv_nm(k, sizeof k, "blocks_image.%lld.norm1.weight", (long long)d->depth);
        if (!ckpt_find(c, k))
            break;
        d->depth++;
    }
    if (d->dim % SEED_DECODE_HEADS) {
        ag_set_error("seed_quantizer.pt: blocks_image width %lld is not divisible by its %d heads", (long long)d->dim,
                     SEED_DECODE_HEADS);
        return -1;
    }
    if (d->codebook_size > (1 << 24) || d->n_codes > 4096 || d->dim > 65536) {
        ag_set_error("seed_quantizer.pt: implausible decode sizes (codebook %lld, %lld codes, width %lld)",
                     (long long)d->codebook_size, (long long)d->n_codes, (long long)d->dim);
        return -1;
    }
    return 0;
}

/* nn.Linear (out, in) [+ bias (out)] -> GGUF NAME.weight [in, out] (F16 under f16), NAME.bias. */
static int linear(tensor_plan *p, const char *g, const char *k, int64_t in, int64_t out, bool bias)
{
    char gn[96], kn[128];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", k);
    if (tp_add(p, gn, tp_need(p, kn, 2, S(out, in)), true, 2, S(in, out)))
        return -1;
    if (!bias)
        return 0;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", k);
    return tp_add(p, gn, tp_need(p, kn, 1, S(out)), false, 1, S(out));
}

static int norm(tensor_plan *p, const char *g, const char *k, int64_t n)
{
    char gn[96], kn[128];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", k);
    if (tp_add(p, gn, tp_need(p, kn, 1, S(n)), false, 1, S(n)))
        return -1;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", k);
    return tp_add(p, gn, tp_need(p, kn, 1, S(n)), false, 1, S(n));
}

static int block(tensor_plan *p, const seed_decode_dims *d, int i)
{
    char g[64], k[64];
#define N(gf, kf) (cv_nm(g, sizeof g, "seed_decode.blk.%d." gf, i), cv_nm(k, sizeof k, "blocks_image.%d." kf, i))
    return (N("norm1", "norm1"), norm(p, g, k, d->dim)) ||
                   (N("attn_qkv", "attn.qkv"), linear(p, g, k, d->dim, 3 * d->dim, true)) ||
                   (N("attn_out", "attn.proj"), linear(p, g, k, d->dim, d->dim, true)) ||
                   (N("norm2", "norm2"), norm(p, g, k, d->dim)) ||
                   (N("ffn_up", "mlp.fc1"), linear(p, g, k, d->dim, d->ff, true)) ||
                   (N("ffn_down", "mlp.fc2"), linear(p, g, k, d->ff, d->dim, true))
               ? -1
               : 0;
#undef N
}

int seed_decode_plan(tensor_plan *p, seed_decode_dims *d)
{
    if (infer(p->c, d))
        return -1;
    const int64_t cd = d->codebook_dim;
    if (tp_add(p, "seed_decode.codebook", tp_need(p, "quantize.embedding.weight", 2, S(d->codebook_size, cd)), true, 2,
               S(cd, d->codebook_size)) ||
        linear(p, "seed_decode.task_in", "decode_task_layer.0", cd, cd, true) ||
        linear(p, "seed_decode.task_out", "decode_task_layer.2", cd, d->dim, true) ||
        tp_add(p, "seed_decode.pos_embd", tp_need(p, "pos_embed_image", 3, S(1, d->n_codes, d->dim)), false, 2,
               S(d->dim, d->n_codes)))
        return -1;
    for (int i = 0; i < d->depth; i++)
        if (block(p, d, i))
            return -1;
    const int64_t dims[4] = {d->dim, d->down[0], d->down[1], d->down[2]};
    for (int j = 0; j < 3; j++) {
        char g[64], k[64];
        cv_nm(g, sizeof g, "seed_decode.down.%d", j);
        cv_nm(k, sizeof k, "image_down.%d", 2 * j);
        if (linear(p, g, k, dims[j], dims[j + 1], false))
            return -1;
    }
    if (linear(p, "seed_decode.proj", "distill_image_proj", d->n_codes * d->down[2], d->embed, true))
        return -1;
    return ckpt_check_used(p->c, p->used, seed_decode_ignorable, "the SEED decode side or its known other parts");
}

int seed_decode_kvs(gs_writer *w, const seed_decode_dims *d)
{
    const uint32_t down[3] = {(uint32_t)d->down[0], (uint32_t)d->down[1], (uint32_t)d->down[2]};
#define U(k, v) gs_set_u32(w, SEED_UNCLIP_ARCH ".seed_decode." k, (uint32_t)(v))
    return U("n_codes", d->n_codes) || U("codebook_size", d->codebook_size) || U("codebook_dim", d->codebook_dim) ||
                   U("dim", d->dim) || U("depth", d->depth) || U("heads", SEED_DECODE_HEADS) || U("ff_dim", d->ff) ||
                   U("embed_dim", d->embed) ||
                   gs_set_arr(w, SEED_UNCLIP_ARCH ".seed_decode.down_dims", AG_GGUF_UINT32, down, 3) ||
                   gs_set_f32(w, SEED_UNCLIP_ARCH ".seed_decode.norm_eps", SEED_DECODE_NORM_EPS)
               ? -1
               : 0;
#undef U
}
