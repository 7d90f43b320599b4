/* anygpt-convert seed-unclip on tiny fixtures in the published formats (made by
 * tests/reference/make_unclip_fixtures.py):
 *  - the empty-prompt text context against the PyTorch CLIP text encoder (gelu with SD 2.x
 *    tokenizer files; quick_gelu with SD 1.x style files), max |err| below 1e-5 of the peak, and
 *    its token ids taken from the tokenizer files, not text_encoder/config.json;
 *  - safetensors, .bin and the .fp16. variants of the same (fp16-exact) weights give byte-identical
 *    GGUF files, for --dtype f16 and f32; with fp32 and fp16 files both present the fp32 ones
 *    are read (the fp16 ones there hold other values);
 *  - the scheduler KVs (PNDM as published, DDIM variant, DDPM noising), the image normaliser, the
 *    SEED decode KVs and tensor set;
 *  - refusals by name: missing / unknown / mis-shaped keys, options the schedulers cannot
 *    express, missing folders and files, inconsistent tokenizer files, wrong pipeline classes;
 *  - anygpt-quantize q8_0 of the result (weights quantized, context and normaliser kept F32);
 *  - with FULL (anygpt-convert, once the UNet/VAE plans are built in): the whole file holds
 *    every tensor CONVERT writes, byte for byte, plus the unet.* and vae.* tensors, and
 *    quantizes.
 *
 * usage: test_unclip_convert FIXTURE_DIR CONVERT QUANTIZE OUT_DIR [FULL]
 * CONVERT is run as `CONVERT seed-unclip INPUT OUT --quiet --dtype T` (anygpt-convert's form):
 * the converter without the UNet/VAE step (tests/seed_unclip/convert_partial.c). */
#include "../common/ag_fixture.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fix_dir, *convert_bin, *quantize_bin, *out_dir;

static void out_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", out_dir, name); }

/* Convert FIX/variant to OUT/name; true on success. */
static bool convert(const char *variant, const char *name, const char *dtype)
{
    char out[4096], msg[4096];
    out_path(out, sizeof out, name);
    int rc = ag_run_convert(convert_bin, "seed-unclip", fix_dir, variant, out, dtype, msg, sizeof msg);
    CHECK(rc == 0, "convert %s (%s): %s", variant, dtype, msg);
    return rc == 0;
}

