/* anygpt-bench: speed figures of the compute core through the public backend API.
 *
 *   matvec   Q4_0 / Q8_0 / F16 weights 4096x11008 times one vector (LLM decode's shape), in GB/s of
 *            weight bytes, next to memcpy bandwidth measured in the same run;
 *   gemm     F32 1024^3 (and 2048^3 unless --quick) in GFLOP/s, next to OpenBLAS sgemm called
 *            directly on the same buffers;
 *   attention 9216 tokens (SD-2.1 UNet's first level: 5 heads of 64), ms and GFLOP/s.
 *
 * Usage: anygpt-bench [--device cpu|vulkan|all] [--threads N] [--quick] [--only matvec|gemm|attention]
 *                    [--attn-tokens N]
 */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/quant.h"
#include "ag_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#if AG_HAVE_OPENBLAS
#include <cblas.h>
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)0x1000000 * 2.0f - 1.0f;
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand() * scale;
}

static long peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static double memcpy_gbs(void)
{
    const size_t n = (size_t)512 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now_s();
        memcpy(b, a, n);
        t = now_s() - t;
        if (t < best)
            best = t;
    }
    volatile char sink = b[n / 2];
    (void)sink;
    free(a);
    free(b);
    /* bytes copied per second, the usual "memcpy bandwidth" (memory traffic is twice that) */
    return (double)n / best / 1e9;
}

/* Run a single-output graph `reps` times; returns the best seconds per run (or -1). */
static double time_graph(ag_backend *be, ag_allocator *al, ag_graph *g, int reps)
{
    if (ag_allocator_alloc_graph(al, g) != 0)
        return -1;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now_s();
        if (ag_backend_compute(be, g) != 0)
            return -1;
        t = now_s() - t;
        if (t < best)
            best = t;
    }
    return best;
}

static int bind_weight(ag_backend *be, ag_tensor *t, ag_buffer **buf, const void *data)
{
    *buf = ag_buffer_alloc(be, ag_nbytes(t));
    if (!*buf || ag_tensor_bind(t, *buf, 0) != 0)
        return -1;
    t->flags |= AG_FLAG_PARAM;
    return ag_tensor_set(t, data, 0, ag_nbytes(t));
}

/* Weights read from memory, not cache: COPIES distinct weight matrices (4 x 48 MiB for Q8_0) are
 * multiplied in one graph, so each pass streams all of them. */
#define COPIES 4
static void bench_matvec(ag_backend *be, double copy_gbs, bool quick)
{
    const int64_t K = 4096, N = 11008;
    const ag_type types[] = {AG_TYPE_Q4_0, AG_TYPE_Q8_0, AG_TYPE_F16};
    float *wf = malloc((size_t)K * N * sizeof *wf), *x = malloc((size_t)K * sizeof *x);
    void *wq = malloc(ag_row_size(AG_TYPE_F32, K) * (size_t)N);
    if (!wf || !x || !wq) {
        fprintf(stderr, "bench: out of memory\n");
        goto out;
    }
    fill(wf, (size_t)K * N, 0.05f);
    fill(x, (size_t)K, 1.0f);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        ag_type ty = types[ti];
        ag_quantize(ty, wf, wq, N, K);
        ag_ctx *ctx = ag_ctx_new(4 * COPIES + 8);
        ag_graph *g = ag_graph_new(ctx, 4 * COPIES + 8);
        ag_tensor *v = ag_new_2d(ctx, AG_TYPE_F32, K, 1);
        ag_set_input(v);
        ag_buffer *wb[COPIES] = {0};
        ag_allocator *al = ag_allocator_new(be);
        bool ok = g != NULL;
        size_t bytes = 0;
        for (int c = 0; ok && c < COPIES; c++) {
            ag_tensor *w = ag_new_2d(ctx, ty, K, N);
            ok = w && bind_weight(be, w, &wb[c], wq) == 0 && ag_graph_expand(g, ag_mul_mat(ctx, w, v)) == 0;
            bytes += ok ? ag_nbytes(w) : 0;
        }
        double t = -1;
        if (ok && ag_allocator_alloc_graph(al, g) == 0 && ag_tensor_set(v, x, 0, (size_t)K * 4) == 0)
            t = time_graph(be, al, g, quick ? 5 : 20);
        if (t > 0) {
            double gbs = (double)bytes / t / 1e9;
            printf("matvec  %-5s 4096x11008  %8.3f ms  %7.2f GB/s  = %5.1f%% of memcpy (%.2f GB/s)\n",
                   ag_type_name(ty), t * 1e3 / COPIES, gbs, 100.0 * gbs / copy_gbs, copy_gbs);
        } else {
            printf("matvec  %-5s failed: %s\n", ag_type_name(ty), ag_last_error());
        }
        ag_allocator_free(al);
        for (int c = 0; c < COPIES; c++)
            ag_buffer_free(wb[c]);
        ag_graph_free(g);
        ag_ctx_free(ctx);
    }
