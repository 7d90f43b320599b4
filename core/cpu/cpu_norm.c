/* Row-wise normalisations and softmax, and rotary position embedding. Statistics are summed
 * in double: rows are long (4096+) and cancellation in the variance is real. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <math.h>
#include <string.h>

/* Sums in double with four independent chains (a single chain is add-latency bound). */
static double sum_sq(const float *x, int64_t n, double center)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const double d0 = x[i] - center, d1 = x[i + 1] - center, d2 = x[i + 2] - center, d3 = x[i + 3] - center;
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
    }
    for (; i < n; i++)
        a0 += (x[i] - center) * (x[i] - center);
    return (a0 + a1) + (a2 + a3);
}

static double sum(const float *x, int64_t n)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += x[i];
        a1 += x[i + 1];
        a2 += x[i + 2];
        a3 += x[i + 3];
    }
    for (; i < n; i++)
        a0 += x[i];
    return (a0 + a1) + (a2 + a3);
}

void cpu_op_rms_norm(const cpu_params *p, ag_tensor *node)
{
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const int64_t n = node->ne[0];
    const float eps = ag_op_param_f32(node, 0);
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = X + r * n;
        float *o = O + r * n;
        const double ss = sum_sq(x, n, 0.0);
        const float s = (float)(1.0 / sqrt(ss / (double)n + eps));
        for (int64_t i = 0; i < n; i++)
            o[i] = x[i] * s;
    }
}

/* mean and 1/sqrt(biased var + eps) of n values */
static void moments(const float *x, int64_t n, float eps, float *mean, float *inv)
{
    const double m = sum(x, n) / (double)n;
    const double v = sum_sq(x, n, m);
    *mean = (float)m;
    *inv = (float)(1.0 / sqrt(v / (double)n + eps));
}

void cpu_op_layer_norm(const cpu_params *p, ag_tensor *node)
{
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const int64_t n = node->ne[0];
    const float eps = ag_op_param_f32(node, 0);
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float mean, inv;
        moments(X + r * n, n, eps, &mean, &inv);
        const float *x = X + r * n;
        float *o = O + r * n;
        for (int64_t i = 0; i < n; i++)
            o[i] = (x[i] - mean) * inv;
    }
}

void cpu_op_group_norm(const cpu_params *p, ag_tensor *node)
{
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const int G = node->op_params[0];
    const float eps = ag_op_param_f32(node, 1);
    /* a group is a contiguous block of ne0*ne1*(C/G) values */
    const int64_t gsize = node->ne[0] * node->ne[1] * (node->ne[2] / G);
    const int64_t n_blocks = (int64_t)G * node->ne[3];
    int64_t b0, b1;
    cpu_range(n_blocks, p->ith, p->nth, &b0, &b1);
    const ag_tensor *wt = node->src[1], *bs = node->src[2];
    const float *W = wt ? (const float *)cpu_data(wt) : NULL, *B = bs ? (const float *)cpu_data(bs) : NULL;
    const bool silu = node->op_params[2] != 0;
    const int64_t plane = node->ne[0] * node->ne[1], cpg = node->ne[2] / G;
    for (int64_t b = b0; b < b1; b++) {
        float mean, inv;
        const float *x = X + b * gsize;
        float *o = O + b * gsize;
        moments(x, gsize, eps, &mean, &inv);
        if (!W && !B && !silu) {
            for (int64_t i = 0; i < gsize; i++)
                o[i] = (x[i] - mean) * inv;
            continue;
        }
        /* channel by channel: (x - mean) * inv * w + b, then the activation */
        const int64_t c0 = (b % G) * cpg;
        for (int64_t c = 0; c < cpg; c++) {
            const float w = W ? W[c0 + c] : 1.0f, bias = B ? B[c0 + c] : 0.0f;
            const float *xc = x + c * plane;
            float *oc = o + c * plane;
            for (int64_t i = 0; i < plane; i++)
                oc[i] = (xc[i] - mean) * inv * w + bias;
            if (silu)
                ag_vec_silu(oc, oc, plane);
        }
    }
}

void cpu_op_softmax(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *mask = node->src[1];
    const float *X = (const float *)cpu_data(a);
    const float *Mk = mask ? (const float *)cpu_data(mask) : NULL;
    float *O = (float *)cpu_data(node);
    const float scale = ag_op_param_f32(node, 0);
    const bool causal = node->op_params[1] != 0;
    const int64_t N = a->ne[0], M = a->ne[1];
    int64_t r0, r1;
    cpu_range(ag_nrows(a), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t m = r % M, i2 = (r / M) % a->ne[2];
        const float *x = X + r * N;
        float *o = O + r * N;
        const float *mk = Mk ? Mk + (m + (mask->ne[2] == 1 ? 0 : i2 * M)) * N : NULL;
        /* columns >= lim are causally masked */
        const int64_t lim = causal ? (m + (N - M) + 1 < 0 ? 0 : (m + (N - M) + 1 > N ? N : m + (N - M) + 1)) : N;
        float mx = -INFINITY;
        for (int64_t i = 0; i < lim; i++) {
            const float v = x[i] * scale + (mk ? mk[i] : 0.0f);
            o[i] = v;
            mx = v > mx ? v : mx;
        }
        if (mx == -INFINITY) {
            memset(o, 0, (size_t)N * sizeof *o);
            continue;
        }
        double sum = 0;
        for (int64_t i = 0; i < lim; i++) {
            const float e = expf(o[i] - mx);
            o[i] = e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < lim; i++)
            o[i] *= inv;
        for (int64_t i = lim; i < N; i++)
            o[i] = 0.0f;
    }
}

size_t cpu_priv_rope(const ag_tensor *node)
{
    const size_t half = (size_t)node->op_params[0] / 2;
    return cpu_align(half * (sizeof(double) + 2 * sizeof(float)));
}

void cpu_op_rope(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0];
    const float *X = (const float *)cpu_data(a);
    const int32_t *pos = (const int32_t *)cpu_data(node->src[1]);
    float *O = (float *)cpu_data(node);
    const int n_dims = node->op_params[0], half = n_dims / 2;
    const bool neox = node->op_params[1] == AG_ROPE_NEOX;
    const double base = ag_op_param_f32(node, 2), fscale = ag_op_param_f32(node, 3);
    const int64_t D = a->ne[0], H = a->ne[1], T = a->ne[2];
    char *scratch = p->priv;
    double *inv_freq = (double *)scratch;
    float *cs = (float *)(inv_freq + half), *sn = cs + half;
    for (int i = 0; i < half; i++)
        inv_freq[i] = pow(base, -2.0 * i / n_dims);
    int64_t r0, r1;
    cpu_range(T * a->ne[3], p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const double ps = (double)pos[r % T] * fscale;
        for (int i = 0; i < half; i++) {
            const double th = ps * inv_freq[i];
            cs[i] = (float)cos(th);
            sn[i] = (float)sin(th);
        }
        for (int64_t h = 0; h < H; h++) {
            const float *x = X + (r * H + h) * D;
            float *o = O + (r * H + h) * D;
            for (int i = 0; i < half; i++) {
                const int64_t j0 = neox ? i : 2 * i, j1 = neox ? i + half : 2 * i + 1;
                const float x0 = x[j0], x1 = x[j1];
                o[j0] = x0 * cs[i] - x1 * sn[i];
                o[j1] = x0 * sn[i] + x1 * cs[i];
            }
            for (int64_t j = n_dims; j < D; j++)
                o[j] = x[j];
        }
    }
}