static float *f32_tensor(const ag_gguf *f, const char *name, int64_t ne0, int64_t ne1)
{
    const int64_t i = ag_gguf_find_tensor(f, name);
    int64_t ne[AG_MAX_DIMS];
    if (i < 0) {
        CHECK(false, "tensor %s missing", name);
        return NULL;
    }
    ag_gguf_tensor_ne(f, i, ne);
    const bool ok = ag_gguf_tensor_type(f, i) == AG_TYPE_F32 && ne[0] == ne0 && ne[1] == ne1 && ne[2] == 1;
    CHECK(ok, "tensor %s: type %d shape [%lld, %lld, %lld], want F32 [%lld, %lld]", name,
          (int)ag_gguf_tensor_type(f, i), (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne0,
          (long long)ne1);
    return ok ? (float *)ag_gguf_tensor_data(f, i) : NULL;
}

static void check_context(const char *gguf, const char *ref_name, const char *what)
{
    char p[4096];
    size_t nr;
    snprintf(p, sizeof p, "%s/%s", fix_dir, ref_name);
    float *ref = ag_read_file(p, &nr);
    ag_gguf *f = ag_gguf_open(gguf);
    CHECK(ref && f, "%s: %s", what, f ? "no reference" : ag_last_error());
    if (ref && f) {
        const int64_t n = 77, d = (int64_t)(nr / 4) / n;
        const float *got = f32_tensor(f, "text_context", d, n);
        if (got) {
            double peak;
            const double err = ag_max_abs_err(got, ref, (size_t)(n * d), &peak);
            printf("# %s: text context [%lld][%lld] max |err| %.3g, peak %.3g (rel %.3g)\n", what, (long long)n,
                   (long long)d, err, peak, err / peak);
            CHECK(err < 1e-5 * peak, "%s: text context rel err %g", what, err / peak);
        }
    }
    ag_gguf_close(f);
    free(ref);
}

static void expect_str(const ag_gguf *f, const char *key, const char *want)
{
    const char *v = ag_gguf_get_str(f, key);
    CHECK(v && !strcmp(v, want), "%s = '%s', want '%s'", key, v ? v : "(absent)", want);
}

static void expect_u32(const ag_gguf *f, const char *key, uint32_t want)
{
    uint32_t v = 0;
    CHECK(ag_gguf_get_u32(f, key, &v) && v == want, "%s = %u, want %u", key, v, want);
}

static void expect_bool(const ag_gguf *f, const char *key, bool want)
{
    bool v = !want;
    CHECK(ag_gguf_get_bool(f, key, &v) && v == want, "%s = %d, want %d", key, v, want);
}

static void expect_f32(const ag_gguf *f, const char *key, float want)
{
    float v = 0;
    CHECK(ag_gguf_get_f32(f, key, &v) && v == want, "%s = %.9g, want %.9g", key, v, want);
}

/* f64 and bit-identical: the JSON's double, which diffusers takes sqrt of before rounding */
static void expect_f64(const ag_gguf *f, const char *key, double want)
{
    double v = 0;
    const int64_t k = ag_gguf_find_key(f, key);
    CHECK(k >= 0 && ag_gguf_kv_type(f, k) == AG_GGUF_FLOAT64 && ag_gguf_get_f64(f, key, &v) && v == want,
          "%s = %.17g, want %.17g as f64", key, v, want);
}

static void check_sched(const ag_gguf *f, const char *pre, const char *kind, const char *betas, double b0, double b1,
                        const char *pred, uint32_t offset, bool alpha_one, bool skip_prk, const char *spacing,
                        bool clip, float range)
{
    char k[128];
#define K(x) (snprintf(k, sizeof k, "seed-unclip.%s." x, pre), k)
    expect_str(f, K("kind"), kind);
    expect_u32(f, K("num_train_timesteps"), 1000);
    expect_f64(f, K("beta_start"), b0);
    expect_f64(f, K("beta_end"), b1);
    expect_str(f, K("beta_schedule"), betas);
    expect_str(f, K("prediction_type"), pred);
    expect_u32(f, K("steps_offset"), offset);
    expect_bool(f, K("set_alpha_to_one"), alpha_one);
    expect_bool(f, K("skip_prk_steps"), skip_prk);
    expect_str(f, K("timestep_spacing"), spacing);
    expect_bool(f, K("clip_sample"), clip);
    expect_f32(f, K("clip_sample_range"), range);
#undef K
}

static void check_contents(const char *gguf, bool ddim)
{
    ag_gguf *f = ag_gguf_open(gguf);
    CHECK(f != NULL, "%s: %s", gguf, ag_last_error());
    if (!f)
        return;
    expect_str(f, "general.architecture", "seed-unclip");
    if (ddim)
        check_sched(f, "scheduler", "ddim", "scaled_linear", 0.00085, 0.012, "v_prediction", 1, false, false,
                    "trailing", true, 1.5f);
    else
        check_sched(f, "scheduler", "pndm", "scaled_linear", 0.00085, 0.012, "v_prediction", 1, false, true,
                    "leading", false, 1.0f);
    check_sched(f, "noising", "ddpm", "squaredcos_cap_v2", 0.0001, 0.02, "epsilon", 0, false, false, "leading", true,
                1.0f);
    static const char *const dk[] = {"n_codes", "codebook_size", "codebook_dim", "dim", "depth", "heads", "ff_dim",
                                     "embed_dim"};
    static const uint32_t dv[] = {32, 512, 32, 96, 2, 12, 384, 32};
    for (size_t i = 0; i < sizeof dk / sizeof dk[0]; i++) {
        char k[96];
        snprintf(k, sizeof k, "seed-unclip.seed_decode.%s", dk[i]);
        expect_u32(f, k, dv[i]);
    }
    expect_f32(f, "seed-unclip.seed_decode.norm_eps", 1e-6f);
    const int64_t dd = ag_gguf_find_key(f, "seed-unclip.seed_decode.down_dims");
    const uint32_t *down = dd >= 0 && ag_gguf_arr_type(f, dd) == AG_GGUF_UINT32 && ag_gguf_arr_n(f, dd) == 3
                               ? ag_gguf_arr_data(f, dd)
                               : NULL;
    CHECK(down && down[0] == 48 && down[1] == 24 && down[2] == 8, "seed_decode.down_dims");
    /* 1 codebook + 2 x 2 task + 1 pos + 2 blocks x 12 + 3 down + 2 proj; context; normaliser 2 */
    CHECK(ag_gguf_n_tensors(f) == 35 + 1 + 2, "%lld tensors, want 38", (long long)ag_gguf_n_tensors(f));
    char p[4096];
    size_t nm, ns;
    snprintf(p, sizeof p, "%s/norm.mean.f32", fix_dir);
    float *mean = ag_read_file(p, &nm);
    snprintf(p, sizeof p, "%s/norm.std.f32", fix_dir);
    float *std = ag_read_file(p, &ns);
    const float *gm = f32_tensor(f, "image_normalizer.mean", 32, 1), *gs = f32_tensor(f, "image_normalizer.std", 32, 1);
    CHECK(mean && std && gm && gs && nm == 128 && ns == 128 && !memcmp(gm, mean, 128) && !memcmp(gs, std, 128),
          "image normaliser values differ from the fixture");
    free(mean);
    free(std);
    ag_gguf_close(f);
}

static void check_same_files(void)
{
    static const char *const dtypes[] = {"f16", "f32"};
    static const char *const variants[] = {"bin", "fp16", "fp16bin", "both"};
    for (int t = 0; t < 2; t++) {
        char ref[4096], name[256], other[4096];
        snprintf(name, sizeof name, "good-%s.gguf", dtypes[t]);
        out_path(ref, sizeof ref, name);
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
            snprintf(name, sizeof name, "%s-%s.gguf", variants[v], dtypes[t]);
            if (!convert(variants[v], name, dtypes[t]))
                continue;
            out_path(other, sizeof other, name);
            const bool same = ag_same_file(ref, other);
            printf("# %s weights, --dtype %s: %s GGUF as safetensors fp32\n", variants[v], dtypes[t],
                   same ? "byte-identical" : "DIFFERENT");
            CHECK(same, "%s (--dtype %s) converts to a GGUF different from good/", variants[v], dtypes[t]);
        }
    }
}

