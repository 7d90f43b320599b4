/* x86 SIMD kernels. This one file is compiled three times, each into its own small library with
 * its own -m flags:
 *   AVX2 + FMA + F16C           -> ag_kernels_avx2        (maddubs/madd integer dot)
 *   AVX-512 F/BW/VL/DQ          -> ag_kernels_avx512      (zmm float loops, maddubs dot)
 *   AVX-512 + VNNI              -> ag_kernels_avx512vnni  (zmm float loops, vpdpbusd dot)
 * Nothing here runs unless dispatch.c has checked the CPU.
 *
 * Quantized dots follow ggml's q4_0 x q8_0 scheme: per 32-element block an exact int32 dot of
 * the weight quants with the Q8_0 activation quants, then one float multiply-add by d_w * d_a.
 * Both u8 x s8 instructions (vpmaddubsw, vpdpbusd) need an unsigned operand, so the weights are
 * made unsigned (Q4_0: the raw nibble 0..15; Q8_0: q ^ 0x80 = q + 128 on the VNNI path) and the
 * offset is taken back exactly with the activation sum, which is computed once per block and
 * shared by every row of a multi-row call.
 *
 * Every "rows" kernel is the single-row kernel with R rows interleaved: each row keeps its own
 * accumulators in the same order, so rows results equal single dots bit for bit. Rows of a
 * 4096-wide Q4_0 matrix are only 2.3 KB, too short for the hardware stream prefetcher to ramp
 * up, so a group of rows prefetches the same position of the next group (matvec went from
 * ~10 to ~19 GB/s with that on the development machine). */
#include <immintrin.h>
#include <math.h>

#include "anygpt/quant.h"
#include "quant_internal.h"

#define AI static inline __attribute__((always_inline))
#define MAX_R 4
#ifndef PF_GROUPS
#define PF_GROUPS 1 /* prefetch this many row groups ahead */
#endif

