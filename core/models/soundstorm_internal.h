/* SoundStorm internals shared by the network (soundstorm.c) and the decoder (soundstorm_decode.c). */
#ifndef AG_MODELS_SOUNDSTORM_INTERNAL_H
#define AG_MODELS_SOUNDSTORM_INTERNAL_H
#include "anygpt/soundstorm.h"

/* One pass on a validated grid: tokens [n][n_q], cond [n] -> raw logits [n_q][n][K] (the
 * graph's layout); scratch holds n * n_q ints. */
int ss_run(ag_soundstorm *m, const int32_t *tokens, const int32_t *cond, int64_t n, int32_t *scratch, float *raw);
/* 0 when 1 <= n <= AG_SOUNDSTORM_MAX_FRAMES, else -1 with the error set. */
int ss_check_len(int64_t n);
/* Every v[i * stride] (i < n) in 0..hi, else -1 with an error naming what and the frame. */
int ss_check_ids(const int32_t *v, int64_t n, int64_t stride, int32_t hi, const char *what);
/* A voice prompt of tp frames, each (semantic, n_q acoustic codes), all in range; tp == 0 with a
 * null prompt is valid (no pointer arithmetic on it). 0, else -1 with the error set. */
int ss_check_prompt(const ag_soundstorm_info *in, const int32_t *prompt, int64_t tp);
/* where ag_soundstorm_generate records its timing */
ag_soundstorm_timing *ss_timing(ag_soundstorm *m);
#endif
