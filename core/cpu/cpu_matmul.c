/* MUL_MAT: out[n,m] = dot(a row n, b row m) per batch.
 *  - Q8_0/Q4_0 2-D weights: packed row groups (quant.h) times activation rows prepared once per
 *    node, or once for a run of nodes sharing the activation (q/k/v, gate/up). Weights of a
 *    model file come packed from cpu_repack.c; others are packed chunk by chunk when enough
 *    activation rows share the cost. One kernel serves decode (one row: a matvec streaming
 *    the weights) and prefill (an int8 GEMM, activation tiles against cached weight chunks);
 *  - F16/F32 2-D weights: packed groups too (F16 widened in registers), an AVX-512/AVX2 GEMM
 *    against the F32 activation rows (model weights packed once; others per chunk from 16 rows);
 *  - other F32/F16 weights with many activation rows: sgemm (F16 rows converted in tiles);
 *  - otherwise the dot kernels of quant.h, several weight rows at once; activations are first
 *    quantized to Q8_0 when the weight type wants it.
 * Few activation rows (decode) are prepared by every thread for itself, in its own scratch:
 * no barrier, and the next node of a run finds them there. Packed work is handed out in chunks
 * from a counter, so a thread the OS delays does not hold the node up: the other takes over. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <string.h>

#define GEMM_MIN_M 16     /* fewer activation rows: dot kernels beat sgemm setup */
#define DOT_ROWS 16       /* weight rows per dot call (register blocking in quant) */
#define DOT_M_TILE 128    /* activation rows kept hot while weight blocks stream */
#define F16_TILE_BYTES (1u << 20)
#define PRIV_M 4          /* up to this many activation rows: prepared privately by each thread */
#define PACK_MIN_M 8      /* from this many rows, weights not packed yet are packed per chunk */
#define GEMV_GROUPS 16    /* row groups per work item with few activation rows (256 rows): long runs
                             for the prefetchers; 7B Q4_0 decode 9.40 -> 10.04 tok/s vs 4 groups
                             (5 alternating pairs, each won); fewer where threads would idle */
#define GEMM_GROUPS 4     /* row groups per work item of the GEMM: ~150-400 KB, kept in L2 */

#define FPACK_MIN_M 16    /* F16/F32 weights not packed yet: packed per chunk from this many rows */
#define FCHUNK_BYTES (512u << 10) /* F16/F32 weights per work item, kept in L2 across activation tiles */

typedef enum { MM_SGEMM, MM_PACKED, MM_FPACKED, MM_DOT } mm_kind;

static bool use_gemm(const ag_tensor *node)
{
    const ag_type wt = node->src[0]->type;
    return (wt == AG_TYPE_F32 || wt == AG_TYPE_F16) && node->ne[1] >= GEMM_MIN_M && cpu_have_blas();
}

static bool is_quant(ag_type t) { return t == AG_TYPE_Q8_0 || t == AG_TYPE_Q4_0; }

static bool is_float(ag_type t) { return t == AG_TYPE_F32 || t == AG_TYPE_F16; }

static mm_kind kind_of(const ag_tensor *node, bool packed)
{
    const ag_tensor *a = node->src[0];
    if (is_float(a->type) && a->ne[2] == 1 && a->ne[3] == 1 && (packed || ag_nrows(node->src[1]) >= FPACK_MIN_M))
        return MM_FPACKED;
    if (use_gemm(node))
        return MM_SGEMM;
    if (is_quant(a->type) && a->ne[2] == 1 && a->ne[3] == 1 && (packed || ag_nrows(node->src[1]) >= PACK_MIN_M))
        return MM_PACKED;
    return MM_DOT;
}

static int64_t f16_tile_rows(int64_t K)
{
    int64_t tn = (int64_t)(F16_TILE_BYTES / ((size_t)K * sizeof(float)));
    return tn < 16 ? 16 : tn;
}

/* Row groups of F16/F32 weights per work item: an even number (the kernels take two at a time). */
static int64_t fchunk_groups(ag_type t, int64_t K)
{
    const int64_t g = (int64_t)(FCHUNK_BYTES / ag_packed_size(t, AG_PACK_ROWS, K));
    return g < 2 ? 2 : g / 2 * 2;
}

