/* PIL-exact bicubic resize of packed 8-bit RGB-family frames.
 *
 * The algorithm, as Pillow's libImaging/Resample.c defines it for an 8-bit RGB image (the same
 * in Pillow 9.4, the Debian one here, and in current Pillow; Image.resize applies no reduce()
 * pre-step since its reducing_gap defaults to None):
 *  - Separable, horizontal pass first, then vertical; a pass whose output size equals the input
 *    size is skipped (both skipped: a plain copy). The horizontal pass only produces the source
 *    rows the vertical pass reads, and its result is rounded and clipped to 8 bits.
 *  - Per output index i of a pass: scale = in / out, filterscale = max(scale, 1),
 *    support = 2 * filterscale, center = (i + 0.5) * scale, taps from
 *    (int)(center - support + 0.5) to (int)(center + support + 0.5) clamped to the image,
 *    weight(x) = cubic((x - center + 0.5) / filterscale) with a = -0.5, weights divided by their
 *    sum. All of it in double, in exactly this order of operations (the bounds and the tap
 *    positions depend on it).
 *  - Weights become fixed point with 22 fractional bits, rounded half away from zero; a pixel
 *    is (2^21 + sum v * w) >> 22 clipped to 0..255.
 * Only the r, g, b bytes are read: alpha or padding never enters (the reference converts to RGB
 * before resizing). This file must not be compiled with FP contraction (C17: off). */
#include "anygpt/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anygpt/error.h"

enum { PRECISION_BITS = 22 };

/* One pass's taps: output i reads `count[i]` inputs from `first[i]` with weights
 * `w[i * stride ...]`. */
typedef struct {
    int32_t *first, *count, *w;
    int32_t stride;
} taps;

static double cubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static void taps_free(taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

static int taps_build(taps *t, int32_t in_size, int32_t out_size)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    double inv = 1.0 / filterscale;
    t->stride = (int32_t)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int32_t) * (size_t)out_size);
    t->count = malloc(sizeof(int32_t) * (size_t)out_size);
    t->w = malloc(sizeof(int32_t) * (size_t)out_size * (size_t)t->stride);
    double *k = malloc(sizeof(double) * (size_t)t->stride);
    if (!t->first || !t->count || !t->w || !k) {
        free(k);
        taps_free(t);
        ag_set_error("image resize: out of memory for %d x %d filter taps", out_size, t->stride);
        return -1;
    }
    for (int32_t i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int32_t lo = (int32_t)(center - support + 0.5);
        int32_t hi = (int32_t)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in_size)
            hi = in_size;
        int32_t n = hi - lo;
        double sum = 0.0;
        for (int32_t x = 0; x < n; x++) {
            k[x] = cubic((x + lo - center + 0.5) * inv);
            sum += k[x];
        }
        int32_t *w = t->w + (size_t)i * (size_t)t->stride;
        for (int32_t x = 0; x < n; x++) {
            double v = sum != 0.0 ? k[x] / sum : k[x];
            w[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        t->first[i] = lo;
        t->count[i] = n;
    }
    free(k);
    return 0;
}

