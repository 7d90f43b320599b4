/* KIND seed-unclip is written by three cooperating pieces:
 *  - convert_seed_unclip.c: the folder (model_index.json, which weights file of each component:
 *    .safetensors / .bin, fp32 or the .fp16. variant), the SEED decode side of
 *    seed_quantizer.pt, the empty-prompt text context (CLIP text encoder run once), the
 *    image normaliser and the two schedulers' configs;
 *  - the plans below: the diffusers unet/ and vae/ (decoder only) components, each checking
 *    its config.json (options we do not build are refused by name) and checkpoint (missing,
 *    unknown or mis-shaped keys refused by name), adding its KVs and tensor declarations.
 * Tensors are declared in the order they are later streamed: the caller declares its own, then
 * calls the plans, gs_begin()s, writes its own, then unclip_part_write() for each plan. */
#ifndef AG_CONVERT_UNCLIP_PLAN_H
#define AG_CONVERT_UNCLIP_PLAN_H

#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "json.h"

typedef struct unclip_part unclip_part;

/* unet/config.json + its checkpoint -> KVs and tensors of core/models/unet.c. NULL with error. */
unclip_part *unclip_unet_plan(const json_value *config, const ckpt *c, gs_writer *w, const convert_opts *o);
/* vae/config.json + its checkpoint -> KVs and decoder tensors of core/models/vae.c. NULL with error. */
unclip_part *unclip_vae_plan(const json_value *config, const ckpt *c, gs_writer *w, const convert_opts *o);
/* After gs_begin: stream the part's tensors in declaration order. */
int unclip_part_write(unclip_part *p, gs_writer *w);
void unclip_part_free(unclip_part *p);

#endif
