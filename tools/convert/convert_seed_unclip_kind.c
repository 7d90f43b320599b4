/* KIND seed-unclip: the converter (convert_seed_unclip.c) with the UNet / VAE plans of
 * unclip_plan.h. Built only when those plans are in the tree (tools/meson.build), so the KIND is
 * registered exactly when it links. */
#include "seed_unclip.h"

static const seed_unclip_parts plans = {unclip_unet_plan, unclip_vae_plan, unclip_part_write, unclip_part_free};

int convert_seed_unclip(const char *input, const char *output, const convert_opts *o)
{
    return seed_unclip_convert(input, output, o, &plans);
}
