/* The CLIP tokenizer folder of anygpt-convert seed-unclip (tools/convert/clip_tokens.c):
 * vocab.json, tokenizer_config.json, special_tokens_map.json, added_tokens.json, split from the
 * input at FZ_SPLIT (an empty part: that file is absent). The empty prompt's ids must be in the
 * vocabulary and bos, eos, pad... in that order. */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "seed_unclip.h"

#include <stdio.h>
#include <stdlib.h>

#define VOCAB 49408 /* CLIP's */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"vocab.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "added_tokens.json"};
    const char *dir = fz_split_to_dir("clip", data, size, names, 4);
    int32_t *ids = NULL;
    int64_t n = 0;
    ag_clear_error();
    if (clip_empty_prompt_ids(dir, VOCAB, &ids, &n) != 0) {
        fz_expect_error("clip_empty_prompt_ids");
        return 0;
    }
    if (n < 2)
        abort();
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= VOCAB || (i >= 2 && ids[i] != ids[2])) {
            fprintf(stderr, "fuzz_clip_tokens: id %d at %lld\n", ids[i], (long long)i);
            abort();
        }
    free(ids);
    return 0;
}