void cpu_mul_mat_scratch(const ag_tensor *node, bool packed, int nth, size_t *shared, size_t *priv)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const int64_t K = a->ne[0], M = ag_nrows(b);
    *shared = *priv = 0;
    switch (kind_of(node, packed)) {
    case MM_SGEMM:
        if (a->type == AG_TYPE_F16) {
            int64_t tn = f16_tile_rows(K);
            if (tn > a->ne[1])
                tn = a->ne[1];
            *shared = (size_t)nth * cpu_align((size_t)tn * (size_t)K * sizeof(float));
        }
        return;
    case MM_PACKED: {
        const size_t act = (size_t)M * ag_packed_act_size(K);
        if (M <= PRIV_M)
            *priv = cpu_align(act);
        else
            *shared = act;
        if (!packed) /* chunks packed on the fly */
            *priv += GEMM_GROUPS * ag_packed_size(a->type, AG_PACK_ROWS, K);
        return;
    }
    case MM_FPACKED:
        if (!packed)
            *priv = fchunk_groups(a->type, K) * ag_packed_size(a->type, AG_PACK_ROWS, K);
        return;
    case MM_DOT:
        if (ag_vec_dot_act_type(a->type) != AG_TYPE_F32) {
            const size_t act = (size_t)M * ag_row_size(AG_TYPE_Q8_0, K);
            if (M <= PRIV_M)
                *priv = cpu_align(act);
            else
                *shared = act;
        }
        return;
    }
}

