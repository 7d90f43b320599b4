/* Encodec 32 kHz end to end: one tiny random checkpoint from tests/reference/encodec_ref.py in
 * every published layout (HF safetensors and .bin, weight_g/v and parametrizations names,
 * audiocraft names wrapped in best_state) is converted by anygpt-convert; all must give the same
 * GGUF bytes. The GGUF is then encoded and decoded on cpu (and vulkan when a device exists) and
 * compared with the PyTorch reference: codes identical except near ties (relative distance gap
 * < 1e-5 at the first differing layer), decoded audio within 1e-4 of the reference's peak.
 * Also: converter refusals (missing/unknown/misshaped tensors, unsupported configs, truncated
 * files) and hostile codes.
 *
 * usage: test_encodec FIXTURE_DIR ANYGPT_CONVERT OUT_DIR */
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

#define NQ 4
#define HOP 640

static const char *fix_dir, *convert_bin, *out_dir;

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
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

/* Run the converter on FIXTURE_DIR/input; exit status, stderr+stdout in msg. */
static int run_convert(const char *input, const char *out, const char *dtype, char *msg, size_t msg_len)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' encodec '%s/%s' '%s' --quiet --dtype %s 2>&1", convert_bin, fix_dir, input, out,
             dtype);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(msg, 1, msg_len - 1, p);
    msg[n] = 0;
    return pclose(p);
}

static void check_refused(const char *input, const char *expect)
{
    char out[4096], msg[4096];
    snprintf(out, sizeof out, "%s/%s.gguf", out_dir, input);
    int rc = run_convert(input, out, "f32", msg, sizeof msg);
    CHECK(rc != 0 && strstr(msg, expect) != NULL, "%s: rc %d, message '%s' (want '%s')", input, rc, msg, expect);
    if (rc != 0)
        printf("# refused %s: %s", input, msg);
}

typedef struct {
    float *in, *dec, *gap;
    int32_t *codes;
    int64_t n, t;
} fixture;

static int load_fixture(const char *sig, fixture *fx)
{
    char p[4096];
    size_t n1, n2, n3, n4;
    snprintf(p, sizeof p, "%s/%s.in.f32", fix_dir, sig);
    fx->in = read_all(p, &n1);
    snprintf(p, sizeof p, "%s/%s.codes.i32", fix_dir, sig);
    fx->codes = read_all(p, &n2);
    snprintf(p, sizeof p, "%s/%s.gap.f32", fix_dir, sig);
    fx->gap = read_all(p, &n3);
    snprintf(p, sizeof p, "%s/%s.dec.f32", fix_dir, sig);
    fx->dec = read_all(p, &n4);
    if (!fx->in || !fx->codes || !fx->gap || !fx->dec)
        return -1;
    fx->n = (int64_t)(n1 / 4);
    fx->t = (int64_t)(n2 / 4 / NQ);
    return n3 == n2 && n4 == (size_t)fx->t * HOP * 4 ? 0 : -1;
}

static void free_fixture(fixture *fx)
{
    free(fx->in);
    free(fx->dec);
    free(fx->gap);
    free(fx->codes);
}

