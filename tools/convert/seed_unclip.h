/* KIND seed-unclip, the pieces convert_seed_unclip.c assembles (see unclip_plan.h for the whole):
 *  - seed_decode_plan.c: the decode side of seed_quantizer.pt (SEED's codebook -> unCLIP image
 *    embedding MLP); everything else that file holds is skipped by an explicit list;
 *  - clip_tokens.c / clip_text.c: the empty prompt's token ids from the tokenizer files, and
 *    CLIPTextModel run once on them (core cpu backend, F32) for the constant text context;
 *  - sched_config.c: scheduler_config.json -> ag_sched_config -> KVs;
 *  - diffusers_folder.c: which weights file of a component to read. */
#ifndef AG_CONVERT_SEED_UNCLIP_H
#define AG_CONVERT_SEED_UNCLIP_H

#include "anygpt/unclip_sched.h"

#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "json.h"
#include "tensor_plan.h"
#include "unclip_plan.h"

#define SEED_UNCLIP_ARCH "seed-unclip"

/* ---- SEED decode MLP ---- */
/* The 12 heads of blocks_image are fixed in qformer_quantizer.py, not recorded in the file. */
#define SEED_DECODE_HEADS 12
#define SEED_DECODE_NORM_EPS 1e-6f

typedef struct {
    int64_t n_codes, codebook_size, codebook_dim, dim, depth, ff, down[3], embed;
} seed_decode_dims;

/* Shapes from seed_quantizer.pt, its tensors into p (initialised on that checkpoint), and the
 * check that nothing else is in the file but the known, skipped parts. */
int seed_decode_plan(tensor_plan *p, seed_decode_dims *d);
int seed_decode_kvs(gs_writer *w, const seed_decode_dims *d);
/* Keys of seed_quantizer.pt that are not the decode side (encoder side, Q-Former, recon and
 * text branches, BLIP-2 heads). */
bool seed_decode_ignorable(const char *key);

/* ---- CLIP text encoder (empty prompt) ---- */
typedef struct {
    int64_t vocab, hidden, layers, heads, inter, max_pos;
    float eps;
    bool quick_gelu; /* hidden_act quick_gelu; else gelu (erf) */
} clip_text_config;

/* text_encoder/config.json (CLIPTextConfig defaults for absent fields). */
int clip_text_config_parse(const json_value *cfg, const char *path, clip_text_config *out);
/* The empty prompt as the pipeline tokenizes it: bos, eos, then pad up to model_max_length, ids
 * from the tokenizer folder's files; *n = model_max_length. Ids must be < vocab. */
int clip_empty_prompt_ids(const char *tokenizer_dir, int64_t vocab, int32_t **ids, int64_t *n);
/* last_hidden_state [n][hidden] of CLIPTextModel on ids (no attention mask: causal only). Checks
 * every key of the checkpoint (unknown or mis-shaped ones are errors naming them). */
int clip_text_encode(const clip_text_config *cfg, const ckpt *c, const int32_t *ids, int64_t n, float *out);

/* ---- schedulers ---- */
/* scheduler_config.json of class PNDMScheduler / DDIMScheduler (noising false) or DDPMScheduler
 * (noising true: only add_noise is used) -> the struct; options it cannot express refused by
 * name. expect_class: the class model_index.json names (NULL: not checked). */
int sched_config_parse(const json_value *cfg, const char *path, const char *expect_class, bool noising,
                       ag_sched_config *out);
/* KVs PREFIX.kind, .num_train_timesteps, ... (see sched_config.c). */
int sched_config_kvs(gs_writer *w, const char *prefix, const ag_sched_config *c);

/* ---- diffusers folder ---- */
/* Load the weights of component dir (text: transformers names model / pytorch_model, else
 * diffusion_pytorch_model): the first of .safetensors, .bin, .fp16.safetensors, .fp16.bin that
 * exists; says which on stderr unless quiet. */
int diffusers_load_weights(const char *dir, const char *label, bool text, bool quiet, ckpt *c);

/* ---- the converter ---- */
/* The UNet / VAE step: unclip_plan.h's functions. NULL parts: the file is written without unet
 * and vae (tests of the rest while the plans are built elsewhere). */
typedef struct {
    unclip_part *(*unet_plan)(const json_value *config, const ckpt *c, gs_writer *w, const convert_opts *o);
    unclip_part *(*vae_plan)(const json_value *config, const ckpt *c, gs_writer *w, const convert_opts *o);
    int (*write)(unclip_part *p, gs_writer *w);
    void (*release)(unclip_part *p);
} seed_unclip_parts;
int seed_unclip_convert(const char *input, const char *output, const convert_opts *o, const seed_unclip_parts *parts);
/* The KIND's entry with the real plans (convert_seed_unclip_kind.c, built with them). */
int convert_seed_unclip(const char *input, const char *output, const convert_opts *o);

#endif
