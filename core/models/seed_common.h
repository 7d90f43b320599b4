/* Building blocks shared by the SEED tokenizer's networks (eva_vit.c, qformer.c,
 * seed_tokenizer.c): typed weight lookups that name the tensor on error, nn.Linear, affine
 * LayerNorm, and a contiguous 2-D transpose. Activations are [features, tokens]. */
#ifndef AG_MODELS_SEED_COMMON_H
#define AG_MODELS_SEED_COMMON_H

#include "anygpt/weights.h"

/* Type masks for seed_w: bit (1 << ag_type). */
#define SEED_T_F32 (1u << AG_TYPE_F32)
#define SEED_T_CONV (SEED_T_F32 | (1u << AG_TYPE_F16))
#define SEED_T_MAT (SEED_T_CONV | (1u << AG_TYPE_Q8_0) | (1u << AG_TYPE_Q4_0))

/* The weight named by fmt with this shape and one of these types; NULL with an error naming it. */
ag_tensor *seed_w(ag_weights *w, unsigned types, int n_dims, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* y = W x + b: name.weight [in, out] (any matrix type), name.bias F32 [out]; x [in, N]. */
ag_tensor *seed_linear(ag_ctx *ctx, ag_weights *w, ag_tensor *x, int64_t in, int64_t out, const char *name);
/* LayerNorm over ne0 with name.weight / name.bias (F32 [ne0]). */
ag_tensor *seed_norm(ag_ctx *ctx, ag_weights *w, ag_tensor *x, float eps, const char *name);
/* Contiguous copy of x [A, B] as [B, A]. */
ag_tensor *seed_transpose(ag_ctx *ctx, ag_tensor *x);
/* Heads of an [n_heads * dh, N] activation at element offset `first` of each column, as the
 * [dh, N, n_heads] strided view ag_attention takes (no copy). */
ag_tensor *seed_heads(ag_ctx *ctx, ag_tensor *x, int64_t dh, int64_t n_heads, int64_t first);

#endif
