/* Heavy Vulkan ops, part 2: LSTM (the whole time loop in one dispatch), VQ_ARGMIN and
 * flash ATTENTION. */
#include "vulkan/vk_ops_heavy.h"

#include <stdlib.h>
#include <string.h>

#define LSTM_LOOP_MAX_H 256
#define LSTM_LOOP_MAX_ITERS 32768

/* ---------------------------------------------------------------- LSTM */

typedef struct lstm_push {
    uint32_t H, T, reverse;
    uint32_t w_off, gx_off, o_off;
} lstm_push;

static uint32_t lstm_hmax(uint32_t H) { return (H + 63) / 64 * 64; }

bool vk_supports_lstm(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *gx = node->src[0], *w = node->src[1];
    if (!gx || !w || gx->type != AG_TYPE_F32 || (w->type != AG_TYPE_F32 && w->type != AG_TYPE_F16) ||
        node->type != AG_TYPE_F32)
        return false;
    if (!ag_is_contiguous(gx) || !ag_is_contiguous(w) || !ag_is_contiguous(node) || !vkh_tensor_u32(gx) ||
        !vkh_tensor_u32(w) || !vkh_fits_u32((uint64_t)ag_nelements(gx)))
        return false;
    (void)ctx;
    return w->ne[1] == 4 * w->ne[0] && gx->ne[0] == w->ne[1] && node->ne[0] == w->ne[0] && node->ne[1] == gx->ne[1];
}

typedef struct lstm_step_push {
    uint32_t H, t, t_prev, first;
    uint32_t w_off, gx_off, o_off;
} lstm_step_push;

/* Large H: one dispatch per step over H/NU workgroups (c kept in scratch memory). */
static int lstm_steps(vk_ctx *ctx, const ag_tensor *w, const vk_binding bind[3], const lstm_push *pc)
{
    vk_binding b4[4] = {bind[0], bind[1], bind[2], {0}};
    if (vk_scratch(ctx, (VkDeviceSize)pc->H * 4, &b4[3]) != 0)
        return -1;
    const uint32_t nu = 2, wg = 64;
    uint32_t spec[3] = {wg, (uint32_t)w->type, nu};
    vk_pipeline *pl = vk_pipeline_get(ctx, "lstm_step", 4, sizeof(lstm_step_push), spec, 3);
    if (!pl)
        return -1;
    for (uint32_t s = 0; s < pc->T; s++) {
        uint32_t t = pc->reverse ? pc->T - 1 - s : s;
        uint32_t tp = pc->reverse ? t + 1 : t - 1;
        lstm_step_push sp = {pc->H, t, s ? tp : 0, s == 0, pc->w_off, pc->gx_off, pc->o_off};
        if (s)
            vk_barrier(ctx); /* h_{t-1} and c written by the previous step */
        if (vk_dispatch(ctx, pl, b4, 4, &sp, sizeof sp, vk_ceil_div(pc->H, nu), 1, 1) != 0)
            return -1;
    }
    return 0;
}

/* Which LSTM strategy. The in-shader time loop (one workgroup, no per-step dispatch cost) only
 * suits small problems: one workgroup cannot fill a GPU, and llvmpipe stops any invocation
 * after 65535 loop iterations in total, which the loop kernel (T * 4 * H * units-per-thread
 * iterations) must stay well under. Everything else runs one dispatch per step.
 * AG_VK_LSTM=loop|step picks one where both are possible (tests, benches). */
static bool lstm_use_loop(const vk_ctx *ctx, uint32_t H, uint32_t T, uint32_t upt)
{
    if ((uint64_t)lstm_hmax(H) * 4 > vk_ctx_limits(ctx)->max_shared)
        return false; /* h_{t-1} must fit shared memory */
    if ((uint64_t)T * 4 * H * upt > LSTM_LOOP_MAX_ITERS)
        return false;
    const char *env = getenv("AG_VK_LSTM");
    if (env && !strcmp(env, "loop"))
        return true;
    if (env && !strcmp(env, "step"))
        return false;
    return H <= LSTM_LOOP_MAX_H;
}

