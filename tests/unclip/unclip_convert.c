/* Test driver for the seed-unclip unet/vae plans (tools/convert/unclip_plan.h) until the
 * top-level `anygpt-convert seed-unclip` exists: a diffusers unet/ and/or vae/ folder
 * (config.json + diffusion_pytorch_model[.fp16].{safetensors,bin}) -> a GGUF of architecture
 * "seed-unclip" holding just those parts, streamed as the real converter does.
 *
 * usage: unclip_convert [--dtype f32|f16] [--chunk N] [--unet DIR] [--vae DIR] OUT.gguf */
#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"
#include "json.h"
#include "unclip_plan.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    json_value *cfg;
    ckpt c;
    unclip_part *part;
} component;

static int load_component(component *k, const char *dir)
{
    static const char *const names[] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                                        "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin"};
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!(k->cfg = json_parse_file(path)))
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            return ckpt_load_file(&k->c, path);
    }
    ag_set_error("%s: no diffusion_pytorch_model weights", dir);
    return -1;
}

int main(int argc, char **argv)
{
    const char *unet_dir = NULL, *vae_dir = NULL, *out = NULL;
    convert_opts o = {.wtype = AG_TYPE_F16, .quiet = true};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--unet") && i + 1 < argc)
            unet_dir = argv[++i];
        else if (!strcmp(argv[i], "--vae") && i + 1 < argc)
            vae_dir = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc)
            o.wtype = !strcmp(argv[++i], "f32") ? AG_TYPE_F32 : AG_TYPE_F16;
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            o.chunk_elems = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--verbose"))
            o.quiet = false;
        else if (!out && argv[i][0] != '-')
            out = argv[i];
        else
            out = NULL, i = argc;
    }
    if (!out || (!unet_dir && !vae_dir)) {
        fprintf(stderr, "usage: unclip_convert [--dtype f32|f16] [--chunk N] [--unet DIR] [--vae DIR] OUT.gguf\n");
        return 2;
    }
    component u = {0}, v = {0};
    ckpt_init(&u.c);
    ckpt_init(&v.c);
    gs_writer *w = gs_new();
    int rc = 1;
    if (!w || gs_set_str(w, "general.architecture", "seed-unclip") || gs_set_str(w, "general.type", "model") ||
        gs_set_str(w, "general.name", "seed-unclip parts (test driver)") ||
        gs_set_u32(w, "general.file_type", o.wtype == AG_TYPE_F16 ? 1 : 0))
        goto out;
    if (unet_dir && (load_component(&u, unet_dir) || !(u.part = unclip_unet_plan(u.cfg, &u.c, w, &o))))
        goto out;
    if (vae_dir && (load_component(&v, vae_dir) || !(v.part = unclip_vae_plan(v.cfg, &v.c, w, &o))))
        goto out;
    if (gs_begin(w, out) || (u.part && unclip_part_write(u.part, w)) || (v.part && unclip_part_write(v.part, w)) ||
        gs_finish(w))
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "unclip_convert: %s\n", ag_last_error());
    gs_free(w);
    unclip_part_free(u.part);
    unclip_part_free(v.part);
    json_free(u.cfg);
    json_free(v.cfg);
    ckpt_free(&u.c);
    ckpt_free(&v.c);
    return rc;
}
