/* anygpt-bench-unet MODEL.gguf WORKDIR [--threads N] [--device cpu|vulkan] [--side N] [--no-unet]
 *                                      [--no-vae] [--pytorch UNET_S VAE_S] [--dump PREFIX]
 *
 * One UNet2DConditionModel evaluation (batch 2, the latent side the file's sample_size says:
 * 96x96 for SD 2.1 unCLIP) and one VAE decode (that latent -> 768x768) at the real shapes,
 * timed, with the arithmetic rate (GFLOP counted from the model's shapes: convolutions, linear
 * layers and attention products) and the peak resident memory of this process after each part
 * (weights mapped + activations: the whole image of the pipeline does 21 UNet evaluations and one
 * decode with these same buffers). WORKDIR holds what `tests/reference/unclip_unet_ref.py
 * --bench WORKDIR` writes: the inputs (x.f32, ctx.f32, cls.f32, lat.f32), PyTorch's float32
 * outputs on the fp16-rounded weights (unet_out.f32, img.f32: the relative error is printed) and
 * the diffusers folders the MODEL was converted from; --pytorch gives its times for the ratio.
 * --side N runs a smaller latent (inputs cropped, no reference); --dump PREFIX writes the outputs
 * (PREFIX.unet.f32, PREFIX.vae.f32) to compare devices.
 * Not run by meson test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/unet.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process (all threads): less sensitive than the wall clock to a shared machine */
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

/* n floats from DIR/name; NULL if absent or short. */
static float *read_f32(const char *dir, const char *name, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    float *p = f ? malloc(n * sizeof *p) : NULL;
    size_t got = p ? fread(p, sizeof *p, n, f) : 0;
    if (f)
        fclose(f);
    if (got != n) {
        free(p);
        return NULL;
    }
    return p;
}

/* DUMP.NAME: n raw floats (to compare devices at any size) */
static void dump_f32(const char *dump, const char *name, const float *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s", dump, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof *p, n, f) != n)
        fprintf(stderr, "cannot write %s\n", path);
    if (f)
        fclose(f);
}

static double rel_err(const float *got, const float *ref, size_t n)
{
    double e = 0, peak = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)got[i] - ref[i]));
        peak = fmax(peak, fabs(ref[i]));
    }
    return e / peak;
}

static bool arr_i32(const ag_gguf *f, const char *key, int32_t *out, int *n)
{
    const int64_t i = ag_gguf_find_key(f, key);
    if (i < 0 || ag_gguf_arr_type(f, i) != AG_GGUF_INT32 || ag_gguf_arr_n(f, i) > 8)
        return false;
    *n = (int)ag_gguf_arr_n(f, i);
    memcpy(out, ag_gguf_arr_data(f, i), (size_t)*n * sizeof *out);
    return true;
}

static uint32_t u32(const ag_gguf *f, const char *key)
{
    uint32_t v = 0;
    ag_gguf_get_u32(f, key, &v);
    return v;
}

static double conv_flop(double k, double cin, double cout, double px) { return 2 * k * k * cin * cout * px; }

