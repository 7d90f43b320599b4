/* Vulkan heavy ops (MUL_MAT, CONV1D, CONV_TRANSPOSE1D, CONV2D, LSTM, VQ_ARGMIN, ATTENTION)
 * against naive double-precision loops written straight from graph.h, on small odd shapes.
 * Quantized / F16 operands are compared against their dequantized values, so the check is
 * exact up to float accumulation. Also prints a few timings ('# timing'). */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/graph.h"
#include "anygpt/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail;
static ag_backend *be;

/* ---- per-case arena: a context plus one device buffer per bound tensor ---- */
#define MAX_BUFS 16
static ag_ctx *ctx;
static ag_buffer *bufs[MAX_BUFS];
static int n_bufs;

static void case_begin(void)
{
    ctx = ag_ctx_new(64);
    n_bufs = 0;
}

static void case_end(void)
{
    for (int i = 0; i < n_bufs; i++)
        ag_buffer_free(bufs[i]);
    n_bufs = 0;
    ag_ctx_free(ctx);
    ctx = NULL;
}

static int bind_new(ag_tensor *t)
{
    if (n_bufs == MAX_BUFS)
        return -1;
    ag_buffer *b = ag_buffer_alloc(be, ag_nbytes(t) + 16);
    if (!b)
        return -1;
    bufs[n_bufs++] = b;
    return ag_tensor_bind(t, b, 0);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 24))) * 2.0f - 1.0f;
}

static float *rand_vec(size_t n, float scale)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}

/* A bound leaf holding vals converted to `type`; vals is overwritten with the values the
 * device really sees (dequantized), which the references use. */
static ag_tensor *leaf(ag_type type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, float *vals)
{
    int64_t ne[4] = {ne0, ne1, ne2, ne3};
    ag_tensor *t = ag_new_tensor(ctx, type, 4, ne);
    if (!t || bind_new(t) != 0)
        return NULL;
    int64_t rows = ne1 * ne2 * ne3;
    size_t bytes = ag_row_size(type, ne0) * (size_t)rows;
    void *tmp = malloc(bytes);
    ag_quantize(type, vals, tmp, rows, ne0);
    for (int64_t r = 0; r < rows; r++)
        ag_dequantize_row(type, (char *)tmp + r * ag_row_size(type, ne0), vals + r * ne0, ne0);
    int rc = ag_tensor_set(t, tmp, 0, bytes);
    free(tmp);
    return rc == 0 ? t : NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Bind out, run the graph, fetch n floats (or int32) into dst. Returns seconds or < 0. */
static double run(ag_tensor *out, void *dst, size_t bytes, int reps)
{
    if (!out) {
        fprintf(stderr, "  build failed: %s\n", ag_last_error());
        return -1;
    }
    if (bind_new(out) != 0)
        return -1;
    ag_graph *g = ag_graph_new(ctx, 64);
    ag_graph_expand(g, out);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (ag_backend_compute(be, g) != 0) {
            fprintf(stderr, "  compute failed: %s\n", ag_last_error());
            ag_graph_free(g);
            return -1;
        }
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    ag_graph_free(g);
    if (ag_tensor_get(out, dst, 0, bytes) != 0) {
        fprintf(stderr, "  read failed: %s\n", ag_last_error());
        return -1;
    }
    return best;
}

/* got vs ref with a tolerance scaled by the sum of |terms| (mag) of each output. */
static void check(const char *name, const float *got, const double *ref, const double *mag, size_t n, double rtol)
{
    size_t bad = 0, worst_i = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = rtol * (mag ? mag[i] : fabs(ref[i])) + 1e-6;
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= tol)) {
            bad++;
            if (!(e <= worst)) {
                worst = e;
                worst_i = i;
            }
        }
    }
    if (bad) {
        n_fail++;
        printf("not ok - %s: %zu/%zu off, worst at %zu: got %.7g want %.7g\n", name, bad, n, worst_i,
               got[worst_i], ref[worst_i]);
    } else {
        n_pass++;
        printf("ok - %s\n", name);
    }
}

static void fail(const char *name)
{
    n_fail++;
    printf("not ok - %s: %s\n", name, ag_last_error());
}

