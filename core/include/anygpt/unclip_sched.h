/* anygpt core: the diffusion schedules the unCLIP pipeline uses, computed exactly as diffusers
 * does (float32 where diffusers uses float32, float64 where it uses numpy float64):
 *  - PNDMScheduler (skip_prk_steps: PLMS; and the PRK warm-up when skip_prk_steps is false),
 *  - DDIMScheduler (eta 0),
 *  - DDPMScheduler's add_noise (the image_noising_scheduler, squaredcos_cap_v2) for the
 *    embedding's noise_level.
 * Configs come from the GGUF (written by anygpt-convert seed-unclip from scheduler_config.json). */
#ifndef ANYGPT_UNCLIP_SCHED_H
#define ANYGPT_UNCLIP_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { AG_SCHED_PNDM = 0, AG_SCHED_DDIM = 1, AG_SCHED_DDPM = 2 } ag_sched_kind;
typedef enum { AG_BETAS_LINEAR = 0, AG_BETAS_SCALED_LINEAR = 1, AG_BETAS_SQUAREDCOS_CAP_V2 = 2 } ag_betas_kind;
typedef enum { AG_PRED_EPSILON = 0, AG_PRED_V = 1, AG_PRED_SAMPLE = 2 } ag_pred_kind;
typedef enum { AG_SPACING_LEADING = 0, AG_SPACING_TRAILING = 1, AG_SPACING_LINSPACE = 2 } ag_spacing_kind;

typedef struct {
    ag_sched_kind kind;
    int32_t num_train_timesteps;
    /* double, as the JSON/Python value: scaled_linear takes sqrt of it in double before rounding
     * to float32, and sqrt((double)0.012f) rounds differently from sqrt(0.012) */
    double beta_start, beta_end;
    ag_betas_kind betas;
    ag_pred_kind prediction;
    int32_t steps_offset;
    bool set_alpha_to_one;
    bool skip_prk_steps;       /* PNDM */
    ag_spacing_kind spacing;
    bool clip_sample;          /* DDIM */
    float clip_sample_range;
} ag_sched_config;

typedef struct ag_sched ag_sched;

/* set_timesteps(steps). NULL with error set for configs diffusers refuses or we do not build
 * (AG_SCHED_DDPM stepping; PNDM with prediction sample; PRK with fewer than 4 steps; steps
 * outside 1..num_train_timesteps; a schedule that would index alphas_cumprod out of range). */
ag_sched *ag_sched_new(const ag_sched_config *c, int32_t steps);
void ag_sched_free(ag_sched *s);
/* Model evaluations the loop makes (PNDM skip_prk: steps + 1) and the timestep of each. */
int32_t ag_sched_n_evals(const ag_sched *s);
int32_t ag_sched_timestep(const ag_sched *s, int32_t i);
/* scheduler.step(model_output, timestep_i, sample) for evaluation i (in order): writes the
 * previous sample (n floats; prev may alias sample or model_output). Keeps the history it needs
 * (PLMS: the ets list and cur_sample). n is fixed by the first call. 0, or -1 with the error
 * set (out of order, wrong n). */
int ag_sched_step(ag_sched *s, int32_t i, const float *model_output, const float *sample, float *prev, size_t n);
/* init_noise_sigma (1 for these schedulers): latents are scaled by it before the loop. */
float ag_sched_init_noise_sigma(const ag_sched *s);

/* DDPMScheduler(config).add_noise(x, noise, t) in float32 as diffusers computes it (only the
 * config's betas and num_train_timesteps are used). 0, or -1 with the error set (t outside
 * 0..num_train_timesteps-1, bad config). */
int ag_ddpm_add_noise(const ag_sched_config *c, int32_t t, const float *x, const float *noise, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
