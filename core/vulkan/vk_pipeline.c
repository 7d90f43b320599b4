/* Vulkan backend: compute pipelines from embedded SPIR-V (cached), descriptor sets, dispatch. */
#include "vulkan/vk_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SETS 512
#define POOL_DESCRIPTORS (POOL_SETS * 8)

extern const vk_shader_blob ag_spirv_table[];
extern const size_t ag_spirv_count;

const vk_shader_blob *vk_shader_find(const char *name)
{
    /* the generated table is sorted by name */
    size_t lo = 0, hi = ag_spirv_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ag_spirv_table[mid].name, name);
        if (c == 0)
            return &ag_spirv_table[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void pipeline_destroy(vk_ctx *ctx, vk_pipeline *p)
{
    if (p->pipe)
        vkDestroyPipeline(ctx->dev, p->pipe, NULL);
    if (p->layout)
        vkDestroyPipelineLayout(ctx->dev, p->layout, NULL);
    if (p->dsl)
        vkDestroyDescriptorSetLayout(ctx->dev, p->dsl, NULL);
    free(p);
}

static vk_pipeline *pipeline_create(vk_ctx *ctx, const vk_shader_blob *blob, uint32_t n_bindings, uint32_t push_size,
                                    const uint32_t *spec, uint32_t n_spec)
{
    vk_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        ag_set_error("vulkan: out of host memory");
        return NULL;
    }
    p->shader = blob->name;
    p->n_bindings = n_bindings;
    p->push_size = push_size;
    p->n_spec = n_spec;
    memcpy(p->spec, spec, n_spec * sizeof *spec);

    VkDescriptorSetLayoutBinding lb[16];
    for (uint32_t i = 0; i < n_bindings; i++)
        lb[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    const VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = n_bindings,
        .pBindings = lb,
    };
    VkResult r = vkCreateDescriptorSetLayout(ctx->dev, &dci, NULL, &p->dsl);
    const VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = push_size};
    if (r == VK_SUCCESS) {
        const VkPipelineLayoutCreateInfo lci = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
            .setLayoutCount = 1,
            .pSetLayouts = &p->dsl,
            .pushConstantRangeCount = push_size ? 1u : 0u,
            .pPushConstantRanges = push_size ? &pr : NULL,
        };
        r = vkCreatePipelineLayout(ctx->dev, &lci, NULL, &p->layout);
    }
    VkShaderModule mod = VK_NULL_HANDLE;
    if (r == VK_SUCCESS) {
        const VkShaderModuleCreateInfo sci = {
            .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
            .codeSize = blob->size,
            .pCode = blob->words,
        };
        r = vkCreateShaderModule(ctx->dev, &sci, NULL, &mod);
    }
    if (r == VK_SUCCESS) {
        VkSpecializationMapEntry me[16];
        for (uint32_t i = 0; i < n_spec; i++)
            me[i] = (VkSpecializationMapEntry){.constantID = i, .offset = i * 4, .size = 4};
        const VkSpecializationInfo si = {
            .mapEntryCount = n_spec,
            .pMapEntries = me,
            .dataSize = n_spec * 4,
            .pData = p->spec,
        };
        const VkComputePipelineCreateInfo cci = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage =
                {
                    .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                    .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                    .module = mod,
                    .pName = "main",
                    .pSpecializationInfo = n_spec ? &si : NULL,
                },
            .layout = p->layout,
        };
        r = vkCreateComputePipelines(ctx->dev, VK_NULL_HANDLE, 1, &cci, NULL, &p->pipe);
        vkDestroyShaderModule(ctx->dev, mod, NULL);
    }
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot create the pipeline for shader '%s' (%s)", blob->name, vk_result_str(r));
        pipeline_destroy(ctx, p);
        return NULL;
    }
    return p;
}

