/* DDIMScheduler.step (diffusers) with eta 0, in float32 with the roundings of its tensor ops:
 * with a = abar_t, ap = abar_prev (final_alpha_cumprod below step 0), b = 1 - a:
 *   epsilon      x0 = (x - sqrt(b) e) / sqrt(a),  eps = e
 *   sample       x0 = e,                          eps = (x - sqrt(a) x0) / sqrt(b)
 *   v_prediction x0 = sqrt(a) x - sqrt(b) e,      eps = sqrt(a) e + sqrt(b) x
 *   x0 clamped to +-clip_sample_range when clip_sample; the variance term is 0 * sqrt(var)
 *   (eta 0), so prev = sqrt(ap) x0 + sqrt(1 - ap - 0) eps.
 * (diffusers before ~0.15 used the model output itself as eps for sample prediction; this is
 * the current behaviour.) Compiled without FP contraction (C17). */
#include <math.h>

#include "unclip_sched_internal.h"

int ag_sched_step_ddim(ag_sched *s, const float *mo, const float *x, float *prev)
{
    const int32_t i = s->counter;
    const float a = s->ac[s->t_idx[i]];
    const float ap = s->prev_idx[i] >= 0 ? s->ac[s->prev_idx[i]] : s->final_ac;
    const float b = 1.0f - a, bp = 1.0f - ap;
    const float sa = sqrtf(a), sb = sqrtf(b);
    const float variance = (bp / b) * (1.0f - a / ap);
    const float std_dev = 0.0f * sqrtf(variance);
    const float dir_coef = sqrtf(1.0f - ap - std_dev * std_dev);
    const float sap = sqrtf(ap);
    const float lim = s->cfg.clip_sample_range;
    const ag_pred_kind pred = s->cfg.prediction;
    for (size_t j = 0; j < s->n; j++) {
        float x0, eps;
        if (pred == AG_PRED_EPSILON) {
            x0 = (x[j] - sb * mo[j]) / sa;
            eps = mo[j];
        } else if (pred == AG_PRED_SAMPLE) {
            x0 = mo[j];
            eps = (x[j] - sa * x0) / sb;
        } else {
            x0 = sa * x[j] - sb * mo[j];
            eps = sa * mo[j] + sb * x[j];
        }
        if (s->cfg.clip_sample) /* torch.clamp: NaN stays NaN */
            x0 = x0 < -lim ? -lim : x0 > lim ? lim : x0;
        prev[j] = sap * x0 + dir_coef * eps;
    }
    return 0;
}
