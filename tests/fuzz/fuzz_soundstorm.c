/* SoundStorm loader (core/models/soundstorm.c) on GGUF headers; small models then generate 2
 * frames from a 1-frame voice prompt (one step). */
#include "fuzz_model.h"

#include "anygpt/soundstorm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool small;
    const char *path = fz_model_file(data, size, &small);
    ag_soundstorm *m = ag_soundstorm_load(fz_cpu(), path, NULL, NULL);
    if (!m) {
        fz_expect_error("ag_soundstorm_load");
        return 0;
    }
    const ag_soundstorm_info *in = ag_soundstorm_info_of(m);
    if (small && in->n_q >= 1 && in->n_q <= 16) {
        int32_t sem[2] = {0, in->semantic_vocab - 1}, prompt[17] = {0}, out[2 * 17];
        ag_clear_error();
        if (ag_soundstorm_generate(m, sem, 2, prompt, 1, 1, 7, true, out) != 0)
            fz_expect_error("ag_soundstorm_generate");
    }
    ag_soundstorm_free(m);
    return 0;
}
