/* Private state of the Vulkan backend (vkinfra's files only; op files use vk_internal.h). */
#ifndef AG_VK_CTX_H
#define AG_VK_CTX_H

#include "vulkan/vk_internal.h"

#include <pthread.h>
#include <stddef.h>

/* A large VkDeviceMemory carved into buffers (first fit over a sorted free list). */
typedef struct vk_block {
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map; /* persistent mapping when host-visible */
    bool dedicated;
    VkDeviceSize *free_off, *free_len; /* sorted free ranges */
    size_t n_free, cap_free;
    struct vk_block *next;
} vk_block;

/* What an ag_buffer's impl points to. */
typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceSize size; /* VkBuffer size (request rounded up to 16) */
    vk_block *block;
    VkDeviceSize block_off;
} vk_buf;

typedef struct vk_range {
    VkBuffer buf;
    VkDeviceSize lo, hi;
} vk_range;

typedef struct vk_range_set {
    vk_range *r;
    size_t n, cap;
} vk_range_set;

struct vk_pipeline {
    const char *shader;
    uint32_t n_bindings, push_size, n_spec;
    uint32_t spec[16];
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
};

struct vk_ctx {
    ag_backend be;
    /* one queue, one command buffer, one staging buffer: elements sharing the backend from
     * several threads are serialised (recursive: compute() allocates scratch buffers) */
    pthread_mutex_t lock;
    char name[256];
    char desc[300]; /* name and the paths its facts chose (what benchmarks print) */
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceMemoryProperties memprops;
    vk_limits lim;

    /* memory */
    uint32_t dev_type;            /* memory type index for buffers */
    bool direct_map;              /* device memory is host-visible + coherent: no staging */
    uint32_t staging_type;        /* host-visible coherent type for staging */
    VkDeviceSize heap_size;
    vk_block *blocks;
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_map;
    VkDeviceSize staging_size;

    /* execution */
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    bool recording;
    VkDescriptorPool *pools;
    size_t n_pools, cur_pool;
    vk_pipeline **pipes;
    size_t n_pipes, cap_pipes;
    ag_buffer **scratch;
    size_t n_scratch, cap_scratch;
    vk_range_set written, read;
    uint64_t n_barriers, n_dispatches; /* statistics of the last compute() */
    /* a big graph goes to the queue in chunks, each submitted while the next is recorded, so the
     * GPU starts before the host has recorded the whole graph (vk_compute.c) */
#define VK_MAX_CHUNKS 16
    VkCommandBuffer chunk_cmd[VK_MAX_CHUNKS];
    VkFence chunk_fence[VK_MAX_CHUNKS];
    uint32_t n_chunk_objs; /* command buffers + fences created so far */
    int chunk_nodes;       /* nodes per chunk (AG_VK_CHUNK_NODES), 0 = one command buffer, -1 = unread */
    struct vk_profile *prof;           /* AG_VK_PROFILE timestamps (vk_profile.c), else NULL */
    bool prof_checked;
};

/* vk_compute.c */
void vk_chunks_free(vk_ctx *ctx);

/* vk_profile.c: AG_VK_PROFILE=1 times every node with GPU timestamps */
typedef struct vk_profile vk_profile;
void vk_profile_begin(vk_ctx *ctx);
void vk_profile_node(vk_ctx *ctx, int op);
void vk_profile_submitted(vk_ctx *ctx);
void vk_profile_collect(vk_ctx *ctx);
void vk_profile_close(vk_ctx *ctx);

/* vk_memory.c */
ag_buffer *vk_buffer_alloc(ag_backend *be, size_t size);
void vk_buffer_free(ag_buffer *buf);
int vk_buffer_write(ag_buffer *buf, size_t offset, const void *src, size_t n);
int vk_buffer_read(ag_buffer *buf, size_t offset, void *dst, size_t n);
int vk_memory_init(vk_ctx *ctx);
void vk_memory_free(vk_ctx *ctx);

/* vk_pipeline.c */
void vk_pipelines_free(vk_ctx *ctx);
void vk_descriptors_reset(vk_ctx *ctx);
void vk_descriptors_free(vk_ctx *ctx);

/* vk_compute.c */
int vk_compute(ag_backend *be, ag_graph *g);
bool vk_supports_node(ag_backend *be, const ag_tensor *node);
void vk_compute_free(vk_ctx *ctx);

/* vk_backend.c */
const char *vk_result_str(VkResult r);
/* One-shot command buffer for transfers: begin, (caller records), submit + wait. */
int vk_oneshot_begin(vk_ctx *ctx);
int vk_oneshot_submit(vk_ctx *ctx);

#endif