/* ---------------- float vectors: 16 lanes (zmm) or 8 (ymm) ---------------- */
#if defined(AG_ZMM)
typedef __m512 vf;
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOAD_H(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSET1(x) _mm512_set1_ps(x)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
AI float vhsum(vf v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#else
typedef __m256 vf;
#define VL 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOAD_H(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSET1(x) _mm256_set1_ps(x)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#endif

AI float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#if !defined(AG_ZMM)
#define vhsum hsum256
#endif

/* ---------------- F32 / F16 weights, F32 activations ---------------- */
/* is_f16 and R are compile-time constants after inlining. */
AI void rows_float(int64_t n, const char *w, size_t stride, const float *a, float *out, const int R,
                   const int is_f16)
{
    vf acc0[MAX_R], acc1[MAX_R];
    for (int r = 0; r < R; r++)
        acc0[r] = acc1[r] = VZERO();
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        const vf a0 = VLOAD(a + i), a1 = VLOAD(a + i + VL);
        for (int r = 0; r < R; r++) {
            const char *wr = w + (size_t)r * stride;
            if (is_f16) {
                acc0[r] = VFMA(VLOAD_H((const ag_fp16 *)wr + i), a0, acc0[r]);
                acc1[r] = VFMA(VLOAD_H((const ag_fp16 *)wr + i + VL), a1, acc1[r]);
            } else {
                acc0[r] = VFMA(VLOAD((const float *)wr + i), a0, acc0[r]);
                acc1[r] = VFMA(VLOAD((const float *)wr + i + VL), a1, acc1[r]);
            }
        }
    }
    for (; i + VL <= n; i += VL) {
        const vf a0 = VLOAD(a + i);
        for (int r = 0; r < R; r++) {
            const char *wr = w + (size_t)r * stride;
            if (is_f16)
                acc0[r] = VFMA(VLOAD_H((const ag_fp16 *)wr + i), a0, acc0[r]);
            else
                acc0[r] = VFMA(VLOAD((const float *)wr + i), a0, acc0[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        const char *wr = w + (size_t)r * stride;
        float s = vhsum(VADD(acc0[r], acc1[r]));
        for (int64_t j = i; j < n; j++) /* ragged tail (F32/F16 rows may have any length) */
            s += (is_f16 ? _cvtsh_ss(((const ag_fp16 *)wr)[j]) : ((const float *)wr)[j]) * a[j];
        out[r] = s;
    }
}

/* ---------------- integer u8 x s8 dot, 4 bytes per int32 lane ---------------- */
#if defined(AG_VNNI)
AI __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
#else
AI __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s)
{
    /* vpmaddubsw saturates its int16 pair sums: fine here, u is a nibble (<= 15), |q8| (<= 128)
     * or the constant 8, and s an activation quant (|s| <= 127), so 2 * 128 * 127 < 32767. */
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
#endif

/* -k * (sum of the 4 activation bytes of each lane), the offset correction for unsigned weights. */
AI __m256i neg_scaled_sum(__m256i y, int k)
{
    return _mm256_sub_epi32(_mm256_setzero_si256(), dot_u8s8(_mm256_setzero_si256(), _mm256_set1_epi8((char)k), y));
}

/* ymm kernels: one block per step, blocks ib0..nb-1 (ib0 > 0 when a zmm kernel did the rest). */
AI void rows_q4_0_y(int64_t n, const char *w, size_t stride, const ag_block_q8_0 *y, float *out, const int R,
                    int64_t ib0, size_t pf)
{
    const int64_t nb = n / AG_QK4_0;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc0[MAX_R], acc1[MAX_R];
    for (int r = 0; r < R; r++)
        acc0[r] = acc1[r] = _mm256_setzero_ps();
#define Q4_STEP(ib, ACC)                                                                                  \
    do {                                                                                                  \
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[ib].qs);                                 \
        const __m256i off = neg_scaled_sum(yv, 8);                                                        \
        const __m256 dy = _mm256_set1_ps(_cvtsh_ss(y[ib].d));                                             \
        for (int r = 0; r < R; r++) {                                                                     \
            const ag_block_q4_0 *x = (const ag_block_q4_0 *)(w + (size_t)r * stride) + (ib);              \
            if (pf)                                                                                       \
                _mm_prefetch((const char *)x + pf, _MM_HINT_T0);                                          \
            const __m128i q = _mm_loadu_si128((const __m128i *)x->qs);                                    \
            /* low nibbles are elements 0..15, high nibbles 16..31: the Q8_0 order */                    \
            const __m256i qq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);           \
            const __m256i d = dot_u8s8(off, qq, yv);                                                      \
            const __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)x->d)), dy);            \
            ACC[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, ACC[r]);                                  \
        }                                                                                                 \
    } while (0)
    int64_t i = ib0;
    for (; i + 2 <= nb; i += 2) {
        Q4_STEP(i, acc0);
        Q4_STEP(i + 1, acc1);
    }
    if (i < nb)
        Q4_STEP(i, acc0);
#undef Q4_STEP
    for (int r = 0; r < R; r++)
        out[r] = hsum256(_mm256_add_ps(acc0[r], acc1[r]));
}

AI void rows_q8_0_y(int64_t n, const char *w, size_t stride, const ag_block_q8_0 *y, float *out, const int R,
                    int64_t ib0, size_t pf)
{
    const int64_t nb = n / AG_QK8_0;
    __m256 acc0[MAX_R], acc1[MAX_R];
    for (int r = 0; r < R; r++)
        acc0[r] = acc1[r] = _mm256_setzero_ps();
#if defined(AG_VNNI)
    /* (q + 128) . y - 128 * sum(y): one vpdpbusd per row and block. */
#define Q8_PREP(yv) const __m256i off = neg_scaled_sum(yv, 128)
#define Q8_DOT(xv, yv) dot_u8s8(off, _mm256_xor_si256(xv, _mm256_set1_epi8((char)0x80)), yv)
#else
    /* |q| . (y * sign q): the classic AVX2 signed trick. */
#define Q8_PREP(yv) (void)0
#define Q8_DOT(xv, yv) dot_u8s8(_mm256_setzero_si256(), _mm256_sign_epi8(xv, xv), _mm256_sign_epi8(yv, xv))
#endif
#define Q8_STEP(ib, ACC)                                                                                  \
    do {                                                                                                  \
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[ib].qs);                                 \
        Q8_PREP(yv);                                                                                      \
        const __m256 dy = _mm256_set1_ps(_cvtsh_ss(y[ib].d));                                             \
        for (int r = 0; r < R; r++) {                                                                     \
            const ag_block_q8_0 *x = (const ag_block_q8_0 *)(w + (size_t)r * stride) + (ib);              \
            if (pf)                                                                                       \
                _mm_prefetch((const char *)x + pf, _MM_HINT_T0);                                          \
            const __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs);                                \
            const __m256i d = Q8_DOT(xv, yv);                                                             \
            const __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)x->d)), dy);            \
            ACC[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, ACC[r]);                                  \
        }                                                                                                 \
    } while (0)
    int64_t i = ib0;
    for (; i + 2 <= nb; i += 2) {
        Q8_STEP(i, acc0);
        Q8_STEP(i + 1, acc1);
    }
    if (i < nb)
        Q8_STEP(i, acc0);