out:
    free(wf);
    free(x);
    free(wq);
}

static void bench_gemm(ag_backend *be, int n_threads, bool quick)
{
    const int sizes[] = {1024, 2048};
    for (int si = 0; si < (quick ? 1 : 2); si++) {
        const int n = sizes[si];
        float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
        if (!a || !b || !c) {
            free(a), free(b), free(c);
            return;
        }
        fill(a, (size_t)n * n, 1.0f);
        fill(b, (size_t)n * n, 1.0f);
        const double flop = 2.0 * n * (double)n * n;
        ag_ctx *ctx = ag_ctx_new(16);
        ag_tensor *w = ag_new_2d(ctx, AG_TYPE_F32, n, n), *x = ag_new_2d(ctx, AG_TYPE_F32, n, n);
        ag_set_input(x);
        ag_tensor *y = ag_mul_mat(ctx, w, x);
        ag_graph *g = ag_graph_new(ctx, 16);
        ag_buffer *wb = NULL;
        ag_allocator *al = ag_allocator_new(be);
        double t = -1;
        if (y && g && ag_graph_expand(g, y) == 0 && bind_weight(be, w, &wb, a) == 0 &&
            ag_allocator_alloc_graph(al, g) == 0 && ag_tensor_set(x, b, 0, (size_t)n * n * 4) == 0)
            t = time_graph(be, al, g, quick ? 2 : 5);
        double ours = t > 0 ? flop / t / 1e9 : 0;
        if (t > 0)
            printf("gemm    f32 %dx%dx%d  %8.2f ms  %7.1f GFLOP/s", n, n, n, t * 1e3, ours);
        else
            printf("gemm    f32 %d failed: %s", n, ag_last_error());
#if AG_HAVE_OPENBLAS
        if (strcmp(ag_backend_name(be), "cpu") == 0) {
            openblas_set_num_threads(n_threads);
            double best = 1e30;
            for (int r = 0; r < (quick ? 2 : 5); r++) {
                double t0 = now_s();
                /* y[m][n] = sum_k w[n][k] x[m][k]  (row-major: C = X * W^T) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, b, n, a, n, 0.0f, c, n);
                t0 = now_s() - t0;
                if (t0 < best)
                    best = t0;
            }
            /* the cpu backend runs OpenBLAS single-threaded inside its own pool: give that back,
             * or every later sgemm would spawn threads on cores already busy */
            openblas_set_num_threads(1);
            double blas = flop / best / 1e9;
            printf("   | OpenBLAS direct %7.1f GFLOP/s  ratio %.2f", blas, ours / blas);
        }
#else
        (void)n_threads;
#endif
        printf("\n");
        ag_allocator_free(al);
        ag_buffer_free(wb);
        ag_graph_free(g);
        ag_ctx_free(ctx);
        free(a), free(b), free(c);
    }
}

static void bench_attention(ag_backend *be, bool quick, int64_t tokens)
{
    const int64_t D = 64, H = 5, N = tokens > 0 ? tokens : quick ? 2304 : 9216;
    ag_ctx *ctx = ag_ctx_new(16);
    ag_tensor *q = ag_new_3d(ctx, AG_TYPE_F32, D, N, H), *k = ag_new_3d(ctx, AG_TYPE_F16, D, N, H),
              *v = ag_new_3d(ctx, AG_TYPE_F16, D, N, H);
    ag_set_input(q);
    ag_set_input(k);
    ag_set_input(v);
    ag_tensor *o = ag_attention(ctx, q, k, v, NULL, 1.0f / sqrtf((float)D), false);
    ag_graph *g = ag_graph_new(ctx, 16);
    ag_allocator *al = ag_allocator_new(be);
    const size_t nq = (size_t)(D * N * H);
    float *qf = malloc(nq * 4);
    ag_fp16 *kh = malloc(nq * 2);
    double t = -1;
    if (qf && kh && o && g && ag_graph_expand(g, o) == 0 && ag_allocator_alloc_graph(al, g) == 0) {
        fill(qf, nq, 1.0f);
        for (size_t i = 0; i < nq; i++)
            kh[i] = ag_fp32_to_fp16(frand());
        if (ag_tensor_set(q, qf, 0, nq * 4) == 0 && ag_tensor_set(k, kh, 0, nq * 2) == 0 &&
            ag_tensor_set(v, kh, 0, nq * 2) == 0)
            t = time_graph(be, al, g, quick ? 1 : 3);
    }
    if (t > 0) {
        double flop = 4.0 * (double)N * (double)N * (double)D * (double)H;
        printf("attention %lld tokens x %lld heads x %lld  %9.1f ms  %7.1f GFLOP/s  (scores never materialised: "
               "%.0f MiB would be needed)\n",
               (long long)N, (long long)H, (long long)D, t * 1e3, flop / t / 1e9,
               (double)N * (double)N * H * 4 / 1048576.0);
    } else {
        printf("attention %lld tokens failed: %s\n", (long long)N, ag_last_error());
    }
    free(qf);
    free(kh);
    ag_allocator_free(al);
    ag_graph_free(g);
    ag_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    const char *device = "all", *only = NULL;
    int threads = 2;
    int64_t attn_tokens = 0;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--attn-tokens") && i + 1 < argc)
            attn_tokens = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else {
            fprintf(stderr, "usage: %s [--device cpu|vulkan|all] [--threads N] [--quick] "
                            "[--only matvec|gemm|attention] [--attn-tokens N]\n", argv[0]);
            return 2;
        }
    }
    const double copy = memcpy_gbs();
    printf("# anygpt-bench: cpu kernels %s, %d threads, memcpy %.2f GB/s (bytes copied per second)\n", ag_simd_level(), threads,
           copy);
    const char *kinds[] = {"cpu", "vulkan"};
    int rc = 0;
    for (int d = 0; d < 2; d++) {
        if (strcmp(device, "all") && strcmp(device, kinds[d]))
            continue;
        ag_backend *be = d == 0 ? ag_backend_cpu_new(threads) : ag_backend_vulkan_new(-1);
        if (!be) {
            printf("# %s: unavailable: %s\n", kinds[d], ag_last_error());
            if (strcmp(device, "all"))
                rc = 1;
            continue;
        }
        printf("## backend %s (%s)\n", ag_backend_name(be), ag_backend_device_name(be));
        if (!only || !strcmp(only, "matvec"))
            bench_matvec(be, copy, quick);
        if (!only || !strcmp(only, "gemm"))
            bench_gemm(be, threads, quick);
        if (!only || !strcmp(only, "attention"))
            bench_attention(be, quick, attn_tokens);
        ag_backend_free(be);
    }
    printf("# peak RSS %ld MiB\n", peak_rss_mib());
    return rc;
}
