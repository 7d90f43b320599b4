/* Token sampling: HF generate()'s processor order with a seeded xoshiro256** generator. */
#include "anygpt/sampling.h"
#include "anygpt/error.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float logit;
    int32_t id;
} cand;

struct ag_sampler {
    uint64_t s[4];
    /* scratch reused across calls */
    cand *c;
    float *prob;
    uint32_t *stamp; /* per id: call number that last penalised it */
    uint32_t call;
    int32_t cap;
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(ag_sampler *s)
{
    uint64_t *q = s->s;
    const uint64_t r = rotl(q[1] * 5, 7) * 9, t = q[1] << 17;
    q[2] ^= q[0];
    q[3] ^= q[1];
    q[1] ^= q[2];
    q[0] ^= q[3];
    q[2] ^= t;
    q[3] = rotl(q[3], 45);
    return r;
}

void ag_sampler_seed(ag_sampler *s, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        s->s[i] = splitmix64(&seed);
}

ag_sampler *ag_sampler_new(uint64_t seed)
{
    ag_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        ag_set_error("out of memory");
        return NULL;
    }
    ag_sampler_seed(s, seed);
    return s;
}

void ag_sampler_free(ag_sampler *s)
{
    if (!s)
        return;
    free(s->c);
    free(s->prob);
    free(s->stamp);
    free(s);
}

double ag_sampler_uniform(ag_sampler *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

int32_t ag_argmax_f32(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id - y->id; /* ties: lower id first */
}

static int reserve(ag_sampler *s, int32_t n_vocab)
{
    if (s->cap >= n_vocab)
        return 0;
    cand *nc = realloc(s->c, (size_t)n_vocab * sizeof *nc);
    if (nc)
        s->c = nc;
    float *np = realloc(s->prob, (size_t)n_vocab * sizeof *np);
    if (np)
        s->prob = np;
    uint32_t *ns = calloc((size_t)n_vocab, sizeof *ns);
    if (!nc || !np || !ns) {
        free(ns);
        ag_set_error("out of memory");
        return -1;
    }
    free(s->stamp);
    s->stamp = ns;
    s->call = 0;
    s->cap = n_vocab;
    return 0;
}

int32_t ag_sampler_sample(ag_sampler *s, const ag_sampling_params *p, float *logits, int32_t n_vocab,
                          const int32_t *history, size_t n_history, int32_t n_generated, const int32_t *end_ids,
                          size_t n_end)
{
    if (!s || !p || !logits || n_vocab <= 0) {
        ag_set_error("sampler: invalid arguments");
        return -1;
    }
    if (p->repetition_penalty != 1.0f) {
        if (!(p->repetition_penalty > 0)) {
            ag_set_error("sampler: repetition penalty must be > 0 (got %g)", (double)p->repetition_penalty);
            return -1;
        }
        if (reserve(s, n_vocab) != 0)
            return -1;
        if (++s->call == 0) { /* wrapped: clear the stamps */
            memset(s->stamp, 0, (size_t)s->cap * sizeof *s->stamp);
            s->call = 1;
        }
        /* each id once, whatever its count (HF gathers then scatters) */
        for (size_t i = 0; i < n_history; i++) {
            const int32_t id = history[i];
            if (id < 0 || id >= n_vocab || s->stamp[id] == s->call)
                continue;
            s->stamp[id] = s->call;
            logits[id] = logits[id] > 0 ? logits[id] / p->repetition_penalty : logits[id] * p->repetition_penalty;
        }
    }
    if (n_generated < p->min_new_tokens)
        for (size_t i = 0; i < n_end; i++)
            if (end_ids[i] >= 0 && end_ids[i] < n_vocab)
                logits[end_ids[i]] = -INFINITY;
    if (p->temperature <= 0 || p->top_k == 1)
        return ag_argmax_f32(logits, n_vocab);

    if (reserve(s, n_vocab) != 0)
        return -1;
    const float inv_t = 1.0f / p->temperature;
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > -INFINITY)
            s->c[n++] = (cand){logits[i] * inv_t, i};
    if (n == 0)
        return ag_argmax_f32(logits, n_vocab);
    qsort(s->c, (size_t)n, sizeof *s->c, by_logit_desc);
    if (p->top_k > 0 && p->top_k < n) {
        /* HF keeps every logit >= the k-th largest, so ties at the boundary stay */
        const float kth = s->c[p->top_k - 1].logit;
        int32_t k = p->top_k;
        while (k < n && s->c[k].logit >= kth)
            k++;
        n = k;
    }
    const float maxl = s->c[0].logit;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        s->prob[i] = expf(s->c[i].logit - maxl);
        sum += s->prob[i];
    }
    if (p->top_p < 1.0f) {
        /* smallest prefix whose mass reaches top_p (HF drops tokens whose ascending cumulative
         * mass is <= 1 - top_p, i.e. keeps this prefix), at least one token */
        double cum = 0;
        int32_t keep = n;
        for (int32_t i = 0; i < n; i++) {
            cum += s->prob[i] / sum;
            if (cum >= (double)p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (int32_t i = 0; i < n; i++)
            sum += s->prob[i];
    }
    double u = ag_sampler_uniform(s) * sum;
    for (int32_t i = 0; i < n; i++) {
        u -= s->prob[i];
        if (u < 0)
            return s->c[i].id;
    }
    return s->c[n - 1].id;
}
