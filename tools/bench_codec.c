/* anygpt-bench-codec: encode and decode time of a SEANet codec GGUF (speechtokenizer or encodec)
 * on cpu and/or vulkan, for a clip of N seconds of noise, next to a reference's times.
 *
 *   anygpt-bench-codec MODEL.gguf [--device cpu|vulkan|all] [--threads N] [--seconds S] [--reps R]
 *                      [--ref-cmd "CMD"] [--ref-enc SEC --ref-dec SEC]
 *
 * --ref-cmd runs CMD (e.g. the PyTorch reference's bench mode) in the same run and reads
 * 'encode_s X' and 'decode_s Y' lines from its output; ratios are printed as ours / reference.
 * Speed depends on shapes, not weight values: random real-sized weights are fine. */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads the reference's 'encode_s X' / 'decode_s Y' lines. */
static int run_ref(const char *cmd, double *enc, double *dec)
{
    fprintf(stderr, "reference: %s\n", cmd);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        double v;
        if (sscanf(line, "encode_s %lf", &v) == 1)
            *enc = v;
        else if (sscanf(line, "decode_s %lf", &v) == 1)
            *dec = v;
    }
    return pclose(p) == 0 && *enc > 0 && *dec > 0 ? 0 : -1;
}

static void ratio(const char *what, double ours, double ref)
{
    if (ref > 0)
        printf("    %s: %.3f s, reference %.3f s, ratio %.3f (%.1fx faster)\n", what, ours, ref, ours / ref,
               ref / ours);
    else
        printf("    %s: %.3f s\n", what, ours);
}

static int bench(ag_backend *be, const char *path, double seconds, int reps, double ref_enc, double ref_dec)
{
    double t0 = now_s();
    ag_seanet *m = ag_seanet_load(be, path, NULL, NULL);
    if (!m) {
        fprintf(stderr, "load %s: %s\n", path, ag_last_error());
        return -1;
    }
    const double t_load = now_s() - t0;
    const ag_seanet_info *in = ag_seanet_info_of(m);
    const int64_t n = (int64_t)(seconds * in->sample_rate);
    const int64_t t = ag_seanet_n_frames(m, n);
    float *audio = malloc((size_t)n * sizeof *audio), *out = malloc((size_t)(t * in->hop) * sizeof *out);
    int32_t *codes = malloc((size_t)(t * in->n_q) * sizeof *codes);
    int rc = -1;
    if (!audio || !out || !codes)
        goto done;
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) { /* noise with a tone: every code path busy */
        s = s * 1664525u + 1013904223u;
        audio[i] = 0.3f * sinf(0.05f * (float)i) + 0.2f * ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    /* warm-up (pipelines, first-touch of weights) on one second */
    const int64_t nw = n < in->sample_rate ? n : in->sample_rate;
    if (ag_seanet_encode(m, audio, nw, in->n_q, codes) || ag_seanet_decode(m, codes, ag_seanet_n_frames(m, nw), in->n_q, out))
        goto done;
    double best_e = INFINITY, best_d = INFINITY;
    for (int r = 0; r < reps; r++) {
        t0 = now_s();
        if (ag_seanet_encode(m, audio, n, in->n_q, codes))
            goto done;
        best_e = fmin(best_e, now_s() - t0);
        t0 = now_s();
        if (ag_seanet_decode(m, codes, t, in->n_q, out))
            goto done;
        best_d = fmin(best_d, now_s() - t0);
    }
    printf("%s (%s): %.1f s of audio at %d Hz, %lld frames x %d codebooks (load %.2f s, best of %d)\n",
           ag_backend_name(be), ag_backend_device_name(be), seconds, in->sample_rate, (long long)t, in->n_q, t_load,
           reps);
    ratio("encode", best_e, ref_enc);
    ratio("decode", best_d, ref_dec);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "%s: %s\n", ag_backend_name(be), ag_last_error());
    free(audio);
    free(out);
    free(codes);
    ag_seanet_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *device = "all", *ref_cmd = NULL;
    int threads = 2, reps = 2;
    double seconds = 10, ref_enc = 0, ref_dec = 0;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        if (!strcmp(a, "--device") && v)
            device = argv[++k];
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++k]);
        else if (!strcmp(a, "--seconds") && v)
            seconds = atof(argv[++k]);
        else if (!strcmp(a, "--reps") && v)
            reps = atoi(argv[++k]);
        else if (!strcmp(a, "--ref-cmd") && v)
            ref_cmd = argv[++k];
        else if (!strcmp(a, "--ref-enc") && v)
            ref_enc = atof(argv[++k]);
        else if (!strcmp(a, "--ref-dec") && v)
            ref_dec = atof(argv[++k]);
        else if (a[0] != '-' && !model)
            model = a;
        else {
            model = NULL;
            break;
        }
    }
    if (!model || seconds <= 0 || seconds > 3600 || reps < 1 || threads < 0 ||
        (strcmp(device, "cpu") && strcmp(device, "vulkan") && strcmp(device, "all"))) {
        fprintf(stderr, "usage: %s MODEL.gguf [--device cpu|vulkan|all] [--threads N] [--seconds S] [--reps R]\n"
                        "       [--ref-cmd \"CMD printing encode_s X / decode_s Y\"] [--ref-enc SEC --ref-dec SEC]\n",
                argv[0]);
        return 2;
    }
    if (ref_cmd && run_ref(ref_cmd, &ref_enc, &ref_dec)) {
        fprintf(stderr, "reference command failed or printed no encode_s/decode_s\n");
        return 1;
    }
    if (ref_enc > 0)
        printf("reference: encode %.3f s, decode %.3f s\n", ref_enc, ref_dec);
    int rc = 0;
    if (strcmp(device, "vulkan")) {
        ag_backend *cpu = ag_backend_cpu_new(threads);
        if (!cpu || bench(cpu, model, seconds, reps, ref_enc, ref_dec))
            rc = 1;
        if (cpu)
            printf("    (cpu threads: %d)\n", ag_backend_cpu_n_threads(cpu));
        ag_backend_free(cpu);
    }
    if (strcmp(device, "cpu")) {
        if (ag_vulkan_device_count() < 1) {
            printf("vulkan: no device\n");
        } else {
            ag_backend *vk = ag_backend_vulkan_new(-1);
            if (!vk || bench(vk, model, seconds, reps, ref_enc, ref_dec))
                rc = 1;
            ag_backend_free(vk);
        }
    }
    return rc;
}
