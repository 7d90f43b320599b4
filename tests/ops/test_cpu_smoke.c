/* cpu backend self-checks against closed forms computed here in double: the tiled paths
 * (sgemm tiles, F16 weight tiles, im2col tiles, attention tiles) on shapes bigger than one
 * tile, odd thread counts, errors reported at compute time (and the backend still usable
 * after one), concurrent graphs on one backend, buffer bounds, a decode-like chain on packed
 * weights through the graph planner. Prints a few timings.
 * usage: test_cpu_smoke [--perf [THREADS]] */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/graph.h"
#include "anygpt/quant.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail;

#define EXPECT(cond, ...)                                                                                             \
    do {                                                                                                              \
        if (cond) {                                                                                                   \
            n_pass++;                                                                                                 \
        } else {                                                                                                      \
            n_fail++;                                                                                                 \
            printf("not ok: ");                                                                                       \
            printf(__VA_ARGS__);                                                                                      \
            printf(" (%s:%d)\n", __FILE__, __LINE__);                                                                 \
        }                                                                                                             \
    } while (0)

static _Thread_local uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_vec(size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand();
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------- a tiny harness: leaves with host data, one output ---------------- */

#define MAX_IN 8
typedef struct {
    ag_ctx *ctx;
    ag_tensor *in[MAX_IN];
    void *data[MAX_IN]; /* owned, in the tensor's type */
    int nin;
    ag_graph *g;
    ag_allocator *al;
} gb;

static void gb_init(gb *b)
{
    memset(b, 0, sizeof *b);
    b->ctx = ag_ctx_new(64);
}

static void gb_free(gb *b)
{
    for (int i = 0; i < b->nin; i++)
        free(b->data[i]);
    ag_graph_free(b->g);
    ag_allocator_free(b->al);
    ag_ctx_free(b->ctx);
}

/* A leaf of `type` holding x (F32 values, converted; the values actually stored are written
 * back to x so references use them). */
static ag_tensor *gb_input(gb *b, ag_type type, int nd, const int64_t *ne, float *x)
{
    ag_tensor *t = ag_new_tensor(b->ctx, type, nd, ne);
    const int64_t n = ag_nelements(t), row = ne[0];
    void *d = malloc(ag_nbytes(t));
    ag_quantize(type, x, d, n / row, row);
    float *back = malloc((size_t)n * sizeof *back);
    for (int64_t r = 0; r < n / row; r++)
        ag_dequantize_row(type, (char *)d + r * ag_row_size(type, row), back + r * row, row);
    memcpy(x, back, (size_t)n * sizeof *x);
    free(back);
    b->in[b->nin] = t;
    b->data[b->nin++] = d;
    return t;
}

static ag_tensor *gb_input_i32(gb *b, int64_t n, const int32_t *ids)
{
    ag_tensor *t = ag_new_1d(b->ctx, AG_TYPE_I32, n);
    void *d = malloc((size_t)n * 4);
    memcpy(d, ids, (size_t)n * 4);
    b->in[b->nin] = t;
    b->data[b->nin++] = d;
    return t;
}

static int gb_run(gb *b, ag_backend *be, ag_tensor *out)
{
    if (!out)
        return -1;
    if (!b->g) {
        b->g = ag_graph_new(b->ctx, 256);
        b->al = ag_allocator_new(be);
        if (ag_graph_expand(b->g, out) != 0 || ag_allocator_alloc_graph(b->al, b->g) != 0)
            return -1;
        for (int i = 0; i < b->nin; i++)
            if (ag_tensor_set(b->in[i], b->data[i], 0, ag_nbytes(b->in[i])) != 0)
                return -1;
    }
    return ag_backend_compute(be, b->g);
}

static float *gb_get(ag_tensor *t)
{
    float *v = malloc(ag_nbytes(t));
    ag_tensor_get(t, v, 0, ag_nbytes(t));
    return v;
}

/* max |got - ref| / (atol + rtol |ref|) */
static double rel_err(const float *got, const double *ref, size_t n, double atol, double rtol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]) / (atol + rtol * fabs(ref[i]));
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* ---------------- checks ---------------- */

