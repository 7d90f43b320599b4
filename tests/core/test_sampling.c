/* Sampler against closed forms: HF's repetition-penalty rule, min-new-tokens, the exact
 * top-k/top-p/temperature distribution of small hand-computed cases, seeding. */
#include "anygpt/sampling.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/ag_check.h"

/* Draw N samples and compare frequencies with expected probabilities (5 sigma). */
static void check_distribution(const char *what, const float *logits, int n, ag_sampling_params p,
                               const double *expect)
{
    enum { N = 200000 };
    ag_sampler *s = ag_sampler_new(1234);
    int counts[16] = {0};
    float work[16];
    for (int i = 0; i < N; i++) {
        memcpy(work, logits, (size_t)n * sizeof *work);
        int32_t id = ag_sampler_sample(s, &p, work, n, NULL, 0, 100, NULL, 0);
        if (id >= 0 && id < n)
            counts[id]++;
    }
    for (int i = 0; i < n; i++) {
        double f = (double)counts[i] / N, sigma = sqrt(expect[i] * (1 - expect[i]) / N);
        if (expect[i] == 0)
            CHECK(counts[i] == 0, "%s: id %d drawn %d times, expected never", what, i, counts[i]);
        else
            CHECK(fabs(f - expect[i]) < 5 * sigma + 1e-9, "%s: id %d frequency %.4f, expected %.4f", what, i, f,
                  expect[i]);
    }
    ag_sampler_free(s);
}

int main(void)
{
    ag_sampler *s = ag_sampler_new(42);
    const ag_sampling_params greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};

    { /* greedy = argmax, first index on ties */
        float l[5] = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
        CHECK(ag_sampler_sample(s, &greedy, l, 5, NULL, 0, 0, NULL, 0) == 1, "greedy picks first maximum");
        ag_sampling_params k1 = {.temperature = 1, .top_k = 1, .top_p = 1, .repetition_penalty = 1};
        float l2[5] = {0.1f, 2.0f, -1.0f, 3.0f, 1.9f};
        CHECK(ag_sampler_sample(s, &k1, l2, 5, NULL, 0, 0, NULL, 0) == 3, "top_k 1 is greedy");
    }
    { /* repetition penalty: positive logits divided, negative multiplied, each id once */
        float l[4] = {2.0f, -2.0f, 1.0f, 0.5f};
        const int32_t hist[] = {0, 1, 0, 0};
        ag_sampling_params p = greedy;
        p.repetition_penalty = 2.0f;
        int32_t id = ag_sampler_sample(s, &p, l, 4, hist, 4, 0, NULL, 0);
        CHECK(l[0] == 1.0f && l[1] == -4.0f && l[2] == 1.0f && l[3] == 0.5f,
              "penalised logits [%g %g %g %g], expected [1 -4 1 0.5]", l[0], l[1], l[2], l[3]);
        CHECK(id == 0, "greedy after penalty: %d (tie 1.0/1.0 goes to the lower id)", id);
    }
    { /* min_new_tokens forbids the end ids until reached */
        const int32_t end[] = {2};
        ag_sampling_params p = greedy;
        p.min_new_tokens = 10;
        float l[3] = {0.0f, 1.0f, 5.0f};
        CHECK(ag_sampler_sample(s, &p, l, 3, NULL, 0, 9, end, 1) == 1, "end id blocked at 9 of 10");
        float l2[3] = {0.0f, 1.0f, 5.0f};
        CHECK(ag_sampler_sample(s, &p, l2, 3, NULL, 0, 10, end, 1) == 2, "end id allowed at 10");
    }
    { /* top-k 3 then top-p 0.8 at T=1: e^3, e^2, e^1 -> 0.6652, 0.2447, 0.0900; cumulative reaches
       * 0.8 at the second, so {0, 1} renormalised: e^3/(e^3+e^2) = 0.7311 */
        const float l[5] = {3.0f, 2.0f, 1.0f, 0.5f, -1.0f};
        ag_sampling_params p = {.temperature = 1, .top_k = 3, .top_p = 0.8f, .repetition_penalty = 1};
        const double e = 1.0 / (1.0 + exp(-1.0));
        check_distribution("top-k 3, top-p 0.8", l, 5, p, (const double[]){e, 1 - e, 0, 0, 0});
        /* temperature 0.5 doubles the logit gaps; top-k 2 */
        p = (ag_sampling_params){.temperature = 0.5f, .top_k = 2, .top_p = 1, .repetition_penalty = 1};
        const double e2 = 1.0 / (1.0 + exp(-2.0));
        check_distribution("T 0.5, top-k 2", l, 5, p, (const double[]){e2, 1 - e2, 0, 0, 0});
        /* plain softmax */
        p = (ag_sampling_params){.temperature = 1, .top_p = 1, .repetition_penalty = 1};
        double z = 0, q[5];
        for (int i = 0; i < 5; i++)
            z += exp(l[i]);
        for (int i = 0; i < 5; i++)
            q[i] = exp(l[i]) / z;
        check_distribution("softmax", l, 5, p, q);
        /* ties at the k-th value are all kept (HF compares with the k-th largest) */
        const float t[4] = {1.0f, 1.0f, 1.0f, 0.0f};
        p = (ag_sampling_params){.temperature = 1, .top_k = 2, .top_p = 1, .repetition_penalty = 1};
        check_distribution("top-k ties", t, 4, p, (const double[]){1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
    }
    { /* seeding: same seed, same draws; another seed, other draws */
        ag_sampler *a = ag_sampler_new(7), *b = ag_sampler_new(7), *c = ag_sampler_new(8);
        int same = 1, differ = 0;
        for (int i = 0; i < 100; i++) {
            double x = ag_sampler_uniform(a), y = ag_sampler_uniform(b), z = ag_sampler_uniform(c);
            same &= x == y;
            differ |= x != z;
            CHECK(x >= 0 && x < 1, "uniform in [0,1): %g", x);
        }
        CHECK(same, "same seed gives the same sequence");
        CHECK(differ, "another seed gives another sequence");
        ag_sampler_free(a);
        ag_sampler_free(b);
        ag_sampler_free(c);
    }
    { /* bad arguments are errors, not crashes */
        float l[2] = {0, 1};
        ag_sampling_params p = greedy;
        p.repetition_penalty = 0;
        CHECK(ag_sampler_sample(s, &p, l, 2, (const int32_t[]){0}, 1, 0, NULL, 0) == -1, "penalty 0 rejected");
        CHECK(ag_sampler_sample(s, &greedy, l, 0, NULL, 0, 0, NULL, 0) == -1, "empty vocabulary rejected");
    }
    ag_sampler_free(s);
    return t_finish();
}
