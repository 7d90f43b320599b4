/* anygpt-bench-llm MODEL.gguf [--device cpu|vulkan] [--threads N] [--prompt N] [--gen N] [--ctx0]
 *
 * LLM speed the way llama.cpp's main/llama-bench reports it: prefill of --prompt random tokens
 * in one batch (tokens/s), then --gen decode steps one token at a time (tokens/s, ms/token),
 * peak RSS, and the memory-bandwidth bounds of decode: bytes read per token (every weight matrix
 * except the embedding table, of which one row is read, plus the KV cache) over the bandwidth
 * measured in this run with the same thread count, twice: the plain streaming read pass
 * anygpt-bench-matvec measures (decode only reads: the strict bound) and memcpy; then 16 more
 * decode steps, each followed by a read pass over one token's bytes, give the share of the read
 * bound under the same conditions (see paired_share). --ctx0 also times decode from an
 * empty cache (what llama-bench's tg test measures).
 * --greedy 1,37,250 instead prints the --gen greedy (argmax) continuation of those token ids,
 * to compare token for token with llama.cpp on the same file. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/llama.h"
#include "bench_pages.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    char *dst;
    const char *src;
    size_t n;
} copy_job;

static void *copy_worker(void *p)
{
    copy_job *j = p;
    memcpy(j->dst, j->src, j->n);
    return NULL;
}

/* Bytes copied per second by n_threads threads over 512 MiB (far beyond any cache); best of 5. */
static double memcpy_bandwidth(int n_threads)
{
    const size_t n = (size_t)512 << 20;
    char *a = bench_pages_alloc(n), *b = bench_pages_alloc(n);
    if (!a || !b) {
        bench_pages_free(a, n);
        bench_pages_free(b, n);
        return 0.0;
    }
    memset(a, 1, n);
    memset(b, 2, n); /* fault the pages in before timing */
    double best = 1e30;
    copy_job jobs[64];
    pthread_t th[64];
    if (n_threads > 64)
        n_threads = 64;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        size_t per = n / (size_t)n_threads;
        for (int i = 0; i < n_threads; i++) {
            jobs[i] = (copy_job){b + per * (size_t)i, a + per * (size_t)i, i == n_threads - 1 ? n - per * (size_t)i : per};
            pthread_create(&th[i], NULL, copy_worker, &jobs[i]);
        }
        for (int i = 0; i < n_threads; i++)
            pthread_join(th[i], NULL);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    bench_pages_free(a, n);
    bench_pages_free(b, n);
    return (double)n / best;
}

typedef struct {
    const char *src;
    size_t n;
    uint64_t sink;
} read_job;

#if defined(__x86_64__)
#include <immintrin.h>
/* 4 independent 32-byte load streams: only memory limits it (anygpt-bench-matvec's read pass) */
__attribute__((target("avx2"))) static uint64_t read_avx2(const char *s, size_t bytes)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(s + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(s + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(s + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(s + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
}
#endif

static void *read_worker(void *p)
{
    read_job *j = p;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        j->sink = read_avx2(j->src, j->n);
        return NULL;
    }
#endif
    const uint64_t *s = (const uint64_t *)j->src;
    uint64_t acc[8] = {0};
    for (size_t i = 0; i + 8 <= j->n / 8; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] ^= s[i + k];
    j->sink = acc[0] ^ acc[1] ^ acc[2] ^ acc[3] ^ acc[4] ^ acc[5] ^ acc[6] ^ acc[7];
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds n_threads threads take to stream the n bytes at a, each its own contiguous part. */
static double read_pass(const char *a, size_t n, int n_threads)
{
    read_job jobs[64];
    pthread_t th[64];
    if (n_threads > 64)
        n_threads = 64;
    const double t0 = now_s();
    const size_t per = n / (size_t)n_threads / 4096 * 4096;
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (read_job){a + per * (size_t)i, i == n_threads - 1 ? n - per * (size_t)i : per, 0};
        pthread_create(&th[i], NULL, read_worker, &jobs[i]);
    }
    for (int i = 0; i < n_threads; i++)
        pthread_join(th[i], NULL);
    return now_s() - t0;
}

/* Bytes read per second by n_threads threads streaming 512 MiB; best of 5. */
static double read_bandwidth(int n_threads)
{
    const size_t n = (size_t)512 << 20;
    char *a = bench_pages_alloc(n);
    if (!a)
        return 0.0;
    memset(a, 1, n);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        const double dt = read_pass(a, n, n_threads);
        if (dt < best)
            best = dt;
    }
    bench_pages_free(a, n);
    return (double)n / best;
}

/* fp32 FMA peak of n_threads threads: independent chains of fused multiply-adds on the widest
 * vectors this CPU has (AVX-512, else AVX2), FLOP/s (an FMA is 2). */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma_loop_512(long iters)
{
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, c);
    for (int i = 1; i < 12; i++)
        a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}
