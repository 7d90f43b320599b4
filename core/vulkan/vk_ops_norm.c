/* Vulkan: row-wise ops (RMS_NORM, LAYER_NORM, GROUP_NORM, SOFTMAX, ARGMAX: one workgroup per
 * row with shared-memory reductions) and ROPE. */
#include "vulkan/vk_job.h"

#include <string.h>

#define ROW_WG 256u /* power of two (tree reductions), <= 1024 (shared arrays) */
#define WG 256u

static bool is_f32c(const ag_tensor *t)
{
    return t && t->type == AG_TYPE_F32 && ag_is_contiguous(t) && (uint64_t)ag_nelements(t) <= UINT32_MAX;
}

/* Largest power of two <= ROW_WG the device allows. */
static uint32_t row_wg(const vk_ctx *ctx)
{
    uint32_t w = ROW_WG;
    while (w > vk_ctx_limits(ctx)->max_wg_invocations)
        w /= 2;
    return w;
}

static void put_f32(uint32_t *w, float f) { memcpy(w, &f, 4); }

/* A row job: one workgroup per row of row_in bytes in, row_out bytes out. */
static void row_job(vk_job *j, const vk_ctx *ctx, const char *shader, const ag_tensor *a, size_t row_in,
                    const ag_tensor *d, size_t row_out, int a_slot, int d_slot, int rows_slot, uint64_t rows)
{
    vk_job_init(j, shader, row_wg(ctx));
    vk_job_tensor(j, a, row_in, a_slot);
    vk_job_tensor(j, d, row_out, d_slot);
    j->n_slot = rows_slot;
    j->rows = true;
    j->units = rows;
}

/* ---- RMS_NORM / LAYER_NORM ---- */

static int norm(vk_ctx *ctx, const ag_tensor *n, uint32_t mode)
{
    const size_t row = (size_t)n->ne[0] * 4;
    vk_job j;
    row_job(&j, ctx, "norm", n->src[0], row, n, row, 2, 3, 1, (uint64_t)ag_nrows(n));
    j.spec[1] = mode;
    j.n_spec = 2;
    j.pc[0] = (uint32_t)n->ne[0];
    put_f32(&j.pc[4], ag_op_param_f32(n, 0));
    j.pc_words = 5;
    return vk_job_run(ctx, &j);
}

bool vk_supports_rms_norm(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return is_f32c(n->src[0]) && is_f32c(n);
}

bool vk_supports_layer_norm(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return is_f32c(n->src[0]) && is_f32c(n);
}

int vk_op_rms_norm(vk_ctx *ctx, const ag_tensor *n) { return norm(ctx, n, 0); }
int vk_op_layer_norm(vk_ctx *ctx, const ag_tensor *n) { return norm(ctx, n, 1); }

/* ---- GROUP_NORM ---- */

bool vk_supports_group_norm(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    int g = n->op_params[0];
    for (int i = 1; i <= 2; i++)
        if (n->src[i] && (!is_f32c(n->src[i]) || ag_nelements(n->src[i]) != n->ne[2]))
            return false;
    return is_f32c(n->src[0]) && is_f32c(n) && g > 0 && n->ne[2] % g == 0;
}

int vk_op_group_norm(vk_ctx *ctx, const ag_tensor *n)
{
    /* a group of one ne3 slice is ne0*ne1*(C/groups) consecutive values: one "row" each */
    const int64_t groups = n->op_params[0];
    const uint64_t gsize = (uint64_t)(n->ne[0] * n->ne[1] * (n->ne[2] / groups));
    const ag_tensor *w = n->src[1], *b = n->src[2];
    vk_job j;
    row_job(&j, ctx, "group_norm", n->src[0], gsize * 4, n, gsize * 4, 2, 3, 1, (uint64_t)(groups * n->ne[3]));
    /* weight and bias are bound whole; the source's window stands in for an absent one */
    vk_job_tensor(&j, w ? w : n->src[0], w ? 0 : gsize * 4, w ? 5 : -1);
    vk_job_tensor(&j, b ? b : n->src[0], b ? 0 : gsize * 4, b ? 6 : -1);
    j.spec[1] = w != NULL;
    j.spec[2] = b != NULL;
    j.spec[3] = n->op_params[2] != 0;
    j.n_spec = 4;
    j.pc[0] = (uint32_t)gsize;
    put_f32(&j.pc[4], ag_op_param_f32(n, 1));
    j.base_slot = 7;
    j.pc[8] = (uint32_t)groups;
    j.pc[9] = (uint32_t)(n->ne[0] * n->ne[1]);
    j.pc[10] = (uint32_t)(n->ne[2] / groups);
    j.pc_words = 11;
    return vk_job_run(ctx, &j);
}

