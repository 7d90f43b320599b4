/* The seed-unclip loaders on GGUF headers: the file is loaded as weights, then the SEED decode
 * MLP, the UNet and the VAE decoder are each built from it (core/models/seed_decode.c, unet.c,
 * vae.c); small files then run the decode MLP on in-range codes. Where the whole de-tokenizer
 * exists (core/models/unclip.c: AG_FUZZ_HAVE_UNCLIP), ag_unclip_load runs on the file too (its
 * scheduler and pipeline KVs), with ag_unclip_embed on small files. */
#include "fuzz_model.h"

#include "anygpt/unclip.h"
#include "anygpt/unet.h"
#include "anygpt/weights.h"
#include "seed_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool small;
    const char *path = fz_model_file(data, size, &small);
    ag_weights *w = ag_weights_load(fz_cpu(), path, NULL, NULL, NULL);
    if (!w) {
        fz_expect_error("ag_weights_load");
        return 0;
    }
    ag_clear_error();
    ag_seed_decode *d = ag_seed_decode_new(fz_cpu(), w);
    if (!d) {
        fz_expect_error("ag_seed_decode_new");
    } else {
        const ag_seed_decode_info *in = ag_seed_decode_info_of(d);
        if (small && in->n_codes >= 1 && in->n_codes <= 256 && in->embed_dim >= 1 && in->embed_dim <= (1 << 16)) {
            int32_t codes[256] = {0};
            float *embed = malloc((size_t)in->embed_dim * sizeof *embed);
            if (!embed)
                abort();
            codes[0] = in->codebook_size - 1;
            ag_clear_error();
            if (ag_seed_decode_run(d, codes, in->n_codes, embed) != 0)
                fz_expect_error("ag_seed_decode_run");
            free(embed);
        }
        ag_seed_decode_free(d);
    }
    ag_clear_error();
    ag_unet *u = ag_unet_new(fz_cpu(), w);
    if (!u)
        fz_expect_error("ag_unet_new");
    ag_unet_free(u);
    ag_clear_error();
    ag_vae_decoder *v = ag_vae_decoder_new(fz_cpu(), w);
    if (!v)
        fz_expect_error("ag_vae_decoder_new");
    ag_vae_decoder_free(v);
    ag_weights_free(w);
#if AG_FUZZ_HAVE_UNCLIP
    ag_clear_error();
    ag_unclip *u2 = ag_unclip_load(fz_cpu(), path, NULL, NULL);
    if (!u2) {
        fz_expect_error("ag_unclip_load");
    } else {
        const ag_unclip_info *in = ag_unclip_info_of(u2);
        if (small && in->n_codes >= 1 && in->n_codes <= 256 && in->embed_dim >= 1 && in->embed_dim <= (1 << 16)) {
            int32_t codes[256] = {0};
            float *embed = malloc((size_t)in->embed_dim * sizeof *embed);
            if (!embed)
                abort();
            ag_clear_error();
            if (ag_unclip_embed(u2, codes, in->n_codes, embed) != 0)
                fz_expect_error("ag_unclip_embed");
            free(embed);
        }
        ag_unclip_free(u2);
    }
#endif
    return 0;
}
