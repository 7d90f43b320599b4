/* MUL_MAT: out[n,m] = dot(a row n, b row m) per batch.
 *  - F32/F16 weights with many activation rows: sgemm (F16 rows converted to F32 in tiles);
 *  - otherwise the dot kernels of quant.h, several weight rows at once; activations are first
 *    quantized to Q8_0 once per node when the weight type wants it. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <string.h>

#define GEMM_MIN_M 16     /* fewer activation rows: dot kernels beat sgemm setup */
#define DOT_ROWS 16       /* weight rows per dot call (register blocking in quant) */
#define DOT_M_TILE 128    /* activation rows kept hot while weight blocks stream */
#define F16_TILE_BYTES (1u << 20)

static bool use_gemm(const ag_tensor *node)
{
    const ag_type wt = node->src[0]->type;
    return (wt == AG_TYPE_F32 || wt == AG_TYPE_F16) && node->ne[1] >= GEMM_MIN_M && cpu_have_blas();
}

static int64_t f16_tile_rows(int64_t K)
{
    int64_t tn = (int64_t)(F16_TILE_BYTES / ((size_t)K * sizeof(float)));
    return tn < 16 ? 16 : tn;
}

size_t cpu_work_mul_mat(const ag_tensor *node, int nth)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const int64_t K = a->ne[0];
    if (use_gemm(node)) {
        if (a->type != AG_TYPE_F16)
            return 0;
        int64_t tn = f16_tile_rows(K);
        if (tn > a->ne[1])
            tn = a->ne[1];
        return (size_t)nth * cpu_align((size_t)tn * (size_t)K * sizeof(float));
    }
    if (ag_vec_dot_act_type(a->type) == AG_TYPE_F32)
        return 0;
    return (size_t)ag_nrows(b) * ag_row_size(AG_TYPE_Q8_0, K);
}

/* Batch index of a for output batch (i2, i3). */
static inline const char *a_batch(const ag_tensor *a, const ag_tensor *node, int64_t i2, int64_t i3)
{
    const int64_t r2 = node->ne[2] / a->ne[2], r3 = node->ne[3] / a->ne[3];
    return cpu_data(a) + (i2 / r2) * (int64_t)a->nb[2] + (i3 / r3) * (int64_t)a->nb[3];
}

static void mm_gemm(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const int64_t K = a->ne[0], N = a->ne[1], M = b->ne[1];
    const int64_t nbatch = node->ne[2] * node->ne[3];
    const int64_t nchunks = nbatch >= p->nth ? 1 : (p->nth + nbatch - 1) / nbatch;
    const int64_t chunk = (N + nchunks - 1) / nchunks;
    const int64_t tn = f16_tile_rows(K) < N ? f16_tile_rows(K) : N;
    float *tile = (float *)(p->work + (size_t)p->ith * cpu_align((size_t)tn * (size_t)K * sizeof(float)));
    for (int64_t u = p->ith; u < nbatch * nchunks; u += p->nth) {
        const int64_t bi = u / nchunks, c = u % nchunks;
        const int64_t i2 = bi % node->ne[2], i3 = bi / node->ne[2];
        const int64_t n0 = c * chunk, n1 = n0 + chunk < N ? n0 + chunk : N;
        if (n0 >= n1)
            continue;
        const char *A = a_batch(a, node, i2, i3);
        const float *B = (const float *)cpu_data(b) + (i2 + i3 * b->ne[2]) * M * K;
        float *O = (float *)cpu_data(node) + (i2 + i3 * node->ne[2]) * M * N;
        if (a->type == AG_TYPE_F32) {
            cpu_sgemm(false, true, M, n1 - n0, K, B, K, (const float *)A + n0 * K, K, O + n0, N, false);
            continue;
        }
        for (int64_t t0 = n0; t0 < n1; t0 += tn) {
            const int64_t t1 = t0 + tn < n1 ? t0 + tn : n1;
            ag_fp16_to_fp32_row((const ag_fp16 *)A + t0 * K, tile, (t1 - t0) * K);
            cpu_sgemm(false, true, M, t1 - t0, K, B, K, tile, K, O + t0, N, false);
        }
    }
}

static void mm_dot(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const ag_type wt = a->type;
    const int64_t K = a->ne[0], N = a->ne[1], M = b->ne[1];
    const int64_t nbatch = node->ne[2] * node->ne[3];
    const bool quant_act = ag_vec_dot_act_type(wt) != AG_TYPE_F32;
    const size_t act_row = quant_act ? ag_row_size(AG_TYPE_Q8_0, K) : (size_t)K * sizeof(float);
    const char *act = cpu_data(b);
    if (quant_act) {
        int64_t r0, r1;
        cpu_range(ag_nrows(b), p->ith, p->nth, &r0, &r1);
        for (int64_t r = r0; r < r1; r++)
            ag_quantize_row_q8_0((const float *)cpu_data(b) + r * K, (ag_block_q8_0 *)(p->work + (size_t)r * act_row),
                                 K);
        cpu_barrier(p);
        act = p->work;
    }
    /* split weight rows (flattened over batches) unless there are too few for the threads */
    const int64_t R = nbatch * N;
    int64_t r0 = 0, r1 = R, m0 = 0, m1 = M;
    if (R / DOT_ROWS >= p->nth || M < p->nth)
        cpu_range(R, p->ith, p->nth, &r0, &r1);
    else
        cpu_range(M, p->ith, p->nth, &m0, &m1);
    for (int64_t mt = m0; mt < m1; mt += DOT_M_TILE) {
        const int64_t mt1 = mt + DOT_M_TILE < m1 ? mt + DOT_M_TILE : m1;
        for (int64_t r = r0; r < r1;) {
            const int64_t bi = r / N, n = r % N;
            int64_t nr = N - n < r1 - r ? N - n : r1 - r;
            if (nr > DOT_ROWS)
                nr = DOT_ROWS;
            const int64_t i2 = bi % node->ne[2], i3 = bi / node->ne[2];
            const char *W = a_batch(a, node, i2, i3) + n * (int64_t)a->nb[1];
            float *O = (float *)cpu_data(node) + bi * M * N + n;
            const char *act_b = act + (size_t)(bi * M) * act_row;
            for (int64_t m = mt; m < mt1; m++)
                ag_vec_dot_rows(wt, K, W, a->nb[1], (int)nr, act_b + (size_t)m * act_row, O + m * N);
            r += nr;
        }
    }
}

void cpu_op_mul_mat(const cpu_params *p, ag_tensor *node)
{
    if (use_gemm(node))
        mm_gemm(p, node);
    else
        mm_dot(p, node);
}
