/* SEED image tokenizer end to end: a tiny random tokenizer in the published layout (BLIP-2's
 * eva_vit_g.pth + SEED's seed_quantizer.pt, made by tests/reference/seed_tokenizer_ref.py) is
 * converted by anygpt-convert (f32, f16; anygpt-quantize makes q8_0 of the f16 file) and run on
 * cpu and vulkan against the float32 PyTorch reference, stage by stage ("within x" is the max
 * abs error over the reference's peak, for the ViT output, the Q-Former output and z):
 *   f32 file vs the reference; f16 file vs the reference run on the same fp16-rounded weights;
 *   on vulkan (which widens 8-bit weights, activations stay f32) the q8_0 file vs the reference
 *   on the same Q8_0-rounded weights: within 1e-4; codes identical for >= 95% of the queries
 *   and every difference a near tie (top-2 distance gap < 1e-3);
 *   cpu q8_0 (8-bit activations too: rounding makes that path discontinuous, a 1e-7 change of
 *   the input moves the ViT output by ~5e-3) vs the reference with the same weight and
 *   activation rounding: ViT within 2e-2, Q-Former and z within 0.15, codes >= 85% identical;
 *   q8_0 on both vs the float32 reference: ViT within 3e-2, Q-Former and z within 0.2, codes
 *   >= 80% identical.
 * encode_image (PIL-exact bicubic resize + CLIP normalisation, core/image) on a 320x240 frame, as
 * RGB and as BGRx, vs the reference's PIL resize: codes as for the f32 file, both layouts equal.
 * Also: converter refusals by name, the dtype-swapped input, abort between stages, hostile
 * GGUF files (another architecture, truncated, bad hyper-parameters, wrong tensor type).
 *
 * usage: test_seed_tokenizer FIXTURE_DIR ANYGPT_CONVERT ANYGPT_QUANTIZE OUT_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/seed_tokenizer.h"
#include "seed_tokenizer_internal.h"

#define N_IMAGES 4
#define NEAR_TIE 1e-3f

static const char *fix_dir, *convert_bin, *quantize_bin, *out_dir;

/* One comparison: the reference fixtures (prefix) and its tolerances. */
typedef struct {
    const char *ref; /* fixture prefix: "" (float32), "h16.", "q8.", "q8a." */
    double tol_vit, tol_qf, tol_z, min_agree;
    bool ties_only; /* every code difference must be a near tie */
} ref_check;

typedef struct {
    const char *name; /* f32, f16, q8_0 */
    int n_images;
    ref_check checks[2];
    int n_checks;
} file_case;

static void *fixture(const char *name, size_t want)
{
    char path[4096];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", fix_dir, name);
    void *p = ag_read_file(path, &n);
    CHECK(p != NULL && n == want, "fixture %s: %zu bytes, want %zu", path, n, want);
    if (p && n != want) {
        free(p);
        p = NULL;
    }
    return p;
}

static double rel_err(const float *got, const float *ref, size_t n)
{
    double peak;
    const double err = ag_max_abs_err(got, ref, n, &peak);
    return peak > 0 ? err / peak : err;
}

typedef struct {
    int agree, ties, bad, total;
} code_stats;

typedef struct {
    float *vit, *qf, *z;
    int32_t *codes;
} outputs;

