/* Vulkan backend smoke test: device, buffer round trips across sub-allocation blocks and
 * staging chunks, the barrier placement of compute(), and the simple ops against closed forms
 * (double-precision formulas evaluated here). Env: AG_ALLOW_NO_VULKAN=1 turns "no device"
 * into a skip (exit 77); AG_VULKAN_FORCE_STAGING=1 (second test entry) exercises the staging path. */
#include "anygpt/backend.h"
#include "anygpt/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* not public: barriers / dispatches recorded by the last compute() */
void ag_vulkan_last_stats(ag_backend *be, uint64_t *barriers, uint64_t *dispatches);

static int n_pass, n_fail;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define CHECK(cond, ...)                                                                                                 \
    do {                                                                                                                 \
        if (cond) {                                                                                                      \
            n_pass++;                                                                                                    \
        } else {                                                                                                         \
            n_fail++;                                                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                 \
            printf(__VA_ARGS__);                                                                                         \
            printf("\n");                                                                                                \
        }                                                                                                                \
    } while (0)

static ag_backend *be;

/* raw buffer I/O through the backend interface (ag_tensor_set/get wrap these) */
static int buf_write(ag_buffer *b, size_t off, const void *src, size_t n)
{
    return b->backend->iface->buffer_write(b, off, src, n);
}
static int buf_read(ag_buffer *b, size_t off, void *dst, size_t n)
{
    return b->backend->iface->buffer_read(b, off, dst, n);
}

/* ---------------- buffers ---------------- */

static uint8_t pattern(size_t i, uint32_t seed) { return (uint8_t)((i * 2654435761u + seed) >> 13); }

/* host buffers shared by every round trip (page-faulting 300 MiB once is slow enough) */
static uint8_t *rt_src, *rt_dst;

static void test_roundtrip(size_t size)
{
    ag_buffer *b = ag_buffer_alloc(be, size);
    CHECK(b != NULL, "alloc %zu: %s", size, ag_last_error());
    if (!b)
        return;
    uint8_t *src = rt_src, *dst = rt_dst;
    memset(dst, 0xee, size);
    double t0 = now_ms();
    int rc = buf_write(b, 0, src, size);
    double t1 = now_ms();
    rc |= buf_read(b, 0, dst, size);
    double t2 = now_ms();
    if (size >= (32u << 20))
        printf("# %zu bytes: write %.0f ms (%.0f MB/s), read %.0f ms (%.0f MB/s)\n", size, t1 - t0,
               size / 1e3 / (t1 - t0 + 1e-9), t2 - t1, size / 1e3 / (t2 - t1 + 1e-9));
    CHECK(rc == 0 && memcmp(src, dst, size) == 0, "round trip of %zu bytes (%s)", size, rc ? ag_last_error() : "");
    /* partial write at an odd offset (data taken from src + 7), read back around it */
    if (size > 16 && size < (64u << 20)) {
        size_t off = size / 3 | 1, n = size - off - 1;
        rc = buf_write(b, off, src + 7, n);
        memset(dst, 0, size);
        rc |= buf_read(b, 0, dst, size);
        CHECK(rc == 0 && memcmp(dst, src, off) == 0 && memcmp(dst + off, src + 7, n) == 0 &&
                  dst[size - 1] == src[size - 1],
              "partial write of %zu at %zu into %zu bytes", n, off, size);
        /* an unaligned read from the middle */
        memset(dst, 0, 16);
        rc = buf_read(b, off + 3, dst, 5);
        CHECK(rc == 0 && memcmp(dst, src + 10, 5) == 0, "small read at %zu", off + 3);
    }
    /* out-of-range access is an error, not a crash */
    CHECK(buf_write(b, size, src, 1) != 0, "write past the end accepted (size %zu)", size);
    CHECK(buf_read(b, size - 1, dst, 2) != 0, "read past the end accepted (size %zu)", size);
    ag_buffer_free(b);
}

static void test_buffers(void)
{
    const size_t sizes[] = {1, 3, 4, 17, 4096, (1u << 20) + 7, (32u << 20) + 1, (64u << 20) - 1, (64u << 20) + 5,
                            (size_t)300 << 20};
    const size_t max = sizes[sizeof sizes / sizeof *sizes - 1];
    rt_src = malloc(max);
    rt_dst = malloc(max);
    for (size_t i = 0; i < max; i++)
        rt_src[i] = pattern(i, 0);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        test_roundtrip(sizes[i]);
    free(rt_src);
    free(rt_dst);

    /* many 7 MiB buffers: more than one 256 MiB block; free every other one, refill the
     * holes with smaller ones. Head and tail of each are written and checked, which is where
     * sub-allocation offset mistakes would show up (neighbours overwriting each other). */
    enum { NB = 40 };
    const size_t sz = 7u << 20, edge = 256u << 10;
    ag_buffer *bufs[NB];
    size_t len[NB];
    uint8_t *tmp = malloc(edge), *chk = malloc(edge);
    int bad = 0;
    for (int i = 0; i < NB; i++) {
        bufs[i] = ag_buffer_alloc(be, sz);
        len[i] = sz;
    }
    for (int i = 0; i < NB; i += 2) {
        ag_buffer_free(bufs[i]);
        bufs[i] = ag_buffer_alloc(be, sz / 2 + 3);
        len[i] = sz / 2 + 3;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < NB; i++) {
            if (!bufs[i]) {
                bad++;
                continue;
            }
            for (int end = 0; end < 2; end++) {
                size_t off = end ? len[i] - edge : 0;
                if (pass == 0) {
                    memset(tmp, i * 2 + end + 1, edge);
                    bad += buf_write(bufs[i], off, tmp, edge) != 0;
                } else {
                    bad += buf_read(bufs[i], off, chk, edge) != 0;
                    for (size_t k = 0; k < edge; k += 61)
                        bad += chk[k] != (uint8_t)(i * 2 + end + 1);
                    bad += chk[edge - 1] != (uint8_t)(i * 2 + end + 1);
                }
            }
        }
    CHECK(bad == 0, "%d errors over %d sub-allocated buffers", bad, NB);
    for (int i = 0; i < NB; i++)
        ag_buffer_free(bufs[i]);
    free(tmp);
    free(chk);
}