static void check_mul_mat(ag_backend *be, ag_type wt, int64_t K, int64_t N, int64_t M, int64_t A2, int64_t B2,
                          double tol)
{
    gb b;
    gb_init(&b);
    float *A = rand_vec((size_t)(K * N * A2)), *B = rand_vec((size_t)(K * M * B2));
    const int64_t nea[3] = {K, N, A2}, neb[3] = {K, M, B2};
    ag_tensor *ta = gb_input(&b, wt, 3, nea, A), *tb = gb_input(&b, AG_TYPE_F32, 3, neb, B);
    ag_tensor *out = ag_mul_mat(b.ctx, ta, tb);
    int rc = gb_run(&b, be, out);
    EXPECT(rc == 0, "mul_mat %s compute: %s", ag_type_name(wt), ag_last_error());
    if (rc == 0) {
        float *o = gb_get(out);
        double *ref = malloc((size_t)(N * M * B2) * sizeof *ref);
        for (int64_t i2 = 0; i2 < B2; i2++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double s = 0;
                    const float *ar = A + (i2 / (B2 / A2) * N + n) * K, *br = B + (i2 * M + m) * K;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)ar[k] * br[k];
                    ref[(i2 * M + m) * N + n] = s;
                }
        /* quantized activations: error grows like sqrt(K) */
        double e = rel_err(o, ref, (size_t)(N * M * B2), tol * sqrt((double)K), tol);
        EXPECT(e <= 1.0, "mul_mat %s K=%lld N=%lld M=%lld: err %.3g of tolerance", ag_type_name(wt), (long long)K,
               (long long)N, (long long)M, e);
        free(o);
        free(ref);
    }
    free(A);
    free(B);
    gb_free(&b);
}

static void check_conv1d(ag_backend *be, int64_t T, int64_t Cin, int64_t Cout, int64_t K, int s, int d, int groups,
                         ag_type wt)
{
    gb b;
    gb_init(&b);
    const int64_t cpg = Cin / groups, opg = Cout / groups, B = 2;
    float *X = rand_vec((size_t)(T * Cin * B)), *W = rand_vec((size_t)(K * cpg * Cout));
    const int64_t nex[3] = {T, Cin, B}, new_[3] = {K, cpg, Cout};
    ag_tensor *tx = gb_input(&b, AG_TYPE_F32, 3, nex, X), *tw = gb_input(&b, wt, 3, new_, W);
    ag_tensor *out = ag_conv1d(b.ctx, tx, tw, s, d, groups);
    int rc = gb_run(&b, be, out);
    EXPECT(rc == 0, "conv1d compute: %s", ag_last_error());
    if (rc == 0) {
        const int64_t To = out->ne[0];
        float *o = gb_get(out);
        double *ref = calloc((size_t)(To * Cout * B), sizeof *ref);
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t t = 0; t < To; t++) {
                    double acc = 0;
                    const int64_t g = co / opg;
                    for (int64_t ci = 0; ci < cpg; ci++)
                        for (int64_t k = 0; k < K; k++)
                            acc += (double)W[(co * cpg + ci) * K + k] * X[(bb * Cin + g * cpg + ci) * T + t * s + k * d];
                    ref[(bb * Cout + co) * To + t] = acc;
                }
        double e = rel_err(o, ref, (size_t)(To * Cout * B), 1e-5 * sqrt((double)(cpg * K)), 1e-5);
        EXPECT(e <= 1.0, "conv1d T=%lld Cin=%lld Cout=%lld K=%lld s=%d d=%d g=%d: err %.3g", (long long)T,
               (long long)Cin, (long long)Cout, (long long)K, s, d, groups, e);
        free(o);
        free(ref);
    }
    free(X);
    free(W);
    gb_free(&b);
}

