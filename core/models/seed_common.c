/* Building blocks shared by the SEED tokenizer's networks (see seed_common.h). */
#include "seed_common.h"
#include "anygpt/error.h"

#include <stdarg.h>
#include <stdio.h>

ag_tensor *seed_w(ag_weights *w, unsigned types, int n_dims, const int64_t *ne, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    ag_tensor *t = ag_weights_get_shaped(w, name, n_dims, ne);
    if (t && !(types & (1u << t->type))) {
        ag_set_error("%s: tensor '%s' has type %s, which this model cannot use there", ag_weights_path(w), name,
                     ag_type_name(t->type));
        return NULL;
    }
    return t;
}

ag_tensor *seed_linear(ag_ctx *ctx, ag_weights *w, ag_tensor *x, int64_t in, int64_t out, const char *name)
{
    if (!x) /* an earlier step failed: keep its error */
        return NULL;
    ag_tensor *wt = seed_w(w, SEED_T_MAT, 2, (const int64_t[]){in, out}, "%s.weight", name);
    ag_tensor *b = wt ? seed_w(w, SEED_T_F32, 1, &out, "%s.bias", name) : NULL;
    if (!wt || !b)
        return NULL;
    return ag_add(ctx, ag_mul_mat(ctx, wt, x), b);
}

ag_tensor *seed_norm(ag_ctx *ctx, ag_weights *w, ag_tensor *x, float eps, const char *name)
{
    if (!x)
        return NULL;
    const int64_t d = x->ne[0];
    ag_tensor *g = seed_w(w, SEED_T_F32, 1, &d, "%s.weight", name);
    ag_tensor *b = g ? seed_w(w, SEED_T_F32, 1, &d, "%s.bias", name) : NULL;
    if (!g || !b)
        return NULL;
    return ag_add(ctx, ag_mul(ctx, ag_layer_norm(ctx, x, eps), g), b);
}

ag_tensor *seed_transpose(ag_ctx *ctx, ag_tensor *x)
{
    if (!x)
        return NULL;
    /* CPY wants a unit-strided dim 0: view [1, B, A] of the source */
    const int64_t a = x->ne[0], b = x->ne[1];
    ag_tensor *v = ag_view(ctx, x, 3, (const int64_t[]){1, b, a}, (const size_t[]){x->nb[0], x->nb[1], x->nb[0]}, 0);
    ag_tensor *c = v ? ag_cont(ctx, v) : NULL;
    return c ? ag_reshape_2d(ctx, c, b, a) : NULL;
}

ag_tensor *seed_heads(ag_ctx *ctx, ag_tensor *x, int64_t dh, int64_t n_heads, int64_t first)
{
    if (!x)
        return NULL;
    return ag_view(ctx, x, 3, (const int64_t[]){dh, x->ne[1], n_heads},
                   (const size_t[]){x->nb[0], x->nb[1], (size_t)dh * x->nb[0]}, (size_t)first * x->nb[0]);
}
