/* Packed row groups against gen_packed_ref.py's fixture (numpy, written from quant.h's layout):
 * the packed bytes, the prepared activation rows, and the matmul in float64.
 *   test_packed FIXTURE [--simd=scalar|avx2|avx512|avx512novnni|avx512noamx]
 * Also: a product computed in pieces (the work items the cpu backend hands out: ranges of
 * groups, ranges of activation rows) has the same bits as in one call, and every level matches
 * the portable kernel's arithmetic (fma over the blocks in order), checked against a float
 * emulation of it. F16/F32 groups likewise, against float64 and the block-wise fma chains. */
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

static void *dup_bytes(const void *src, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && src)
        memcpy(d, src, n);
    return d;
}

/* The arithmetic every level promises: per output, fmaf over the blocks in order of
 * (float)(integer block dot) * (dw * da). Computed here from the packed bytes and act rows. */
static float emulate(ag_type t, int64_t K, const unsigned char *pk, int64_t n, const unsigned char *act)
{
    const int64_t nb = K / 32, g = n / 16;
    const int j = (int)(n % 16);
    const size_t bb = ag_packed_block_bytes(t);
    const signed char *a = (const signed char *)act;
    const float *da = (const float *)(act + K);
    const int32_t *corr = (const int32_t *)(da + nb);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *p = pk + (size_t)(g * nb + b) * bb;
        int32_t isum = corr[b];
        for (int e = 0; e < 32; e++) {
            int v;
            if (t == AG_TYPE_Q4_0) {
                const unsigned char byte = p[32 + 64 * ((e % 16) / 4) + 4 * j + e % 4];
                v = e < 16 ? (byte & 15) : (byte >> 4);
            } else {
                v = p[32 + 64 * (e / 4) + 4 * j + e % 4];
            }
            isum += v * a[32 * b + e];
        }
        ag_fp16 h;
        memcpy(&h, p + 2 * j, 2);
        acc = fmaf((float)isum, ag_fp16_to_fp32(h) * da[b], acc);
    }
    return acc;
}

static double g_worst;

/* F16/F32 groups: per block of AG_PACK_KBLOCK columns an fmaf chain from zero, added in order. */
static float emulate_f(ag_type t, int64_t K, const unsigned char *pk, int64_t n, const float *a)
{
    const size_t es = t == AG_TYPE_F16 ? 2 : 4;
    const unsigned char *g = pk + (size_t)(n / 16) * (size_t)K * 16 * es;
    const int j = (int)(n % 16);
    float out = 0.0f;
    for (int64_t k0 = 0; k0 < K; k0 += AG_PACK_KBLOCK) {
        float acc = 0.0f;
        for (int64_t k = k0; k < K && k < k0 + AG_PACK_KBLOCK; k++) {
            float w;
            if (t == AG_TYPE_F16) {
                ag_fp16 h;
                memcpy(&h, g + ((size_t)k * 16 + (size_t)j) * 2, 2);
                w = ag_fp16_to_fp32(h);
            } else {
                memcpy(&w, g + ((size_t)k * 16 + (size_t)j) * 4, 4);
            }
            acc = fmaf(a[k], w, acc);
        }
        out = k0 == 0 ? acc : out + acc;
    }
    return out;
}

