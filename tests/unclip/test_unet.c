/* UNet2DConditionModel and AutoencoderKL decoder against the independent PyTorch reference
 * (tests/reference/unclip_unet_ref.py): tiny random diffusers folders are converted through the
 * seed-unclip unet/vae plans (unclip_convert) and run on cpu and vulkan.
 *  - UNet (batch 2, class labels, context): f32 weights within 1e-4 of the reference's peak;
 *    f16 and q8_0 (anygpt-quantize) files within the looser tolerances below;
 *  - VAE decode: f32 output within 1e-4 of the peak; the uint8 image identical except values
 *    whose reference sits within 0.05 of a .5 rounding tie (counted and printed);
 *  - the converter: .bin and .safetensors (and their fp16 variants) give the same GGUF, old and
 *    new VAE attention names the same GGUF, chunked streaming the same bytes; refusals of
 *    missing / unknown / mis-shaped tensors and unsupported options, by name;
 *  - hostile calls: bad sizes, missing inputs, a file of the wrong part.
 *
 * usage: test_unet FIXTURE_DIR UNCLIP_CONVERT ANYGPT_QUANTIZE OUT_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/unet.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tolerances on max |err| / max |ref| */
#define TOL_F32 1e-4
#define TOL_F16 5e-3  /* weights rounded to f16 (2^-11 relative) through ~100 layers */
#define TOL_Q8 6e-2   /* q8_0 matrices (and q8_0 activations in their dot products): 1-3e-2 measured */
#define VAE_TIE 0.05  /* a uint8 may differ only where the reference is this close to a .5 tie */

static const char *fix_dir, *convert_bin, *quantize_bin, *out_dir;

static int run(const char *cmd, char *msg, size_t len)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(msg, 1, len - 1, p);
    msg[n] = 0;
    char sink[4096]; /* drain the rest: a child writing into a closed pipe would die of SIGPIPE */
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    return pclose(p);
}

/* unclip_convert --PART FIX/dir OUT/name.gguf --dtype dtype [extra] */
static bool convert(const char *part, const char *dir, const char *name, const char *dtype, const char *extra,
                    char *out, size_t out_len)
{
    char cmd[16384], msg[4096];
    snprintf(out, out_len, "%s/%s.gguf", out_dir, name);
    snprintf(cmd, sizeof cmd, "'%s' --%s '%s/%s' --dtype %s %s '%s' 2>&1", convert_bin, part, fix_dir, dir, dtype,
             extra ? extra : "", out);
    int rc = run(cmd, msg, sizeof msg);
    CHECK(rc == 0, "convert %s (%s): %s", dir, dtype, msg);
    return rc == 0;
}

static bool quantize(const char *in, const char *name, char *out, size_t out_len)
{
    char cmd[16384], msg[65536];
    snprintf(out, out_len, "%s/%s.gguf", out_dir, name);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' q8_0 2>&1", quantize_bin, in, out);
    int rc = run(cmd, msg, sizeof msg);
    CHECK(rc == 0, "quantize %s: %s", in, msg);
    return rc == 0;
}

static void *fixture(const char *dir, const char *name, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", fix_dir, dir, name);
    void *p = ag_read_file(path, n);
    CHECK(p != NULL, "cannot read fixture %s", path);
    return p;
}

/* ---------------------------------------------------------------- UNet */

typedef struct {
    int batch, h, w, ctx_len, cls_dim;
    float t;
    float *x, *ctx, *cls, *out;
    size_t n_out;
} unet_case;

static bool unet_case_load(const char *dir, unet_case *c)
{
    size_t n;
    memset(c, 0, sizeof *c);
    char *meta = fixture(dir, "meta.txt", &n);
    char *m = meta ? realloc(meta, n + 1) : NULL;
    if (!m) {
        free(meta);
        return false;
    }
    m[n] = 0;
    double t;
    bool ok = sscanf(m, "unet %d %d %d %lf %d %d", &c->batch, &c->h, &c->w, &t, &c->ctx_len, &c->cls_dim) == 6;
    free(m);
    c->t = (float)t;
    c->x = fixture(dir, "x.f32", &n);
    c->ctx = fixture(dir, "ctx.f32", &n);
    c->out = fixture(dir, "out.f32", &c->n_out);
    c->n_out /= 4;
    if (c->cls_dim)
        c->cls = fixture(dir, "cls.f32", &n);
    return ok && c->x && c->ctx && c->out && (!c->cls_dim || c->cls);
}