static void compare_with(const char *dev, const file_case *fc, const ref_check *rc, int img, const outputs *got,
                         size_t nvit, size_t nqf, size_t nz, size_t nq, code_stats *cs)
{
    char name[256];
    snprintf(name, sizeof name, "%simg%d.vit.f32", rc->ref, img);
    float *rvit = fixture(name, nvit * 4);
    snprintf(name, sizeof name, "%simg%d.qf.f32", rc->ref, img);
    float *rqf = fixture(name, nqf * 4);
    snprintf(name, sizeof name, "%simg%d.z.f32", rc->ref, img);
    float *rz = fixture(name, nz * 4);
    snprintf(name, sizeof name, "%simg%d.codes.i32", rc->ref, img);
    int32_t *rcodes = fixture(name, nq * 4);
    snprintf(name, sizeof name, "%simg%d.gap.f32", rc->ref, img);
    float *gap = fixture(name, nq * 4);
    if (rvit && rqf && rz && rcodes && gap) {
        const double ev = rel_err(got->vit, rvit, nvit), eq = rel_err(got->qf, rqf, nqf), ez = rel_err(got->z, rz, nz);
        int agree = 0, ties = 0, bad = 0;
        for (size_t i = 0; i < nq; i++) {
            agree += got->codes[i] == rcodes[i];
            ties += got->codes[i] != rcodes[i] && gap[i] < NEAR_TIE;
            bad += got->codes[i] != rcodes[i] && gap[i] >= NEAR_TIE;
        }
        printf("# %s %s image %d vs reference '%s': rel err vit %.2g, qformer %.2g, z %.2g; codes %d/%zu same, %d "
               "near-tie flips, %d other\n",
               dev, fc->name, img, rc->ref, ev, eq, ez, agree, nq, ties, bad);
        CHECK(ev <= rc->tol_vit && eq <= rc->tol_qf && ez <= rc->tol_z,
              "%s %s image %d vs '%s': rel err vit %g qf %g z %g above %g / %g / %g", dev, fc->name, img, rc->ref, ev,
              eq, ez, rc->tol_vit, rc->tol_qf, rc->tol_z);
        cs->agree += agree;
        cs->ties += ties;
        cs->bad += bad;
        cs->total += (int)nq;
    }
    free(rvit);
    free(rqf);
    free(rz);
    free(rcodes);
    free(gap);
}

static void compare_image(ag_seed_tokenizer *m, const char *dev, const file_case *fc, int img, code_stats *cs)
{
    const ag_seed_tokenizer_info *in = ag_seed_tokenizer_info_of(m);
    const size_t S = (size_t)in->image_size, T = (S / (size_t)in->patch_size) * (S / (size_t)in->patch_size) + 1;
    const size_t nq = (size_t)in->n_query, nvit = T * (size_t)in->vit_width, nqf = nq * (size_t)in->qf_hidden,
                 nz = nq * (size_t)in->code_dim;
    char name[256];
    snprintf(name, sizeof name, "img%d.pix.f32", img);
    float *pix = fixture(name, 3 * S * S * 4);
    outputs got = {malloc(nvit * 4), malloc(nqf * 4), malloc(nz * 4), malloc(nq * 4)};
    if (pix && got.vit && got.qf && got.z && got.codes) {
        const seed_tokenizer_trace tr = {got.vit, got.qf, got.z};
        const double t0 = ag_now_s();
        const int rc = seed_tokenizer_encode_traced(m, pix, got.codes, NULL, NULL, &tr);
        CHECK(rc == 0, "%s %s image %d: %s", dev, fc->name, img, ag_last_error());
        printf("# %s %s image %d: encoded in %.2f s\n", dev, fc->name, img, ag_now_s() - t0);
        for (int c = 0; rc == 0 && c < fc->n_checks; c++)
            compare_with(dev, fc, &fc->checks[c], img, &got, nvit, nqf, nz, nq, &cs[c]);
    }
    free(pix);
    free(got.vit);
    free(got.qf);
    free(got.z);
    free(got.codes);
}

static bool abort_on_second(void *user)
{
    int *calls = user;
    return ++*calls >= 2;
}

static bool never(void *user)
{
    (*(int *)user)++;
    return false;
}