/* f16: weights rounded to half, so only a sanity bound: most codes equal, decode close */
static void run_model(ag_backend *be, const char *gguf, bool f16)
{
    const char *sigs[] = {"chirp", "mult", "short"};
    ag_seanet *m = ag_seanet_load(be, gguf, NULL, NULL);
    CHECK(m != NULL, "load %s on %s: %s", gguf, ag_backend_name(be), ag_last_error());
    if (!m)
        return;
    const ag_seanet_info *info = ag_seanet_info_of(m);
    CHECK(info->sample_rate == 32000 && info->hop == HOP && info->n_q == NQ && info->codebook_size == 64 &&
              info->dimension == 16 && !info->snake,
          "info sr %d hop %d n_q %d K %d D %d snake %d", info->sample_rate, info->hop, info->n_q, info->codebook_size,
          info->dimension, info->snake);
    for (size_t s = 0; s < sizeof sigs / sizeof sigs[0]; s++) {
        fixture fx = {0};
        if (load_fixture(sigs[s], &fx) != 0) {
            CHECK(0, "fixture %s unreadable", sigs[s]);
            free_fixture(&fx);
            continue;
        }
        CHECK(ag_seanet_n_frames(m, fx.n) == fx.t, "frames %lld vs %lld", (long long)ag_seanet_n_frames(m, fx.n),
              (long long)fx.t);
        int32_t *codes = calloc((size_t)fx.t * NQ, sizeof *codes);
        float *audio = calloc((size_t)fx.t * HOP, sizeof *audio);
        double t0 = now_s();
        int rc = ag_seanet_encode(m, fx.in, fx.n, NQ, codes);
        const double t_enc = now_s() - t0;
        CHECK(rc == 0, "encode %s: %s", sigs[s], ag_last_error());
        /* per frame: the first differing layer must be a near tie; later layers follow from it */
        int flips = 0, bad = 0, exact = 0;
        double worst_gap = 0;
        for (int64_t t = 0; rc == 0 && t < fx.t; t++) {
            for (int q = 0; q < NQ; q++) {
                const int64_t i = t * NQ + q;
                if (codes[i] == fx.codes[i]) {
                    exact++;
                    continue;
                }
                if (fx.gap[i] < 1e-5f) { /* a near tie: float rounding may pick either */
                    flips++;
                    worst_gap = fmax(worst_gap, fx.gap[i]);
                } else {
                    bad++;
                    if (!f16)
                        printf("# %s frame %lld layer %d: code %d, reference %d (gap %.3g)\n", sigs[s], (long long)t,
                               q + 1, codes[i], fx.codes[i], fx.gap[i]);
                }
                break;
            }
        }
        if (f16)
            CHECK(exact >= fx.t * NQ * 3 / 4, "%s f16: only %d of %lld codes equal", sigs[s], exact,
                  (long long)fx.t * NQ);
        else
            CHECK(bad == 0 && flips <= 1, "%s on %s: %d frames with codes differing beyond a near tie, %d flips",
                  sigs[s], ag_backend_name(be), bad, flips);
        t0 = now_s();
        rc = ag_seanet_decode(m, fx.codes, fx.t, NQ, audio);
        const double t_dec = now_s() - t0;
        CHECK(rc == 0, "decode %s: %s", sigs[s], ag_last_error());
        double peak = 0, err = 0;
        for (int64_t i = 0; i < fx.t * HOP; i++) {
            peak = fmax(peak, fabs(fx.dec[i]));
            err = fmax(err, fabs((double)audio[i] - fx.dec[i]));
        }
        CHECK(rc == 0 && peak > 0 && err / peak < (f16 ? 1e-2 : 1e-4), "%s decode rel error %.3g", sigs[s],
              peak > 0 ? err / peak : 0.0);
        printf("# %s%s %s: %lld samples -> %lld frames; codes exact %d/%lld, near-tie flips %d (worst gap %.2g); "
               "decode max|err|/peak %.3g; encode %.1f ms, decode %.1f ms\n",
               ag_backend_name(be), f16 ? " (f16 weights)" : "", sigs[s], (long long)fx.n, (long long)fx.t, exact,
               (long long)fx.t * NQ, flips, worst_gap, peak > 0 ? err / peak : 0.0, 1e3 * t_enc, 1e3 * t_dec);
        free(codes);
        free(audio);
        free_fixture(&fx);
    }
    /* hostile codes and arguments: clear errors, no crash */
    int32_t bad_codes[2 * NQ] = {0};
    float audio[2 * HOP];
    bad_codes[6] = 64;
    CHECK(ag_seanet_decode(m, bad_codes, 2, NQ, audio) != 0 && strstr(ag_last_error(), "outside the codebook"),
          "out-of-range code accepted: %s", ag_last_error());
    bad_codes[6] = -1;
    CHECK(ag_seanet_decode(m, bad_codes, 2, NQ, audio) != 0, "negative code accepted");
    CHECK(ag_seanet_decode(m, bad_codes, 2, NQ + 1, audio) != 0, "5 codebooks accepted");
    CHECK(ag_seanet_encode(m, audio, 0, NQ, bad_codes) != 0, "empty audio accepted");
    ag_seanet_free(m);
}

/* Copy of gguf with the value of a KV patched in place (bool: 1 byte; string: same length), then
 * loading must fail naming the key: the file's own claims about the model are checked. */