static void check_conv_transpose1d(ag_backend *be, int64_t T, int64_t Cin, int64_t Cout, int64_t K, int s, ag_type wt)
{
    gb b;
    gb_init(&b);
    float *X = rand_vec((size_t)(T * Cin)), *W = rand_vec((size_t)(K * Cout * Cin));
    const int64_t nex[2] = {T, Cin}, new_[3] = {K, Cout, Cin};
    ag_tensor *tx = gb_input(&b, AG_TYPE_F32, 2, nex, X), *tw = gb_input(&b, wt, 3, new_, W);
    ag_tensor *out = ag_conv_transpose1d(b.ctx, tx, tw, s);
    int rc = gb_run(&b, be, out);
    EXPECT(rc == 0, "conv_transpose1d compute: %s", ag_last_error());
    if (rc == 0) {
        const int64_t To = out->ne[0];
        float *o = gb_get(out);
        double *ref = calloc((size_t)(To * Cout), sizeof *ref);
        for (int64_t ci = 0; ci < Cin; ci++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t t = 0; t < T; t++)
                    for (int64_t k = 0; k < K; k++)
                        ref[co * To + t * s + k] += (double)X[ci * T + t] * W[(ci * Cout + co) * K + k];
        double e = rel_err(o, ref, (size_t)(To * Cout), 1e-5 * sqrt((double)(Cin * K)), 1e-5);
        EXPECT(e <= 1.0, "conv_transpose1d T=%lld Cin=%lld Cout=%lld K=%lld s=%d: err %.3g", (long long)T,
               (long long)Cin, (long long)Cout, (long long)K, s, e);
        free(o);
        free(ref);
    }
    free(X);
    free(W);
    gb_free(&b);
}

static void check_conv2d(ag_backend *be, int64_t W_, int64_t H, int64_t Cin, int64_t Cout, int64_t KW, int64_t KH,
                         const int p[6])
{
    gb b;
    gb_init(&b);
    const int64_t N = 2;
    float *X = rand_vec((size_t)(W_ * H * Cin * N)), *Wt = rand_vec((size_t)(KW * KH * Cin * Cout));
    const int64_t nex[4] = {W_, H, Cin, N}, new_[4] = {KW, KH, Cin, Cout};
    ag_tensor *tx = gb_input(&b, AG_TYPE_F32, 4, nex, X), *tw = gb_input(&b, AG_TYPE_F16, 4, new_, Wt);
    ag_tensor *out = ag_conv2d(b.ctx, tx, tw, p[0], p[1], p[2], p[3], p[4], p[5]);
    int rc = gb_run(&b, be, out);
    EXPECT(rc == 0, "conv2d compute: %s", ag_last_error());
    if (rc == 0) {
        const int64_t Wo = out->ne[0], Ho = out->ne[1], n_out = Wo * Ho * Cout * N;
        float *o = gb_get(out);
        double *ref = calloc((size_t)n_out, sizeof *ref);
        for (int64_t n = 0; n < N; n++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t oh = 0; oh < Ho; oh++)
                    for (int64_t ow = 0; ow < Wo; ow++) {
                        double acc = 0;
                        for (int64_t ci = 0; ci < Cin; ci++)
                            for (int64_t kh = 0; kh < KH; kh++)
                                for (int64_t kw = 0; kw < KW; kw++) {
                                    const int64_t ih = oh * p[1] - p[3] + kh * p[5], iw = ow * p[0] - p[2] + kw * p[4];
                                    if (ih < 0 || ih >= H || iw < 0 || iw >= W_)
                                        continue;
                                    acc += (double)X[((n * Cin + ci) * H + ih) * W_ + iw] *
                                           Wt[((co * Cin + ci) * KH + kh) * KW + kw];
                                }
                        ref[((n * Cout + co) * Ho + oh) * Wo + ow] = acc;
                    }
        double e = rel_err(o, ref, (size_t)n_out, 1e-5 * sqrt((double)(Cin * KH * KW)), 1e-5);
        EXPECT(e <= 1.0, "conv2d %lldx%lld Cin=%lld Cout=%lld: err %.3g", (long long)W_, (long long)H,
               (long long)Cin, (long long)Cout, e);
        free(o);
        free(ref);
    }
    free(X);
    free(Wt);
    gb_free(&b);
}

