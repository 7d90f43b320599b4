/* anygpt core: AnyGPT's image de-tokenizer (element seeddiffuse): 32 SEED codes -> SEED decode
 * MLP (1024-d unCLIP image embedding) -> Stable Diffusion 2.1 unCLIP (image normaliser + DDPM
 * noising of the embedding as class conditioning, UNet2DConditionModel with classifier-free
 * guidance as one batch of 2, PNDM (PLMS) or DDIM as the model's scheduler config says) ->
 * AutoencoderKL decoder -> 8-bit RGB. Model file: anygpt-convert seed-unclip (GGUF
 * architecture "seed-unclip"; facts in specs/seed-image.md sections 4-6). */
#ifndef ANYGPT_UNCLIP_H
#define ANYGPT_UNCLIP_H

#include "anygpt/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_unclip ag_unclip;

typedef struct {
    int32_t n_codes, codebook_size; /* 32, 8192 */
    int32_t embed_dim;              /* 1024: the unCLIP image embedding */
    int32_t latent_channels;        /* 4 */
    int32_t latent_size;            /* 96 (unet sample_size) */
    int32_t image_size;             /* 768 = latent_size * VAE scale factor */
    const char *scheduler;          /* "pndm" or "ddim" */
} ag_unclip_info;

typedef struct {
    int32_t steps;         /* denoising steps (AnyGPT: 20) */
    float guidance_scale;  /* classifier-free guidance (AnyGPT: 10); <= 1 runs the conditional branch only */
    int32_t noise_level;   /* DDPM noise added to the image embedding (AnyGPT: 0) */
    uint64_t seed;         /* torch.Generator('cpu').manual_seed(seed): latents, then embedding noise */
} ag_unclip_params;

/* Called after every denoising step (step 1..n_steps); returning false cancels the image
 * (ag_unclip_generate then returns 1). A step is one iteration of diffusers' loop: one UNet
 * evaluation (a batch of 2 with guidance) and one scheduler step, so n_steps is the number of
 * evaluations the scheduler makes: steps + 1 for PNDM's PLMS, steps for DDIM. */
typedef bool (*ag_unclip_step_fn)(void *user, int32_t step, int32_t n_steps);

ag_unclip *ag_unclip_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user);
void ag_unclip_free(ag_unclip *m);
const ag_unclip_info *ag_unclip_info_of(const ag_unclip *m);

/* codes[n_codes] (each < codebook_size) -> embed[embed_dim] (the SEED decode MLP). */
int ag_unclip_embed(ag_unclip *m, const int32_t *codes, int32_t n_codes, float *embed);

/* codes -> rgb packed [image_size][image_size][3]. 0 on success, 1 when cancelled by step_cb,
 * -1 with error set (bad codes name the offending index and value). */
int ag_unclip_generate(ag_unclip *m, const int32_t *codes, int32_t n_codes, const ag_unclip_params *p,
                       ag_unclip_step_fn step_cb, void *user, uint8_t *rgb);

#ifdef __cplusplus
}
#endif
#endif