/* ---------------------------------------------------------------- MUL_MAT */

static int g_b_shift; /* floats by which b is offset inside its buffer */

static void test_mul_mat(ag_type type, int64_t K, int64_t N, int64_t M, int64_t A2, int64_t A3, int64_t B2,
                         int64_t B3, int reps)
{
    char name[160];
    snprintf(name, sizeof name, "mul_mat %s K=%lld N=%lld M=%lld a[%lld,%lld] b[%lld,%lld]%s", ag_type_name(type),
             (long long)K, (long long)N, (long long)M, (long long)A2, (long long)A3, (long long)B2, (long long)B3,
             getenv("AG_VK_MATMUL_SPLIT_BYTES") ? " split" : g_b_shift ? " b-offset" : "");
    case_begin();
    float *a = rand_vec((size_t)(K * N * A2 * A3), 1.0f);
    const int64_t Kb = K;
    float *b = rand_vec((size_t)(Kb * M * B2 * B3) + (size_t)g_b_shift, 1.0f);
    ag_tensor *ta = leaf(type, K, N, A2, A3, a);
    ag_tensor *tb;
    if (g_b_shift) { /* b starts g_b_shift floats into its storage (not 16-byte aligned) */
        ag_tensor *base = leaf(AG_TYPE_F32, Kb * M * B2 * B3 + g_b_shift, 1, 1, 1, b);
        memmove(b, b + g_b_shift, (size_t)(Kb * M * B2 * B3) * 4);
        ag_tensor *tmp = ag_new_4d(ctx, AG_TYPE_F32, Kb, M, B2, B3); /* for its strides */
        tb = base && tmp ? ag_view(ctx, base, 4, tmp->ne, tmp->nb, (size_t)g_b_shift * 4) : NULL;
    } else {
        tb = leaf(AG_TYPE_F32, Kb, M, B2, B3, b);
    }
    size_t n_out = (size_t)(N * M * B2 * B3);
    float *got = malloc(n_out * sizeof *got);
    double *ref = malloc(n_out * sizeof *ref), *mag = malloc(n_out * sizeof *mag);
    double dt = ta && tb ? run(ag_mul_mat(ctx, ta, tb), got, n_out * 4, reps) : -1;
    if (dt < 0) {
        fail(name);
    } else {
        for (int64_t i3 = 0; i3 < B3; i3++)
            for (int64_t i2 = 0; i2 < B2; i2++)
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++) {
                        const float *ar = a + ((i3 / (B3 / A3)) * A2 + i2 / (B2 / A2)) * N * K + n * K;
                        const float *br = b + ((i3 * B2 + i2) * M + m) * Kb;
                        double s = 0, sa = 0;
                        for (int64_t k = 0; k < K; k++) {
                            s += (double)ar[k] * br[k];
                            sa += fabs((double)ar[k] * br[k]);
                        }
                        size_t o = (size_t)(((i3 * B2 + i2) * M + m) * N + n);
                        ref[o] = s;
                        mag[o] = sa;
                    }
        check(name, got, ref, mag, n_out, 2e-5);
        if (reps > 1)
            printf("# timing: %s: %.3f ms (%.2f GFLOP/s)\n", name, dt * 1e3,
                   2.0 * K * N * M * B2 * B3 / dt * 1e-9);
    }
    free(a), free(b), free(got), free(ref), free(mag);
    case_end();
}

/* ---------------------------------------------------------------- convolutions */