/* ---------------- graph helpers ---------------- */

typedef struct {
    ag_ctx *ctx;
    ag_graph *g;
    ag_allocator *alloc;
} env;

static env env_new(void)
{
    env e = {ag_ctx_new(256), NULL, ag_allocator_new(be)};
    e.g = ag_graph_new(e.ctx, 256);
    return e;
}

static void env_free(env *e)
{
    ag_graph_free(e->g);
    ag_allocator_free(e->alloc);
    ag_ctx_free(e->ctx);
}

/* ag_set_output that reports a failed constructor instead of crashing */
static void mark_out(ag_tensor *t)
{
    if (t)
        ag_set_output(t);
    else
        printf("FAIL: op constructor failed: %s\n", ag_last_error()), n_fail++;
}

static ag_tensor *input(env *e, ag_type type, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    ag_tensor *t = ag_new_4d(e->ctx, type, n0, n1, n2, n3);
    ag_set_input(t);
    return t;
}

/* Expand outputs, plan memory, upload inputs (data[i] for ins[i]), compute. */
static int run(env *e, ag_tensor **outs, int n_out, ag_tensor **ins, const void **data, int n_in)
{
    for (int i = 0; i < n_out; i++) {
        if (!outs[i] || ag_graph_expand(e->g, outs[i]) != 0) {
            printf("FAIL graph: %s\n", ag_last_error());
            n_fail++;
            return -1;
        }
    }
    if (ag_allocator_alloc_graph(e->alloc, e->g) != 0) {
        printf("FAIL alloc: %s\n", ag_last_error());
        n_fail++;
        return -1;
    }
    for (int i = 0; i < n_in; i++)
        if (ag_tensor_set(ins[i], data[i], 0, ag_nbytes(ins[i])) != 0) {
            printf("FAIL set: %s\n", ag_last_error());
            n_fail++;
            return -1;
        }
    if (ag_backend_compute(be, e->g) != 0) {
        printf("FAIL compute: %s\n", ag_last_error());
        n_fail++;
        return -1;
    }
    return 0;
}

static float *fetch(const ag_tensor *t)
{
    float *p = malloc(ag_nbytes(t));
    if (ag_tensor_get(t, p, 0, ag_nbytes(t)) != 0) {
        printf("# get: %s\n", ag_last_error());
        memset(p, 0xff, ag_nbytes(t));
    }
    return p;
}

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static float *rand_vec(size_t n, uint32_t seed, float scale)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand(&seed) * scale;
    return v;
}

/* max |got - want| / (atol + rtol |want|) <= 1 */
static double worst(const float *got, const double *want, size_t n, double atol, double rtol, size_t *at)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        if ((double)got[i] == want[i])
            continue; /* exact (also covers 0 with atol = 0) */
        double e = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (!(e <= w)) {
            w = e;
            *at = i;
        }
    }
    return w;
}

#define EXPECT_CLOSE(name, got, want, n, atol, rtol)                                                                     \
    do {                                                                                                                 \
        size_t at_ = 0;                                                                                                  \
        double w_ = worst(got, want, n, atol, rtol, &at_);                                                              \
        CHECK(w_ <= 1.0, "%s: element %zu is %.9g, want %.9g", name, at_, (double)(got)[at_], (want)[at_]);            \
    } while (0)

/* ---------------- barriers ---------------- */

