/* SpeechTokenizer end to end: tiny random checkpoints (ELU and Snake) in the published layout,
 * made by tests/reference/speechtokenizer_ref.py, are converted by anygpt-convert, then encoded
 * and decoded on cpu (and vulkan when a device exists) and compared with the PyTorch reference:
 * codes identical except near ties (relative distance gap < 1e-5 at the first differing layer),
 * decoded audio within 1e-4 of the reference's peak. Also: converter refusals, hostile codes.
 *
 * usage: test_speechtokenizer FIXTURE_DIR ANYGPT_CONVERT OUT_DIR */
#include "../common/ag_check.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *fix_dir, *convert_bin, *out_dir;

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(sz > 0 ? (size_t)sz : 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Run the converter; returns its exit status, stderr+stdout in msg. */
static int run_convert(const char *variant, const char *out, const char *dtype, char *msg, size_t msg_len)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' speechtokenizer '%s/%s' '%s' --quiet --dtype %s 2>&1", convert_bin, fix_dir,
             variant, out, dtype);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(msg, 1, msg_len - 1, p);
    msg[n] = 0;
    return pclose(p);
}

static void check_refused(const char *variant, const char *expect)
{
    char out[4096], msg[4096];
    snprintf(out, sizeof out, "%s/%s.gguf", out_dir, variant);
    int rc = run_convert(variant, out, "f32", msg, sizeof msg);
    CHECK(rc != 0 && strstr(msg, expect) != NULL, "%s: rc %d, message '%s' (want '%s')", variant, rc, msg, expect);
    if (rc != 0)
        printf("# refused %s: %s", variant, msg);
}

typedef struct {
    float *in, *dec, *gap;
    int32_t *codes;
    int64_t n, t;
} fixture;

static int load_fixture(const char *variant, const char *sig, fixture *fx)
{
    char p[4096];
    size_t n1, n2, n3, n4;
    snprintf(p, sizeof p, "%s/%s.%s.in.f32", fix_dir, variant, sig);
    fx->in = read_all(p, &n1);
    snprintf(p, sizeof p, "%s/%s.%s.codes.i32", fix_dir, variant, sig);
    fx->codes = read_all(p, &n2);
    snprintf(p, sizeof p, "%s/%s.%s.gap.f32", fix_dir, variant, sig);
    fx->gap = read_all(p, &n3);
    snprintf(p, sizeof p, "%s/%s.%s.dec.f32", fix_dir, variant, sig);
    fx->dec = read_all(p, &n4);
    if (!fx->in || !fx->codes || !fx->gap || !fx->dec)
        return -1;
    fx->n = (int64_t)(n1 / 4);
    fx->t = (int64_t)(n2 / 4 / 8);
    return n3 == n2 && n4 == (size_t)fx->t * 320 * 4 ? 0 : -1;
}

static void free_fixture(fixture *fx)
{
    free(fx->in);
    free(fx->dec);
    free(fx->gap);
    free(fx->codes);
}

