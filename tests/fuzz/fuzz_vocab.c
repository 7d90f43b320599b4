/* The LLaMA vocabulary from GGUF tokenizer keys (core/text/tokenizer_gguf.c + tokenizer.c), as
 * anygptllm loads it: what builds must encode and decode a fixed text with modality tokens. */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/text.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_clear_error();
    ag_gguf *f = ag_gguf_open_memory(data, size, "fuzz.gguf");
    if (!f)
        return 0; /* fuzz_gguf covers the reader's refusals */
    ag_text_tokenizer *t = ag_text_tokenizer_from_gguf(f);
    if (!t) {
        fz_expect_error("ag_text_tokenizer_from_gguf");
        ag_gguf_close(f);
        return 0;
    }
    static const char text[] = "[Human]: Hi <sosp><\xF0\x9F\x97\xA3\xEF\xB8\x8F" "3><eosp> caf\xC3\xA9\t\xE2\x96\x81 12<eoh>";
    int32_t *ids = NULL;
    for (int mode = 0; mode < 3; mode++) {
        ag_text_tokenizer_set_prefix_mode(t, (ag_text_prefix_mode)mode);
        ag_clear_error();
        int64_t n = ag_text_encode_alloc(t, text, sizeof text - 1, true, &ids);
        if (n < 0) {
            fz_expect_error("ag_text_encode_alloc");
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= ag_text_n_tokens(t))
                abort();
        char out[512];
        ag_clear_error();
        if (ag_text_decode(t, ids, (size_t)n, 0, out, sizeof out) < 0)
            fz_expect_error("ag_text_decode");
        free(ids);
        ids = NULL;
    }
    for (int m = AG_MODALITY_SPEECH; m <= AG_MODALITY_MUSIC; m++) {
        int32_t c = ag_text_modality_codes(t, (ag_modality)m);
        if (c > 0 && ag_text_modality_token(t, (ag_modality)m, c - 1) < 0)
            abort();
    }
    ag_text_tokenizer_free(t);
    ag_gguf_close(f);
    return 0;
}
