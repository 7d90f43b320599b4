/* The diffusion schedulers' public face: configuration checks, set_timesteps (the alphas_cumprod
 * index pair every evaluation uses, checked once here), step dispatch and DDPM add_noise.
 * The arithmetic lives in unclip_betas.c, unclip_timesteps.c, unclip_pndm.c, unclip_ddim.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anygpt/error.h"
#include "unclip_sched_internal.h"

static int check_config(const ag_sched_config *c)
{
    if (!c) {
        ag_set_error("scheduler: no config");
        return -1;
    }
    if (c->num_train_timesteps < 1 || c->num_train_timesteps > AG_SCHED_MAX_TRAIN) {
        ag_set_error("scheduler: num_train_timesteps %d outside 1..%d", c->num_train_timesteps, AG_SCHED_MAX_TRAIN);
        return -1;
    }
    if (!isfinite(c->beta_start) || !isfinite(c->beta_end) || c->beta_start < 0 || c->beta_end < 0) {
        ag_set_error("scheduler: beta_start %g / beta_end %g must be finite and non-negative", c->beta_start,
                     c->beta_end);
        return -1;
    }
    if ((unsigned)c->betas > AG_BETAS_SQUAREDCOS_CAP_V2 || (unsigned)c->prediction > AG_PRED_SAMPLE ||
        (unsigned)c->spacing > AG_SPACING_LINSPACE) {
        ag_set_error("scheduler: unknown beta schedule, prediction type or spacing (%d, %d, %d)", (int)c->betas,
                     (int)c->prediction, (int)c->spacing);
        return -1;
    }
    /* steps_offset only matters for leading spacing; the timestep range check catches it there */
    return 0;
}

void ag_sched_free(ag_sched *s)
{
    if (!s)
        return;
    free(s->ac);
    free(s->ts);
    free(s->t_idx);
    free(s->prev_idx);
    for (int k = 0; k < 4; k++)
        free(s->ets[k]);
    free(s->cur_sample);
    free(s->acc);
    free(s->spare);
    free(s);
}

/* The alphas_cumprod indices of each evaluation, as PNDMScheduler.step_prk/step_plms and
 * DDIMScheduler.step derive them from the timestep they are passed. */
static int index_pairs(ag_sched *s)
{
    const int32_t N = s->cfg.num_train_timesteps;
    s->t_idx = malloc(sizeof(int32_t) * (size_t)s->n_evals);
    s->prev_idx = malloc(sizeof(int32_t) * (size_t)s->n_evals);
    if (!s->t_idx || !s->prev_idx) {
        ag_set_error("scheduler: out of memory");
        return -1;
    }
    for (int32_t i = 0; i < s->n_evals; i++) {
        int32_t t = s->ts[i], a, p;
        if (i < s->n_prk) { /* RK: from the group's first timestep to this one minus half a step */
            a = s->ts[i / 4 * 4];
            p = t - (i % 2 ? 0 : s->ratio / 2);
        } else if (s->cfg.kind == AG_SCHED_PNDM && s->n_prk == 0 && i == 1) {
            a = t + s->ratio; /* the warm-up's second evaluation steps from t + ratio to t */
            p = t;
        } else {
            a = t;
            p = t - s->ratio;
        }
        if (a < 0 || a >= N) {
            ag_set_error("scheduler: evaluation %d at timestep %d would read alphas_cumprod[%d] (size %d)", i, t, a, N);
            return -1;
        }
        s->t_idx[i] = a;
        s->prev_idx[i] = p < 0 ? -1 : p;
    }
    return 0;
}