/* Tensors bound by hand at chosen offsets of one buffer, so hazards are exactly known. */
static void test_barriers(void)
{
    const int64_t N = 1000;
    const size_t slot = 4096; /* bytes per region */
    ag_buffer *buf = ag_buffer_alloc(be, slot * 8);
    ag_ctx *ctx = ag_ctx_new(64);
    float *x = rand_vec(N, 11, 1.0f), *y = rand_vec(N, 12, 1.0f);
    struct {
        const char *name;
        int expect_barriers;
    } cases[] = {
        {"independent", 0}, {"raw", 1}, {"war", 1}, {"waw", 1}, {"reset", 2},
    };
    for (int c = 0; c < 5; c++) {
        ag_ctx_reset(ctx);
        ag_graph *g = ag_graph_new(ctx, 64);
        ag_tensor *tx = ag_new_1d(ctx, AG_TYPE_F32, N), *ty = ag_new_1d(ctx, AG_TYPE_F32, N);
        ag_tensor_bind(tx, buf, 0 * slot);
        ag_tensor_bind(ty, buf, 1 * slot);
        ag_tensor_set(tx, x, 0, N * 4);
        ag_tensor_set(ty, y, 0, N * 4);
        ag_tensor *n1 = ag_scale(ctx, tx, 2.0f, 0.0f), *n2 = NULL, *n3 = NULL, *n4 = NULL;
        ag_tensor_bind(n1, buf, 2 * slot);
        /* expected values of n1, n2 (, n4) */
        double *w1 = malloc(N * sizeof *w1), *w2 = malloc(N * sizeof *w2), *w4 = malloc(N * sizeof *w4);
        for (int64_t i = 0; i < N; i++)
            w1[i] = 2.0 * x[i];
        switch (c) {
        case 0: /* two readers of x, disjoint outputs */
            n2 = ag_scale(ctx, tx, 3.0f, 0.0f);
            ag_tensor_bind(n2, buf, 3 * slot);
            for (int64_t i = 0; i < N; i++)
                w2[i] = 3.0 * x[i];
            break;
        case 1: /* n2 reads n1 */
            n2 = ag_scale(ctx, n1, 3.0f, 1.0f);
            ag_tensor_bind(n2, buf, 3 * slot);
            for (int64_t i = 0; i < N; i++)
                w2[i] = 6.0 * x[i] + 1.0;
            break;
        case 2: /* n2 overwrites x, which n1 read */
            n2 = ag_scale(ctx, ty, 3.0f, 0.0f);
            ag_tensor_bind(n2, buf, 0 * slot + 64);
            for (int64_t i = 0; i < N; i++)
                w2[i] = 3.0 * y[i];
            break;
        case 3: /* n2 overwrites n1's bytes */
            n2 = ag_scale(ctx, ty, 3.0f, 0.0f);
            ag_tensor_bind(n2, buf, 2 * slot + 128);
            for (int64_t i = 0; i < N; i++)
                w2[i] = 3.0 * y[i];
            break;
        case 4: /* raw, then an independent node, then raw again */
            n2 = ag_scale(ctx, n1, 3.0f, 1.0f);
            ag_tensor_bind(n2, buf, 3 * slot);
            n3 = ag_scale(ctx, ty, 0.5f, 0.0f);
            ag_tensor_bind(n3, buf, 4 * slot);
            n4 = ag_add(ctx, n3, n2);
            ag_tensor_bind(n4, buf, 5 * slot);
            for (int64_t i = 0; i < N; i++) {
                w2[i] = 6.0 * x[i] + 1.0;
                w4[i] = 0.5 * y[i] + w2[i];
            }
            break;
        }
        ag_graph_expand(g, n1);
        ag_graph_expand(g, n2);
        if (n4)
            ag_graph_expand(g, n4);
        int rc = ag_backend_compute(be, g);
        CHECK(rc == 0, "barrier case %s: %s", cases[c].name, ag_last_error());
        uint64_t nbar = 0, ndisp = 0;
        ag_vulkan_last_stats(be, &nbar, &ndisp);
        CHECK(nbar == (uint64_t)cases[c].expect_barriers, "barrier case %s: %llu barriers, want %d", cases[c].name,
              (unsigned long long)nbar, cases[c].expect_barriers);
        if (rc == 0) {
            float *g2 = fetch(n2);
            EXPECT_CLOSE(cases[c].name, g2, w2, (size_t)N, 1e-6, 1e-6);
            free(g2);
            if (c != 3) { /* case 3 overwrote n1 on purpose */
                float *g1 = fetch(n1);
                EXPECT_CLOSE(cases[c].name, g1, w1, (size_t)N, 1e-6, 1e-6);
                free(g1);
            }
            if (n4) {
                float *g4 = fetch(n4);
                EXPECT_CLOSE("reset n4", g4, w4, (size_t)N, 1e-6, 1e-6);
                free(g4);
            }
        }
        free(w1);
        free(w2);
        free(w4);
        ag_graph_free(g);
    }
    ag_ctx_free(ctx);
    ag_buffer_free(buf);
    free(x);
    free(y);

    /* a chain planned by the allocator (memory reused): y = ((x*2+1)*3 - 2) ... 12 steps */
    env e = env_new();
    const int64_t M = 777;
    ag_tensor *in = input(&e, AG_TYPE_F32, M, 1, 1, 1), *t = in, *side = NULL;
    float *xv = rand_vec(M, 5, 2.0f);
    double *want = malloc(M * sizeof *want);
    for (int64_t i = 0; i < M; i++)
        want[i] = xv[i];
    for (int k = 0; k < 12; k++) {
        float s = 1.0f + 0.125f * k, b = 0.25f * (k % 3) - 0.25f;
        t = ag_scale(e.ctx, t, s, b);
        for (int64_t i = 0; i < M; i++)
            want[i] = want[i] * s + b;
        if (k == 5)
            side = t;
    }
    ag_tensor *out = ag_add(e.ctx, t, side); /* keeps a middle value alive across reuse */
    mark_out(out);
    double *w6 = malloc(M * sizeof *w6);
    for (int64_t i = 0; i < M; i++) {
        double v = xv[i];
        for (int k = 0; k < 6; k++)
            v = v * (1.0 + 0.125 * k) + (0.25 * (k % 3) - 0.25);
        w6[i] = want[i] + v;
    }
    const void *d[1] = {xv};
    int rc = run(&e, &out, 1, &in, d, 1);
    CHECK(rc == 0, "chain: %s", ag_last_error());
    if (rc == 0) {
        float *got = fetch(out);
        EXPECT_CLOSE("chain with reuse", got, w6, (size_t)M, 1e-5, 1e-5);
        free(got);
    }
    free(w6);
    free(want);
    free(xv);
    env_free(&e);
}

/* ---------------- ops ---------------- */

