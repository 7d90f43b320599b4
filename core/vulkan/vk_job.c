/* Chunked dispatch (see vk_job.h). */
#include "vulkan/vk_job.h"

#include <string.h>

void vk_job_init(vk_job *j, const char *shader, uint32_t wg)
{
    memset(j, 0, sizeof *j);
    j->shader = shader;
    j->spec[0] = wg;
    j->n_spec = 1;
    j->base_slot = j->n_slot = -1;
    j->n_per_unit = 1;
}

void vk_job_tensor(vk_job *j, const ag_tensor *t, size_t unit_bytes, int skew_slot)
{
    j->t[j->n_t] = t;
    j->unit_bytes[j->n_t] = unit_bytes;
    j->esz[j->n_t] = 4;
    j->skew_slot[j->n_t] = skew_slot;
    j->n_t++;
}


int vk_job_run(vk_ctx *ctx, vk_job *j)
{
    uint64_t per = j->units;
    const size_t win = vk_max_window(ctx);
    for (int i = 0; i < j->n_t; i++)
        if (j->unit_bytes[i] && win / j->unit_bytes[i] < per)
            per = win / j->unit_bytes[i];
    if (per == 0) {
        ag_set_error("vulkan: %s: one unit of work is larger than maxStorageBufferRange (%llu bytes)", j->shader,
                     (unsigned long long)vk_ctx_limits(ctx)->max_range);
        return -1;
    }
    vk_pipeline *p = vk_pipeline_get(ctx, j->shader, (uint32_t)j->n_t, j->pc_words * 4, j->spec, j->n_spec);
    if (!p)
        return -1;
    for (uint64_t first = 0; first < j->units; first += per) {
        uint64_t count = j->units - first < per ? j->units - first : per;
        vk_binding b[VK_JOB_MAX_T];
        for (int i = 0; i < j->n_t; i++) {
            size_t off = j->unit_bytes[i] ? (size_t)first * j->unit_bytes[i] : 0;
            size_t len = j->unit_bytes[i] ? (size_t)count * j->unit_bytes[i] : ag_nbytes(j->t[i]);
            uint32_t skew;
            if (vk_tensor_binding_range(ctx, j->t[i], off, len, &b[i], &skew) != 0)
                return -1;
            if (skew % j->esz[i]) {
                ag_set_error("vulkan: tensor '%s' is not aligned to its %zu-byte elements", j->t[i]->name, j->esz[i]);
                return -1;
            }
            if (j->skew_slot[i] >= 0)
                j->pc[j->skew_slot[i]] = skew / (uint32_t)j->esz[i];
        }
        if (count * j->n_per_unit > UINT32_MAX) {
            ag_set_error("vulkan: %s: too many elements for 32-bit indexing", j->shader);
            return -1;
        }
        if (j->base_slot >= 0)
            j->pc[j->base_slot] = (uint32_t)first;
        if (j->n_slot >= 0)
            j->pc[j->n_slot] = (uint32_t)(count * j->n_per_unit);
        int rc = j->rows ? vk_dispatch_rows(ctx, p, b, (uint32_t)j->n_t, j->pc, j->pc_words * 4, count)
                         : vk_dispatch_1d(ctx, p, b, (uint32_t)j->n_t, j->pc, j->pc_words * 4,
                                          count * j->n_per_unit, j->spec[0]);
        if (rc != 0)
            return -1;
    }
    return 0;
}
