/* Long attention (Nq = Nk = n, one head): the size of SD's 96x96 latent self-attention; or a
 * few queries (nq) over n keys. The inputs come from a seeded generator; sampled rows are
 * recomputed in double precision here. */
#include "ops_long.h"

#include "anygpt/error.h"
#include "anygpt/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [-a, a) */
static float unif(uint64_t *s, float a) { return (float)((double)(splitmix(s) >> 11) * 0x1p-53 * 2.0 - 1.0) * a; }

static int32_t key_i32(const ag_gguf *f, int idx, const char *name, int32_t def)
{
    char key[96];
    int32_t v;
    snprintf(key, sizeof key, "case.%d.%s", idx, name);
    if (ag_gguf_find_key(f, key) < 0 || !ag_gguf_get_i32(f, key, &v))
        return def;
    return v;
}

/* out[0..d) = softmax(scale * q_i . k_j) v_j over all j, in double */
static void ref_row(const float *q, const float *k, const float *v, int64_t n, int64_t d, double scale, int64_t i,
                    double *s, double *out)
{
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        double acc = 0;
        for (int64_t c = 0; c < d; c++)
            acc += (double)q[i * d + c] * (double)k[j * d + c];
        s[j] = acc * scale;
        if (s[j] > mx)
            mx = s[j];
    }
    double sum = 0;
    for (int64_t j = 0; j < n; j++)
        sum += (s[j] = exp(s[j] - mx));
    for (int64_t c = 0; c < d; c++)
        out[c] = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t c = 0; c < d; c++)
            out[c] += s[j] / sum * (double)v[j * d + c];
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ops_attention_long(const ag_gguf *f, int idx, ag_backend *be, ag_allocator *alloc, double atol, double rtol,
                        run_status *st, double **v, int64_t *n_out, int64_t ne[4], double *seconds, char *why,
                        size_t wl)
{
    const int64_t n = key_i32(f, idx, "n", 0), d = key_i32(f, idx, "d", 0);
    const int64_t nq = key_i32(f, idx, "nq", (int32_t)n);
    const int samples = key_i32(f, idx, "samples", 8);
    uint64_t seed = (uint64_t)key_i32(f, idx, "seed", 1);
    *st = RUN_FAIL;
    *v = NULL;
    *seconds = 0;
    if (n <= 0 || d <= 0 || n > (1 << 20) || d > 1024 || samples < 2 || nq <= 0 || nq > (1 << 20)) {
        snprintf(why, wl, "fixture: bad long-attention parameters");
        return;
    }
    const size_t cnt = (size_t)(n * d), qcnt = (size_t)(nq * d);
    float *q = malloc(qcnt * sizeof *q), *k = malloc(cnt * sizeof *k), *vv = malloc(cnt * sizeof *vv);
    float *o = malloc(qcnt * sizeof *o);
    double *s = malloc((size_t)n * sizeof *s), *ref = malloc((size_t)d * sizeof *ref);
    ag_ctx *ctx = ag_ctx_new(16);
    ag_graph *g = ctx ? ag_graph_new(ctx, 16) : NULL;
    if (!q || !k || !vv || !o || !s || !ref || !g) {
        snprintf(why, wl, "out of memory");
        goto done;
    }
    /* |q|,|k| < 2 (score std about 1.3 after 1/sqrt(64)): a peaked softmax, so a wrong key
     * index or a lost block of keys changes the rows visibly */
    for (size_t i = 0; i < qcnt; i++)
        q[i] = unif(&seed, 2.0f);
    for (size_t i = 0; i < cnt; i++) {
        k[i] = unif(&seed, 2.0f);
        vv[i] = unif(&seed, 1.0f);
    }
    ag_tensor *tq = ag_new_3d(ctx, AG_TYPE_F32, d, nq, 1), *tk = ag_new_3d(ctx, AG_TYPE_F32, d, n, 1);
    ag_tensor *tv = ag_new_3d(ctx, AG_TYPE_F32, d, n, 1);
    const double scale = 1.0 / sqrt((double)d);
    ag_tensor *out = ag_attention(ctx, tq, tk, tv, NULL, (float)scale, false);
    if (!out || ag_graph_expand(g, out) != 0) {
        snprintf(why, wl, "graph: %s", ag_last_error());
        goto done;
    }
    for (size_t i = 0; i < ag_graph_n_nodes(g); i++) {
        if (!ag_backend_supports_node(be, ag_graph_node(g, i))) {
            snprintf(why, wl, "%s does not implement attention (n=%lld) yet", ag_backend_name(be), (long long)n);
            *st = RUN_SKIP;
            goto done;
        }
    }
    if (ag_allocator_alloc_graph(alloc, g) != 0 || ag_tensor_set(tq, q, 0, qcnt * 4) != 0 ||
        ag_tensor_set(tk, k, 0, cnt * 4) != 0 || ag_tensor_set(tv, vv, 0, cnt * 4) != 0) {
        snprintf(why, wl, "setup: %s", ag_last_error());
        goto done;
    }
    double t0 = seconds_now();
    if (ag_backend_compute(be, g) != 0) {
        snprintf(why, wl, "compute: %s", ag_last_error());
        goto done;
    }
    *seconds = seconds_now() - t0;
    if (ag_tensor_get(out, o, 0, qcnt * 4) != 0) {
        snprintf(why, wl, "read: %s", ag_last_error());
        goto done;
    }
    double max_abs = 0, max_ratio = 0;
    const bool all_rows = samples >= nq;
    for (int r = 0; r < (all_rows ? (int)nq : samples); r++) {
        /* every row when there are few, else the first and last and some spread pseudo-randomly */
        int64_t i = all_rows ? r : r == 0 ? 0 : r == 1 ? nq - 1 : (int64_t)(splitmix(&seed) % (uint64_t)nq);
        ref_row(q, k, vv, n, d, scale, i, s, ref);
        for (int64_t c = 0; c < d; c++) {
            double got = o[i * d + c], err = fabs(got - ref[c]), lim = atol + rtol * fabs(ref[c]);
            if (!isfinite(got))
                err = INFINITY;
            if (err > max_abs)
                max_abs = err;
            if (err / lim > max_ratio)
                max_ratio = err / lim;
            if (!(err <= lim)) {
                snprintf(why, wl, "row %lld col %lld: got %.9g expect %.9g (err %.3g = %.3g x tol)", (long long)i,
                         (long long)c, got, ref[c], err, err / lim);
                goto done;
            }
        }
    }
    *v = malloc(qcnt * sizeof **v);
    if (!*v) {
        snprintf(why, wl, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < qcnt; i++)
        (*v)[i] = o[i];
    *n_out = (int64_t)qcnt;
    ne[0] = d;
    ne[1] = 1;
    ne[2] = nq;
    ne[3] = 1;
    snprintf(why, wl, "max_err %.2g = %.2g tol over %d %s rows, %.1fs", max_abs, max_ratio,
             all_rows ? (int)nq : samples, all_rows ? "(all)" : "sampled", *seconds);
    *st = RUN_OK;
done:
    ag_graph_free(g);
    ag_ctx_free(ctx);
    free(q);
    free(k);
    free(vv);
    free(o);
    free(s);
    free(ref);
}