#undef Q8_STEP
#undef Q8_PREP
#undef Q8_DOT
    for (int r = 0; r < R; r++)
        out[r] = hsum256(_mm256_add_ps(acc0[r], acc1[r]));
}

#if defined(AG_ZMM)
/* ---------------- zmm kernels: two blocks per step ----------------
 * Lanes 0..7 hold block ib, lanes 8..15 block ib+1, for the quants (int32 partial dots) and the
 * scales alike. Both F16 scales of a block pair come from one load at the first block's header
 * and a word permute, so a pair costs one cvtph2ps instead of two scalar conversions. */
AI __m512i dot_u8s8_z(__m512i acc, __m512i u, __m512i s)
{
#if defined(AG_VNNI)
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

AI __m512i neg_scaled_sum_z(__m512i y, int k)
{
    return _mm512_sub_epi32(_mm512_setzero_si512(), dot_u8s8_z(_mm512_setzero_si512(), _mm512_set1_epi8((char)k), y));
}

AI __m512i load_pair_256(const void *a, const void *b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* Activation scales of blocks ib, ib+1 as [dy0 x8, dy1 x8]. */
AI __m512 act_scales(const ag_block_q8_0 *y, int64_t ib)
{
    return _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(y[ib].d)), _mm256_set1_ps(_cvtsh_ss(y[ib + 1].d)), 1);
}

/* The float partial sums of blocks 0 .. 2*floor(nb/2)-1, then the ymm kernel for an odd last one. */
AI void rows_q4_0(int64_t n, const char *w, size_t stride, const ag_block_q8_0 *y, float *out, const int R,
                  size_t pf)
{
    const int64_t nb = n / AG_QK4_0;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
    /* word 0 = d of block ib, word 9 = d of block ib+1 (18-byte blocks) */
    const __m256i didx = _mm256_set_epi16(9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[MAX_R];
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i yv = load_pair_256(y[i].qs, y[i + 1].qs);
        const __m512i off = neg_scaled_sum_z(yv, 8);
        const __m512 dy = act_scales(y, i);
        for (int r = 0; r < R; r++) {
            const ag_block_q4_0 *x = (const ag_block_q4_0 *)(w + (size_t)r * stride) + i;
            if (pf) /* the same place in the next group of rows: short rows defeat the stream prefetcher */
                _mm_prefetch((const char *)x + pf, _MM_HINT_T0);
            /* [qs0, qs0, qs1, qs1] >> [0, 4, 0, 4] & 15 = [lo0, hi0, lo1, hi1]: the Q8_0 order */
            __m512i q = _mm512_broadcast_i64x2(_mm_loadu_si128((const __m128i *)x[0].qs));
            q = _mm512_mask_broadcast_i64x2(q, 0xf0, _mm_loadu_si128((const __m128i *)x[1].qs));
            q = _mm512_and_si512(_mm512_srlv_epi64(q, shifts), m4);
            const __m512i d = dot_u8s8_z(off, q, yv);
            const __m256i dh = _mm256_permutexvar_epi16(didx, _mm256_loadu_si256((const __m256i *)x));
            const __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(dh), dy);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc[r]);
        }
    }
    float tail[MAX_R];
    rows_q4_0_y(n, w, stride, y, tail, R, i, pf);
    for (int r = 0; r < R; r++)
        out[r] = vhsum(acc[r]) + tail[r];
}

