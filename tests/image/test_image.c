/* Image preprocessing against the real thing: ag_image_resize_bicubic byte-identical to PIL's
 * Image.resize(BICUBIC) for every case of tests/reference/image_ref.py and every packed layout
 * (RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR with garbage in the spare byte and
 * padded rows); ag_image_normalize bit-identical to torchvision's ToTensor + Normalize; absurd
 * arguments refused with an error.
 *
 * usage: test_image FIXTURE_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/error.h"
#include "anygpt/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fix_dir;

/* lowbias32, as hash32() in image_ref.py */
static uint32_t hash32(uint32_t v)
{
    v ^= v >> 16;
    v *= 0x7feb352du;
    v ^= v >> 15;
    v *= 0x846ca68bu;
    v ^= v >> 16;
    return v;
}

/* The source image of a case, packed RGB: the same bytes as synth() / all_bytes_image(). */
static uint8_t *synth_rgb(int w, int h, int pattern, uint32_t seed)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    if (!p)
        return NULL;
    const uint32_t salt = seed * 0x9e3779b9u;
    for (uint32_t y = 0; y < (uint32_t)h; y++)
        for (uint32_t x = 0; x < (uint32_t)w; x++)
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t v;
                if (pattern < 0) { /* 16x16: every byte value in every channel */
                    v = c == 0 ? y * 16 + x : c == 1 ? (15 - y) * 16 + x : x * 16 + y;
                } else if (pattern == 0) {
                    v = hash32((y * (uint32_t)w + x) * 3 + c + salt) & 255;
                } else if (pattern == 1) {
                    uint32_t blk = (y >> 2) * 65536u + (x >> 3);
                    v = (hash32(blk * 3 + c + salt) & 1) ? 255 : 0;
                } else {
                    uint32_t ramp = ((x * 7 + y * 5 + c * 60) >> 2) & 255;
                    uint32_t noise = hash32((y * (uint32_t)w + x) * 3 + c + salt) & 15;
                    v = ramp + noise > 255 ? 255 : ramp + noise;
                }
                p[((size_t)y * (size_t)w + x) * 3 + c] = (uint8_t)v;
            }
    return p;
}

typedef struct {
    const char *name;
    int bpp, r, g, b;
} layout;

static const layout LAYOUTS[] = {
    {"RGB", 3, 0, 1, 2},  {"BGR", 3, 2, 1, 0},  {"RGBx", 4, 0, 1, 2}, {"BGRx", 4, 2, 1, 0}, {"xRGB", 4, 1, 2, 3},
    {"xBGR", 4, 3, 2, 1}, {"RGBA", 4, 0, 1, 2}, {"BGRA", 4, 2, 1, 0}, {"ARGB", 4, 1, 2, 3}, {"ABGR", 4, 3, 2, 1},
};
enum { N_LAYOUTS = sizeof LAYOUTS / sizeof LAYOUTS[0], ROW_PAD = 5 };

/* rgb repacked into layout l, rows padded by ROW_PAD bytes; spare and padding bytes are noise */
static uint8_t *repack(const uint8_t *rgb, int w, int h, const layout *l, size_t *stride)
{
    *stride = (size_t)w * (size_t)l->bpp + ROW_PAD;
    uint8_t *p = malloc(*stride * (size_t)h);
    if (!p)
        return NULL;
    for (size_t i = 0; i < *stride * (size_t)h; i++)
        p[i] = (uint8_t)hash32((uint32_t)i ^ 0x5bd1e995u);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *s = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            uint8_t *d = p + (size_t)y * *stride + (size_t)x * (size_t)l->bpp;
            d[l->r] = s[0];
            d[l->g] = s[1];
            d[l->b] = s[2];
        }
    return p;
}

static void *fixture(const char *name, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fix_dir, name);
    void *p = ag_read_file(path, n);
    CHECK(p != NULL, "cannot read fixture %s", path);
    return p;
}

