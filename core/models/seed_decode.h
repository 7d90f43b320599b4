/* SEED's decode MLP (internal to the core; the public entry is ag_unclip_embed in unclip.h):
 * 32 SEED codes -> the unCLIP image embedding, as AnyGPT's seed2 qformer_quantizer.py
 * get_codebook_entry computes it (specs/seed-image.md section 4):
 *   codebook rows [n, cd] -> task_in Linear -> tanh -> task_out Linear [n, dim] -> + pos_embd
 *   -> depth pre-LN ViT blocks (fused qkv with bias, heads from the file, LayerNorm eps from the
 *      file, MLP with exact GELU, bidirectional, no final norm)
 *   -> down Linear(no bias) ReLU Linear(no bias) ReLU Linear(no bias) [n, d3]
 *   -> token-major flatten [n * d3] -> proj Linear -> [embed].
 * Tensors "seed_decode.*" and KVs "seed-unclip.seed_decode.*" of a seed-unclip GGUF
 * (anygpt-convert seed-unclip), read from an ag_weights the caller owns, so one loaded file
 * serves the whole unCLIP pipeline. */
#ifndef ANYGPT_SEED_DECODE_H
#define ANYGPT_SEED_DECODE_H

#include "anygpt/weights.h"

typedef struct ag_seed_decode ag_seed_decode;

typedef struct {
    int32_t n_codes, codebook_size, codebook_dim, dim, depth, heads, ff_dim, embed_dim;
    int32_t down[3];
    float norm_eps;
} ag_seed_decode_info;

/* Reads the hyper-parameters, checks every tensor's shape and builds the graph. w must outlive
 * the decoder and be loaded on be. NULL with an error naming what is wrong. */
ag_seed_decode *ag_seed_decode_new(ag_backend *be, ag_weights *w);
void ag_seed_decode_free(ag_seed_decode *d);
const ag_seed_decode_info *ag_seed_decode_info_of(const ag_seed_decode *d);

/* codes [n_codes] (exactly info.n_codes, each in 0..codebook_size-1) -> embed [embed_dim].
 * -1 with an error naming the bad count, or the index and value of a bad code. */
int ag_seed_decode_run(ag_seed_decode *d, const int32_t *codes, int32_t n_codes, float *embed);

#endif
