/* anygpt core: diffusers' UNet2DConditionModel and the AutoencoderKL decoder, as the config
 * stored in the GGUF describes them (the seed-unclip file: SD 2.1 unCLIP's unet/ and vae/ from
 * anygpt-convert seed-unclip; tiny configs as diffusers' own tests use work the same way).
 * Both read their weights from an ag_weights already loaded (one file holds the whole image
 * de-tokenizer), under the GGUF names and KVs documented in core/models/unet.c / vae.c. */
#ifndef ANYGPT_UNET_H
#define ANYGPT_UNET_H

#include "anygpt/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_unet ag_unet;

typedef struct {
    int32_t in_channels, out_channels, sample_size;
    int32_t cross_attention_dim;  /* context width (1024) */
    int32_t context_len;          /* tokens of the stored text context (77) */
    int32_t class_embed_dim;      /* projection_class_embeddings_input_dim (2048), 0 when none */
    bool v_prediction;            /* informational: what the scheduler must assume */
} ag_unet_info;

ag_unet *ag_unet_new(ag_backend *be, ag_weights *w);
void ag_unet_free(ag_unet *u);
const ag_unet_info *ag_unet_info_of(const ag_unet *u);

/* One evaluation on a batch: x [batch][in_channels][h][w] (NCHW, as PyTorch), the timestep t
 * (the same for the whole batch, float as diffusers passes it), class_labels [batch][class_embed_dim]
 * (NULL when the model has no class embedding), context [batch][context_len][cross_attention_dim]
 * -> out [batch][out_channels][h][w]. h, w: multiples of 2^(number of down blocks - 1). */
int ag_unet_forward(ag_unet *u, const float *x, int32_t batch, int32_t h, int32_t w, float t,
                    const float *class_labels, const float *context, float *out);

typedef struct ag_vae_decoder ag_vae_decoder;

typedef struct {
    int32_t latent_channels;  /* 4 */
    int32_t scale_factor;     /* 2^(up blocks - 1): 8 */
    float scaling_factor;     /* the config's scaling_factor (0.18215) */
} ag_vae_info;

ag_vae_decoder *ag_vae_decoder_new(ag_backend *be, ag_weights *w);
void ag_vae_decoder_free(ag_vae_decoder *v);
const ag_vae_info *ag_vae_info_of(const ag_vae_decoder *v);

/* latents [latent_channels][h][w] as the scheduler leaves them (divided by scaling_factor
 * inside) -> rgb packed [h*scale][w*scale][3] uint8: round(clamp(x / 2 + 0.5, 0, 1) * 255) as
 * diffusers' image processor does. */
int ag_vae_decode(ag_vae_decoder *v, const float *latents, int32_t h, int32_t w, uint8_t *rgb);
/* The same, stopping before the uint8 conversion: out [3][h*scale][w*scale] float (the decoder's
 * raw output, in [-1, 1] for a real model), for tests. */
int ag_vae_decode_f32(ag_vae_decoder *v, const float *latents, int32_t h, int32_t w, float *out);

#ifdef __cplusplus
}
#endif
#endif
