/* Elementwise and data-movement ops: cpy, add, mul, scale, unary, snake, glu, pad, upsample,
 * concat, argmax, get_rows. Work is split by rows (or flat elements) across threads. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <math.h>
#include <string.h>

/* Row r of a tensor with rows ne1*ne2*ne3 -> its (i1, i2, i3). */
static inline void row_idx(const ag_tensor *t, int64_t r, int64_t *i1, int64_t *i2, int64_t *i3)
{
    *i1 = r % t->ne[1];
    *i2 = (r / t->ne[1]) % t->ne[2];
    *i3 = r / (t->ne[1] * t->ne[2]);
}

static inline char *row_ptr(const ag_tensor *t, char *base, int64_t i1, int64_t i2, int64_t i3)
{
    return base + i1 * (int64_t)t->nb[1] + i2 * (int64_t)t->nb[2] + i3 * (int64_t)t->nb[3];
}

/* A copy whose rows are single elements (a transpose written as the view [1, B, A, N] of an
 * [A, B, N] tensor): 32 x 32 tiles of dims 1 and 2, so both sides stay in cache; 4-byte types. */
static void cpy_transpose(const cpu_params *p, const ag_tensor *a, ag_tensor *node)
{
    enum { TILE = 32 };
    const char *src = cpu_data(a);
    char *dst = cpu_data(node);
    const int64_t n1 = a->ne[1], n2 = a->ne[2], n3 = a->ne[3], t2 = (n2 + TILE - 1) / TILE;
    const int64_t s1 = (int64_t)a->nb[1], s2 = (int64_t)a->nb[2], s3 = (int64_t)a->nb[3];
    const int64_t d1 = (int64_t)node->nb[1], d2 = (int64_t)node->nb[2], d3 = (int64_t)node->nb[3];
    int64_t u0, u1;
    cpu_range(n3 * t2, p->ith, p->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++) {
        const int64_t i3 = u / t2, j0 = (u % t2) * TILE, j1 = j0 + TILE < n2 ? j0 + TILE : n2;
        for (int64_t k0 = 0; k0 < n1; k0 += TILE) {
            const int64_t k1 = k0 + TILE < n1 ? k0 + TILE : n1;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t k = k0; k < k1; k++)
                    memcpy(dst + k * d1 + j * d2 + i3 * d3, src + k * s1 + j * s2 + i3 * s3, 4);
        }
    }
}

void cpu_op_cpy(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0];
    char *src = cpu_data(a), *dst = cpu_data(node);
    const int64_t ne0 = a->ne[0];
    if (ne0 == 1 && a->type == node->type && ag_type_block_size(a->type) == 4 && a->ne[2] > 1) {
        cpy_transpose(p, a, node);
        return;
    }
    int64_t r0, r1;
    cpu_range(ag_nrows(a), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_idx(a, r, &i1, &i2, &i3);
        const char *s = row_ptr(a, src, i1, i2, i3);
        char *d = row_ptr(node, dst, i1, i2, i3);
        if (a->type == node->type)
            memmove(d, s, (size_t)ne0 * ag_type_block_size(a->type));
        else if (a->type == AG_TYPE_F32 && node->type == AG_TYPE_F16)
            ag_fp32_to_fp16_row((const float *)s, (ag_fp16 *)d, ne0);
        else if (a->type == AG_TYPE_F16 && node->type == AG_TYPE_F32)
            ag_fp16_to_fp32_row((const ag_fp16 *)s, (float *)d, ne0);
        else {
            cpu_fail(p, "cannot convert %s to %s", ag_type_name(a->type), ag_type_name(node->type));
            return;
        }
    }
}

static void binary(const cpu_params *p, ag_tensor *node, bool mul)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const float *A = (const float *)cpu_data(a), *B = (const float *)cpu_data(b);
    float *O = (float *)cpu_data(node);
    const int64_t ne0 = a->ne[0];
    int64_t r0, r1;
    cpu_range(ag_nrows(a), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_idx(a, r, &i1, &i2, &i3);
        const int64_t rb = (i1 % b->ne[1]) + b->ne[1] * ((i2 % b->ne[2]) + b->ne[2] * (i3 % b->ne[3]));
        const float *x = A + r * ne0, *y = B + rb * b->ne[0];
        float *o = O + r * ne0;
        if (b->ne[0] == 1) {
            const float s = y[0];
            if (mul)
                for (int64_t i = 0; i < ne0; i++)
                    o[i] = x[i] * s;
            else
                for (int64_t i = 0; i < ne0; i++)
                    o[i] = x[i] + s;
        } else if (mul) {
            for (int64_t i = 0; i < ne0; i++)
                o[i] = x[i] * y[i];
        } else {
            for (int64_t i = 0; i < ne0; i++)
                o[i] = x[i] + y[i];
        }
    }
}

