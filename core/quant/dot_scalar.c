/* Portable kernels: the fallback and the yardstick for the SIMD levels. */
#include "anygpt/quant.h"
#include "quant_internal.h"

#include <math.h>

/* F16 -> F32 by table (256 KiB, filled once by ag_kernels_scalar under dispatch's pthread_once):
 * the bit-by-bit conversion would dominate every scalar kernel. */
static float g_h2f[65536];
#define H2F(h) g_h2f[(uint16_t)(h)]

static float dot_f32(int64_t n, const void *w_row, const void *act_row)
{
    const float *w = w_row, *a = act_row;
    /* Four partial sums: a plain loop the compiler may vectorise without reassociating. */
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += w[i + k] * a[i + k];
    for (; i < n; i++)
        s[0] += w[i] * a[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_f16(int64_t n, const void *w_row, const void *act_row)
{
    const ag_fp16 *w = w_row;
    const float *a = act_row;
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += H2F(w[i + k]) * a[i + k];
    for (; i < n; i++)
        s[0] += H2F(w[i]) * a[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_q8_0(int64_t n, const void *w_row, const void *act_row)
{
    const ag_block_q8_0 *x = w_row, *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AG_QK8_0; i++) {
        int32_t isum = 0;
        for (int j = 0; j < AG_QK8_0; j++)
            isum += (int32_t)x[i].qs[j] * (int32_t)y[i].qs[j];
        sum += (float)isum * (H2F(x[i].d) * H2F(y[i].d));
    }
    return sum;
}

static float dot_q4_0(int64_t n, const void *w_row, const void *act_row)
{
    const ag_block_q4_0 *x = w_row;
    const ag_block_q8_0 *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AG_QK4_0; i++) {
        int32_t isum = 0;
        /* unpack first: the plain int8 dot below vectorises, a mixed nibble loop does not */
        int8_t q[AG_QK4_0];
        for (int j = 0; j < AG_QK4_0 / 2; j++) {
            q[j] = (int8_t)((x[i].qs[j] & 0x0f) - 8);
            q[j + AG_QK4_0 / 2] = (int8_t)((x[i].qs[j] >> 4) - 8);
        }
        for (int j = 0; j < AG_QK4_0; j++)
            isum += (int32_t)q[j] * (int32_t)y[i].qs[j];
        sum += (float)isum * (H2F(x[i].d) * H2F(y[i].d));
    }
    return sum;
}

static void h2f_row(const ag_fp16 *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = H2F(x[i]);
}

#define ROWS_VIA_DOT(name, dot)                                                                         \
    static void name(int64_t n, const void *w, size_t stride, int nr, const void *act, float *out)      \
    {                                                                                                   \
        for (int r = 0; r < nr; r++)                                                                    \
            out[r] = dot(n, (const char *)w + (size_t)r * stride, act);                                 \
    }
ROWS_VIA_DOT(rows_f32, dot_f32)
ROWS_VIA_DOT(rows_f16, dot_f16)
ROWS_VIA_DOT(rows_q8_0, dot_q8_0)
ROWS_VIA_DOT(rows_q4_0, dot_q4_0)

static void pmm_q8_0(int64_t K, const void *g, int64_t n_rows, const void *act, size_t as, int64_t M, float *out,
                     size_t ldo)
{
    ag_packed_mm_scalar(AG_TYPE_Q8_0, K, g, n_rows, act, as, M, out, ldo);
}

static void pmm_q4_0(int64_t K, const void *g, int64_t n_rows, const void *act, size_t as, int64_t M, float *out,
                     size_t ldo)
{
    ag_packed_mm_scalar(AG_TYPE_Q4_0, K, g, n_rows, act, as, M, out, ldo);
}

static float scale_max(float *x, int64_t n, float scale)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] *= scale;
        mx = x[i] > mx ? x[i] : mx;
    }
    return mx;
}

static float exp_sum(float *x, int64_t n, float sub)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - sub);
        sum += x[i];
    }
    return sum;
}

static void silu(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

void ag_kernels_scalar(ag_kernels *k)
{
    k->scale_max = scale_max;
    k->exp_sum = exp_sum;
    k->silu = silu;
    k->name = "scalar";
    k->dot[AG_KSLOT_F32] = dot_f32;
    k->dot[AG_KSLOT_F16] = dot_f16;
    k->dot[AG_KSLOT_Q8_0] = dot_q8_0;
    k->dot[AG_KSLOT_Q4_0] = dot_q4_0;
    k->rows[AG_KSLOT_F32] = rows_f32;
    k->rows[AG_KSLOT_F16] = rows_f16;
    k->rows[AG_KSLOT_Q8_0] = rows_q8_0;
    k->rows[AG_KSLOT_Q4_0] = rows_q4_0;
    for (uint32_t i = 0; i < 65536; i++)
        g_h2f[i] = ag_fp16_to_fp32((ag_fp16)i);
    k->h2f = h2f_row;
    k->f2h = NULL;
    k->pmm_q8_0 = pmm_q8_0;
    k->pmm_q4_0 = pmm_q4_0;
}
