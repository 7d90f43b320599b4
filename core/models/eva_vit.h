/* EVA-CLIP ViT-g/14 as BLIP-2 packages it (the SEED tokenizer's vision encoder), on the graph
 * API. Weights: v.patch_embd.{weight,bias}, v.cls_token, v.pos_embd, v.blk.N.{ln1, attn_qkv,
 * attn_out, ln2, ffn_up, ffn_down}.{weight,bias}. */
#ifndef AG_MODELS_EVA_VIT_H
#define AG_MODELS_EVA_VIT_H

#include "anygpt/weights.h"

typedef struct {
    ag_weights *w;
    int64_t width, heads, mlp, depth;
    int64_t image_size, patch_size, n_tokens; /* n_tokens = (image / patch)^2 + 1 */
    float eps;                                /* the blocks' pre-LN */
} eva_vit;

/* pixels F32 [S, S, 3] (planar RGB, normalised) -> tokens [width, n_tokens]: the conv patch
 * embedding (row-major patches) after CLS, plus the learned positions. NULL with error. */
ag_tensor *eva_vit_embed(const eva_vit *v, ag_ctx *ctx, ag_tensor *pixels);
/* Block i: x += proj(attn(LN1 x)); x += fc2(GELU(fc1(LN2 x))). Fused qkv (K bias 0 in the file),
 * head dim width / heads, full attention over the tokens. */
ag_tensor *eva_vit_block(const eva_vit *v, ag_ctx *ctx, ag_tensor *x, int64_t i);

#endif
