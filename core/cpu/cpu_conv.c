/* Convolutions as im2col + sgemm on tiles of output positions (so the column matrix stays
 * small), a direct loop for depthwise-like convs, and transposed conv as sgemm + col2im.
 * F16 weights are widened once per node into shared scratch. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <string.h>

#define COL_TILE_BYTES (16u << 20)
#define DIRECT_MAX_CK 32 /* per-group inner size below which a direct loop beats gemm */

/* Output positions per tile: bounded scratch, and enough tiles for every thread. */
static int64_t col_tile(int64_t ck, int64_t npos, int64_t nunits_other, int nth)
{
    int64_t tt = (int64_t)(COL_TILE_BYTES / ((size_t)(ck > 0 ? ck : 1) * sizeof(float)));
    if (tt > 4096)
        tt = 4096;
    const int64_t want = (npos * nunits_other + nth - 1) / nth; /* positions per thread if evenly split */
    if (tt > want)
        tt = want;
    if (tt < 16)
        tt = 16;
    return tt > npos ? npos : tt;
}

static size_t w32_bytes(const ag_tensor *w)
{
    return w->type == AG_TYPE_F16 ? cpu_align((size_t)ag_nelements(w) * sizeof(float)) : 0;
}

/* The weight as F32: itself, or widened into the start of the scratch (all threads help). */
static const float *weight_f32(const cpu_params *p, const ag_tensor *w)
{
    if (w->type == AG_TYPE_F32)
        return (const float *)cpu_data(w);
    float *w32 = (float *)p->work;
    int64_t i0, i1;
    cpu_range(ag_nelements(w), p->ith, p->nth, &i0, &i1);
    if (i1 > i0)
        ag_fp16_to_fp32_row((const ag_fp16 *)cpu_data(w) + i0, w32 + i0, i1 - i0);
    cpu_barrier(p);
    return w32;
}

/* ---------------- conv1d ---------------- */

typedef struct {
    int64_t T, Cin, B, K, Cout, Tout, cpg, opg;
    int s, d, groups;
} c1d_shape;

static c1d_shape c1d_get(const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    c1d_shape c = {
        .T = x->ne[0],
        .Cin = x->ne[1],
        .B = x->ne[2],
        .K = w->ne[0],
        .Cout = w->ne[2],
        .Tout = node->ne[0],
        .s = node->op_params[0],
        .d = node->op_params[1],
        .groups = node->op_params[2],
    };
    c.cpg = c.Cin / c.groups;
    c.opg = c.Cout / c.groups;
    return c;
}

static bool c1d_direct(const c1d_shape *c) { return c->cpg * c->K < DIRECT_MAX_CK; }

size_t cpu_work_conv1d(const ag_tensor *node, int nth)
{
    const c1d_shape c = c1d_get(node);
    size_t w = w32_bytes(node->src[1]);
    if (!c1d_direct(&c)) {
        const int64_t ck = c.cpg * c.K, tt = col_tile(ck, c.Tout, c.B * c.groups, nth);
        w += (size_t)nth * cpu_align((size_t)ck * (size_t)tt * sizeof(float));
    }
    return w;
}

