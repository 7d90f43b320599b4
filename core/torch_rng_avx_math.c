/* PyTorch's AVX2 Box-Muller block (normal_fill_16_AVX2 with avx_mathfun.h's log256_ps and
 * sincos256_ps), one lane at a time in scalar C with the same roundings.
 *
 * The functions are the Cephes single-precision log and sincos (polynomials after a range
 * reduction). What makes a bit-exact copy possible is knowing which multiply-adds the compiler
 * fused: PyTorch builds its AVX2 kernels with -mavx2 -mfma and GCC's default fp-contract=fast,
 * so a product whose only use is an add/sub becomes one FMA (one rounding). We read the
 * instructions of libtorch_cpu.so 1.13 (Debian, GCC 12) for this loop: every Horner step is an
 * FMA; in log, y*z + e*q1 fuses y*z (e*q1 rounds first) and e*q2 fuses into (x + y) + e*q2; in
 * sincos, the three-part range reduction fuses each y*DPi, the cosine polynomial's last step is
 * y*z - z/2 in one rounding, the sine's is y*x + x. Each fmaf below marks one of those FMAs; a
 * plain expression is a separately rounded instruction. This file must be compiled without
 * contraction (C17 mode gives -ffp-contract=off) so that the plain ones stay separate. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "torch_rng_internal.h"

/* avx_mathfun.h initialises its float tables from double literals: round through double too */
#define F(x) ((float)(x))

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* log256_ps on one lane. */
static float cephes_log(float x)
{
    static const float p[9] = {F(7.0376836292E-2), F(-1.1514610310E-1), F(1.1676998740E-1), F(-1.2420140846E-1),
                               F(1.4249322787E-1), F(-1.6668057665E-1), F(2.0000714765E-1), F(-2.4999993993E-1),
                               F(3.3333331174E-1)};
    const float q1 = F(-2.12194440e-4), q2 = F(0.693359375), sqrthf = F(0.707106781186547524);
    bool invalid = x <= 0.0f;
    if (!(x > 0x1p-126f))
        x = 0x1p-126f; /* max(x, smallest normal): denormals and NaN go to the bound */
    uint32_t bits = f2u(x);
    float e = (float)((int32_t)(bits >> 23) - 0x7f) + 1.0f;
    float m = u2f((bits & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5, 1) */
    bool below = m < sqrthf;
    float tmp = below ? m : 0.0f;
    float xm = m + -1.0f;
    e = e - (below ? 1.0f : 0.0f);
    float eq1 = e * q1;
    xm = tmp + xm;
    float y = fmaf(p[0], xm, p[1]);
    for (int i = 2; i < 9; i++)
        y = fmaf(y, xm, p[i]);
    float z = xm * xm;
    y = xm * y;
    y = fmaf(y, z, eq1);
    y = fmaf(-z, 0.5f, y);
    float r = fmaf(e, q2, xm + y);
    return invalid ? u2f(0xffffffffu) : r;
}

/* sincos256_ps on one lane. */
static void cephes_sincos(float x, float *s_out, float *c_out)
{
    const float fopi = F(1.27323954473516);
    const float dp1 = F(-0.78515625), dp2 = F(-2.4187564849853515625e-4), dp3 = F(-3.77489497744594108e-8);
    const float cp0 = F(2.443315711809948E-005), cp1 = F(-1.388731625493765E-003), cp2 = F(4.166664568298827E-002);
    const float sp0 = F(-1.9515295891E-4), sp1 = F(8.3321608736E-3), sp2 = F(-1.6666654611E-1);

    uint32_t sign_sin = f2u(x) & 0x80000000u;
    float ax = u2f(f2u(x) & 0x7fffffffu);
    float scaled = ax * fopi;
    /* cvttps2dq: truncation; out of range gives INT32_MIN */
    int32_t j = (scaled < 2147483648.0f) ? (int32_t)scaled : INT32_MIN;
    j = (int32_t)(((uint32_t)j + 1u) & ~1u);
    float y = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    bool poly_sin = ((uint32_t)j & 2u) == 0;
    uint32_t sign_cos = (~((uint32_t)j - 2u) & 4u) << 29;
    sign_sin ^= swap_sin;

    float xr = fmaf(y, dp1, ax);
    xr = fmaf(y, dp2, xr);
    xr = fmaf(y, dp3, xr);
    float z = xr * xr;

    float c = fmaf(z, cp0, cp1);
    c = fmaf(z, c, cp2);
    float half = z * 0.5f;
    c = z * c;
    c = fmaf(c, z, -half);
    c = c + 1.0f;

    float s = fmaf(z, sp0, sp1);
    s = fmaf(z, s, sp2);
    s = z * s;
    s = fmaf(s, xr, xr);

    /* both polynomials are kept and exchanged by masks, with the same adds as the vector code */
    float ysin2 = poly_sin ? s : 0.0f;
    float ysin1 = poly_sin ? 0.0f : c;
    float s_rest = s - ysin2;
    float c_rest = c - ysin1;
    *s_out = u2f(f2u(ysin2 + ysin1) ^ sign_sin);
    *c_out = u2f(f2u(s_rest + c_rest) ^ sign_cos);
}

void ag_torch_box_muller16_avx2(float *d)
{
    const float two_pi = (float)(2.0 * M_PI);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float theta = two_pi * d[j + 8];
        float radius = sqrtf(cephes_log(u1) * -2.0f);
        float s, c;
        cephes_sincos(theta, &s, &c);
        /* the final _mm256_fmadd_ps(n, std = 1, mean = 0) turns -0 into +0 */
        d[j] = fmaf(radius * c, 1.0f, 0.0f);
        d[j + 8] = fmaf(radius * s, 1.0f, 0.0f);
    }
}