/* abort between stages, then a clean encode gives the reference's codes again; bad arguments */
static void check_abort_and_args(ag_seed_tokenizer *m, const char *dev)
{
    const ag_seed_tokenizer_info *in = ag_seed_tokenizer_info_of(m);
    const size_t S = (size_t)in->image_size;
    float *pix = fixture("img1.pix.f32", 3 * S * S * 4);
    int32_t *ref = fixture("img1.codes.i32", (size_t)in->n_query * 4);
    int32_t codes[4096];
    if (!pix || !ref) {
        free(pix);
        free(ref);
        return;
    }
    int calls = 0;
    CHECK(ag_seed_tokenizer_encode(m, pix, codes, abort_on_second, &calls) == 1 && calls == 2,
          "%s: abort on the second poll: %d polls", dev, calls);
    calls = 0;
    const int rc = ag_seed_tokenizer_encode(m, pix, codes, never, &calls);
    CHECK(rc == 0 && calls == seed_tokenizer_n_stages(m), "%s: encode after an abort: rc %d, %d polls of %d: %s", dev,
          rc, calls, seed_tokenizer_n_stages(m), ag_last_error());
    int same = 0;
    for (int i = 0; i < in->n_query; i++)
        same += codes[i] == ref[i];
    CHECK(rc == 0 && same == in->n_query, "%s: codes after an abort: %d of %d", dev, same, in->n_query);
    CHECK(ag_seed_tokenizer_encode(m, NULL, codes, NULL, NULL) == -1, "NULL pixels accepted");
    CHECK(ag_seed_tokenizer_encode(m, pix, NULL, NULL, NULL) == -1, "NULL codes accepted");
    free(pix);
    free(ref);
}

/* 16 queries: the converter writes no causal mask (upstream's BertModel is causal only at 32). */
static void check_q16(ag_backend *be, const char *gguf)
{
    ag_seed_tokenizer *m = ag_seed_tokenizer_load(be, gguf, NULL, NULL);
    CHECK(m != NULL, "16-query model: %s", ag_last_error());
    if (!m)
        return;
    CHECK(ag_seed_tokenizer_info_of(m)->n_query == 16, "16-query model has %d queries",
          ag_seed_tokenizer_info_of(m)->n_query);
    const file_case fc = {"q16-f32", 1, {{"q16.", 1e-4, 1e-4, 1e-4, 0.95, true}}, 1};
    code_stats cs[2] = {{0}};
    compare_image(m, "cpu", &fc, 0, cs);
    CHECK(cs[0].total == 16 && cs[0].bad == 0 && cs[0].agree >= 15, "16-query codes: %d of %d, %d bad", cs[0].agree,
          cs[0].total, cs[0].bad);
    ag_seed_tokenizer_free(m);
}

/* A 320x240 frame through ag_seed_tokenizer_encode_image, as RGB and as BGRx. */
static void check_encode_image(ag_seed_tokenizer *m, const char *dev)
{
    const int32_t W = 320, H = 240, nq = ag_seed_tokenizer_info_of(m)->n_query;
    uint8_t *rgb = fixture("resize.rgb", (size_t)W * H * 3), *bgrx = malloc((size_t)W * H * 4);
    int32_t *ref = fixture("resize.codes.i32", (size_t)nq * 4);
    float *gap = fixture("resize.gap.f32", (size_t)nq * 4);
    int32_t a[4096], b[4096];
    if (rgb && bgrx && ref && gap) {
        for (int32_t i = 0; i < W * H; i++) {
            bgrx[4 * i] = rgb[3 * i + 2];
            bgrx[4 * i + 1] = rgb[3 * i + 1];
            bgrx[4 * i + 2] = rgb[3 * i];
            bgrx[4 * i + 3] = 0x5a; /* padding never enters */
        }
        const ag_image_view v_rgb = {rgb, W, H, (size_t)W * 3, 3, 0, 1, 2};
        const ag_image_view v_bgrx = {bgrx, W, H, (size_t)W * 4, 4, 2, 1, 0};
        const int ra = ag_seed_tokenizer_encode_image(m, &v_rgb, a, NULL, NULL);
        const int rb = ag_seed_tokenizer_encode_image(m, &v_bgrx, b, NULL, NULL);
        CHECK(ra == 0 && rb == 0, "%s encode_image: %s", dev, ag_last_error());
        int same = 0, ties = 0, bad = 0, layouts = 0;
        for (int i = 0; ra == 0 && rb == 0 && i < nq; i++) {
            same += a[i] == ref[i];
            ties += a[i] != ref[i] && gap[i] < NEAR_TIE;
            bad += a[i] != ref[i] && gap[i] >= NEAR_TIE;
            layouts += a[i] == b[i];
        }
        printf("# %s encode_image 320x240: %d/%d codes as the reference (PIL resize), %d near-tie flips, %d other; "
               "BGRx = RGB for %d\n",
               dev, same, nq, ties, bad, layouts);
        CHECK(same >= nq * 95 / 100 && bad == 0 && layouts == nq, "%s encode_image: %d same, %d bad, %d layouts", dev,
              same, bad, layouts);
        int calls = 0;
        CHECK(ag_seed_tokenizer_encode_image(m, &v_rgb, a, abort_on_second, &calls) == 1, "%s encode_image abort",
              dev);
        const ag_image_view empty = {rgb, 0, H, (size_t)W * 3, 3, 0, 1, 2};
        CHECK(ag_seed_tokenizer_encode_image(m, &empty, a, NULL, NULL) == -1, "a 0-wide frame was accepted");
        CHECK(ag_seed_tokenizer_encode_image(m, NULL, a, NULL, NULL) == -1, "a NULL frame was accepted");
    }
    free(rgb);
    free(bgrx);
    free(ref);
    free(gap);
}

