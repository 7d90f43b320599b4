/* Vulkan: elementwise and data-movement ops (CPY, ADD, MUL, SCALE, UNARY, SNAKE, GLU, PAD,
 * UPSAMPLE, GET_ROWS, CONCAT). Each records one dispatch of one thread per output element. */
#include "vulkan/vk_job.h"

#include <stdint.h>
#include <string.h>

#define WG 256u

static bool fits_u32(const ag_tensor *t)
{
    for (int i = 0; i < AG_MAX_DIMS; i++)
        if (t->ne[i] <= 0 || t->ne[i] > (int64_t)UINT32_MAX)
            return false;
    return (uint64_t)ag_nelements(t) <= UINT32_MAX;
}

static bool is_f32c(const ag_tensor *t) { return t && t->type == AG_TYPE_F32 && ag_is_contiguous(t) && fits_u32(t); }

static void put_f32(uint32_t *w, float f) { memcpy(w, &f, 4); }

/* ---- CPY ---- */

static bool cpy_type_ok(ag_type t) { return t == AG_TYPE_F32 || t == AG_TYPE_F16 || t == AG_TYPE_I32; }

bool vk_supports_cpy(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    const ag_tensor *a = n->src[0];
    if (!a || !cpy_type_ok(a->type) || !cpy_type_ok(n->type) || !fits_u32(n))
        return false;
    if ((a->type == AG_TYPE_I32) != (n->type == AG_TYPE_I32))
        return false;
    for (int i = 0; i < AG_MAX_DIMS; i++)
        if (a->ne[i] != n->ne[i] || a->nb[i] % ag_type_block_size(a->type) || n->nb[i] % ag_type_block_size(n->type))
            return false;
    return true;
}

typedef struct {
    uint32_t ne[4], snb[4], dnb[4], s_skew, d_skew, n;
} cpy_pc;

/* One cpy dispatch over the block whose first element is at byte a_off of a / d_off of n,
 * with extents pc->ne; each side binds only the bytes the block spans. */
static int cpy_block(vk_ctx *ctx, vk_pipeline *p, const ag_tensor *a, const ag_tensor *n, size_t a_off, size_t d_off,
                     cpy_pc *pc)
{
    const size_t sz = ag_type_block_size(a->type), dz = ag_type_block_size(n->type);
    size_t sa = sz, sd = dz;
    uint64_t total = 1;
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        sa += (size_t)(pc->ne[d] - 1) * a->nb[d];
        sd += (size_t)(pc->ne[d] - 1) * n->nb[d];
        total *= pc->ne[d];
    }
    if (total > UINT32_MAX) {
        ag_set_error("vulkan: cpy: '%s' has too many elements for one dispatch", n->name);
        return -1;
    }
    vk_binding b[2];
    uint32_t ss, ds;
    if (vk_tensor_binding_range(ctx, a, a_off, sa, &b[0], &ss) != 0 ||
        vk_tensor_binding_range(ctx, n, d_off, sd, &b[1], &ds) != 0)
        return -1;
    if (ss % sz || ds % dz) {
        ag_set_error("vulkan: cpy: '%s' is not aligned to its elements", n->name);
        return -1;
    }
    pc->s_skew = ss / (uint32_t)sz;
    pc->d_skew = ds / (uint32_t)dz;
    pc->n = (uint32_t)total;
    return vk_dispatch_1d(ctx, p, b, 2, pc, sizeof *pc, pc->n, WG);
}