vk_pipeline *vk_pipeline_get(vk_ctx *ctx, const char *shader, uint32_t n_bindings, uint32_t push_size,
                             const uint32_t *spec, uint32_t n_spec)
{
    if (n_bindings > 16 || n_spec > 16 || push_size % 4 || push_size > ctx->lim.max_push) {
        ag_set_error("vulkan: pipeline '%s': %u bindings, %u spec constants, %u push bytes: out of limits", shader,
                     n_bindings, n_spec, push_size);
        return NULL;
    }
    if (n_spec > 0 && spec[0] > ctx->lim.max_wg_invocations) {
        ag_set_error("vulkan: pipeline '%s': workgroup size %u above the device limit %u", shader, spec[0],
                     ctx->lim.max_wg_invocations);
        return NULL;
    }
    for (size_t i = 0; i < ctx->n_pipes; i++) {
        vk_pipeline *p = ctx->pipes[i];
        if (p->n_bindings == n_bindings && p->push_size == push_size && p->n_spec == n_spec &&
            strcmp(p->shader, shader) == 0 && memcmp(p->spec, spec, n_spec * sizeof *spec) == 0)
            return p;
    }
    const vk_shader_blob *blob = vk_shader_find(shader);
    if (!blob) {
        ag_set_error("vulkan: no embedded shader named '%s'", shader);
        return NULL;
    }
    if (ctx->n_pipes == ctx->cap_pipes) {
        size_t cap = ctx->cap_pipes ? ctx->cap_pipes * 2 : 32;
        vk_pipeline **np = realloc(ctx->pipes, cap * sizeof *np);
        if (!np) {
            ag_set_error("vulkan: out of host memory");
            return NULL;
        }
        ctx->pipes = np;
        ctx->cap_pipes = cap;
    }
    vk_pipeline *p = pipeline_create(ctx, blob, n_bindings, push_size, spec, n_spec);
    if (p)
        ctx->pipes[ctx->n_pipes++] = p;
    return p;
}

void vk_pipelines_free(vk_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_pipes; i++)
        pipeline_destroy(ctx, ctx->pipes[i]);
    free(ctx->pipes);
    ctx->pipes = NULL;
    ctx->n_pipes = ctx->cap_pipes = 0;
}

/* ---- descriptor sets: pools are used in turn and all reset after each graph ---- */

static int pool_add(vk_ctx *ctx)
{
    VkDescriptorPool *np = realloc(ctx->pools, (ctx->n_pools + 1) * sizeof *np);
    if (!np) {
        ag_set_error("vulkan: out of host memory");
        return -1;
    }
    ctx->pools = np;
    const VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = POOL_DESCRIPTORS};
    const VkDescriptorPoolCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = POOL_SETS,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    VkResult r = vkCreateDescriptorPool(ctx->dev, &ci, NULL, &ctx->pools[ctx->n_pools]);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot create a descriptor pool (%s)", vk_result_str(r));
        return -1;
    }
    ctx->n_pools++;
    return 0;
}

static int descriptor_alloc(vk_ctx *ctx, VkDescriptorSetLayout dsl, VkDescriptorSet *set)
{
    for (;;) {
        if (ctx->cur_pool == ctx->n_pools && pool_add(ctx) != 0)
            return -1;
        const VkDescriptorSetAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = ctx->pools[ctx->cur_pool],
            .descriptorSetCount = 1,
            .pSetLayouts = &dsl,
        };
        VkResult r = vkAllocateDescriptorSets(ctx->dev, &ai, set);
        if (r == VK_SUCCESS)
            return 0;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) {
            ag_set_error("vulkan: cannot allocate a descriptor set (%s)", vk_result_str(r));
            return -1;
        }
        ctx->cur_pool++; /* this one is full: next (or a new) pool */
    }
}

void vk_descriptors_reset(vk_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_pools; i++)
        vkResetDescriptorPool(ctx->dev, ctx->pools[i], 0);
    ctx->cur_pool = 0;
}

void vk_descriptors_free(vk_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_pools; i++)
        vkDestroyDescriptorPool(ctx->dev, ctx->pools[i], NULL);
    free(ctx->pools);
    ctx->pools = NULL;
    ctx->n_pools = ctx->cur_pool = 0;
}

/* ---- recording ---- */

