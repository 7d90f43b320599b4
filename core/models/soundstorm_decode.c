/* AnyGPT's SoundStorm decoding on the host (spec audio.md C): the cosine mask schedule, top-k,
 * seeded Gumbel sampling, confidence re-masking over all positions, one greedy pass per upper
 * level. The network itself is soundstorm.c. */
#include "anygpt/error.h"
#include "anygpt/soundstorm.h"
#include "soundstorm_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* host-side picking runs on up to this many threads, when a pass has this many logits */
#define PICK_MAX_THREADS 8
#define PICK_MIN_LOGITS (1 << 18)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t ag_soundstorm_mask_count(int steps, int i, int64_t n)
{
    if (steps < 1 || i < 0 || i > steps)
        return 0;
    /* torch.linspace(0, 1, steps + 1) in float32: the second half counts down from the end */
    const int pts = steps + 1;
    const float step = 1.0f / (float)steps;
    const float t = i < pts / 2 ? step * (float)i : 1.0f - step * (float)(pts - 1 - i);
    /* the float32 angle, its cosine rounded once (as PyTorch's kernel gives for steps <= 8) */
    const float c = (float)cos((double)(t * (float)M_PI / 2.0f));
    const float v = c * (float)n;
    return v > 0.0f ? (int64_t)v : 0;
}

/* ---- decoding (host side) ---- */

typedef struct {
    uint64_t seed, i;
} ss_rng;

/* splitmix64 of draw i (see soundstorm.h), as a 24-bit uniform in [0, 1): a pure function of
 * (seed, i), so rows can be picked in parallel, each knowing its draws' indices */