static void check_float_case(const char *name, ag_type t, reader *r)
{
    const int64_t K = take_u32(r), N = take_u32(r), M = take_u32(r);
    const size_t rowb = ag_row_size(t, K), pbytes = ag_packed_size(t, N, K);
    unsigned char *rows = dup_bytes(take(r, (size_t)N * rowb), (size_t)N * rowb);
    unsigned char *want_pk = dup_bytes(take(r, pbytes), pbytes);
    float *x = dup_bytes(take(r, (size_t)(M * K) * 4), (size_t)(M * K) * 4);
    double *want = dup_bytes(take(r, (size_t)(M * N) * 8), (size_t)(M * N) * 8);
    double *sabs = dup_bytes(take(r, (size_t)(M * N) * 8), (size_t)(M * N) * 8);
    if (r->bad)
        goto out;
    unsigned char *pk = malloc(pbytes);
    CHECK(ag_pack_rows(t, rows, rowb, N, K, pk) == 0 && memcmp(pk, want_pk, pbytes) == 0, "%s: packed bytes differ",
          name);
    const size_t ldo = (size_t)N + 5, lda = (size_t)K + 3;
    float *xa = malloc((size_t)M * lda * sizeof(float)), *out = malloc((size_t)M * ldo * sizeof(float));
    for (int64_t m = 0; m < M; m++)
        memcpy(xa + (size_t)m * lda, x + m * K, (size_t)K * sizeof(float));
    for (size_t i = 0; i < (size_t)M * ldo; i++)
        out[i] = -12345.0f;
    ag_packed_matmul_f(t, K, pk, N, xa, lda, M, out, ldo);
    int bad = 0, bad_bits = 0, stomped = 0;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            const double got = out[m * (int64_t)ldo + n], w = want[m * N + n];
            const double err = fabs(got - w) / (sabs[m * N + n] + 1e-30);
            if (err > g_worst)
                g_worst = err;
            /* float32 sums of <= 256 terms, then <= K/256 of those: far below one lost column */
            bad += fabs(got - w) > 1e-5 * sabs[m * N + n] + 1e-30;
            const float e = emulate_f(t, K, pk, n, x + m * K);
            bad_bits += memcmp(&e, &out[m * (int64_t)ldo + n], 4) != 0;
        }
        for (size_t n = (size_t)N; n < ldo; n++)
            stomped += out[(size_t)m * ldo + n] != -12345.0f;
    }
    CHECK(bad == 0, "%s: %d outputs off the float64 reference", name, bad);
    CHECK(bad_bits == 0, "%s: %d outputs differ from the portable arithmetic", name, bad_bits);
    CHECK(stomped == 0, "%s: %d writes past the last row", name, stomped);
    free(xa);
    free(out);
    free(pk);
out:
    free(rows);
    free(want_pk);
    free(x);
    free(want);
    free(sabs);
}

static void check_case(const char *name, reader *r)
{
    const uint32_t code = take_u32(r);
    if (code >= 2) {
        check_float_case(name, code == 2 ? AG_TYPE_F16 : AG_TYPE_F32, r);
        return;
    }
    const ag_type t = code == 0 ? AG_TYPE_Q4_0 : AG_TYPE_Q8_0;
    const int64_t K = take_u32(r), N = take_u32(r), M = take_u32(r);
    const size_t rowb = ag_row_size(t, K), pbytes = ag_packed_size(t, N, K), actraw = (size_t)K + (size_t)K / 4;
    const size_t as = ag_packed_act_size(K);
    unsigned char *rows = dup_bytes(take(r, (size_t)N * rowb), (size_t)N * rowb);
    unsigned char *want_pk = dup_bytes(take(r, pbytes), pbytes);
    float *x = dup_bytes(take(r, (size_t)(M * K) * 4), (size_t)(M * K) * 4);
    unsigned char *want_act = dup_bytes(take(r, (size_t)M * actraw), (size_t)M * actraw);
    double *want = dup_bytes(take(r, (size_t)(M * N) * 8), (size_t)(M * N) * 8);
    double *sabs = dup_bytes(take(r, (size_t)(M * N) * 8), (size_t)(M * N) * 8);
    if (r->bad)
        goto out;
    CHECK(pbytes == (size_t)((N + 15) / 16) * 16 * rowb, "%s: a packed group is as large as its 16 rows", name);

    unsigned char *pk = malloc(pbytes);
    CHECK(ag_pack_rows(t, rows, rowb, N, K, pk) == 0 && memcmp(pk, want_pk, pbytes) == 0, "%s: packed bytes differ",
          name);
    unsigned char *act = malloc((size_t)M * as);
    int bad_act = 0;
    for (int64_t m = 0; m < M; m++) {
        ag_packed_act_row(t, x + m * K, K, act + (size_t)m * as);
        bad_act += memcmp(act + (size_t)m * as, want_act + (size_t)m * actraw, actraw) != 0;
    }
    CHECK(bad_act == 0, "%s: %d of %lld activation rows differ", name, bad_act, (long long)M);

    /* the whole product in one call, with an output row stride wider than N */
    const size_t ldo = (size_t)N + 3;
    float *out = malloc((size_t)M * ldo * sizeof(float));
    for (size_t i = 0; i < (size_t)M * ldo; i++)
        out[i] = -12345.0f;
    ag_packed_matmul(t, K, pk, N, act, as, M, out, ldo);
    int bad = 0, bad_bits = 0, stomped = 0;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            const double got = out[m * (int64_t)ldo + n], w = want[m * N + n];
            /* float32 partial sums over K/32 terms: far below a lost or doubled block (>= 1e-3) */
            const double err = fabs(got - w) / (sabs[m * N + n] + 1e-30);
            if (err > g_worst)
                g_worst = err;
            bad += fabs(got - w) > 2e-6 * sabs[m * N + n] + 1e-30;
            const float e = emulate(t, K, pk, n, act + (size_t)m * as);
            bad_bits += memcmp(&e, &out[m * (int64_t)ldo + n], 4) != 0;
        }
        for (size_t n = (size_t)N; n < ldo; n++)
            stomped += out[(size_t)m * ldo + n] != -12345.0f;
    }
    CHECK(bad == 0, "%s: %d outputs off the float64 reference", name, bad);
    CHECK(bad_bits == 0, "%s: %d outputs differ from the portable arithmetic", name, bad_bits);
    CHECK(stomped == 0, "%s: %d writes past the last row", name, stomped);

    /* in pieces: one group at a time, activation rows one and two at a time */
    float *piece = malloc((size_t)M * ldo * sizeof(float));
    const size_t gbytes = ag_packed_size(t, 16, K);
    for (int64_t g = 0; g * 16 < N; g++) {
        const int64_t nr = N - 16 * g < 16 ? N - 16 * g : 16;
        for (int64_t m = 0; m < M; m += 2) {
            const int64_t mr = M - m < 2 ? M - m : 2;
            ag_packed_matmul(t, K, pk + (size_t)g * gbytes, nr, act + (size_t)m * as, as, mr, piece + m * (int64_t)ldo + 16 * g,
                             ldo);
        }
    }
    int diff = 0;
    for (int64_t m = 0; m < M; m++)
        diff += memcmp(piece + m * (int64_t)ldo, out + m * (int64_t)ldo, (size_t)N * sizeof(float)) != 0;
    CHECK(diff == 0, "%s: computed in pieces, %d activation rows differ", name, diff);
    free(piece);
    free(out);
    free(act);
    free(pk);