static void unet_case_free(unet_case *c)
{
    free(c->x);
    free(c->ctx);
    free(c->cls);
    free(c->out);
}

/* Relative error of one evaluation, or -1 on failure. */
static double unet_eval(ag_backend *be, const char *gguf, const unet_case *c, const char *what, double *secs)
{
    ag_weights *w = ag_weights_load(be, gguf, "seed-unclip", NULL, NULL);
    CHECK(w != NULL, "%s: load %s: %s", what, gguf, ag_last_error());
    if (!w)
        return -1;
    ag_unet *u = ag_unet_new(be, w);
    CHECK(u != NULL, "%s: unet: %s", what, ag_last_error());
    double rel = -1;
    if (u) {
        const ag_unet_info *in = ag_unet_info_of(u);
        CHECK(in->context_len == c->ctx_len || c->ctx_len != 77, "%s: context_len %d", what, in->context_len);
        CHECK(in->class_embed_dim == c->cls_dim, "%s: class_embed_dim %d, fixture %d", what, in->class_embed_dim,
              c->cls_dim);
        float *got = malloc(c->n_out * sizeof *got);
        const double t0 = ag_now_s();
        int rc = got ? ag_unet_forward(u, c->x, c->batch, c->h, c->w, c->t, c->cls, c->ctx, got) : -1;
        *secs = ag_now_s() - t0;
        CHECK(rc == 0, "%s: forward: %s", what, ag_last_error());
        if (rc == 0) {
            double peak;
            rel = ag_max_abs_err(got, c->out, c->n_out, &peak) / peak;
            /* batch items are independent: item 0 alone must give the reference's item 0 */
            const size_t n1 = c->n_out / (size_t)c->batch;
            int rc1 = ag_unet_forward(u, c->x, 1, c->h, c->w, c->t, c->cls, c->ctx, got);
            const double rel1 = rc1 == 0 ? ag_max_abs_err(got, c->out, n1, &peak) / peak : -1;
            CHECK(rc1 == 0 && rel1 >= 0 && rel1 < 2 * rel + 1e-5, "%s: batch 1: rc %d, relative error %g (batch %d: %g)",
                  what, rc1, rel1, c->batch, rel);
        }
        free(got);
        ag_unet_free(u);
    }
    ag_weights_free(w);
    return rel;
}

/* A context length other than the file's 77 needs a file saying so: the variant case (9 tokens)
 * patches the KV through a rewritten copy. */
static bool with_context_len(const char *in, int len, char *out, size_t out_len)
{
    ag_gguf *f = ag_gguf_open(in);
    if (!f)
        return false;
    snprintf(out, out_len, "%s.ctx%d.gguf", in, len);
    ag_gguf_writer *wr = ag_gguf_writer_new();
    bool ok = wr && ag_gguf_set_u32(wr, "seed-unclip.unet.context_len", (uint32_t)len) == 0 &&
              ag_gguf_copy_kvs(wr, f) == 0;
    for (int64_t i = 0; ok && i < ag_gguf_n_tensors(f); i++) {
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        ok = ag_gguf_add_tensor(wr, ag_gguf_tensor_name(f, i), ag_gguf_tensor_type(f, i), ag_gguf_tensor_n_dims(f, i),
                                ne, ag_gguf_tensor_data(f, i), ag_gguf_tensor_size(f, i)) == 0;
    }
    ok = ok && ag_gguf_writer_write(wr, out) == 0;
    ag_gguf_writer_free(wr);
    ag_gguf_close(f);
    CHECK(ok, "rewrite %s: %s", in, ag_last_error());
    return ok;
}

typedef struct {
    const char *dir;
    bool vulkan; /* also on vulkan (lavapipe: the small ones) */
} unet_fixture;

static const unet_fixture UNETS[] = {{"unet_tiny", true}, {"unet_sd21", true}, {"unet_variant", true}};

