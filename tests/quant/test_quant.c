/* Quantization and dot-kernel tests against gen_quant_ref.py's fixture (numpy, written from the
 * block format definitions) and closed forms.
 *   test_quant FIXTURE [--simd=scalar|avx2|avx512|avx512novnni]
 * --simd caps the kernel level (sets AG_SIMD before the first kernel call), so one binary run
 * once per level covers every path the CPU has (avx512novnni: AVX-512 without vpdpbusd). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygpt/error.h"
#include "anygpt/quant.h"

#include "../common/ag_check.h"

typedef struct {
    const unsigned char *p, *end;
    int bad;
} reader;

static const void *take(reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const void *q = r->p;
    r->p += n;
    return q;
}

static uint32_t take_u32(reader *r)
{
    const void *q = take(r, 4);
    uint32_t v = 0;
    if (q)
        memcpy(&v, q, 4);
    return v;
}

/* Fixture arrays are unaligned inside the file: copy what the kernels read into aligned memory. */
static void *dup_bytes(const void *src, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && src)
        memcpy(d, src, n);
    return d;
}

static const ag_type k_types[4] = {AG_TYPE_F32, AG_TYPE_F16, AG_TYPE_Q8_0, AG_TYPE_Q4_0};

/* Float accumulation error of the kernels relative to the sum of |terms|: float32 partial sums
 * over at most a few thousand terms stay well inside this; a lost or doubled block is ~1e-3. */
#define DOT_RTOL 1e-6

static double g_worst[4];

static void check_case(const char *name, uint32_t n, uint32_t nrows, reader *r)
{
    const size_t ne = (size_t)n * nrows, nb = n / 32;
    const float *w = dup_bytes(take(r, ne * 4), ne * 4);
    const float *a = dup_bytes(take(r, (size_t)n * 4), (size_t)n * 4);
    const void *q8w = dup_bytes(take(r, nrows * nb * 34), nrows * nb * 34);
    const float *q8w_deq = dup_bytes(take(r, ne * 4), ne * 4);
    const void *q4w = dup_bytes(take(r, nrows * nb * 18), nrows * nb * 18);
    const float *q4w_deq = dup_bytes(take(r, ne * 4), ne * 4);
    const void *f16w = dup_bytes(take(r, ne * 2), ne * 2);
    const void *q8a = dup_bytes(take(r, nb * 34), nb * 34);
    double dots[4][64], sabs[4][64];
    const void *pd = take(r, 4 * nrows * 8), *ps = take(r, 4 * nrows * 8);
    if (r->bad || nrows > 64) {
        CHECK(0, "%s: fixture truncated", name);
        goto out;
    }
    for (int t = 0; t < 4; t++)
        for (uint32_t i = 0; i < nrows; i++) {
            memcpy(&dots[t][i], (const char *)pd + ((size_t)t * nrows + i) * 8, 8);
            memcpy(&sabs[t][i], (const char *)ps + ((size_t)t * nrows + i) * 8, 8);
        }

    /* quantize: byte-identical blocks */
    size_t q8size = nrows * nb * 34, q4size = nrows * nb * 18;
    unsigned char *buf = malloc(ne * 4 + 64);
    float *deq = malloc(ne * 4 + 64);
    size_t got = ag_quantize(AG_TYPE_Q8_0, w, buf, nrows, n);
    CHECK(got == q8size && memcmp(buf, q8w, q8size) == 0, "%s: Q8_0 bytes differ (size %zu)", name, got);
    for (size_t b = 0; b < q8size; b++)
        if (buf[b] != ((const unsigned char *)q8w)[b]) {
            printf("  first Q8_0 difference at byte %zu (block %zu): got %d want %d\n", b, b / 34, buf[b],
                   ((const unsigned char *)q8w)[b]);
            break;
        }
    got = ag_quantize(AG_TYPE_Q4_0, w, buf, nrows, n);
    CHECK(got == q4size && memcmp(buf, q4w, q4size) == 0, "%s: Q4_0 bytes differ (size %zu)", name, got);
    for (size_t b = 0; b < q4size; b++)
        if (buf[b] != ((const unsigned char *)q4w)[b]) {
            printf("  first Q4_0 difference at byte %zu (block %zu): got %02x want %02x\n", b, b / 18, buf[b],
                   ((const unsigned char *)q4w)[b]);
            break;
        }
    got = ag_quantize(AG_TYPE_F16, w, buf, nrows, n);
    CHECK(got == ne * 2 && memcmp(buf, f16w, ne * 2) == 0, "%s: F16 bytes differ", name);
    ag_quantize_row_q8_0(a, (ag_block_q8_0 *)buf, n);
    CHECK(memcmp(buf, q8a, nb * 34) == 0, "%s: Q8_0 activation bytes differ", name);

    /* dequantize: exact */
    ag_dequantize_row(AG_TYPE_Q8_0, q8w, deq, (int64_t)ne);
    CHECK(memcmp(deq, q8w_deq, ne * 4) == 0, "%s: Q8_0 dequantize not exact", name);
    ag_dequantize_row(AG_TYPE_Q4_0, q4w, deq, (int64_t)ne);
    CHECK(memcmp(deq, q4w_deq, ne * 4) == 0, "%s: Q4_0 dequantize not exact", name);
    ag_dequantize_row(AG_TYPE_F16, f16w, deq, (int64_t)ne);
    int f16ok = 1;
    for (size_t i = 0; i < ne; i++)
        f16ok &= deq[i] == ag_fp16_to_fp32(((const ag_fp16 *)f16w)[i]);
    CHECK(f16ok, "%s: F16 dequantize differs from the scalar conversion", name);

    /* dots: every weight type, every row, against float64 of the quantized values; rows == dot */
    const void *wdata[4] = {w, f16w, q8w, q4w};
    for (int t = 0; t < 4; t++) {
        const ag_type ty = k_types[t];
        const size_t rs = ag_row_size(ty, n);
        const void *act = ag_vec_dot_act_type(ty) == AG_TYPE_Q8_0 ? q8a : (const void *)a;
        ag_vec_dot_fn dot = ag_vec_dot_for(ty);
        CHECK(dot != NULL, "no dot for %s", ag_type_name(ty));
        if (!dot)
            continue;
        float single[64], multi[64];
        for (uint32_t i = 0; i < nrows; i++) {
            single[i] = dot(n, (const char *)wdata[t] + i * rs, act);
            const double err = fabs((double)single[i] - dots[t][i]);
            const double rel = sabs[t][i] > 0 ? err / sabs[t][i] : err;
            if (rel > g_worst[t])
                g_worst[t] = rel;
            CHECK(err <= DOT_RTOL * sabs[t][i] + 1e-30, "%s %s row %u: dot %.9g want %.9g (rel %.3g)", name,
                  ag_type_name(ty), i, single[i], dots[t][i], rel);
        }
        /* every start row and count, so each group size (4 + remainder) is used */
        for (uint32_t s = 0; s < nrows; s++)
            for (uint32_t c = 1; s + c <= nrows; c++) {
                for (uint32_t i = 0; i < c; i++)
                    multi[i] = NAN;
                ag_vec_dot_rows(ty, n, (const char *)wdata[t] + s * rs, rs, (int)c, act, multi);
                CHECK(memcmp(multi, single + s, c * sizeof(float)) == 0,
                      "%s %s: ag_vec_dot_rows(start %u, nr %u) differs from per-row dot", name, ag_type_name(ty),
                      s, c);
            }
    }
    free(buf);
    free(deq);
out:
    free((void *)w);
    free((void *)a);
    free((void *)q8w);
    free((void *)q8w_deq);
    free((void *)q4w);
    free((void *)q4w_deq);
    free((void *)f16w);
    free((void *)q8a);
}