int vk_op_cpy(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *a = n->src[0];
    /* 32-bit types are addressed in words, f16 in halves of words */
    const size_t sz = ag_type_block_size(a->type), dz = ag_type_block_size(n->type);
    cpy_pc pc;
    for (int i = 0; i < 4; i++) {
        pc.ne[i] = (uint32_t)n->ne[i];
        pc.snb[i] = (uint32_t)(a->nb[i] / sz);
        pc.dnb[i] = (uint32_t)(n->nb[i] / dz);
    }
    const uint32_t spec[3] = {WG, a->type == AG_TYPE_F16, n->type == AG_TYPE_F16};
    vk_pipeline *p = vk_pipeline_get(ctx, "cpy", 2, sizeof pc, spec, 3);
    if (!p)
        return -1;
    const size_t win = vk_max_window(ctx);
    if (ag_nbytes(a) <= win && ag_nbytes(n) <= win)
        return cpy_block(ctx, p, a, n, 0, 0, &pc);
    /* too big for one binding (strides may be permuted): one [ne0, ne1] slab per (i2, i3),
     * slabs cut into runs of rows that fit */
    const size_t row_a = sz + (size_t)(n->ne[0] - 1) * a->nb[0], row_d = dz + (size_t)(n->ne[0] - 1) * n->nb[0];
    if (row_a > win || row_d > win) {
        ag_set_error("vulkan: cpy: a row of '%s' exceeds maxStorageBufferRange", n->name);
        return -1;
    }
    uint64_t per = (uint64_t)n->ne[1];
    if (a->nb[1] && (win - row_a) / a->nb[1] + 1 < per)
        per = (win - row_a) / a->nb[1] + 1;
    if (n->nb[1] && (win - row_d) / n->nb[1] + 1 < per)
        per = (win - row_d) / n->nb[1] + 1;
    pc.ne[2] = pc.ne[3] = 1;
    for (int64_t i3 = 0; i3 < n->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < n->ne[2]; i2++)
            for (uint64_t r = 0; r < (uint64_t)n->ne[1]; r += per) {
                pc.ne[1] = (uint32_t)((uint64_t)n->ne[1] - r < per ? (uint64_t)n->ne[1] - r : per);
                size_t ao = (size_t)i3 * a->nb[3] + (size_t)i2 * a->nb[2] + (size_t)r * a->nb[1];
                size_t dof = (size_t)i3 * n->nb[3] + (size_t)i2 * n->nb[2] + (size_t)r * n->nb[1];
                if (cpy_block(ctx, p, a, n, ao, dof, &pc) != 0)
                    return -1;
            }
    return 0;
}

/* ---- ADD / MUL ---- */

static bool binary_ok(const ag_tensor *n)
{
    const ag_tensor *a = n->src[0], *b = n->src[1];
    if (!is_f32c(a) || !is_f32c(b) || !is_f32c(n))
        return false;
    for (int i = 0; i < AG_MAX_DIMS; i++)
        if (b->ne[i] != a->ne[i] && b->ne[i] != 1)
            return false;
    return true;
}

bool vk_supports_add(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return binary_ok(n);
}

bool vk_supports_mul(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return binary_ok(n);
}

static int binary(vk_ctx *ctx, const ag_tensor *n, uint32_t op)
{
    /* a and d split by elements; b too when it has a's shape, else (a broadcast operand,
     * typically a bias or a scale vector) bound whole */
    vk_job j;
    vk_job_init(&j, "binary", WG);
    j.spec[1] = op;
    j.n_spec = 2;
    for (int i = 0; i < 4; i++) {
        j.pc[i] = (uint32_t)n->ne[i];
        j.pc[4 + i] = (uint32_t)n->src[1]->ne[i];
    }
    vk_job_tensor(&j, n->src[0], 4, 8);
    const bool b_split = ag_same_shape(n->src[0], n->src[1]);
    vk_job_tensor(&j, n->src[1], b_split ? 4 : 0, 9);
    vk_job_tensor(&j, n, 4, 10);
    j.n_slot = 11;
    j.base_slot = 12;
    j.pc[13] = b_split;
    j.pc_words = 14;
    j.units = (uint64_t)ag_nelements(n);
    return vk_job_run(ctx, &j);
}

int vk_op_add(vk_ctx *ctx, const ag_tensor *n) { return binary(ctx, n, 0); }
int vk_op_mul(vk_ctx *ctx, const ag_tensor *n) { return binary(ctx, n, 1); }