static void check_quantize(void)
{
    char in[4096], out[4096], cmd[16384];
    out_path(in, sizeof in, "good-f16.gguf");
    out_path(out, sizeof out, "good-q8_0.gguf");
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' q8_0 > /dev/null", quantize_bin, in, out);
    CHECK(system(cmd) == 0, "anygpt-quantize q8_0 failed");
    ag_gguf *f = ag_gguf_open(out);
    CHECK(f != NULL, "quantized file: %s", ag_last_error());
    if (!f)
        return;
    int q8 = 0;
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++)
        q8 += ag_gguf_tensor_type(f, i) == AG_TYPE_Q8_0;
    const int64_t ctx = ag_gguf_find_tensor(f, "text_context");
    const int64_t qkv = ag_gguf_find_tensor(f, "seed_decode.blk.0.attn_qkv.weight");
    CHECK(ctx >= 0 && ag_gguf_tensor_type(f, ctx) == AG_TYPE_F32, "text_context not kept F32");
    CHECK(qkv >= 0 && ag_gguf_tensor_type(f, qkv) == AG_TYPE_Q8_0, "qkv weight not Q8_0");
    printf("# q8_0: %d of %lld tensors quantized\n", q8, (long long)ag_gguf_n_tensors(f));
    ag_gguf_close(f);
}

/* The whole conversion (anygpt-convert with the UNet/VAE plans) of good/. */
static void check_full(const char *full_bin)
{
    char part[4096], full[4096], msg[4096], cmd[16384], q[4096];
    out_path(part, sizeof part, "good-f16.gguf");
    out_path(full, sizeof full, "full-f16.gguf");
    out_path(q, sizeof q, "full-q8_0.gguf");
    const int rc = ag_run_convert(full_bin, "seed-unclip", fix_dir, "good", full, "f16", msg, sizeof msg);
    CHECK(rc == 0, "anygpt-convert seed-unclip good: %s", msg);
    ag_gguf *p = ag_gguf_open(part), *f = rc == 0 ? ag_gguf_open(full) : NULL;
    CHECK(p && f, "open: %s", ag_last_error());
    if (p && f) {
        int same = 0, unet = 0, vae = 0;
        for (int64_t i = 0; i < ag_gguf_n_tensors(p); i++) {
            const int64_t j = ag_gguf_find_tensor(f, ag_gguf_tensor_name(p, i));
            same += j >= 0 && ag_gguf_tensor_type(f, j) == ag_gguf_tensor_type(p, i) &&
                    ag_gguf_tensor_size(f, j) == ag_gguf_tensor_size(p, i) &&
                    !memcmp(ag_gguf_tensor_data(f, j), ag_gguf_tensor_data(p, i), ag_gguf_tensor_size(p, i));
        }
        for (int64_t j = 0; j < ag_gguf_n_tensors(f); j++) {
            unet += !strncmp(ag_gguf_tensor_name(f, j), "unet.", 5);
            vae += !strncmp(ag_gguf_tensor_name(f, j), "vae.", 4);
        }
        printf("# whole file: %lld tensors, the converter's own %d of %lld identical, %d unet, %d vae\n",
               (long long)ag_gguf_n_tensors(f), same, (long long)ag_gguf_n_tensors(p), unet, vae);
        CHECK(same == ag_gguf_n_tensors(p) && unet > 0 && vae > 0, "whole file content");
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' q8_0 > /dev/null", quantize_bin, full, q);
        CHECK(system(cmd) == 0, "anygpt-quantize q8_0 of the whole file");
    }
    ag_gguf_close(p);
    ag_gguf_close(f);
}

