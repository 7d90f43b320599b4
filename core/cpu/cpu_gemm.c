/* Single-threaded sgemm (OpenBLAS when built with it, else plain loops the compiler
 * vectorises) and small shared vector helpers. The pool splits work before calling these, so
 * OpenBLAS is pinned to one thread: its own threads would fight ours for the same cores. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"
#include "ag_config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if AG_HAVE_OPENBLAS
#include <cblas.h>
#endif

static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;
static bool use_blas;

static void gemm_init_once(void)
{
#if AG_HAVE_OPENBLAS
    const char *e = getenv("AG_CPU_NO_BLAS");
    use_blas = !(e && *e && strcmp(e, "0") != 0);
    if (use_blas)
        openblas_set_num_threads(1);
#else
    use_blas = false;
#endif
}

void cpu_gemm_init(void) { pthread_once(&gemm_once, gemm_init_once); }

bool cpu_have_blas(void)
{
    cpu_gemm_init();
    return use_blas;
}

const char *cpu_blas_core(void)
{
#if AG_HAVE_OPENBLAS
    /* which of its kernel sets OpenBLAS picked (DYNAMIC_ARCH builds: OPENBLAS_CORETYPE overrides) */
    return cpu_have_blas() ? openblas_get_corename() : NULL;
#else
    return NULL;
#endif
}

float cpu_dot_f32(const float *a, const float *b, int64_t n)
{
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[i + l] * b[i + l];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

void cpu_to_f32(ag_type type, const void *src, float *dst, int64_t n)
{
    switch (type) {
    case AG_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case AG_TYPE_F16: ag_fp16_to_fp32_row(src, dst, n); break;
    default: ag_dequantize_row(type, src, dst, n); break;
    }
}

/* C[i,:] (+)= sum_k A(i,k) B(k,:) with B rows contiguous. */
static void gemm_loops(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float *C, int64_t ldc)
{
    if (!ta && tb) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * ldc + j] += cpu_dot_f32(A + i * lda, B + j * ldb, K);
        return;
    }
    if (!tb) {
        /* block k so a strip of B stays in cache across rows of C */
        const int64_t KB = 256;
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            const int64_t k1 = k0 + KB < K ? k0 + KB : K;
            for (int64_t i = 0; i < M; i++) {
                float *c = C + i * ldc;
                for (int64_t k = k0; k < k1; k++) {
                    const float a = ta ? A[k * lda + i] : A[i * lda + k];
                    if (a == 0.0f)
                        continue;
                    const float *b = B + k * ldb;
                    for (int64_t j = 0; j < N; j++)
                        c[j] += a * b[j];
                }
            }
        }
        return;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++)
                s += A[k * lda + i] * B[j * ldb + k];
            C[i * ldc + j] += s;
        }
}

void cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
               const float *B, int64_t ldb, float *C, int64_t ldc, bool accumulate)
{
    if (M <= 0 || N <= 0)
        return;
#if AG_HAVE_OPENBLAS
    if (cpu_have_blas() && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX &&
        ldb <= INT32_MAX && ldc <= INT32_MAX) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                    (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
        return;
    }
#endif
    if (!accumulate)
        for (int64_t i = 0; i < M; i++)
            memset(C + i * ldc, 0, (size_t)N * sizeof(float));
    gemm_loops(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
}