static void check_patched_kv(ag_backend *be, const char *gguf, const char *key, const char *val, size_t vlen)
{
    size_t n;
    uint8_t *d = read_all(gguf, &n);
    uint8_t *k = d ? memmem(d, n, key, strlen(key)) : NULL;
    char out[4096];
    snprintf(out, sizeof out, "%s/patched-%s.gguf", out_dir, key);
    FILE *f = NULL;
    /* after the key: u32 value type, then the value (strings: u64 length first) */
    const size_t off = k ? (size_t)(k - d) + strlen(key) + 4 + (vlen > 1 ? 8 : 0) : 0;
    if (k && off + vlen <= n && (f = fopen(out, "wb"))) {
        memcpy(d + off, val, vlen);
        CHECK(fwrite(d, 1, n, f) == n, "write %s", out);
        fclose(f);
        ag_seanet *m = ag_seanet_load(be, out, NULL, NULL);
        CHECK(!m && strstr(ag_last_error(), key), "patched %s accepted (%s)", key, m ? "loaded" : ag_last_error());
        if (!m)
            printf("# refused patched %s: %s\n", key, ag_last_error());
        ag_seanet_free(m);
    } else {
        CHECK(0, "cannot patch %s in %s", key, gguf);
    }
    free(d);
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    void *pa = read_all(a, &na), *pb = read_all(b, &nb);
    bool same = pa && pb && na == nb && na > 0 && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
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
    /* every layout of the same weights: identical GGUF bytes */
    const char *layouts[] = {"hf_st_g", "hf_st_p", "hf_bin_g", "hf_bin_p", "ac", "ac/state_dict.bin"};
    char gguf[4096], other[4096], gguf16[4096], msg[4096];
    snprintf(gguf, sizeof gguf, "%s/encodec-hf_st_g.gguf", out_dir);
    for (size_t v = 0; v < sizeof layouts / sizeof layouts[0]; v++) {
        snprintf(other, sizeof other, "%s/encodec-%zu.gguf", out_dir, v);
        int rc = run_convert(layouts[v], v ? other : gguf, "f32", msg, sizeof msg);
        CHECK(rc == 0, "convert %s: %s", layouts[v], msg);
        if (v)
            CHECK(rc == 0 && same_file(gguf, other), "%s converts to different GGUF bytes than hf_st_g", layouts[v]);
    }
    snprintf(gguf16, sizeof gguf16, "%s/encodec-f16.gguf", out_dir);
    CHECK(run_convert("hf_st_g", gguf16, "f16", msg, sizeof msg) == 0, "convert f16: %s", msg);
    check_refused("bad_missing", "lacks tensor 'decoder.layers.7.block.1.conv.weight_v'");
    check_refused("bad_unknown", "unexpected tensor 'encoder.layers.16.conv.bias'");
    check_refused("bad_shape", "'quantizer.layers.2.codebook.embed' has shape (64,15), expected (64,16)");
    check_refused("bad_causal", "use_causal_conv true (only non-causal is supported)");
    check_refused("bad_norm", "norm_type 'time_group_norm' is not supported");
    check_refused("bad_trunc", "model.safetensors");
    check_refused("no_such_dir", "no model.safetensors");
    check_refused("ac_noconfig", "'best_state.encoder.model.0.conv.conv.weight_g' has shape (4,1,1), expected (64,1,1)");

    ag_backend *cpu = ag_backend_cpu_new(0);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (cpu) {
        printf("# device: cpu (%d threads)\n", ag_backend_cpu_n_threads(cpu));
        run_model(cpu, gguf, false);
        run_model(cpu, gguf16, true);
        check_patched_kv(cpu, gguf, "encodec.causal", "\1", 1);
        check_patched_kv(cpu, gguf, "encodec.pad_mode", "circula", 7);
        ag_backend_free(cpu);
    }
    const char *req = getenv("AG_REQUIRE_VULKAN");
    if (ag_vulkan_device_count() > 0) {
        ag_backend *vk = ag_backend_vulkan_new(-1);
        CHECK(vk != NULL, "vulkan backend: %s", ag_last_error());
        if (vk) {
            printf("# device: vulkan %s\n", ag_backend_device_name(vk));
            run_model(vk, gguf, false);
            /* the real model's 1024-wide LSTM runs one dispatch per step: cover that path too */
            setenv("AG_VK_LSTM", "step", 1);
            printf("# vulkan, LSTM one dispatch per step\n");
            run_model(vk, gguf, false);
            unsetenv("AG_VK_LSTM");
            ag_backend_free(vk);
        }
    } else {
        CHECK(!(req && !strcmp(req, "1")), "AG_REQUIRE_VULKAN=1 but no Vulkan device");
        printf("# device: no vulkan device, vulkan part skipped\n");
    }
    return t_finish();
}
