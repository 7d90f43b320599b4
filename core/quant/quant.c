/* Quantize / dequantize rows in ggml's Q8_0 and Q4_0 block formats, and F16 rows.
 *
 * The quantizers follow ggml's reference rounding so our files are byte-identical to
 * llama.cpp's: the scale is computed in float, the inverse scale id = 1/d multiplies (not
 * divides) each element, and only then is the scale stored as F16. x*id and + 8.5 are separate
 * statements so no compiler fuses them into an FMA (GCC in -std=c17 mode does not contract at
 * all; clang only contracts within one expression): that would change ties in the last bit. */
#include <math.h>
#include <string.h>

#include "anygpt/error.h"
#include "anygpt/quant.h"
#include "quant_internal.h"

void ag_quantize_row_q8_0(const float *x, ag_block_q8_0 *y, int64_t n)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->q8_0_row) {
        k->q8_0_row(x, y, n);
        return;
    }
    const int64_t nb = n / AG_QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * AG_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < AG_QK8_0; j++) {
            const float a = fabsf(xb[j]);
            if (a > amax)
                amax = a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ag_fp32_to_fp16(d);
        for (int j = 0; j < AG_QK8_0; j++) {
            float v = roundf(xb[j] * id); /* halves away from zero, like ggml */
            /* Finite input never leaves [-127, 127]; the clamp only makes NaN/inf defined. */
            if (!(v >= -127.0f))
                v = v != v ? 0.0f : -127.0f;
            else if (v > 127.0f)
                v = 127.0f;
            y[i].qs[j] = (int8_t)v;
        }
    }
}

void ag_quantize_row_q4_0(const float *x, ag_block_q4_0 *y, int64_t n)
{
    const int64_t nb = n / AG_QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * AG_QK4_0;
        /* The element of largest magnitude, sign kept; the first one wins a tie. */
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < AG_QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        /* d = max / -8 maps the extreme element to q = 0 exactly (value -8 d). */
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ag_fp32_to_fp16(d);
        for (int j = 0; j < AG_QK4_0 / 2; j++) {
            uint8_t q[2];
            for (int h = 0; h < 2; h++) {
                const float s = xb[j + h * (AG_QK4_0 / 2)] * id;
                float t = s + 8.5f;
                /* Truncation toward zero, capped at 15 (ggml: MIN(15, (int8_t)t)). Finite input
                 * gives t in [0, 16.5]; the guards keep NaN/inf defined. */
                if (!(t >= 0.0f))
                    t = 0.0f;
                else if (t > 15.0f)
                    t = 15.0f;
                q[h] = (uint8_t)t;
            }
            y[i].qs[j] = (uint8_t)(q[0] | (q[1] << 4));
        }
    }
}

void ag_dequantize_row_q8_0(const ag_block_q8_0 *x, float *y, int64_t n)
{
    const int64_t nb = n / AG_QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = ag_fp16_to_fp32(x[i].d);
        for (int j = 0; j < AG_QK8_0; j++)
            y[i * AG_QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

void ag_dequantize_row_q4_0(const ag_block_q4_0 *x, float *y, int64_t n)
{
    const int64_t nb = n / AG_QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = ag_fp16_to_fp32(x[i].d);
        float *yb = y + i * AG_QK4_0;
        for (int j = 0; j < AG_QK4_0 / 2; j++) {
            yb[j] = (float)((int)(x[i].qs[j] & 0x0f) - 8) * d;
            yb[j + AG_QK4_0 / 2] = (float)((int)(x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void ag_fp32_to_fp16_row(const float *x, ag_fp16 *y, int64_t n)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->f2h) {
        k->f2h(x, y, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = ag_fp32_to_fp16(x[i]);
}

void ag_fp16_to_fp32_row(const ag_fp16 *x, float *y, int64_t n)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->h2f) {
        k->h2f(x, y, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = ag_fp16_to_fp32(x[i]);
}

void ag_axpy_f16(int64_t n, float alpha, const ag_fp16 *x, float *y)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->axpy_f16) {
        k->axpy_f16(n, alpha, x, y);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = fmaf(ag_fp16_to_fp32(x[i]), alpha, y[i]);
}

void ag_mad_rows_f16(int64_t n, int64_t nr, const float *p, const ag_fp16 *x, size_t stride, float *y)
{
    const ag_kernels *k = ag_kernels_get();
    if (k->mad_rows_f16) {
        k->mad_rows_f16(n, nr, p, x, stride, y);
        return;
    }
    for (int64_t j = 0; j < nr; j++)
        if (p[j] != 0.0f)
            ag_axpy_f16(n, p[j], (const ag_fp16 *)((const char *)x + (size_t)j * stride), y);
}

void ag_dequantize_row(ag_type type, const void *x, float *y, int64_t n)
{
    switch (type) {
    case AG_TYPE_F32:
        memmove(y, x, (size_t)n * sizeof(float));
        break;
    case AG_TYPE_F16:
        ag_fp16_to_fp32_row(x, y, n);
        break;
    case AG_TYPE_Q8_0:
        ag_dequantize_row_q8_0(x, y, n);
        break;
    case AG_TYPE_Q4_0:
        ag_dequantize_row_q4_0(x, y, n);
        break;
    case AG_TYPE_I32: {
        const int32_t *xi = x;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)xi[i];
        break;
    }
    default:
        ag_set_error("ag_dequantize_row: unsupported type %d", (int)type);
        memset(y, 0, (size_t)n * sizeof(float));
        break;
    }
}

size_t ag_quantize(ag_type type, const float *x, void *y, int64_t nrows, int64_t n)
{
    if (nrows < 0 || n < 0) {
        ag_set_error("ag_quantize: negative size");
        return 0;
    }
    if (type != AG_TYPE_F32 && type != AG_TYPE_F16 && type != AG_TYPE_Q8_0 && type != AG_TYPE_Q4_0) {
        ag_set_error("ag_quantize: cannot quantize to type %d", (int)type);
        return 0;
    }
    const size_t row = ag_row_size(type, n);
    if (row == 0 && n != 0) {
        ag_set_error("ag_quantize: row length %lld is not a multiple of %lld for %s", (long long)n,
                     (long long)ag_type_block_elems(type), ag_type_name(type));
        return 0;
    }
    char *out = y;
    for (int64_t r = 0; r < nrows; r++) {
        const float *xr = x + r * n;
        void *yr = out + (size_t)r * row;
        switch (type) {
        case AG_TYPE_F32:
            memmove(yr, xr, (size_t)n * sizeof(float));
            break;
        case AG_TYPE_F16:
            ag_fp32_to_fp16_row(xr, yr, n);
            break;
        case AG_TYPE_Q8_0:
            ag_quantize_row_q8_0(xr, yr, n);
            break;
        default:
            ag_quantize_row_q4_0(xr, yr, n);
            break;
        }
    }
    return (size_t)nrows * row;
}