static void run_file(ag_backend *be, const char *dev, const char *gguf, const file_case *fc)
{
    double t0 = ag_now_s();
    ag_seed_tokenizer *m = ag_seed_tokenizer_load(be, gguf, NULL, NULL);
    CHECK(m != NULL, "%s load %s: %s", dev, gguf, ag_last_error());
    if (!m)
        return;
    printf("# %s %s: loaded in %.2f s\n", dev, fc->name, ag_now_s() - t0);
    const ag_seed_tokenizer_info *in = ag_seed_tokenizer_info_of(m);
    CHECK(in->image_size == 224 && in->patch_size == 14 && in->vit_width == 352 && in->vit_depth == 2 &&
              in->vit_heads == 4 && in->vit_mlp == 1536 && in->qf_hidden == 192 && in->qf_layers == 4 &&
              in->qf_heads == 3 && in->qf_ffn == 768 && in->n_query == 32 && in->codebook_size == 8192 &&
              in->code_dim == 32,
          "%s info: image %d patch %d vit %d x %d (%d heads, mlp %d) qf %d x %d (%d heads, ffn %d) q %d K %d C %d",
          fc->name, in->image_size, in->patch_size, in->vit_width, in->vit_depth, in->vit_heads, in->vit_mlp,
          in->qf_hidden, in->qf_layers, in->qf_heads, in->qf_ffn, in->n_query, in->codebook_size, in->code_dim);
    code_stats cs[2] = {{0}};
    for (int i = 0; i < fc->n_images; i++)
        compare_image(m, dev, fc, i, cs);
    for (int c = 0; c < fc->n_checks; c++) {
        const ref_check *rc = &fc->checks[c];
        const double agree = cs[c].total ? (double)cs[c].agree / cs[c].total : 0;
        printf("# %s %s vs reference '%s': codes %d/%d identical (%.1f%%), %d near-tie flips (gap < %g), %d other "
               "differences\n",
               dev, fc->name, rc->ref, cs[c].agree, cs[c].total, 100 * agree, cs[c].ties, (double)NEAR_TIE,
               cs[c].bad);
        CHECK(agree >= rc->min_agree && (!rc->ties_only || cs[c].bad == 0),
              "%s %s vs '%s': %.1f%% codes identical (want >= %.0f%%), %d differences beyond near ties", dev,
              fc->name, rc->ref, 100 * agree, 100 * rc->min_agree, cs[c].bad);
    }
    if (!strcmp(fc->name, "f32")) {
        check_abort_and_args(m, dev);
        check_encode_image(m, dev);
    }
    ag_seed_tokenizer_free(m);
}

