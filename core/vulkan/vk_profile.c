/* AG_VK_PROFILE=1: where a Vulkan compute's time goes. A timestamp after every recorded node
 * (and one before the first) attributes the GPU time between two timestamps to the later node,
 * barrier waits included, summed per op; beside it the host's recording time and the wall time
 * from submission to the fence. The table goes to stderr when the backend is freed. Off (no
 * query pool, no timestamps) unless the variable is set. */
#include "vk_ctx.h"

#include "anygpt/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PROF_CAP 16384 /* timestamps per compute; nodes past it are not timed */

struct vk_profile {
    VkQueryPool pool;
    double period_ns;
    uint64_t mask;
    uint32_t n;                 /* timestamps written in this compute */
    int op[PROF_CAP];           /* the op that ends at each timestamp */
    uint64_t ts[PROF_CAP];
    double op_ms[AG_OP_COUNT];
    uint64_t op_n[AG_OP_COUNT];
    double record_ms, wait_ms, gpu_ms, t_begin, t_submit;
    uint64_t calls, untimed;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void profile_open(vk_ctx *ctx)
{
    ctx->prof_checked = true;
    const char *env = getenv("AG_VK_PROFILE");
    if (!env || !*env || *env == '0')
        return;
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(ctx->phys, &p);
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->phys, &nq, NULL);
    VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
    if (!q)
        return;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->phys, &nq, q);
    uint32_t bits = ctx->queue_family < nq ? q[ctx->queue_family].timestampValidBits : 0;
    free(q);
    if (bits == 0 || p.limits.timestampPeriod <= 0) {
        fprintf(stderr, "AG_VK_PROFILE: '%s' has no timestamps on its compute queue\n", ctx->name);
        return;
    }
    vk_profile *pr = calloc(1, sizeof *pr);
    if (!pr)
        return;
    const VkQueryPoolCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = PROF_CAP,
    };
    if (vkCreateQueryPool(ctx->dev, &qi, NULL, &pr->pool) != VK_SUCCESS) {
        free(pr);
        return;
    }
    pr->period_ns = p.limits.timestampPeriod;
    pr->mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    ctx->prof = pr;
}

void vk_profile_begin(vk_ctx *ctx)
{
    if (!ctx->prof_checked)
        profile_open(ctx);
    vk_profile *pr = ctx->prof;
    if (!pr)
        return;
    pr->t_begin = now_ms();
    pr->n = 0;
    vkCmdResetQueryPool(ctx->cmd, pr->pool, 0, PROF_CAP);
    vkCmdWriteTimestamp(ctx->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pr->pool, pr->n);
    pr->op[pr->n++] = -1;
}

void vk_profile_node(vk_ctx *ctx, int op)
{
    vk_profile *pr = ctx->prof;
    if (!pr)
        return;
    if (pr->n >= PROF_CAP) {
        pr->untimed++;
        return;
    }
    vkCmdWriteTimestamp(ctx->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pr->pool, pr->n);
    pr->op[pr->n++] = op;
}

void vk_profile_submitted(vk_ctx *ctx)
{
    if (ctx->prof)
        ctx->prof->t_submit = now_ms();
}

void vk_profile_collect(vk_ctx *ctx)
{
    vk_profile *pr = ctx->prof;
    if (!pr || pr->n < 2)
        return;
    double t = now_ms();
    pr->record_ms += pr->t_submit - pr->t_begin;
    pr->wait_ms += t - pr->t_submit;
    if (vkGetQueryPoolResults(ctx->dev, pr->pool, 0, pr->n, pr->n * sizeof(uint64_t), pr->ts, sizeof(uint64_t),
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return;
    for (uint32_t i = 1; i < pr->n; i++) {
        double ms = (double)((pr->ts[i] - pr->ts[i - 1]) & pr->mask) * pr->period_ns * 1e-6;
        pr->op_ms[pr->op[i]] += ms;
        pr->op_n[pr->op[i]]++;
    }
    pr->gpu_ms += (double)((pr->ts[pr->n - 1] - pr->ts[0]) & pr->mask) * pr->period_ns * 1e-6;
    pr->calls++;
}

void vk_profile_close(vk_ctx *ctx)
{
    vk_profile *pr = ctx->prof;
    if (!pr)
        return;
    if (pr->calls) {
        fprintf(stderr, "AG_VK_PROFILE %s: %llu computes; per compute: recording %.3f ms, submit -> fence %.3f ms, "
                        "GPU first -> last timestamp %.3f ms%s\n",
                ctx->name, (unsigned long long)pr->calls, pr->record_ms / (double)pr->calls,
                pr->wait_ms / (double)pr->calls, pr->gpu_ms / (double)pr->calls,
                pr->untimed ? " (some nodes untimed: over the timestamp cap)" : "");
        fprintf(stderr, "AG_VK_PROFILE %-16s %10s %12s %10s %7s\n", "op", "nodes", "GPU ms", "us/node", "share");
        for (;;) { /* largest first */
            int best = -1;
            for (int o = 0; o < AG_OP_COUNT; o++)
                if (pr->op_n[o] && (best < 0 || pr->op_ms[o] > pr->op_ms[best]))
                    best = o;
            if (best < 0)
                break;
            fprintf(stderr, "AG_VK_PROFILE %-16s %10llu %12.3f %10.2f %6.1f%%\n", ag_op_name((ag_op)best),
                    (unsigned long long)pr->op_n[best], pr->op_ms[best], 1e3 * pr->op_ms[best] / (double)pr->op_n[best],
                    pr->gpu_ms > 0 ? 100.0 * pr->op_ms[best] / pr->gpu_ms : 0.0);
            pr->op_n[best] = 0;
        }
    }
    vkDestroyQueryPool(ctx->dev, pr->pool, NULL);
    free(pr);
    ctx->prof = NULL;
}