static void test_elementwise(void)
{
    env e = env_new();
    const int64_t n0 = 37, n1 = 5, n2 = 3, n3 = 2, N = n0 * n1 * n2 * n3;
    ag_tensor *a = input(&e, AG_TYPE_F32, n0, n1, n2, n3), *b = input(&e, AG_TYPE_F32, n0, 1, n2, 1);
    float *av = rand_vec(N, 1, 3.0f), *bv = rand_vec(n0 * n2, 2, 2.0f);
    ag_tensor *outs[10];
    outs[0] = ag_add(e.ctx, a, b);
    outs[1] = ag_mul(e.ctx, a, b);
    outs[2] = ag_scale(e.ctx, a, -1.5f, 0.25f);
    for (int u = 0; u < AG_UNARY_COUNT; u++)
        outs[3 + u] = ag_unary(e.ctx, a, (ag_unary_op)u);
    for (int i = 0; i < 9; i++)
        mark_out(outs[i]);
    ag_tensor *ins[2] = {a, b};
    const void *d[2] = {av, bv};
    if (run(&e, outs, 9, ins, d, 2) == 0) {
        double *w = malloc(N * sizeof *w);
        static const char *names[] = {"add", "mul", "scale", "silu", "gelu", "elu", "tanh", "sigmoid", "relu"};
        for (int k = 0; k < 9; k++) {
            for (int64_t i = 0; i < N; i++) {
                int64_t i0 = i % n0, i2 = (i / (n0 * n1)) % n2;
                double x = av[i], y = bv[i2 * n0 + i0];
                switch (k) {
                case 0: w[i] = x + y; break;
                case 1: w[i] = x * y; break;
                case 2: w[i] = x * -1.5 + 0.25; break;
                case 3: w[i] = x / (1 + exp(-x)); break;
                case 4: w[i] = 0.5 * x * (1 + erf(x / sqrt(2.0))); break;
                case 5: w[i] = x > 0 ? x : expm1(x); break;
                case 6: w[i] = tanh(x); break;
                case 7: w[i] = 1 / (1 + exp(-x)); break;
                default: w[i] = x > 0 ? x : 0; break;
                }
            }
            float *got = fetch(outs[k]);
            EXPECT_CLOSE(names[k], got, w, (size_t)N, 1e-6, 1e-5);
            free(got);
        }
        free(w);
    }
    /* gelu near 0 and in the tails, where an erf approximation shows */
    free(av);
    free(bv);
    env_free(&e);

    e = env_new();
    const int64_t G = 2001;
    float *gv = malloc(G * sizeof *gv);
    for (int64_t i = 0; i < G; i++)
        gv[i] = (float)(i - 1000) * 0.006f;
    ag_tensor *gi = input(&e, AG_TYPE_F32, G, 1, 1, 1), *go = ag_gelu(e.ctx, gi);
    mark_out(go);
    const void *gd[1] = {gv};
    if (run(&e, &go, 1, &gi, gd, 1) == 0) {
        double *w = malloc(G * sizeof *w);
        for (int64_t i = 0; i < G; i++)
            w[i] = 0.5 * gv[i] * (1 + erf(gv[i] / sqrt(2.0)));
        float *got = fetch(go);
        EXPECT_CLOSE("gelu sweep", got, w, (size_t)G, 3e-7, 2e-6);
        free(got);
        free(w);
    }
    free(gv);
    env_free(&e);
}

static void test_cpy(void)
{
    env e = env_new();
    const int64_t n0 = 9, n1 = 7, n2 = 12; /* > 2 KiB: split under AG_VULKAN_MAX_RANGE=2048 */
    const int64_t N = n0 * n1 * n2;
    ag_tensor *a = input(&e, AG_TYPE_F32, n0, n1, n2, 1);
    float *av = rand_vec(N, 3, 4.0f);
    /* permute then cont: strided source; cast to f16, permute back, cast to f32 */
    ag_tensor *p = ag_permute(e.ctx, a, 0, 2, 1, 3); /* [n0, n2, n1] */
    ag_tensor *c32 = ag_cont(e.ctx, p);
    ag_tensor *h = ag_cast(e.ctx, c32, AG_TYPE_F16);
    ag_tensor *hp = ag_permute(e.ctx, h, 0, 2, 1, 3); /* f16 strided source, [n0, n1, n2] again */
    ag_tensor *back = ag_cast(e.ctx, ag_cont(e.ctx, hp), AG_TYPE_F32);
    /* cpy into a strided view of a bigger destination (like a KV cache write) */
    ag_tensor *cache = input(&e, AG_TYPE_F16, n0, 2 * n1, n2, 1);
    ag_tensor *slot = ag_view(e.ctx, cache, 3, (const int64_t[]){n0, n1, n2}, (const size_t[]){2, cache->nb[1], cache->nb[2]},
                              (size_t)cache->nb[1] * 3);
    ag_tensor *wr = ag_cpy(e.ctx, a, slot);
    ag_tensor *outs[3] = {c32, back, wr};
    for (int i = 0; i < 3; i++)
        mark_out(outs[i]);
    uint16_t *cv = calloc((size_t)(n0 * 2 * n1 * n2), 2);
    for (int64_t i = 0; i < n0 * 2 * n1 * n2; i++)
        cv[i] = ag_fp32_to_fp16(-7.0f);
    ag_tensor *ins[2] = {a, cache};
    const void *d[2] = {av, cv};
    if (run(&e, outs, 3, ins, d, 2) == 0) {
        double *w = malloc(N * sizeof *w);
        for (int64_t i2 = 0; i2 < n2; i2++)
            for (int64_t i1 = 0; i1 < n1; i1++)
                for (int64_t i0 = 0; i0 < n0; i0++)
                    w[(i1 * n2 + i2) * n0 + i0] = av[(i2 * n1 + i1) * n0 + i0];
        float *got = fetch(c32);
        EXPECT_CLOSE("cpy permuted f32", got, w, (size_t)N, 0, 1e-30);
        free(got);
        for (int64_t i = 0; i < N; i++)
            w[i] = ag_fp16_to_fp32(ag_fp32_to_fp16(av[i]));
        got = fetch(back);
        EXPECT_CLOSE("cpy f16 round trip", got, w, (size_t)N, 0, 1e-30);
        free(got);
        uint16_t *cg = malloc(ag_nbytes(cache));
        ag_tensor_get(cache, cg, 0, ag_nbytes(cache));
        int bad = 0;
        for (int64_t i2 = 0; i2 < n2; i2++)
            for (int64_t r = 0; r < 2 * n1; r++)
                for (int64_t i0 = 0; i0 < n0; i0++) {
                    float want = (r >= 3 && r < 3 + n1) ? ag_fp16_to_fp32(ag_fp32_to_fp16(av[(i2 * n1 + r - 3) * n0 + i0]))
                                                        : -7.0f;
                    bad += ag_fp16_to_fp32(cg[(i2 * 2 * n1 + r) * n0 + i0]) != want;
                }
        CHECK(bad == 0, "cpy into f16 cache view: %d wrong", bad);
        free(cg);
        free(w);
    }
    free(cv);
    free(av);
    env_free(&e);
}

