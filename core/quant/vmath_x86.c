/* x86 SIMD elementwise math for the cpu backend's softmax-like loops (attention scores, SiLU),
 * compiled into the same per-level libraries as dot_x86.c (AVX2 + FMA, or AVX-512 with AG_ZMM).
 *
 * exp: Cody-Waite reduction x = n ln2 + r (ln2 split in two), the Cephes expf polynomial of
 * degree 6 on |r| <= ln2 / 2 (about 1 ulp), 2^n put into the exponent bits; arguments below
 * -87.34 give 0 (so -inf does), above 88.72 are clamped (callers never pass them). */
#include <immintrin.h>
#include <math.h>

#include "quant_internal.h"

#define AI static inline __attribute__((always_inline))

#define EXP_HI 88.7228317f
#define EXP_LO -87.3365479f

#if defined(AG_ZMM)
typedef __m512 vf;
typedef __m512i vi;
#define VL 16
#define SET1(x) _mm512_set1_ps(x)
#define LOAD(p) _mm512_loadu_ps(p)
#define STORE(p, v) _mm512_storeu_ps(p, v)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MUL(a, b) _mm512_mul_ps(a, b)
#define ADD(a, b) _mm512_add_ps(a, b)
#define SUB(a, b) _mm512_sub_ps(a, b)
#define MAX(a, b) _mm512_max_ps(a, b)
#define MIN(a, b) _mm512_min_ps(a, b)
#define DIV(a, b) _mm512_div_ps(a, b)
#define ROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define POW2(n) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define ZERO_BELOW(y, x, lo) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), y)
AI float hmax(vf v) { return _mm512_reduce_max_ps(v); }
AI float hsum(vf v) { return _mm512_reduce_add_ps(v); }
#else
typedef __m256 vf;
#define VL 8
#define SET1(x) _mm256_set1_ps(x)
#define LOAD(p) _mm256_loadu_ps(p)
#define STORE(p, v) _mm256_storeu_ps(p, v)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MUL(a, b) _mm256_mul_ps(a, b)
#define ADD(a, b) _mm256_add_ps(a, b)
#define SUB(a, b) _mm256_sub_ps(a, b)
#define MAX(a, b) _mm256_max_ps(a, b)
#define MIN(a, b) _mm256_min_ps(a, b)
#define DIV(a, b) _mm256_div_ps(a, b)
#define ROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define POW2(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define ZERO_BELOW(y, x, lo) _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_GE_OQ))
AI float hmax(vf v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
AI float hsum(vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

AI vf vexp(vf x)
{
    const vf lo = SET1(EXP_LO);
    vf t = MIN(MAX(x, lo), SET1(EXP_HI));
    const vf n = ROUND(MUL(t, SET1(1.44269504088896341f)));
    vf r = FMA(n, SET1(-0.693359375f), t);
    r = FMA(n, SET1(2.12194440e-4f), r);
    vf p = SET1(1.9875691500e-4f);
    p = FMA(p, r, SET1(1.3981999507e-3f));
    p = FMA(p, r, SET1(8.3334519073e-3f));
    p = FMA(p, r, SET1(4.1665795894e-2f));
    p = FMA(p, r, SET1(1.6666665459e-1f));
    p = FMA(p, r, SET1(5.0000001201e-1f));
    p = FMA(p, MUL(r, r), ADD(r, SET1(1.0f)));
    return ZERO_BELOW(MUL(p, POW2(n)), x, lo);
}

/* The same arithmetic one lane at a time, for the tails. */
static float sexp(float x)
{
    if (!(x >= EXP_LO))
        return 0.0f;
    const float t = x > EXP_HI ? EXP_HI : x;
    const float n = nearbyintf(t * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, t);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r + 1.0f);
    return ldexpf(p, (int)n);
}

static float scale_max(float *x, int64_t n, float scale)
{
    const vf s = SET1(scale);
    vf m = SET1(-INFINITY);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vf y = MUL(LOAD(x + i), s);
        STORE(x + i, y);
        m = MAX(m, y);
    }
    float mx = hmax(m);
    for (; i < n; i++) {
        x[i] *= scale;
        mx = x[i] > mx ? x[i] : mx;
    }
    return mx;
}

static float exp_sum(float *x, int64_t n, float sub)
{
    const vf s = SET1(sub);
    vf acc = SET1(0.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vf y = vexp(SUB(LOAD(x + i), s));
        STORE(x + i, y);
        acc = ADD(acc, y);
    }
    float sum = hsum(acc);
    for (; i < n; i++) {
        x[i] = sexp(x[i] - sub);
        sum += x[i];
    }
    return sum;
}

static void silu(const float *x, float *y, int64_t n)
{
    const vf one = SET1(1.0f), zero = SET1(0.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vf v = LOAD(x + i);
        STORE(y + i, DIV(v, ADD(one, vexp(SUB(zero, v)))));
    }
    for (; i < n; i++)
        y[i] = x[i] / (1.0f + sexp(-x[i]));
}

#if defined(AG_VNNI)
#define VMATH_NAME ag_vmath_avx512vnni
#elif defined(AG_ZMM)
#define VMATH_NAME ag_vmath_avx512
#else
#define VMATH_NAME ag_vmath_avx2
#endif

void VMATH_NAME(ag_kernels *k)
{
    k->scale_max = scale_max;
    k->exp_sum = exp_sum;
    k->silu = silu;
}
