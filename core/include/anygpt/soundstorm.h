/* anygpt core: SoundStorm (AnyGPT's speech de-tokenizer front end): a conformer masked LM that
 * predicts SpeechTokenizer RVQ levels 2..8 from the level-1 (semantic) tokens, optionally
 * conditioned on a voice prompt's 8-level codes. Model file: anygpt-convert soundstorm
 * (GGUF architecture "soundstorm", hyper-parameters as KVs "soundstorm.*").
 *
 * Decoding follows AnyGPT's SoundStorm.generate exactly (specs/audio.md C): level 2 in
 * steps + 1 passes with the cosine mask schedule (mask counts computed in float32 as PyTorch
 * does), confidence re-masking ranked over all positions of all levels, prompt frames never
 * re-masked; levels 3..8 one greedy pass each, writing every frame. Top-k keeps
 * ceil(0.3 * codebook_size) logits before sampling (AnyGPT's topk_pres 0.7).
 *
 * Sampling noise (the only randomness): draw i (0, 1, 2, ... over the whole generation) is
 * splitmix64 of seed + (i + 1) * 0x9E3779B97F4A7C15, u = (z >> 40) * 2^-24, Gumbel noise
 * -log(-log(u + 1e-10) + 1e-10); one draw per logit (position-major, level, then token) in each
 * pass whose temperature (pass / steps) is above 0. Same seed, same codes. */
#ifndef ANYGPT_SOUNDSTORM_H
#define ANYGPT_SOUNDSTORM_H

#include "anygpt/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_soundstorm ag_soundstorm;

typedef struct {
    int32_t dim, depth, heads, dim_head, ff_dim, conv_dim, conv_kernel;
    int32_t codebook_size;  /* K; the mask token is K */
    int32_t n_q;            /* acoustic levels predicted (7: RVQ 2..8) */
    int32_t semantic_vocab; /* RVQ-1 tokens accepted as condition */
} ag_soundstorm_info;

/* Frames (prompt + target) one call accepts. */
#define AG_SOUNDSTORM_MAX_FRAMES 16384

ag_soundstorm *ag_soundstorm_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user);
void ag_soundstorm_free(ag_soundstorm *m);
const ag_soundstorm_info *ag_soundstorm_info_of(const ag_soundstorm *m);

/* One pass of the network. tokens [n][n_q] (0..K, K = masked), cond [n] semantic ids ->
 * logits [n][n_q][K]. */
int ag_soundstorm_forward(ag_soundstorm *m, const int32_t *tokens, const int32_t *cond, int64_t n, float *logits);

/* semantic [t] (RVQ-1 codes), prompt [tp][n_q + 1] (a voice prompt's codes, all levels; NULL
 * with tp 0 for none), steps >= 1 (AnyGPT: 3) -> out [t][n_q + 1] (level 1 = semantic).
 * greedy: AnyGPT's greedy=True (argmax except the level-2 passes 1..steps-1, which sample at
 * temperature pass/steps); false also samples level 2's last pass at temperature 1. */
int ag_soundstorm_generate(ag_soundstorm *m, const int32_t *semantic, int64_t t, const int32_t *prompt, int64_t tp,
                           int steps, uint64_t seed, bool greedy, int32_t *out);

/* Where the last ag_soundstorm_generate spent its time (for benchmarks): network passes (their
 * total and the fastest one) and the host-side decoding between them (top-k, sampling,
 * re-masking; spread over the processors). */
typedef struct {
    int passes;
    double network_s, fastest_pass_s, host_s;
} ag_soundstorm_timing;
void ag_soundstorm_last_timing(const ag_soundstorm *m, ag_soundstorm_timing *t);

/* Tokens masked before pass i (0..steps) of n frames: trunc(cos(linspace(0,1,steps+1)[i] *
 * pi / 2) * n), in float32 like the reference. */
int64_t ag_soundstorm_mask_count(int steps, int i, int64_t n);

/* ---- streaming: an utterance generated chunk by chunk as its semantic tokens arrive ----
 * Every chunk of `chunk` frames (the last one of an item may be shorter) is one
 * ag_soundstorm_generate call whose prompt is the previous chunk of the same item (all levels:
 * the acoustic tokens just generated, so the voice and the levels carry across the edge); the
 * first chunk of an item takes the voice prompt given here (or none). Chunk c (0, 1, ...) of an
 * item uses the seed `seed` for c = 0, else seed + c * 0xD1B54A32D192ED03: the same seed and
 * tokens give the same codes, and an item of at most `chunk` frames gives exactly what
 * ag_soundstorm_generate gives for it. */
typedef struct ag_soundstorm_stream ag_soundstorm_stream;

/* chunk 1..AG_SOUNDSTORM_MAX_FRAMES / 2; prompt [tp][n_q + 1] is copied (tp + chunk must fit a
 * call). NULL with the error set on bad arguments. */
ag_soundstorm_stream *ag_soundstorm_stream_new(ag_soundstorm *m, int64_t chunk, const int32_t *prompt, int64_t tp,
                                               int steps, uint64_t seed, bool greedy);
void ag_soundstorm_stream_free(ag_soundstorm_stream *s);
/* Append n semantic tokens of the current item (checked: 0..semantic_vocab - 1). */
int ag_soundstorm_stream_push(ag_soundstorm_stream *s, const int32_t *semantic, int64_t n);
/* Generate the next chunk into out [chunk][n_q + 1] when `chunk` frames are pending, or with
 * end the rest of the item (then the next push starts a new item, back on the voice prompt).
 * Returns the frames written (0: not enough pending yet), -1 with the error set. */
int64_t ag_soundstorm_stream_next(ag_soundstorm_stream *s, bool end, int32_t *out);
/* Frames pushed and not generated yet. */
int64_t ag_soundstorm_stream_pending(const ag_soundstorm_stream *s);
/* Drop the current item (pending frames and the previous-chunk prompt): a flush. */
void ag_soundstorm_stream_reset(ag_soundstorm_stream *s);

#ifdef __cplusplus
}
#endif
#endif
