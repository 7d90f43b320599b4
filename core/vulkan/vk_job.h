/* A dispatch split into chunks of whole "units" (elements, rows, planes) so that every
 * tensor window stays under maxStorageBufferRange. Used by vkinfra's op files. */
#ifndef AG_VK_JOB_H
#define AG_VK_JOB_H

#include "vulkan/vk_internal.h"

#define VK_JOB_MAX_T 4

typedef struct vk_job {
    const char *shader;
    uint32_t spec[4], n_spec; /* spec[0] = workgroup size */
    int n_t;
    const ag_tensor *t[VK_JOB_MAX_T];
    size_t unit_bytes[VK_JOB_MAX_T]; /* 0: bound whole in every chunk */
    size_t esz[VK_JOB_MAX_T];        /* element size for the skew (4, or 1 for byte addressing) */
    int skew_slot[VK_JOB_MAX_T];     /* push word receiving the skew, -1 none */
    uint32_t pc[24], pc_words;
    int base_slot;                   /* push word receiving the chunk's first unit, -1 none */
    int n_slot;                      /* push word receiving count * n_per_unit, -1 none */
    uint64_t n_per_unit;
    uint64_t units;
    bool rows;                       /* one workgroup per unit, else count * n_per_unit threads */
} vk_job;

/* Start a job: workgroup size wg as spec constant 0, no base/n slots. */
void vk_job_init(vk_job *j, const char *shader, uint32_t wg);
/* Add f32 tensor t (binding n_t) split by unit_bytes per unit (0: whole), skew to push word. */
void vk_job_tensor(vk_job *j, const ag_tensor *t, size_t unit_bytes, int skew_slot);
int vk_job_run(vk_ctx *ctx, vk_job *j);

#endif
