/* SoundStorm end to end: a tiny random checkpoint in the AnyGPT and the original naming (made by
 * tests/reference/soundstorm_ref.py) is converted by anygpt-convert (both namings must give the
 * same GGUF) and run on cpu and vulkan: one forward pass within 1e-4 of the reference's peak
 * logit, whole generations (greedy, voice prompt, sampled, 1 step) token-identical, the mask
 * schedule identical to PyTorch's float32 one. Also: converter refusals, hostile arguments.
 *
 * usage: test_soundstorm FIXTURE_DIR ANYGPT_CONVERT OUT_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/soundstorm.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fix_dir, *convert_bin, *out_dir;

static void *fixture(const char *name, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fix_dir, name);
    void *p = ag_read_file(path, n);
    CHECK(p != NULL, "cannot read fixture %s", path);
    return p;
}

static void check_refused(const char *in, const char *expect)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/refused.gguf", out_dir);
    ag_check_refused(convert_bin, "soundstorm", fix_dir, in, out, expect);
}

static void check_schedule(void)
{
    size_t n;
    int32_t *s = fixture("sched.i32", &n);
    if (!s)
        return;
    /* steps <= 8 must match exactly (AnyGPT uses 3 and 4); above, PyTorch's vectorised
     * linspace/cos round differently from its scalar path, so only report */
    size_t i = 0, rows = 0, bad = 0, bad_hi = 0;
    while (i + 2 <= n / 4) {
        const int steps = s[i], len = s[i + 1];
        for (int k = 0; k <= steps; k++) {
            const bool differ = ag_soundstorm_mask_count(steps, k, len) != s[i + 2 + k];
            bad += differ && steps <= 8;
            bad_hi += differ && steps > 8;
        }
        i += 3 + (size_t)steps;
        rows++;
    }
    printf("# mask schedule: %zu (steps, N) rows; steps <= 8: %zu counts differ; steps 9..12: %zu differ\n", rows,
           bad, bad_hi);
    CHECK(rows == 132 && bad == 0, "mask schedule: %zu rows, %zu counts differ from PyTorch", rows, bad);
    free(s);
}

static void check_forward(ag_soundstorm *m, const char *dev)
{
    size_t nt, nc, nl;
    int32_t *tok = fixture("fwd.tok.i32", &nt), *cond = fixture("fwd.cond.i32", &nc);
    float *ref = fixture("fwd.logits.f32", &nl);
    const ag_soundstorm_info *in = ag_soundstorm_info_of(m);
    const int64_t n = (int64_t)(nc / 4);
    float *got = ref ? malloc(nl) : NULL;
    if (tok && cond && got && nl / 4 == (size_t)(n * in->n_q * in->codebook_size)) {
        int rc = ag_soundstorm_forward(m, tok, cond, n, got);
        CHECK(rc == 0, "%s forward: %s", dev, ag_last_error());
        double peak;
        const double err = ag_max_abs_err(got, ref, nl / 4, &peak);
        printf("# %s forward: %lld frames, max |err| %.3g, peak %.3g (rel %.3g)\n", dev, (long long)n, err, peak,
               err / peak);
        CHECK(rc == 0 && err <= 1e-4 * peak, "%s forward logits: max err %g vs peak %g", dev, err, peak);
    } else {
        CHECK(false, "forward fixture sizes");
    }
    free(tok);
    free(cond);
    free(ref);
    free(got);
}

static void check_generation(ag_soundstorm *m, const char *dev, const char *name)
{
    char f[256];
    size_t na, ns, np, no;
    snprintf(f, sizeof f, "gen_%s.args.txt", name);
    char *args = fixture(f, &na);
    snprintf(f, sizeof f, "gen_%s.sem.i32", name);
    int32_t *sem = fixture(f, &ns);
    snprintf(f, sizeof f, "gen_%s.prompt.i32", name);
    int32_t *prompt = fixture(f, &np);
    snprintf(f, sizeof f, "gen_%s.out.i32", name);
    int32_t *ref = fixture(f, &no);
    long long t = 0, p = 0, steps = 0, seed = 0, greedy = 0;
    char *a = args ? realloc(args, na + 1) : NULL;
    if (a)
        a[na] = 0;
    args = a;
    if (args && sem && prompt && ref && sscanf(args, "%lld %lld %lld %lld %lld", &t, &p, &steps, &seed, &greedy) == 5 &&
        no == (size_t)t * 8 * 4) {
        int32_t *got = calloc((size_t)t * 8, sizeof *got);
        int rc = got ? ag_soundstorm_generate(m, sem, t, p ? prompt : NULL, p, (int)steps, (uint64_t)seed, greedy != 0,
                                              got)
                     : -1;
        CHECK(rc == 0, "%s generate %s: %s", dev, name, ag_last_error());
        size_t diff = 0;
        for (long long i = 0; rc == 0 && i < t * 8; i++)
            diff += got[i] != ref[i];
        printf("# %s generation %s: %lld frames, prompt %lld, steps %lld, %s: %zu of %lld tokens differ\n", dev, name,
               t, p, steps, greedy ? "greedy" : "sampled", diff, t * 8);
        CHECK(rc == 0 && diff == 0, "%s generation %s: %zu tokens differ", dev, name, diff);
        free(got);
    } else {
        CHECK(false, "generation fixture %s", name);
    }
    free(args);
    free(sem);
    free(prompt);
    free(ref);
}