void cpu_op_conv1d(const cpu_params *p, ag_tensor *node)
{
    const c1d_shape c = c1d_get(node);
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const float *W = weight_f32(p, node->src[1]);
    const int64_t ck = c.cpg * c.K;
    if (c1d_direct(&c)) {
        int64_t r0, r1;
        cpu_range(c.B * c.Cout, p->ith, p->nth, &r0, &r1);
        for (int64_t r = r0; r < r1; r++) {
            const int64_t b = r / c.Cout, co = r % c.Cout, g = co / c.opg;
            float *o = O + r * c.Tout;
            memset(o, 0, (size_t)c.Tout * sizeof *o);
            for (int64_t ci = 0; ci < c.cpg; ci++) {
                const float *xr = X + (b * c.Cin + g * c.cpg + ci) * c.T;
                for (int64_t k = 0; k < c.K; k++) {
                    const float wv = W[(co * c.cpg + ci) * c.K + k];
                    const float *xs = xr + k * c.d;
                    if (c.s == 1)
                        for (int64_t t = 0; t < c.Tout; t++)
                            o[t] += wv * xs[t];
                    else
                        for (int64_t t = 0; t < c.Tout; t++)
                            o[t] += wv * xs[t * c.s];
                }
            }
        }
        return;
    }
    const int64_t tt = col_tile(ck, c.Tout, c.B * c.groups, p->nth);
    const int64_t ntiles = (c.Tout + tt - 1) / tt, nunits = c.B * c.groups * ntiles;
    float *col = (float *)(p->work + w32_bytes(node->src[1]) +
                           (size_t)p->ith * cpu_align((size_t)ck * (size_t)tt * sizeof(float)));
    for (int64_t u = p->ith; u < nunits; u += p->nth) {
        const int64_t tile = u % ntiles, bg = u / ntiles, g = bg % c.groups, b = bg / c.groups;
        const int64_t t0 = tile * tt, n = t0 + tt < c.Tout ? tt : c.Tout - t0;
        /* col[ci*K + k][j] = x[b, g*cpg + ci, (t0 + j)*s + k*d] */
        for (int64_t ci = 0; ci < c.cpg; ci++) {
            const float *xr = X + (b * c.Cin + g * c.cpg + ci) * c.T;
            for (int64_t k = 0; k < c.K; k++) {
                float *dst = col + (ci * c.K + k) * n;
                const float *src = xr + t0 * c.s + k * c.d;
                if (c.s == 1)
                    memcpy(dst, src, (size_t)n * sizeof *dst);
                else
                    for (int64_t j = 0; j < n; j++)
                        dst[j] = src[j * c.s];
            }
        }
        cpu_sgemm(false, false, c.opg, n, ck, W + g * c.opg * ck, ck, col, n,
                  O + (b * c.Cout + g * c.opg) * c.Tout + t0, c.Tout, false);
    }
}

/* ---------------- conv_transpose1d ---------------- */

static int64_t ct_tile(int64_t rows, int64_t T)
{
    int64_t tt = (int64_t)(COL_TILE_BYTES / ((size_t)(rows > 0 ? rows : 1) * sizeof(float)));
    if (tt < 16)
        tt = 16;
    return tt > T ? T : tt;
}

size_t cpu_work_conv_transpose1d(const ag_tensor *node, int nth)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    const int64_t K = w->ne[0], Cout = w->ne[1], per = (Cout + nth - 1) / nth;
    const int64_t tt = ct_tile(per * K, x->ne[0]);
    return w32_bytes(w) + (size_t)nth * cpu_align((size_t)(per * K) * (size_t)tt * sizeof(float));
}

void cpu_op_conv_transpose1d(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    const int64_t T = x->ne[0], Cin = x->ne[1], B = x->ne[2], K = w->ne[0], Cout = w->ne[1], Tout = node->ne[0];
    const int s = node->op_params[0];
    const float *X = (const float *)cpu_data(x);
    float *O = (float *)cpu_data(node);
    const float *W = weight_f32(p, w);
    const int64_t per = (Cout + p->nth - 1) / p->nth;
    const int64_t tt = ct_tile(per * K, T);
    float *cols = (float *)(p->work + w32_bytes(w) + (size_t)p->ith * cpu_align((size_t)(per * K) * (size_t)tt *
                                                                                   sizeof(float)));
    int64_t co0, co1;
    cpu_range(Cout, p->ith, p->nth, &co0, &co1);
    if (co0 >= co1)
        return;
    const int64_t rows = (co1 - co0) * K;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t co = co0; co < co1; co++)
            memset(O + (b * Cout + co) * Tout, 0, (size_t)Tout * sizeof *O);
        for (int64_t t0 = 0; t0 < T; t0 += tt) {
            const int64_t n = t0 + tt < T ? tt : T - t0;
            /* cols[(co - co0)*K + k][j] = sum_ci w[ci, co, k] x[b, ci, t0 + j] */
            cpu_sgemm(true, false, rows, n, Cin, W + co0 * K, Cout * K, X + b * Cin * T + t0, T, cols, n, false);
            for (int64_t co = co0; co < co1; co++) {
                float *o = O + (b * Cout + co) * Tout;
                for (int64_t k = 0; k < K; k++) {
                    const float *cr = cols + ((co - co0) * K + k) * n;
                    float *ok = o + t0 * s + k;
                    for (int64_t j = 0; j < n; j++)
                        ok[j * s] += cr[j];
                }
            }
        }
    }
}

/* ---------------- conv2d ---------------- */

typedef struct {
    int64_t W, H, Cin, N, KW, KH, Cout, Wo, Ho;
    int s0, s1, p0, p1, d0, d1;
} c2d_shape;