AI void rows_q8_0(int64_t n, const char *w, size_t stride, const ag_block_q8_0 *y, float *out, const int R,
                  size_t pf)
{
    const int64_t nb = n / AG_QK8_0;
    /* word 0 = d of block ib, word 17 = d of block ib+1 (34-byte blocks) */
    const __m512i didx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 17, 17, 17, 17,
                                          17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[MAX_R];
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i yv = load_pair_256(y[i].qs, y[i + 1].qs);
#if defined(AG_VNNI)
        const __m512i off = neg_scaled_sum_z(yv, 128);
#endif
        const __m512 dy = act_scales(y, i);
        for (int r = 0; r < R; r++) {
            const ag_block_q8_0 *x = (const ag_block_q8_0 *)(w + (size_t)r * stride) + i;
            if (pf) /* the same place in the next group of rows: short rows defeat the stream prefetcher */
                _mm_prefetch((const char *)x + pf, _MM_HINT_T0);
            const __m512i xv = load_pair_256(x[0].qs, x[1].qs);
#if defined(AG_VNNI)
            /* (q + 128) . y - 128 * sum(y) */
            const __m512i d = dot_u8s8_z(off, _mm512_xor_si512(xv, _mm512_set1_epi8((char)0x80)), yv);
#else
            /* |q| . (y * sign q); no vpsignb in AVX-512, so negate y where q < 0 */
            const __m512i ys = _mm512_mask_sub_epi8(yv, _mm512_movepi8_mask(xv), _mm512_setzero_si512(), yv);
            const __m512i d = dot_u8s8_z(_mm512_setzero_si512(), _mm512_abs_epi8(xv), ys);
#endif
            /* one 64-byte load spans both headers and stays inside the pair's 68 bytes */
            const __m256i dh = _mm512_castsi512_si256(
                _mm512_permutexvar_epi16(didx, _mm512_loadu_si512((const void *)x)));
            const __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(dh), dy);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc[r]);
        }
    }
    float tail[MAX_R];
    rows_q8_0_y(n, w, stride, y, tail, R, i, pf);
    for (int r = 0; r < R; r++)
        out[r] = vhsum(acc[r]) + tail[r];
}
#else
/* AVX2, two blocks per step: [qs0 | qs1] in one ymm gives both blocks' low nibbles in one AND
 * and the high nibbles in a shift + AND; the activations are regrouped to match once per pair
 * ([y0 0..15 | y1 0..15] and [y0 16..31 | y1 16..31]), shared by all rows. Int32 lanes 0..3
 * are block 0, 4..7 block 1; both F16 scales come from one load + pshufb + vpermq. */
