/* anygpt core: choosing the next token from logits.
 *
 * Order as in Hugging Face generate(), so the reference's configs mean the same here:
 * repetition penalty (over the history given) -> min-new-tokens (end ids forbidden until then)
 * -> temperature -> top-k -> top-p -> draw. temperature <= 0 means greedy (argmax after the
 * penalty and the min-new-tokens rule). The generator is seeded: same seed, same tokens. */
#ifndef ANYGPT_SAMPLING_H
#define ANYGPT_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_sampling_params {
    float temperature;        /* <= 0: greedy */
    int32_t top_k;            /* <= 0: off */
    float top_p;              /* >= 1: off */
    float repetition_penalty; /* 1: off; logit > 0 ? logit / p : logit * p for ids in the history */
    int32_t min_new_tokens;   /* end ids are forbidden while fewer tokens were generated */
} ag_sampling_params;

typedef struct ag_sampler ag_sampler;

ag_sampler *ag_sampler_new(uint64_t seed);
void ag_sampler_free(ag_sampler *s);
void ag_sampler_seed(ag_sampler *s, uint64_t seed);
/* A uniform double in [0, 1) from the sampler's generator (exposed for tests). */
double ag_sampler_uniform(ag_sampler *s);

/* logits (n_vocab, modified in place) -> token id, or -1 with ag_last_error() on bad arguments.
 * history: ids the repetition penalty applies to (prompt and generated so far, as HF does);
 * n_generated: tokens generated in this reply so far; end_ids: ids forbidden before
 * min_new_tokens. */
int32_t ag_sampler_sample(ag_sampler *s, const ag_sampling_params *p, float *logits, int32_t n_vocab,
                          const int32_t *history, size_t n_history, int32_t n_generated, const int32_t *end_ids,
                          size_t n_end);

/* The greedy choice (first index of the maximum). */
int32_t ag_argmax_f32(const float *x, int32_t n);

#ifdef __cplusplus
}
#endif
#endif