static c2d_shape c2d_get(const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    const int32_t *pp = node->op_params;
    return (c2d_shape){
        .W = x->ne[0], .H = x->ne[1], .Cin = x->ne[2], .N = x->ne[3], .KW = w->ne[0], .KH = w->ne[1],
        .Cout = w->ne[3], .Wo = node->ne[0], .Ho = node->ne[1], .s0 = pp[0], .s1 = pp[1], .p0 = pp[2],
        .p1 = pp[3], .d0 = pp[4], .d1 = pp[5],
    };
}

size_t cpu_work_conv2d(const ag_tensor *node, int nth)
{
    if (cpu_winograd_applies(node))
        return cpu_work_winograd(node, nth);
    const c2d_shape c = c2d_get(node);
    const int64_t ck = c.Cin * c.KH * c.KW, tt = col_tile(ck, c.Wo * c.Ho, c.N, nth);
    return w32_bytes(node->src[1]) + (size_t)nth * cpu_align((size_t)ck * (size_t)tt * sizeof(float));
}

/* One row of the column matrix: tap (kh, kw) of output positions q0 .. q0 + cnt - 1 (row-major
 * over Wo), zero outside the input. Runs of one output row are a strided (unit-stride when
 * s0 == 1) read of one input row, so they are copied a run at a time, padding cut off at the ends. */
static void im2col_row(const c2d_shape *c, const float *xc, int64_t kh, int64_t kw, int64_t q0, int64_t cnt,
                       float *dst)
{
    int64_t oh = q0 / c->Wo, ow = q0 % c->Wo, j = 0;
    while (j < cnt) {
        const int64_t run = c->Wo - ow < cnt - j ? c->Wo - ow : cnt - j; /* to the end of this output row */
        const int64_t ih = oh * c->s1 - c->p1 + kh * c->d1;
        float *d = dst + j;
        if (ih < 0 || ih >= c->H) {
            memset(d, 0, (size_t)run * sizeof *d);
        } else {
            const float *xr = xc + ih * c->W;
            /* iw = (ow + r) * s0 - p0 + kw * d0 for r < run: the r inside the input */
            const int64_t base = ow * c->s0 - c->p0 + kw * c->d0;
            int64_t lo = base >= 0 ? 0 : (-base + c->s0 - 1) / c->s0;
            int64_t hi = base >= c->W ? 0 : (c->W - 1 - base) / c->s0 + 1; /* first r past the input */
            lo = lo > run ? run : lo;
            hi = hi > run ? run : (hi < lo ? lo : hi);
            memset(d, 0, (size_t)lo * sizeof *d);
            if (c->s0 == 1)
                memcpy(d + lo, xr + base + lo, (size_t)(hi - lo) * sizeof *d);
            else
                for (int64_t r = lo; r < hi; r++)
                    d[r] = xr[base + r * c->s0];
            memset(d + hi, 0, (size_t)(run - hi) * sizeof *d);
        }
        j += run;
        ow = 0;
        oh++;
    }
}

void cpu_op_conv2d(const cpu_params *p, ag_tensor *node)
{
    if (cpu_winograd_applies(node)) {
        cpu_conv2d_winograd(p, node);
        return;
    }
    const c2d_shape c = c2d_get(node);
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const float *Wt = weight_f32(p, node->src[1]);
    const int64_t ck = c.Cin * c.KH * c.KW, P = c.Wo * c.Ho;
    const int64_t tt = col_tile(ck, P, c.N, p->nth);
    const int64_t ntiles = (P + tt - 1) / tt;
    float *col = (float *)(p->work + w32_bytes(node->src[1]) +
                           (size_t)p->ith * cpu_align((size_t)ck * (size_t)tt * sizeof(float)));
    for (int64_t u = p->ith; u < c.N * ntiles; u += p->nth) {
        const int64_t n = u / ntiles, q0 = (u % ntiles) * tt, cnt = q0 + tt < P ? tt : P - q0;
        for (int64_t ci = 0; ci < c.Cin; ci++) {
            const float *xc = X + (n * c.Cin + ci) * c.H * c.W;
            for (int64_t kh = 0; kh < c.KH; kh++)
                for (int64_t kw = 0; kw < c.KW; kw++)
                    im2col_row(&c, xc, kh, kw, q0, cnt, col + ((ci * c.KH + kh) * c.KW + kw) * cnt);
        }
        cpu_sgemm(false, false, c.Cout, cnt, ck, Wt, ck, col, cnt, O + n * c.Cout * P + q0, P, false);
    }
}
