/* PNDMScheduler.step (diffusers) in float32, one element at a time with the roundings of the
 * tensor expressions it evaluates (every tensor op rounds to float32; the Python number factors
 * become float32 scalars: 1/6, 1/3, 1/24; the divisions by 2 and 12 are true divisions).
 *
 * PLMS (skip_prk_steps, or after the Runge-Kutta warm-up), evaluation c with output e:
 *   c == 0: keep e and the sample; step with e.
 *   c == 1: step from the kept sample with (e + e0) / 2 (from t + ratio to t); e is NOT kept,
 *           so the history continues e0, e2, e3, ...
 *   then, with the kept outputs (newest last): AB2 (3 e_1 - e_0) / 2,
 *           AB3 (23 e_2 - 16 e_1 + 5 e_0) / 12, AB4 (1/24) (55 e_3 - 59 e_2 + 37 e_1 - 9 e_0).
 * PRK (12 evaluations, groups of 4 from the group's first timestep and sample): the first of a
 *   group is kept in the history; the group's outputs are combined as 1/6, 1/3, 1/3, 1/6.
 * _get_prev_sample (formula 9 of the PNDM paper): with a = abar_t, ap = abar_prev:
 *   v_prediction first becomes eps = sqrt(a) v + sqrt(1 - a) x, then
 *   prev = sqrt(ap / a) x - (ap - a) eps / (a sqrt(1 - ap) + sqrt(a (1 - a) ap)).
 * Compiled without FP contraction (C17): each expression rounds like the tensor op. */
#include <math.h>
#include <string.h>

#include "unclip_sched_internal.h"

typedef struct {
    float sa, sb, coef, diff, denom;
    int v_pred;
} prev_coefs;

/* the 0-dim float32 tensor arithmetic of _get_prev_sample */
static prev_coefs coefs(const ag_sched *s, int32_t i)
{
    const float a = s->ac[s->t_idx[i]];
    const float ap = s->prev_idx[i] >= 0 ? s->ac[s->prev_idx[i]] : s->final_ac;
    const float b = 1.0f - a, bp = 1.0f - ap;
    prev_coefs k;
    k.sa = sqrtf(a);
    k.sb = sqrtf(b);
    k.coef = sqrtf(ap / a);
    k.denom = a * sqrtf(bp) + sqrtf(a * b * ap);
    k.diff = ap - a;
    k.v_pred = s->cfg.prediction == AG_PRED_V;
    return k;
}

static float prev_sample(const prev_coefs *k, float x, float e)
{
    if (k->v_pred)
        e = k->sa * e + k->sb * x;
    return k->coef * x - k->diff * e / k->denom;
}

/* append a copy of e to the history, keeping the newest four */
static void keep_output(ag_sched *s, const float *e)
{
    if (s->n_ets == 4) {
        float *oldest = s->ets[0];
        memmove(&s->ets[0], &s->ets[1], 3 * sizeof(float *));
        s->ets[3] = oldest;
        s->n_ets = 3;
    }
    memcpy(s->ets[s->n_ets++], e, s->n * sizeof(float));
}

static int step_prk(ag_sched *s, const float *mo, const float *x, float *prev)
{
    const int32_t c = s->counter;
    const prev_coefs k = coefs(s, c);
    const float sixth = (float)(1.0 / 6.0), third = (float)(1.0 / 3.0);
    if (c % 4 == 0) {
        keep_output(s, mo);
        memcpy(s->cur_sample, x, s->n * sizeof(float));
        for (size_t j = 0; j < s->n; j++)
            s->acc[j] = sixth * mo[j] + 0.0f; /* the Python int 0 plus a tensor: -0 becomes +0 */
    }
    for (size_t j = 0; j < s->n; j++) {
        float e = mo[j];
        if (c % 4 == 1 || c % 4 == 2)
            s->acc[j] = s->acc[j] + third * e;
        else if (c % 4 == 3)
            e = s->acc[j] + sixth * e;
        prev[j] = prev_sample(&k, s->cur_sample[j], e);
    }
    return 0;
}

static int step_plms(ag_sched *s, const float *mo, const float *x, float *prev)
{
    const int32_t c = s->counter;
    const prev_coefs k = coefs(s, c);
    const bool second = c == 1 && s->n_prk == 0;
    if (!second)
        keep_output(s, mo);
    if (c == 0) {
        memcpy(s->cur_sample, x, s->n * sizeof(float));
        for (size_t j = 0; j < s->n; j++)
            prev[j] = prev_sample(&k, s->cur_sample[j], mo[j]);
        return 0;
    }
    if (second) { /* from the kept sample, with the mean of this and the kept output */
        for (size_t j = 0; j < s->n; j++)
            prev[j] = prev_sample(&k, s->cur_sample[j], (mo[j] + s->ets[0][j]) / 2.0f);
        return 0;
    }
    const float *const *e = (const float *const *)s->ets;
    const float inv24 = (float)(1.0 / 24.0);
    for (size_t j = 0; j < s->n; j++) {
        float m;
        switch (s->n_ets) {
        case 2:
            m = (3.0f * e[1][j] - e[0][j]) / 2.0f;
            break;
        case 3:
            m = (23.0f * e[2][j] - 16.0f * e[1][j] + 5.0f * e[0][j]) / 12.0f;
            break;
        default:
            m = inv24 * (55.0f * e[3][j] - 59.0f * e[2][j] + 37.0f * e[1][j] - 9.0f * e[0][j]);
            break;
        }
        prev[j] = prev_sample(&k, x[j], m);
    }
    return 0;
}

int ag_sched_step_pndm(ag_sched *s, const float *model_output, const float *sample, float *prev)
{
    return s->counter < s->n_prk ? step_prk(s, model_output, sample, prev) : step_plms(s, model_output, sample, prev);
}