static void test_conv1d(ag_type wt, int64_t T, int64_t Cin, int64_t Cout, int64_t K, int s, int d, int g, int64_t B)
{
    char name[160];
    snprintf(name, sizeof name, "conv1d %s T=%lld Cin=%lld Cout=%lld K=%lld s=%d d=%d g=%d B=%lld",
             ag_type_name(wt), (long long)T, (long long)Cin, (long long)Cout, (long long)K, s, d, g, (long long)B);
    case_begin();
    int64_t cg = Cin / g, og = Cout / g, Tout = (T - d * (K - 1) - 1) / s + 1;
    float *x = rand_vec((size_t)(T * Cin * B), 1.0f), *w = rand_vec((size_t)(K * cg * Cout), 1.0f);
    ag_tensor *tx = leaf(AG_TYPE_F32, T, Cin, B, 1, x), *tw = leaf(wt, K, cg, Cout, 1, w);
    size_t n_out = (size_t)(Tout * Cout * B);
    float *got = malloc(n_out * 4);
    double *ref = malloc(n_out * 8), *mag = malloc(n_out * 8);
    if (run(tx && tw ? ag_conv1d(ctx, tx, tw, s, d, g) : NULL, got, n_out * 4, 1) < 0) {
        fail(name);
    } else {
        for (int64_t b = 0; b < B; b++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t t = 0; t < Tout; t++) {
                    double acc = 0, sa = 0;
                    int64_t gi = co / og;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t k = 0; k < K; k++) {
                            double v = (double)w[(co * cg + ci) * K + k] * x[(b * Cin + gi * cg + ci) * T + t * s + k * d];
                            acc += v;
                            sa += fabs(v);
                        }
                    size_t o = (size_t)((b * Cout + co) * Tout + t);
                    ref[o] = acc;
                    mag[o] = sa;
                }
        check(name, got, ref, mag, n_out, 2e-5);
    }
    free(x), free(w), free(got), free(ref), free(mag);
    case_end();
}

static void test_conv_transpose1d(ag_type wt, int64_t T, int64_t Cin, int64_t Cout, int64_t K, int s, int64_t B)
{
    char name[160];
    snprintf(name, sizeof name, "conv_transpose1d %s T=%lld Cin=%lld Cout=%lld K=%lld s=%d B=%lld", ag_type_name(wt),
             (long long)T, (long long)Cin, (long long)Cout, (long long)K, s, (long long)B);
    case_begin();
    int64_t Tout = (T - 1) * s + K;
    float *x = rand_vec((size_t)(T * Cin * B), 1.0f), *w = rand_vec((size_t)(K * Cout * Cin), 1.0f);
    ag_tensor *tx = leaf(AG_TYPE_F32, T, Cin, B, 1, x), *tw = leaf(wt, K, Cout, Cin, 1, w);
    size_t n_out = (size_t)(Tout * Cout * B);
    float *got = malloc(n_out * 4);
    double *ref = calloc(n_out, 8), *mag = calloc(n_out, 8);
    if (run(tx && tw ? ag_conv_transpose1d(ctx, tx, tw, s) : NULL, got, n_out * 4, 1) < 0) {
        fail(name);
    } else {
        /* scatter form: every input sample adds w * x to K outputs */
        for (int64_t b = 0; b < B; b++)
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int64_t t = 0; t < T; t++)
                    for (int64_t co = 0; co < Cout; co++)
                        for (int64_t k = 0; k < K; k++) {
                            double v = (double)x[(b * Cin + ci) * T + t] * w[(ci * Cout + co) * K + k];
                            size_t o = (size_t)((b * Cout + co) * Tout + t * s + k);
                            ref[o] += v;
                            mag[o] += fabs(v);
                        }
        check(name, got, ref, mag, n_out, 2e-5);
    }
    free(x), free(w), free(got), free(ref), free(mag);
    case_end();
}