static void check_hostile(ag_soundstorm *m)
{
    int32_t sem[4] = {1, 2, 3, 1024}, out[32], prompt[8] = {1, 2, 3, 4, 5, 6, 7, 1024};
    CHECK(ag_soundstorm_generate(m, sem, 4, NULL, 0, 3, 1, true, out) != 0 &&
              strstr(ag_last_error(), "semantic token 1024") != NULL,
          "out-of-range semantic token: %s", ag_last_error());
    sem[3] = 0;
    CHECK(ag_soundstorm_generate(m, sem, 4, prompt, 1, 3, 1, true, out) != 0 &&
              strstr(ag_last_error(), "prompt acoustic token 1024") != NULL,
          "mask id in the prompt: %s", ag_last_error());
    CHECK(ag_soundstorm_generate(m, sem, 4, NULL, 0, 0, 1, true, out) != 0, "steps 0 accepted");
    CHECK(ag_soundstorm_generate(m, sem, 0, NULL, 0, 3, 1, true, out) != 0, "empty input accepted");
    CHECK(ag_soundstorm_generate(m, sem, AG_SOUNDSTORM_MAX_FRAMES + 1, NULL, 0, 3, 1, true, out) != 0,
          "over-long input accepted");
}

static void run_backend(ag_backend *be, const char *dev, const char *gguf)
{
    ag_soundstorm *m = ag_soundstorm_load(be, gguf, NULL, NULL);
    CHECK(m != NULL, "%s load: %s", dev, ag_last_error());
    if (!m)
        return;
    check_forward(m, dev);
    static const char *const cases[] = {"plain", "prompt", "sampled", "steps1", "sampled_long"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_generation(m, dev, cases[i]);
    check_hostile(m);
    ag_soundstorm_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s FIXTURE_DIR ANYGPT_CONVERT OUT_DIR\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    convert_bin = argv[2];
    out_dir = argv[3];
    char g_any[4096], g_orig[4096], msg[4096];
    snprintf(g_any, sizeof g_any, "%s/ss-anygpt.gguf", out_dir);
    snprintf(g_orig, sizeof g_orig, "%s/ss-orig.gguf", out_dir);
    CHECK(ag_run_convert(convert_bin, "soundstorm", fix_dir, "anygpt", g_any, "f32", msg, sizeof msg) == 0,
          "convert AnyGPT naming: %s", msg);
    CHECK(ag_run_convert(convert_bin, "soundstorm", fix_dir, "orig/SoundStorm_best_dev.pt", g_orig, "f32", msg,
                         sizeof msg) == 0,
          "convert original naming: %s", msg);
    char g_buf[4096];
    snprintf(g_buf, sizeof g_buf, "%s/ss-buffers.gguf", out_dir);
    CHECK(ag_run_convert(convert_bin, "soundstorm", fix_dir, "with_buffers.pt", g_buf, "f32", msg, sizeof msg) == 0,
          "convert with buffers: %s", msg);
    CHECK(ag_same_file(g_any, g_orig), "the two namings convert to different GGUF files");
    CHECK(ag_same_file(g_any, g_buf), "non-persistent buffers were not dropped");
    check_refused("bad_missing.pt", "lacks tensor 'net.conformer.layers.1.attn.fn.to_kv.weight'");
    check_refused("bad_unknown.pt", "unexpected tensor 'net.conformer.layers.0.attn.fn.rel_pos.weight'");
    check_refused("bad_shape.pt", "unsupported SoundStorm shape");
    check_refused("bad_trunc.pt", "truncated");
    check_refused("no_such_file.pt", "no_such_file.pt");
    check_schedule();

    ag_backend *cpu = ag_backend_cpu_new(2);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (cpu) {
        printf("# device: cpu (%d threads)\n", ag_backend_cpu_n_threads(cpu));
        run_backend(cpu, "cpu", g_any);
        ag_backend_free(cpu);
    }
    const char *req = getenv("AG_REQUIRE_VULKAN");
    if (ag_vulkan_device_count() > 0) {
        ag_backend *vk = ag_backend_vulkan_new(-1);
        CHECK(vk != NULL, "vulkan backend: %s", ag_last_error());
        if (vk) {
            printf("# device: vulkan %s\n", ag_backend_device_name(vk));
            run_backend(vk, "vulkan", g_any);
            ag_backend_free(vk);
        }
    } else {
        CHECK(!(req && !strcmp(req, "1")), "AG_REQUIRE_VULKAN=1 but no Vulkan device");
        printf("# device: no vulkan device, vulkan part skipped\n");
    }
    return t_finish();
}
