/* anygpt-bench-matvec: how close the quantized dot kernels get to memory bandwidth.
 *
 * Measures memcpy bandwidth (256 MiB buffers, best of several reps) and a plain read pass, then
 * the LLM-decode matvec: 11008 rows of 4096 weights (Q4_0, Q8_0, F16, F32) times one F32 vector,
 * the vector quantized to Q8_0 once per call where the weights want it, rows split over pthreads;
 * for Q4_0/Q8_0 also on the matrix as packed row groups (quant.h), the layout the cpu backend
 * keeps model weights in.
 * Prints GB/s of weight bytes read and the ratio to memcpy. Each call reads a different copy of
 * the matrix, cycling through >= 768 MiB, so the last-level cache never holds the weights (as in
 * a real decode step, which streams every layer's weights once). The scalar path is measured by
 * running this program again with AG_SIMD=scalar.
 *
 * Usage: anygpt-bench-matvec [--threads N] [--reps N] [--no-scalar]
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anygpt/quant.h"
#include "anygpt/tensor.h"
#include "bench_pages.h"

#define ROWS 11008
#define COLS 4096
#define COPY_BYTES ((size_t)256 << 20)
#define SWEEP_BYTES ((size_t)768 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- a tiny pool: every thread runs job(tid) between two barriers, reps times ---- */
typedef struct pool pool;
typedef void (*job_fn)(pool *p, int tid);
struct pool {
    int nthreads, reps;
    job_fn job;
    pthread_barrier_t start, done;
    /* job state */
    char *dst;
    const char *src;
    size_t bytes;
    ag_type type;
    char **w; /* ncopies copies of the matrix; rep r reads copy r % ncopies */
    int ncopies, rep;
    size_t rs;
    const void *act;
    float *out;
    uint64_t sink[64];
};

typedef struct {
    pool *p;
    int tid;
} worker_arg;

static void *worker(void *v)
{
    worker_arg *a = v;
    for (int r = 0; r < a->p->reps; r++) {
        pthread_barrier_wait(&a->p->start);
        a->p->job(a->p, a->tid);
        pthread_barrier_wait(&a->p->done);
    }
    return NULL;
}

/* Runs job on all threads reps times (plus before(), on the main thread, inside the timing);
 * returns the best time of one rep. */
static double run_best(pool *p, job_fn job, int reps, void (*before)(pool *))
{
    p->job = job;
    p->reps = reps;
    pthread_barrier_init(&p->start, NULL, (unsigned)p->nthreads);
    pthread_barrier_init(&p->done, NULL, (unsigned)p->nthreads);
    pthread_t th[64];
    worker_arg args[64];
    for (int t = 1; t < p->nthreads; t++) {
        args[t] = (worker_arg){p, t};
        pthread_create(&th[t], NULL, worker, &args[t]);
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        if (before)
            before(p);
        pthread_barrier_wait(&p->start);
        job(p, 0);
        pthread_barrier_wait(&p->done);
        const double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    for (int t = 1; t < p->nthreads; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&p->start);
    pthread_barrier_destroy(&p->done);
    return best;
}

static void split(size_t total, int nt, int tid, size_t align, size_t *b, size_t *e)
{
    const size_t units = total / align;
    *b = units * (size_t)tid / (size_t)nt * align;
    *e = tid == nt - 1 ? total : units * (size_t)(tid + 1) / (size_t)nt * align;
}

static void job_memcpy(pool *p, int tid)
{
    size_t b, e;
    split(p->bytes, p->nthreads, tid, 4096, &b, &e);
    memcpy(p->dst + b, p->src + b, e - b);
}

#if defined(__x86_64__)
#include <immintrin.h>
/* 4 independent 32-byte load streams: fast enough that only memory limits it */
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

static void job_read(pool *p, int tid)
{
    size_t b, e;
    split(p->bytes, p->nthreads, tid, 4096, &b, &e);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        p->sink[tid] = read_avx2(p->src + b, e - b);
        return;
    }
#endif
    const uint64_t *s = (const uint64_t *)(p->src + b);
    uint64_t acc[8] = {0};
    for (size_t i = 0; i + 8 <= (e - b) / 8; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] ^= s[i + k];
    p->sink[tid] = acc[0] ^ acc[1] ^ acc[2] ^ acc[3] ^ acc[4] ^ acc[5] ^ acc[6] ^ acc[7];
}

