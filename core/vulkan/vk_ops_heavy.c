/* Heavy Vulkan ops, part 1: MUL_MAT and the convolutions.
 *  - MUL_MAT, M <= 8 (decode): mul_mat_vec.comp, a workgroup per 2 output rows (32 threads for
 *    quantized weights; AG_VK_MATVEC_ROWS / AG_VK_MATVEC_WG for sweeps, vk_limits), threads split K
 *    (by 32-blocks for Q8_0/Q4_0, read in place from their 2-byte aligned blocks), shared-memory
 *    reduction, or subgroupAdd and one shared step where the device has subgroup arithmetic
 *    (mul_mat_vec_subgroup: one barrier instead of log2(workgroup) of them); one pipeline per
 *    column count M so its loops unroll.
 *  - MUL_MAT, M > 8 (prefill): mul_mat.comp, 64x64 output tiles, 4x4 per thread, BK = 16
 *    (32 = one block for quantized weights), tile sizes as specialization constants.
 *  - Weights larger than maxStorageBufferRange are split by rows into several dispatches.
 *  - CONV1D (groups == 1) and CONV2D: the same tiled kernel as an implicit GEMM (the B tile is
 *    gathered from the input, no im2col buffer); grouped/depthwise CONV1D and
 *    CONV_TRANSPOSE1D: direct kernels, one output per thread. */
#include "vulkan/vk_ops_heavy.h"

#include <stdlib.h>
#include <string.h>

#define MATVEC_MAX_COLS 8

/* ---------------------------------------------------------------- tiled kernel */

/* Tile shapes (spec constants of mul_mat.comp): small N (e.g. few output channels) uses a
 * narrower tile so fewer threads idle. */
static void tile_config(const vk_ctx *ctx, uint32_t N, uint32_t spec[8], ag_type type, int mode)
{
    /* quantized weights: BK = 32 = one block per row per k-step (decoded a word at a time) */
    uint32_t bm = 64, bn = 64, bk = ag_type_is_quantized(type) ? 32 : 16, tm = 4, tn = 4;
    if (N <= 16) {
        bn = 16;
        tn = 2;
    }
    while ((bm / tm) * (bn / tn) > vk_ctx_limits(ctx)->max_wg_invocations) {
        bm /= 2; /* tiny devices: shrink the tile, keep per-thread work */
        if (bm < tm)
            break;
    }
    spec[0] = (bm / tm) * (bn / tn);
    spec[1] = (uint32_t)type;
    spec[2] = bm;
    spec[3] = bn;
    spec[4] = bk;
    spec[5] = tm;
    spec[6] = tn;
    spec[7] = (uint32_t)mode;
}

static int run_tiled(vk_ctx *ctx, ag_type a_type, int mode, const vk_binding bind[3], const vkh_mm_push *pc,
                     uint32_t batches)
{
    uint32_t spec[8];
    tile_config(ctx, pc->N, spec, a_type, mode);
    vk_pipeline *pl = vk_pipeline_get(ctx, "mul_mat", 3, sizeof *pc, spec, 8);
    if (!pl)
        return -1;
    return vk_dispatch(ctx, pl, bind, 3, pc, sizeof *pc, vk_ceil_div(pc->N, spec[3]), vk_ceil_div(pc->M, spec[2]),
                       batches);
}

/* ---------------------------------------------------------------- MUL_MAT */

typedef struct mv_push {
    uint32_t K, N, M;
    uint32_t a_off, a_nb1, a_nb2, a_nb3;
    uint32_t b_off, b_nb1, b_nb2, b_nb3;
    uint32_t d_off, d_nb1;
    uint32_t B2, r2, r3;
} mv_push;

bool vk_supports_mul_mat(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    if (!a || !b || node->type != AG_TYPE_F32 || b->type != AG_TYPE_F32 || !vkh_is_weight_type(a->type))
        return false;
    if (!vkh_tensor_u32(a) || !vkh_tensor_u32(b) || !vkh_tensor_u32(node) || !ag_is_contiguous(node))
        return false;
    /* rows must be contiguous (quantized rows always are); any row/batch strides */
    if (a->nb[0] != ag_type_block_size(a->type) || b->nb[0] != sizeof(float))
        return false;
    if (b->nb[1] % 4 || b->nb[2] % 4 || b->nb[3] % 4)
        return false;
    if (ag_type_is_quantized(a->type) && a->ne[0] % 32)
        return false;
    if (a->ne[0] != b->ne[0] || node->ne[0] != a->ne[1] || node->ne[1] != b->ne[1])
        return false;
    if (a->ne[2] <= 0 || a->ne[3] <= 0 || b->ne[2] % a->ne[2] || b->ne[3] % a->ne[3])
        return false;
    return (uint64_t)b->ne[2] * (uint64_t)b->ne[3] <= vk_ctx_limits(ctx)->max_groups[2];
}