static void test_conv2d(ag_type wt, int64_t W, int64_t H, int64_t Cin, int64_t Cout, int64_t N, int64_t KW,
                        int64_t KH, const int p[6], int reps)
{
    char name[200];
    snprintf(name, sizeof name, "conv2d %s %lldx%lldx%lld->%lld N=%lld k=%lldx%lld s=%d,%d p=%d,%d d=%d,%d",
             ag_type_name(wt), (long long)W, (long long)H, (long long)Cin, (long long)Cout, (long long)N,
             (long long)KW, (long long)KH, p[0], p[1], p[2], p[3], p[4], p[5]);
    case_begin();
    int64_t Wo = (W + 2 * p[2] - p[4] * (KW - 1) - 1) / p[0] + 1;
    int64_t Ho = (H + 2 * p[3] - p[5] * (KH - 1) - 1) / p[1] + 1;
    float *x = rand_vec((size_t)(W * H * Cin * N), 1.0f), *w = rand_vec((size_t)(KW * KH * Cin * Cout), 1.0f);
    ag_tensor *tx = leaf(AG_TYPE_F32, W, H, Cin, N, x), *tw = leaf(wt, KW, KH, Cin, Cout, w);
    size_t n_out = (size_t)(Wo * Ho * Cout * N);
    float *got = malloc(n_out * 4);
    double *ref = malloc(n_out * 8), *mag = malloc(n_out * 8);
    double dt = run(tx && tw ? ag_conv2d(ctx, tx, tw, p[0], p[1], p[2], p[3], p[4], p[5]) : NULL, got, n_out * 4,
                    reps);
    if (dt < 0) {
        fail(name);
    } else {
        for (int64_t n = 0; n < N; n++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t ho = 0; ho < Ho; ho++)
                    for (int64_t wo = 0; wo < Wo; wo++) {
                        double acc = 0, sa = 0;
                        for (int64_t ci = 0; ci < Cin; ci++)
                            for (int64_t kh = 0; kh < KH; kh++)
                                for (int64_t kw = 0; kw < KW; kw++) {
                                    int64_t wi = wo * p[0] - p[2] + kw * p[4], hi = ho * p[1] - p[3] + kh * p[5];
                                    if (wi < 0 || hi < 0 || wi >= W || hi >= H)
                                        continue;
                                    double v = (double)w[((co * Cin + ci) * KH + kh) * KW + kw] *
                                               x[((n * Cin + ci) * H + hi) * W + wi];
                                    acc += v;
                                    sa += fabs(v);
                                }
                        size_t o = (size_t)(((n * Cout + co) * Ho + ho) * Wo + wo);
                        ref[o] = acc;
                        mag[o] = sa;
                    }
        check(name, got, ref, mag, n_out, 2e-5);
        if (reps > 1)
            printf("# timing: %s: %.3f ms (%.2f GFLOP/s)\n", name, dt * 1e3,
                   2.0 * (double)n_out * Cin * KW * KH / dt * 1e-9);
    }
    free(x), free(w), free(got), free(ref), free(mag);
    case_end();
}

/* ---------------------------------------------------------------- LSTM */

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

/* mode: "loop" (time loop inside one workgroup) or "step" (one dispatch per step) */
static void test_lstm(ag_type wt, int64_t H, int64_t T, bool reverse, const char *mode, int reps)
{
    char name[160];
    snprintf(name, sizeof name, "lstm %s H=%lld T=%lld%s %s", ag_type_name(wt), (long long)H, (long long)T,
             reverse ? " reverse" : "", mode);
    setenv("AG_VK_LSTM", mode, 1);
    case_begin();
    float *gx = rand_vec((size_t)(4 * H * T), 1.0f), *w = rand_vec((size_t)(H * 4 * H), 2.0f / sqrtf((float)H));
    ag_tensor *tg = leaf(AG_TYPE_F32, 4 * H, T, 1, 1, gx), *tw = leaf(wt, H, 4 * H, 1, 1, w);
    size_t n_out = (size_t)(H * T);
    float *got = malloc(n_out * 4);
    double *ref = malloc(n_out * 8), *h = calloc((size_t)H, 8), *c = calloc((size_t)H, 8), *hn = malloc(H * 8);
    double dt = run(tg && tw ? ag_lstm(ctx, tg, tw, reverse) : NULL, got, n_out * 4, reps);
    if (dt < 0) {
        fail(name);
    } else {
        for (int64_t st = 0; st < T; st++) {
            int64_t t = reverse ? T - 1 - st : st;
            for (int64_t j = 0; j < H; j++) {
                double gs[4];
                for (int q = 0; q < 4; q++) {
                    double s = gx[t * 4 * H + q * H + j];
                    for (int64_t k = 0; k < H; k++)
                        s += (double)w[(q * H + j) * H + k] * h[k];
                    gs[q] = s;
                }
                c[j] = sigm(gs[1]) * c[j] + sigm(gs[0]) * tanh(gs[2]);
                hn[j] = sigm(gs[3]) * tanh(c[j]);
            }
            memcpy(h, hn, H * 8);
            memcpy(ref + t * H, h, H * 8);
        }
        /* h is bounded by 1 and errors do not grow through the contracting recurrence */
        double *mag = malloc(n_out * 8);
        for (size_t i = 0; i < n_out; i++)
            mag[i] = 1.0;
        check(name, got, ref, mag, n_out, 2e-5);
        free(mag);
        if (reps > 1)
            printf("# timing: %s: %.3f ms (%.1f us/step)\n", name, dt * 1e3, dt * 1e6 / T);
    }
    free(gx), free(w), free(got), free(ref), free(h), free(c), free(hn);
    case_end();
    unsetenv("AG_VK_LSTM");
}

