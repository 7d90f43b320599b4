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

/* Nodes per chunk for a graph of nn nodes: AG_VK_CHUNK_NODES (default 128; 0 = the whole graph
 * in one command buffer), 0 for small graphs; creates the chunks' command buffers and fences on
 * first use (0 when that fails: one command buffer still works). */
static uint32_t chunk_size(vk_ctx *ctx, size_t nn)
{
    if (ctx->chunk_nodes < 0) {
        const char *env = getenv("AG_VK_CHUNK_NODES");
        ctx->chunk_nodes = env && *env ? atoi(env) : 128;
        if (ctx->chunk_nodes < 0)
            ctx->chunk_nodes = 0;
    }
    if (ctx->chunk_nodes == 0 || nn < 2 * (size_t)ctx->chunk_nodes)
        return 0;
    if (ctx->n_chunk_objs < VK_MAX_CHUNKS) {
        const VkCommandBufferAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
            .commandPool = ctx->cmd_pool,
            .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
            .commandBufferCount = VK_MAX_CHUNKS,
        };
        if (vkAllocateCommandBuffers(ctx->dev, &ai, ctx->chunk_cmd) != VK_SUCCESS) {
            ctx->chunk_nodes = 0;
            return 0;
        }
        const VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        for (; ctx->n_chunk_objs < VK_MAX_CHUNKS; ctx->n_chunk_objs++)
            if (vkCreateFence(ctx->dev, &fci, NULL, &ctx->chunk_fence[ctx->n_chunk_objs]) != VK_SUCCESS) {
                vk_chunks_free(ctx);
                ctx->chunk_nodes = 0;
                return 0;
            }
    }
    return (uint32_t)ctx->chunk_nodes;
}

/* ends the recording chunk (ctx->cmd = chunk_cmd[i]) and submits it without waiting */
static int chunk_submit(vk_ctx *ctx, uint32_t i)
{
    ctx->recording = false;
    VkResult r = vkEndCommandBuffer(ctx->cmd);
    const VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->cmd,
    };
    if (r == VK_SUCCESS)
        r = vkResetFences(ctx->dev, 1, &ctx->chunk_fence[i]);
    if (r == VK_SUCCESS)
        r = vkQueueSubmit(ctx->queue, 1, &si, ctx->chunk_fence[i]);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: submitting a chunk of the graph failed (%s)", vk_result_str(r));
        return -1;
    }
    return 0;
}

/* waits for the n chunks submitted (scratch and descriptors are reused only after that) */
static int chunks_wait(vk_ctx *ctx, uint32_t n)
{
    if (n == 0)
        return 0;
    VkResult r = vkWaitForFences(ctx->dev, n, ctx->chunk_fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: waiting for the graph's chunks failed (%s)", vk_result_str(r));
        return -1;
    }
    return 0;
}

void vk_chunks_free(vk_ctx *ctx)
{
    for (uint32_t i = 0; i < ctx->n_chunk_objs; i++)
        vkDestroyFence(ctx->dev, ctx->chunk_fence[i], NULL);
    if (ctx->chunk_cmd[0])
        vkFreeCommandBuffers(ctx->dev, ctx->cmd_pool, VK_MAX_CHUNKS, ctx->chunk_cmd);
    memset(ctx->chunk_cmd, 0, sizeof ctx->chunk_cmd);
    ctx->n_chunk_objs = 0;
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
    /* the last chunk is ctx->cmd (submitted with the host barrier and waited for); the earlier
     * ones are chunk_cmd[]: a barrier recorded in a later chunk still orders against them
     * (pipeline barriers cover everything earlier in the queue's submission order) */
    VkCommandBuffer main_cmd = ctx->cmd;
    uint32_t n_sub = 0, per = chunk_size(ctx, nn), in_chunk = 0;
    if (per)
        ctx->cmd = ctx->chunk_cmd[0];
    if (vk_oneshot_begin(ctx) != 0) {
        ctx->cmd = main_cmd;
        return -1;
    }
    vk_profile_begin(ctx);
    int rc = 0;
    for (size_t i = 0; i < nn && rc == 0; i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        if (n->op == AG_OP_NONE || n->op == AG_OP_VIEW || ag_nelements(n) == 0)
            continue;
        rc = record_node(ctx, n);
        if (rc == 0)
            vk_profile_node(ctx, (int)n->op);
        /* the first chunk small, so the GPU starts early; the last command buffer is main_cmd */
        if (rc == 0 && per && ++in_chunk >= (n_sub == 0 ? per / 4 : per) && n_sub + 1 < VK_MAX_CHUNKS &&
            i + 1 < nn) {
            rc = chunk_submit(ctx, n_sub);
            if (rc == 0) {
                n_sub++;
                in_chunk = 0;
                ctx->cmd = n_sub + 1 < VK_MAX_CHUNKS ? ctx->chunk_cmd[n_sub] : main_cmd;
                rc = vk_oneshot_begin(ctx);
            }
        }
    }
    if (rc != 0) {
        if (ctx->recording) {
            ctx->recording = false;
            vkEndCommandBuffer(ctx->cmd);
        }
        chunks_wait(ctx, n_sub);
        ctx->cmd = main_cmd;
        scratch_release(ctx);
        return -1;
    }
    vk_profile_submitted(ctx);
    rc = vk_oneshot_submit(ctx);
    if (chunks_wait(ctx, n_sub) != 0)
        rc = -1;
    ctx->cmd = main_cmd;
    if (rc == 0)
        vk_profile_collect(ctx);
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
