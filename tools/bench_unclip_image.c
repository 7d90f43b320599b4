/* anygpt-bench-unclip MODEL.gguf [--steps N] [--target-steps N] [--guidance G] [--seed S]
 *                                [--threads N] [--device cpu|vulkan] [--ppm OUT.ppm]
 *
 * One whole image through the unCLIP de-tokenizer (ag_unclip_generate: SEED decode, N denoising
 * steps with classifier-free guidance, VAE decode), as the element runs it: load time, seconds of
 * every denoising step (one UNet evaluation of a batch of 2 and a scheduler step), the VAE decode,
 * the whole image, and the peak resident memory (weights mapped + the largest compute buffer).
 * With --steps below --target-steps (default 20, AnyGPT's), the image at --target-steps is also
 * extrapolated: measured embed + VAE, plus the target's number of evaluations times the mean
 * measured step (printed as computed, not measured). Random real-size weights: see README
 * (tests/reference/unclip_pipeline_ref.py --real). Not run by meson test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/unclip.h"
#include "anygpt/unclip_sched.h"
#include "unclip_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static void loadavg(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)n, f))
            buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

typedef struct {
    double t_prev, c_prev, t_first, sum, csum;
    int n;
} step_times;

static bool on_step(void *user, int32_t step, int32_t n_steps)
{
    step_times *s = user;
    const double t = now_s(), c = cpu_s();
    if (step == 1) {
        s->t_first = t - s->t_prev; /* embed + first evaluation */
    } else {
        s->sum += t - s->t_prev;
        s->csum += c - s->c_prev;
        s->n++;
    }
    printf("step %2d/%d: %6.2f s (%.1f CPU s), peak RSS %.0f MB\n", step, n_steps, t - s->t_prev, c - s->c_prev,
           peak_rss_mb());
    fflush(stdout);
    s->t_prev = t;
    s->c_prev = c;
    return true;
}

static int write_ppm(const char *path, const uint8_t *rgb, int side)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f, "P6\n%d %d\n255\n", side, side);
    const size_t n = (size_t)side * (size_t)side * 3;
    const int rc = fwrite(rgb, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *device = "cpu", *ppm = NULL;
    int threads = 2, steps = 20, target = 20;
    double guidance = 10.0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--target-steps") && i + 1 < argc)
            target = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--guidance") && i + 1 < argc)
            guidance = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--ppm") && i + 1 < argc)
            ppm = argv[++i];
        else if (argv[i][0] != '-' && !model)
            model = argv[i];
        else
            model = NULL, i = argc;
    }
    if (!model || steps < 1 || target < 1) {
        fprintf(stderr, "usage: %s MODEL.gguf [--steps N] [--target-steps N] [--guidance G] [--seed S] "
                        "[--threads N] [--device cpu|vulkan] [--ppm OUT.ppm]\n", argv[0]);
        return 2;
    }
    ag_backend *be = !strcmp(device, "vulkan") ? ag_backend_vulkan_new(-1) : ag_backend_cpu_new(threads);
    if (!be) {
        fprintf(stderr, "backend %s: %s\n", device, ag_last_error());
        return 1;
    }
    char load[128];
    loadavg(load, sizeof load);
    printf("device: %s (%s), load average %s\n", device, ag_backend_device_name(be), load);
    double t0 = now_s();
    ag_unclip *m = ag_unclip_load(be, model, NULL, NULL);
    if (!m) {
        fprintf(stderr, "%s: %s\n", model, ag_last_error());
        ag_backend_free(be);
        return 1;
    }
    const ag_unclip_info *in = ag_unclip_info_of(m);
    printf("loaded %s in %.2f s: %d codes, latents %dx%dx%d -> %dx%d image, %s, peak RSS %.0f MB\n", model,
           now_s() - t0, in->n_codes, in->latent_channels, in->latent_size, in->latent_size, in->image_size,
           in->image_size, in->scheduler, peak_rss_mb());
    int32_t *codes = malloc(sizeof(int32_t) * (size_t)in->n_codes);
    uint8_t *rgb = malloc((size_t)in->image_size * (size_t)in->image_size * 3);
    int rc = 1;
    if (!codes || !rgb)
        goto done;
    for (int i = 0; i < in->n_codes; i++)
        codes[i] = (int32_t)((i * 2654435761u) % (uint32_t)in->codebook_size);
    const ag_unclip_params p = {steps, (float)guidance, 0, seed};
    step_times st = {.t_prev = now_s(), .c_prev = cpu_s()};
    t0 = st.t_prev;
    const double c0 = st.c_prev;
    if (ag_unclip_generate(m, codes, in->n_codes, &p, on_step, &st, rgb) != 0) {
        fprintf(stderr, "generate: %s\n", ag_last_error());
        goto done;
    }
    const double total = now_s() - t0, ctotal = cpu_s() - c0, vae = now_s() - st.t_prev;
    printf("image: %d steps, guidance %g: %.1f s (%.0f CPU s); VAE decode %.1f s; peak RSS %.0f MB\n", steps,
           guidance, total, ctotal, vae, peak_rss_mb());
    ag_sched_config sc, nz;
    ag_unclip_sched_configs(m, &sc, &nz);
    ag_sched *s = ag_sched_new(&sc, target);
    if (s && st.n > 0 && target != steps) {
        const double step = st.sum / st.n, first = st.t_first;
        const int evals = ag_sched_n_evals(s);
        printf("computed for %d steps (%d evaluations): %.1f s = first step incl. embed %.1f s + %d x mean step "
               "%.1f s (%.0f CPU s) + VAE %.1f s\n",
               target, evals, first + (evals - 1) * step + vae, first, evals - 1, step, st.csum / st.n, vae);
    }
    ag_sched_free(s);
    loadavg(load, sizeof load);
    printf("load average at the end %s\n", load);
    if (ppm && write_ppm(ppm, rgb, in->image_size) != 0)
        fprintf(stderr, "cannot write %s\n", ppm);
    rc = 0;
done:
    free(codes);
    free(rgb);
    ag_unclip_free(m);
    ag_backend_free(be);
    return rc;
}
