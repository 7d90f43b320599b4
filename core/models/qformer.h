/* The SEED tokenizer's causal Q-Former (BLIP-2's BERT-base Q-Former as SEED uses it), on the
 * graph API. Weights: qf.query_tokens, qf.emb_ln, qf.blk.N.{attn_q, attn_k, attn_v, attn_out,
 * attn_ln, [cross_q, cross_k, cross_v, cross_out, cross_ln,] ffn_up, ffn_down, ffn_ln}. */
#ifndef AG_MODELS_QFORMER_H
#define AG_MODELS_QFORMER_H

#include "anygpt/weights.h"

typedef struct {
    ag_weights *w;
    int64_t hidden, heads, layers, ffn, n_query, enc_width;
    const bool *cross; /* [layers]: the layers with cross-attention */
    float eps;
} qformer;

/* img [enc_width, N] image tokens, mask F32 [n_query, n_query] (the additive causal mask) ->
 * query outputs [hidden, n_query]. h = LN(query_tokens); per layer: masked self-attention,
 * cross-attention to every image token where the layer has it, the query FFN; each sub-layer
 * post-LN around its residual. NULL with error. */
ag_tensor *qformer_forward(const qformer *q, ag_ctx *ctx, ag_tensor *img, ag_tensor *mask);

#endif