static float g_x[COLS];
static ag_block_q8_0 g_xq[COLS / 32];

static void quantize_act(pool *p)
{
    p->rep++;
    if (ag_vec_dot_act_type(p->type) == AG_TYPE_Q8_0)
        ag_quantize_row_q8_0(g_x, g_xq, COLS);
}

static char g_pact[16384];

static void prepare_packed_act(pool *p)
{
    p->rep++;
    ag_packed_act_row(p->type, g_x, COLS, g_pact);
}

static void job_packed(pool *p, int tid)
{
    size_t b, e;
    split(ROWS / AG_PACK_ROWS, p->nthreads, tid, 1, &b, &e);
    ag_packed_matmul(p->type, COLS, p->w[p->rep % p->ncopies] + b * p->rs, (int64_t)(e - b) * AG_PACK_ROWS, g_pact, 0,
                     1, p->out + b * AG_PACK_ROWS, 0);
}

static void job_matvec(pool *p, int tid)
{
    size_t b, e;
    split(ROWS, p->nthreads, tid, 4, &b, &e);
    ag_vec_dot_rows(p->type, COLS, p->w[p->rep % p->ncopies] + b * p->rs, p->rs, (int)(e - b), p->act, p->out + b);
}

int main(int argc, char **argv)
{
    int only_threads = 0, reps = 0, no_scalar = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            only_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-scalar") == 0)
            no_scalar = 1;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--reps N] [--no-scalar]\n", argv[0]);
            return 2;
        }
    }
    if (only_threads < 0 || only_threads > 64) {
        fprintf(stderr, "--threads must be 1..64\n");
        return 2;
    }
    const int is_scalar = strcmp(ag_simd_level(), "scalar") == 0;
    if (reps <= 0)
        reps = is_scalar ? 3 : 20;
    int tlist[2] = {1, 2}, nt = 2;
    if (only_threads) {
        tlist[0] = only_threads;
        nt = 1;
    }
    printf("kernel level: %s, prefetch %s; matvec %d rows x %d, best of %d\n", ag_simd_level(), ag_simd_prefetch(), ROWS,
           COLS, reps);

    /* memory bandwidth (skipped in the scalar child: it only reports kernels) */
    char *src = bench_pages_alloc(COPY_BYTES), *dst = bench_pages_alloc(COPY_BYTES);
    if (!src || !dst) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(src, 1, COPY_BYTES);
    memset(dst, 2, COPY_BYTES);
    double copy_gbs[2] = {0, 0}, read_gbs[2] = {0, 0};
    for (int ti = 0; ti < nt; ti++) {
        pool p = {.nthreads = tlist[ti], .src = src, .dst = dst, .bytes = COPY_BYTES};
        const double tc = run_best(&p, job_memcpy, 10, NULL);
        const double tr = run_best(&p, job_read, 10, NULL);
        copy_gbs[ti] = COPY_BYTES / tc * 1e-9;
        read_gbs[ti] = COPY_BYTES / tr * 1e-9;
        if (!is_scalar)
            printf("threads %d: memcpy %.2f GB/s (bytes copied per second; %.2f GB/s of read+write traffic), "
                   "read %.2f GB/s\n",
                   tlist[ti], copy_gbs[ti], 2 * copy_gbs[ti], read_gbs[ti]);
    }
    bench_pages_free(dst, COPY_BYTES);
    bench_pages_free(src, COPY_BYTES);

    /* weights: random values, quantized once */
    float *wf = malloc((size_t)ROWS * COLS * sizeof(float));
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
        s = s * 1664525u + 1013904223u;
        wf[i] = ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    for (int i = 0; i < COLS; i++)
        g_x[i] = sinf((float)i * 0.1f);
    const ag_type types[4] = {AG_TYPE_Q4_0, AG_TYPE_Q8_0, AG_TYPE_F16, AG_TYPE_F32};
    float *out = malloc(ROWS * sizeof(float));
    for (int k = 0; k < 4; k++) {
        const ag_type ty = types[k];
        const size_t rs = ag_row_size(ty, COLS), bytes = rs * ROWS;
        int ncopies = (int)((SWEEP_BYTES + bytes - 1) / bytes);
        char **w = calloc((size_t)ncopies, sizeof *w);
        for (int c = 0; c < ncopies; c++) {
            w[c] = bench_pages_alloc(bytes);
            if (!w[c]) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            if (c == 0)
                ag_quantize(ty, wf, w[0], ROWS, COLS);
            else
                memcpy(w[c], w[0], bytes);
        }
        for (int ti = 0; ti < nt; ti++) {
            pool p = {.nthreads = tlist[ti], .type = ty, .w = w, .ncopies = ncopies, .rs = rs, .out = out,
                      .act = ag_vec_dot_act_type(ty) == AG_TYPE_Q8_0 ? (const void *)g_xq : (const void *)g_x};
            const double t = run_best(&p, job_matvec, reps < ncopies ? ncopies : reps, quantize_act);
            const double gbs = bytes / t * 1e-9;
            printf("%-7s %-4s threads %d: %7.3f ms  %6.2f GB/s of weights (%.1f MB)  = %3.0f%% of memcpy, "
                   "%3.0f%% of read\n",
                   ag_simd_level(), ag_type_name(ty), tlist[ti], t * 1e3, gbs, bytes * 1e-6,
                   100 * gbs / copy_gbs[ti], 100 * gbs / read_gbs[ti]);
        }
        if (ty == AG_TYPE_Q4_0 || ty == AG_TYPE_Q8_0) {
            /* the same matrix as packed groups (same size): rs is now bytes per group */
            char *tmp = malloc(bytes);
            ag_pack_rows(ty, w[0], rs, ROWS, COLS, tmp);
            for (int c = 0; c < ncopies; c++)
                memcpy(w[c], tmp, bytes);
            free(tmp);
            for (int ti = 0; ti < nt; ti++) {
                pool p = {.nthreads = tlist[ti], .type = ty, .w = w, .ncopies = ncopies,
                          .rs = ag_packed_size(ty, AG_PACK_ROWS, COLS), .out = out};
                const double t = run_best(&p, job_packed, reps < ncopies ? ncopies : reps, prepare_packed_act);
                const double gbs = bytes / t * 1e-9;
                printf("%-7s %-4s threads %d: %7.3f ms  %6.2f GB/s packed groups       = %3.0f%% of memcpy, "
                       "%3.0f%% of read\n",
                       ag_simd_level(), ag_type_name(ty), tlist[ti], t * 1e3, gbs, 100 * gbs / copy_gbs[ti],
                       100 * gbs / read_gbs[ti]);
            }
        }
        for (int c = 0; c < ncopies; c++)
            bench_pages_free(w[c], bytes);
        free(w);
    }
    free(out);
    free(wf);
    fflush(stdout);

    if (!is_scalar && !no_scalar) {
        /* the scalar path, for comparison: same program, kernels capped by AG_SIMD */
        pid_t pid = fork();
        if (pid == 0) {
            setenv("AG_SIMD", "scalar", 1);
            char reps_s[16];
            snprintf(reps_s, sizeof reps_s, "%d", 3);
            char thr_s[16];
            snprintf(thr_s, sizeof thr_s, "%d", only_threads);
            if (only_threads)
                execl("/proc/self/exe", argv[0], "--reps", reps_s, "--threads", thr_s, (char *)NULL);
            else
                execl("/proc/self/exe", argv[0], "--reps", reps_s, (char *)NULL);
            perror("exec");
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    return 0;
}
