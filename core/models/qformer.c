/* The causal Q-Former on the graph API (see qformer.h). Activations are [hidden, queries]; the
 * attention heads are strided views of the projections (64-wide heads, scale 1/8). */
#include "qformer.h"
#include "seed_common.h"

#include <math.h>
#include <stdio.h>

/* h = LN(dense(attention(h -> kv)) + h) for the attention block `which` (attn / cross) of layer l */
static ag_tensor *attention_block(const qformer *q, ag_ctx *ctx, ag_tensor *h, ag_tensor *kv, ag_tensor *mask,
                                  int64_t l, const char *which)
{
    const int64_t H = q->hidden, dh = q->hidden / q->heads, kin = kv->ne[0];
    char n[64];
    snprintf(n, sizeof n, "qf.blk.%lld.%s_q", (long long)l, which);
    ag_tensor *qq = seed_linear(ctx, q->w, h, H, H, n);
    snprintf(n, sizeof n, "qf.blk.%lld.%s_k", (long long)l, which);
    ag_tensor *kk = qq ? seed_linear(ctx, q->w, kv, kin, H, n) : NULL;
    snprintf(n, sizeof n, "qf.blk.%lld.%s_v", (long long)l, which);
    ag_tensor *vv = kk ? seed_linear(ctx, q->w, kv, kin, H, n) : NULL;
    if (!vv)
        return NULL;
    ag_tensor *o = ag_attention(ctx, seed_heads(ctx, qq, dh, q->heads, 0), seed_heads(ctx, kk, dh, q->heads, 0),
                                seed_heads(ctx, vv, dh, q->heads, 0), mask, 1.0f / sqrtf((float)dh), false);
    snprintf(n, sizeof n, "qf.blk.%lld.%s_out", (long long)l, which);
    o = o ? seed_linear(ctx, q->w, ag_reshape_2d(ctx, o, H, h->ne[1]), H, H, n) : NULL;
    snprintf(n, sizeof n, "qf.blk.%lld.%s_ln", (long long)l, which);
    return o ? seed_norm(ctx, q->w, ag_add(ctx, o, h), q->eps, n) : NULL;
}

ag_tensor *qformer_forward(const qformer *q, ag_ctx *ctx, ag_tensor *img, ag_tensor *mask)
{
    const int64_t H = q->hidden;
    ag_tensor *tok = seed_w(q->w, SEED_T_F32, 2, (const int64_t[]){H, q->n_query}, "qf.query_tokens");
    if (!tok || !img || !mask)
        return NULL;
    ag_tensor *h = seed_norm(ctx, q->w, tok, q->eps, "qf.emb_ln");
    for (int64_t l = 0; l < q->layers && h; l++) {
        h = attention_block(q, ctx, h, h, mask, l, "attn");
        if (h && q->cross[l])
            h = attention_block(q, ctx, h, img, NULL, l, "cross");
        char n[64];
        snprintf(n, sizeof n, "qf.blk.%lld.ffn_up", (long long)l);
        ag_tensor *f = h ? seed_linear(ctx, q->w, h, H, q->ffn, n) : NULL;
        snprintf(n, sizeof n, "qf.blk.%lld.ffn_down", (long long)l);
        f = f ? seed_linear(ctx, q->w, ag_gelu(ctx, f), q->ffn, H, n) : NULL;
        snprintf(n, sizeof n, "qf.blk.%lld.ffn_ln", (long long)l);
        h = f ? seed_norm(ctx, q->w, ag_add(ctx, f, h), q->eps, n) : NULL;
    }
    return h;
}
