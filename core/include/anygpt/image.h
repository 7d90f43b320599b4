/* anygpt core: image preprocessing for the SEED tokenizer (seedtokenize).
 *
 * The reference (SEED / AnyGPT) opens an image with PIL, converts it to RGB, resizes it straight
 * to 224x224 with PIL's BICUBIC filter (no crop, aspect not kept) and normalises with the
 * OpenAI-CLIP mean/std. These functions reproduce that byte for byte: the resize is PIL's
 * two-pass separable convolution (a = -0.5 cubic, support scaled by the reduction factor when
 * downscaling, i.e. antialiased), with PIL's fixed-point coefficients and rounding on 8-bit
 * data, so a frame gives the same uint8 pixels as Image.resize((w, h), Image.BICUBIC). */
#ifndef ANYGPT_IMAGE_H
#define ANYGPT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "anygpt/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Packed 8-bit pixels: width x height, `stride` bytes per row, `bpp` bytes per pixel
 * (3 or 4), the red/green/blue bytes at offsets r, g, b within a pixel (e.g. RGB 0,1,2;
 * BGRx 2,1,0; ARGB 1,2,3). Describes every packed RGB-family layout GStreamer hands us. */
typedef struct {
    const uint8_t *data;
    int32_t width, height;
    size_t stride;
    int32_t bpp, r, g, b;
} ag_image_view;

/* Resize src to dst_w x dst_h packed RGB (3 bytes per pixel, rows of 3 * dst_w bytes) exactly
 * as PIL's Image.resize((dst_w, dst_h), Image.BICUBIC) on the RGB image. 0, or -1 with
 * ag_last_error() set (bad sizes, out of memory). Sides are 1..AG_IMAGE_MAX_SIDE and the
 * intermediate of the two passes (dst_w x the source rows read) at most
 * AG_IMAGE_MAX_WORK_PIXELS (anygpt/limits.h); beyond either the call is refused. */
int ag_image_resize_bicubic(const ag_image_view *src, int32_t dst_w, int32_t dst_h, uint8_t *dst);

/* rgb packed [h][w][3] uint8 -> planar float [3][h][w]: (v / 255 - mean[c]) / std[c], computed
 * in float32 as torchvision's ToTensor + Normalize do. */
void ag_image_normalize(const uint8_t *rgb, int32_t w, int32_t h, const float mean[3], const float std[3],
                        float *out);

/* The OpenAI-CLIP constants the SEED tokenizer uses. */
extern const float AG_CLIP_MEAN[3];
extern const float AG_CLIP_STD[3];

#ifdef __cplusplus
}
#endif
#endif