/* ---- SCALE / UNARY ---- */

bool vk_supports_scale(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return is_f32c(n->src[0]) && is_f32c(n);
}

int vk_op_scale(vk_ctx *ctx, const ag_tensor *n)
{
    vk_job j;
    vk_job_init(&j, "scale", WG);
    vk_job_tensor(&j, n->src[0], 4, 1);
    vk_job_tensor(&j, n, 4, 2);
    j.n_slot = 0;
    put_f32(&j.pc[3], ag_op_param_f32(n, 0));
    put_f32(&j.pc[4], ag_op_param_f32(n, 1));
    j.pc_words = 5;
    j.units = (uint64_t)ag_nelements(n);
    return vk_job_run(ctx, &j);
}

bool vk_supports_unary(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    int op = ag_op_param_i32(n, 0);
    return is_f32c(n->src[0]) && is_f32c(n) && op >= 0 && op < AG_UNARY_COUNT;
}

int vk_op_unary(vk_ctx *ctx, const ag_tensor *n)
{
    vk_job j;
    vk_job_init(&j, "unary", WG);
    j.spec[1] = (uint32_t)ag_op_param_i32(n, 0);
    j.n_spec = 2;
    vk_job_tensor(&j, n->src[0], 4, 1);
    vk_job_tensor(&j, n, 4, 2);
    j.n_slot = 0;
    j.pc_words = 3;
    j.units = (uint64_t)ag_nelements(n);
    return vk_job_run(ctx, &j);
}

/* ---- SNAKE / GLU ---- */

bool vk_supports_snake(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return is_f32c(n->src[0]) && is_f32c(n->src[1]) && is_f32c(n) && ag_nelements(n->src[1]) == n->ne[1];
}

int vk_op_snake(vk_ctx *ctx, const ag_tensor *n)
{
    /* split by rows of T (the channel of a row is (base + row) % C) */
    const size_t row = (size_t)n->ne[0] * 4;
    vk_job j;
    vk_job_init(&j, "snake", WG);
    j.pc[0] = (uint32_t)n->ne[0];
    j.pc[1] = (uint32_t)n->ne[1];
    vk_job_tensor(&j, n->src[0], row, 3);
    vk_job_tensor(&j, n->src[1], 0, 4);
    vk_job_tensor(&j, n, row, 5);
    j.n_slot = 2;
    j.n_per_unit = (uint64_t)n->ne[0];
    j.base_slot = 6;
    j.pc_words = 7;
    j.units = (uint64_t)ag_nrows(n);
    return vk_job_run(ctx, &j);
}

bool vk_supports_glu(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    return is_f32c(n->src[0]) && is_f32c(n) && n->src[0]->ne[0] == 2 * n->ne[0] &&
           (n->op_params[0] == AG_GLU_SIGMOID || n->op_params[0] == AG_GLU_GELU);
}

int vk_op_glu(vk_ctx *ctx, const ag_tensor *n)
{
    vk_job j;
    vk_job_init(&j, "glu", WG);
    j.spec[1] = (uint32_t)n->op_params[0];
    j.n_spec = 2;
    j.pc[0] = (uint32_t)n->ne[0];
    vk_job_tensor(&j, n->src[0], (size_t)n->ne[0] * 8, 2);
    vk_job_tensor(&j, n, (size_t)n->ne[0] * 4, 3);
    j.n_slot = 1;
    j.n_per_unit = (uint64_t)n->ne[0];
    j.pc_words = 4;
    j.units = (uint64_t)ag_nrows(n);
    return vk_job_run(ctx, &j);
}

/* ---- PAD / UPSAMPLE / CONCAT ---- */

