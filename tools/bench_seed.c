/* anygpt-bench-seed WORKDIR [--python PY --ref seed_tokenizer_ref.py --convert ANYGPT_CONVERT
 *                             --quantize ANYGPT_QUANTIZE] [--model FILE.gguf] [--dtypes f16,q8_0]
 *                            [--devices cpu,vulkan] [--threads N] [--reps R]
 *
 * SEED tokenizer speed for one 224x224 image. With --python/--ref/--convert/--quantize the
 * PyTorch reference (tests/reference/seed_tokenizer_ref.py --bench) writes a real-sized random
 * tokenizer in the published layout (eva_vit_g.pth: ViT-g, 40 blocks; seed_quantizer.pt:
 * Q-Former, codebook) into WORKDIR (kept for later runs) and times its own float32 encode on
 * the same image in this run; this tool converts it (f16, then q8_0 by anygpt-quantize) and
 * times ours per device and weight type, best of R encodes after a warm-up (page-in), printing
 * seconds, GFLOP/s, the time split (ViT / Q-Former+VQ, from the abort polls between stages), the
 * ratio to PyTorch, and how many codes match PyTorch's. --model times one GGUF instead (e.g. the
 * tiny test model on lavapipe) on noise. Not run by meson test. */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/seed_tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sh(const char *cmd)
{
    printf("$ %s\n", cmd);
    fflush(stdout);
    return system(cmd);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The whole file into dst (n bytes exactly). */
static int read_exact(const char *path, void *dst, size_t n)
{
    FILE *f = fopen(path, "rb");
    const size_t got = f ? fread(dst, 1, n, f) : 0;
    if (f)
        fclose(f);
    return got == n ? 0 : -1;
}

/* Multiply-adds x 2 of one encode at the model's sizes. */
static double encode_flops(const ag_seed_tokenizer_info *in, int n_cross)
{
    const double W = in->vit_width, M = in->vit_mlp, P = in->patch_size, G = in->image_size / in->patch_size;
    const double T = G * G + 1, H = in->qf_hidden, F = in->qf_ffn, Q = in->n_query, C = in->code_dim;
    const double vit = 2 * G * G * W * 3 * P * P + in->vit_depth * (2 * T * (3 * W * W + W * W + 2 * W * M) + 4 * T * T * W);
    const double self = 2 * Q * 4 * H * H + 4 * Q * Q * H, cross = 2 * Q * 2 * H * H + 2 * T * 2 * W * H + 4 * Q * T * H;
    const double ffn = 2 * Q * 2 * H * F;
    return vit + in->qf_layers * (self + ffn) + n_cross * cross + 2 * Q * (H * H + H * C) + 2 * Q * in->codebook_size * C;
}

typedef struct {
    double t[64];
    int n;
} stage_clock;

static bool tick(void *user)
{
    stage_clock *c = user;
    if (c->n < 64)
        c->t[c->n++] = now_s();
    return false;
}

static int bench_one(ag_backend *be, const char *dev, const char *path, const char *label, const float *pix,
                     const int32_t *ref_codes, int reps, double torch_s)
{
    double t0 = now_s();
    ag_seed_tokenizer *m = ag_seed_tokenizer_load(be, path, NULL, NULL);
    const double t_load = now_s() - t0;
    if (!m) {
        printf("%s %s: load failed: %s\n", dev, label, ag_last_error());
        return -1;
    }
    const ag_seed_tokenizer_info *in = ag_seed_tokenizer_info_of(m);
    ag_gguf *g = ag_gguf_open(path);
    const int64_t k = g ? ag_gguf_find_key(g, "seed-tokenizer.qformer.cross_attention_layers") : -1;
    const int n_cross = k >= 0 ? (int)ag_gguf_arr_n(g, k) : 0;
    ag_gguf_close(g);
    const double flops = encode_flops(in, n_cross);
    int32_t codes[4096];
    t0 = now_s();
    if (ag_seed_tokenizer_encode(m, pix, codes, NULL, NULL) != 0) {
        printf("%s %s: encode failed: %s\n", dev, label, ag_last_error());
        ag_seed_tokenizer_free(m);
        return -1;
    }
    const double warm = now_s() - t0;
    double best = 1e30, vit_s = 0, head_s = 0;
    for (int r = 0; r < reps; r++) {
        stage_clock clk = {{0}, 0};
        t0 = now_s();
        ag_seed_tokenizer_encode(m, pix, codes, tick, &clk);
        const double t1 = now_s(), dt = t1 - t0;
        if (dt < best && clk.n >= 2) {
            best = dt;
            head_s = t1 - clk.t[clk.n - 1];
            vit_s = clk.t[clk.n - 1] - t0;
        }
    }
    printf("%s (%s) %s: load %.2f s, first encode %.2f s, encode %.3f s (ViT %.3f s, Q-Former + VQ %.3f s), "
           "%.1f GFLOP/s of %.1f GFLOP",
           dev, ag_backend_device_name(be), label, t_load, warm, best, vit_s, head_s, flops / best * 1e-9, flops * 1e-9);
    if (torch_s > 0)
        printf(", %.2fx PyTorch's time (goal <= 0.33)", best / torch_s);
    printf("\n");
    if (ref_codes) {
        int same = 0;
        for (int i = 0; i < in->n_query; i++)
            same += codes[i] == ref_codes[i];
        printf("    codes equal to PyTorch's float32 ones: %d of %d\n", same, in->n_query);
    }
    ag_seed_tokenizer_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *py = NULL, *ref = NULL, *conv = NULL, *quant = NULL, *model = NULL;
    const char *dtypes = "f16,q8_0", *devs = "cpu,vulkan";
    int threads = 2, reps = 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            dir = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--python"))
            py = v;
        else if (!strcmp(a, "--ref"))
            ref = v;
        else if (!strcmp(a, "--convert"))
            conv = v;
        else if (!strcmp(a, "--quantize"))
            quant = v;
        else if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--dtypes"))
            dtypes = v;
        else if (!strcmp(a, "--devices"))
            devs = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v) > 0 ? atoi(v) : 1;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (!dir || (!model && (!py || !ref || !conv || !quant))) {
        fprintf(stderr, "usage: %s WORKDIR (--python PY --ref seed_tokenizer_ref.py --convert ANYGPT_CONVERT "
                        "--quantize ANYGPT_QUANTIZE | --model FILE.gguf) [--dtypes f16,q8_0] [--devices cpu,vulkan] "
                        "[--threads N] [--reps R]\n",
                argv[0]);
        return 2;
    }
    mkdir(dir, 0755);
    char cmd[16384], path[4096], files[2][4096];
    const char *labels[2] = {"f16 weights", "q8_0 weights"};
    int n_files = 0;
    double torch_s = 0;
    float *pix = NULL;
    int32_t ref_codes[32];
    bool have_ref_codes = false;
    if (!model) {
        snprintf(cmd, sizeof cmd, "AG_BENCH_THREADS=%d '%s' '%s' --bench '%s'", threads, py, ref, dir);
        printf("$ %s\n", cmd);
        FILE *p = popen(cmd, "r");
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            fputs(line, stdout);
            sscanf(line, "torch_s %lf", &torch_s);
        }
        if (!p || pclose(p) != 0 || torch_s <= 0) {
            fprintf(stderr, "the PyTorch reference failed (needs torch in %s)\n", py);
            return 1;
        }
        snprintf(files[0], sizeof files[0], "%s/seed-f16.gguf", dir);
        snprintf(files[1], sizeof files[1], "%s/seed-q8_0.gguf", dir);
        snprintf(cmd, sizeof cmd, "'%s' seed-tokenizer '%s' '%s' --quiet --dtype f16", conv, dir, files[0]);
        if (!exists(files[0]) && sh(cmd) != 0)
            return 1;
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' q8_0 > /dev/null", quant, files[0], files[1]);
        if (strstr(dtypes, "q8_0") && !exists(files[1]) && sh(cmd) != 0)
            return 1;
        n_files = 2;
        snprintf(path, sizeof path, "%s/bench.codes.i32", dir);
        have_ref_codes = read_exact(path, ref_codes, sizeof ref_codes) == 0;
        printf("pytorch float32 (%d threads): encode %.3f s\n", threads, torch_s);
    } else {
        snprintf(files[0], sizeof files[0], "%s", model);
        labels[0] = model;
        n_files = 1;
    }
    int rc = 0;
    for (int d = 0; d < 2; d++) {
        const char *name = d ? "vulkan" : "cpu";
        if (!strstr(devs, name))
            continue;
        ag_backend *be = d ? ag_backend_vulkan_new(-1) : ag_backend_cpu_new(threads);
        if (!be) {
            printf("%s: unavailable (%s)\n", name, ag_last_error());
            continue;
        }
        for (int f = 0; f < n_files; f++) {
            if (!model && !strstr(dtypes, f ? "q8_0" : "f16"))
                continue;
            /* the image: the reference's when it ran, else noise at the model's size */
            ag_seed_tokenizer *probe = pix ? NULL : ag_seed_tokenizer_load(be, files[f], NULL, NULL);
            if (!pix && probe) {
                const size_t S = (size_t)ag_seed_tokenizer_info_of(probe)->image_size;
                pix = malloc(3 * S * S * sizeof *pix);
                snprintf(path, sizeof path, "%s/bench.pix.f32", dir);
                if (pix && (model || read_exact(path, pix, 3 * S * S * sizeof *pix) != 0)) {
                    srand(1);
                    for (size_t i = 0; i < 3 * S * S; i++)
                        pix[i] = (float)rand() / (float)RAND_MAX * 4.0f - 2.0f;
                }
            }
            ag_seed_tokenizer_free(probe);
            if (!pix || bench_one(be, name, files[f], labels[f], pix, have_ref_codes ? ref_codes : NULL, reps,
                                  torch_s) != 0)
                rc = 1;
        }
        ag_backend_free(be);
    }
    free(pix);
    return rc;
}