static void test_norms(void)
{
    env e = env_new();
    const int64_t n0 = 300, rows = 6;
    ag_tensor *a = input(&e, AG_TYPE_F32, n0, rows, 1, 1);
    float *av = rand_vec(n0 * rows, 7, 2.0f);
    for (int64_t i = 0; i < n0; i++)
        av[i] += 5.0f; /* an offset row: layer norm must subtract the mean accurately */
    ag_tensor *o[4];
    o[0] = ag_rms_norm(e.ctx, a, 1e-5f);
    o[1] = ag_layer_norm(e.ctx, a, 1e-5f);
    /* [10, 5, 6, 6]: C = 6 channels in 3 groups */
    o[2] = ag_group_norm(e.ctx, ag_reshape_4d(e.ctx, a, 10, 5, 6, 6), 3, 1e-6f);
    o[3] = ag_argmax(e.ctx, a);
    for (int i = 0; i < 4; i++)
        mark_out(o[i]);
    const void *d[1] = {av};
    if (run(&e, o, 4, &a, d, 1) == 0) {
        double *w = malloc(n0 * rows * sizeof *w);
        for (int64_t r = 0; r < rows; r++) {
            const float *x = av + r * n0;
            double s2 = 0, s = 0;
            for (int64_t i = 0; i < n0; i++) {
                s2 += (double)x[i] * x[i];
                s += x[i];
            }
            for (int64_t i = 0; i < n0; i++)
                w[r * n0 + i] = x[i] / sqrt(s2 / n0 + 1e-5);
        }
        float *got = fetch(o[0]);
        EXPECT_CLOSE("rms_norm", got, w, (size_t)(n0 * rows), 1e-5, 1e-5);
        free(got);
        for (int64_t r = 0; r < rows; r++) {
            const float *x = av + r * n0;
            double m = 0, v = 0;
            for (int64_t i = 0; i < n0; i++)
                m += x[i];
            m /= n0;
            for (int64_t i = 0; i < n0; i++)
                v += (x[i] - m) * (x[i] - m);
            v /= n0;
            for (int64_t i = 0; i < n0; i++)
                w[r * n0 + i] = (x[i] - m) / sqrt(v + 1e-5);
        }
        got = fetch(o[1]);
        EXPECT_CLOSE("layer_norm", got, w, (size_t)(n0 * rows), 1e-5, 1e-5);
        free(got);
        /* group norm: [10, 5, 6, 6]: group = 2 channels = 100 consecutive values */
        for (int64_t gi = 0; gi < n0 * rows / 100; gi++) {
            const float *x = av + gi * 100;
            double m = 0, v = 0;
            for (int i = 0; i < 100; i++)
                m += x[i];
            m /= 100;
            for (int i = 0; i < 100; i++)
                v += (x[i] - m) * (x[i] - m);
            v /= 100;
            for (int i = 0; i < 100; i++)
                w[gi * 100 + i] = (x[i] - m) / sqrt(v + 1e-6);
        }
        got = fetch(o[2]);
        EXPECT_CLOSE("group_norm", got, w, (size_t)(n0 * rows), 1e-5, 1e-5);
        free(got);
        int32_t am[6];
        ag_tensor_get(o[3], am, 0, sizeof am);
        int bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t i = 1; i < n0; i++)
                if (av[r * n0 + i] > av[r * n0 + best])
                    best = i;
            bad += am[r] != best;
        }
        CHECK(bad == 0, "argmax: %d rows wrong", bad);
        free(w);
    }
    free(av);
    env_free(&e);

    /* argmax ties go to the lowest index */
    e = env_new();
    float tv[800];
    for (int i = 0; i < 800; i++)
        tv[i] = (i % 400 == 300 || i % 400 == 399 || i % 400 == 3) ? 5.0f : 1.0f;
    ag_tensor *ta = input(&e, AG_TYPE_F32, 400, 2, 1, 1), *tm = ag_argmax(e.ctx, ta);
    mark_out(tm);
    const void *td[1] = {tv};
    if (run(&e, &tm, 1, &ta, td, 1) == 0) {
        int32_t r[2];
        ag_tensor_get(tm, r, 0, sizeof r);
        CHECK(r[0] == 3 && r[1] == 3, "argmax ties: %d %d, want 3 3", r[0], r[1]);
    }
    env_free(&e);
}

