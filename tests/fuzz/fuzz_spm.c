/* SentencePiece tokenizer.model reader (tools/convert/spm_model.c, protobuf wire format). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "spm_model.h"

#include <stdlib.h>
#include <string.h>

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spm_model m;
    ag_clear_error();
    if (spm_model_parse(&m, data, size, "fuzz.model") != 0) {
        fz_expect_error("spm_model_parse");
        return 0;
    }
    for (size_t k = 0; k < m.n; k++) {
        if (!m.pieces[k].piece || m.pieces[k].type < 1 || m.pieces[k].type > 6)
            abort();
        sink += strlen(m.pieces[k].piece);
    }
    spm_model_free(&m);
    return 0;
}