bool vk_supports_pad(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    const ag_tensor *a = n->src[0];
    if (!is_f32c(a) || !is_f32c(n))
        return false;
    const int32_t *p = n->op_params;
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0 || (p[4] != AG_PAD_ZERO && p[4] != AG_PAD_REFLECT))
        return false;
    if (p[4] == AG_PAD_REFLECT && (p[0] >= a->ne[0] || p[1] >= a->ne[0] || p[2] >= a->ne[1] + (p[2] == 0) ||
                                   p[3] >= a->ne[1] + (p[3] == 0)))
        return false;
    return n->ne[0] == a->ne[0] + p[0] + p[1] && n->ne[1] == a->ne[1] + p[2] + p[3];
}

int vk_op_pad(vk_ctx *ctx, const ag_tensor *n)
{
    /* split by planes (dims 2, 3), which padding does not mix */
    const ag_tensor *a = n->src[0];
    vk_job j;
    vk_job_init(&j, "pad", WG);
    const uint32_t head[7] = {(uint32_t)a->ne[0], (uint32_t)a->ne[1], (uint32_t)n->ne[0], (uint32_t)n->ne[1],
                              (uint32_t)n->op_params[0], (uint32_t)n->op_params[2],
                              (uint32_t)(n->op_params[4] == AG_PAD_REFLECT)};
    memcpy(j.pc, head, sizeof head);
    vk_job_tensor(&j, a, (size_t)(a->ne[0] * a->ne[1]) * 4, 8);
    vk_job_tensor(&j, n, (size_t)(n->ne[0] * n->ne[1]) * 4, 9);
    j.n_slot = 7;
    j.n_per_unit = (uint64_t)(n->ne[0] * n->ne[1]);
    j.pc_words = 10;
    j.units = (uint64_t)(n->ne[2] * n->ne[3]);
    return vk_job_run(ctx, &j);
}

bool vk_supports_upsample(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    const ag_tensor *a = n->src[0];
    int f0 = n->op_params[0], f1 = n->op_params[1];
    return is_f32c(a) && is_f32c(n) && f0 >= 1 && f1 >= 1 && n->ne[0] == a->ne[0] * f0 && n->ne[1] == a->ne[1] * f1;
}

int vk_op_upsample(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *a = n->src[0];
    vk_job j;
    vk_job_init(&j, "upsample", WG);
    j.pc[0] = (uint32_t)a->ne[0];
    j.pc[1] = (uint32_t)a->ne[1];
    j.pc[2] = (uint32_t)n->op_params[0];
    j.pc[3] = (uint32_t)n->op_params[1];
    vk_job_tensor(&j, a, (size_t)(a->ne[0] * a->ne[1]) * 4, 5);
    vk_job_tensor(&j, n, (size_t)(n->ne[0] * n->ne[1]) * 4, 6);
    j.n_slot = 4;
    j.n_per_unit = (uint64_t)(n->ne[0] * n->ne[1]);
    j.pc_words = 7;
    j.units = (uint64_t)(n->ne[2] * n->ne[3]);
    return vk_job_run(ctx, &j);
}

bool vk_supports_concat(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    int dim = n->op_params[0];
    if (!is_f32c(n->src[0]) || !is_f32c(n->src[1]) || !is_f32c(n) || dim < 0 || dim >= AG_MAX_DIMS)
        return false;
    for (int i = 0; i < AG_MAX_DIMS; i++)
        if (n->ne[i] != (i == dim ? n->src[0]->ne[i] + n->src[1]->ne[i] : n->src[0]->ne[i]) ||
            (i != dim && n->src[1]->ne[i] != n->ne[i]))
            return false;
    return true;
}