/* ---------------------------------------------------------------- VQ_ARGMIN */

static void test_vq(int64_t D, int64_t K, int64_t T)
{
    char name[160];
    snprintf(name, sizeof name, "vq_argmin D=%lld K=%lld T=%lld (with ties)", (long long)D, (long long)K,
             (long long)T);
    case_begin();
    float *x = rand_vec((size_t)(D * T), 1.0f), *cb = rand_vec((size_t)(D * K), 1.0f);
    /* ties: codeword K-1 duplicates codeword K/3, and some x sit exactly on it */
    memcpy(cb + (K - 1) * D, cb + (K / 3) * D, D * 4);
    for (int64_t t = 0; t < T; t += 5)
        memcpy(x + t * D, cb + (K / 3) * D, D * 4);
    ag_tensor *tx = leaf(AG_TYPE_F32, D, T, 1, 1, x), *tc = leaf(AG_TYPE_F32, D, K, 1, 1, cb);
    int32_t *got = malloc(T * 4);
    if (run(tx && tc ? ag_vq_argmin(ctx, tx, tc) : NULL, got, T * 4, 1) < 0) {
        fail(name);
    } else {
        int64_t bad = 0;
        for (int64_t t = 0; t < T; t++) {
            /* float distances exactly as the shader sums them: ordered sum of squares */
            int64_t best = 0;
            float bd = INFINITY;
            for (int64_t k = 0; k < K; k++) {
                float s = 0;
                for (int64_t d = 0; d < D; d++) {
                    float e = x[t * D + d] - cb[k * D + d];
                    s += e * e;
                }
                if (s < bd) {
                    bd = s;
                    best = k;
                }
            }
            if (got[t] != best) {
                if (!bad)
                    printf("# t=%lld got %d want %lld\n", (long long)t, got[t], (long long)best);
                bad++;
            }
        }
        if (bad) {
            n_fail++;
            printf("not ok - %s: %lld wrong\n", name, (long long)bad);
        } else {
            n_pass++;
            printf("ok - %s\n", name);
        }
    }
    free(x), free(cb), free(got);
    case_end();
}

/* ---------------------------------------------------------------- ATTENTION */

typedef struct att_case {
    int64_t D, Dv, Nq, Nk, H, Hkv;
    ag_type kvt;
    bool mask, causal, strided_q;
    int64_t check_every; /* reference rows: every n-th query (big cases) */
    int reps;
    const char *split; /* AG_VK_ATTN_SPLIT for this case (NULL: the backend's choice) */
} att_case;