/* Output rows [n0, n0 + rows) of the product; a_view covers exactly those weight rows. */
static int mul_mat_rows(vk_ctx *ctx, const ag_tensor *node, const ag_tensor *a, const ag_tensor *b, uint32_t n0)
{
    vk_binding bind[3];
    uint32_t a_off, b_off, d_off;
    const uint32_t asz = a->type == AG_TYPE_F32 ? 4 : 2;
    if (vkh_bind(ctx, a, &bind[0], asz, &a_off) != 0 || vkh_bind(ctx, b, &bind[1], 4, &b_off) != 0 ||
        vkh_bind(ctx, node, &bind[2], 4, &d_off) != 0)
        return -1;
    a_off *= asz; /* the shaders address weights in bytes */
    d_off += n0;
    const uint32_t K = (uint32_t)a->ne[0], N = (uint32_t)a->ne[1], M = (uint32_t)b->ne[1];
    const uint32_t Ntot = (uint32_t)node->ne[0];
    const uint32_t B2 = (uint32_t)b->ne[2], B3 = (uint32_t)b->ne[3];
    const uint32_t r2 = B2 / (uint32_t)a->ne[2], r3 = B3 / (uint32_t)a->ne[3];

    if (M <= MATVEC_MAX_COLS) {
        mv_push pc = {K, N, M, a_off, (uint32_t)a->nb[1], (uint32_t)a->nb[2], (uint32_t)a->nb[3], b_off,
                      (uint32_t)(b->nb[1] / 4), (uint32_t)(b->nb[2] / 4), (uint32_t)(b->nb[3] / 4), d_off, Ntot,
                      B2, r2, r3};
        /* Quantized: threads split K by 32-blocks, so fewer threads keep them busy. */
        const uint32_t nrows = vk_ctx_limits(ctx)->matvec_rows;
        const uint32_t wg = ag_type_is_quantized(a->type) ? vk_ctx_limits(ctx)->matvec_wg : 64;
        const bool vec4 = ag_type_is_quantized(a->type) && pc.b_off % 4 == 0 && pc.b_nb1 % 4 == 0 &&
                          pc.b_nb2 % 4 == 0 && pc.b_nb3 % 4 == 0;
        uint32_t spec[5] = {wg, (uint32_t)a->type, nrows, M, vec4};
        const char *shader = vk_ctx_limits(ctx)->subgroup_add ? "mul_mat_vec_subgroup" : "mul_mat_vec";
        vk_pipeline *pl = vk_pipeline_get(ctx, shader, 3, sizeof pc, spec, 5);
        if (!pl)
            return -1;
        uint32_t gx = vk_ceil_div(N, nrows);
        if (gx > vk_ctx_limits(ctx)->max_groups[0]) {
            ag_set_error("vulkan: mul_mat with %u rows exceeds the device's group limit", N);
            return -1;
        }
        return vk_dispatch(ctx, pl, bind, 3, &pc, sizeof pc, gx, 1, B2 * B3);
    }

    vkh_mm_push pc;
    memset(&pc, 0, sizeof pc);
    pc.K = K;
    pc.N = N;
    pc.M = M;
    pc.a_off = a_off;
    pc.a_nb1 = (uint32_t)a->nb[1];
    pc.a_nb2 = (uint32_t)a->nb[2];
    pc.a_nb3 = (uint32_t)a->nb[3];
    pc.b_off = b_off;
    pc.b_nb1 = (uint32_t)(b->nb[1] / 4);
    pc.b_nb2 = (uint32_t)(b->nb[2] / 4);
    pc.b_nb3 = (uint32_t)(b->nb[3] / 4);
    pc.d_off = d_off;
    pc.d_sn = 1;
    pc.d_sm = Ntot;
    pc.d_nb2 = Ntot * M;
    pc.d_nb3 = Ntot * M * B2;
    pc.B2 = B2;
    pc.r2 = r2;
    pc.r3 = r3;
    return run_tiled(ctx, a->type, 0, bind, &pc, B2 * B3);
}

/* Most bytes of weight one dispatch may bind: the device's maxStorageBufferRange, or less when
 * AG_VK_MATMUL_SPLIT_BYTES is set (a testing knob for the split path on any device). */
static uint64_t weight_range_cap(const vk_ctx *ctx)
{
    uint64_t cap = vk_ctx_limits(ctx)->max_range;
    const char *env = getenv("AG_VK_MATMUL_SPLIT_BYTES");
    if (env && *env) {
        unsigned long long v = strtoull(env, NULL, 10);
        if (v > 0 && v < cap)
            cap = v;
    }
    return cap;
}

