/* Text tokenizer from a GGUF's llama.cpp tokenizer keys. Every key is type- and size-checked
 * before use; the arrays are handed to ag_text_tokenizer_new, which validates the content. */
#include "text_internal.h"

#include "anygpt/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LABEL "GGUF tokenizer"

/* Array key of the given element type; its index, or -1 with the error set. */
static int64_t array_key(const ag_gguf *f, const char *key, ag_gguf_type elem)
{
    int64_t i = ag_gguf_find_key(f, key);
    if (i < 0) {
        ag_set_error(LABEL ": key '%s' is missing", key);
        return -1;
    }
    if (ag_gguf_kv_type(f, i) != AG_GGUF_ARRAY || ag_gguf_arr_type(f, i) != elem) {
        ag_set_error(LABEL ": key '%s' is not an array of %s", key,
                     elem == AG_GGUF_STRING ? "strings" : elem == AG_GGUF_FLOAT32 ? "f32" : "i32");
        return -1;
    }
    return i;
}

/* Optional integer id: absent -> -1; present but not an integer that fits -> error. */
static bool opt_id(const ag_gguf *f, const char *key, int32_t *out)
{
    *out = -1;
    if (ag_gguf_find_key(f, key) < 0)
        return true;
    int32_t v;
    if (!ag_gguf_get_i32(f, key, &v)) {
        ag_set_error(LABEL ": key '%s' is not a 32-bit integer", key);
        return false;
    }
    *out = v;
    return true;
}

static bool opt_bool(const ag_gguf *f, const char *key, bool dflt, bool *out)
{
    *out = dflt;
    if (ag_gguf_find_key(f, key) < 0)
        return true;
    if (!ag_gguf_get_bool(f, key, out)) {
        ag_set_error(LABEL ": key '%s' is not a bool", key);
        return false;
    }
    return true;
}

ag_text_tokenizer *ag_text_tokenizer_from_gguf(const ag_gguf *f)
{
    if (!f) {
        ag_set_error(LABEL ": NULL file");
        return NULL;
    }
    if (ag_gguf_find_key(f, "tokenizer.ggml.model") < 0) {
        ag_set_error(LABEL ": key 'tokenizer.ggml.model' is missing (file has no tokenizer)");
        return NULL;
    }
    const char *model = ag_gguf_get_str(f, "tokenizer.ggml.model");
    if (!model)
        return NULL;
    if (strcmp(model, "llama") != 0) {
        ag_set_error(LABEL ": tokenizer.ggml.model is '%s'; only 'llama' (SentencePiece BPE) is supported", model);
        return NULL;
    }
    int64_t ki = array_key(f, "tokenizer.ggml.tokens", AG_GGUF_STRING);
    if (ki < 0)
        return NULL;
    int64_t ks = array_key(f, "tokenizer.ggml.scores", AG_GGUF_FLOAT32);
    if (ks < 0)
        return NULL;
    int64_t kt = array_key(f, "tokenizer.ggml.token_type", AG_GGUF_INT32);
    if (kt < 0)
        return NULL;
    uint64_t n = ag_gguf_arr_n(f, ki);
    if (n == 0 || n > (1u << 28)) {
        ag_set_error(LABEL ": tokenizer.ggml.tokens has %" PRIu64 " entries", n);
        return NULL;
    }
    if (ag_gguf_arr_n(f, ks) != n || ag_gguf_arr_n(f, kt) != n) {
        ag_set_error(LABEL ": array lengths differ: %" PRIu64 " tokens, %" PRIu64 " scores, %" PRIu64 " token types", n,
                     ag_gguf_arr_n(f, ks), ag_gguf_arr_n(f, kt));
        return NULL;
    }

    ag_text_vocab_desc d;
    memset(&d, 0, sizeof d);
    d.label = LABEL;
    d.n_tokens = (int32_t)n;
    bool add_space = true, hf_legacy = true;
    if (!opt_id(f, "tokenizer.ggml.bos_token_id", &d.bos_id) || !opt_id(f, "tokenizer.ggml.eos_token_id", &d.eos_id) ||
        !opt_id(f, "tokenizer.ggml.unknown_token_id", &d.unk_id) ||
        !opt_id(f, "tokenizer.ggml.padding_token_id", &d.pad_id) ||
        !opt_bool(f, "tokenizer.ggml.add_bos_token", true, &d.add_bos) ||
        !opt_bool(f, "tokenizer.ggml.add_eos_token", false, &d.add_eos) ||
        !opt_bool(f, "tokenizer.ggml.add_space_prefix", true, &add_space) ||
        !opt_bool(f, "anygpt.tokenizer.hf_legacy", true, &hf_legacy))
        return NULL;
    d.prefix_mode = !add_space ? AG_TEXT_PREFIX_NONE : hf_legacy ? AG_TEXT_PREFIX_LEGACY : AG_TEXT_PREFIX_FIRST;
    /* a file without add_bos_token but without a BOS either simply adds none */
    if (d.bos_id < 0 && ag_gguf_find_key(f, "tokenizer.ggml.add_bos_token") < 0)
        d.add_bos = false;

    const char **strs = malloc(n * sizeof *strs);
    size_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    ag_text_tokenizer *t = NULL;
    if (!strs || !lens || !scores || !types) {
        ag_set_error(LABEL ": out of memory");
        goto done;
    }
    for (uint64_t j = 0; j < n; j++) {
        uint64_t l;
        strs[j] = ag_gguf_arr_str(f, ki, j, &l);
        if (!strs[j])
            goto done;
        lens[j] = (size_t)l;
    }
    /* KV arrays are not aligned in the file: copy them out */
    const void *sd = ag_gguf_arr_data(f, ks);
    const void *td = ag_gguf_arr_data(f, kt);
    if (!sd || !td)
        goto done;
    memcpy(scores, sd, n * sizeof *scores);
    memcpy(types, td, n * sizeof *types);
    d.tokens = strs;
    d.token_lens = lens;
    d.scores = scores;
    d.types = types;
    t = ag_text_tokenizer_new(&d);
done:
    free(strs);
    free(lens);
    free(scores);
    free(types);
    return t;
}