__attribute__((target("avx2,fma"))) static float fma_loop_256(long iters)
{
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    for (int i = 1; i < 12; i++)
        a[0] = _mm256_add_ps(a[0], a[i]);
    float t[8];
    _mm256_storeu_ps(t, a[0]);
    return t[0];
}
#endif

typedef struct {
    long iters;
    int lanes;
    float sink;
} fma_job;

static void *fma_worker(void *p)
{
    fma_job *j = p;
#if defined(__x86_64__)
    if (j->lanes == 16)
        j->sink = fma_loop_512(j->iters);
    else if (j->lanes == 8)
        j->sink = fma_loop_256(j->iters);
#endif
    return NULL;
}

static double fp32_peak(int n_threads, int *lanes)
{
    *lanes = 0;
#if defined(__x86_64__)
    *lanes = __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") ? 8 : 0;
#endif
    if (!*lanes)
        return 0.0;
    const long iters = 20 * 1000 * 1000 / 12;
    double best = 1e30;
    fma_job jobs[64];
    pthread_t th[64];
    if (n_threads > 64)
        n_threads = 64;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        for (int i = 0; i < n_threads; i++) {
            jobs[i] = (fma_job){iters, *lanes, 0};
            pthread_create(&th[i], NULL, fma_worker, &jobs[i]);
        }
        for (int i = 0; i < n_threads; i++)
            pthread_join(th[i], NULL);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    return (double)n_threads * (double)iters * 12.0 * *lanes * 2.0 / best;
}

/* Weight bytes a decode step reads: all tensors except token_embd (one row of it). */
static double weight_bytes_per_token(const char *path, double *embd_row)
{
    ag_gguf *f = ag_gguf_open(path);
    if (!f)
        return 0.0;
    double sum = 0.0;
    *embd_row = 0.0;
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
        size_t sz = ag_gguf_tensor_size(f, i);
        if (!strcmp(ag_gguf_tensor_name(f, i), "token_embd.weight")) {
            int64_t ne[AG_MAX_DIMS];
            ag_gguf_tensor_ne(f, i, ne);
            *embd_row = (double)sz / (double)ne[1];
        } else
            sum += (double)sz;
    }
    ag_gguf_close(f);
    return sum + *embd_row;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int greedy_run(ag_llama *m, char *ids, int n_gen)
{
    const int32_t nv = ag_llama_hparams_of(m)->n_vocab;
    int32_t toks[4096];
    int n = 0;
    for (char *p = strtok(ids, ","); p && n < 4096; p = strtok(NULL, ","))
        toks[n++] = (int32_t)strtol(p, NULL, 10);
    float *logits = malloc((size_t)nv * sizeof(float));
    if (!logits || n == 0 || ag_llama_eval(m, toks, n, logits, NULL)) {
        fprintf(stderr, "greedy: %s\n", ag_last_error());
        free(logits);
        return 1;
    }
    printf("anygpt:");
    for (int i = 0; i < n_gen; i++) {
        int32_t best = 0;
        for (int32_t j = 1; j < nv; j++)
            if (logits[j] > logits[best])
                best = j;
        printf(" %d", best);
        if (i + 1 < n_gen && ag_llama_eval(m, &best, 1, logits, NULL)) {
            fprintf(stderr, "greedy: %s\n", ag_last_error());
            free(logits);
            return 1;
        }
    }
    printf("\n");
    free(logits);
    return 0;
}

static int decode_run(ag_llama *m, int n_gen, int32_t vocab, uint64_t *rs, float *logits, double *secs)
{
    double t0 = now_s();
    for (int i = 0; i < n_gen; i++) {
        *rs = *rs * 6364136223846793005ull + 1442695040888963407ull;
        int32_t tok = 3 + (int32_t)((*rs >> 33) % (uint64_t)(vocab - 3));
        if (ag_llama_eval(m, &tok, 1, logits, NULL))
            return -1;
    }
    *secs = now_s() - t0;
    return 0;
}

/* The read bound's bandwidth, measured beside the decode it bounds. This VM's memory bandwidth
 * comes in bursts and moves by +-30% from one second to the next, so a read pass at another
 * moment says little about a decode. Here decode steps alternate with read passes over one
 * token's bytes (up to 4 GiB): each step and the pass after it meet the same conditions, and the
 * step's share of the bound is the pass's bytes per second over the step's. Median and quartiles
 * of PAIRS pairs; the median read bandwidth in *bw. */