/* ---- SOFTMAX ---- */

bool vk_supports_softmax(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    const ag_tensor *a = n->src[0], *m = n->src[1];
    if (!is_f32c(a) || !is_f32c(n))
        return false;
    if (m && (!is_f32c(m) || m->ne[0] != a->ne[0] || m->ne[1] != a->ne[1] || (m->ne[2] != 1 && m->ne[2] != a->ne[2]) ||
              m->ne[3] != 1))
        return false;
    return true;
}

int vk_op_softmax(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *a = n->src[0], *m = n->src[1];
    const size_t row = (size_t)a->ne[0] * 4;
    vk_job j;
    vk_job_init(&j, "softmax", row_wg(ctx));
    vk_job_tensor(&j, a, row, 7);
    vk_job_tensor(&j, m ? m : a, m ? 0 : row, m ? 8 : -1); /* no mask: any valid binding */
    vk_job_tensor(&j, n, row, 9);
    j.rows = true;
    j.units = (uint64_t)ag_nrows(a);
    j.pc[0] = (uint32_t)a->ne[0];
    j.pc[1] = (uint32_t)a->ne[1];
    j.pc[2] = (uint32_t)a->ne[2];
    j.n_slot = 3;
    j.pc[4] = m != NULL;
    j.pc[5] = m ? (uint32_t)m->ne[2] : 1u;
    j.pc[6] = n->op_params[1] != 0;
    put_f32(&j.pc[10], ag_op_param_f32(n, 0));
    j.base_slot = 11;
    j.pc_words = 12;
    return vk_job_run(ctx, &j);
}

/* ---- ARGMAX ---- */

bool vk_supports_argmax(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return is_f32c(n->src[0]) && n->type == AG_TYPE_I32 && ag_is_contiguous(n) &&
           ag_nelements(n) == ag_nrows(n->src[0]);
}

int vk_op_argmax(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *a = n->src[0];
    vk_job j;
    row_job(&j, ctx, "argmax", a, (size_t)a->ne[0] * 4, n, 4, 2, 3, 1, (uint64_t)ag_nrows(a));
    j.pc[0] = (uint32_t)a->ne[0];
    j.pc_words = 4;
    return vk_job_run(ctx, &j);
}

/* ---- ROPE ---- */

bool vk_supports_rope(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    const ag_tensor *a = n->src[0], *pos = n->src[1];
    int nd = n->op_params[0], mode = n->op_params[1];
    return is_f32c(a) && is_f32c(n) && pos && pos->type == AG_TYPE_I32 && ag_is_contiguous(pos) &&
           ag_nelements(pos) == a->ne[2] && nd > 0 && nd % 2 == 0 && nd <= a->ne[0] &&
           (mode == AG_ROPE_INTERLEAVED || mode == AG_ROPE_NEOX);
}

int vk_op_rope(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *a = n->src[0], *pos = n->src[1];
    const size_t row = (size_t)a->ne[0] * 4;
    vk_job j;
    vk_job_init(&j, "rope", WG);
    vk_job_tensor(&j, a, row, 6);
    vk_job_tensor(&j, pos, 0, 7);
    vk_job_tensor(&j, n, row, 8);
    j.units = (uint64_t)ag_nrows(a);
    j.n_per_unit = (uint64_t)a->ne[0];
    j.pc[0] = (uint32_t)a->ne[0];
    j.pc[1] = (uint32_t)a->ne[1];
    j.pc[2] = (uint32_t)a->ne[2];
    j.n_slot = 3;
    j.pc[4] = (uint32_t)n->op_params[0];
    j.pc[5] = n->op_params[1] == AG_ROPE_NEOX;
    put_f32(&j.pc[9], ag_op_param_f32(n, 2));
    put_f32(&j.pc[10], ag_op_param_f32(n, 3));
    j.base_slot = 11;
    j.pc_words = 12;
    return vk_job_run(ctx, &j);
}