static void check_unets(ag_backend *be, const char *dev, bool is_vk)
{
    for (size_t i = 0; i < sizeof UNETS / sizeof UNETS[0]; i++) {
        const unet_fixture *fx = &UNETS[i];
        if (is_vk && !fx->vulkan)
            continue;
        unet_case c;
        if (!unet_case_load(fx->dir, &c)) {
            unet_case_free(&c);
            continue;
        }
        char f32[4096], f16[4096], q8[4096], name[256];
        static const char *const types[3] = {"f32", "f16", "q8_0"};
        const double tol[3] = {TOL_F32, TOL_F16, TOL_Q8};
        snprintf(name, sizeof name, "%s-f32", fx->dir);
        bool ok = convert("unet", fx->dir, name, "f32", NULL, f32, sizeof f32);
        snprintf(name, sizeof name, "%s-f16", fx->dir);
        ok = ok && convert("unet", fx->dir, name, "f16", NULL, f16, sizeof f16);
        snprintf(name, sizeof name, "%s-q8_0", fx->dir);
        ok = ok && quantize(f16, name, q8, sizeof q8);
        char *files[3] = {f32, f16, q8}, patched[3][4096];
        for (int k = 0; ok && k < 3 && c.ctx_len != 77; k++) {
            ok = with_context_len(files[k], c.ctx_len, patched[k], sizeof patched[k]);
            files[k] = patched[k];
        }
        for (int k = 0; ok && k < 3; k++) {
            char what[256];
            double secs = 0;
            snprintf(what, sizeof what, "%s %s %s", dev, fx->dir, types[k]);
            const double rel = unet_eval(be, files[k], &c, what, &secs);
            printf("# %s: batch %d %dx%d t=%g: max |err| / peak = %.3g (tolerance %.0e), %.2f s\n", what, c.batch, c.h,
                   c.w, (double)c.t, rel, tol[k], secs);
            CHECK(rel >= 0 && rel < tol[k], "%s: relative error %g over %g", what, rel, tol[k]);
        }
        unet_case_free(&c);
    }
}

/* ---------------------------------------------------------------- VAE */

static void check_vae(ag_backend *be, const char *dev, const char *dir, const char *dtype, double tol)
{
    size_t n, nlat, nimg, nu8;
    char *meta = fixture(dir, "meta.txt", &n), gguf[4096], name[256], what[256];
    int h = 0, w = 0;
    char *m = meta ? realloc(meta, n + 1) : NULL;
    if (m) {
        m[n] = 0;
        CHECK(sscanf(m, "vae %d %d", &h, &w) == 2, "%s meta", dir);
        free(m);
    } else {
        free(meta);
    }
    float *lat = fixture(dir, "lat.f32", &nlat), *img = fixture(dir, "img.f32", &nimg);
    uint8_t *u8 = fixture(dir, "img.u8", &nu8);
    snprintf(name, sizeof name, "%s-%s", dir, dtype);
    snprintf(what, sizeof what, "%s %s %s", dev, dir, dtype);
    ag_weights *wt = NULL;
    ag_vae_decoder *v = NULL;
    if (lat && img && u8 && h > 0 && convert("vae", dir, name, dtype, NULL, gguf, sizeof gguf)) {
        wt = ag_weights_load(be, gguf, "seed-unclip", NULL, NULL);
        v = wt ? ag_vae_decoder_new(be, wt) : NULL;
        CHECK(v != NULL, "%s: %s", what, ag_last_error());
    }
    if (v) {
        const ag_vae_info *in = ag_vae_info_of(v);
        const int64_t oh = (int64_t)h * in->scale_factor, ow = (int64_t)w * in->scale_factor, plane = oh * ow;
        CHECK(nimg == (size_t)(3 * plane) * 4 && nu8 == (size_t)(3 * plane), "%s: fixture sizes", what);
        float *got = malloc(nimg);
        uint8_t *g8 = malloc(nu8);
        const double t0 = ag_now_s();
        int rc = got ? ag_vae_decode_f32(v, lat, h, w, got) : -1;
        const double secs = ag_now_s() - t0;
        CHECK(rc == 0, "%s: decode: %s", what, ag_last_error());
        int rc8 = g8 ? ag_vae_decode(v, lat, h, w, g8) : -1;
        CHECK(rc8 == 0, "%s: decode uint8: %s", what, ag_last_error());
        if (rc == 0 && rc8 == 0 && nimg == (size_t)(3 * plane) * 4) {
            double peak;
            const double rel = ag_max_abs_err(got, img, nimg / 4, &peak) / peak;
            size_t differ = 0, off_tie = 0, ties = 0;
            for (int64_t p = 0; p < plane; p++)
                for (int c = 0; c < 3; c++) {
                    float y = img[c * plane + p] * 0.5f + 0.5f;
                    y = y > 0.0f ? (y < 1.0f ? y : 1.0f) : 0.0f;
                    const double s = (double)(y * 255.0f), frac = s - floor(s);
                    const bool tie = fabs(frac - 0.5) < VAE_TIE;
                    const uint8_t a = g8[p * 3 + c], r = u8[p * 3 + c];
                    ties += tie;
                    if (a != r) {
                        differ++;
                        off_tie += !tie || abs((int)a - (int)r) != 1;
                    }
                }
            printf("# %s: %dx%d -> %lldx%lld: max |err| / peak = %.3g (tolerance %.0e), uint8: %zu of %lld differ "
                   "(%zu reference values within %.2f of a rounding tie), %.2f s\n",
                   what, h, w, (long long)oh, (long long)ow, rel, tol, differ, (long long)(3 * plane), ties, VAE_TIE,
                   secs);
            CHECK(rel < tol, "%s: relative error %g over %g", what, rel, tol);
            CHECK(off_tie == 0 || tol > TOL_F32, "%s: %zu uint8 values differ away from a rounding tie", what, off_tie);
        }
        free(got);
        free(g8);
    }
    ag_vae_decoder_free(v);
    ag_weights_free(wt);
    free(lat);
    free(img);
    free(u8);
}

