/* SpeechTokenizer end to end: tiny random checkpoints (ELU and Snake) in the published layout,
 * made by tests/reference/speechtokenizer_ref.py, are converted by anygpt-convert, then encoded
 * and decoded on cpu (and vulkan when a device exists) and compared with the PyTorch reference:
 * codes identical except near ties (relative distance gap < 1e-5 at the first differing layer),
 * decoded audio within 1e-4 of the reference's peak. Also: converter refusals, hostile codes.
 *
 * usage: test_speechtokenizer FIXTURE_DIR ANYGPT_CONVERT OUT_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fix_dir, *convert_bin, *out_dir;

static void check_refused(const char *variant, const char *expect)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/%s.gguf", out_dir, variant);
    ag_check_refused(convert_bin, "speechtokenizer", fix_dir, variant, out, expect);
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
        ag_codec_fixture fx = {0};
        char name[64];
        snprintf(name, sizeof name, "%s.%s", variant, sigs[s]);
        if (ag_codec_fixture_load(fix_dir, name, 8, 320, &fx) != 0) {
            CHECK(0, "fixture %s.%s unreadable", variant, sigs[s]);
            ag_codec_fixture_free(&fx);
            continue;
        }
        CHECK(ag_seanet_n_frames(m, fx.n) == fx.t, "frames %lld vs %lld", (long long)ag_seanet_n_frames(m, fx.n),
              (long long)fx.t);
        int32_t *codes = calloc((size_t)fx.t * 8, sizeof *codes);
        float *audio = calloc((size_t)fx.t * 320, sizeof *audio);
        double t0 = ag_now_s();
        int rc = ag_seanet_encode(m, fx.in, fx.n, 8, codes);
        double t_enc = ag_now_s() - t0;
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
        t0 = ag_now_s();
        rc = ag_seanet_decode(m, fx.codes, fx.t, 8, audio);
        double t_dec = ag_now_s() - t0;
        CHECK(rc == 0, "decode %s.%s: %s", variant, sigs[s], ag_last_error());
        double peak;
        const double err = ag_max_abs_err(audio, fx.dec, (size_t)fx.t * 320, &peak);
        CHECK(rc == 0 && peak > 0 && err / peak < (f16 ? 1e-2 : 1e-4), "%s.%s decode rel error %.3g", variant, sigs[s],
              peak > 0 ? err / peak : 0.0);
        printf("# %s%s %s.%s: %lld samples -> %lld frames; codes exact %d/%lld, near-tie flips %d (worst gap %.2g); "
               "decode max|err|/peak %.3g; encode %.1f ms, decode %.1f ms\n",
               ag_backend_name(be), f16 ? " (f16 weights)" : "", variant, sigs[s], (long long)fx.n, (long long)fx.t, exact, (long long)fx.t * 8,
               flips, worst_gap, peak > 0 ? err / peak : 0.0, 1e3 * t_enc, 1e3 * t_dec);
        free(codes);
        free(audio);
        ag_codec_fixture_free(&fx);
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
        int rc =
            ag_run_convert(convert_bin, "speechtokenizer", fix_dir, variants[v], gguf[v], "f32", msg, sizeof msg);
        CHECK(rc == 0, "convert %s: %s", variants[v], msg);
        snprintf(gguf16[v], sizeof gguf16[v], "%s/st-%s-f16.gguf", out_dir, variants[v]);
        rc = ag_run_convert(convert_bin, "speechtokenizer", fix_dir, variants[v], gguf16[v], "f16", msg,
                            sizeof msg);
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
