/* SEANet codec loader (core/models/seanet.c: speechtokenizer / encodec architectures) on GGUF
 * headers; small models then encode one hop of audio and decode the codes back. */
#include "fuzz_model.h"

#include "anygpt/seanet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool small;
    const char *path = fz_model_file(data, size, &small);
    ag_seanet *m = ag_seanet_load(fz_cpu(), path, NULL, NULL);
    if (!m) {
        fz_expect_error("ag_seanet_load");
        return 0;
    }
    const ag_seanet_info *in = ag_seanet_info_of(m);
    if (small && in->hop > 0 && in->hop <= 4096 && in->n_q >= 1) {
        int64_t n = 2 * (int64_t)in->hop, frames = ag_seanet_n_frames(m, n);
        float *audio = calloc((size_t)n, sizeof *audio);
        int32_t *codes = calloc((size_t)(frames * in->n_q), sizeof *codes);
        if (!audio || !codes)
            abort();
        ag_clear_error();
        if (ag_seanet_encode(m, audio, n, in->n_q, codes) != 0)
            fz_expect_error("ag_seanet_encode");
        ag_clear_error();
        if (ag_seanet_decode(m, codes, frames, in->n_q, audio) != 0)
            fz_expect_error("ag_seanet_decode");
        free(audio);
        free(codes);
    }
    ag_seanet_free(m);
    return 0;
}