static void check_vaes(ag_backend *be, const char *dev)
{
    static const char *const dirs[] = {"vae_tiny", "vae_wide_old", "vae_plain"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        check_vae(be, dev, dirs[i], "f32", TOL_F32);
        check_vae(be, dev, dirs[i], "f16", TOL_F16);
    }
}

/* ---------------------------------------------------------------- converter */

static void check_same(const char *part, const char *a, const char *b, const char *dtype, const char *extra_b)
{
    char ga[4096], gb[4096], na[256], nb[256];
    snprintf(na, sizeof na, "same-%s-%s", a, dtype);
    snprintf(nb, sizeof nb, "same-%s-%s%s", b, dtype, extra_b ? "-chunked" : "");
    if (convert(part, a, na, dtype, NULL, ga, sizeof ga) && convert(part, b, nb, dtype, extra_b, gb, sizeof gb))
        CHECK(ag_same_file(ga, gb), "%s and %s (%s%s) convert to different GGUF files", a, b, dtype,
              extra_b ? extra_b : "");
}

static void check_converter(void)
{
    check_same("unet", "unet_tiny", "unet_tiny_bin", "f32", NULL);
    check_same("unet", "unet_tiny", "unet_tiny_bin", "f16", NULL);
    check_same("unet", "unet_tiny_fp16_st", "unet_tiny_fp16_bin", "f16", NULL);
    check_same("unet", "unet_tiny", "unet_tiny", "f16", "--chunk 100");
    check_same("vae", "vae_tiny", "vae_tiny_bin", "f32", NULL);
    check_same("vae", "vae_wide_old", "vae_wide_new", "f16", NULL);
    static const char *const bad[] = {
        "unet_missing", "unet_unknown", "unet_shape", "unet_block_type", "unet_opt_resnet_time_scale_shift",
        "unet_opt_class_embed_type", "unet_opt_addition_embed_type", "unet_opt_dual_cross_attention",
        "unet_opt_only_cross_attention", "unet_opt_time_cond_proj_dim", "unet_opt_attention_type",
        "unet_opt_mid_block_type", "unet_opt_act_fn", "unet_opt_some_future_option", "vae_missing", "vae_shape",
        "vae_unknown", "vae_block_type"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dir[256], expect[512] = "", cmd[16384], msg[4096];
        snprintf(dir, sizeof dir, "bad_%s", bad[i]);
        size_t n;
        char *e = fixture(dir, "expect.txt", &n);
        if (e)
            snprintf(expect, sizeof expect, "%.*s", (int)n, e);
        free(e);
        snprintf(cmd, sizeof cmd, "'%s' --%s '%s/%s' '%s/refused.gguf' 2>&1", convert_bin,
                 strncmp(bad[i], "vae", 3) ? "unet" : "vae", fix_dir, dir, out_dir);
        int rc = run(cmd, msg, sizeof msg);
        CHECK(rc != 0 && expect[0] && strstr(msg, expect), "%s: rc %d, message '%s' (want '%s')", dir, rc, msg, expect);
        if (rc != 0)
            printf("# refused %s: %s", dir, msg);
    }
}

