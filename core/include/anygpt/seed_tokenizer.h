/* anygpt core: the SEED image tokenizer (AnyGPT's image tokenizer, element seedtokenize):
 * EVA-CLIP ViT-g/14 (BLIP-2 packaging, penultimate block features) -> ln_vision -> causal
 * Q-Former (32 queries) -> encode_task_layer -> VQ argmin over an 8192 x 32 codebook: an RGB
 * image becomes 32 codes. Model file: anygpt-convert seed-tokenizer (GGUF architecture
 * "seed-tokenizer", hyper-parameters as KVs "seed-tokenizer.*"; facts in specs/seed-image.md). */
#ifndef ANYGPT_SEED_TOKENIZER_H
#define ANYGPT_SEED_TOKENIZER_H

#include "anygpt/image.h"
#include "anygpt/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_seed_tokenizer ag_seed_tokenizer;

typedef struct {
    int32_t image_size, patch_size;                    /* 224, 14 */
    int32_t vit_width, vit_depth, vit_heads, vit_mlp;  /* 1408, 39, 16, 6144 */
    int32_t qf_hidden, qf_layers, qf_heads, qf_ffn;    /* 768, 12, 12, 3072 */
    int32_t n_query;                                   /* 32: codes per image */
    int32_t codebook_size, code_dim;                   /* 8192, 32 */
} ag_seed_tokenizer_info;

/* Polled between stages of an encode; returning true stops it (the call then returns 1). */
typedef bool (*ag_abort_fn)(void *user);

ag_seed_tokenizer *ag_seed_tokenizer_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user);
void ag_seed_tokenizer_free(ag_seed_tokenizer *m);
const ag_seed_tokenizer_info *ag_seed_tokenizer_info_of(const ag_seed_tokenizer *m);

/* Any-size packed RGB-family image -> PIL-exact bicubic resize to image_size -> CLIP
 * normalisation -> codes[n_query]. 0 on success, 1 when abort said stop, -1 with error set. */
int ag_seed_tokenizer_encode_image(ag_seed_tokenizer *m, const ag_image_view *img, int32_t *codes, ag_abort_fn abort,
                                   void *user);
/* pixels: normalised planar float [3][image_size][image_size] -> codes[n_query]. Same returns. */
int ag_seed_tokenizer_encode(ag_seed_tokenizer *m, const float *pixels, int32_t *codes, ag_abort_fn abort,
                             void *user);

#ifdef __cplusplus
}
#endif
#endif