AI void rows_q4_0(int64_t n, const char *w, size_t stride, const ag_block_q8_0 *y, float *out, const int R,
                  size_t pf)
{
    const int64_t nb = n / AG_QK4_0;
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    /* d of block 0 at byte 0 (low lane), d of block 1 at byte 18 = high lane byte 2 */
    const __m256i dsh = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2,
                                         3, 2, 3, 2, 3);
    __m256 acc[MAX_R];
    for (int r = 0; r < R; r++)
        acc[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i y0 = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i y1 = _mm256_loadu_si256((const __m256i *)y[i + 1].qs);
        const __m256i ylo = _mm256_permute2x128_si256(y0, y1, 0x20);
        const __m256i yhi = _mm256_permute2x128_si256(y0, y1, 0x31);
        /* 8 * sum(y) per lane: int16 pair sums stay below 2 * 2 * 8 * 128 */
        const __m256i off = _mm256_madd_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(eight, ylo), _mm256_maddubs_epi16(eight, yhi)), ones);
        const __m256 dy = _mm256_set_m128(_mm_set1_ps(_cvtsh_ss(y[i + 1].d)), _mm_set1_ps(_cvtsh_ss(y[i].d)));
        for (int r = 0; r < R; r++) {
            const ag_block_q4_0 *x = (const ag_block_q4_0 *)(w + (size_t)r * stride) + i;
            if (pf) /* the same place in the next group of rows: short rows defeat the stream prefetcher */
                _mm_prefetch((const char *)x + pf, _MM_HINT_T0);
            const __m256i q = _mm256_loadu2_m128i((const __m128i *)x[1].qs, (const __m128i *)x[0].qs);
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            /* nibble x activation pair sums: |.| <= 2 * 15 * 127, two of them still fit int16 */
            const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_maddubs_epi16(hi, yhi));
            const __m256i d = _mm256_sub_epi32(_mm256_madd_epi16(p, ones), off);
            /* the 32-byte load stays inside the pair's 36 bytes */
            const __m256i h = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)x), dsh);
            const __m128i h8 = _mm256_castsi256_si128(_mm256_permute4x64_epi64(h, 0x08));
            const __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(h8), dy);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, acc[r]);
        }
    }
    float tail[MAX_R];
    rows_q4_0_y(n, w, stride, y, tail, R, i, pf);
    for (int r = 0; r < R; r++)
        out[r] = hsum256(acc[r]) + tail[r];
}
AI void rows_q8_0(int64_t n, const char *w, size_t stride, const ag_block_q8_0 *y, float *out, const int R,
                  size_t pf)
{
    rows_q8_0_y(n, w, stride, y, out, R, 0, pf);
}
#endif

/* ---------------- entry points: single dot and blocks of up to MAX_R rows ---------------- */
static float dot_f32(int64_t n, const void *w, const void *a)
{
    float o;
    rows_float(n, w, 0, a, &o, 1, 0);
    return o;
}
static float dot_f16(int64_t n, const void *w, const void *a)
{
    float o;
    rows_float(n, w, 0, a, &o, 1, 1);
    return o;
}
static float dot_q8_0(int64_t n, const void *w, const void *a)
{
    float o;
    rows_q8_0(n, w, 0, a, &o, 1, 0);
    return o;
}
static float dot_q4_0(int64_t n, const void *w, const void *a)
{
    float o;
    rows_q4_0(n, w, 0, a, &o, 1, 0);
    return o;
}

/* Groups of MAX_R rows, then the remainder with an exact-size instance. */
#define ROWS_ENTRY(name, CALL)                                                                            \
    static void name(int64_t n, const void *wv, size_t stride, int nr, const void *act, float *out)       \
    {                                                                                                     \
        const char *w = wv;                                                                               \
        int r = 0;                                                                                        \
        for (; r + MAX_R <= nr; r += MAX_R) {                                                             \
            /* prefetch the next group while it exists */                                                \
            const size_t pf = r + (PF_GROUPS + 1) * MAX_R <= nr ? PF_GROUPS * MAX_R * stride : 0;         \
            CALL(w + (size_t)r * stride, out + r, MAX_R);                                                 \
        }                                                                                                 \
        const size_t pf = 0;                                                                              \
        switch (nr - r) {                                                                                 \
        case 3:                                                                                           \
            CALL(w + (size_t)r * stride, out + r, 3);                                                     \
            break;                                                                                        \
        case 2:                                                                                           \
            CALL(w + (size_t)r * stride, out + r, 2);                                                     \
            break;                                                                                        \
        case 1:                                                                                           \
            CALL(w + (size_t)r * stride, out + r, 1);                                                     \
            break;                                                                                        \
        default:                                                                                          \
            break;                                                                                        \
        }                                                                                                 \
    }
#define CALL_F32(wp, op, R) ((void)pf, rows_float(n, wp, stride, act, op, R, 0))
#define CALL_F16(wp, op, R) ((void)pf, rows_float(n, wp, stride, act, op, R, 1))
#define CALL_Q8(wp, op, R) rows_q8_0(n, wp, stride, act, op, R, pf)
#define CALL_Q4(wp, op, R) rows_q4_0(n, wp, stride, act, op, R, pf)
ROWS_ENTRY(rows_f32_entry, CALL_F32)
ROWS_ENTRY(rows_f16_any, CALL_F16)

