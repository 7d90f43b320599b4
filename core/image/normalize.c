/* torchvision's ToTensor + Normalize on 8-bit RGB, in float32 with the same roundings:
 * ToTensor divides the byte (as float) by 255 (a true division), Normalize subtracts the
 * float32 mean and divides by the float32 std, each step rounded to float32. The result only
 * depends on (byte, channel), so a 3 x 256 table computed that way gives identical values. */
#include "anygpt/image.h"

/* The OpenAI-CLIP constants as torch.as_tensor(list, dtype=float32) rounds Python's doubles
 * (a (float) of the double literal, not a float literal: decimal -> double -> float). */
const float AG_CLIP_MEAN[3] = {(float)0.48145466, (float)0.4578275, (float)0.40821073};
const float AG_CLIP_STD[3] = {(float)0.26862954, (float)0.26130258, (float)0.27577711};

void ag_image_normalize(const uint8_t *rgb, int32_t w, int32_t h, const float mean[3], const float std[3],
                        float *out)
{
    if (!rgb || !out || w <= 0 || h <= 0)
        return;
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            x = x - mean[c];
            lut[c][v] = x / std[c];
        }
    const size_t plane = (size_t)w * (size_t)h;
    for (size_t i = 0; i < plane; i++) {
        out[i] = lut[0][rgb[3 * i]];
        out[plane + i] = lut[1][rgb[3 * i + 1]];
        out[2 * plane + i] = lut[2][rgb[3 * i + 2]];
    }
}