ag_sched *ag_sched_new(const ag_sched_config *c, int32_t steps)
{
    if (check_config(c) != 0)
        return NULL;
    if (c->kind != AG_SCHED_PNDM && c->kind != AG_SCHED_DDIM) {
        ag_set_error(c->kind == AG_SCHED_DDPM ? "scheduler: DDPM sampling is not built (only its add_noise)"
                                              : "scheduler: unknown scheduler kind %d",
                     (int)c->kind);
        return NULL;
    }
    if (c->kind == AG_SCHED_PNDM && c->prediction == AG_PRED_SAMPLE) {
        ag_set_error("scheduler: PNDM supports epsilon and v_prediction, not sample prediction");
        return NULL;
    }
    if (steps < 1 || steps > c->num_train_timesteps) {
        ag_set_error("scheduler: %d inference steps outside 1..%d", steps, c->num_train_timesteps);
        return NULL;
    }
    if (c->kind == AG_SCHED_DDIM && c->clip_sample && !(c->clip_sample_range >= 0.0f)) {
        ag_set_error("scheduler: clip_sample_range %g must be non-negative", (double)c->clip_sample_range);
        return NULL;
    }
    ag_sched *s = calloc(1, sizeof(*s));
    if (!s) {
        ag_set_error("scheduler: out of memory");
        return NULL;
    }
    s->cfg = *c;
    s->steps = steps;
    s->ratio = c->num_train_timesteps / steps;
    s->ac = malloc(sizeof(float) * (size_t)c->num_train_timesteps);
    if (!s->ac) {
        ag_set_error("scheduler: out of memory");
        ag_sched_free(s);
        return NULL;
    }
    if (ag_sched_alphas_cumprod(c, s->ac) != 0 || ag_sched_build_timesteps(s) != 0 || index_pairs(s) != 0) {
        ag_sched_free(s);
        return NULL;
    }
    s->final_ac = c->set_alpha_to_one ? 1.0f : s->ac[0];
    return s;
}

int32_t ag_sched_n_evals(const ag_sched *s)
{
    return s ? s->n_evals : 0;
}

int32_t ag_sched_timestep(const ag_sched *s, int32_t i)
{
    return s && i >= 0 && i < s->n_evals ? s->ts[i] : -1;
}

float ag_sched_init_noise_sigma(const ag_sched *s)
{
    (void)s;
    return 1.0f;
}

int ag_sched_step(ag_sched *s, int32_t i, const float *model_output, const float *sample, float *prev, size_t n)
{
    if (!s || !model_output || !sample || !prev || n == 0) {
        ag_set_error("scheduler step: missing scheduler or buffers");
        return -1;
    }
    if (i != s->counter || i >= s->n_evals) {
        ag_set_error("scheduler step: evaluation %d out of order (next is %d of %d)", i, s->counter, s->n_evals);
        return -1;
    }
    if (s->n == 0) {
        float **bufs[] = {&s->ets[0], &s->ets[1], &s->ets[2], &s->ets[3], &s->cur_sample, &s->acc, &s->spare};
        for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) {
            *bufs[k] = malloc(sizeof(float) * n);
            if (!*bufs[k]) {
                ag_set_error("scheduler step: out of memory for %zu floats", n);
                return -1;
            }
        }
        s->n = n;
    } else if (n != s->n) {
        ag_set_error("scheduler step: %zu floats, earlier steps had %zu", n, s->n);
        return -1;
    }
    int rc = s->cfg.kind == AG_SCHED_DDIM ? ag_sched_step_ddim(s, model_output, sample, prev)
                                          : ag_sched_step_pndm(s, model_output, sample, prev);
    if (rc == 0)
        s->counter++;
    return rc;
}

int ag_ddpm_add_noise(const ag_sched_config *c, int32_t t, const float *x, const float *noise, float *out, size_t n)
{
    if (check_config(c) != 0)
        return -1;
    if (t < 0 || t >= c->num_train_timesteps) {
        ag_set_error("add_noise: noise level %d outside 0..%d", t, c->num_train_timesteps - 1);
        return -1;
    }
    if (n > 0 && (!x || !noise || !out)) {
        ag_set_error("add_noise: missing buffers");
        return -1;
    }
    float *ac = malloc(sizeof(float) * (size_t)c->num_train_timesteps);
    if (!ac) {
        ag_set_error("add_noise: out of memory");
        return -1;
    }
    if (ag_sched_alphas_cumprod(c, ac) != 0) {
        free(ac);
        return -1;
    }
    /* alphas_cumprod[t] ** 0.5 and (1 - alphas_cumprod[t]) ** 0.5 as float32 tensors */
    const float sa = sqrtf(ac[t]), sb = sqrtf(1.0f - ac[t]);
    free(ac);
    for (size_t k = 0; k < n; k++)
        out[k] = sa * x[k] + sb * noise[k];
    return 0;
}
