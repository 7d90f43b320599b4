/* Vulkan backend: executes a graph as one command buffer, with barriers only where a node
 * touches bytes that an earlier node (since the last barrier) wrote, or writes bytes that an
 * earlier node read (the planner reuses memory, so write-after-read hazards are real). */
#include "vulkan/vk_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int range_add(vk_range_set *s, vk_range r)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        vk_range *nr = realloc(s->r, cap * sizeof *nr);
        if (!nr) {
            ag_set_error("vulkan: out of host memory");
            return -1;
        }
        s->r = nr;
        s->cap = cap;
    }
    s->r[s->n++] = r;
    return 0;
}

static bool range_hits(const vk_range_set *s, vk_range r)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].buf == r.buf && s->r[i].lo < r.hi && r.lo < s->r[i].hi)
            return true;
    return false;
}

static vk_range range_of(const ag_tensor *t)
{
    const ag_tensor *s = t->view_src ? t->view_src : t;
    size_t off = t->view_src ? t->view_src->offset + t->view_offs : t->offset;
    const vk_buf *vb = s->buffer->impl;
    return (vk_range){vb->buf, off, off + ag_nbytes(t)};
}

bool vk_supports_node(ag_backend *be, const ag_tensor *node)
{
    if (node->op == AG_OP_NONE || node->op == AG_OP_VIEW)
        return true;
    const vk_op_entry *e = vk_op_lookup(node->op);
    return e && e->supports(be->impl, node);
}

static void scratch_release(vk_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_scratch; i++)
        vk_buffer_free(ctx->scratch[i]);
    ctx->n_scratch = 0;
}

/* Which sources a node reads (CPY's src[1] is only its destination). */
static int n_read_srcs(const ag_tensor *n) { return n->op == AG_OP_CPY && n->src[1] ? 1 : AG_MAX_SRC; }

static int record_node(vk_ctx *ctx, const ag_tensor *n)
{
    const vk_op_entry *e = vk_op_lookup(n->op);
    if (!e || !e->supports(ctx, n)) {
        ag_set_error("vulkan: op %s of node '%s' (%s [%lld,%lld,%lld,%lld]) is not supported by the Vulkan backend",
                     ag_op_name(n->op), n->name, ag_type_name(n->type), (long long)n->ne[0], (long long)n->ne[1],
                     (long long)n->ne[2], (long long)n->ne[3]);
        return -1;
    }
    vk_range w = range_of(n);
    vk_range rd[AG_MAX_SRC];
    int nr = 0;
    for (int i = 0; i < n_read_srcs(n); i++)
        if (n->src[i])
            rd[nr++] = range_of(n->src[i]);
    bool hazard = range_hits(&ctx->written, w) || range_hits(&ctx->read, w);
    for (int i = 0; i < nr && !hazard; i++)
        hazard = range_hits(&ctx->written, rd[i]);
    if (hazard)
        vk_barrier(ctx);
    if (e->run(ctx, n) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ag_last_error());
        ag_set_error("vulkan: node '%s' (%s): %s", n->name, ag_op_name(n->op), msg);
        return -1;
    }
    /* recorded after run(): an op's own vk_barrier() clears the sets, its last dispatch still
     * wrote w and read rd */
    if (range_add(&ctx->written, w) != 0)
        return -1;
    for (int i = 0; i < nr; i++)
        if (range_add(&ctx->read, rd[i]) != 0)
            return -1;
    return 0;
}

static int compute_unlocked(ag_backend *be, ag_graph *g)
{
    vk_ctx *ctx = be->impl;
    size_t nn = ag_graph_n_nodes(g);
    /* check everything before recording, so a failure names the op and nothing runs */
    for (size_t i = 0; i < nn; i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        if (!vk_supports_node(be, n)) {
            ag_set_error("vulkan: op %s of node '%s' (%s [%lld,%lld,%lld,%lld]) is not supported by the Vulkan backend",
                         ag_op_name(n->op), n->name, ag_type_name(n->type), (long long)n->ne[0],
                         (long long)n->ne[1], (long long)n->ne[2], (long long)n->ne[3]);
            return -1;
        }
        for (int s = 0; s < AG_MAX_SRC; s++) {
            const ag_tensor *t = n->src[s];
            if (!t)
                continue;
            const ag_tensor *base = t->view_src ? t->view_src : t;
            if (!base->buffer || base->buffer->backend != be) {
                ag_set_error("vulkan: tensor '%s' (source of '%s') is not in a Vulkan buffer of this backend", t->name,
                             n->name);
                return -1;
            }
        }
        const ag_tensor *base = n->view_src ? n->view_src : n;
        if (base->buffer->backend != be) {
            ag_set_error("vulkan: node '%s' is not in a Vulkan buffer of this backend", n->name);
            return -1;
        }
    }
    ctx->n_barriers = ctx->n_dispatches = 0;
    ctx->written.n = ctx->read.n = 0;
    vk_descriptors_reset(ctx);
    if (vk_oneshot_begin(ctx) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < nn && rc == 0; i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        if (n->op == AG_OP_NONE || n->op == AG_OP_VIEW || ag_nelements(n) == 0)
            continue;
        rc = record_node(ctx, n);
    }
    if (rc != 0) {
        ctx->recording = false;
        vkEndCommandBuffer(ctx->cmd);
        scratch_release(ctx);
        return -1;
    }
    rc = vk_oneshot_submit(ctx);
    scratch_release(ctx);
    return rc;
}

int vk_compute(ag_backend *be, ag_graph *g)
{
    vk_ctx *ctx = be->impl;
    pthread_mutex_lock(&ctx->lock);
    int rc = compute_unlocked(be, g);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

void vk_compute_free(vk_ctx *ctx)
{
    scratch_release(ctx);
    free(ctx->scratch);
    free(ctx->written.r);
    free(ctx->read.r);
    ctx->scratch = NULL;
    ctx->written.r = ctx->read.r = NULL;
}

/* For tests: barriers and dispatches recorded by the last compute() (not in the public API). */
void ag_vulkan_last_stats(ag_backend *be, uint64_t *barriers, uint64_t *dispatches);
void ag_vulkan_last_stats(ag_backend *be, uint64_t *barriers, uint64_t *dispatches)
{
    const vk_ctx *ctx = be->impl;
    *barriers = ctx->n_barriers;
    *dispatches = ctx->n_dispatches;
}