static void check_attention(ag_backend *be, int64_t D, int64_t Nq, int64_t Nk, int64_t H, int64_t Hkv, bool causal,
                            bool use_mask, ag_type kvt)
{
    gb b;
    gb_init(&b);
    const float scale = 1.0f / sqrtf((float)D);
    float *Q = rand_vec((size_t)(D * Nq * H)), *Kx = rand_vec((size_t)(D * Nk * Hkv)),
          *V = rand_vec((size_t)(D * Nk * Hkv)), *Mk = rand_vec((size_t)(Nk * Nq));
    for (int64_t i = 0; i < Nk * Nq; i++) /* some hard -inf entries, one fully masked row */
        Mk[i] = (i % 7 == 3 || i / Nk == 1) ? -INFINITY : Mk[i];
    const int64_t neq[3] = {D, Nq, H}, nek[3] = {D, Nk, Hkv}, nem[2] = {Nk, Nq};
    ag_tensor *tq = gb_input(&b, AG_TYPE_F32, 3, neq, Q), *tk = gb_input(&b, kvt, 3, nek, Kx),
              *tv = gb_input(&b, kvt, 3, nek, V);
    ag_tensor *tm = use_mask ? gb_input(&b, AG_TYPE_F32, 2, nem, Mk) : NULL;
    ag_tensor *out = ag_attention(b.ctx, tq, tk, tv, tm, scale, causal);
    int rc = gb_run(&b, be, out);
    EXPECT(rc == 0, "attention compute: %s", ag_last_error());
    if (rc == 0) {
        float *o = gb_get(out);
        double *ref = calloc((size_t)(D * H * Nq), sizeof *ref), *w = malloc((size_t)Nk * sizeof *w);
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Nq; i++) {
                const int64_t hk = h / (H / Hkv);
                double mx = -INFINITY;
                for (int64_t j = 0; j < Nk; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += (double)Q[(h * Nq + i) * D + d] * Kx[(hk * Nk + j) * D + d];
                    s = s * scale + (use_mask ? Mk[i * Nk + j] : 0.0);
                    if (causal && j > i + (Nk - Nq))
                        s = -INFINITY;
                    w[j] = s;
                    mx = s > mx ? s : mx;
                }
                if (mx == -INFINITY)
                    continue; /* fully masked: zeros */
                double sum = 0;
                for (int64_t j = 0; j < Nk; j++)
                    sum += (w[j] = exp(w[j] - mx));
                for (int64_t j = 0; j < Nk; j++)
                    for (int64_t d = 0; d < D; d++)
                        ref[(i * H + h) * D + d] += w[j] / sum * V[(hk * Nk + j) * D + d];
            }
        double e = rel_err(o, ref, (size_t)(D * H * Nq), 2e-6, 1e-4);
        EXPECT(e <= 1.0, "attention D=%lld Nq=%lld Nk=%lld H=%lld/%lld causal=%d mask=%d %s: err %.3g", (long long)D,
               (long long)Nq, (long long)Nk, (long long)H, (long long)Hkv, causal, use_mask, ag_type_name(kvt), e);
        free(o);
        free(ref);
        free(w);
    }
    free(Q);
    free(Kx);
    free(V);
    free(Mk);
    gb_free(&b);
}

static void check_get_rows_error(ag_backend *be)
{
    gb b;
    gb_init(&b);
    float *tab = rand_vec(64 * 10);
    const int64_t ne[2] = {64, 10};
    int32_t ids[3] = {1, 99, 2};
    ag_tensor *tt = gb_input(&b, AG_TYPE_Q8_0, 2, ne, tab), *ti = gb_input_i32(&b, 3, ids);
    ag_tensor *out = ag_get_rows(b.ctx, tt, ti);
    ag_set_name(out, "rows");
    int rc = gb_run(&b, be, out);
    EXPECT(rc == -1, "get_rows with id 99 of 10 must fail");
    EXPECT(strstr(ag_last_error(), "out of range") && strstr(ag_last_error(), "rows") &&
               strstr(ag_last_error(), "get_rows"),
           "error names node/op/cause: '%s'", ag_last_error());
    /* the pool must still work after a failed graph */
    ids[1] = 9;
    ag_tensor_set(ti, ids, 0, sizeof ids);
    rc = ag_backend_compute(be, b.g);
    EXPECT(rc == 0, "get_rows after a failure: %s", ag_last_error());
    if (rc == 0) {
        float *o = gb_get(out);
        double ref[3 * 64];
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < 64; i++)
                ref[r * 64 + i] = tab[ids[r] * 64 + i];
        EXPECT(rel_err(o, ref, 3 * 64, 1e-7, 1e-7) <= 1.0, "get_rows q8_0 values");
        free(o);
    }
    free(tab);
    gb_free(&b);
}

