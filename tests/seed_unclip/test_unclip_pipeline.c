/* The whole image de-tokenizer (anygpt/unclip.h) against the float32 PyTorch pipeline
 * tests/reference/unclip_pipeline_ref.py, on tiny random folders converted by anygpt-convert
 * seed-unclip --dtype f32 (PNDM as published; DDIM with trailing spacing and clip_sample):
 *  - the scheduler configs read back from the file equal the JSON values bit for bit;
 *  - per case (seeds, 5 and 20 steps, guidance 1 / 7.5 / 10, noise level 0 and > 0): the
 *    embedding, the conditional class input and the timesteps, the latents after every scheduler
 *    step (max |err| / peak, printed per step) and the final uint8 image (PSNR >= 40 dB) on cpu,
 *    and the cases marked for it on vulkan;
 *  - the same call twice gives the same image; a step callback returning false at step k makes
 *    ag_unclip_generate return 1 after exactly k callbacks, and the next call is unaffected;
 *  - bad codes (count, value: the error names index and value) and bad parameters are refused.
 *
 * usage: test_unclip_pipeline REF_DIR ANYGPT_CONVERT OUT_DIR CONVERT_PARTIAL (the converter without
 * the UNet/VAE step, for a file the pipeline must refuse) */
#include "../common/ag_fixture.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/unclip.h"
#include "unclip_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_EMBED 1e-5 /* max |err| / peak: embedding and class input */
#define TOL_STEP 1e-4  /* latents after each step */
#define MIN_PSNR 40.0  /* uint8 image, dB */
#define MAX_CASES 16
#define MAX_EVALS 64

static const char *ref_dir, *convert_bin, *out_dir;

typedef struct {
    char name[64], folder[16];
    int code_idx, steps, level, vulkan;
    uint64_t seed;
    double guidance;
} pcase;

static pcase cases[MAX_CASES];
static int n_cases;
static int32_t codes[3][32];
static float embeds[3][32];

static void *ref_file(const char *name, const char *ext, size_t *n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s%s", ref_dir, name, ext);
    void *d = ag_read_file(p, n);
    CHECK(d != NULL, "cannot read %s", p);
    return d;
}

static bool load_cases(void)
{
    char p[4096], line[512];
    size_t n;
    snprintf(p, sizeof p, "%s/cases.txt", ref_dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL, "cannot read %s", p);
    if (!f)
        return false;
    while (n_cases < MAX_CASES && fgets(line, sizeof line, f)) {
        pcase *c = &cases[n_cases];
        unsigned long long seed;
        if (sscanf(line, "%63s %15s %d %llu %d %lf %d %d", c->name, c->folder, &c->code_idx, &seed, &c->steps,
                   &c->guidance, &c->level, &c->vulkan) == 8) {
            c->seed = seed;
            n_cases++;
        }
    }
    fclose(f);
    void *cd = ref_file("codes", ".i32", &n);
    if (cd && n == sizeof codes)
        memcpy(codes, cd, sizeof codes);
    CHECK(cd && n == sizeof codes, "codes.i32: %zu bytes", n);
    free(cd);
    void *e = ref_file("embed", ".f32", &n);
    if (e && n == sizeof embeds)
        memcpy(embeds, e, sizeof embeds);
    CHECK(e && n == sizeof embeds, "embed.f32: %zu bytes", n);
    free(e);
    return n_cases > 0;
}

/* ---------------------------------------------------------------- trace */

typedef struct {
    size_t n_lat;
    float *lat;     /* [(MAX_EVALS + 1)][n_lat] */
    float cls[64];
    float ts[MAX_EVALS];
    int n_steps, n_ts;
} trace_buf;