static void test_softmax(void)
{
    env e = env_new();
    const int64_t N = 70, M = 5, H = 3;
    ag_tensor *a = input(&e, AG_TYPE_F32, N, M, H, 1), *mask = input(&e, AG_TYPE_F32, N, M, 1, 1);
    float *av = rand_vec(N * M * H, 9, 4.0f), *mv = rand_vec(N * M, 10, 1.0f);
    for (int64_t i = 0; i < N; i++)
        mv[2 * N + i] = -INFINITY; /* row 2 fully masked -> zeros */
    mv[3 * N + 4] = -INFINITY;
    ag_tensor *o[2] = {ag_softmax(e.ctx, a, mask, 0.7f, false), ag_softmax(e.ctx, a, NULL, 1.3f, true)};
    mark_out(o[0]);
    mark_out(o[1]);
    ag_tensor *ins[2] = {a, mask};
    const void *d[2] = {av, mv};
    if (run(&e, o, 2, ins, d, 2) == 0) {
        double *w = malloc(N * M * H * sizeof *w);
        for (int k = 0; k < 2; k++) {
            for (int64_t h = 0; h < H; h++)
                for (int64_t m = 0; m < M; m++) {
                    double v[70], mx = -INFINITY, s = 0;
                    for (int64_t n = 0; n < N; n++) {
                        const float x = av[(h * M + m) * N + n];
                        v[n] = k == 0 ? x * 0.7 + mv[m * N + n] : (n > m + (N - M) ? -INFINITY : x * 1.3);
                        mx = fmax(mx, v[n]);
                    }
                    for (int64_t n = 0; n < N; n++)
                        s += mx == -INFINITY ? 0 : exp(v[n] - mx);
                    for (int64_t n = 0; n < N; n++)
                        w[(h * M + m) * N + n] = mx == -INFINITY ? 0 : exp(v[n] - mx) / s;
                }
            float *got = fetch(o[k]);
            EXPECT_CLOSE(k ? "softmax causal" : "softmax mask", got, w, (size_t)(N * M * H), 1e-7, 1e-5);
            free(got);
        }
        free(w);
    }
    free(av);
    free(mv);
    env_free(&e);
}

static void test_rope(void)
{
    env e = env_new();
    const int64_t D = 16, H = 3, T = 5;
    ag_tensor *a = input(&e, AG_TYPE_F32, D, H, T, 1), *pos = input(&e, AG_TYPE_I32, T, 1, 1, 1);
    float *av = rand_vec(D * H * T, 13, 1.0f);
    int32_t pv[5] = {0, 1, 7, 100, 513};
    ag_tensor *o[2] = {ag_rope(e.ctx, a, pos, 12, AG_ROPE_INTERLEAVED, 10000.0f, 1.0f),
                       ag_rope(e.ctx, a, pos, 16, AG_ROPE_NEOX, 500.0f, 0.5f)};
    mark_out(o[0]);
    mark_out(o[1]);
    ag_tensor *ins[2] = {a, pos};
    const void *d[2] = {av, pv};
    if (run(&e, o, 2, ins, d, 2) == 0) {
        double *w = malloc(D * H * T * sizeof *w);
        for (int k = 0; k < 2; k++) {
            int nd = k ? 16 : 12;
            double base = k ? 500.0 : 10000.0, fs = k ? 0.5 : 1.0;
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < H; h++) {
                    const float *x = av + (t * H + h) * D;
                    double *y = w + (t * H + h) * D;
                    for (int64_t i = 0; i < D; i++)
                        y[i] = x[i];
                    for (int i = 0; i < nd / 2; i++) {
                        double th = pv[t] * fs * pow(base, -2.0 * i / nd);
                        int j0 = k ? i : 2 * i, j1 = k ? i + nd / 2 : 2 * i + 1;
                        y[j0] = x[j0] * cos(th) - x[j1] * sin(th);
                        y[j1] = x[j0] * sin(th) + x[j1] * cos(th);
                    }
                }
            float *got = fetch(o[k]);
            /* float theta at pos 513 carries ~3e-5 rad of rounding */
            EXPECT_CLOSE(k ? "rope neox" : "rope interleaved", got, w, (size_t)(D * H * T), 1e-4, 1e-4);
            free(got);
        }
        free(w);
    }
    free(av);
    env_free(&e);
}

