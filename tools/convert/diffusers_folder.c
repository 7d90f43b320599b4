/* Which weights file of a diffusers component to read. A published folder holds the fp32
 * weights, the .fp16. variant, or both, as .safetensors and/or .bin; the choice is fixed:
 * .safetensors before .bin (as diffusers prefers), fp32 before .fp16. (full precision when it is
 * there). Sharded weights (an .index.json beside no single file) are refused by name. */
#include "seed_unclip.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int diffusers_load_weights(const char *dir, const char *label, bool text, bool quiet, ckpt *c)
{
    const char *st = text ? "model" : "diffusion_pytorch_model";
    const char *pt = text ? "pytorch_model" : "diffusion_pytorch_model";
    char names[4][96], path[4096];
    cv_nm(names[0], sizeof names[0], "%s.safetensors", st);
    cv_nm(names[1], sizeof names[1], "%s.bin", pt);
    cv_nm(names[2], sizeof names[2], "%s.fp16.safetensors", st);
    cv_nm(names[3], sizeof names[3], "%s.fp16.bin", pt);
    for (int i = 0; i < 4; i++) {
        cv_nm(path, sizeof path, "%s/%s", dir, names[i]);
        if (!is_file(path))
            continue;
        if (!quiet)
            fprintf(stderr, "anygpt-convert: %s: reading %s/%s%s\n", label, label, names[i],
                    i < 2 ? "" : " (the fp16 variant: no fp32 weights in the folder)");
        return ckpt_load_file(c, path);
    }
    for (int i = 0; i < 4; i++) {
        cv_nm(path, sizeof path, "%s/%s.index.json", dir, names[i]);
        if (is_file(path)) {
            ag_set_error("%s: sharded weights (%s.index.json) are not supported: merge them into one file", dir,
                         names[i]);
            return -1;
        }
    }
    ag_set_error("%s: no weights (%s, %s, %s or %s)", dir, names[0], names[1], names[2], names[3]);
    return -1;
}