static void on_trace(void *user, const char *what, int32_t i, const float *data, size_t n)
{
    trace_buf *t = user;
    if (!strcmp(what, "class") && n <= 64) {
        memcpy(t->cls, data, n * sizeof *data);
    } else if (!strcmp(what, "timestep") && i >= 1 && i <= MAX_EVALS) {
        t->ts[i - 1] = data[0];
        t->n_ts = i;
    } else if (!strcmp(what, "latents") && i <= MAX_EVALS && n == t->n_lat) {
        memcpy(t->lat + (size_t)i * n, data, n * sizeof *data);
        t->n_steps = i;
    }
}

static double rel_err(const float *got, const float *ref, size_t n)
{
    double peak;
    const double err = ag_max_abs_err(got, ref, n, &peak);
    return peak > 0 ? err / peak : err;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++)
        se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return se == 0 ? INFINITY : 10.0 * log10(255.0 * 255.0 * (double)n / se);
}

/* ---------------------------------------------------------------- checks */

typedef struct {
    int calls, stop_at;
    int32_t last_n;
} step_count;

static bool on_step(void *user, int32_t step, int32_t n_steps)
{
    step_count *s = user;
    s->calls++;
    s->last_n = n_steps;
    CHECK(step == s->calls, "step callback %d, want %d", step, s->calls);
    return s->stop_at == 0 || step < s->stop_at;
}

static ag_unclip_params params_of(const pcase *c)
{
    return (ag_unclip_params){c->steps, (float)c->guidance, c->level, c->seed};
}

static void check_case(ag_unclip *m, const pcase *c, const char *dev)
{
    const ag_unclip_info *in = ag_unclip_info_of(m);
    const size_t n_lat = (size_t)in->latent_channels * (size_t)in->latent_size * (size_t)in->latent_size;
    const size_t n_img = (size_t)in->image_size * (size_t)in->image_size * 3;
    size_t n_cls, n_lats, n_u8, n_ts;
    float *rcls = ref_file(c->name, ".class.f32", &n_cls), *rlat = ref_file(c->name, ".lat.f32", &n_lats);
    uint8_t *ru8 = ref_file(c->name, ".img.u8", &n_u8);
    char *rts = ref_file(c->name, ".ts.txt", &n_ts);
    trace_buf tb = {.n_lat = n_lat, .lat = calloc((MAX_EVALS + 1) * n_lat, sizeof(float))};
    uint8_t *rgb = malloc(n_img);
    if (!rcls || !rlat || !ru8 || !rts || !tb.lat || !rgb || n_u8 != n_img || n_cls != 2 * 32 * 4)
        goto done;
    ag_unclip_set_trace(m, on_trace, &tb);
    step_count sc = {0};
    const ag_unclip_params p = params_of(c);
    const double t0 = ag_now_s();
    const int rc = ag_unclip_generate(m, codes[c->code_idx], 32, &p, on_step, &sc, rgb);
    const double secs = ag_now_s() - t0;
    ag_unclip_set_trace(m, NULL, NULL);
    CHECK(rc == 0, "%s %s: %s", dev, c->name, ag_last_error());
    if (rc != 0)
        goto done;
    const int evals = (int)(n_lats / 4 / n_lat) - 1;
    CHECK(tb.n_steps == evals && tb.n_ts == evals && sc.calls == evals && sc.last_n == evals,
          "%s %s: %d steps traced, %d callbacks (n_steps %d), reference %d", dev, c->name, tb.n_steps, sc.calls,
          sc.last_n, evals);
    /* timesteps */
    char *s = rts;
    bool ts_ok = tb.n_ts == evals;
    for (int i = 0; i < evals && ts_ok; i++) {
        char *end;
        const long t = strtol(s, &end, 10);
        ts_ok = end != s && (float)t == tb.ts[i];
        s = end;
    }
    CHECK(ts_ok, "%s %s: timesteps differ from the reference", dev, c->name);
    const double ecls = rel_err(tb.cls, rcls, 64);
    CHECK(ecls < TOL_EMBED, "%s %s: class input rel err %.3g", dev, c->name, ecls);
    char steps[1024] = "";
    double worst = 0;
    for (int i = 0; i <= evals && i <= tb.n_steps; i++) {
        const double e = rel_err(tb.lat + (size_t)i * n_lat, rlat + (size_t)i * n_lat, n_lat);
        worst = fmax(worst, e);
        if (strlen(steps) < sizeof steps - 16)
            snprintf(steps + strlen(steps), sizeof steps - strlen(steps), " %.1e", e);
    }
    const double db = psnr(rgb, ru8, n_img);
    printf("# %s %s (%s, seed %llu, %d steps, guidance %g, noise level %d): class %.2e, latents per step:%s; "
           "image PSNR %.1f dB, %.2f s\n",
           dev, c->name, c->folder, (unsigned long long)c->seed, c->steps, c->guidance, c->level, ecls, steps, db,
           secs);
    CHECK(worst < TOL_STEP, "%s %s: latents rel err %.3g", dev, c->name, worst);
    CHECK(db >= MIN_PSNR, "%s %s: image PSNR %.2f dB", dev, c->name, db);
done:
    free(rcls);
    free(rlat);
    free(ru8);
    free(rts);
    free(tb.lat);
    free(rgb);
}

