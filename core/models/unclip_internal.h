/* The unCLIP pipeline's internals (core/models/unclip.c, unclip_config.c), for tests and tools:
 * the scheduler configs as the GGUF stores them, and a trace of the intermediate values. */
#ifndef ANYGPT_UNCLIP_INTERNAL_H
#define ANYGPT_UNCLIP_INTERNAL_H

#include "anygpt/gguf.h"
#include "anygpt/unclip.h"
#include "anygpt/unclip_sched.h"

/* The KVs PREFIX.kind, .num_train_timesteps, .beta_start, ... that anygpt-convert seed-unclip
 * writes (tools/convert/sched_config.c) -> out. beta_start / beta_end must be f64 (the JSON's
 * double, bit for bit). 0, or -1 with an error naming the file (label) and the key. */
int ag_unclip_read_sched(const ag_gguf *f, const char *label, const char *prefix, ag_sched_config *out);

/* What ag_unclip_generate computes, in order: "embed" (the decode MLP's output [embed_dim]),
 * "class" (the conditional class input: noised embedding + noise-level embedding [2 * embed_dim]),
 * "latents" with i = 0 (the initial latents, scaled) and "timestep" / "latents" with i = k after
 * the k-th scheduler step (timestep: the one value it used, as a float). */
typedef void (*ag_unclip_trace_fn)(void *user, const char *what, int32_t i, const float *data, size_t n);
void ag_unclip_set_trace(ag_unclip *m, ag_unclip_trace_fn fn, void *user);

/* The configs read at load (the scheduler's and the image noising scheduler's). */
void ag_unclip_sched_configs(const ag_unclip *m, ag_sched_config *sched, ag_sched_config *noising);

#endif