/* binary16 -> double by its definition, independent of both conversions under test. */
static double half_value(unsigned h)
{
    const int s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void check_f16_all(void)
{
    ag_fp16 *h = malloc(65536 * sizeof *h), *back = malloc(65536 * sizeof *back);
    float *f = malloc(65536 * sizeof *f);
    for (unsigned i = 0; i < 65536; i++)
        h[i] = (ag_fp16)i;
    ag_fp16_to_fp32_row(h, f, 65536);
    ag_fp32_to_fp16_row(f, back, 65536);
    int bad_val = 0, bad_trip = 0, bad_scalar = 0;
    for (unsigned i = 0; i < 65536; i++) {
        const double want = half_value(i);
        if (isnan(want)) {
            /* NaN payloads may be quieted; NaN must stay NaN both ways */
            bad_val += !isnan(f[i]);
            bad_trip += !((back[i] & 0x7c00) == 0x7c00 && (back[i] & 0x3ff) && (back[i] & 0x8000) == (i & 0x8000));
            continue;
        }
        bad_val += !((double)f[i] == want && !!signbit(f[i]) == (int)(i >> 15));
        bad_trip += back[i] != i;
        bad_scalar += ag_fp32_to_fp16(f[i]) != i;
    }
    CHECK(bad_val == 0, "F16 -> F32 row: %d of 65536 values wrong", bad_val);
    CHECK(bad_trip == 0, "F16 -> F32 -> F16 row round trip: %d of 65536 not exact", bad_trip);
    CHECK(bad_scalar == 0, "scalar F32 -> F16: %d of 65536 not exact", bad_scalar);

    /* F32 -> F16 row (F16C where present) against the scalar conversion on awkward values:
     * pseudo-random bit patterns, ties between halves, the overflow edge, subnormals */
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x);
    uint32_t s = 12345;
    for (unsigned i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        uint32_t bits = s;
        if (i % 4 == 1)
            bits = (s & 0x80000000u) | ((uint32_t)(102 + (s >> 8) % 40) << 23) | (s & 0x7fe000u) | 0x1000u; /* tie */
        memcpy(&x[i], &bits, 4);
    }
    x[0] = 65504.0f;
    x[1] = 65519.996f; /* rounds to 65504 */
    x[2] = 65520.0f;   /* tie to even: inf */
    x[3] = 5.9604645e-8f; /* smallest subnormal half */
    x[4] = 2.9802322e-8f; /* half of it: tie to even -> 0 */
    x[5] = -0.0f;
    ag_fp16 *y = malloc(N * sizeof *y);
    ag_fp32_to_fp16_row(x, y, N);
    int bad = 0;
    for (unsigned i = 0; i < N; i++) {
        if (isnan(x[i])) {
            bad += !((y[i] & 0x7c00) == 0x7c00 && (y[i] & 0x3ff));
            continue;
        }
        bad += y[i] != ag_fp32_to_fp16(x[i]);
        /* and against the definition: the nearest half (ties to even) */
        const double hv = half_value(y[i]);
        if (isfinite(hv) && fabs(x[i]) <= 65504.0) {
            const double ulp = fabs(hv) < ldexp(1, -14) ? ldexp(1, -24) : ldexp(1, ilogb(hv) - 10);
            bad += fabs(hv - (double)x[i]) > ulp / 2;
        }
    }
    CHECK(bad == 0, "F32 -> F16 row: %d of %d wrong", bad, N);
    CHECK(y[0] == 0x7bff && y[1] == 0x7bff && y[2] == 0x7c00 && y[3] == 0x0001 && y[4] == 0 && y[5] == 0x8000,
          "F32 -> F16 edge values: %04x %04x %04x %04x %04x %04x", y[0], y[1], y[2], y[3], y[4], y[5]);
    free(x);
    free(y);
    free(h);
    free(back);
    free(f);
}