/* ---- hostile model files ---- */

typedef enum { H_ARCH, H_DEPTH_TYPE, H_DEPTH, H_HEADS, H_CROSS, H_CODEBOOK_F16 } hostile_kind;

/* A copy of good with one thing broken. */
static int write_hostile(const char *good, const char *path, hostile_kind kind)
{
    ag_gguf *f = ag_gguf_open(good);
    ag_gguf_writer *w = ag_gguf_writer_new();
    ag_fp16 *half = NULL;
    int rc = -1;
    if (!f || !w)
        goto out;
    const uint32_t cross[2] = {0, 1};
    if ((kind == H_ARCH && ag_gguf_set_str(w, "general.architecture", "llama")) ||
        (kind == H_DEPTH_TYPE && ag_gguf_set_str(w, "seed-tokenizer.vit.depth", "two")) ||
        (kind == H_DEPTH && ag_gguf_set_u32(w, "seed-tokenizer.vit.depth", 5)) ||
        (kind == H_HEADS && ag_gguf_set_u32(w, "seed-tokenizer.vit.heads", 5)) ||
        (kind == H_CROSS && ag_gguf_set_arr(w, "seed-tokenizer.qformer.cross_attention_layers", AG_GGUF_UINT32, cross, 2)) ||
        ag_gguf_copy_kvs(w, f))
        goto out;
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
        const char *name = ag_gguf_tensor_name(f, i);
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        ag_type type = ag_gguf_tensor_type(f, i);
        const void *data = ag_gguf_tensor_data(f, i);
        size_t size = ag_gguf_tensor_size(f, i);
        if (kind == H_CODEBOOK_F16 && !strcmp(name, "vq.codebook")) {
            const int64_t n = ne[0] * ne[1];
            half = malloc((size_t)n * sizeof *half);
            if (!half)
                goto out;
            for (int64_t j = 0; j < n; j++)
                half[j] = ag_fp32_to_fp16(((const float *)data)[j]);
            type = AG_TYPE_F16;
            data = half;
            size = (size_t)n * sizeof *half;
        }
        if (ag_gguf_add_tensor(w, name, type, ag_gguf_tensor_n_dims(f, i), ne, data, size))
            goto out;
    }
    rc = ag_gguf_writer_write(w, path);
out:
    ag_gguf_writer_free(w);
    ag_gguf_close(f);
    free(half);
    return rc;
}

static void expect_load_error(ag_backend *be, const char *path, const char *expect)
{
    ag_seed_tokenizer *m = ag_seed_tokenizer_load(be, path, NULL, NULL);
    CHECK(m == NULL && strstr(ag_last_error(), expect) != NULL, "%s: loaded or wrong message '%s' (want '%s')", path,
          m ? "(loaded)" : ag_last_error(), expect);
    if (!m)
        printf("# refused %s: %s\n", strrchr(path, '/') + 1, ag_last_error());
    ag_seed_tokenizer_free(m);
}

static void check_hostile(ag_backend *be, const char *good)
{
    static const struct {
        hostile_kind kind;
        const char *file, *expect;
    } cases[] = {
        {H_ARCH, "h_arch.gguf", "this is a 'llama' model file, expected 'seed-tokenizer'"},
        {H_DEPTH_TYPE, "h_depth_type.gguf", "'seed-tokenizer.vit.depth'"},
        {H_DEPTH, "h_depth.gguf", "tensor 'v.blk.2.ln1.weight' is missing"},
        {H_HEADS, "h_heads.gguf", "inconsistent sizes"},
        {H_CROSS, "h_cross.gguf", "tensor 'qf.blk.1.cross_q.weight' is missing"},
        {H_CODEBOOK_F16, "h_codebook.gguf", "tensor 'vq.codebook' has type f16"},
    };
    char path[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, cases[i].file);
        const int rc = write_hostile(good, path, cases[i].kind);
        CHECK(rc == 0, "writing %s: %s", path, ag_last_error());
        if (rc == 0)
            expect_load_error(be, path, cases[i].expect);
    }
    /* truncated: the tensor table promises data past the end */
    size_t n;
    void *blob = ag_read_file(good, &n);
    snprintf(path, sizeof path, "%s/h_trunc.gguf", out_dir);
    FILE *fo = blob ? fopen(path, "wb") : NULL;
    CHECK(fo && fwrite(blob, 1, n * 3 / 5, fo) == n * 3 / 5, "writing %s", path);
    if (fo)
        fclose(fo);
    free(blob);
    expect_load_error(be, path, "h_trunc.gguf");
    snprintf(path, sizeof path, "%s/no_such_model.gguf", out_dir);
    expect_load_error(be, path, "no_such_model.gguf");
}