/* ---- F16 rows times one F32 vector, VL rows at a time (decode attention's keys) ---- */
#define ROWS_PF 16 /* rows prefetched ahead */
#if defined(AG_ZMM)
/* v[i]'s 16 lanes summed into lane i of the result: pairs of vectors folded by unpacks (32-bit,
 * then 64-bit), then 128-bit lanes by shuffles; each step halves the vectors and doubles the rows
 * a vector holds: 45 operations for 16 rows, against ~8 a row for a horizontal sum each. */
AI vf hsum_rows(const vf v[VL])
{
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) /* per 128-bit lane: v[2i] at 0,2 and v[2i+1] at 1,3 */
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int k = 0; k < 4; k++) { /* per 128-bit lane: rows 4k..4k+3 in order */
        const __m512d x = _mm512_castps_pd(a[2 * k]), y = _mm512_castps_pd(a[2 * k + 1]);
        b[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    for (int k = 0; k < 2; k++) /* 128-bit lanes: b[2k] L0+L1, L2+L3, then b[2k+1]'s */
        c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xdd));
}
#else
/* the same for 8 vectors of 8: pairwise adds (per 128-bit lane), then the two halves */
AI vf hsum_rows(const vf v[VL])
{
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
#endif

/* VL rows, n a multiple of VL: one accumulator a row, the VL sums reduced together; the rows
 * ROWS_PF ahead are asked for (with the weight stream's hint; past the end is harmless). */
AI void rows_vl_f16(int64_t n, const char *w, size_t stride, const float *a, float *out, const int nta)
{
    vf acc[VL];
    for (int r = 0; r < VL; r++) {
        acc[r] = VZERO();
        for (size_t o = 0; o < (size_t)n * 2; o += 64) {
            if (nta)
                _mm_prefetch(w + (size_t)(ROWS_PF + r) * stride + o, _MM_HINT_NTA);
            else
                _mm_prefetch(w + (size_t)(ROWS_PF + r) * stride + o, _MM_HINT_T1);
        }
    }
    for (int64_t i = 0; i < n; i += VL) {
        const vf av = VLOAD(a + i);
        for (int r = 0; r < VL; r++)
            acc[r] = VFMA(VLOAD_H((const ag_fp16 *)(w + (size_t)r * stride) + i), av, acc[r]);
    }
    VSTORE(out, hsum_rows(acc));
}

AI void rows_f16_vl_then_any(int64_t n, const void *wv, size_t stride, int nr, const void *act, float *out,
                               const int nta)
{
    int r = 0;
    if (n % VL == 0)
        for (; r + VL <= nr; r += VL)
            rows_vl_f16(n, (const char *)wv + (size_t)r * stride, stride, act, out + r, nta);
    if (r < nr)
        rows_f16_any(n, (const char *)wv + (size_t)r * stride, stride, nr - r, act, out + r);
}

static void rows_f16_entry(int64_t n, const void *wv, size_t stride, int nr, const void *act, float *out)
{
    rows_f16_vl_then_any(n, wv, stride, nr, act, out, 0);
}

static void rows_f16_entry_nta(int64_t n, const void *wv, size_t stride, int nr, const void *act, float *out)
{
    rows_f16_vl_then_any(n, wv, stride, nr, act, out, 1);
}
ROWS_ENTRY(rows_q8_0_entry, CALL_Q8)
ROWS_ENTRY(rows_q4_0_entry, CALL_Q4)

/* ---------------- F16 rows with F16C ---------------- */
static void h2f_row(const ag_fp16 *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++)
        y[i] = _cvtsh_ss(x[i]);
}

static void f2h_row(const float *x, ag_fp16 *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* y += alpha * x over F16 x (attention's weighted sum of V rows) */
static void axpy_f16(int64_t n, float alpha, const ag_fp16 *x, float *y)
{
    int64_t i = 0;
#if defined(AG_ZMM)
    const __m512 al = _mm512_set1_ps(alpha);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(VLOAD_H(x + i), al, _mm512_loadu_ps(y + i)));
#endif
    const __m256 al8 = _mm256_set1_ps(alpha);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), al8,
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] = fmaf(_cvtsh_ss(x[i]), alpha, y[i]);
}