out:
    free(rows);
    free(want_pk);
    free(x);
    free(want_act);
    free(want);
    free(sabs);
}

static void check_errors(void)
{
    char buf[64];
    ag_clear_error();
    CHECK(ag_packed_size(AG_TYPE_I32, 16, 32) == 0 && ag_packed_size(AG_TYPE_Q4_0, 16, 40) == 0,
          "only Q8_0/Q4_0/F16/F32 rows of whole blocks pack");
    CHECK(ag_packed_size(AG_TYPE_F16, 16, 3) == 16 * 3 * 2, "F16 groups are as large as their rows");
    CHECK(ag_pack_rows(AG_TYPE_I32, buf, 32, 1, 8, buf) == -1 && ag_last_error()[0], "packing I32 is refused");
    CHECK(ag_packed_act_size(32) % 64 == 0 && ag_packed_act_size(32) >= 40, "activation rows on cache lines");
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
        fprintf(stderr, "usage: %s FIXTURE [--simd=scalar|avx2|avx512|avx512novnni|avx512noamx]\n", argv[0]);
        return 2;
    }
    if (simd)
        setenv("AG_SIMD", simd, 1);
    printf("# device: cpu, kernel level %s (requested %s)\n", ag_simd_level(), simd ? simd : "best");
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
    CHECK(magic && memcmp(magic, "AGPKREF1", 8) == 0, "bad fixture magic");
    const uint32_t ncases = take_u32(&r);
    for (uint32_t c = 0; c < ncases && !r.bad; c++) {
        char name[33] = {0};
        const void *nm = take(&r, 32);
        if (nm)
            memcpy(name, nm, 32);
        check_case(name, &r);
    }
    CHECK(!r.bad && r.p == r.end && ncases > 0, "fixture not fully consumed");
    free(data);
    check_errors();
    printf("# worst packed matmul error / sum|terms|: %.3g\n", g_worst);
    return t_finish();
}
