/* EVA-CLIP ViT-g/14 (BLIP-2 packaging) on the graph API: conv patch embedding, CLS, absolute
 * positions, pre-LN blocks with a fused qkv projection and exact-erf GELU. No final norm: the
 * SEED tokenizer applies its own ln_vision (seed_tokenizer.c). */
#include "eva_vit.h"
#include "seed_common.h"

#include <math.h>
#include <stdio.h>

ag_tensor *eva_vit_embed(const eva_vit *v, ag_ctx *ctx, ag_tensor *pixels)
{
    const int64_t W = v->width, P = v->patch_size, G = v->image_size / v->patch_size;
    ag_tensor *k = seed_w(v->w, SEED_T_CONV, 4, (const int64_t[]){P, P, 3, W}, "v.patch_embd.weight");
    ag_tensor *b = k ? seed_w(v->w, SEED_T_F32, 1, &W, "v.patch_embd.bias") : NULL;
    ag_tensor *cls = b ? seed_w(v->w, SEED_T_F32, 1, &W, "v.cls_token") : NULL;
    ag_tensor *pos = cls ? seed_w(v->w, SEED_T_F32, 2, (const int64_t[]){W, v->n_tokens}, "v.pos_embd") : NULL;
    if (!pixels || !pos)
        return NULL;
    /* [G, G, W] conv output: patch (gx, gy) at gx + G gy, i.e. row-major patches */
    ag_tensor *x = ag_conv2d(ctx, pixels, k, (int)P, (int)P, 0, 0, 1, 1);
    x = x ? seed_transpose(ctx, ag_reshape_2d(ctx, x, G * G, W)) : NULL; /* [W, G*G] */
    x = x ? ag_add(ctx, x, b) : NULL;
    ag_tensor *c = x ? ag_reshape_2d(ctx, cls, W, 1) : NULL;
    x = c ? ag_concat(ctx, c, x, 1) : NULL;
    return x ? ag_add(ctx, x, pos) : NULL;
}

ag_tensor *eva_vit_block(const eva_vit *v, ag_ctx *ctx, ag_tensor *x, int64_t i)
{
    const int64_t W = v->width, dh = v->width / v->heads;
    char n[64];
    snprintf(n, sizeof n, "v.blk.%lld.ln1", (long long)i);
    ag_tensor *h = seed_norm(ctx, v->w, x, v->eps, n);
    snprintf(n, sizeof n, "v.blk.%lld.attn_qkv", (long long)i);
    ag_tensor *qkv = seed_linear(ctx, v->w, h, W, 3 * W, n); /* [q | k | v, T] */
    if (!qkv)
        return NULL;
    /* q, k, v are strided views of the fused projection: no copies */
    ag_tensor *o = ag_attention(ctx, seed_heads(ctx, qkv, dh, v->heads, 0), seed_heads(ctx, qkv, dh, v->heads, W),
                                seed_heads(ctx, qkv, dh, v->heads, 2 * W), NULL, 1.0f / sqrtf((float)dh), false);
    snprintf(n, sizeof n, "v.blk.%lld.attn_out", (long long)i);
    o = o ? seed_linear(ctx, v->w, ag_reshape_2d(ctx, o, W, x->ne[1]), W, W, n) : NULL;
    if (!o || !(x = ag_add(ctx, x, o)))
        return NULL;
    snprintf(n, sizeof n, "v.blk.%lld.ln2", (long long)i);
    h = seed_norm(ctx, v->w, x, v->eps, n);
    snprintf(n, sizeof n, "v.blk.%lld.ffn_up", (long long)i);
    h = seed_linear(ctx, v->w, h, W, v->mlp, n);
    snprintf(n, sizeof n, "v.blk.%lld.ffn_down", (long long)i);
    h = h ? seed_linear(ctx, v->w, ag_gelu(ctx, h), v->mlp, W, n) : NULL;
    return h ? ag_add(ctx, x, h) : NULL;
}
