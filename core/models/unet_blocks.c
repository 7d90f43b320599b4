/* The diffusers building blocks shared by the UNet and the VAE decoder (unet_blocks.h). */
#include "unet_blocks.h"
#include "anygpt/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SCORE_BYTES (64u << 20) /* score block of the chunked attention */
#define WIDE_HEAD 128                 /* head widths above this use the chunked path off the cpu */

static void nm(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nm(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

ag_tensor *ub_weight(ub_ctx *b, int n_dims, const int64_t *ne, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return ag_weights_get_shaped(b->w, name, n_dims, ne);
}

ag_tensor *ub_conv(ub_ctx *b, ag_tensor *x, const char *name, int64_t cin, int64_t cout, int k, int stride, int pad,
                   ag_tensor *bias4)
{
    if (!x)
        return NULL;
    ag_tensor *w = ub_weight(b, 4, (const int64_t[]){k, k, cin, cout}, "%s.weight", name);
    if (!w)
        return NULL;
    if (!bias4) {
        ag_tensor *bias = ub_weight(b, 1, &cout, "%s.bias", name);
        bias4 = bias ? ag_reshape_4d(b->ctx, bias, 1, 1, cout, 1) : NULL;
        if (!bias4)
            return NULL;
    }
    return ag_add(b->ctx, ag_conv2d(b->ctx, x, w, stride, stride, pad, pad, 1, 1), bias4);
}

ag_tensor *ub_group_norm(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch, float eps, bool silu)
{
    ag_tensor *w = ub_weight(b, 1, &ch, "%s.weight", name), *bias = ub_weight(b, 1, &ch, "%s.bias", name);
    if (!x || !w || !bias)
        return NULL;
    return ag_group_norm_affine(b->ctx, x, b->groups, eps, w, bias, silu);
}

ag_tensor *ub_linear(ub_ctx *b, ag_tensor *x, const char *name, int64_t in, int64_t out, bool bias)
{
    ag_tensor *w = ub_weight(b, 2, (const int64_t[]){in, out}, "%s.weight", name);
    ag_tensor *bs = bias ? ub_weight(b, 1, &out, "%s.bias", name) : NULL;
    if (!x || !w || (bias && !bs))
        return NULL;
    ag_tensor *y = ag_mul_mat(b->ctx, w, x);
    return bias ? ag_add(b->ctx, y, bs) : y;
}

ag_tensor *ub_layer_norm(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch, float eps)
{
    ag_tensor *w = ub_weight(b, 1, &ch, "%s.weight", name), *bs = ub_weight(b, 1, &ch, "%s.bias", name);
    if (!x || !w || !bs)
        return NULL;
    return ag_add(b->ctx, ag_mul(b->ctx, ag_layer_norm(b->ctx, x, eps), w), bs);
}

ag_tensor *ub_resnet(ub_ctx *b, ag_tensor *x, const char *name, int64_t cin, int64_t cout, ag_tensor *temb_act,
                     int64_t tdim, float out_scale)
{
    char n[96];
    if (!x)
        return NULL;
    ag_ctx *ctx = b->ctx;
    /* the 1x1 shortcut first: x's last reader is then norm1, so x is freed as early as it can be */
    ag_tensor *skip = x;
    if (cin != cout) {
        nm(n, sizeof n, "%s.skip", name);
        skip = ub_conv(b, x, n, cin, cout, 1, 1, 0, NULL);
    }
    nm(n, sizeof n, "%s.norm1", name);
    ag_tensor *h = ub_group_norm(b, x, n, cin, b->eps, true);
    /* conv1's bias plus the time embedding projection, added once: [1, 1, cout, N] */
    ag_tensor *bias4 = NULL;
    if (temb_act) {
        nm(n, sizeof n, "%s.temb", name);
        ag_tensor *tp = ub_linear(b, temb_act, n, tdim, cout, true);
        ag_tensor *cb = ub_weight(b, 1, &cout, "%s.conv1.bias", name);
        tp = tp && cb ? ag_add(ctx, tp, cb) : NULL;
        bias4 = tp ? ag_reshape_4d(ctx, tp, 1, 1, cout, tp->ne[1]) : NULL;
        if (!bias4)
            return NULL;
    }
    nm(n, sizeof n, "%s.conv1", name);
    h = ub_conv(b, h, n, cin, cout, 3, 1, 1, bias4);
    nm(n, sizeof n, "%s.norm2", name);
    h = ub_group_norm(b, h, n, cout, b->eps, true);
    nm(n, sizeof n, "%s.conv2", name);
    h = ub_conv(b, h, n, cout, cout, 3, 1, 1, NULL);
    if (!h || !skip)
        return NULL;
    ag_tensor *y = ag_add(ctx, skip, h);
    return out_scale != 1.0f ? ag_scale(ctx, y, 1.0f / out_scale, 0.0f) : y;
}

ag_tensor *ub_upsample(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch)
{
    return x ? ub_conv(b, ag_upsample(b->ctx, x, 2, 2), name, ch, ch, 3, 1, 1, NULL) : NULL;
}

/* Contiguous transpose of the two inner dims of a contiguous [A, B, N] tensor -> [B, A, N]: a
 * copy of the view [1, B, A, N] (CPY wants dim 0 unit-strided; its rows are then single
 * elements, which the backends copy as a tiled transpose). */
static ag_tensor *transpose01(ag_ctx *ctx, ag_tensor *x)
{
    if (!x)
        return NULL;
    const int64_t a = x->ne[0], b = x->ne[1], n = x->ne[2];
    ag_tensor *v = ag_view(ctx, x, 4, (const int64_t[]){1, b, a, n},
                           (const size_t[]){x->nb[0], x->nb[1], x->nb[0], x->nb[2]}, 0);
    ag_tensor *c = v ? ag_cont(ctx, v) : NULL;
    return c ? ag_reshape_3d(ctx, c, b, a, n) : NULL;
}

ag_tensor *ub_to_tokens(ub_ctx *b, ag_tensor *x)
{
    if (!x)
        return NULL;
    const int64_t w = x->ne[0], h = x->ne[1], c = x->ne[2], n = x->ne[3];
    ag_tensor *t = transpose01(b->ctx, ag_reshape_3d(b->ctx, x, w * h, c, n));
    return t ? ag_reshape_2d(b->ctx, t, c, w * h * n) : NULL;
}

ag_tensor *ub_from_tokens(ub_ctx *b, ag_tensor *t, int64_t w, int64_t h, int64_t c, int64_t n)
{
    if (!t)
        return NULL;
    ag_tensor *x = transpose01(b->ctx, ag_reshape_3d(b->ctx, t, c, w * h, n));
    return x ? ag_reshape_4d(b->ctx, x, w, h, c, n) : NULL;
}

static bool force_chunked(void)
{
    const char *e = getenv("AG_UNET_ATTN_CHUNKED"); /* tests: the chunked path on any backend */
    return e && *e && strcmp(e, "0") != 0;
}

/* One batch item with a single head of width d: q [d, nq], k, v [d, nk] (contiguous views). */
static ag_tensor *attention_chunked(ub_ctx *b, ag_tensor *q, ag_tensor *k, ag_tensor *v, int64_t d, int64_t nq,
                                    int64_t nk)
{
    ag_ctx *ctx = b->ctx;
    ag_tensor *vt = transpose01(ctx, v); /* [nk, d] */
    int64_t qc = (int64_t)(CHUNK_SCORE_BYTES / ((size_t)nk * sizeof(float)));
    qc = qc < 1 ? 1 : (qc > nq ? nq : qc);
    ag_tensor *out = NULL;
    for (int64_t q0 = 0; q0 < nq && vt; q0 += qc) {
        const int64_t n = q0 + qc <= nq ? qc : nq - q0;
        ag_tensor *qs = ag_view(ctx, q, 2, (const int64_t[]){d, n}, (const size_t[]){q->nb[0], q->nb[1]},
                                (size_t)q0 * q->nb[1]);
        ag_tensor *s = qs ? ag_mul_mat(ctx, k, qs) : NULL; /* [nk, n] */
        s = s ? ag_softmax(ctx, s, NULL, 1.0f / sqrtf((float)d), false) : NULL;
        ag_tensor *o = s ? ag_mul_mat(ctx, vt, s) : NULL; /* [d, n] */
        if (!o)
            return NULL;
        out = out ? ag_concat(ctx, out, o, 1) : o;
    }
    return out;
}

ag_tensor *ub_attention(ub_ctx *b, ag_tensor *q, ag_tensor *k, ag_tensor *v, int64_t heads, int64_t nq, int64_t nk,
                        int64_t batch)
{
    if (!q || !k || !v)
        return NULL;
    ag_ctx *ctx = b->ctx;
    const int64_t inner = q->ne[0], d = inner / heads;
    const float scale = 1.0f / sqrtf((float)d);
    const size_t es = sizeof(float);
    ag_tensor *out = NULL;
    for (int64_t i = 0; i < batch; i++) {
        /* heads are strided views: [d, tokens, heads] with the head stride d */
        const size_t qo = (size_t)(i * nq) * q->nb[1], ko = (size_t)(i * nk) * k->nb[1];
        ag_tensor *qv = ag_view(ctx, q, 3, (const int64_t[]){d, nq, heads}, (const size_t[]){es, q->nb[1], d * es}, qo);
        ag_tensor *kv = ag_view(ctx, k, 3, (const int64_t[]){d, nk, heads}, (const size_t[]){es, k->nb[1], d * es}, ko);
        ag_tensor *vv = ag_view(ctx, v, 3, (const int64_t[]){d, nk, heads}, (const size_t[]){es, v->nb[1], d * es}, ko);
        ag_tensor *o = qv && kv && vv ? ag_attention(ctx, qv, kv, vv, NULL, scale, false) : NULL;
        if (!o)
            return NULL;
        const bool wide = d > WIDE_HEAD && strcmp(ag_backend_name(b->be), "cpu") != 0;
        if (heads == 1 && (wide || force_chunked() || !ag_backend_supports_node(b->be, o))) {
            ag_tensor *q2 = ag_view(ctx, q, 2, (const int64_t[]){d, nq}, (const size_t[]){es, q->nb[1]}, qo);
            ag_tensor *k2 = ag_view(ctx, k, 2, (const int64_t[]){d, nk}, (const size_t[]){es, k->nb[1]}, ko);
            ag_tensor *v2 = ag_view(ctx, v, 2, (const int64_t[]){d, nk}, (const size_t[]){es, v->nb[1]}, ko);
            o = q2 && k2 && v2 ? attention_chunked(b, q2, k2, v2, d, nq, nk) : NULL;
        }
        o = o ? ag_reshape_2d(ctx, o, inner, nq) : NULL;
        if (!o)
            return NULL;
        out = out ? ag_concat(ctx, out, o, 1) : o;
    }
    return out;
}

int ub_release(ag_graph **g, ag_allocator **alloc, ag_backend *be)
{
    ag_graph_free(*g);
    *g = NULL;
    ag_allocator_free(*alloc);
    *alloc = ag_allocator_new(be);
    if (!*alloc)
        ag_set_error("out of memory");
    return *alloc ? 0 : -1;
}