static void check_resize_cases(void)
{
    size_t n_man, n_out;
    char *man = fixture("resize_cases.txt", &n_man);
    uint8_t *ref = fixture("resize_out.bin", &n_out);
    if (!man || !ref) {
        free(man);
        free(ref);
        return;
    }
    man = realloc(man, n_man + 1);
    man[n_man] = 0;
    size_t off = 0;
    int cases = 0, runs = 0;
    for (char *line = strtok(man, "\n"); line; line = strtok(NULL, "\n")) {
        int sw, sh, dw, dh, pat;
        unsigned seed;
        if (sscanf(line, "%d %d %d %d %d %u", &sw, &sh, &dw, &dh, &pat, &seed) != 6) {
            CHECK(0, "bad manifest line '%s'", line);
            break;
        }
        const size_t out_bytes = (size_t)dw * (size_t)dh * 3;
        if (off + out_bytes > n_out) {
            CHECK(0, "resize_out.bin too short for case %s", line);
            break;
        }
        uint8_t *rgb = synth_rgb(sw, sh, pat, seed);
        uint8_t *got = malloc(out_bytes);
        CHECK(rgb && got, "out of memory");
        if (!rgb || !got) {
            free(rgb);
            free(got);
            break;
        }
        /* every layout on small frames; RGB plus two 4-byte layouts on the large ones */
        const bool big = (size_t)sw * (size_t)sh > 1000000;
        for (int li = 0; li < N_LAYOUTS; li++) {
            if (big && li != 0 && li != 3 && li != 9)
                continue;
            size_t stride;
            uint8_t *src = repack(rgb, sw, sh, &LAYOUTS[li], &stride);
            ag_image_view v = {src, sw, sh, stride, LAYOUTS[li].bpp, LAYOUTS[li].r, LAYOUTS[li].g, LAYOUTS[li].b};
            memset(got, 0xa5, out_bytes);
            int rc = src ? ag_image_resize_bicubic(&v, dw, dh, got) : -1;
            CHECK(rc == 0, "%dx%d -> %dx%d %s: rc %d (%s)", sw, sh, dw, dh, LAYOUTS[li].name, rc, ag_last_error());
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < out_bytes; i++)
                if (got[i] != ref[off + i] && bad++ == 0)
                    first = i;
            CHECK(bad == 0, "%dx%d -> %dx%d pattern %d %s: %zu of %zu bytes differ from PIL (first at %zu: %d vs %d)",
                  sw, sh, dw, dh, pat, LAYOUTS[li].name, bad, out_bytes, first, got[first], ref[off + first]);
            runs++;
            free(src);
        }
        printf("# resize %4dx%-4d -> %4dx%-4d pattern %d: compared with PIL\n", sw, sh, dw, dh, pat);
        free(rgb);
        free(got);
        off += out_bytes;
        cases++;
    }
    CHECK(cases >= 20 && off == n_out, "%d cases read, %zu of %zu reference bytes used", cases, off, n_out);
    printf("# resize: %d cases, %d layout runs, each byte-identical to PIL unless a FAIL line says otherwise\n",
           cases, runs);
    free(man);
    free(ref);
}

static void check_normalize_cases(void)
{
    size_t n_man, n_out;
    char *man = fixture("norm_cases.txt", &n_man);
    float *ref = fixture("norm_out.bin", &n_out);
    if (!man || !ref) {
        free(man);
        free(ref);
        return;
    }
    man = realloc(man, n_man + 1);
    man[n_man] = 0;
    size_t off = 0;
    int cases = 0;
    for (char *line = strtok(man, "\n"); line; line = strtok(NULL, "\n")) {
        int w, h, pat, rw, rh;
        unsigned seed;
        double m[3], s[3];
        if (sscanf(line, "%d %d %d %u %lf %lf %lf %lf %lf %lf %d %d", &w, &h, &pat, &seed, &m[0], &m[1], &m[2], &s[0],
                   &s[1], &s[2], &rw, &rh) != 12) {
            CHECK(0, "bad manifest line '%s'", line);
            break;
        }
        uint8_t *rgb = synth_rgb(w, h, pat, seed);
        int ow = w, oh = h;
        if (rgb && rw > 0) { /* torchvision's Resize on a PIL image is PIL's resize */
            uint8_t *small = malloc((size_t)rw * (size_t)rh * 3);
            ag_image_view v = {rgb, w, h, (size_t)w * 3, 3, 0, 1, 2};
            CHECK(small && ag_image_resize_bicubic(&v, rw, rh, small) == 0, "resize for normalize: %s",
                  ag_last_error());
            free(rgb);
            rgb = small;
            ow = rw;
            oh = rh;
        }
        const size_t n = (size_t)ow * (size_t)oh * 3;
        if (!rgb || (off + n) * 4 > n_out) {
            CHECK(0, "normalize case '%s': no image or reference too short", line);
            free(rgb);
            break;
        }
        const float mean[3] = {(float)m[0], (float)m[1], (float)m[2]};
        const float stdv[3] = {(float)s[0], (float)s[1], (float)s[2]};
        const bool clip = m[0] == 0.48145466 && s[2] == 0.27577711;
        if (clip)
            CHECK(memcmp(mean, AG_CLIP_MEAN, sizeof mean) == 0 && memcmp(stdv, AG_CLIP_STD, sizeof stdv) == 0,
                  "AG_CLIP_MEAN/STD differ from torch's float32 of the CLIP constants");
        float *got = malloc(n * sizeof(float));
        ag_image_normalize(rgb, ow, oh, mean, stdv, got);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += memcmp(&got[i], &ref[off + i], sizeof(float)) != 0;
        CHECK(bad == 0, "normalize %dx%d: %zu of %zu floats not bit-identical to torchvision", ow, oh, bad, n);
        printf("# normalize %dx%d%s%s: %zu floats compared bit for bit with torchvision\n", ow, oh,
               rw > 0 ? " (after PIL resize from a 640x480 frame)" : "", clip ? " CLIP mean/std" : "", n);
        free(got);
        free(rgb);
        off += n;
        cases++;
    }
    CHECK(cases == 4 && off * 4 == n_out, "%d normalize cases, %zu of %zu bytes used", cases, off * 4, n_out);
    free(man);
    free(ref);
}