/* Multiply-adds x 2 of one UNet evaluation (batch b, side s): convolutions, linears, attention. */
static double unet_gflop(const ag_gguf *f, int b, int s)
{
    int32_t bo[8], layers[8], dattn[8], uattn[8], heads[8], tl[8];
    int n;
    if (!arr_i32(f, "seed-unclip.unet.block_out_channels", bo, &n) ||
        !arr_i32(f, "seed-unclip.unet.layers_per_block", layers, &n) ||
        !arr_i32(f, "seed-unclip.unet.down_cross_attn", dattn, &n) ||
        !arr_i32(f, "seed-unclip.unet.up_cross_attn", uattn, &n) ||
        !arr_i32(f, "seed-unclip.unet.attention_heads", heads, &n) ||
        !arr_i32(f, "seed-unclip.unet.transformer_layers", tl, &n))
        return 0;
    const double L = u32(f, "seed-unclip.unet.context_len"), X = u32(f, "seed-unclip.unet.cross_attention_dim");
    const double kin = u32(f, "seed-unclip.unet.conv_in_kernel"), kout = u32(f, "seed-unclip.unet.conv_out_kernel");
    double fl = 0, side = s;
#define RES(ci, co, px) (conv_flop(3, ci, co, px) + conv_flop(3, co, co, px) + ((ci) != (co) ? conv_flop(1, ci, co, px) : 0))
#define TR(c, px, nt)                                                                                                  \
    ((nt) * (2.0 * (px) * (c) * (c) * 4 /* q k v o self */ + 2.0 * (px) * (c) * (c) * 2 /* q o cross */ +             \
             2.0 * b * L * X * (c) * 2 /* k v cross */ + 2.0 * (px) * (c) * (c) * 12 /* ff: 8c + 4c wide */ +                               \
             4.0 * (px) * ((px) / b) * (c) /* self scores + values */ + 4.0 * (px) * L * (c)) +                       \
     2.0 * (px) * (c) * (c) * 2 /* proj in/out */)
    fl += conv_flop(kin, u32(f, "seed-unclip.unet.in_channels"), bo[0], b * side * side);
    int64_t ch = bo[0];
    for (int i = 0; i < n; i++) {
        const double px = b * side * side;
        for (int j = 0; j < layers[i]; j++) {
            fl += RES(j ? bo[i] : ch, bo[i], px);
            if (dattn[i])
                fl += TR(bo[i], px, tl[i]);
        }
        ch = bo[i];
        if (i != n - 1) {
            side /= 2;
            fl += conv_flop(3, ch, ch, b * side * side);
        }
    }
    const double pxm = b * side * side;
    fl += 2 * RES(ch, ch, pxm) + TR(ch, pxm, tl[n - 1]);
    for (int i = 0; i < n; i++) {
        const int r = n - 1 - i;
        const double px = b * side * side;
        const int64_t in_ch = bo[r > 0 ? r - 1 : 0];
        for (int j = 0; j <= layers[r]; j++) {
            const double cin = (j == 0 ? ch : bo[r]) + (j == layers[r] ? in_ch : bo[r]);
            fl += RES(cin, bo[r], px);
            if (uattn[i])
                fl += TR(bo[r], px, tl[r]);
        }
        ch = bo[r];
        if (i != n - 1) {
            side *= 2;
            fl += conv_flop(3, ch, ch, b * side * side);
        }
    }
    fl += conv_flop(kout, bo[0], u32(f, "seed-unclip.unet.out_channels"), b * side * side);
    return fl / 1e9;
}