int vk_op_mul_mat(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *a = node->src[0], *b = node->src[1];
    if (a->ne[1] == 0 || b->ne[1] == 0 || b->ne[2] * b->ne[3] == 0)
        return 0;
    const uint64_t cap = weight_range_cap(ctx), align = vk_ctx_limits(ctx)->min_align;
    if (ag_nbytes(a) + align <= cap)
        return mul_mat_rows(ctx, node, a, b, 0);
    /* A weight larger than one binding may cover (e.g. a vocabulary projection): split its
     * rows into views that fit; the pieces write disjoint rows of the output. */
    if (a->ne[2] != 1 || a->ne[3] != 1 || (uint64_t)a->nb[1] + align > cap) {
        ag_set_error("vulkan: mul_mat weight '%s' (%zu bytes) exceeds the binding limit and cannot be split",
                     a->name, ag_nbytes(a));
        return -1;
    }
    const int64_t chunk = (int64_t)((cap - align) / a->nb[1]);
    for (int64_t n0 = 0; n0 < a->ne[1]; n0 += chunk) {
        ag_tensor part = *a;
        part.ne[1] = a->ne[1] - n0 < chunk ? a->ne[1] - n0 : chunk;
        part.view_src = a->view_src ? a->view_src : (ag_tensor *)a;
        part.view_offs = (a->view_src ? a->view_offs : 0) + (size_t)n0 * a->nb[1];
        if (mul_mat_rows(ctx, node, &part, b, (uint32_t)n0) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- convolutions */

static bool conv_common_ok(const ag_tensor *node, const ag_tensor *x, const ag_tensor *w)
{
    return x && w && node->type == AG_TYPE_F32 && x->type == AG_TYPE_F32 &&
           (w->type == AG_TYPE_F32 || w->type == AG_TYPE_F16) && ag_is_contiguous(x) && ag_is_contiguous(w) &&
           ag_is_contiguous(node) && vkh_tensor_u32(x) && vkh_tensor_u32(w) && vkh_tensor_u32(node) &&
           vkh_fits_u32((uint64_t)ag_nelements(node)) && vkh_fits_u32((uint64_t)ag_nelements(x));
}

/* conv2d (and groups == 1 conv1d) as implicit GEMM: out[co, (wo, ho)] = W[co, :] . patch. */
static int conv_gemm(vk_ctx *ctx, const ag_tensor *node, const ag_tensor *x, const ag_tensor *w, uint32_t IW,
                     uint32_t IH, uint32_t Cin, uint32_t nimg, uint32_t KW, uint32_t KH, uint32_t OW, uint32_t OH,
                     uint32_t Cout, const uint32_t sp[6])
{
    vk_binding bind[3];
    uint32_t w_off, x_off, d_off;
    const uint32_t wsz = vkh_type_size(w->type);
    if (vkh_bind(ctx, w, &bind[0], wsz, &w_off) != 0 || vkh_bind(ctx, x, &bind[1], 4, &x_off) != 0 ||
        vkh_bind(ctx, node, &bind[2], 4, &d_off) != 0)
        return -1;
    vkh_mm_push pc;
    memset(&pc, 0, sizeof pc);
    pc.K = KW * KH * Cin;
    pc.N = Cout;
    pc.M = OW * OH;
    pc.a_off = w_off * wsz; /* bytes */
    pc.a_nb1 = pc.K * vkh_type_size(w->type);
    pc.b_off = x_off;
    pc.b_nb2 = IW * IH * Cin;
    pc.d_off = d_off;
    pc.d_sn = pc.M;
    pc.d_sm = 1;
    pc.d_nb2 = Cout * pc.M;
    pc.B2 = nimg;
    pc.r2 = nimg; /* every image uses weight batch 0 */
    pc.r3 = 1;
    pc.KW = KW;
    pc.KH = KH;
    pc.IW = IW;
    pc.IH = IH;
    pc.OW = OW;
    pc.s0 = sp[0];
    pc.s1 = sp[1];
    pc.p0 = sp[2];
    pc.p1 = sp[3];
    pc.d0 = sp[4];
    pc.d1 = sp[5];
    if (pc.M == 0 || Cout == 0 || nimg == 0)
        return 0;
    return run_tiled(ctx, w->type, 1, bind, &pc, nimg);
}

bool vk_supports_conv1d(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    if (!conv_common_ok(node, x, w))
        return false;
    int32_t s = ag_op_param_i32(node, 0), d = ag_op_param_i32(node, 1), g = ag_op_param_i32(node, 2);
    if (s <= 0 || d <= 0 || g <= 0 || w->ne[1] * g != x->ne[1] || w->ne[2] % g || node->ne[1] != w->ne[2] ||
        node->ne[2] != x->ne[2] || node->ne[0] != (x->ne[0] - (int64_t)d * (w->ne[0] - 1) - 1) / s + 1)
        return false;
    return (uint64_t)x->ne[2] <= vk_ctx_limits(ctx)->max_groups[2];
}

typedef struct conv1d_push {
    uint32_t T, Cin, Tout, Cout, NB, K, cin_g, cout_g, stride, dil;
    uint32_t w_off, x_off, o_off;
} conv1d_push;

int vk_op_conv1d(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    const uint32_t s = (uint32_t)ag_op_param_i32(node, 0), d = (uint32_t)ag_op_param_i32(node, 1);
    const uint32_t g = (uint32_t)ag_op_param_i32(node, 2);
    const uint32_t T = (uint32_t)x->ne[0], Cin = (uint32_t)x->ne[1], NB = (uint32_t)x->ne[2];
    const uint32_t K = (uint32_t)w->ne[0], Cout = (uint32_t)w->ne[2], Tout = (uint32_t)node->ne[0];
    if (g == 1) {
        const uint32_t sp[6] = {s, 1, 0, 0, d, 1};
        return conv_gemm(ctx, node, x, w, T, 1, Cin, NB, K, 1, Tout, 1, Cout, sp);
    }
    vk_binding bind[3];
    conv1d_push pc = {T, Cin, Tout, Cout, NB, K, Cin / g, Cout / g, s, d, 0, 0, 0};
    const uint32_t wsz = vkh_type_size(w->type);
    if (vkh_bind(ctx, w, &bind[0], wsz, &pc.w_off) != 0 || vkh_bind(ctx, x, &bind[1], 4, &pc.x_off) != 0 ||
        vkh_bind(ctx, node, &bind[2], 4, &pc.o_off) != 0)
        return -1;
    pc.w_off *= wsz; /* bytes */
    uint32_t spec[2] = {64, (uint32_t)w->type};
    vk_pipeline *pl = vk_pipeline_get(ctx, "conv1d_direct", 3, sizeof pc, spec, 2);
    if (!pl)
        return -1;
    return vk_dispatch_1d(ctx, pl, bind, 3, &pc, sizeof pc, (uint64_t)Tout * Cout * NB, 64);
}

bool vk_supports_conv_transpose1d(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    if (!conv_common_ok(node, x, w) || ag_op_param_i32(node, 0) <= 0)
        return false;
    return w->ne[2] == x->ne[1] && node->ne[1] == w->ne[1] && node->ne[2] == x->ne[2] &&
           node->ne[0] == (x->ne[0] - 1) * ag_op_param_i32(node, 0) + w->ne[0];
}

typedef struct convt_push {
    uint32_t T, Cin, Tout, Cout, NB, K, stride;
    uint32_t w_off, x_off, o_off;
} convt_push;

int vk_op_conv_transpose1d(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    convt_push pc = {(uint32_t)x->ne[0], (uint32_t)x->ne[1], (uint32_t)node->ne[0], (uint32_t)w->ne[1],
                     (uint32_t)x->ne[2], (uint32_t)w->ne[0], (uint32_t)ag_op_param_i32(node, 0), 0, 0, 0};
    vk_binding bind[3];
    const uint32_t wsz = vkh_type_size(w->type);
    if (vkh_bind(ctx, w, &bind[0], wsz, &pc.w_off) != 0 || vkh_bind(ctx, x, &bind[1], 4, &pc.x_off) != 0 ||
        vkh_bind(ctx, node, &bind[2], 4, &pc.o_off) != 0)
        return -1;
    pc.w_off *= wsz; /* bytes */
    uint32_t spec[2] = {64, (uint32_t)w->type};
    vk_pipeline *pl = vk_pipeline_get(ctx, "conv_transpose1d", 3, sizeof pc, spec, 2);
    if (!pl)
        return -1;
    return vk_dispatch_1d(ctx, pl, bind, 3, &pc, sizeof pc, (uint64_t)pc.Tout * pc.Cout * pc.NB, 64);
}

bool vk_supports_conv2d(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    if (!conv_common_ok(node, x, w))
        return false;
    for (int i = 0; i < 6; i++)
        if (ag_op_param_i32(node, i) < (i == 2 || i == 3 ? 0 : 1))
            return false;
    if (w->ne[2] != x->ne[2] || node->ne[2] != w->ne[3] || node->ne[3] != x->ne[3])
        return false;
    return (uint64_t)x->ne[3] <= vk_ctx_limits(ctx)->max_groups[2];
}

int vk_op_conv2d(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    uint32_t sp[6];
    for (int i = 0; i < 6; i++)
        sp[i] = (uint32_t)ag_op_param_i32(node, i);
    return conv_gemm(ctx, node, x, w, (uint32_t)x->ne[0], (uint32_t)x->ne[1], (uint32_t)x->ne[2],
                     (uint32_t)x->ne[3], (uint32_t)w->ne[0], (uint32_t)w->ne[1], (uint32_t)node->ne[0],
                     (uint32_t)node->ne[1], (uint32_t)w->ne[3], sp);
}
