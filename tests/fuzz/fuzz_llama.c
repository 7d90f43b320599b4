/* LLaMA loader (core/models/llama.c) on GGUF headers of llama-architecture files, then (small
 * models) a 2-token prefill and a 1-token decode with a 32-token context; the file's vocabulary
 * is also built as the anygptllm element does (ag_text_tokenizer_from_gguf). */
#include "fuzz_model.h"

#include "anygpt/llama.h"
#include "anygpt/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool small;
    const char *path = fz_model_file(data, size, &small);
    ag_llama *m = ag_llama_load(fz_cpu(), path, 32, AG_TYPE_F16, NULL, NULL);
    if (!m) {
        fz_expect_error("ag_llama_load");
        return 0;
    }
    ag_clear_error();
    ag_text_tokenizer *t = ag_text_tokenizer_from_gguf(ag_weights_gguf(ag_llama_weights(m)));
    if (!t)
        fz_expect_error("ag_text_tokenizer_from_gguf");
    const ag_llama_hparams *hp = ag_llama_hparams_of(m);
    if (small && hp->n_vocab > 0) {
        float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
        int32_t tok[3] = {0, hp->n_vocab - 1, hp->n_vocab}; /* the last one is out of range */
        if (!logits)
            abort();
        ag_clear_error();
        if (ag_llama_eval(m, tok, 2, logits, NULL) != 0 || ag_llama_eval(m, tok + 1, 1, logits, NULL) != 0)
            fz_expect_error("ag_llama_eval");
        ag_clear_error();
        if (ag_llama_eval(m, tok + 2, 1, logits, NULL) == 0)
            abort(); /* an id past the vocabulary must be refused */
        fz_expect_error("ag_llama_eval (bad id)");
        free(logits);
    }
    ag_text_tokenizer_free(t);
    ag_llama_free(m);
    return 0;
}
