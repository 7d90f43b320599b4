/* SEED tokenizer internals for tests and tools: an encode that also hands back the
 * intermediate activations, so they can be held to a reference stage by stage. */
#ifndef AG_MODELS_SEED_TOKENIZER_INTERNAL_H
#define AG_MODELS_SEED_TOKENIZER_INTERNAL_H

#include "anygpt/seed_tokenizer.h"

typedef struct {
    float *vit;     /* [n_tokens][vit_width]: the ViT output, before ln_vision (NULL: not wanted) */
    float *qformer; /* [n_query][qf_hidden]: the Q-Former output */
    float *z;       /* [n_query][code_dim]: encode_task_layer's output, what the VQ measures */
} seed_tokenizer_trace;

/* ag_seed_tokenizer_encode, filling the trace's non-NULL arrays too. */
int seed_tokenizer_encode_traced(ag_seed_tokenizer *m, const float *pixels, int32_t *codes, ag_abort_fn abort,
                                 void *user, const seed_tokenizer_trace *trace);
/* Graphs one encode runs (ViT chunks + the head), i.e. how often abort is polled. */
int seed_tokenizer_n_stages(const ag_seed_tokenizer *m);

#endif