void cpu_op_add(const cpu_params *p, ag_tensor *node) { binary(p, node, false); }
void cpu_op_mul(const cpu_params *p, ag_tensor *node) { binary(p, node, true); }

void cpu_op_scale(const cpu_params *p, ag_tensor *node)
{
    const float *x = (const float *)cpu_data(node->src[0]);
    float *o = (float *)cpu_data(node);
    const float s = ag_op_param_f32(node, 0), bias = ag_op_param_f32(node, 1);
    int64_t i0, i1;
    cpu_range(ag_nelements(node), p->ith, p->nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++)
        o[i] = x[i] * s + bias;
}

/* ELU without a libm call per element (expm1f was a tenth of SEANet codec time), 4 lanes at a
 * time with GCC/Clang vector extensions (plain SSE2 on x86-64). For x <= 0: x = n ln2 + r with
 * |r| <= ln2/2, expm1(x) = 2^n p(r) + (2^n - 1) where p is expm1's Taylor series to r^8
 * (truncation < 1e-9); n = 0 returns p itself, so no cancellation near 0. Within 1.2e-7
 * relative of expm1f; x < -87 gives -1; NaN stays NaN (it fails both comparisons). */
typedef float elu_f4 __attribute__((vector_size(16)));
typedef int32_t elu_i4 __attribute__((vector_size(16)));

static inline elu_f4 elu_sel(elu_i4 m, elu_f4 a, elu_f4 b) { return (elu_f4)((m & (elu_i4)a) | (~m & (elu_i4)b)); }

static inline elu_f4 elu_f4_of(elu_f4 v)
{
    const elu_i4 pos = v > 0.0f;
    elu_f4 x = elu_sel(pos, (elu_f4){0}, v);
    x = elu_sel(x < -87.0f, (elu_f4){0} - 87.0f, x);
    const elu_f4 nf = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln2) */
    const elu_f4 r = (x - nf * 0.693359375f) + nf * 2.12194440e-4f;          /* ln2 in two parts */
    elu_f4 p = r * (1.0f / 40320.0f) + 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r * r + r;
    const elu_f4 s = (elu_f4)((__builtin_convertvector(nf, elu_i4) + 127) << 23); /* 2^n, n in [-126, 0] */
    return elu_sel(pos, v, s * p + (s - 1.0f));
}

static void elu_range(const float *x, float *o, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        elu_f4 v;
        memcpy(&v, x + i, sizeof v);
        v = elu_f4_of(v);
        memcpy(o + i, &v, sizeof v);
    }
    for (; i < n; i++)
        o[i] = elu_f4_of((elu_f4){x[i]})[0];
}

void cpu_op_unary(const cpu_params *p, ag_tensor *node)
{
    const float *x = (const float *)cpu_data(node->src[0]);
    float *o = (float *)cpu_data(node);
    int64_t i0, i1;
    cpu_range(ag_nelements(node), p->ith, p->nth, &i0, &i1);
    switch ((ag_unary_op)node->op_params[0]) {
    case AG_UNARY_SILU:
        if (i1 > i0)
            ag_vec_silu(x + i0, o + i0, i1 - i0);
        break;
    case AG_UNARY_GELU:
        for (int64_t i = i0; i < i1; i++)
            o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case AG_UNARY_ELU:
        elu_range(x + i0, o + i0, i1 - i0);
        break;
    case AG_UNARY_TANH:
        for (int64_t i = i0; i < i1; i++)
            o[i] = tanhf(x[i]);
        break;
    case AG_UNARY_SIGMOID:
        for (int64_t i = i0; i < i1; i++)
            o[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case AG_UNARY_RELU:
        for (int64_t i = i0; i < i1; i++)
            o[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    default: cpu_fail(p, "unknown unary op %d", node->op_params[0]); break;
    }
}

void cpu_op_snake(const cpu_params *p, ag_tensor *node)
{
    const float *X = (const float *)cpu_data(node->src[0]);
    const float *alpha = (const float *)cpu_data(node->src[1]);
    float *O = (float *)cpu_data(node);
    const int64_t T = node->ne[0], C = node->ne[1];
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float a = alpha[r % C], inv = 1.0f / (a + 1e-9f);
        const float *x = X + r * T;
        float *o = O + r * T;
        for (int64_t t = 0; t < T; t++) {
            const float s = sinf(a * x[t]);
            o[t] = x[t] + s * s * inv;
        }
    }
}

void cpu_op_glu(const cpu_params *p, ag_tensor *node)
{
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const int64_t n = node->ne[0];
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    const bool gelu = node->op_params[0] == AG_GLU_GELU;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = X + r * 2 * n;
        float *o = O + r * n;
        if (gelu)
            for (int64_t i = 0; i < n; i++)
                o[i] = x[i] * (0.5f * x[n + i] * (1.0f + erff(x[n + i] * 0.70710678118654752f)));
        else
            for (int64_t i = 0; i < n; i++)
                o[i] = x[i] / (1.0f + expf(-x[n + i]));
    }
}

