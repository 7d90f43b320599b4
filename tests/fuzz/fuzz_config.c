/* The diffusers / transformers config readers of anygpt-convert seed-unclip on arbitrary JSON:
 * text_encoder/config.json, scheduler_config.json (+ the scheduler built from what parses, every
 * timestep stepped once on a 4-float sample), unet/ and vae/ config.json (read against an empty
 * checkpoint: the config is checked before any tensor). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/unclip_sched.h"
#include "seed_unclip.h"

#include <stdlib.h>

static void run_sched(const ag_sched_config *sc, int32_t steps)
{
    ag_clear_error();
    ag_sched *s = ag_sched_new(sc, steps);
    if (!s) {
        fz_expect_error("ag_sched_new");
        return;
    }
    float x[4] = {0.5f, -0.25f, 1.0f, 0.0f}, eps[4] = {0.1f, 0.2f, -0.3f, 0.4f};
    for (int32_t i = 0; i < ag_sched_n_evals(s); i++) {
        (void)ag_sched_timestep(s, i);
        if (ag_sched_step(s, i, eps, x, x, 4) != 0) {
            fz_expect_error("ag_sched_step");
            break;
        }
    }
    ag_sched_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks the denoising step count (1..256) for the scheduler. */
    if (size < 1)
        return 0;
    int32_t steps = 1 + data[0];
    json_value *cfg = json_parse((const char *)data + 1, size - 1, "config.json");
    if (!cfg)
        return 0;
    clip_text_config tc;
    ag_clear_error();
    if (clip_text_config_parse(cfg, "text_encoder/config.json", &tc) != 0)
        fz_expect_error("clip_text_config_parse");
    for (int noising = 0; noising < 2; noising++) {
        ag_sched_config sc;
        ag_clear_error();
        if (sched_config_parse(cfg, "scheduler_config.json", NULL, noising, &sc) != 0)
            fz_expect_error("sched_config_parse");
        else if (!noising && steps <= 64) /* keep an execution short */
            run_sched(&sc, steps);
        else if (noising) {
            float x[2] = {1, 2}, n[2] = {3, 4}, out[2];
            ag_clear_error();
            if (ag_ddpm_add_noise(&sc, steps - 1, x, n, out, 2) != 0)
                fz_expect_error("ag_ddpm_add_noise");
        }
    }
    ckpt c;
    ckpt_init(&c);
    convert_opts o = {AG_TYPE_F16, true, 0};
    for (int vae = 0; vae < 2; vae++) {
        gs_writer *w = gs_new();
        ag_clear_error();
        unclip_part *p = vae ? unclip_vae_plan(cfg, &c, w, &o) : unclip_unet_plan(cfg, &c, w, &o);
        if (!p)
            fz_expect_error(vae ? "unclip_vae_plan" : "unclip_unet_plan");
        unclip_part_free(p);
        gs_free(w);
    }
    ckpt_free(&c);
    json_free(cfg);
    return 0;
}