static void expect_refused(const ag_image_view *v, int w, int h, uint8_t *dst, const char *what)
{
    ag_clear_error();
    int rc = ag_image_resize_bicubic(v, w, h, dst);
    CHECK(rc == -1 && ag_last_error() && strstr(ag_last_error(), what), "%s: rc %d, error '%s'", what, rc,
          ag_last_error() ? ag_last_error() : "(none)");
}

static void check_refusals(void)
{
    uint8_t px[64] = {0}, out[64];
    ag_image_view ok = {px, 2, 2, 8, 4, 0, 1, 2};
    CHECK(ag_image_resize_bicubic(&ok, 3, 3, out) == 0, "a valid 2x2 -> 3x3 resize failed: %s", ag_last_error());
    ag_image_view v = ok;
    expect_refused(&v, 0, 3, out, "target size");
    expect_refused(&v, 3, -1, out, "target size");
    expect_refused(&v, AG_IMAGE_MAX_SIDE + 1, 3, out, "target size");
    v.width = 0;
    expect_refused(&v, 3, 3, out, "source size");
    v = ok;
    v.height = -7;
    expect_refused(&v, 3, 3, out, "source size");
    v = ok;
    v.width = AG_IMAGE_MAX_SIDE + 1;
    v.stride = SIZE_MAX / 2;
    expect_refused(&v, 3, 3, out, "source size");
    {
        /* within the side limits but the intermediate is not (limits.h): a 1 x 32768 column to a
         * 32768 x 1 row reads every source row at the full target width (3.2 GB); refused before
         * anything is allocated */
        uint8_t *col = calloc((size_t)AG_IMAGE_MAX_SIDE * 3, 1), *row = malloc((size_t)AG_IMAGE_MAX_SIDE * 3);
        ag_image_view tall = {col, 1, AG_IMAGE_MAX_SIDE, 3, 3, 0, 1, 2};
        expect_refused(&tall, AG_IMAGE_MAX_SIDE, 1, row, "intermediate");
        /* the element's case: any frame to 224 x 224 stays within it */
        uint8_t *small = malloc(224 * 224 * 3);
        CHECK(ag_image_resize_bicubic(&tall, 224, 224, small) == 0, "1 x 32768 -> 224 x 224: %s", ag_last_error());
        free(small);
        free(row);
        free(col);
    }
    v = ok;
    v.bpp = 2;
    expect_refused(&v, 3, 3, out, "bytes per pixel");
    v = ok;
    v.b = 4;
    expect_refused(&v, 3, 3, out, "channel offsets");
    v = ok;
    v.r = -1;
    expect_refused(&v, 3, 3, out, "channel offsets");
    v = ok;
    v.stride = 7;
    expect_refused(&v, 3, 3, out, "stride");
    v = ok;
    v.data = NULL;
    expect_refused(&v, 3, 3, out, "missing");
    expect_refused(NULL, 3, 3, out, "missing");
    expect_refused(&ok, 3, 3, NULL, "missing");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    check_resize_cases();
    check_normalize_cases();
    check_refusals();
    return t_finish();
}
