/* The LLaMA tokenizer folder of anygpt-convert llm (tools/convert/llm_vocab.c on spm_model.c and
 * json.c): tokenizer.model, added_tokens.json, tokenizer_config.json, tokenizer.json,
 * special_tokens_map.json, config.json split from the input at FZ_SPLIT after a 2-byte vocab size; the vocabulary it
 * builds is then written as GGUF KVs (in memory, the file is never begun). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "llm_vocab.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"tokenizer.model", "added_tokens.json", "tokenizer_config.json",
                                        "tokenizer.json", "special_tokens_map.json", "config.json"};
    if (size < 2)
        return 0;
    int64_t vocab_size = 1 + (data[0] | data[1] << 8); /* 1..65536 */
    const char *dir = fz_split_to_dir("hf", data + 2, size - 2, names, 6);
    llm_vocab v;
    ag_clear_error();
    if (llm_vocab_load(&v, dir, vocab_size) != 0) {
        fz_expect_error("llm_vocab_load");
        return 0;
    }
    for (int64_t i = 0; i < v.n; i++)
        if (!v.tokens[i])
            abort();
    gs_writer *w = gs_new();
    ag_clear_error();
    if (llm_vocab_write_kvs(&v, w) != 0)
        fz_expect_error("llm_vocab_write_kvs");
    gs_free(w);
    llm_vocab_free(&v);
    return 0;
}
