/* SEED image tokenizer loader (core/models/seed_tokenizer.c: EVA ViT + Q-Former + VQ) on GGUF
 * headers; small models then encode one 3x2 image (resized to the model's image size). */
#include "fuzz_model.h"

#include "anygpt/seed_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool small;
    const char *path = fz_model_file(data, size, &small);
    ag_seed_tokenizer *m = ag_seed_tokenizer_load(fz_cpu(), path, NULL, NULL);
    if (!m) {
        fz_expect_error("ag_seed_tokenizer_load");
        return 0;
    }
    const ag_seed_tokenizer_info *in = ag_seed_tokenizer_info_of(m);
    if (small && in->image_size <= 64 && in->n_query >= 1 && in->n_query <= 1024) {
        static const uint8_t px[2][9] = {{0, 10, 20, 30, 40, 50, 60, 70, 80}, {90, 100, 110, 120, 130, 140, 150, 160, 170}};
        ag_image_view v = {&px[0][0], 3, 2, 9, 3, 0, 1, 2};
        int32_t *codes = malloc((size_t)in->n_query * sizeof *codes);
        if (!codes)
            abort();
        ag_clear_error();
        if (ag_seed_tokenizer_encode_image(m, &v, codes, NULL, NULL) != 0)
            fz_expect_error("ag_seed_tokenizer_encode_image");
        free(codes);
    }
    ag_seed_tokenizer_free(m);
    return 0;
}