/* f16: weights rounded to half, so only a sanity bound: most codes equal, decode close */
static void run_model(ag_backend *be, const char *gguf, const char *variant, bool f16)
{
    const char *sigs[] = {"chirp", "mult", "short"};
    ag_seanet *m = ag_seanet_load(be, gguf, NULL, NULL);
    CHECK(m != NULL, "load %s on %s: %s", gguf, ag_backend_name(be), ag_last_error());
    if (!m)
        return;
    const ag_seanet_info *info = ag_seanet_info_of(m);
    CHECK(info->hop == 320 && info->n_q == 8 && info->codebook_size == 64 && info->dimension == 32 &&
              info->snake == !strcmp(variant, "snake"),
          "info hop %d n_q %d K %d D %d snake %d", info->hop, info->n_q, info->codebook_size, info->dimension,
          info->snake);
    for (size_t s = 0; s < sizeof sigs / sizeof sigs[0]; s++) {
        fixture fx = {0};
        if (load_fixture(variant, sigs[s], &fx) != 0) {
            CHECK(0, "fixture %s.%s unreadable", variant, sigs[s]);
            free_fixture(&fx);
            continue;
        }
        CHECK(ag_seanet_n_frames(m, fx.n) == fx.t, "frames %lld vs %lld", (long long)ag_seanet_n_frames(m, fx.n),
              (long long)fx.t);
        int32_t *codes = calloc((size_t)fx.t * 8, sizeof *codes);
        float *audio = calloc((size_t)fx.t * 320, sizeof *audio);
        double t0 = now_s();
        int rc = ag_seanet_encode(m, fx.in, fx.n, 8, codes);
        double t_enc = now_s() - t0;
        CHECK(rc == 0, "encode %s.%s: %s", variant, sigs[s], ag_last_error());
        /* per frame: the first differing layer must be a near tie; later layers follow from it */
        int flips = 0, bad = 0, exact = 0;
        double worst_gap = 0;
        for (int64_t t = 0; rc == 0 && t < fx.t; t++) {
            for (int q = 0; q < 8; q++) {
                if (codes[t * 8 + q] == fx.codes[t * 8 + q]) {
                    exact++;
                    continue;
                }
                if (fx.gap[t * 8 + q] < 1e-5f) { /* a near tie: float rounding may pick either */
                    flips++;
                    if (fx.gap[t * 8 + q] > worst_gap)
                        worst_gap = fx.gap[t * 8 + q];
                } else {
                    bad++;
                    if (!f16)
                        printf("# %s.%s frame %lld layer %d: code %d, reference %d (gap %.3g)\n", variant, sigs[s],
                           (long long)t, q + 1, codes[t * 8 + q], fx.codes[t * 8 + q], fx.gap[t * 8 + q]);
                }
                break;
            }
        }
        if (f16)
            CHECK(exact >= fx.t * 8 * 3 / 4, "%s.%s f16: only %d of %lld codes equal", variant, sigs[s], exact,
                  (long long)fx.t * 8);
        else
            CHECK(bad == 0, "%s.%s on %s: %d frames with codes differing beyond a near tie", variant, sigs[s],
              ag_backend_name(be), bad);
        t0 = now_s();
        rc = ag_seanet_decode(m, fx.codes, fx.t, 8, audio);
        double t_dec = now_s() - t0;
        CHECK(rc == 0, "decode %s.%s: %s", variant, sigs[s], ag_last_error());
        double peak = 0, err = 0;
        for (int64_t i = 0; i < fx.t * 320; i++) {
            peak = fmax(peak, fabs(fx.dec[i]));
            err = fmax(err, fabs((double)audio[i] - fx.dec[i]));
        }
        CHECK(rc == 0 && peak > 0 && err / peak < (f16 ? 1e-2 : 1e-4), "%s.%s decode rel error %.3g", variant, sigs[s],
              peak > 0 ? err / peak : 0.0);
        printf("# %s%s %s.%s: %lld samples -> %lld frames; codes exact %d/%lld, near-tie flips %d (worst gap %.2g); "
               "decode max|err|/peak %.3g; encode %.1f ms, decode %.1f ms\n",
               ag_backend_name(be), f16 ? " (f16 weights)" : "", variant, sigs[s], (long long)fx.n, (long long)fx.t, exact, (long long)fx.t * 8,
               flips, worst_gap, peak > 0 ? err / peak : 0.0, 1e3 * t_enc, 1e3 * t_dec);
        free(codes);
        free(audio);
        free_fixture(&fx);
    }
    /* hostile codes and arguments: clear errors, no crash */
    int32_t bad_codes[16] = {0};
    float audio[640];
    bad_codes[13] = 64;
    CHECK(ag_seanet_decode(m, bad_codes, 2, 8, audio) != 0 && strstr(ag_last_error(), "outside the codebook"),
          "out-of-range code accepted: %s", ag_last_error());
    bad_codes[13] = -1;
    CHECK(ag_seanet_decode(m, bad_codes, 2, 8, audio) != 0, "negative code accepted");
    CHECK(ag_seanet_decode(m, bad_codes, 2, 9, audio) != 0, "9 layers accepted");
    CHECK(ag_seanet_encode(m, audio, 0, 8, bad_codes) != 0, "empty audio accepted");
    /* fewer layers decode (layer 1 only: the LLM's semantic tokens) */
    int32_t one[2] = {3, 7};
    CHECK(ag_seanet_decode(m, one, 2, 1, audio) == 0, "layer-1 decode: %s", ag_last_error());
    ag_seanet_free(m);
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
    const char *variants[] = {"elu", "snake"};
    char gguf[2][4096], gguf16[2][4096], msg[4096];
    for (int v = 0; v < 2; v++) {
        snprintf(gguf[v], sizeof gguf[v], "%s/st-%s.gguf", out_dir, variants[v]);
        int rc = run_convert(variants[v], gguf[v], "f32", msg, sizeof msg);
        CHECK(rc == 0, "convert %s: %s", variants[v], msg);
        snprintf(gguf16[v], sizeof gguf16[v], "%s/st-%s-f16.gguf", out_dir, variants[v]);
        rc = run_convert(variants[v], gguf16[v], "f16", msg, sizeof msg);
        CHECK(rc == 0, "convert %s f16: %s", variants[v], msg);
    }
    check_refused("bad_missing", "lacks tensor 'decoder.model.4.block.1.conv.conv.weight_v'");
    check_refused("bad_unknown", "unexpected tensor 'encoder.model.99.conv.conv.bias'");
    check_refused("bad_shape", "'quantizer.vq.layers.3._codebook.embed' has shape (64,31), expected (64,32)");

    ag_backend *cpu = ag_backend_cpu_new(0);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (cpu) {
        printf("# device: cpu (%d threads)\n", ag_backend_cpu_n_threads(cpu));
        for (int v = 0; v < 2; v++) {
            run_model(cpu, gguf[v], variants[v], false);
            run_model(cpu, gguf16[v], variants[v], true);
        }
        ag_backend_free(cpu);
    }
    const char *req = getenv("AG_REQUIRE_VULKAN");
    if (ag_vulkan_device_count() > 0) {
        ag_backend *vk = ag_backend_vulkan_new(-1);
        CHECK(vk != NULL, "vulkan backend: %s", ag_last_error());
        if (vk) {
            printf("# device: vulkan %s\n", ag_backend_device_name(vk));
            for (int v = 0; v < 2; v++)
                run_model(vk, gguf[v], variants[v], false);
            ag_backend_free(vk);
        }
    } else {
        CHECK(!(req && !strcmp(req, "1")), "AG_REQUIRE_VULKAN=1 but no Vulkan device");
        printf("# device: no vulkan device, vulkan part skipped\n");
    }
    return t_finish();
}