/* The same call twice: the same bytes; cancellation at step k after exactly k callbacks. */
static void check_repeat_and_cancel(ag_unclip *m, const pcase *c)
{
    const ag_unclip_info *in = ag_unclip_info_of(m);
    const size_t n_img = (size_t)in->image_size * (size_t)in->image_size * 3;
    uint8_t *a = malloc(n_img), *b = malloc(n_img);
    const ag_unclip_params p = params_of(c);
    if (!a || !b)
        goto done;
    CHECK(ag_unclip_generate(m, codes[c->code_idx], 32, &p, NULL, NULL, a) == 0, "%s", ag_last_error());
    for (int k = 1; k <= 3; k++) {
        step_count sc = {.stop_at = k};
        const int rc = ag_unclip_generate(m, codes[c->code_idx], 32, &p, on_step, &sc, b);
        printf("# cancel at step %d: rc %d after %d callbacks\n", k, rc, sc.calls);
        CHECK(rc == 1 && sc.calls == k, "cancel at %d: rc %d, %d callbacks", k, rc, sc.calls);
    }
    step_count all = {0}, last = {0};
    CHECK(ag_unclip_generate(m, codes[c->code_idx], 32, &p, on_step, &all, b) == 0 && !memcmp(a, b, n_img),
          "the same call twice gives another image");
    last.stop_at = all.calls; /* stopping at the last step: no image, 1 */
    CHECK(ag_unclip_generate(m, codes[c->code_idx], 32, &p, on_step, &last, b) == 1 && last.calls == all.calls,
          "cancel at the last step: %d of %d callbacks", last.calls, all.calls);
    memset(b, 0, n_img);
    CHECK(ag_unclip_generate(m, codes[c->code_idx], 32, &p, NULL, NULL, b) == 0 && !memcmp(a, b, n_img),
          "the same call after cancellations gives another image");
done:
    free(a);
    free(b);
}

static void refused(ag_unclip *m, const int32_t *cs, int32_t n, const ag_unclip_params *p, uint8_t *rgb,
                    const char *expect, const char *what)
{
    const int rc = ag_unclip_generate(m, cs, n, p, NULL, NULL, rgb);
    CHECK(rc == -1 && strstr(ag_last_error(), expect), "%s: rc %d, '%s' (want '%s')", what, rc, ag_last_error(),
          expect);
    if (rc == -1)
        printf("# refused %s: %s\n", what, ag_last_error());
}

