/* The tensor contents of the GGUF fixtures, from the same formulas as fixture_content.py. */
#ifndef AG_TEST_FIXTURE_DATA_H
#define AG_TEST_FIXTURE_DATA_H

#include "anygpt/tensor.h"

#include <stdint.h>
#include <string.h>

#define FIX_N_TENSORS 6

typedef struct fix_tensor {
    const char *name;
    ag_type type;
    int n_dims;
    int64_t ne[AG_MAX_DIMS];
    size_t size;
    uint8_t data[512];
} fix_tensor;

static inline void fix_put_f32(uint8_t *p, float v) { memcpy(p, &v, 4); }

/* Fill t[0..FIX_N_TENSORS) exactly as fixture_content.tensor_bytes() does. */
static inline void fix_tensors(fix_tensor *t)
{
    memset(t, 0, FIX_N_TENSORS * sizeof *t);
    t[0] = (fix_tensor){"f32.vec", AG_TYPE_F32, 1, {7, 1, 1, 1}, 28, {0}};
    for (int i = 0; i < 7; i++)
        fix_put_f32(t[0].data + 4 * i, (float)i * 0.5f - 1.25f);
    t[1] = (fix_tensor){"f32.mat", AG_TYPE_F32, 2, {5, 3, 1, 1}, 60, {0}};
    for (int i = 0; i < 15; i++)
        fix_put_f32(t[1].data + 4 * i, (float)(i % 11) * 0.125f - 0.5f);
    t[2] = (fix_tensor){"f16.cube", AG_TYPE_F16, 3, {4, 3, 2, 1}, 48, {0}};
    for (int i = 0; i < 24; i++) {
        ag_fp16 h = ag_fp32_to_fp16((float)i * 0.25f - 3.0f);
        memcpy(t[2].data + 2 * i, &h, 2);
    }
    t[3] = (fix_tensor){"q8_0.w", AG_TYPE_Q8_0, 2, {64, 2, 1, 1}, 4 * 34, {0}};
    for (int b = 0; b < 4; b++) {
        ag_fp16 h = ag_fp32_to_fp16((float)(b + 1) * 0.0625f);
        memcpy(t[3].data + 34 * b, &h, 2);
        for (int j = 0; j < 32; j++)
            t[3].data[34 * b + 2 + j] = (uint8_t)((j * 37 + b * 11) % 256);
    }
    t[4] = (fix_tensor){"q4_0.w", AG_TYPE_Q4_0, 4, {32, 3, 1, 2}, 6 * 18, {0}};
    for (int b = 0; b < 6; b++) {
        ag_fp16 h = ag_fp32_to_fp16((float)(b + 1) * 0.5f);
        memcpy(t[4].data + 18 * b, &h, 2);
        for (int j = 0; j < 16; j++)
            t[4].data[18 * b + 2 + j] = (uint8_t)((j * 29 + b * 7) & 0xff);
    }
    t[5] = (fix_tensor){"i32.ids", AG_TYPE_I32, 1, {6, 1, 1, 1}, 24, {0}};
    for (int i = 0; i < 6; i++) {
        int32_t v = i * 1000 - 2500;
        memcpy(t[5].data + 4 * i, &v, 4);
    }
}

#endif
