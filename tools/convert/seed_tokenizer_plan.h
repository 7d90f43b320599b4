/* The plan of KIND seed-tokenizer: which GGUF tensor comes from which key of BLIP-2's
 * eva_vit_g.pth and SEED's seed_quantizer.pt, and every hyper-parameter, read from tensor shapes
 * alone (no data is touched, so a list of names and shapes can be checked too). Keys encoding
 * does not use are accepted only from an explicit list (the ViT's last block, the Q-Former's
 * text branch, the recon blocks, the decode side that KIND seed-unclip converts); any other key,
 * a missing key or a wrong shape is an error naming the key and its file. */
#ifndef AG_CONVERT_SEED_TOKENIZER_PLAN_H
#define AG_CONVERT_SEED_TOKENIZER_PLAN_H

#include "ckpt.h"

#define SEEDTOK_EVA_HEAD_DIM 88 /* EVA-CLIP-g: heads = width / 88 */
#define SEEDTOK_QF_HEAD_DIM 64  /* BERT-base: heads = hidden / 64 */
#define SEEDTOK_MAX_LAYERS 256

typedef enum {
    SEEDTOK_PLAIN,   /* the source tensor's elements in order */
    SEEDTOK_QKV_BIAS /* cat(q_bias = src, zeros, v_bias = src2): EVA's K has no bias */
} seedtok_kind;

typedef struct {
    char gguf[64];
    const ckpt_tensor *src, *src2;
    seedtok_kind kind;
    int nd;
    int64_t ne[4];  /* ggml order */
    bool matrix;    /* a weight matrix / conv kernel: F16 under --dtype f16 */
} seedtok_entry;

typedef struct {
    seedtok_entry *e;
    size_t n, cap;
    int64_t image_size, patch_size, n_tokens;
    int64_t vit_width, vit_heads, vit_depth, vit_blocks_in_file, vit_mlp;
    int64_t qf_hidden, qf_heads, qf_layers, qf_ffn, n_query;
    int64_t codebook_size, code_dim;
    bool cross[SEEDTOK_MAX_LAYERS];
    int64_t n_cross;
} seedtok_plan;

/* vit: eva_vit_g.pth, seed: seed_quantizer.pt (each tensor's `file` names it in errors).
 * 0, or -1 with the error set; p is filled either way and must be freed. */
int seedtok_plan_build(const ckpt *vit, const ckpt *seed, seedtok_plan *p);
void seedtok_plan_free(seedtok_plan *p);

#endif