static float rng_uniform_at(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* The value at index k (0-based) of a sorted descending, by quickselect (a[] is reordered): the
 * same value a full sort gives, in O(n) instead of O(n log n) per row. Comparisons only, so a NaN
 * cannot make the loops run past the bounds. */
static float kth_largest(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot)
                i++;
            while (a[j] < pivot)
                j--;
            if (i <= j) {
                const float t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* keep[] = the k largest of l[0..K) (ties at the k-th value to the lower index), like topk. */
static void top_k(const float *l, int64_t K, int64_t k, float *sorted, unsigned char *keep)
{
    memcpy(sorted, l, (size_t)K * sizeof *sorted);
    const float kth = kth_largest(sorted, K, k - 1);
    int64_t above = 0;
    for (int64_t j = 0; j < K; j++)
        above += l[j] > kth;
    int64_t ties = k - above;
    for (int64_t j = 0; j < K; j++) {
        keep[j] = l[j] > kth || (l[j] == kth && ties > 0);
        if (l[j] == kth && ties > 0)
            ties--;
    }
}

typedef struct {
    float s;
    int32_t i;
} ss_score;

static int cmp_score(const void *a, const void *b)
{
    const ss_score *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

typedef struct {
    float *logits, *sorted, *score; /* logits in the graph's [n_q][n][K] layout; sorted, keep: K per thread */
    unsigned char *keep;
    int32_t *ids, *scratch;
    ss_score *order;
    int nth;
} ss_work;

typedef struct {
    const ss_work *w;
    int64_t n, nq, K, r0, r1;
    bool filtered, want_score;
    float temp;
    uint64_t seed, i0; /* draw (r, j) is i0 + r * K + j + 1 */
    float *sorted;
    unsigned char *keep;
} pick_job;

/* Rows [r0, r1): a token per row: argmax, or top-k then (temp > 0) Gumbel sampling; with
 * want_score the reference's confidence score 1 - softmax(top-k logits)[pick]. */
static void pick_rows(const pick_job *jb)
{
    const ss_work *w = jb->w;
    const int64_t K = jb->K, nq = jb->nq, n = jb->n, k = (int64_t)ceil((1.0 - 0.7) * (double)K);
    const float temp = jb->temp;
    for (int64_t r = jb->r0; r < jb->r1; r++) { /* row r = frame * nq + level, as the grid */
        const float *l = w->logits + ((r % nq) * n + r / nq) * K;
        unsigned char *keep = jb->keep;
        if (jb->filtered)
            top_k(l, K, k, jb->sorted, keep);
        else
            memset(keep, 1, (size_t)K);
        int64_t best = -1;
        float bv = -INFINITY;
        for (int64_t j = 0; j < K; j++) {
            float v = l[j];
            if (temp > 0.0f) {
                const float u = rng_uniform_at(jb->seed, jb->i0 + (uint64_t)(r * K + j) + 1);
                v = v / temp - logf(-logf(u + 1e-10f) + 1e-10f);
            }
            if (keep[j] && (best < 0 || v > bv)) {
                best = j;
                bv = v;
            }
        }
        w->ids[r] = (int32_t)best;
        if (!jb->want_score)
            continue;
        float mx = -INFINITY;
        for (int64_t j = 0; j < K; j++)
            if (keep[j] && l[j] > mx)
                mx = l[j];
        float sum = 0.0f;
        for (int64_t j = 0; j < K; j++)
            if (keep[j])
                sum += expf(l[j] - mx);
        w->score[r] = 1.0f - expf(l[best] - mx) / sum;
    }
}

static void *pick_thread(void *a)
{
    pick_rows(a);
    return NULL;
}

/* All n * nq rows, split over the work's threads (the network's own threads are idle now: the
 * host part of a pass used to run on one core while the others waited). */
static void pick(ag_soundstorm *m, ss_work *w, int64_t n, bool filtered, float temp, bool want_score, ss_rng *rng)
{
    const int64_t K = ag_soundstorm_info_of(m)->codebook_size, nq = ag_soundstorm_info_of(m)->n_q, rows = n * nq;
    int nth = rows * K >= PICK_MIN_LOGITS ? w->nth : 1;
    pick_job jobs[PICK_MAX_THREADS];
    pthread_t th[PICK_MAX_THREADS];
    bool started[PICK_MAX_THREADS] = {false};
    for (int t = 0; t < nth; t++)
        jobs[t] = (pick_job){w, n, nq, K, rows * t / nth, rows * (t + 1) / nth, filtered, want_score, temp,
                             rng->seed, rng->i, w->sorted + t * K, w->keep + t * K};
    for (int t = 1; t < nth; t++)
        started[t] = pthread_create(&th[t], NULL, pick_thread, &jobs[t]) == 0;
    pick_rows(&jobs[0]);
    for (int t = 1; t < nth; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            pick_rows(&jobs[t]); /* no thread: this one does it */
    }
    if (temp > 0.0f)
        rng->i += (uint64_t)(rows * K);
}

static void work_free(ss_work *w)
{
    free(w->logits);
    free(w->sorted);
    free(w->score);
    free(w->keep);
    free(w->ids);
    free(w->scratch);
    free(w->order);
}

int ag_soundstorm_generate(ag_soundstorm *m, const int32_t *semantic, int64_t t, const int32_t *prompt, int64_t tp,
                           int steps, uint64_t seed, bool greedy, int32_t *out)
{
    const ag_soundstorm_info *in = ag_soundstorm_info_of(m);
    const int64_t nq = in->n_q, K = in->codebook_size, L = nq + 1, n = t + tp;
    if (!semantic || !out || t < 1 || tp < 0 || (tp > 0 && !prompt) || ss_check_len(n) != 0) {
        ag_set_error("soundstorm: bad arguments (%lld target frames, %lld prompt frames)", (long long)t,
                     (long long)tp);
        return -1;
    }
    if (steps < 1 || steps > 1000) {
        ag_set_error("soundstorm: steps %d outside 1..1000", steps);
        return -1;
    }
    if (ss_check_ids(semantic, t, 1, in->semantic_vocab - 1, "semantic token") != 0 ||
        ss_check_prompt(in, prompt, tp) != 0)
        return -1;
    const int64_t rows = n * nq;
    ss_work w = {0};
    int32_t *grid = malloc((size_t)rows * sizeof *grid), *cond = malloc((size_t)n * sizeof *cond);
    unsigned char *mask = malloc((size_t)rows), *can = malloc((size_t)rows);
    w.logits = malloc((size_t)(rows * K) * sizeof(float));
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    w.nth = cpus < 1 ? 1 : cpus > PICK_MAX_THREADS ? PICK_MAX_THREADS : (int)cpus;
    w.sorted = malloc((size_t)(K * w.nth) * sizeof(float));
    w.keep = malloc((size_t)(K * w.nth));
    w.score = malloc((size_t)rows * sizeof(float));
    w.ids = malloc((size_t)rows * sizeof(int32_t));
    w.scratch = malloc((size_t)rows * sizeof(int32_t));
    w.order = malloc((size_t)rows * sizeof(ss_score));
    int rc = -1;
    if (!grid || !cond || !mask || !can || !w.logits || !w.sorted || !w.keep || !w.score || !w.ids ||
        !w.scratch || !w.order) {
        ag_set_error("out of memory");
        goto out;
    }
    /* prompt: its semantic tokens lead the condition, its acoustic codes fill its frames */
    for (int64_t i = 0; i < n; i++) {
        const bool p = i < tp;
        cond[i] = p ? prompt[i * L] : semantic[i - tp];
        for (int64_t q = 0; q < nq; q++) {
            grid[i * nq + q] = p ? prompt[i * L + 1 + q] : (int32_t)K;
            mask[i * nq + q] = can[i * nq + q] = !p;
        }
    }
    ss_rng rng = {seed, 0};
    ag_soundstorm_timing *tm = ss_timing(m);
    *tm = (ag_soundstorm_timing){0};
    double host_from = 0;
    for (int64_t q = 0; q < nq; q++) {
        const int passes = q == 0 ? steps + 1 : 1;
        for (int i = 0; i < passes; i++) {
            const int64_t count = q == 0 ? ag_soundstorm_mask_count(steps, i, n) : 0;
            const float temp = (float)((double)i / steps);
            const bool argmax_only = greedy && (q > 0 || count == 0);
            const double t0 = now_s();
            if (host_from > 0)
                tm->host_s += t0 - host_from;
            if (ss_run(m, grid, cond, n, w.scratch, w.logits) != 0)
                goto out;
            host_from = now_s();
            tm->network_s += host_from - t0;
            tm->fastest_pass_s = tm->passes++ == 0 || host_from - t0 < tm->fastest_pass_s ? host_from - t0
                                                                                            : tm->fastest_pass_s;
            pick(m, &w, n, !argmax_only, argmax_only ? 0.0f : temp, q == 0 && count > 0, &rng);
            if (q > 0) { /* later levels: overwrite levels >= q of every frame */
                for (int64_t j = 0; j < n; j++)
                    for (int64_t r = q; r < nq; r++)
                        grid[j * nq + r] = w.ids[j * nq + r];
                continue;
            }
            for (int64_t r = 0; r < rows; r++)
                if (mask[r])
                    grid[r] = w.ids[r];
            if (count == 0)
                continue;
            /* re-mask the `count` least confident of ALL positions (every level, the prompt
             * too), then all levels above the first, never the prompt */
            for (int64_t r = 0; r < rows; r++) {
                w.order[r].s = w.score[r];
                w.order[r].i = (int32_t)r;
                mask[r] = 0;
            }
            qsort(w.order, (size_t)rows, sizeof *w.order, cmp_score);
            for (int64_t r = 0; r < count && r < rows; r++)
                mask[w.order[r].i] = 1;
            for (int64_t r = 0; r < rows; r++) {
                mask[r] = (mask[r] || r % nq != 0) && can[r];
                if (mask[r])
                    grid[r] = (int32_t)K;
            }
        }
    }
    tm->host_s += now_s() - host_from;
    for (int64_t i = 0; i < t; i++) {
        out[i * L] = semantic[i];
        for (int64_t q = 0; q < nq; q++)
            out[i * L + 1 + q] = grid[(tp + i) * nq + q];
    }
    rc = 0;
out:
    work_free(&w);
    free(grid);
    free(cond);
    free(mask);
    free(can);
    return rc;
}