bool cpu_mul_mat_same_act(const ag_tensor *a, bool a_packed, const ag_tensor *b, bool b_packed)
{
    const mm_kind ka = kind_of(a, a_packed), kb = kind_of(b, b_packed);
    const ag_tensor *xa = a->src[1], *xb = b->src[1];
    if (ka != kb || ka == MM_SGEMM || ka == MM_FPACKED || xa != xb || a->src[0]->ne[0] != b->src[0]->ne[0])
        return false;
    if (ka == MM_PACKED) /* the offset corrections depend on the weight type */
        return a->src[0]->type == b->src[0]->type;
    return ag_vec_dot_act_type(a->src[0]->type) == AG_TYPE_Q8_0 && ag_vec_dot_act_type(b->src[0]->type) == AG_TYPE_Q8_0;
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

/* 2-D Q8_0/Q4_0 weights as packed groups; b's rows (all batches) are the activation rows. */
static void mm_packed(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const ag_type wt = a->type;
    const int64_t K = a->ne[0], N = a->ne[1], M = ag_nrows(b);
    const size_t arow = ag_packed_act_size(K);
    const bool priv = M <= PRIV_M;
    char *act = priv ? p->priv : p->work;
    if (!p->plan->act_ready) {
        const float *B = (const float *)cpu_data(b);
        int64_t r0 = 0, r1 = M;
        if (!priv)
            cpu_range(M, p->ith, p->nth, &r0, &r1);
        for (int64_t r = r0; r < r1; r++)
            ag_packed_act_row(wt, B + r * K, K, act + (size_t)r * arow);
        if (!priv)
            cpu_barrier(p);
    }
    const void *packed = p->plan->packed;
    const size_t gbytes = ag_packed_size(wt, AG_PACK_ROWS, K);
    const int64_t ngroups = (N + AG_PACK_ROWS - 1) / AG_PACK_ROWS;
    int64_t G = priv ? GEMV_GROUPS : GEMM_GROUPS;
    /* long runs, but still ~4 items a thread so that many threads share a small matrix */
    while (priv && G > 1 && (ngroups + G - 1) / G < 4 * p->nth)
        G /= 2;
    const int64_t ngc = (ngroups + G - 1) / G;
    /* too few weight chunks to keep every thread busy: split the activation rows too */
    int64_t nmc = 1;
    if (!priv && ngc < 4 * p->nth) {
        nmc = (4 * p->nth + ngc - 1) / ngc;
        if (nmc > (M + 15) / 16)
            nmc = (M + 15) / 16;
    }
    const int64_t MC = (M + nmc - 1) / nmc;
    nmc = (M + MC - 1) / MC;
    char *pbuf = p->priv + (priv ? cpu_align((size_t)M * arow) : 0);
    const char *A = cpu_data(a);
    float *O = (float *)cpu_data(node);
    for (int64_t u; (u = atomic_fetch_add(&p->plan->next, 1)) < ngc * nmc;) {
        const int64_t gc = u / nmc, mc = u % nmc;
        const int64_t n0 = gc * G * AG_PACK_ROWS, nr = N - n0 < G * AG_PACK_ROWS ? N - n0 : G * AG_PACK_ROWS;
        const int64_t m0 = mc * MC, mr = M - m0 < MC ? M - m0 : MC;
        const void *W = pbuf; /* no offset on a null pointer (UB): packed is null when packing here */
        if (packed)
            W = (const char *)packed + (size_t)(gc * G) * gbytes;
        else
            ag_pack_rows(wt, A + (size_t)n0 * a->nb[1], a->nb[1], nr, K, pbuf);
        ag_packed_matmul(wt, K, W, nr, act + (size_t)m0 * arow, arow, mr, O + (size_t)m0 * (size_t)N + n0, (size_t)N);
    }
}

/* 2-D F16/F32 weights as packed groups against the F32 activation rows as they are. */
static void mm_fpacked(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    const ag_type wt = a->type;
    const int64_t K = a->ne[0], N = a->ne[1], M = ag_nrows(b);
    const void *packed = p->plan->packed;
    const size_t gbytes = ag_packed_size(wt, AG_PACK_ROWS, K);
    const int64_t ngroups = (N + AG_PACK_ROWS - 1) / AG_PACK_ROWS;
    const int64_t G = fchunk_groups(wt, K), ngc = (ngroups + G - 1) / G;
    int64_t nmc = 1;
    if (ngc < 4 * p->nth) {
        nmc = (4 * p->nth + ngc - 1) / ngc;
        if (nmc > (M + 11) / 12)
            nmc = (M + 11) / 12;
    }
    const int64_t MC = (M + nmc - 1) / nmc;
    nmc = (M + MC - 1) / MC;
    const float *B = (const float *)cpu_data(b);
    const char *A = cpu_data(a);
    float *O = (float *)cpu_data(node);
    for (int64_t u; (u = atomic_fetch_add(&p->plan->next, 1)) < ngc * nmc;) {
        const int64_t gc = u / nmc, mc = u % nmc;
        const int64_t n0 = gc * G * AG_PACK_ROWS, nr = N - n0 < G * AG_PACK_ROWS ? N - n0 : G * AG_PACK_ROWS;
        const int64_t m0 = mc * MC, mr = M - m0 < MC ? M - m0 : MC;
        const void *W = p->priv; /* as above */
        if (packed)
            W = (const char *)packed + (size_t)(gc * G) * gbytes;
        else
            ag_pack_rows(wt, A + (size_t)n0 * a->nb[1], a->nb[1], nr, K, p->priv);
        ag_packed_matmul_f(wt, K, W, nr, B + (size_t)m0 * (size_t)K, (size_t)K, mr, O + (size_t)m0 * (size_t)N + n0,
                           (size_t)N);
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
        const bool priv = ag_nrows(b) <= PRIV_M;
        char *dst = priv ? p->priv : p->work;
        if (!p->plan->act_ready) {
            int64_t r0 = 0, r1 = ag_nrows(b);
            if (!priv)
                cpu_range(ag_nrows(b), p->ith, p->nth, &r0, &r1);
            for (int64_t r = r0; r < r1; r++)
                ag_quantize_row_q8_0((const float *)cpu_data(b) + r * K, (ag_block_q8_0 *)(dst + (size_t)r * act_row),
                                     K);
            if (!priv)
                cpu_barrier(p);
        }
        act = dst;
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
    switch (kind_of(node, p->plan->packed != NULL)) {
    case MM_SGEMM: mm_gemm(p, node); break;
    case MM_PACKED: mm_packed(p, node); break;
    case MM_FPACKED: mm_fpacked(p, node); break;
    case MM_DOT: mm_dot(p, node); break;
    }
}