static uint8_t clip8(int32_t acc)
{
    int32_t v = acc >> PRECISION_BITS; /* arithmetic shift: floor, as Pillow's lookup table */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Source rows [y0, y1) -> packed RGB rows of width dst_w (resampled, or copied when the width
 * does not change). */
static void horizontal_pass(const ag_image_view *s, int32_t y0, int32_t y1, const taps *t, int32_t dst_w,
                            uint8_t *out)
{
    const int32_t bpp = s->bpp, r = s->r, g = s->g, b = s->b;
    for (int32_t y = y0; y < y1; y++) {
        const uint8_t *row = s->data + (size_t)y * s->stride;
        uint8_t *o = out + (size_t)(y - y0) * (size_t)dst_w * 3;
        if (!t) {
            for (int32_t x = 0; x < dst_w; x++) {
                const uint8_t *p = row + (size_t)x * (size_t)bpp;
                o[3 * x] = p[r];
                o[3 * x + 1] = p[g];
                o[3 * x + 2] = p[b];
            }
            continue;
        }
        for (int32_t x = 0; x < dst_w; x++) {
            const int32_t *w = t->w + (size_t)x * (size_t)t->stride;
            const uint8_t *p = row + (size_t)t->first[x] * (size_t)bpp;
            int32_t sr = 1 << (PRECISION_BITS - 1), sg = sr, sb = sr;
            for (int32_t k = 0; k < t->count[x]; k++, p += bpp) {
                sr += p[r] * w[k];
                sg += p[g] * w[k];
                sb += p[b] * w[k];
            }
            o[3 * x] = clip8(sr);
            o[3 * x + 1] = clip8(sg);
            o[3 * x + 2] = clip8(sb);
        }
    }
}

/* Packed RGB rows (row 0 = source row `y0`) -> dst_h output rows. The sum runs tap by tap over
 * a whole row; integer sums do not depend on the order. */
static int vertical_pass(const uint8_t *in, int32_t y0, size_t row_bytes, const taps *t, int32_t dst_h,
                         uint8_t *dst)
{
    int32_t *acc = malloc(sizeof(int32_t) * row_bytes);
    if (!acc) {
        ag_set_error("image resize: out of memory for a %zu-byte row", row_bytes);
        return -1;
    }
    for (int32_t y = 0; y < dst_h; y++) {
        const int32_t *w = t->w + (size_t)y * (size_t)t->stride;
        for (size_t i = 0; i < row_bytes; i++)
            acc[i] = 1 << (PRECISION_BITS - 1);
        for (int32_t k = 0; k < t->count[y]; k++) {
            const uint8_t *row = in + (size_t)(t->first[y] - y0 + k) * row_bytes;
            const int32_t wk = w[k];
            for (size_t i = 0; i < row_bytes; i++)
                acc[i] += row[i] * wk;
        }
        uint8_t *o = dst + (size_t)y * row_bytes;
        for (size_t i = 0; i < row_bytes; i++)
            o[i] = clip8(acc[i]);
    }
    free(acc);
    return 0;
}

static int check_view(const ag_image_view *s, int32_t dst_w, int32_t dst_h, const uint8_t *dst)
{
    if (!s || !s->data || !dst) {
        ag_set_error("image resize: missing %s", !s ? "source view" : !s->data ? "source pixels" : "destination");
        return -1;
    }
    if (s->width < 1 || s->height < 1 || s->width > AG_IMAGE_MAX_SIDE || s->height > AG_IMAGE_MAX_SIDE) {
        ag_set_error("image resize: source size %d x %d outside 1..%d", s->width, s->height, AG_IMAGE_MAX_SIDE);
        return -1;
    }
    if (dst_w < 1 || dst_h < 1 || dst_w > AG_IMAGE_MAX_SIDE || dst_h > AG_IMAGE_MAX_SIDE) {
        ag_set_error("image resize: target size %d x %d outside 1..%d", dst_w, dst_h, AG_IMAGE_MAX_SIDE);
        return -1;
    }
    if (s->bpp != 3 && s->bpp != 4) {
        ag_set_error("image resize: %d bytes per pixel (3 or 4 expected)", s->bpp);
        return -1;
    }
    if (s->r < 0 || s->g < 0 || s->b < 0 || s->r >= s->bpp || s->g >= s->bpp || s->b >= s->bpp) {
        ag_set_error("image resize: channel offsets r=%d g=%d b=%d outside a %d-byte pixel", s->r, s->g, s->b, s->bpp);
        return -1;
    }
    if (s->stride < (size_t)s->width * (size_t)s->bpp) {
        ag_set_error("image resize: row stride %zu shorter than %d pixels of %d bytes", s->stride, s->width, s->bpp);
        return -1;
    }
    return 0;
}

int ag_image_resize_bicubic(const ag_image_view *src, int32_t dst_w, int32_t dst_h, uint8_t *dst)
{
    if (check_view(src, dst_w, dst_h, dst) != 0)
        return -1;
    const int need_h = dst_w != src->width, need_v = dst_h != src->height;
    taps th = {0}, tv = {0};
    if ((need_h && taps_build(&th, src->width, dst_w) != 0))
        return -1;
    if (need_v && taps_build(&tv, src->height, dst_h) != 0) {
        taps_free(&th);
        return -1;
    }
    /* the source rows the vertical pass reads */
    int32_t y0 = need_v ? tv.first[0] : 0;
    int32_t y1 = need_v ? tv.first[dst_h - 1] + tv.count[dst_h - 1] : src->height;
    size_t row_bytes = (size_t)dst_w * 3;
    int rc = 0;
    if (!need_v) {
        horizontal_pass(src, 0, src->height, need_h ? &th : NULL, dst_w, dst);
    } else if ((int64_t)dst_w * (y1 - y0) > AG_IMAGE_MAX_WORK_PIXELS) {
        ag_set_error("image resize: %d x %d -> %d x %d needs a %d x %d intermediate, more than the %lld pixels "
                     "accepted",
                     src->width, src->height, dst_w, dst_h, dst_w, y1 - y0, (long long)AG_IMAGE_MAX_WORK_PIXELS);
        rc = -1;
    } else {
        uint8_t *tmp = malloc(row_bytes * (size_t)(y1 - y0));
        if (!tmp) {
            ag_set_error("image resize: out of memory for a %d x %d intermediate", dst_w, y1 - y0);
            rc = -1;
        } else {
            horizontal_pass(src, y0, y1, need_h ? &th : NULL, dst_w, tmp);
            rc = vertical_pass(tmp, y0, row_bytes, &tv, dst_h, dst);
            free(tmp);
        }
    }
    taps_free(&th);
    taps_free(&tv);
    return rc;
}