static void check_errors(void)
{
    float x[40] = {0};
    unsigned char buf[256];
    ag_clear_error();
    CHECK(ag_quantize(AG_TYPE_Q8_0, x, buf, 1, 40) == 0 && ag_last_error()[0] != 0,
          "ag_quantize must refuse a row length that is not a multiple of 32");
    CHECK(ag_quantize(AG_TYPE_I32, x, buf, 1, 32) == 0, "ag_quantize must refuse I32");
    CHECK(ag_vec_dot_for(AG_TYPE_I32) == NULL, "no dot kernel for I32");
    CHECK(ag_vec_dot_act_type(AG_TYPE_Q4_0) == AG_TYPE_Q8_0 && ag_vec_dot_act_type(AG_TYPE_F16) == AG_TYPE_F32,
          "activation types");
    /* NaN / inf input: defined output, no UB (checked under UBSan) */
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = -INFINITY;
    ag_quantize_row_q8_0(x, (ag_block_q8_0 *)buf, 32);
    ag_quantize_row_q4_0(x, (ag_block_q4_0 *)buf, 32);
    CHECK(1, "quantizing NaN/inf returns");
}

int main(int argc, char **argv)
{
    const char *path = NULL, *simd = NULL;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--simd=", 7) == 0)
            simd = argv[i] + 7;
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: %s FIXTURE [--simd=scalar|avx2|avx512|avx512novnni]\n", argv[0]);
        return 2;
    }
    if (simd)
        setenv("AG_SIMD", simd, 1);
    printf("# device: cpu, kernel level %s (requested %s)\n", ag_simd_level(), simd ? simd : "best");
    if (simd && strncmp(ag_simd_level(), simd, strlen(ag_simd_level()) < strlen(simd) ? strlen(ag_simd_level()) : strlen(simd)) != 0)
        printf("# note: this CPU or build has no %s kernels; testing %s instead\n", simd, ag_simd_level());

    FILE *fp = fopen(path, "rb");
    if (!fp) {
        printf("cannot open %s\n0 passed, 1 failed\n", path);
        return 1;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size);
    if (fread(data, 1, (size_t)size, fp) != (size_t)size)
        size = 0;
    fclose(fp);
    reader r = {data, data + size, 0};
    const void *magic = take(&r, 8);
    CHECK(magic && memcmp(magic, "AGQREF01", 8) == 0, "bad fixture magic");
    const uint32_t ncases = take_u32(&r);
    for (uint32_t c = 0; c < ncases && !r.bad; c++) {
        char name[33] = {0};
        const void *nm = take(&r, 32);
        if (nm)
            memcpy(name, nm, 32);
        const uint32_t n = take_u32(&r), nrows = take_u32(&r);
        check_case(name, n, nrows, &r);
    }
    CHECK(!r.bad && r.p == r.end && ncases > 0, "fixture not fully consumed");
    free(data);
    check_f16_all();
    check_errors();
    printf("# worst dot error / sum|terms|: F32 %.3g, F16 %.3g, Q8_0 %.3g, Q4_0 %.3g\n", g_worst[0], g_worst[1],
           g_worst[2], g_worst[3]);
    return t_finish();
}