/* PyTorch reflect index of i in [-(n-1), 2n-2]. */
static inline int64_t reflect(int64_t i, int64_t n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * (n - 1) - i;
    return i;
}

void cpu_op_pad(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0];
    const float *X = (const float *)cpu_data(a);
    float *O = (float *)cpu_data(node);
    const int l0 = node->op_params[0], l1 = node->op_params[2];
    const bool refl = node->op_params[4] == AG_PAD_REFLECT;
    const int64_t n0 = a->ne[0], n1 = a->ne[1], o0n = node->ne[0];
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t o1 = r % node->ne[1], i23 = r / node->ne[1];
        float *o = O + r * o0n;
        int64_t i1 = o1 - l1;
        if (refl)
            i1 = reflect(i1, n1);
        if (i1 < 0 || i1 >= n1) {
            memset(o, 0, (size_t)o0n * sizeof *o);
            continue;
        }
        const float *x = X + (i23 * n1 + i1) * n0;
        if (refl) {
            for (int64_t j = 0; j < o0n; j++)
                o[j] = x[reflect(j - l0, n0)];
        } else {
            memset(o, 0, (size_t)l0 * sizeof *o);
            memcpy(o + l0, x, (size_t)n0 * sizeof *o);
            memset(o + l0 + n0, 0, (size_t)(o0n - l0 - n0) * sizeof *o);
        }
    }
}

void cpu_op_upsample(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0];
    const float *X = (const float *)cpu_data(a);
    float *O = (float *)cpu_data(node);
    const int f0 = node->op_params[0], f1 = node->op_params[1];
    const int64_t n0 = a->ne[0], n1 = a->ne[1], o0n = node->ne[0];
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t o1 = r % node->ne[1], i23 = r / node->ne[1];
        const float *x = X + (i23 * n1 + o1 / f1) * n0;
        float *o = O + r * o0n;
        for (int64_t j = 0; j < o0n; j++)
            o[j] = x[j / f0];
    }
}

void cpu_op_concat(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const float *A = (const float *)cpu_data(a), *B = (const float *)cpu_data(b);
    float *O = (float *)cpu_data(node);
    const int dim = node->op_params[0];
    int64_t r0, r1;
    cpu_range(ag_nrows(node), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i[4] = {0};
        row_idx(node, r, &i[1], &i[2], &i[3]);
        float *o = O + r * node->ne[0];
        if (dim == 0) {
            const int64_t ra = i[1] + a->ne[1] * (i[2] + a->ne[2] * i[3]);
            memcpy(o, A + ra * a->ne[0], (size_t)a->ne[0] * sizeof *o);
            memcpy(o + a->ne[0], B + ra * b->ne[0], (size_t)b->ne[0] * sizeof *o);
            continue;
        }
        const ag_tensor *s = a;
        const float *S = A;
        if (i[dim] >= a->ne[dim]) {
            i[dim] -= a->ne[dim];
            s = b;
            S = B;
        }
        const int64_t rs = i[1] + s->ne[1] * (i[2] + s->ne[2] * i[3]);
        memcpy(o, S + rs * s->ne[0], (size_t)s->ne[0] * sizeof *o);
    }
}

void cpu_op_argmax(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0];
    const float *X = (const float *)cpu_data(a);
    int32_t *O = (int32_t *)cpu_data(node);
    const int64_t n = a->ne[0];
    int64_t r0, r1;
    cpu_range(ag_nrows(a), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = X + r * n;
        int64_t best = 0;
        for (int64_t i = 1; i < n; i++)
            if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i])))
                best = i;
        O[r] = (int32_t)best;
    }
}

void cpu_op_get_rows(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *tab = node->src[0], *ids = node->src[1];
    const char *T = cpu_data(tab);
    const int32_t *I = (const int32_t *)cpu_data(ids);
    float *O = (float *)cpu_data(node);
    const int64_t D = tab->ne[0], V = tab->ne[1];
    int64_t r0, r1;
    cpu_range(ag_nelements(ids), p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int32_t id = I[r];
        if (id < 0 || id >= V) {
            cpu_fail(p, "row id %d at position %lld is out of range [0, %lld) of table '%s'", id, (long long)r,
                     (long long)V, tab->name);
            return;
        }
        cpu_to_f32(tab->type, T + (size_t)id * tab->nb[1], O + r * D, D);
    }
}