/* ---------------------------------------------------------------- hostile calls */

/* A copy of in without tensor `drop` (NULL: none) and with u32 KV `key` set to val (NULL: none). */
static bool rewrite(const char *in, const char *out, const char *drop, const char *key, uint32_t val)
{
    ag_gguf *f = ag_gguf_open(in);
    if (!f)
        return false;
    ag_gguf_writer *wr = ag_gguf_writer_new();
    bool ok = wr && (!key || ag_gguf_set_u32(wr, key, val) == 0) && ag_gguf_copy_kvs(wr, f) == 0;
    for (int64_t i = 0; ok && i < ag_gguf_n_tensors(f); i++) {
        if (drop && !strcmp(ag_gguf_tensor_name(f, i), drop))
            continue;
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        ok = ag_gguf_add_tensor(wr, ag_gguf_tensor_name(f, i), ag_gguf_tensor_type(f, i), ag_gguf_tensor_n_dims(f, i),
                                ne, ag_gguf_tensor_data(f, i), ag_gguf_tensor_size(f, i)) == 0;
    }
    ok = ok && ag_gguf_writer_write(wr, out) == 0;
    ag_gguf_writer_free(wr);
    ag_gguf_close(f);
    CHECK(ok, "rewrite %s: %s", in, ag_last_error());
    return ok;
}