#define PAIRS 16
static int paired_share(ag_llama *m, int threads, double tok_bytes, int32_t vocab, uint64_t *rs, float *logits,
                        double share[3], double *bw)
{
    const size_t n = tok_bytes < (double)((size_t)4 << 30) ? (size_t)tok_bytes / 4096 * 4096 : (size_t)4 << 30;
    char *a = bench_pages_alloc(n);
    if (!a)
        return -1;
    memset(a, 1, n);
    double sh[PAIRS], rb[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        double t_step = 0.0;
        if (decode_run(m, 1, vocab, rs, logits, &t_step)) {
            bench_pages_free(a, n);
            return -1;
        }
        const double t_read = read_pass(a, n, threads);
        rb[i] = (double)n / t_read;
        sh[i] = (tok_bytes / t_step) / rb[i];
    }
    bench_pages_free(a, n);
    qsort(sh, PAIRS, sizeof sh[0], cmp_double);
    qsort(rb, PAIRS, sizeof rb[0], cmp_double);
    share[0] = sh[PAIRS / 4];
    share[1] = sh[PAIRS / 2];
    share[2] = sh[PAIRS - 1 - PAIRS / 4];
    *bw = rb[PAIRS / 2];
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *device = "cpu";
    char *greedy = NULL;
    int threads = 2, n_prompt = 512, n_gen = 64, ctx0 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--prompt") && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (!strcmp(a, "--gen") && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (!strcmp(a, "--greedy") && i + 1 < argc)
            greedy = argv[++i];
        else if (!strcmp(a, "--ctx0"))
            ctx0 = 1;
        else if (a[0] != '-' && !path)
            path = a;
        else {
            path = NULL;
            break;
        }
    }
    if (!path || threads < 1 || threads > 64 || n_prompt < 1 || n_gen < 1 || n_prompt > 100000 || n_gen > 100000 ||
        (strcmp(device, "cpu") && strcmp(device, "vulkan"))) {
        fprintf(stderr,
                "usage: %s MODEL.gguf [--device cpu|vulkan] [--threads 1..64] [--prompt N] [--gen N] [--ctx0] [--greedy IDS]\n",
                argv[0]);
        return 2;
    }

    const int cpu = !strcmp(device, "cpu");
    ag_backend *be = cpu ? ag_backend_cpu_new(threads) : ag_backend_vulkan_new(-1);
    if (!be) {
        fprintf(stderr, "backend %s: %s\n", device, ag_last_error());
        return 1;
    }
    double t0 = now_s();
    ag_llama *m = ag_llama_load(be, path, n_prompt + n_gen + PAIRS + 8, AG_TYPE_F16, NULL, NULL);
    if (!m) {
        fprintf(stderr, "%s: %s\n", path, ag_last_error());
        ag_backend_free(be);
        return 1;
    }
    double t_load = now_s() - t0;
    if (greedy) {
        int grc = greedy_run(m, greedy, n_gen);
        ag_llama_free(m);
        ag_backend_free(be);
        return grc;
    }
    const ag_llama_hparams *hp = ag_llama_hparams_of(m);
    float *logits = malloc((size_t)hp->n_vocab * sizeof(float));
    int32_t *toks = malloc((size_t)n_prompt * sizeof(int32_t));
    uint64_t rs = 42;
    if (!logits || !toks) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    toks[0] = 1; /* BOS, as llama.cpp's prompt */
    for (int i = 1; i < n_prompt; i++) {
        rs = rs * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = 3 + (int32_t)((rs >> 33) % (uint64_t)(hp->n_vocab - 3));
    }

    /* warm-up: one decode step faults every weight page in (llama.cpp warms up too) */
    double t_warm = 0.0;
    int rc = 1;
    if (decode_run(m, 1, hp->n_vocab, &rs, logits, &t_warm) || ag_llama_truncate(m, 0))
        goto fail;

    t0 = now_s();
    if (ag_llama_eval(m, toks, n_prompt, logits, NULL))
        goto fail;
    double t_pp = now_s() - t0;
    double t_tg = 0.0;
    const double t_dec0 = now_s();
    if (decode_run(m, n_gen, hp->n_vocab, &rs, logits, &t_tg))
        goto fail;
    const double t_dec1 = now_s();
    /* RSS first: the bandwidth tests' buffers must not count */
    long rss_kb = peak_rss_kb();
    double embd_row = 0.0;
    const double wbytes = weight_bytes_per_token(path, &embd_row);
    const double head_dim = (double)hp->n_embd / hp->n_head;
    const double kv_per_pos = 2.0 * hp->n_layer * hp->n_head_kv * head_dim * 2.0; /* F16 K and V */
    double share[3] = {0}, pbw = 0.0;
    const int paired = cpu ? paired_share(m, threads, wbytes + kv_per_pos * (n_prompt + n_gen + PAIRS / 2.0), hp->n_vocab,
                                          &rs, logits, share, &pbw)
                           : 1;
    double t_tg0 = 0.0;
    if (ctx0 && (ag_llama_truncate(m, 0) || decode_run(m, n_gen, hp->n_vocab, &rs, logits, &t_tg0)))
        goto fail;

    double bw = memcpy_bandwidth(threads), rbw = read_bandwidth(threads);
    int lanes = 0;
    const double peak = fp32_peak(threads, &lanes);
    /* prefill arithmetic: every layer matrix for each token, attention's QK^T and PV over the
     * causal context, the output matrix for the last token only (as computed) */
    const double dim = hp->n_embd, kvd = (double)hp->n_embd / hp->n_head * hp->n_head_kv;
    const double layer_params = 2.0 * dim * dim + 2.0 * dim * kvd + 3.0 * dim * hp->n_ff;
    const double pp_flop = 2.0 * layer_params * hp->n_layer * n_prompt +
                           4.0 * hp->n_layer * dim * (double)n_prompt * (n_prompt + 1) / 2.0 + 2.0 * dim * hp->n_vocab;
    /* KV read per step over the mean context of the decode run */
    double kv_bytes = kv_per_pos * (n_prompt + n_gen / 2.0);
    double tg = n_gen / t_tg;
    double bound_w = bw / wbytes, bound_wkv = bw / (wbytes + kv_bytes);
    double rbound_w = rbw / wbytes, rbound_wkv = rbw / (wbytes + kv_bytes);
    printf("model       %s (%d layers, dim %d, ff %d, vocab %d)\n", path, hp->n_layer, hp->n_embd, hp->n_ff,
           hp->n_vocab);
    printf("device      %s (%s), threads %d\n", ag_backend_name(be), ag_backend_device_name(be), threads);
    printf("load        %.2f s, warm-up step %.2f s\n", t_load, t_warm);
    printf("prefill     %d tokens in %.3f s = %.2f tok/s, %.0f GFLOP/s equivalent (%.1f TFLOP)\n", n_prompt, t_pp,
           n_prompt / t_pp, pp_flop / t_pp * 1e-9, pp_flop * 1e-12);
    printf("decode      %d tokens in %.3f s = %.2f tok/s (%.1f ms/token) at ctx %d..%d\n", n_gen, t_tg, tg,
           1000.0 * t_tg / n_gen, n_prompt, n_prompt + n_gen);
    if (ctx0)
        printf("decode@0    %d tokens in %.3f s = %.2f tok/s (%.1f ms/token) from an empty cache\n", n_gen, t_tg0,
               n_gen / t_tg0, 1000.0 * t_tg0 / n_gen);
    printf("peak RSS    %.1f MiB\n", rss_kb / 1024.0);
    printf("read bw     %.2f GB/s (%d threads, plain streaming read, best of 5 passes over 512 MiB)\n", rbw / 1e9, threads);
    if (peak > 0)
        printf("fp32 peak   %.0f GFLOP/s (%d threads, %d-lane FMA chains); prefill at %.0f%% of it\n", peak * 1e-9, threads,
               lanes, 100.0 * pp_flop / t_pp / peak);
    printf("memcpy bw   %.2f GB/s (%d threads, bytes copied per second)\n", bw / 1e9, threads);
    printf("bytes/token %.1f MB weights + %.1f MB KV cache (F16, mean ctx)\n", wbytes / 1e6, kv_bytes / 1e6);
    printf("read bound  %.2f tok/s weights only (ours %.0f%%), %.2f tok/s weights+KV (ours %.0f%%)\n", rbound_w,
           100.0 * tg / rbound_w, rbound_wkv, 100.0 * tg / rbound_wkv);
    if (paired == 0)
        printf("read paired %.0f%% of the read bound (quartiles %.0f-%.0f%%) in %d decode steps each followed by a "
               "read pass over one token's bytes (median %.2f GB/s)\n",
               100.0 * share[1], 100.0 * share[0], 100.0 * share[2], PAIRS, pbw / 1e9);
    printf("memcpy bound %.2f tok/s weights only (ours %.0f%%), %.2f tok/s weights+KV (ours %.0f%%)\n", bound_w,
           100.0 * tg / bound_w, bound_wkv, 100.0 * tg / bound_wkv);
    /* CLOCK_MONOTONIC, as `perf record -k mono` stamps samples: `perf report --time A,B` */
    printf("windows     prefill %.6f,%.6f decode %.6f,%.6f (CLOCK_MONOTONIC s)\n", t0, t0 + t_pp,
           t_dec0, t_dec1);
    if (ctx0)
        printf("bound@0     %.2f tok/s weights only (read), ours@0 %.0f%%\n", rbound_w,
               100.0 * (n_gen / t_tg0) / rbound_w);
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "eval: %s\n", ag_last_error());
    free(logits);
    free(toks);
    ag_llama_free(m);
    ag_backend_free(be);
    return rc;
}