static void test_attention(att_case c)
{
    char name[200];
    snprintf(name, sizeof name, "attention %s D=%lld Dv=%lld Nq=%lld Nk=%lld H=%lld Hkv=%lld%s%s%s%s%s",
             ag_type_name(c.kvt), (long long)c.D, (long long)c.Dv, (long long)c.Nq, (long long)c.Nk, (long long)c.H,
             (long long)c.Hkv, c.mask ? " mask" : "", c.causal ? " causal" : "", c.strided_q ? " strided-q" : "",
             c.split ? " split=" : "", c.split ? c.split : "");
    if (c.split)
        setenv("AG_VK_ATTN_SPLIT", c.split, 1);
    case_begin();
    float scale = 1.0f / sqrtf((float)c.D);
    float *q = rand_vec((size_t)(c.D * c.Nq * c.H), 2.0f), *k = rand_vec((size_t)(c.D * c.Nk * c.Hkv), 2.0f);
    float *v = rand_vec((size_t)(c.Dv * c.Nk * c.Hkv), 1.0f);
    float *m = c.mask ? rand_vec((size_t)(c.Nk * c.Nq), 2.0f) : NULL;
    if (m) /* some fully hidden keys, as padding masks do */
        for (int64_t i = 0; i < c.Nq; i++)
            for (int64_t j = 0; j < c.Nk; j += 7)
                m[i * c.Nk + j] = -INFINITY;
    ag_tensor *tq;
    if (c.strided_q) { /* q stored [D, H, Nq] (projection output) and permuted to [D, Nq, H] */
        float *qs = malloc(c.D * c.Nq * c.H * 4);
        for (int64_t h = 0; h < c.H; h++)
            for (int64_t i = 0; i < c.Nq; i++)
                memcpy(qs + (i * c.H + h) * c.D, q + (h * c.Nq + i) * c.D, c.D * 4);
        ag_tensor *base = leaf(AG_TYPE_F32, c.D, c.H, c.Nq, 1, qs);
        for (int64_t h = 0; h < c.H; h++)
            for (int64_t i = 0; i < c.Nq; i++)
                memcpy(q + (h * c.Nq + i) * c.D, qs + (i * c.H + h) * c.D, c.D * 4);
        free(qs);
        tq = base ? ag_permute(ctx, base, 0, 2, 1, 3) : NULL;
    } else {
        tq = leaf(AG_TYPE_F32, c.D, c.Nq, c.H, 1, q);
    }
    ag_tensor *tk = leaf(c.kvt, c.D, c.Nk, c.Hkv, 1, k), *tv = leaf(c.kvt, c.Dv, c.Nk, c.Hkv, 1, v);
    ag_tensor *tm = m ? leaf(AG_TYPE_F32, c.Nk, c.Nq, 1, 1, m) : NULL;
    size_t n_out = (size_t)(c.Dv * c.H * c.Nq);
    float *got = malloc(n_out * 4);
    double dt = tq && tk && tv && (tm || !m) ? run(ag_attention(ctx, tq, tk, tv, tm, scale, c.causal), got, n_out * 4,
                                                   c.reps)
                                             : -1;
    if (dt < 0) {
        fail(name);
    } else {
        /* compare only the checked rows: pack them */
        size_t n_chk = 0;
        double *ref = malloc(n_out * 8), *mag = malloc(n_out * 8), *s = malloc(c.Nk * 8);
        float *sel = malloc(n_out * 4);
        for (int64_t i = 0; i < c.Nq; i += c.check_every)
            for (int64_t h = 0; h < c.H; h++) {
                int64_t hk = h / (c.H / c.Hkv);
                double mx = -INFINITY;
                for (int64_t j = 0; j < c.Nk; j++) {
                    double d = 0;
                    for (int64_t e = 0; e < c.D; e++)
                        d += (double)q[(h * c.Nq + i) * c.D + e] * k[(hk * c.Nk + j) * c.D + e];
                    d *= scale;
                    if (m)
                        d += m[i * c.Nk + j];
                    if (c.causal && j > i + (c.Nk - c.Nq))
                        d = -INFINITY;
                    s[j] = d;
                    if (d > mx)
                        mx = d;
                }
                double l = 0;
                for (int64_t j = 0; j < c.Nk; j++) {
                    s[j] = isinf(s[j]) ? 0 : exp(s[j] - mx);
                    l += s[j];
                }
                for (int64_t e = 0; e < c.Dv; e++) {
                    double acc = 0, sa = 0;
                    for (int64_t j = 0; j < c.Nk; j++) {
                        acc += s[j] * v[(hk * c.Nk + j) * c.Dv + e];
                        sa += s[j] * fabs(v[(hk * c.Nk + j) * c.Dv + e]);
                    }
                    ref[n_chk] = l > 0 ? acc / l : 0;
                    mag[n_chk] = l > 0 ? sa / l : 0;
                    sel[n_chk++] = got[(i * c.H + h) * c.Dv + e];
                }
            }
        /* exp/softmax in float on the device: relative 1e-4 of the weighted |v| sum */
        check(name, sel, ref, mag, n_chk, 1e-4);
        if (c.reps > 1)
            printf("# timing: %s: %.3f ms\n", name, dt * 1e3);
        free(ref), free(mag), free(s), free(sel);
    }
    free(q), free(k), free(v), free(m), free(got);
    case_end();
    unsetenv("AG_VK_ATTN_SPLIT");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    be = ag_backend_vulkan_new(-1);
    if (!be) {
        printf("# device: none (%s)\n", ag_last_error());
        printf("0 passed, 0 failed\n");
        return 77; /* meson: skipped */
    }
    printf("# device: %s\n", ag_backend_device_name(be));

    const ag_type wts[4] = {AG_TYPE_F32, AG_TYPE_F16, AG_TYPE_Q8_0, AG_TYPE_Q4_0};
    for (int i = 0; i < 4; i++) {
        bool q = ag_type_is_quantized(wts[i]);
        int64_t K = q ? 96 : 33;
        test_mul_mat(wts[i], K, 1, 1, 1, 1, 1, 1, 1);
        test_mul_mat(wts[i], K, 7, 1, 1, 1, 1, 1, 1);
        test_mul_mat(wts[i], K, 65, 7, 1, 1, 1, 1, 1);
        test_mul_mat(wts[i], K, 7, 8, 1, 1, 1, 1, 1);
        test_mul_mat(wts[i], K, 65, 65, 1, 1, 1, 1, 1);
        test_mul_mat(wts[i], q ? 64 : 47, 9, 3, 2, 1, 4, 3, 1);   /* broadcast dims 2/3 */
        test_mul_mat(wts[i], q ? 64 : 47, 31, 70, 2, 3, 2, 3, 1); /* tiled, batched */
    }
    /* F16 rows of even length: the two-halves-per-load matvec path */
    test_mul_mat(AG_TYPE_F16, 34, 9, 2, 2, 1, 2, 1, 1);
    test_mul_mat(AG_TYPE_F16, 130, 65, 8, 1, 1, 1, 1, 1);
    /* LLaMA-7B decode-sized matvec and a prefill-sized tile, timed */
    test_mul_mat(AG_TYPE_Q4_0, 4096, 4096, 1, 1, 1, 1, 1, 2);
    test_mul_mat(AG_TYPE_Q8_0, 4096, 4096, 1, 1, 1, 1, 1, 2);
    test_mul_mat(AG_TYPE_F16, 4096, 4096, 1, 1, 1, 1, 1, 2);
    test_mul_mat(AG_TYPE_Q4_0, 4096, 512, 64, 1, 1, 1, 1, 2);
    /* activations at an odd float offset (no vec4 loads) */
    g_b_shift = 1;
    test_mul_mat(AG_TYPE_Q4_0, 64, 9, 3, 2, 1, 4, 1, 1);
    test_mul_mat(AG_TYPE_Q8_0, 96, 7, 1, 1, 1, 1, 1, 1);
    test_mul_mat(AG_TYPE_F16, 33, 20, 11, 1, 1, 1, 1, 1);
    g_b_shift = 0;
    /* weights larger than one binding may cover are split by rows: force it with a tiny cap */
    setenv("AG_VK_MATMUL_SPLIT_BYTES", "1000", 1);
    test_mul_mat(AG_TYPE_Q4_0, 64, 77, 3, 1, 1, 1, 1, 1);
    test_mul_mat(AG_TYPE_F32, 33, 50, 20, 1, 1, 1, 1, 1);
    unsetenv("AG_VK_MATMUL_SPLIT_BYTES");

    test_conv1d(AG_TYPE_F32, 50, 6, 4, 5, 2, 3, 1, 2);
    test_conv1d(AG_TYPE_F16, 37, 3, 5, 7, 1, 1, 1, 1);
    test_conv1d(AG_TYPE_F32, 41, 6, 4, 3, 1, 2, 2, 2);  /* groups */
    test_conv1d(AG_TYPE_F16, 29, 5, 5, 4, 3, 1, 5, 1);  /* depthwise */
    test_conv1d(AG_TYPE_F32, 33, 4, 8, 2, 2, 1, 4, 1);  /* groups, channel multiplier 2 */
    test_conv_transpose1d(AG_TYPE_F32, 17, 5, 3, 8, 4, 2);
    test_conv_transpose1d(AG_TYPE_F16, 9, 3, 4, 3, 4, 1); /* K < stride: gaps */
    test_conv_transpose1d(AG_TYPE_F32, 11, 2, 3, 5, 1, 1);
    test_conv2d(AG_TYPE_F32, 13, 11, 3, 5, 2, 3, 3, (const int[6]){2, 1, 1, 2, 1, 2}, 1);
    test_conv2d(AG_TYPE_F16, 9, 7, 4, 70, 1, 1, 1, (const int[6]){1, 1, 0, 0, 1, 1}, 1);
    test_conv2d(AG_TYPE_F32, 8, 10, 2, 3, 1, 4, 2, (const int[6]){1, 3, 3, 0, 2, 1}, 1);
    test_conv2d(AG_TYPE_F16, 32, 32, 64, 64, 1, 3, 3, (const int[6]){1, 1, 1, 1, 1, 1}, 2);

    for (int i = 0; i < 2; i++) {
        const char *mode = i ? "step" : "loop";
        test_lstm(AG_TYPE_F32, 33, 7, false, mode, 1);
        test_lstm(AG_TYPE_F32, 33, 7, true, mode, 1);
        test_lstm(AG_TYPE_F16, 70, 5, true, mode, 1);
        test_lstm(AG_TYPE_F32, 1024, 8, false, mode, 2);
    }
    /* long sequences: beyond the loop kernel's iteration budget the step kernel takes over */
    test_lstm(AG_TYPE_F16, 48, 400, true, "loop", 1);

    test_vq(13, 100, 37);
    test_vq(128, 1024, 20);

    test_attention((att_case){16, 16, 1, 77, 4, 2, AG_TYPE_F16, false, false, false, 1, 1, NULL});
    test_attention((att_case){40, 24, 33, 45, 3, 3, AG_TYPE_F32, true, true, false, 1, 1, NULL});
    test_attention((att_case){24, 24, 70, 70, 4, 1, AG_TYPE_F16, false, true, true, 1, 1, NULL});
    test_attention((att_case){64, 64, 5, 3, 2, 2, AG_TYPE_F32, false, true, false, 1, 1, NULL}); /* Nk < Nq */
    test_attention((att_case){128, 128, 1, 500, 8, 8, AG_TYPE_F16, false, false, false, 1, 2, NULL});
    /* SD 768x768 latent length (9216 tokens): as queries (cross-attention to 77 text tokens)
     * and as keys (16 queries over 9216 keys); the full 9216 x 9216 self-attention costs ~1 min
     * on a loaded lavapipe, so it runs only with AG_TEST_LONG=1. */
    test_attention((att_case){64, 64, 9216, 77, 2, 2, AG_TYPE_F16, true, false, false, 41, 1, NULL});
    test_attention((att_case){64, 64, 16, 9216, 2, 2, AG_TYPE_F16, false, true, false, 1, 1, NULL});
    /* key splits (decode): forced counts, incl. more splits than causal rows can see */
    test_attention((att_case){32, 16, 1, 300, 4, 2, AG_TYPE_F16, true, false, false, 1, 1, "5"});
    test_attention((att_case){24, 24, 20, 100, 2, 1, AG_TYPE_F32, true, true, false, 1, 1, "7"});
    test_attention((att_case){24, 24, 100, 100, 2, 2, AG_TYPE_F32, false, true, false, 1, 1, "7"}); /* empty splits */
    /* one workgroup over 9216 keys without splits: 288 key tiles in one invocation (llvmpipe
     * aborts loops past 65535 iterations per invocation; the kernel's inner loops unroll) */
    test_attention((att_case){64, 64, 64, 9216, 1, 1, AG_TYPE_F32, false, false, false, 1, 1, "1"});
    if (getenv("AG_TEST_LONG"))
        test_attention((att_case){8, 8, 9216, 9216, 1, 1, AG_TYPE_F16, false, false, false, 97, 1, NULL});

    ag_backend_free(be);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