int vk_op_concat(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *a = n->src[0], *b = n->src[1];
    const int dim = n->op_params[0];
    vk_job j;
    vk_job_init(&j, "concat", WG);
    for (int i = 0; i < 4; i++) {
        j.pc[i] = (uint32_t)n->ne[i];
        j.pc[4 + i] = (uint32_t)a->ne[i];
    }
    j.pc[8] = (uint32_t)dim;
    /* along dims 0/1 the planes (dims 2, 3) are independent and chunk-local plane indices
     * address both sources the same way: split by planes; along dims 2/3 bind whole */
    const bool split = dim < 2;
    vk_job_tensor(&j, a, split ? (size_t)(a->ne[0] * a->ne[1]) * 4 : 0, 10);
    vk_job_tensor(&j, b, split ? (size_t)(b->ne[0] * b->ne[1]) * 4 : 0, 11);
    vk_job_tensor(&j, n, split ? (size_t)(n->ne[0] * n->ne[1]) * 4 : 0, 12);
    j.n_slot = 9;
    j.pc_words = 13;
    if (split) {
        j.n_per_unit = (uint64_t)(n->ne[0] * n->ne[1]);
        j.units = (uint64_t)(n->ne[2] * n->ne[3]);
    } else {
        j.n_per_unit = (uint64_t)ag_nelements(n);
        j.units = 1;
    }
    return vk_job_run(ctx, &j);
}

/* ---- GET_ROWS ---- */

bool vk_supports_get_rows(const vk_ctx *ctx, const ag_tensor *n)
{
    (void)ctx;
    const ag_tensor *tab = n->src[0], *ids = n->src[1];
    if (!tab || !ids || ids->type != AG_TYPE_I32 || !ag_is_contiguous(ids) || !ag_is_contiguous(tab) || !fits_u32(tab))
        return false;
    if (tab->type != AG_TYPE_F32 && tab->type != AG_TYPE_F16 && tab->type != AG_TYPE_Q8_0 && tab->type != AG_TYPE_Q4_0)
        return false;
    return is_f32c(n) && n->ne[0] == tab->ne[0] && tab->nb[1] <= UINT32_MAX;
}

int vk_op_get_rows(vk_ctx *ctx, const ag_tensor *n)
{
    const ag_tensor *tab = n->src[0], *ids = n->src[1];
    const size_t row_bytes = tab->nb[1];
    uint32_t type = tab->type == AG_TYPE_F32 ? 0 : tab->type == AG_TYPE_F16 ? 1 : tab->type == AG_TYPE_Q8_0 ? 2 : 3;
    vk_binding b[3];
    struct {
        uint32_t D, n, row_bytes, t_skew_bytes, i_skew, d_skew, row_lo, row_hi;
    } pc = {(uint32_t)n->ne[0], (uint32_t)ag_nelements(n), (uint32_t)row_bytes, 0, 0, 0, 0, 0};
    if (vk_tensor_binding_elems(ctx, ids, 4, &b[1], &pc.i_skew) != 0 ||
        vk_tensor_binding_elems(ctx, n, 4, &b[2], &pc.d_skew) != 0)
        return -1;
    const uint32_t spec[2] = {WG, type};
    vk_pipeline *p = vk_pipeline_get(ctx, "get_rows", 3, sizeof pc, spec, 2);
    if (!p)
        return -1;
    /* big tables (an LLM's embeddings) are bound in windows of rows, one dispatch each; every
     * output row is written by exactly one window */
    const uint64_t V = (uint64_t)tab->ne[1];
    const uint64_t per = vk_max_window(ctx) / row_bytes;
    if (per == 0) {
        ag_set_error("vulkan: get_rows: a row of '%s' exceeds maxStorageBufferRange", tab->name);
        return -1;
    }
    for (uint64_t lo = 0; lo < V; lo += per) {
        uint64_t cnt = V - lo < per ? V - lo : per;
        if (vk_tensor_binding_range(ctx, tab, (size_t)(lo * row_bytes), (size_t)(cnt * row_bytes), &b[0],
                                    &pc.t_skew_bytes) != 0)
            return -1;
        if (type == 0 && pc.t_skew_bytes % 4) {
            ag_set_error("vulkan: get_rows: f32 table '%s' not 4-byte aligned", tab->name);
            return -1;
        }
        pc.row_lo = (uint32_t)lo;
        pc.row_hi = (uint32_t)(lo + cnt);
        if (vk_dispatch_1d(ctx, p, b, 3, &pc, sizeof pc, pc.n, WG) != 0)
            return -1;
    }
    return 0;
}
