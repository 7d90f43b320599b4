/* Internal to the diffusion schedulers (core/models/unclip_*.c). */
#ifndef AG_UNCLIP_SCHED_INTERNAL_H
#define AG_UNCLIP_SCHED_INTERNAL_H

#include "anygpt/unclip_sched.h"

/* Largest num_train_timesteps accepted (real configs use 1000; PyTorch's linspace emulation
 * below also assumes a single parallel chunk, i.e. fewer than 32768 entries). */
#define AG_SCHED_MAX_TRAIN 10000

struct ag_sched {
    ag_sched_config cfg;
    int32_t steps, ratio;       /* num_inference_steps, num_train_timesteps // steps */
    float *ac;                  /* alphas_cumprod [num_train_timesteps] */
    float final_ac;             /* final_alpha_cumprod */
    int32_t n_evals, n_prk;     /* evaluations; the first n_prk are Runge-Kutta ones */
    int32_t *ts;                /* the timestep of each evaluation (what the UNet sees) */
    int32_t *t_idx, *prev_idx;  /* alphas_cumprod indices each evaluation uses (prev < 0: final) */
    int32_t counter;
    size_t n;                   /* sample size, fixed by the first step */
    float *ets[4];              /* model outputs kept by PNDM, oldest first */
    int32_t n_ets;
    float *cur_sample, *acc, *spare;
};

/* alphas_cumprod of the config's betas, float32 as diffusers builds it. 0 or -1 (error set). */
int ag_sched_alphas_cumprod(const ag_sched_config *c, float *ac);
/* Fills s->ts, s->n_evals, s->n_prk for s->cfg and s->steps (numpy's arithmetic). 0 or -1. */
int ag_sched_build_timesteps(ag_sched *s);
int ag_sched_step_pndm(ag_sched *s, const float *model_output, const float *sample, float *prev);
int ag_sched_step_ddim(ag_sched *s, const float *model_output, const float *sample, float *prev);

#endif
