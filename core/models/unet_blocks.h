/* Internal to core/models/unet.c and vae.c: the diffusers building blocks both models share,
 * on the graph API. Feature maps are [W, H, C, N] (PyTorch's NCHW in memory); the transformer
 * parts work on tokens [C, W*H*N] (channels innermost) between a transpose in and one out.
 * Every weight is looked up by name and shape-checked (ag_weights_get_shaped): a file lacking one
 * fails the graph build with an error naming it. Builders return NULL with the error set, and
 * take NULL inputs (an earlier failure) without touching anything. */
#ifndef AG_MODELS_UNET_BLOCKS_H
#define AG_MODELS_UNET_BLOCKS_H

#include "anygpt/backend.h"
#include "anygpt/weights.h"

typedef struct {
    ag_ctx *ctx;
    ag_weights *w;
    ag_backend *be;
    int groups; /* GroupNorm groups everywhere */
    float eps;  /* GroupNorm eps of the resnets and the output norm */
} ub_ctx;

/* The weight called fmt... with ggml shape ne (n_dims). */
ag_tensor *ub_weight(ub_ctx *b, int n_dims, const int64_t *ne, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* k x k conv (weight name.weight [k, k, cin, cout]) with stride and zero padding pad, plus
 * name.bias; bias4, when given ([1, 1, cout, N] or [1, 1, cout, 1]), replaces the bias (the
 * resnets fold the time embedding projection into it: one pass over the output). */
ag_tensor *ub_conv(ub_ctx *b, ag_tensor *x, const char *name, int64_t cin, int64_t cout, int k, int stride, int pad,
                   ag_tensor *bias4);
/* GroupNorm(groups, eps) with name.weight/.bias, then SiLU when silu. */
ag_tensor *ub_group_norm(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch, float eps, bool silu);
/* x [in, T] -> [out, T]: name.weight [in, out] (+ name.bias). */
ag_tensor *ub_linear(ub_ctx *b, ag_tensor *x, const char *name, int64_t in, int64_t out, bool bias);
/* LayerNorm over dim 0 (eps) with name.weight/.bias. */
ag_tensor *ub_layer_norm(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch, float eps);
/* diffusers ResnetBlock2D ("default" time embedding): temb_act is silu(emb) [tdim, N or 1] or
 * NULL (the VAE); (skip(x) + conv2(silu(norm2(conv1(silu(norm1 x)) + proj(temb))))) / out_scale. */
ag_tensor *ub_resnet(ub_ctx *b, ag_tensor *x, const char *name, int64_t cin, int64_t cout, ag_tensor *temb_act,
                     int64_t tdim, float out_scale);
/* Upsample2D: nearest x2, then name.* 3x3 conv. */
ag_tensor *ub_upsample(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch);
/* [W, H, C, N] -> tokens [C, W*H*N] and back. */
ag_tensor *ub_to_tokens(ub_ctx *b, ag_tensor *x);
ag_tensor *ub_from_tokens(ub_ctx *b, ag_tensor *t, int64_t w, int64_t h, int64_t c, int64_t n);
/* Multi-head attention per batch item: q [heads * d, nq * batch], k, v [heads * d, nk * batch]
 * (token-major, batch outermost) -> [heads * d, nq * batch]; scale 1/sqrt(d). Streams keys
 * (ag_attention) where the backend runs it; wide heads on a GPU (d > 128, the VAE's single head
 * of 512) go through query chunks of mul_mat + softmax + mul_mat instead, whose score block
 * stays under 64 MiB. */
ag_tensor *ub_attention(ub_ctx *b, ag_tensor *q, ag_tensor *k, ag_tensor *v, int64_t heads, int64_t nq, int64_t nk,
                        int64_t batch);

/* Give a model's compute buffer back between runs (the UNet after every evaluation, the VAE after
 * every decode: one must not find the other's activations still held): frees *g, replaces *alloc
 * with an empty allocator on be. 0, or -1 out of memory. */
int ub_release(ag_graph **g, ag_allocator **alloc, ag_backend *be);

#endif