/* Several threads computing their own graphs on one backend at once. */
typedef struct {
    ag_backend *be;
    int ok;
} conc_arg;

static void *conc_main(void *varg)
{
    conc_arg *ca = varg;
    gb b;
    gb_init(&b);
    float *A = rand_vec(64 * 40), *B = rand_vec(64 * 3);
    const int64_t nea[2] = {64, 40}, neb[2] = {64, 3};
    ag_tensor *out = ag_mul_mat(b.ctx, gb_input(&b, AG_TYPE_F32, 2, nea, A), gb_input(&b, AG_TYPE_F32, 2, neb, B));
    ca->ok = 1;
    for (int it = 0; it < 30 && ca->ok; it++) {
        if (gb_run(&b, ca->be, out) != 0) {
            ca->ok = 0;
            break;
        }
        float *o = gb_get(out);
        for (int m = 0; m < 3; m++)
            for (int n = 0; n < 40; n++) {
                double s = 0;
                for (int k = 0; k < 64; k++)
                    s += (double)A[n * 64 + k] * B[m * 64 + k];
                if (fabs(o[m * 40 + n] - s) > 1e-4)
                    ca->ok = 0;
            }
        free(o);
    }
    free(A);
    free(B);
    gb_free(&b);
    return NULL;
}

static void check_concurrent(ag_backend *be)
{
    pthread_t th[3];
    conc_arg ca[3];
    for (int i = 0; i < 3; i++) {
        ca[i] = (conc_arg){be, 0};
        pthread_create(&th[i], NULL, conc_main, &ca[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        EXPECT(ca[i].ok, "concurrent graph %d", i);
    }
}

static void check_buffers(ag_backend *be)
{
    ag_buffer *buf = ag_buffer_alloc(be, 100);
    char tmp[200] = {0};
    EXPECT(buf && buf->host && ((uintptr_t)buf->host % 64) == 0, "aligned host buffer");
    EXPECT(be->iface->buffer_write(buf, 90, tmp, 20) == -1, "write past the end fails");
    EXPECT(be->iface->buffer_read(buf, 101, tmp, 0) == -1, "read at offset past the end fails");
    EXPECT(be->iface->buffer_write(buf, 0, tmp, 100) == 0, "write of the whole buffer");
    ag_buffer_free(buf);
    ag_buffer *wrap = ag_buffer_from_host(be, tmp, sizeof tmp);
    EXPECT(wrap && wrap->borrowed && wrap->host == tmp, "wrapped host memory is borrowed");
    ag_buffer_free(wrap);
}

/* A decode-like chain (norm, two matmuls on one activation, SiLU gate, residual add; several
 * layers) with F32 weights wrapped from host memory, as a mapped model file's: the backend packs
 * them and plans the graph (barriers only on dependences, small ops on thread 0 alone, reused
 * scratch). Against the same chain in double. */
static void check_decode_chain(ag_backend *be)
{
    enum { D = 256, L = 4 };
    ag_ctx *ctx = ag_ctx_new(256);
    float *w = rand_vec((size_t)L * 3 * D * D), *x0 = rand_vec(D), *gw = rand_vec((size_t)L * D);
    for (size_t i = 0; i < (size_t)L * 3 * D * D; i++)
        w[i] *= 0.1f;
    ag_buffer *wb = ag_buffer_from_host(be, w, (size_t)L * 3 * D * D * sizeof(float));
    ag_buffer *gb_ = ag_buffer_from_host(be, gw, (size_t)L * D * sizeof(float));
    ag_tensor *x = ag_new_1d(ctx, AG_TYPE_F32, D), *in = x;
    ag_set_input(in);
    for (int l = 0; l < L && wb && gb_; l++) {
        ag_tensor *m[3], *g = ag_new_1d(ctx, AG_TYPE_F32, D);
        for (int k = 0; k < 3; k++) {
            m[k] = ag_new_2d(ctx, AG_TYPE_F32, D, D);
            m[k]->flags |= AG_FLAG_PARAM;
            ag_tensor_bind(m[k], wb, ((size_t)(l * 3 + k) * D * D) * sizeof(float));
        }
        g->flags |= AG_FLAG_PARAM;
        ag_tensor_bind(g, gb_, (size_t)l * D * sizeof(float));
        ag_tensor *h = ag_mul(ctx, ag_rms_norm(ctx, x, 1e-5f), g);
        ag_tensor *u = ag_mul(ctx, ag_silu(ctx, ag_mul_mat(ctx, m[0], h)), ag_mul_mat(ctx, m[1], h));
        x = ag_add(ctx, x, ag_mul_mat(ctx, m[2], u));
    }
    ag_graph *gr = ag_graph_new(ctx, 256);
    ag_allocator *al = ag_allocator_new(be);
    int rc = wb && gb_ && x && gr && al && ag_graph_expand(gr, x) == 0 && ag_allocator_alloc_graph(al, gr) == 0 ? 0 : -1;
    double ref[D], h[D], a[D], b[D];
    for (int i = 0; i < D; i++)
        ref[i] = x0[i];
    for (int l = 0; l < L; l++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += ref[i] * ref[i];
        const double sc = 1.0 / sqrt(ss / D + 1e-5);
        for (int i = 0; i < D; i++)
            h[i] = ref[i] * sc * gw[l * D + i];
        for (int n = 0; n < D; n++) {
            double sa = 0, sb = 0;
            for (int k = 0; k < D; k++) {
                sa += (double)w[((size_t)(l * 3 + 0) * D + n) * D + k] * h[k];
                sb += (double)w[((size_t)(l * 3 + 1) * D + n) * D + k] * h[k];
            }
            a[n] = sa / (1.0 + exp(-sa)) * sb;
        }
        for (int n = 0; n < D; n++) {
            double s2 = 0;
            for (int k = 0; k < D; k++)
                s2 += (double)w[((size_t)(l * 3 + 2) * D + n) * D + k] * a[k];
            b[n] = s2;
        }
        for (int i = 0; i < D; i++)
            ref[i] += b[i];
    }
    for (int rep = 0; rep < 3 && rc == 0; rep++) { /* the first run packs, the next ones reuse */
        /* the planner reuses the input's memory once read: set it before every run */
        rc = ag_tensor_set(in, x0, 0, D * sizeof(float)) == 0 ? ag_backend_compute(be, gr) : -1;
        float got[D];
        double worst = 0, mx = 0;
        if (rc == 0 && ag_tensor_get(x, got, 0, sizeof got) == 0) {
            for (int i = 0; i < D; i++) {
                worst = fmax(worst, fabs(got[i] - ref[i]));
                mx = fmax(mx, fabs(ref[i]));
            }
            EXPECT(worst <= 1e-4 * mx, "decode chain run %d: max err %.3g of max %.3g", rep, worst, mx);
        }
    }
    EXPECT(rc == 0, "decode chain: %s", ag_last_error());
    ag_allocator_free(al);
    ag_graph_free(gr);
    ag_ctx_free(ctx);
    ag_buffer_free(wb);
    ag_buffer_free(gb_);
    free(w);
    free(x0);
    free(gw);
}

static void all_checks(ag_backend *be)
{
    check_decode_chain(be);
    check_mul_mat(be, AG_TYPE_F32, 64, 50, 20, 1, 1, 1e-6);
    check_mul_mat(be, AG_TYPE_F32, 96, 37, 40, 2, 6, 1e-6);
    check_mul_mat(be, AG_TYPE_F16, 4096, 150, 17, 1, 1, 1e-6);
    check_mul_mat(be, AG_TYPE_F16, 128, 33, 3, 1, 2, 1e-6);
    check_mul_mat(be, AG_TYPE_Q8_0, 256, 40, 20, 1, 3, 1e-2);
    check_mul_mat(be, AG_TYPE_Q4_0, 128, 33, 3, 2, 2, 1e-2);
    check_mul_mat(be, AG_TYPE_Q4_0, 64, 7, 300, 1, 1, 1e-2); /* few rows, many activations */
    check_conv1d(be, 3000, 8, 6, 5, 2, 3, 1, AG_TYPE_F32);
    check_conv1d(be, 3000, 8, 6, 5, 1, 1, 2, AG_TYPE_F16);
    check_conv1d(be, 700, 8, 16, 7, 1, 2, 8, AG_TYPE_F32); /* depthwise x2 */
    check_conv1d(be, 500, 64, 32, 3, 1, 1, 1, AG_TYPE_F16);
    check_conv_transpose1d(be, 2000, 6, 5, 8, 4, AG_TYPE_F16);
    check_conv_transpose1d(be, 50, 64, 7, 3, 1, AG_TYPE_F32);
    const int p1[6] = {2, 1, 1, 2, 1, 2}, p2[6] = {1, 1, 1, 1, 1, 1};
    check_conv2d(be, 40, 30, 3, 4, 3, 3, p1);
    check_conv2d(be, 70, 60, 8, 5, 3, 3, p2);
    check_attention(be, 32, 150, 600, 4, 2, true, true, AG_TYPE_F16);
    check_attention(be, 32, 150, 600, 2, 2, false, true, AG_TYPE_F32);
    check_attention(be, 48, 1, 333, 3, 1, true, false, AG_TYPE_F16);
    check_get_rows_error(be);
    check_buffers(be);
}

/* Timings on model-like shapes (informational). */
static void perf(ag_backend *be)
{
    const ag_type types[3] = {AG_TYPE_F16, AG_TYPE_Q8_0, AG_TYPE_Q4_0};
    for (int ti = 0; ti < 3; ti++) {
        for (int M = 1; M <= 64; M += 63) {
            gb b;
            gb_init(&b);
            const int64_t K = 4096, N = 4096;
            float *A = rand_vec((size_t)(K * N)), *B = rand_vec((size_t)(K * M));
            const int64_t nea[2] = {K, N}, neb[2] = {K, M};
            ag_tensor *out = ag_mul_mat(b.ctx, gb_input(&b, types[ti], 2, nea, A), gb_input(&b, AG_TYPE_F32, 2, neb, B));
            gb_run(&b, be, out);
            const int reps = M == 1 ? 20 : 3;
            double t0 = now_s();
            for (int r = 0; r < reps; r++)
                gb_run(&b, be, out);
            double dt = (now_s() - t0) / reps;
            printf("# perf mul_mat %s 4096x4096 M=%d: %.2f ms (%.1f GFLOP/s)\n", ag_type_name(types[ti]), M,
                   dt * 1e3, 2.0 * K * N * M / dt * 1e-9);
            free(A);
            free(B);
            gb_free(&b);
        }
    }
    {
        gb b;
        gb_init(&b);
        const int64_t D = 128, Nk = 2048, H = 32;
        float *Q = rand_vec((size_t)(D * H)), *Kx = rand_vec((size_t)(D * Nk * H)), *V = rand_vec((size_t)(D * Nk * H));
        const int64_t neq[3] = {D, 1, H}, nek[3] = {D, Nk, H};
        ag_tensor *out = ag_attention(b.ctx, gb_input(&b, AG_TYPE_F32, 3, neq, Q),
                                      gb_input(&b, AG_TYPE_F16, 3, nek, Kx), gb_input(&b, AG_TYPE_F16, 3, nek, V),
                                      NULL, 0.088f, true);
        gb_run(&b, be, out);
        double t0 = now_s();
        for (int r = 0; r < 10; r++)
            gb_run(&b, be, out);
        printf("# perf attention decode D=128 H=32 Nk=2048 f16: %.2f ms\n", (now_s() - t0) / 10 * 1e3);
        free(Q);
        free(Kx);
        free(V);
        gb_free(&b);
    }
    {
        gb b;
        gb_init(&b);
        const int64_t D = 64, N = 1024, H = 8;
        float *Q = rand_vec((size_t)(D * N * H)), *Kx = rand_vec((size_t)(D * N * H)), *V = rand_vec((size_t)(D * N * H));
        const int64_t ne[3] = {D, N, H};
        ag_tensor *out = ag_attention(b.ctx, gb_input(&b, AG_TYPE_F32, 3, ne, Q), gb_input(&b, AG_TYPE_F16, 3, ne, Kx),
                                      gb_input(&b, AG_TYPE_F16, 3, ne, V), NULL, 0.125f, false);
        gb_run(&b, be, out);
        double t0 = now_s();
        gb_run(&b, be, out);
        double dt = now_s() - t0;
        printf("# perf attention prefill D=64 H=8 N=1024 f16: %.1f ms (%.1f GFLOP/s)\n", dt * 1e3,
               4.0 * D * N * N * H / dt * 1e-9);
        free(Q);
        free(Kx);
        free(V);
        gb_free(&b);
    }
    {
        gb b;
        gb_init(&b);
        const int64_t T = 1000, C = 512, K = 3;
        float *X = rand_vec((size_t)(T * C)), *W = rand_vec((size_t)(K * C * C));
        const int64_t nex[2] = {T, C}, new_[3] = {K, C, C};
        ag_tensor *out =
            ag_conv1d(b.ctx, gb_input(&b, AG_TYPE_F32, 2, nex, X), gb_input(&b, AG_TYPE_F32, 3, new_, W), 1, 1, 1);
        gb_run(&b, be, out);
        double t0 = now_s();
        gb_run(&b, be, out);
        double dt = now_s() - t0;
        printf("# perf conv1d T=1000 C=512->512 K=3: %.1f ms (%.1f GFLOP/s)\n", dt * 1e3,
               2.0 * (double)out->ne[0] * C * C * K / dt * 1e-9);
        free(X);
        free(W);
        gb_free(&b);
    }
    {
        gb b;
        gb_init(&b);
        const int64_t S = 48, C = 320;
        float *X = rand_vec((size_t)(S * S * C)), *W = rand_vec((size_t)(9 * C * C));
        const int64_t nex[3] = {S, S, C}, new_[4] = {3, 3, C, C};
        ag_tensor *out = ag_conv2d(b.ctx, gb_input(&b, AG_TYPE_F32, 3, nex, X), gb_input(&b, AG_TYPE_F16, 4, new_, W),
                                   1, 1, 1, 1, 1, 1);
        gb_run(&b, be, out);
        double t0 = now_s();
        gb_run(&b, be, out);
        double dt = now_s() - t0;
        printf("# perf conv2d 48x48 C=320->320 3x3 f16: %.1f ms (%.1f GFLOP/s)\n", dt * 1e3,
               2.0 * S * S * C * C * 9 / dt * 1e-9);
        free(X);
        free(W);
        gb_free(&b);
    }
    {
        /* per-node overhead: a chain of tiny ops */
        gb b;
        gb_init(&b);
        ag_ctx_free(b.ctx);
        b.ctx = ag_ctx_new(600);
        float x[64];
        for (int i = 0; i < 64; i++)
            x[i] = frand();
        const int64_t ne[1] = {64};
        ag_tensor *t = gb_input(&b, AG_TYPE_F32, 1, ne, x);
        for (int i = 0; i < 500; i++)
            t = ag_scale(b.ctx, t, 1.0f, 0.0f);
        b.g = ag_graph_new(b.ctx, 1024);
        b.al = ag_allocator_new(be);
        ag_graph_expand(b.g, t);
        ag_allocator_alloc_graph(b.al, b.g);
        ag_tensor_set(b.in[0], b.data[0], 0, sizeof x);
        ag_backend_compute(be, b.g);
        double t0 = now_s();
        for (int r = 0; r < 10; r++)
            ag_backend_compute(be, b.g);
        printf("# perf per-node overhead (500 tiny nodes): %.2f us/node\n", (now_s() - t0) / 10 / 500 * 1e6);
        gb_free(&b);
    }
}

int main(int argc, char **argv)
{
    const bool do_perf = argc > 1 && strcmp(argv[1], "--perf") == 0;
    int threads[3] = {1, 3, 0};
    if (do_perf && argc > 2) /* --perf N: time with N threads */
        threads[2] = atoi(argv[2]);
    for (int i = 0; i < 3; i++) {
        ag_backend *be = ag_backend_cpu_new(threads[i]);
        if (!be) {
            printf("not ok: cpu backend: %s\n", ag_last_error());
            return 1;
        }
        printf("# device: cpu %s\n", ag_backend_device_name(be));
        EXPECT(ag_backend_cpu_n_threads(be) >= 1, "thread count");
        all_checks(be);
        if (i == 2) {
            check_concurrent(be);
            if (do_perf)
                perf(be);
        }
        ag_backend_free(be);
    }
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