/* y += sum_j p[j] * x_j: y in CH-float chunks held in 8 registers while every row passes, so
 * each row costs loads and FMAs only (axpy_f16 per row also loads and stores y). Per element
 * the same FMAs in the same order as axpy_f16 row after row: the same bits. */
AI void mad_rows_f16_hint(int64_t n, int64_t nr, const float *p, const ag_fp16 *x, size_t stride, float *y,
                           const int nta)
{
    enum { CH = 8 * VL };
    const char *xb = (const char *)x;
    int64_t i = 0;
    for (; i + CH <= n; i += CH) {
        vf acc[8];
        for (int c = 0; c < 8; c++)
            acc[c] = VLOAD(y + i + c * VL);
        for (int64_t j = 0; j < nr; j++) {
            if (i == 0) /* the row 16 ahead, on the first pass over the rows (past the end: harmless) */
                for (size_t o = 0; o < (size_t)n * 2; o += 64) {
                    if (nta)
                        _mm_prefetch(xb + (size_t)(j + 16) * stride + o, _MM_HINT_NTA);
                    else
                        _mm_prefetch(xb + (size_t)(j + 16) * stride + o, _MM_HINT_T1);
                }
            if (p[j] == 0.0f)
                continue;
            const ag_fp16 *xr = (const ag_fp16 *)(xb + (size_t)j * stride) + i;
            const vf pj = VSET1(p[j]);
            for (int c = 0; c < 8; c++)
                acc[c] = VFMA(VLOAD_H(xr + c * VL), pj, acc[c]);
        }
        for (int c = 0; c < 8; c++)
            VSTORE(y + i + c * VL, acc[c]);
    }
    if (i < n) /* the tail: row after row */
        for (int64_t j = 0; j < nr; j++)
            if (p[j] != 0.0f)
                axpy_f16(n - i, p[j], (const ag_fp16 *)(xb + (size_t)j * stride) + i, y + i);
}

static void mad_rows_f16(int64_t n, int64_t nr, const float *p, const ag_fp16 *x, size_t stride, float *y)
{
    mad_rows_f16_hint(n, nr, p, x, stride, y, 0);
}

static void mad_rows_f16_nta(int64_t n, int64_t nr, const float *p, const ag_fp16 *x, size_t stride, float *y)
{
    mad_rows_f16_hint(n, nr, p, x, stride, y, 1);
}

#if defined(AG_VNNI)
#define ENTRY_NAME ag_kernels_avx512vnni
#elif defined(AG_ZMM)
#define ENTRY_NAME ag_kernels_avx512
#else
#define ENTRY_NAME ag_kernels_avx2
#endif

void ENTRY_NAME(ag_kernels *k)
{
#if defined(AG_ZMM)
    k->name = "avx512";
#else
    k->name = "avx2";
#endif
    k->dot[AG_KSLOT_F32] = dot_f32;
    k->dot[AG_KSLOT_F16] = dot_f16;
    k->dot[AG_KSLOT_Q8_0] = dot_q8_0;
    k->dot[AG_KSLOT_Q4_0] = dot_q4_0;
    k->rows[AG_KSLOT_F32] = rows_f32_entry;
    k->rows[AG_KSLOT_F16] = k->stream_nta ? rows_f16_entry_nta : rows_f16_entry;
    k->rows[AG_KSLOT_Q8_0] = rows_q8_0_entry;
    k->rows[AG_KSLOT_Q4_0] = rows_q4_0_entry;
    k->h2f = h2f_row;
    k->f2h = f2h_row;
    k->axpy_f16 = axpy_f16;
    k->mad_rows_f16 = k->stream_nta ? mad_rows_f16_nta : mad_rows_f16;
#if defined(AG_VNNI)
    ag_packed_fill_avx512vnni(k);
#elif defined(AG_ZMM)
    ag_packed_fill_avx512(k);
#else
    ag_packed_fill_avx2(k);
#endif
}
