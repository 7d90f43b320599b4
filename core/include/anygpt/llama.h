/* anygpt core: the LLaMA decoder (AnyGPT's LLM) from a llama.cpp-convention GGUF.
 *
 * ag_llama_eval appends tokens to the KV cache (F16 or F32) and returns the logits of the last one:
 * with n > 1 it is a prefill (batched matmuls), with n == 1 a decode step (matvecs). */
#ifndef ANYGPT_LLAMA_H
#define ANYGPT_LLAMA_H

#include "anygpt/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_llama_hparams {
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot, n_ctx_train;
    float rms_eps, rope_base;
} ag_llama_hparams;

typedef struct ag_llama ag_llama;

/* n_ctx: KV cache length (0: the model's training context). kv_type: AG_TYPE_F16 (half the
 * memory, as llama.cpp; logits within ~1e-3 of exact) or AG_TYPE_F32 (exact). */
ag_llama *ag_llama_load(ag_backend *be, const char *path, int32_t n_ctx, ag_type kv_type, ag_progress_fn progress,
                        void *user);
void ag_llama_free(ag_llama *m);

const ag_llama_hparams *ag_llama_hparams_of(const ag_llama *m);
ag_weights *ag_llama_weights(ag_llama *m);
int32_t ag_llama_n_ctx(const ag_llama *m);
/* Tokens in the cache. */
int32_t ag_llama_n_past(const ag_llama *m);
/* Forget cache entries from position n on (n <= n_past): rewinding to a shared prefix. */
int ag_llama_truncate(ag_llama *m, int32_t n);
/* Bytes held by the KV cache. */
size_t ag_llama_cache_bytes(const ag_llama *m);

/* Append tokens[0..n) at positions n_past.. and compute. logits (n_vocab floats) receives the
 * last token's logits; all_logits (n * n_vocab, may be NULL) every token's. Ids are checked. */
int ag_llama_eval(ag_llama *m, const int32_t *tokens, int32_t n, float *logits, float *all_logits);

#ifdef __cplusplus
}
#endif
#endif