int vk_dispatch(vk_ctx *ctx, vk_pipeline *p, const vk_binding *bindings, uint32_t n_bindings, const void *push,
                uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz)
{
    if (!ctx->recording) {
        ag_set_error("vulkan: dispatch of '%s' outside a graph execution", p->shader);
        return -1;
    }
    if (n_bindings != p->n_bindings || push_size != p->push_size) {
        ag_set_error("vulkan: dispatch of '%s' with %u bindings / %u push bytes, pipeline has %u / %u", p->shader,
                     n_bindings, push_size, p->n_bindings, p->push_size);
        return -1;
    }
    if (gx == 0 || gy == 0 || gz == 0)
        return 0; /* nothing to do */
    if (gx > ctx->lim.max_groups[0] || gy > ctx->lim.max_groups[1] || gz > ctx->lim.max_groups[2]) {
        ag_set_error("vulkan: dispatch of '%s' with %u x %u x %u workgroups exceeds the device limits %u x %u x %u",
                     p->shader, gx, gy, gz, ctx->lim.max_groups[0], ctx->lim.max_groups[1], ctx->lim.max_groups[2]);
        return -1;
    }
    VkDescriptorSet set;
    if (descriptor_alloc(ctx, p->dsl, &set) != 0)
        return -1;
    VkDescriptorBufferInfo bi[16];
    VkWriteDescriptorSet w[16];
    for (uint32_t i = 0; i < n_bindings; i++) {
        bi[i] = (VkDescriptorBufferInfo){.buffer = bindings[i].buf, .offset = bindings[i].offset,
                                         .range = bindings[i].range};
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    vkUpdateDescriptorSets(ctx->dev, n_bindings, w, 0, NULL);
    vkCmdBindPipeline(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    vkCmdBindDescriptorSets(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (push_size)
        vkCmdPushConstants(ctx->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    vkCmdDispatch(ctx->cmd, gx, gy, gz);
    ctx->n_dispatches++;
    return 0;
}

int vk_dispatch_1d(vk_ctx *ctx, vk_pipeline *p, const vk_binding *bindings, uint32_t n_bindings, const void *push,
                   uint32_t push_size, uint64_t n_threads, uint32_t wg_size)
{
    uint64_t groups = (n_threads + wg_size - 1) / wg_size;
    uint64_t gx = groups, gy = 1;
    const uint64_t maxx = ctx->lim.max_groups[0];
    if (gx > maxx) {
        gy = (groups + maxx - 1) / maxx;
        gx = (groups + gy - 1) / gy;
    }
    if (gy > ctx->lim.max_groups[1]) {
        ag_set_error("vulkan: '%s' needs %llu threads, too many for one dispatch", p->shader,
                     (unsigned long long)n_threads);
        return -1;
    }
    return vk_dispatch(ctx, p, bindings, n_bindings, push, push_size, (uint32_t)gx, (uint32_t)gy, 1);
}

int vk_dispatch_rows(vk_ctx *ctx, vk_pipeline *p, const vk_binding *bindings, uint32_t n_bindings, const void *push,
                     uint32_t push_size, uint64_t n_rows)
{
    uint64_t gx = n_rows, gy = 1;
    const uint64_t maxx = ctx->lim.max_groups[0];
    if (gx > maxx) {
        gy = (n_rows + maxx - 1) / maxx;
        gx = (n_rows + gy - 1) / gy;
    }
    if (gy > ctx->lim.max_groups[1]) {
        ag_set_error("vulkan: '%s' has %llu rows, too many for one dispatch", p->shader, (unsigned long long)n_rows);
        return -1;
    }
    return vk_dispatch(ctx, p, bindings, n_bindings, push, push_size, (uint32_t)gx, (uint32_t)gy, 1);
}

void vk_barrier(vk_ctx *ctx)
{
    const VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &mb, 0, NULL, 0, NULL);
    ctx->n_barriers++;
    ctx->written.n = 0;
    ctx->read.n = 0;
}

int vk_scratch(vk_ctx *ctx, VkDeviceSize size, vk_binding *b)
{
    if (size > ctx->lim.max_range) {
        ag_set_error("vulkan: scratch of %llu bytes exceeds maxStorageBufferRange", (unsigned long long)size);
        return -1;
    }
    if (ctx->n_scratch == ctx->cap_scratch) {
        size_t cap = ctx->cap_scratch ? ctx->cap_scratch * 2 : 8;
        ag_buffer **ns = realloc(ctx->scratch, cap * sizeof *ns);
        if (!ns) {
            ag_set_error("vulkan: out of host memory");
            return -1;
        }
        ctx->scratch = ns;
        ctx->cap_scratch = cap;
    }
    ag_buffer *buf = vk_buffer_alloc(&ctx->be, (size_t)size);
    if (!buf)
        return -1;
    ctx->scratch[ctx->n_scratch++] = buf;
    const vk_buf *vb = buf->impl;
    b->buf = vb->buf;
    b->offset = 0;
    b->range = vb->size;
    return 0;
}