int vk_op_lstm(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *gx = node->src[0], *w = node->src[1];
    const uint32_t H = (uint32_t)w->ne[0], T = (uint32_t)gx->ne[1];
    lstm_push pc = {H, T, ag_op_param_i32(node, 0) != 0, 0, 0, 0};
    vk_binding bind[3];
    const uint32_t wsz = vkh_type_size(w->type);
    if (vkh_bind(ctx, w, &bind[0], wsz, &pc.w_off) != 0 || vkh_bind(ctx, gx, &bind[1], 4, &pc.gx_off) != 0 ||
        vkh_bind(ctx, node, &bind[2], 4, &pc.o_off) != 0)
        return -1;
    pc.w_off *= wsz; /* bytes */
    if (H == 0 || T == 0)
        return 0;
    uint32_t wg = (H + 31) / 32 * 32;
    uint32_t max_wg = vk_ctx_limits(ctx)->max_wg_invocations;
    if (wg > 1024)
        wg = 1024;
    while (wg > max_wg)
        wg /= 2;
    if (!lstm_use_loop(ctx, H, T, vk_ceil_div(H, wg)))
        return lstm_steps(ctx, w, bind, &pc);
    uint32_t spec[4] = {wg, (uint32_t)w->type, vk_ceil_div(H, wg), lstm_hmax(H)};
    vk_pipeline *pl = vk_pipeline_get(ctx, "lstm", 3, sizeof pc, spec, 4);
    if (!pl)
        return -1;
    return vk_dispatch(ctx, pl, bind, 3, &pc, sizeof pc, 1, 1, 1);
}

/* ---------------------------------------------------------------- VQ_ARGMIN */

typedef struct vq_push {
    uint32_t D, K, T;
    uint32_t x_off, c_off, o_off;
} vq_push;

bool vk_supports_vq_argmin(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *c = node->src[1];
    (void)ctx;
    return x && c && x->type == AG_TYPE_F32 && c->type == AG_TYPE_F32 && node->type == AG_TYPE_I32 &&
           ag_is_contiguous(x) && ag_is_contiguous(c) && ag_is_contiguous(node) && vkh_tensor_u32(x) &&
           vkh_tensor_u32(c) && vkh_fits_u32((uint64_t)ag_nelements(x)) && vkh_fits_u32((uint64_t)ag_nelements(c)) &&
           x->ne[0] == c->ne[0] && ag_nelements(node) == ag_nrows(x);
}

int vk_op_vq_argmin(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *x = node->src[0], *c = node->src[1];
    vq_push pc = {(uint32_t)x->ne[0], (uint32_t)c->ne[1], (uint32_t)ag_nrows(x), 0, 0, 0};
    vk_binding bind[3];
    if (vkh_bind(ctx, x, &bind[0], 4, &pc.x_off) != 0 || vkh_bind(ctx, c, &bind[1], 4, &pc.c_off) != 0 ||
        vkh_bind(ctx, node, &bind[2], 4, &pc.o_off) != 0)
        return -1;
    if (pc.T == 0)
        return 0;
    if (pc.K == 0) {
        ag_set_error("vulkan: vq_argmin with an empty codebook");
        return -1;
    }
    /* 128 threads: a codebook of K entries costs each invocation K/128 * D loop iterations
     * (llvmpipe stops an invocation after 65535) */
    uint32_t spec[1] = {128};
    if (spec[0] > vk_ctx_limits(ctx)->max_wg_invocations)
        spec[0] = 64;
    vk_pipeline *pl = vk_pipeline_get(ctx, "vq_argmin", 3, sizeof pc, spec, 1);
    if (!pl)
        return -1;
    uint32_t gx = pc.T, lim = vk_ctx_limits(ctx)->max_groups[0];
    if (gx > lim)
        gx = lim;
    return vk_dispatch(ctx, pl, bind, 3, &pc, sizeof pc, gx, vk_ceil_div(pc.T, gx), 1);
}

/* ---------------------------------------------------------------- ATTENTION */

typedef struct att_push {
    uint32_t D, Dv, Nq, Nk, H, gqa;
    uint32_t q_off, q_nb1, q_nb2;
    uint32_t k_off, k_nb1, k_nb2;
    uint32_t v_off, v_nb1, v_nb2;
    uint32_t m_off, m_nb1, has_mask, causal;
    float scale;
    uint32_t o_off, chunk, n_split;
} att_push;

typedef struct att_combine_push {
    uint32_t Dv, H, Nq, n_split, o_off;
} att_combine_push;

