/* `anygpt-convert seed-unclip` without the UNet/VAE step: the converter's own parts (SEED decode,
 * empty-prompt text context, image normaliser, schedulers) on fixtures that have no unet/vae
 * weights, while the diffusion plans (tools/convert/unclip_plan.h) are built elsewhere.
 *
 * usage: convert_partial seed-unclip INPUT OUT.gguf [--dtype f32|f16] [--quiet]  (anygpt-convert's form) */
#include "seed_unclip.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    convert_opts o = {AG_TYPE_F16, false, 0};
    const char *pos[3];
    int n = 0;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--quiet"))
            o.quiet = true;
        else if (!strcmp(argv[k], "--dtype") && k + 1 < argc &&
                 (!strcmp(argv[k + 1], "f32") || !strcmp(argv[k + 1], "f16")))
            o.wtype = !strcmp(argv[++k], "f32") ? AG_TYPE_F32 : AG_TYPE_F16;
        else if (n < 3 && argv[k][0] != '-')
            pos[n++] = argv[k];
        else
            n = 99;
    }
    if (n != 3 || strcmp(pos[0], "seed-unclip")) {
        fprintf(stderr, "usage: %s seed-unclip INPUT OUT.gguf [--dtype f32|f16] [--quiet]\n", argv[0]);
        return 2;
    }
    if (seed_unclip_convert(pos[1], pos[2], &o, NULL) != 0) {
        fprintf(stderr, "convert_partial: error: %s\n", ag_last_error());
        return 1;
    }
    return 0;
}