static void check_refusals(ag_unclip *m)
{
    const ag_unclip_info *in = ag_unclip_info_of(m);
    uint8_t *rgb = malloc((size_t)in->image_size * (size_t)in->image_size * 3);
    int32_t bad[33];
    memcpy(bad, codes[0], sizeof codes[0]);
    ag_unclip_params p = {5, 10.0f, 0, 1};
    refused(m, bad, 31, &p, rgb, "31 codes given, an image is exactly 32", "31 codes");
    refused(m, bad, 33, &p, rgb, "33 codes given", "33 codes");
    bad[5] = 512;
    refused(m, bad, 32, &p, rgb, "code 512 at index 5 is outside 0..511", "code 512");
    bad[5] = codes[0][5];
    bad[31] = -1;
    refused(m, bad, 32, &p, rgb, "code -1 at index 31", "code -1");
    float e[32];
    CHECK(ag_unclip_embed(m, bad, 32, e) == -1 && strstr(ag_last_error(), "index 31"), "embed of a bad code");
    p.noise_level = 1000;
    refused(m, codes[0], 32, &p, rgb, "noise level 1000 is outside 0..999", "noise level 1000");
    p.noise_level = -1;
    refused(m, codes[0], 32, &p, rgb, "noise level -1", "noise level -1");
    p.noise_level = 0;
    p.steps = 0;
    refused(m, codes[0], 32, &p, rgb, "0 steps", "0 steps");
    p.steps = 5;
    p.guidance_scale = NAN;
    refused(m, codes[0], 32, &p, rgb, "not finite", "guidance NaN");
    p.guidance_scale = 10.0f;
    refused(m, codes[0], 32, &p, NULL, "no codes, parameters or output", "no output");
    refused(m, NULL, 32, &p, rgb, "no codes", "no codes");
    free(rgb);
}

static void check_info(ag_unclip *m, const char *folder)
{
    const ag_unclip_info *in = ag_unclip_info_of(m);
    CHECK(in->n_codes == 32 && in->codebook_size == 512 && in->embed_dim == 32 && in->latent_channels == 4 &&
              in->latent_size == 16 && in->image_size == 32 && !strcmp(in->scheduler, folder),
          "info: %d codes of %d, embed %d, latents %d x %d, image %d, %s", in->n_codes, in->codebook_size,
          in->embed_dim, in->latent_channels, in->latent_size, in->image_size, in->scheduler);
    /* the configs as read from the file: the JSON's numbers exactly */
    ag_sched_config s, nz;
    ag_unclip_sched_configs(m, &s, &nz);
    const bool ddim = !strcmp(folder, "ddim");
    CHECK(s.kind == (ddim ? AG_SCHED_DDIM : AG_SCHED_PNDM) && s.num_train_timesteps == 1000 &&
              s.beta_start == 0.00085 && s.beta_end == 0.012 && s.betas == AG_BETAS_SCALED_LINEAR &&
              s.prediction == AG_PRED_V && s.steps_offset == 1 && !s.set_alpha_to_one && s.skip_prk_steps == !ddim &&
              s.spacing == (ddim ? AG_SPACING_TRAILING : AG_SPACING_LEADING) && s.clip_sample == ddim &&
              s.clip_sample_range == (ddim ? 1.5f : 1.0f),
          "%s scheduler config read back: beta_start %.17g beta_end %.17g", folder, s.beta_start, s.beta_end);
    CHECK(nz.kind == AG_SCHED_DDPM && nz.num_train_timesteps == 1000 && nz.beta_start == 0.0001 &&
              nz.beta_end == 0.02 && nz.betas == AG_BETAS_SQUAREDCOS_CAP_V2,
          "noising config read back: beta_start %.17g beta_end %.17g", nz.beta_start, nz.beta_end);
    for (int i = 0; i < 3; i++) {
        float e[32];
        const int rc = ag_unclip_embed(m, codes[i], 32, e);
        const double err = rc == 0 ? rel_err(e, embeds[i], 32) : 1.0;
        CHECK(err < TOL_EMBED, "embedding %d: rc %d rel err %.3g", i, rc, err);
        if (i == 0)
            printf("# %s: embedding max |err| / peak %.2e\n", folder, err);
    }
}

typedef struct {
    int calls;
    uint64_t last, total;
} load_progress;