static double vae_gflop(const ag_gguf *f, int s)
{
    int32_t bo[8];
    int n;
    if (!arr_i32(f, "seed-unclip.vae.block_out_channels", bo, &n))
        return 0;
    const double layers = u32(f, "seed-unclip.vae.layers_per_block");
    double side = s, ch = bo[n - 1], px = side * side;
    double fl = conv_flop(3, u32(f, "seed-unclip.vae.latent_channels"), ch, px);
    fl += 2 * RES(ch, ch, px) + 4 * 2.0 * px * ch * ch + 4.0 * px * px * ch;
    for (int i = 0; i < n; i++) {
        const double co = bo[n - 1 - i];
        for (int j = 0; j <= layers; j++)
            fl += RES(j ? co : ch, co, px);
        ch = co;
        if (i != n - 1) {
            side *= 2;
            px = side * side;
            fl += conv_flop(3, ch, ch, px);
        }
    }
    fl += conv_flop(3, bo[0], 3, px);
    return fl / 1e9;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *dir = NULL, *device = "cpu", *dump = NULL;
    int threads = 2, side_arg = 0;
    bool do_unet = true, do_vae = true;
    double py_unet = 0, py_vae = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
            dump = argv[++i];
        else if (!strcmp(argv[i], "--side") && i + 1 < argc)
            side_arg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-unet"))
            do_unet = false;
        else if (!strcmp(argv[i], "--no-vae"))
            do_vae = false;
        else if (!strcmp(argv[i], "--pytorch") && i + 2 < argc) {
            py_unet = atof(argv[++i]);
            py_vae = atof(argv[++i]);
        } else if (!model)
            model = argv[i];
        else if (!dir)
            dir = argv[i];
    }
    if (!model || !dir) {
        fprintf(stderr, "usage: anygpt-bench-unet MODEL.gguf WORKDIR [--threads N] [--device cpu|vulkan] [--no-unet] "
                        "[--no-vae] [--pytorch UNET_S VAE_S]\n");
        return 2;
    }
    ag_backend *be = !strcmp(device, "vulkan") ? ag_backend_vulkan_new(-1) : ag_backend_cpu_new(threads);
    if (!be) {
        fprintf(stderr, "%s: %s\n", device, ag_last_error());
        return 1;
    }
    printf("device: %s\n", ag_backend_device_name(be));
    __builtin_cpu_init();
    if (strstr(ag_backend_device_name(be), "sgemm Haswell") && __builtin_cpu_supports("avx512f"))
        printf("note: OpenBLAS runs its AVX2 (Haswell) kernels on this AVX-512 CPU; OPENBLAS_CORETYPE=SkylakeX "
               "selects its AVX-512 ones (here ~35%% less CPU for the UNet and the VAE)\n");
    double t0 = now_s();
    ag_weights *w = ag_weights_load(be, model, "seed-unclip", NULL, NULL);
    if (!w) {
        fprintf(stderr, "%s\n", ag_last_error());
        return 1;
    }
    const ag_gguf *f = ag_weights_gguf(w);
    printf("loaded %s (%.0f MB) in %.1f s\n", model, (double)ag_weights_total_bytes(w) / 1e6, now_s() - t0);
    int rc = 0;
    int32_t side = 96, full = 96; /* latent side: the model's, or --side (inputs cropped, no reference) */
    /* both models alive from here on, as in the pipeline */
    ag_unet *u = do_unet ? ag_unet_new(be, w) : NULL;
    ag_vae_decoder *v = do_vae ? ag_vae_decoder_new(be, w) : NULL;
    if ((do_unet && !u) || (do_vae && !v)) {
        fprintf(stderr, "%s: %s\n", do_unet && !u ? "unet" : "vae", ag_last_error());
        return 1;
    }
    printf("models ready, peak RSS %.0f MB\n", peak_rss_mb());
    if (do_unet) {
        const ag_unet_info *in = ag_unet_info_of(u);
        if (in->sample_size > 0)
            side = in->sample_size;
        full = side;
        if (side_arg > 0)
            side = side_arg;
        const int B = 2;
        const size_t nx = (size_t)B * in->in_channels * full * full, nout = (size_t)B * in->out_channels * side * side;
        float *x = read_f32(dir, "x.f32", nx), *ctx = read_f32(dir, "ctx.f32", (size_t)B * in->context_len *
                                                                                in->cross_attention_dim);
        float *cls = in->class_embed_dim ? read_f32(dir, "cls.f32", (size_t)B * in->class_embed_dim) : NULL;
        float *ref = side == full ? read_f32(dir, "unet_out.f32", nout) : NULL, *out = malloc(nout * sizeof *out);
        if (!x || !ctx || (in->class_embed_dim && !cls) || !out) {
            fprintf(stderr, "%s: missing inputs (x.f32, ctx.f32, cls.f32)\n", dir);
            return 1;
        }
        t0 = now_s();
        double c0 = cpu_s();
        if (ag_unet_forward(u, x, B, side, side, 951.0f, cls, ctx, out) != 0) {
            fprintf(stderr, "unet forward: %s\n", ag_last_error());
            return 1;
        }
        const double dt = now_s() - t0, dc = cpu_s() - c0, gf = unet_gflop(f, B, side);
        printf("unet: batch %d %dx%d: %.2f s (%.1f cpu s), %.0f GFLOP, %.1f GFLOP/s", B, side, side, dt, dc, gf,
               gf / dt);
        if (ref)
            printf(", max |err| / peak vs PyTorch %.3g", rel_err(out, ref, nout));
        if (py_unet > 0)
            printf(", PyTorch %.2f s (%.1f GFLOP/s): ratio %.2f", py_unet, gf / py_unet, dt / py_unet);
        printf(", peak RSS %.0f MB\n", peak_rss_mb());
        if (dump)
            dump_f32(dump, "unet.f32", out, nout);
        free(x);
        free(ctx);
        free(cls);
        free(ref);
        free(out);
    }
    if (do_vae) {
        const ag_vae_info *in = ag_vae_info_of(v);
        if (side_arg > 0)
            side = side_arg;
        const int32_t os = side * in->scale_factor;
        float *lat = read_f32(dir, "lat.f32", (size_t)in->latent_channels * full * full);
        float *ref = side == full ? read_f32(dir, "img.f32", (size_t)3 * os * os) : NULL;
        float *img = malloc((size_t)3 * os * os * sizeof *img);
        if (!lat || !img) {
            fprintf(stderr, "%s: missing lat.f32\n", dir);
            return 1;
        }
        t0 = now_s();
        double c0 = cpu_s();
        if (ag_vae_decode_f32(v, lat, side, side, img) != 0) {
            fprintf(stderr, "vae decode: %s\n", ag_last_error());
            return 1;
        }
        const double dt = now_s() - t0, dc = cpu_s() - c0, gf = vae_gflop(f, side);
        printf("vae: %dx%d -> %dx%d: %.2f s (%.1f cpu s), %.0f GFLOP, %.1f GFLOP/s", side, side, os, os, dt, dc, gf,
               gf / dt);
        if (ref)
            printf(", max |err| / peak vs PyTorch %.3g", rel_err(img, ref, (size_t)3 * os * os));
        if (py_vae > 0)
            printf(", PyTorch %.2f s (%.1f GFLOP/s): ratio %.2f", py_vae, gf / py_vae, dt / py_vae);
        printf(", peak RSS %.0f MB\n", peak_rss_mb());
        if (dump)
            dump_f32(dump, "vae.f32", img, (size_t)3 * os * os);
        free(lat);
        free(ref);
        free(img);
    }
    ag_unet_free(u);
    ag_vae_decoder_free(v);
    ag_weights_free(w);
    ag_backend_free(be);
    return rc;
}