/* Key splits for decode-like shapes: a few query tiles over many keys would leave most of a
 * GPU idle (one workgroup per head), so keys are cut into chunks of whole tiles until about
 * ATT_TARGET_GROUPS workgroups exist, each chunk at least ATT_MIN_CHUNK_TILES tiles long.
 * AG_VK_ATTN_SPLIT=N forces N splits (tests). */
#define ATT_TARGET_GROUPS 256
#define ATT_MIN_CHUNK_TILES 4
static uint32_t att_splits(uint32_t groups, uint32_t Nk, uint32_t bc, uint32_t *chunk)
{
    uint32_t n = groups >= ATT_TARGET_GROUPS ? 1 : vk_ceil_div(ATT_TARGET_GROUPS, groups);
    uint32_t max_n = vk_ceil_div(Nk, ATT_MIN_CHUNK_TILES * bc);
    const char *env = getenv("AG_VK_ATTN_SPLIT");
    if (env && atoi(env) > 0)
        n = max_n = (uint32_t)atoi(env);
    if (n > max_n)
        n = max_n;
    if (n <= 1)
        return 1;
    *chunk = vk_ceil_div(vk_ceil_div(Nk, n), bc) * bc;
    return vk_ceil_div(Nk, *chunk);
}

typedef struct att_cfg {
    uint32_t wg, br, bc, dmax, dvmax, opt;
} att_cfg;

/* Rows per workgroup (BR) and keys per tile (BC) so that Q, K, V tiles and scores fit the
 * device's shared memory (32 KiB on lavapipe; at least 16 KiB anywhere). */
static bool att_config(const vk_ctx *ctx, uint32_t D, uint32_t Dv, uint32_t Nq, att_cfg *c)
{
    const vk_limits *lim = vk_ctx_limits(ctx);
    c->dmax = (D + 15) / 16 * 16; /* few pipeline variants, little padding */
    c->dvmax = (Dv + 15) / 16 * 16;
    uint32_t br0 = Nq <= 1 ? 1 : Nq < 64 ? 8 : 16;
    for (uint32_t br = br0; br >= 1; br /= 2) {
        for (uint32_t bc = 64; bc >= 8; bc /= 2) {
            uint64_t bytes = 4ull * (br * c->dmax + bc * (c->dmax + c->dvmax) + br * bc + 3 * br);
            if (bytes > lim->max_shared)
                continue;
            c->br = br;
            c->bc = bc;
            c->wg = br == 1 ? 64 : 128;
            if (c->wg > lim->max_wg_invocations)
                c->wg = lim->max_wg_invocations;
            c->opt = vk_ceil_div((uint64_t)br * c->dvmax, c->wg);
            return c->wg >= br;
        }
    }
    return false;
}

static bool elem_strides_ok(const ag_tensor *t, size_t es)
{
    return t->nb[0] == es && t->nb[1] % es == 0 && t->nb[2] % es == 0 && vkh_tensor_u32(t);
}

bool vk_supports_attention(const vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *q = node->src[0], *k = node->src[1], *v = node->src[2], *m = node->src[3];
    if (!q || !k || !v || q->type != AG_TYPE_F32 || node->type != AG_TYPE_F32 || !ag_is_contiguous(node))
        return false;
    if ((k->type != AG_TYPE_F32 && k->type != AG_TYPE_F16) || (v->type != AG_TYPE_F32 && v->type != AG_TYPE_F16))
        return false;
    if (!elem_strides_ok(q, 4) || !elem_strides_ok(k, vkh_type_size(k->type)) ||
        !elem_strides_ok(v, vkh_type_size(v->type)))
        return false;
    if (q->ne[3] != 1 || k->ne[3] != 1 || v->ne[3] != 1 || k->ne[2] <= 0 || q->ne[2] % k->ne[2])
        return false;
    if (m && (m->type != AG_TYPE_F32 || m->nb[0] != 4 || m->nb[1] % 4 || !vkh_tensor_u32(m) || m->ne[0] < k->ne[1] ||
              m->ne[1] < q->ne[1]))
        return false;
    if (k->ne[0] != q->ne[0] || v->ne[1] != k->ne[1] || v->ne[2] != k->ne[2] || node->ne[0] != v->ne[0] ||
        node->ne[1] != q->ne[2] || node->ne[2] != q->ne[1])
        return false;
    if ((uint64_t)q->ne[2] > vk_ctx_limits(ctx)->max_groups[1])
        return false;
    att_cfg c;
    return att_config(ctx, (uint32_t)q->ne[0], (uint32_t)v->ne[0], (uint32_t)q->ne[1], &c);
}