static void test_shape_ops(void)
{
    env e = env_new();
    const int64_t T = 11, C = 4, B = 2;
    ag_tensor *a = input(&e, AG_TYPE_F32, T, C, B, 1), *alpha = input(&e, AG_TYPE_F32, 1, C, 1, 1);
    ag_tensor *b = input(&e, AG_TYPE_F32, T, 3, B, 1);
    float *av = rand_vec(T * C * B, 21, 2.0f), *bv = rand_vec(T * 3 * B, 22, 1.0f);
    float alv[4] = {0.5f, 1.0f, 2.0f, 0.1f};
    ag_tensor *o[7];
    o[0] = ag_snake(e.ctx, a, alpha);
    o[1] = ag_glu(e.ctx, ag_reshape_3d(e.ctx, a, 22, 2, B)); /* [22, 2, 2] -> [11, 2, 2] */
    o[2] = ag_pad(e.ctx, a, 3, 2, 1, 2, AG_PAD_REFLECT);
    o[3] = ag_pad(e.ctx, a, 1, 4, 2, 0, AG_PAD_ZERO);
    o[4] = ag_upsample(e.ctx, a, 3, 2);
    o[5] = ag_concat(e.ctx, a, b, 1);
    o[6] = ag_concat(e.ctx, a, a, 0);
    for (int i = 0; i < 7; i++)
        mark_out(o[i]);
    ag_tensor *ins[3] = {a, alpha, b};
    const void *d[3] = {av, alv, bv};
    if (run(&e, o, 7, ins, d, 3) == 0) {
        double *w = malloc(4096 * sizeof *w);
#define A(i0, i1, i2) ((double)av[((i2) * C + (i1)) * T + (i0)])
        for (int64_t i2 = 0; i2 < B; i2++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t t = 0; t < T; t++) {
                    double x = A(t, c, i2), s = sin(alv[c] * x);
                    w[(i2 * C + c) * T + t] = x + s * s / (alv[c] + 1e-9);
                }
        float *got = fetch(o[0]);
        EXPECT_CLOSE("snake", got, w, (size_t)(T * C * B), 1e-6, 1e-5);
        free(got);
        /* glu on [22, 2, 2] */
        for (int64_t r = 0; r < 4; r++)
            for (int64_t i = 0; i < 11; i++)
                w[r * 11 + i] = av[r * 22 + i] / (1 + exp(-(double)av[r * 22 + 11 + i]));
        got = fetch(o[1]);
        EXPECT_CLOSE("glu", got, w, 44, 1e-6, 1e-5);
        free(got);
        for (int k = 0; k < 2; k++) {
            int l0 = k ? 1 : 3, r0 = k ? 4 : 2, l1 = k ? 2 : 1, r1 = k ? 0 : 2;
            int64_t o0 = T + l0 + r0, o1 = C + l1 + r1;
            for (int64_t i2 = 0; i2 < B; i2++)
                for (int64_t j1 = 0; j1 < o1; j1++)
                    for (int64_t j0 = 0; j0 < o0; j0++) {
                        int64_t s0 = j0 - l0, s1 = j1 - l1;
                        double v;
                        if (k == 0) {
                            s0 = s0 < 0 ? -s0 : s0 >= T ? 2 * (T - 1) - s0 : s0;
                            s1 = s1 < 0 ? -s1 : s1 >= C ? 2 * (C - 1) - s1 : s1;
                            v = A(s0, s1, i2);
                        } else {
                            v = (s0 >= 0 && s0 < T && s1 >= 0 && s1 < C) ? A(s0, s1, i2) : 0.0;
                        }
                        w[(i2 * o1 + j1) * o0 + j0] = v;
                    }
            got = fetch(o[2 + k]);
            EXPECT_CLOSE(k ? "pad zero" : "pad reflect", got, w, (size_t)(o0 * o1 * B), 0, 1e-30);
            free(got);
        }
        for (int64_t i2 = 0; i2 < B; i2++)
            for (int64_t j1 = 0; j1 < 2 * C; j1++)
                for (int64_t j0 = 0; j0 < 3 * T; j0++)
                    w[(i2 * 2 * C + j1) * 3 * T + j0] = A(j0 / 3, j1 / 2, i2);
        got = fetch(o[4]);
        EXPECT_CLOSE("upsample", got, w, (size_t)(6 * T * C * B), 0, 1e-30);
        free(got);
        for (int64_t i2 = 0; i2 < B; i2++)
            for (int64_t j1 = 0; j1 < C + 3; j1++)
                for (int64_t t = 0; t < T; t++)
                    w[(i2 * (C + 3) + j1) * T + t] = j1 < C ? A(t, j1, i2) : bv[(i2 * 3 + j1 - C) * T + t];
        got = fetch(o[5]);
        EXPECT_CLOSE("concat dim 1", got, w, (size_t)(T * (C + 3) * B), 0, 1e-30);
        free(got);
        for (int64_t r = 0; r < C * B; r++)
            for (int64_t j = 0; j < 2 * T; j++)
                w[r * 2 * T + j] = av[r * T + j % T];
        got = fetch(o[6]);
        EXPECT_CLOSE("concat dim 0", got, w, (size_t)(2 * T * C * B), 0, 1e-30);
        free(got);
#undef A
        free(w);
    }
    free(av);
    free(bv);
    env_free(&e);
}