/* A file lacking a tensor, or with a hyper-parameter out of range, fails at load, naming it. */
static void check_bad_files(ag_backend *be, const char *unet_f, const char *vae_f)
{
    static const struct {
        bool vae;
        const char *drop, *key;
        uint32_t val;
        const char *expect;
    } bad[] = {
        {false, "unet.u1.a2.t0.ff2.weight", NULL, 0, "unet.u1.a2.t0.ff2.weight"},
        {false, "unet.class_emb.l2.bias", NULL, 0, "unet.class_emb.l2.bias"},
        {false, NULL, "seed-unclip.unet.norm_num_groups", 0, "norm_num_groups"},
        {false, NULL, "seed-unclip.unet.norm_num_groups", 7, "groups"},
        {false, NULL, "seed-unclip.unet.conv_in_kernel", 2, "odd"},
        {true, "vae.mid.a0.k.bias", NULL, 0, "vae.mid.a0.k.bias"},
        {true, "vae.u1.r1.norm1.weight", NULL, 0, "vae.u1.r1.norm1.weight"},
        {true, NULL, "seed-unclip.vae.latent_channels", 5000, "latent_channels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[4096];
        snprintf(out, sizeof out, "%s/bad-file-%zu.gguf", out_dir, i);
        if (!rewrite(bad[i].vae ? vae_f : unet_f, out, bad[i].drop, bad[i].key, bad[i].val))
            continue;
        ag_weights *w = ag_weights_load(be, out, "seed-unclip", NULL, NULL);
        CHECK(w != NULL, "load %s: %s", out, ag_last_error());
        if (!w)
            continue;
        bool refused;
        if (bad[i].vae) {
            ag_vae_decoder *v = ag_vae_decoder_new(be, w);
            refused = v == NULL;
            ag_vae_decoder_free(v);
        } else {
            ag_unet *u = ag_unet_new(be, w);
            refused = u == NULL;
            ag_unet_free(u);
        }
        CHECK(refused && strstr(ag_last_error(), bad[i].expect), "bad file %zu (%s%s): %s", i,
              bad[i].drop ? "without " : "", bad[i].drop ? bad[i].drop : bad[i].key, refused ? ag_last_error() : "accepted");
        if (refused)
            printf("# refused bad file %zu: %s\n", i, ag_last_error());
        ag_weights_free(w);
    }
}

static void check_hostile(ag_backend *be)
{
    char unet_f[4096], vae_f[4096];
    if (!convert("unet", "unet_tiny", "hostile-unet", "f32", NULL, unet_f, sizeof unet_f) ||
        !convert("vae", "vae_tiny", "hostile-vae", "f32", NULL, vae_f, sizeof vae_f))
        return;
    check_bad_files(be, unet_f, vae_f);
    ag_weights *wu = ag_weights_load(be, unet_f, "seed-unclip", NULL, NULL);
    ag_weights *wv = ag_weights_load(be, vae_f, "seed-unclip", NULL, NULL);
    if (wu && wv) {
        CHECK(ag_vae_decoder_new(be, wu) == NULL && strstr(ag_last_error(), "seed-unclip.vae."),
              "a unet-only file as vae: %s", ag_last_error());
        CHECK(ag_unet_new(be, wv) == NULL && strstr(ag_last_error(), "seed-unclip.unet."),
              "a vae-only file as unet: %s", ag_last_error());
        ag_unet *u = ag_unet_new(be, wu);
        ag_vae_decoder *v = ag_vae_decoder_new(be, wv);
        CHECK(u && v, "load: %s", ag_last_error());
        if (u && v) {
            float x[4 * 2 * 16 * 16] = {0}, ctx[2 * 77 * 32] = {0}, cls[2 * 24] = {0}, out[4 * 2 * 16 * 16];
            CHECK(ag_unet_forward(u, x, 2, 15, 16, 1.0f, cls, ctx, out) != 0 && strstr(ag_last_error(), "multiples"),
                  "odd size accepted: %s", ag_last_error());
            CHECK(ag_unet_forward(u, x, 0, 16, 16, 1.0f, cls, ctx, out) != 0, "batch 0 accepted");
            CHECK(ag_unet_forward(u, x, 2, 16, 16, NAN, cls, ctx, out) != 0, "t = NaN accepted");
            CHECK(ag_unet_forward(u, x, 2, 16, 16, 1.0f, NULL, ctx, out) != 0 && strstr(ag_last_error(), "class"),
                  "missing class labels accepted: %s", ag_last_error());
            CHECK(ag_unet_forward(u, x, 2, 16, 16, 1.0f, cls, ctx, out) == 0, "zeros: %s", ag_last_error());
            float lat[4 * 2 * 2] = {0}, img[3 * 4 * 4];
            uint8_t rgb[4 * 4 * 3];
            CHECK(ag_vae_decode(v, lat, 0, 2, rgb) != 0, "empty latent accepted");
            CHECK(ag_vae_decode_f32(v, NULL, 2, 2, img) != 0, "no latents accepted");
            CHECK(ag_vae_decode(v, lat, 2, 2, rgb) == 0, "2x2 latent: %s", ag_last_error());
        }
        ag_unet_free(u);
        ag_vae_decoder_free(v);
    }
    ag_weights_free(wu);
    ag_weights_free(wv);
}

static void run_backend(ag_backend *be, const char *dev, bool is_vk)
{
    check_unets(be, dev, is_vk);
    check_vaes(be, dev);
    if (!is_vk) {
        /* the query-chunked attention (used for wide heads on GPUs) on the cpu too */
        setenv("AG_UNET_ATTN_CHUNKED", "1", 1);
        check_vae(be, "cpu (chunked attention)", "vae_wide_old", "f32", TOL_F32);
        unsetenv("AG_UNET_ATTN_CHUNKED");
        check_hostile(be);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s FIXTURE_DIR UNCLIP_CONVERT ANYGPT_QUANTIZE OUT_DIR\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    convert_bin = argv[2];
    quantize_bin = argv[3];
    out_dir = argv[4];
    check_converter();
    ag_backend *cpu = ag_backend_cpu_new(2);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (cpu) {
        printf("# device: cpu (%s)\n", ag_backend_device_name(cpu));
        run_backend(cpu, "cpu", false);
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