static bool on_load(void *user, uint64_t done, uint64_t total)
{
    load_progress *lp = user;
    lp->calls++;
    lp->last = done;
    lp->total = total;
    return true;
}

static void run_backend(ag_backend *be, const char *dev, bool vk)
{
    static const char *const folders[] = {"pndm", "ddim"};
    for (int fi = 0; fi < 2; fi++) {
        char gguf[4096];
        snprintf(gguf, sizeof gguf, "%s/%s-f32.gguf", out_dir, folders[fi]);
        load_progress lp = {0};
        ag_unclip *m = ag_unclip_load(be, gguf, on_load, &lp);
        CHECK(m != NULL, "%s: load %s: %s", dev, gguf, ag_last_error());
        if (!m)
            continue;
        CHECK(lp.calls > 0 && lp.last == lp.total, "load progress: %d calls, %llu of %llu", lp.calls,
              (unsigned long long)lp.last, (unsigned long long)lp.total);
        if (!vk)
            check_info(m, folders[fi]);
        for (int i = 0; i < n_cases; i++)
            if (!strcmp(cases[i].folder, folders[fi]) && (!vk || cases[i].vulkan))
                check_case(m, &cases[i], dev);
        if (!vk && fi == 0) {
            for (int i = 0; i < n_cases; i++)
                if (!strcmp(cases[i].folder, "pndm") && cases[i].steps == 5) {
                    check_repeat_and_cancel(m, &cases[i]);
                    break;
                }
            check_refusals(m);
        }
        ag_unclip_free(m);
    }
}

/* ag_unclip_read_sched on KVs written here: f64 betas read back exactly; an f32 beta (a file
 * from an older converter), a missing key and an unknown name refused by key. */
static void check_read_sched(void)
{
    static const struct {
        const char *drop, *bad_str, *what;
        bool f32_beta;
    } cs[] = {{NULL, NULL, NULL, false},
              {NULL, NULL, "an f64 is required", true},
              {"p.steps_offset", NULL, "'p.steps_offset'", false},
              {NULL, "p.timestep_spacing", "'p.timestep_spacing'", false}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/sched-kvs-%zu.gguf", out_dir, i);
        ag_gguf_writer *w = ag_gguf_writer_new();
        bool ok = w && !ag_gguf_set_str(w, "general.architecture", "seed-unclip") &&
                  !ag_gguf_set_str(w, "p.kind", "ddim") && !ag_gguf_set_u32(w, "p.num_train_timesteps", 1000) &&
                  !ag_gguf_set_str(w, "p.beta_schedule", "scaled_linear") &&
                  !ag_gguf_set_str(w, "p.prediction_type", "v_prediction") &&
                  !ag_gguf_set_bool(w, "p.set_alpha_to_one", true) && !ag_gguf_set_bool(w, "p.skip_prk_steps", false) &&
                  !ag_gguf_set_str(w, "p.timestep_spacing", cs[i].bad_str ? "middle" : "linspace") &&
                  !ag_gguf_set_bool(w, "p.clip_sample", true) && !ag_gguf_set_f32(w, "p.clip_sample_range", 2.5f);
        if (cs[i].f32_beta)
            ok = ok && !ag_gguf_set_f32(w, "p.beta_start", 0.00085f);
        else
            ok = ok && !ag_gguf_set_f64(w, "p.beta_start", 0.00085);
        ok = ok && !ag_gguf_set_f64(w, "p.beta_end", 0.012);
        if (!cs[i].drop)
            ok = ok && !ag_gguf_set_u32(w, "p.steps_offset", 3);
        ok = ok && !ag_gguf_writer_write(w, path);
        ag_gguf_writer_free(w);
        CHECK(ok, "writing %s: %s", path, ag_last_error());
        ag_gguf *f = ok ? ag_gguf_open(path) : NULL;
        if (!f)
            continue;
        ag_sched_config c;
        const int rc = ag_unclip_read_sched(f, path, "p", &c);
        if (!cs[i].what) {
            CHECK(rc == 0 && c.kind == AG_SCHED_DDIM && c.beta_start == 0.00085 && c.beta_end == 0.012 &&
                      c.steps_offset == 3 && c.set_alpha_to_one && c.spacing == AG_SPACING_LINSPACE &&
                      c.clip_sample_range == 2.5f && c.prediction == AG_PRED_V,
                  "scheduler KVs read back: rc %d %s", rc, rc ? ag_last_error() : "");
        } else {
            CHECK(rc == -1 && strstr(ag_last_error(), cs[i].what), "rc %d, '%s' (want '%s')", rc, ag_last_error(),
                  cs[i].what);
            printf("# refused scheduler KVs: %s\n", ag_last_error());
        }
        ag_gguf_close(f);
    }
}

