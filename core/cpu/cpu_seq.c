/* LSTM recurrence and VQ nearest-codeword search. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define DOT_CHUNK 64

/* out[r] = dot(row r of w, act) for nr rows, in chunks the dot kernel takes. */
static void dot_rows(ag_type wt, int64_t n, const char *w, size_t stride, int64_t nr, const float *act, float *out)
{
    for (int64_t r = 0; r < nr; r += DOT_CHUNK) {
        const int64_t c = nr - r < DOT_CHUNK ? nr - r : DOT_CHUNK;
        ag_vec_dot_rows(wt, n, w + (size_t)r * stride, stride, (int)c, act, out + r);
    }
}

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ---------------- lstm ---------------- */

size_t cpu_work_lstm(const ag_tensor *node, int nth)
{
    (void)nth;
    const size_t H = (size_t)node->ne[0];
    return cpu_align(2 * H * 4) + cpu_align(H * 4) + cpu_align(4 * H * 4);
}

void cpu_op_lstm(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *gx = node->src[0], *whh = node->src[1];
    const int64_t H = node->ne[0], T = node->ne[1];
    const bool reverse = node->op_params[0] != 0;
    const float *GX = (const float *)cpu_data(gx);
    const char *W = cpu_data(whh);
    float *O = (float *)cpu_data(node);
    float *hbuf = (float *)p->work;
    float *c = (float *)(p->work + cpu_align((size_t)(2 * H) * 4));
    float *gates = (float *)((char *)c + cpu_align((size_t)H * 4));
    const size_t rs = whh->nb[1];
    int64_t j0, j1;
    cpu_range(H, p->ith, p->nth, &j0, &j1);
    for (int64_t j = j0; j < j1; j++)
        hbuf[j] = c[j] = 0.0f;
    cpu_barrier(p);
    for (int64_t s = 0; s < T; s++) {
        const int64_t t = reverse ? T - 1 - s : s;
        const float *hp = hbuf + (s % 2) * H;
        float *hn = hbuf + ((s + 1) % 2) * H;
        if (j1 > j0) {
            for (int q = 0; q < 4; q++)
                dot_rows(whh->type, H, W + (size_t)(q * H + j0) * rs, rs, j1 - j0, hp, gates + q * H + j0);
            const float *g = GX + t * 4 * H;
            for (int64_t j = j0; j < j1; j++) {
                const float ig = sigm(g[j] + gates[j]);
                const float fg = sigm(g[H + j] + gates[H + j]);
                const float gg = tanhf(g[2 * H + j] + gates[2 * H + j]);
                const float og = sigm(g[3 * H + j] + gates[3 * H + j]);
                c[j] = fg * c[j] + ig * gg;
                hn[j] = og * tanhf(c[j]);
                O[t * H + j] = hn[j];
            }
        }
        cpu_barrier(p);
    }
}

/* ---------------- vq_argmin ---------------- */

size_t cpu_work_vq_argmin(const ag_tensor *node, int nth)
{
    const size_t K = (size_t)node->src[1]->ne[1];
    return cpu_align(K * sizeof(double)) + (size_t)nth * cpu_align(K * sizeof(float));
}

static double exact_dist(const float *x, const float *c, int64_t D)
{
    double s = 0;
    for (int64_t i = 0; i < D; i++) {
        const double d = (double)x[i] - (double)c[i];
        s += d * d;
    }
    return s;
}

void cpu_op_vq_argmin(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *cb = node->src[1];
    const int64_t D = x->ne[0], T = x->ne[1], K = cb->ne[1];
    const float *X = (const float *)cpu_data(x), *C = (const float *)cpu_data(cb);
    int32_t *O = (int32_t *)cpu_data(node);
    double *cc = (double *)p->work;
    float *dots = (float *)(p->work + cpu_align((size_t)K * sizeof(double)) +
                            (size_t)p->ith * cpu_align((size_t)K * sizeof(float)));
    int64_t k0, k1;
    cpu_range(K, p->ith, p->nth, &k0, &k1);
    for (int64_t k = k0; k < k1; k++) {
        double s = 0;
        for (int64_t i = 0; i < D; i++)
            s += (double)C[k * D + i] * C[k * D + i];
        cc[k] = s;
    }
    cpu_barrier(p);
    double ccmax = 0;
    for (int64_t k = 0; k < K; k++)
        ccmax = cc[k] > ccmax ? cc[k] : ccmax;
    const double cmax = sqrt(ccmax);
    int64_t t0, t1;
    cpu_range(T, p->ith, p->nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const float *xt = X + t * D;
        double xx = 0;
        for (int64_t i = 0; i < D; i++)
            xx += (double)xt[i] * xt[i];
        /* ||x - c||^2 - ||x||^2 = ||c||^2 - 2 x.c with a float dot: fast but inexact, so every
         * codeword within the dot's error bound of the best is re-measured in double */
        dot_rows(AG_TYPE_F32, D, (const char *)C, (size_t)D * sizeof(float), K, xt, dots);
        double best = INFINITY;
        for (int64_t k = 0; k < K; k++) {
            const double d = cc[k] - 2.0 * (double)dots[k];
            best = d < best ? d : best;
        }
        const double tol = 8.0 * (double)(D + 1) * FLT_EPSILON * sqrt(xx) * cmax + 1e-30;
        int64_t arg = -1;
        double bexact = INFINITY;
        for (int64_t k = 0; k < K; k++) {
            const double d = cc[k] - 2.0 * (double)dots[k];
            if (!(d <= best + tol) && !isnan(d))
                continue;
            const double e = exact_dist(xt, C + k * D, D);
            if (arg < 0 || e < bexact) {
                bexact = e;
                arg = k;
            }
        }
        O[t] = (int32_t)(arg < 0 ? 0 : arg);
    }
}