static void refused(const char *variant, const char *expect)
{
    char out[4096];
    out_path(out, sizeof out, "refused.gguf");
    ag_check_refused(convert_bin, "seed-unclip", fix_dir, variant, out, expect);
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s FIXTURE_DIR CONVERT QUANTIZE OUT_DIR [FULL]\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    convert_bin = argv[2];
    quantize_bin = argv[3];
    out_dir = argv[4];
    char g16[4096], g32[4096], dd[4096];
    out_path(g16, sizeof g16, "good-f16.gguf");
    out_path(g32, sizeof g32, "good-f32.gguf");
    out_path(dd, sizeof dd, "ddim-f32.gguf");
    if (convert("good", "good-f32.gguf", "f32")) {
        check_context(g32, "good.ctx.f32", "gelu, SD 2.x tokenizer (pad '!' = 0; config pad_token_id 1)");
        check_contents(g32, false);
    }
    if (convert("good", "good-f16.gguf", "f16")) {
        check_context(g16, "good.ctx.f32", "gelu, --dtype f16 (the context stays F32)");
        check_quantize();
    }
    if (convert("ddim", "ddim-f32.gguf", "f32")) {
        check_context(dd, "ddim.ctx.f32", "quick_gelu, SD 1.x tokenizer (pad '<|endoftext|>' = 999; config 1)");
        check_contents(dd, true);
    }
    check_same_files();
    if (argc == 6)
        check_full(argv[5]);

    refused("bad_seed_missing", "seed_quantizer.pt lacks tensor 'blocks_image.1.attn.proj.bias'");
    refused("bad_seed_unknown", "unexpected tensor 'image_up.0.weight'");
    refused("bad_seed_shape", "tensor 'distill_image_proj.weight' has shape [32, 100], expected [32, 256]");
    refused("bad_seed_absent", "no seed_quantizer.pt");
    refused("bad_no_text_encoder", "the text_encoder/ folder is missing");
    refused("bad_no_sched_config", "scheduler: no scheduler_config.json");
    refused("bad_no_weights", "no weights (diffusion_pytorch_model.safetensors");
    refused("bad_text_missing", "text_encoder lacks tensor 'text_model.final_layer_norm.weight'");
    refused("bad_text_unknown", "unexpected tensor 'text_model.encoder.layers.0.self_attn.rel_bias'");
    refused("bad_text_shape",
            "tensor 'text_model.encoder.layers.0.mlp.fc1.weight' has shape [37, 32], expected [40, 32]");
    refused("bad_text_act", "hidden_act 'gelu_new' is not supported");
    refused("bad_text_mask", "use_attention_mask");
    refused("bad_tok_pad", "pad_token is '!' in tokenizer_config.json but '<|endoftext|>' in special_tokens_map.json");
    refused("bad_tok_unknown_pad", "pad_token '<pad>' is in none of");
    refused("bad_sched_trained_betas", "trained_betas");
    refused("bad_sched_thresholding", "thresholding true is not supported");
    refused("bad_sched_class", "component 'scheduler' is 'EulerDiscreteScheduler'");
    refused("bad_sched_mismatch", "_class_name 'DDIMScheduler' but model_index.json names 'PNDMScheduler'");
    refused("bad_sched_option", "unknown scheduler option 'use_karras_sigmas'");
    refused("bad_sched_spacing", "timestep_spacing 'middle' is not supported");
    refused("bad_noise_sigmoid", "beta_schedule 'sigmoid' is not supported by DDPMScheduler");
    refused("bad_noise_zero_snr", "rescale_betas_zero_snr true is not supported");
    refused("bad_model_index", "'StableDiffusionPipeline' is not StableUnCLIPImg2ImgPipeline");
    refused("bad_norm_shape", "image_normalizer embedding_dim 16 differs");
    refused("no_such_dir", "not a folder");
    return t_finish();
}