static void check_bad_loads(ag_backend *be, const char *partial_bin)
{
    char p[4096], msg[4096];
    ag_unclip *m = ag_unclip_load(be, "/nonexistent/model.gguf", NULL, NULL);
    CHECK(m == NULL && strstr(ag_last_error(), "/nonexistent/model.gguf"), "missing file: %s", ag_last_error());
    snprintf(p, sizeof p, "%s/codes.i32", ref_dir);
    m = ag_unclip_load(be, p, NULL, NULL);
    CHECK(m == NULL && ag_last_error()[0], "not a GGUF: %s", ag_last_error());
    /* a seed-unclip file without the UNet and the VAE (the converter's partial build) */
    snprintf(p, sizeof p, "%s/pndm-partial.gguf", out_dir);
    const int rc = ag_run_convert(partial_bin, "seed-unclip", ref_dir, "pndm", p, "f32", msg, sizeof msg);
    CHECK(rc == 0, "convert_partial: %s", msg);
    m = rc == 0 ? ag_unclip_load(be, p, NULL, NULL) : NULL;
    CHECK(m == NULL && strstr(ag_last_error(), "seed-unclip.unet."), "a file without the UNet: %s", ag_last_error());
    if (!m)
        printf("# refused a file without the UNet: %s\n", ag_last_error());
    ag_unclip_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s REF_DIR ANYGPT_CONVERT OUT_DIR CONVERT_PARTIAL\n", argv[0]);
        return 2;
    }
    ref_dir = argv[1];
    convert_bin = argv[2];
    out_dir = argv[3];
    if (!load_cases())
        return t_finish();
    for (int fi = 0; fi < 2; fi++) {
        static const char *const folders[] = {"pndm", "ddim"};
        char out[4096], msg[4096];
        snprintf(out, sizeof out, "%s/%s-f32.gguf", out_dir, folders[fi]);
        const int rc = ag_run_convert(convert_bin, "seed-unclip", ref_dir, folders[fi], out, "f32", msg, sizeof msg);
        CHECK(rc == 0, "anygpt-convert seed-unclip %s: %s", folders[fi], msg);
        if (rc != 0)
            return t_finish();
    }
    ag_backend *cpu = ag_backend_cpu_new(2);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (cpu) {
        printf("# device: cpu (%s)\n", ag_backend_device_name(cpu));
        run_backend(cpu, "cpu", false);
        check_bad_loads(cpu, argv[4]);
        check_read_sched();
        ag_backend_free(cpu);
    }
    const char *req = getenv("AG_REQUIRE_VULKAN");
    if (ag_vulkan_device_count() > 0) {
        ag_backend *vk = ag_backend_vulkan_new(-1);
        CHECK(vk != NULL, "vulkan backend: %s", ag_last_error());
        if (vk) {
            printf("# device: vulkan %s\n", ag_backend_device_name(vk));
            run_backend(vk, "vulkan", true);
            ag_backend_free(vk);
        }
    } else {
        CHECK(!(req && !strcmp(req, "1")), "AG_REQUIRE_VULKAN=1 but no Vulkan device");
        printf("# device: no vulkan device, vulkan part skipped\n");
    }
    return t_finish();
}