/* ---- conversion ---- */

static void check_refused(const char *variant, const char *expect)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/refused.gguf", out_dir);
    ag_check_refused(convert_bin, "seed-tokenizer", fix_dir, variant, out, expect);
}

static bool convert(const char *variant, const char *out, const char *dtype)
{
    char msg[4096];
    const int rc = ag_run_convert(convert_bin, "seed-tokenizer", fix_dir, variant, out, dtype, msg, sizeof msg);
    CHECK(rc == 0, "convert %s --dtype %s: %s", variant, dtype, msg);
    return rc == 0;
}

static bool quantize(const char *in, const char *out)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' q8_0 > /dev/null", quantize_bin, in, out);
    const int rc = system(cmd);
    CHECK(rc == 0, "%s failed (%d)", cmd, rc);
    return rc == 0;
}

/* the q8_0 file: matrices quantized, the patch kernel (rows of 14) and the F32 tables untouched */
static void check_q8_types(const char *path)
{
    ag_gguf *f = ag_gguf_open(path);
    CHECK(f != NULL, "%s: %s", path, ag_last_error());
    if (!f)
        return;
    struct {
        const char *name;
        ag_type type;
    } want[] = {{"v.patch_embd.weight", AG_TYPE_F16}, {"v.blk.0.attn_qkv.weight", AG_TYPE_Q8_0},
                {"v.blk.1.ffn_down.weight", AG_TYPE_Q8_0}, {"qf.blk.0.cross_k.weight", AG_TYPE_Q8_0},
                {"task.fc2.weight", AG_TYPE_Q8_0}, {"vq.codebook", AG_TYPE_F32}, {"v.pos_embd", AG_TYPE_F32},
                {"qf.query_tokens", AG_TYPE_F32}, {"v.blk.0.attn_qkv.bias", AG_TYPE_F32}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const int64_t t = ag_gguf_find_tensor(f, want[i].name);
        CHECK(t >= 0 && ag_gguf_tensor_type(f, t) == want[i].type, "%s: %s is %s, want %s", path, want[i].name,
              t >= 0 ? ag_type_name(ag_gguf_tensor_type(f, t)) : "missing", ag_type_name(want[i].type));
    }
    ag_gguf_close(f);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s FIXTURE_DIR ANYGPT_CONVERT ANYGPT_QUANTIZE OUT_DIR\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    convert_bin = argv[2];
    quantize_bin = argv[3];
    out_dir = argv[4];
    char g32[4096], g16[4096], gq8[4096], gsw[4096];
    snprintf(g32, sizeof g32, "%s/seed-tiny-f32.gguf", out_dir);
    snprintf(g16, sizeof g16, "%s/seed-tiny-f16.gguf", out_dir);
    snprintf(gq8, sizeof gq8, "%s/seed-tiny-q8_0.gguf", out_dir);
    snprintf(gsw, sizeof gsw, "%s/seed-swapped-f32.gguf", out_dir);
    const bool ok = convert("tiny", g32, "f32") && convert("tiny", g16, "f16") && quantize(g16, gq8);
    const bool ok_sw = convert("swapped", gsw, "f32");
    char gq16[4096];
    snprintf(gq16, sizeof gq16, "%s/seed-q16-f32.gguf", out_dir);
    const bool ok_q16 = convert("q16", gq16, "f32");
    if (ok)
        check_q8_types(gq8);
    check_refused("bad_missing", "seed_quantizer.pt lacks tensor 'Qformer.bert.encoder.layer.1.attention.self.key.bias'");
    check_refused("bad_cross",
                  "seed_quantizer.pt lacks tensor 'Qformer.bert.encoder.layer.2.crossattention.self.value.weight'");
    check_refused("bad_unknown", "unexpected tensor 'Qformer.bert.encoder.layer.0.attention.self.distance_embedding.weight'");
    check_refused("bad_unknown_vit", "eva_vit_g.pth: unexpected tensor 'blocks.0.attn.relative_position_bias_table'");
    check_refused("bad_shape", "eva_vit_g.pth: tensor 'blocks.1.mlp.fc1.weight' has shape [100,352], expected [1536,352]");
    check_refused("bad_width", "tensor 'Qformer.bert.encoder.layer.0.crossattention.self.key.weight' has shape [192,300]");
    check_refused("bad_trunc", "truncated");
    check_refused("bad_nofile", "no seed_quantizer.pt in this folder");
    check_refused("no_such_dir", "not a folder");

    /* tolerances: see the header comment */
    const ref_check exact = {"", 1e-4, 1e-4, 1e-4, 0.95, true}, exact16 = {"h16.", 1e-4, 1e-4, 1e-4, 0.95, true},
                    exact8 = {"q8.", 1e-4, 1e-4, 1e-4, 0.95, true}, act8 = {"q8a.", 2e-2, 0.15, 0.15, 0.85, false},
                    loose8 = {"", 3e-2, 0.2, 0.2, 0.80, false};
    const file_case cpu_cases[3] = {{"f32", N_IMAGES, {exact}, 1}, {"f16", N_IMAGES, {exact16}, 1},
                                    {"q8_0", N_IMAGES, {act8, loose8}, 2}};
    /* lavapipe is slow: two images for f16 / q8_0 */
    const file_case vk_cases[3] = {{"f32", N_IMAGES, {exact}, 1}, {"f16", 2, {exact16}, 1},
                                   {"q8_0", 2, {exact8, loose8}, 2}};
    const char *files[3] = {g32, g16, gq8};
    ag_backend *cpu = ag_backend_cpu_new(2);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (cpu && ok) {
        printf("# device: cpu (%d threads)\n", ag_backend_cpu_n_threads(cpu));
        for (int i = 0; i < 3; i++)
            run_file(cpu, "cpu", files[i], &cpu_cases[i]);
        check_hostile(cpu, g32);
        if (ok_q16)
            check_q16(cpu, gq16);
        if (ok_sw) { /* the dtype-swapped input converts and loads (same ViT values, fp16-rounded SEED) */
            ag_seed_tokenizer *m = ag_seed_tokenizer_load(cpu, gsw, NULL, NULL);
            CHECK(m != NULL, "swapped-dtype model: %s", ag_last_error());
            ag_seed_tokenizer_free(m);
        }
    }
    ag_backend_free(cpu);
    const char *req = getenv("AG_REQUIRE_VULKAN");
    if (ag_vulkan_device_count() > 0) {
        ag_backend *vk = ag_backend_vulkan_new(-1);
        CHECK(vk != NULL, "vulkan backend: %s", ag_last_error());
        if (vk && ok) {
            printf("# device: vulkan %s\n", ag_backend_device_name(vk));
            for (int i = 0; i < 3; i++)
                run_file(vk, "vulkan", files[i], &vk_cases[i]);
            check_hostile(vk, g32);
        }
        ag_backend_free(vk);
    } else {
        CHECK(!(req && !strcmp(req, "1")), "AG_REQUIRE_VULKAN=1 but no Vulkan device");
        printf("# device: no vulkan device, vulkan part skipped\n");
    }
    return t_finish();
}