int vk_op_attention(vk_ctx *ctx, const ag_tensor *node)
{
    const ag_tensor *q = node->src[0], *k = node->src[1], *v = node->src[2], *m = node->src[3];
    const uint32_t ksz = vkh_type_size(k->type), vsz = vkh_type_size(v->type);
    att_push pc = {0};
    pc.D = (uint32_t)q->ne[0];
    pc.Dv = (uint32_t)v->ne[0];
    pc.Nq = (uint32_t)q->ne[1];
    pc.Nk = (uint32_t)k->ne[1];
    pc.H = (uint32_t)q->ne[2];
    pc.gqa = (uint32_t)(q->ne[2] / k->ne[2]);
    pc.q_nb1 = (uint32_t)(q->nb[1] / 4);
    pc.q_nb2 = (uint32_t)(q->nb[2] / 4);
    pc.k_nb1 = (uint32_t)(k->nb[1] / ksz);
    pc.k_nb2 = (uint32_t)(k->nb[2] / ksz);
    pc.v_nb1 = (uint32_t)(v->nb[1] / vsz);
    pc.v_nb2 = (uint32_t)(v->nb[2] / vsz);
    pc.has_mask = m != NULL;
    pc.m_nb1 = m ? (uint32_t)(m->nb[1] / 4) : 0;
    pc.causal = ag_op_param_i32(node, 1) != 0;
    pc.scale = ag_op_param_f32(node, 0);
    vk_binding bind[6];
    if (vkh_bind(ctx, q, &bind[0], 4, &pc.q_off) != 0 || vkh_bind(ctx, k, &bind[1], ksz, &pc.k_off) != 0 ||
        vkh_bind(ctx, v, &bind[2], vsz, &pc.v_off) != 0 ||
        vkh_bind(ctx, m ? m : q, &bind[3], 4, &pc.m_off) != 0 || /* q stands in for "no mask" */
        vkh_bind(ctx, node, &bind[4], 4, &pc.o_off) != 0)
        return -1;
    if (pc.Nq == 0 || pc.H == 0 || pc.Dv == 0)
        return 0;
    att_cfg c;
    if (!att_config(ctx, pc.D, pc.Dv, pc.Nq, &c)) {
        ag_set_error("vulkan: attention head size %u/%u does not fit shared memory", pc.D, pc.Dv);
        return -1;
    }
    uint32_t gx = vk_ceil_div(pc.Nq, c.br);
    if (gx > vk_ctx_limits(ctx)->max_groups[0]) {
        ag_set_error("vulkan: attention with %u queries exceeds the device's group limit", pc.Nq);
        return -1;
    }
    pc.chunk = pc.Nk;
    pc.n_split = att_splits(gx * pc.H, pc.Nk, c.bc, &pc.chunk);
    if (pc.n_split > vk_ctx_limits(ctx)->max_groups[2])
        pc.n_split = 1;
    bind[5] = bind[4]; /* unused unless split */
    if (pc.n_split > 1 &&
        vk_scratch(ctx, (VkDeviceSize)pc.Nq * pc.H * pc.n_split * (pc.Dv + 2) * 4, &bind[5]) != 0)
        return -1;
    uint32_t spec[9] = {c.wg, k->type == AG_TYPE_F16, v->type == AG_TYPE_F16, c.br, c.bc, c.dmax, c.dvmax, c.opt,
                        pc.n_split > 1};
    vk_pipeline *pl = vk_pipeline_get(ctx, "attention", 6, sizeof pc, spec, 9);
    if (!pl || vk_dispatch(ctx, pl, bind, 6, &pc, sizeof pc, gx, pc.H, pc.n_split) != 0)
        return -1;
    if (pc.n_split == 1)
        return 0;
    vk_barrier(ctx);
    att_combine_push cp = {pc.Dv, pc.H, pc.Nq, pc.n_split, pc.o_off};
    vk_binding cb[2] = {bind[5], bind[4]};
    uint32_t cspec[1] = {64};
    vk_pipeline *pc2 = vk_pipeline_get(ctx, "attention_combine", 2, sizeof cp, cspec, 1);
    if (!pc2)
        return -1;
    return vk_dispatch_1d(ctx, pc2, cb, 2, &cp, sizeof cp, (uint64_t)pc.Dv * pc.H * pc.Nq, 64);
}