static void test_get_rows(void)
{
    env e = env_new();
    const int64_t D = 64, V = 40, n = 6;
    int32_t ids[6] = {6, 0, 39, 3, 21, 1};
    /* tables whose decoded values are exact: q * d with d a power of two */
    float *f32 = malloc(D * V * 4);
    uint16_t *f16 = malloc(D * V * 2);
    ag_block_q8_0 *q8 = malloc(sizeof(ag_block_q8_0) * (D / 32) * V);
    ag_block_q4_0 *q4 = malloc(sizeof(ag_block_q4_0) * (D / 32) * V);
    double *w8 = malloc(D * V * sizeof *w8), *w4 = malloc(D * V * sizeof *w4), *w32 = malloc(D * V * sizeof *w32);
    for (int64_t v = 0; v < V; v++)
        for (int64_t i = 0; i < D; i++) {
            f32[v * D + i] = (float)(v * 100 + i) * 0.25f;
            f16[v * D + i] = ag_fp32_to_fp16((float)(v * 10 + i) * 0.5f);
            w32[v * D + i] = (v * 100 + i) * 0.25;
            int64_t blk = v * (D / 32) + i / 32, j = i % 32;
            float d = (float)(1 << (v % 3)) * 0.125f;
            int8_t q = (int8_t)((v * 37 + i * 11) % 255 - 127);
            q8[blk].d = ag_fp32_to_fp16(d);
            q8[blk].qs[j] = q;
            w8[v * D + i] = q * (double)d;
            int q4v = (int)((v * 5 + i * 3) % 16);
            q4[blk].d = ag_fp32_to_fp16(d);
            if (j < 16)
                q4[blk].qs[j] = (uint8_t)((q4[blk].qs[j] & 0xf0) | q4v);
            else
                q4[blk].qs[j - 16] = (uint8_t)((q4[blk].qs[j - 16] & 0x0f) | (q4v << 4));
            w4[v * D + i] = (q4v - 8) * (double)d;
        }
    ag_tensor *t32 = input(&e, AG_TYPE_F32, D, V, 1, 1), *t16 = input(&e, AG_TYPE_F16, D, V, 1, 1);
    ag_tensor *t8 = input(&e, AG_TYPE_Q8_0, D, V, 1, 1), *t4 = input(&e, AG_TYPE_Q4_0, D, V, 1, 1);
    ag_tensor *ti = input(&e, AG_TYPE_I32, n, 1, 1, 1);
    ag_tensor *o[4] = {ag_get_rows(e.ctx, t32, ti), ag_get_rows(e.ctx, t16, ti), ag_get_rows(e.ctx, t8, ti),
                       ag_get_rows(e.ctx, t4, ti)};
    for (int i = 0; i < 4; i++)
        mark_out(o[i]);
    ag_tensor *ins[5] = {t32, t16, t8, t4, ti};
    const void *d[5] = {f32, f16, q8, q4, ids};
    if (run(&e, o, 4, ins, d, 5) == 0) {
        double *w = malloc(D * n * sizeof *w);
        static const char *names[] = {"get_rows f32", "get_rows f16", "get_rows q8_0", "get_rows q4_0"};
        for (int k = 0; k < 4; k++) {
            for (int64_t r = 0; r < n; r++)
                for (int64_t i = 0; i < D; i++) {
                    int64_t v = ids[r];
                    w[r * D + i] = k == 0   ? w32[v * D + i]
                                   : k == 1 ? (v * 10 + i) * 0.5
                                   : k == 2 ? w8[v * D + i]
                                            : w4[v * D + i];
                }
            float *got = fetch(o[k]);
            EXPECT_CLOSE(names[k], got, w, (size_t)(D * n), 0, 1e-30);
            free(got);
        }
        free(w);
    }
    free(f32);
    free(f16);
    free(q8);
    free(q4);
    free(w8);
    free(w4);
    free(w32);
    env_free(&e);
}

static void test_unsupported(void)
{
    /* a node the backend cannot run: a message naming the op, no crash */
    env e = env_new();
    ag_tensor *a = input(&e, AG_TYPE_F32, 8, 1, 1, 1);
    ag_tensor *u = ag_unary(e.ctx, a, AG_UNARY_RELU);
    u->op_params[0] = 99; /* corrupt: unknown unary op */
    mark_out(u);
    ag_graph_expand(e.g, u);
    ag_allocator_alloc_graph(e.alloc, e.g);
    int rc = ag_backend_compute(be, e.g);
    CHECK(rc != 0 && strcasestr(ag_last_error(), "unary") != NULL, "unsupported node: rc %d, error '%s'", rc,
          ag_last_error());
    CHECK(!ag_backend_supports_node(be, u), "supports_node accepted a corrupt node");
    env_free(&e);
}

int main(void)
{
    int n = ag_vulkan_device_count();
    if (n <= 0) {
        const char *allow = getenv("AG_ALLOW_NO_VULKAN");
        printf("# device: none (%s)\n", ag_last_error());
        if (allow && strcmp(allow, "1") == 0) {
            printf("# skipped: no Vulkan device and AG_ALLOW_NO_VULKAN=1\n0 passed, 0 failed\n");
            return 77; /* meson: SKIP */
        }
        printf("FAIL: no Vulkan device\n0 passed, 1 failed\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char name[256];
        if (ag_vulkan_device_name(i, name, sizeof name) == 0)
            printf("# vulkan device %d: %s\n", i, name);
    }
    CHECK(ag_vulkan_device_name(n, (char[8]){0}, 8) != 0, "device name of an out-of-range index accepted");
    ag_backend *bad = ag_backend_vulkan_new(n + 5);
    CHECK(bad == NULL && strstr(ag_last_error(), "out of range"), "device index %d accepted (%s)", n + 5,
          ag_last_error());
    ag_backend_free(bad);
    be = ag_backend_vulkan_new(-1);
    if (!be) {
        printf("FAIL: %s\n0 passed, 1 failed\n", ag_last_error());
        return 1;
    }
    const char *st = getenv("AG_VULKAN_FORCE_STAGING");
    printf("# device: %s%s\n", ag_backend_device_name(be), st && *st == '1' ? " (staging forced)" : "");
    CHECK(strcmp(ag_backend_name(be), "vulkan") == 0, "backend name '%s'", ag_backend_name(be));

    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"buffers", test_buffers},   {"barriers", test_barriers}, {"elementwise", test_elementwise},
        {"cpy", test_cpy},           {"norms", test_norms},       {"softmax", test_softmax},
        {"rope", test_rope},         {"shape ops", test_shape_ops}, {"get_rows", test_get_rows},
        {"unsupported", test_unsupported},
    };
    /* with AG_VULKAN_MAX_RANGE (split paths) the buffer tests add nothing: skip them */
    const bool small_range = getenv("AG_VULKAN_MAX_RANGE") != NULL;
    if (small_range)
        printf("# maxStorageBufferRange lowered to %s bytes\n", getenv("AG_VULKAN_MAX_RANGE"));
    for (size_t i = small_range ? 1 : 0; i < sizeof tests / sizeof *tests; i++) {
        double t0 = now_ms();
        tests[i].fn();
        printf("# %s: %.0f ms\n", tests[i].name, now_ms() - t0);
    }

    ag_backend_free(be);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
