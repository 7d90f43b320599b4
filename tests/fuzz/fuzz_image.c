/* The image resize entry (core/image/resize.c, ag_image_resize_bicubic) on random views: sizes,
 * strides, pixel layouts and target sizes drawn around the documented limits (1..
 * AG_IMAGE_MAX_SIDE, bpp 3/4, channel offsets inside a pixel, stride >= width * bpp). Each call
 * must either refuse with a reason or work; an identity resize must return the pixels unchanged.
 * Buffers are capped (16 MiB) by shrinking the height, so a side of 32768 is still reached. */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP ((size_t)16 << 20)

static int32_t side(fz_reader *r)
{
    /* mostly small, sometimes near or past the limit, sometimes invalid */
    switch (fz_u8(r) & 3) {
    case 0: return (int32_t)fz_range(r, -2, 8);
    case 1: return (int32_t)fz_range(r, 1, 300);
    case 2: return (int32_t)fz_range(r, AG_IMAGE_MAX_SIDE - 2, AG_IMAGE_MAX_SIDE + 2);
    default: return (int32_t)fz_range(r, -1, AG_IMAGE_MAX_SIDE + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    ag_image_view v;
    v.width = side(&r);
    v.height = side(&r);
    v.bpp = (int32_t)fz_range(&r, 2, 5);
    v.r = (int32_t)fz_range(&r, -1, 4);
    v.g = (int32_t)fz_range(&r, -1, 4);
    v.b = (int32_t)fz_range(&r, -1, 4);
    int64_t pad = fz_range(&r, -4, 64);
    int32_t dw = side(&r), dh = side(&r);
    int64_t row = (int64_t)(v.width > 0 ? v.width : 1) * (v.bpp > 0 ? v.bpp : 1);
    v.stride = (size_t)(row + pad > 0 ? row + pad : 0);
    /* the caller's contract: data holds stride * height bytes (last row: width * bpp) */
    if (v.height > 1 && v.stride * (size_t)v.height > CAP)
        v.height = (int32_t)(CAP / (v.stride ? v.stride : 1) > 0 ? CAP / (v.stride ? v.stride : 1) : 1);
    if (dw > 0 && dh > 1 && (size_t)dw * (size_t)dh * 3 > CAP)
        dh = (int32_t)(CAP / ((size_t)dw * 3) > 0 ? CAP / ((size_t)dw * 3) : 1);
    size_t src_bytes = v.height > 0 ? v.stride * (size_t)v.height : 0;
    if (v.height > 0 && v.width > 0 && (size_t)row > v.stride)
        src_bytes = (size_t)row * (size_t)v.height; /* refused anyway; keep the buffer honest */
    size_t dst_bytes = dw > 0 && dh > 0 ? (size_t)dw * (size_t)dh * 3 : 1;
    if (src_bytes > 2 * CAP || dst_bytes > 2 * CAP)
        return 0;
    uint8_t *src = malloc(src_bytes ? src_bytes : 1), *dst = malloc(dst_bytes);
    if (!src || !dst)
        abort();
    for (size_t i = 0; i < src_bytes; i++) /* the rest of the input, repeated */
        src[i] = r.n ? r.p[i % r.n] : (uint8_t)(i * 31);
    v.data = src;
    ag_clear_error();
    int rc = ag_image_resize_bicubic(&v, dw, dh, dst);
    if (rc != 0) {
        fz_expect_error("ag_image_resize_bicubic");
    } else if (dw == v.width && dh == v.height) {
        for (int32_t y = 0; y < dh; y++)
            for (int32_t x = 0; x < dw; x++) {
                const uint8_t *s = src + (size_t)y * v.stride + (size_t)x * (size_t)v.bpp;
                const uint8_t *d = dst + ((size_t)y * (size_t)dw + (size_t)x) * 3;
                if (d[0] != s[v.r] || d[1] != s[v.g] || d[2] != s[v.b]) {
                    fprintf(stderr, "fuzz_image: identity resize changed pixel (%d, %d)\n", x, y);
                    abort();
                }
            }
    }
    free(src);
    free(dst);
    return 0;
}
