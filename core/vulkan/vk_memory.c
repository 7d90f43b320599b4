/* Vulkan backend memory: buffers sub-allocated from large device-local blocks, staging copies. */
#include "vulkan/vk_ctx.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE ((VkDeviceSize)256 << 20)     /* sub-allocation block */
#define DEDICATED_MIN ((VkDeviceSize)64 << 20)   /* bigger buffers get their own memory */
#define STAGING_SIZE ((VkDeviceSize)32 << 20)    /* transfers are chunked through this */

static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a) { return (v + a - 1) / a * a; }

static int find_type(const vk_ctx *ctx, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < ctx->memprops.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (ctx->memprops.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

static VkDeviceSize heap_of(const vk_ctx *ctx, uint32_t type)
{
    return ctx->memprops.memoryHeaps[ctx->memprops.memoryTypes[type].heapIndex].size;
}

static int mem_alloc(vk_ctx *ctx, uint32_t type, VkDeviceSize size, VkDeviceMemory *mem, void **map)
{
    const VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = size,
        .memoryTypeIndex = type,
    };
    VkResult r = vkAllocateMemory(ctx->dev, &ai, NULL, mem);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot allocate %llu bytes (%.1f MiB) of device memory (%s; heap size %.1f MiB)",
                     (unsigned long long)size, size / 1048576.0, vk_result_str(r), heap_of(ctx, type) / 1048576.0);
        return -1;
    }
    *map = NULL;
    if (ctx->memprops.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        r = vkMapMemory(ctx->dev, *mem, 0, VK_WHOLE_SIZE, 0, map);
        if (r != VK_SUCCESS) {
            vkFreeMemory(ctx->dev, *mem, NULL);
            ag_set_error("vulkan: cannot map %llu bytes (%s)", (unsigned long long)size, vk_result_str(r));
            return -1;
        }
    }
    return 0;
}

static int make_buffer(vk_ctx *ctx, VkDeviceSize size, VkBufferUsageFlags usage, VkBuffer *buf,
                       VkMemoryRequirements *req)
{
    const VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = usage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(ctx->dev, &bi, NULL, buf);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot create a buffer of %llu bytes (%s)", (unsigned long long)size, vk_result_str(r));
        return -1;
    }
    vkGetBufferMemoryRequirements(ctx->dev, *buf, req);
    return 0;
}

/* ---- free lists of blocks ---- */

static int free_insert(vk_block *b, size_t at, VkDeviceSize off, VkDeviceSize len)
{
    if (b->n_free == b->cap_free) {
        size_t cap = b->cap_free ? b->cap_free * 2 : 16;
        VkDeviceSize *o = realloc(b->free_off, cap * sizeof *o);
        if (!o)
            return -1;
        b->free_off = o;
        VkDeviceSize *l = realloc(b->free_len, cap * sizeof *l);
        if (!l)
            return -1;
        b->free_len = l;
        b->cap_free = cap;
    }
    memmove(b->free_off + at + 1, b->free_off + at, (b->n_free - at) * sizeof *b->free_off);
    memmove(b->free_len + at + 1, b->free_len + at, (b->n_free - at) * sizeof *b->free_len);
    b->free_off[at] = off;
    b->free_len[at] = len;
    b->n_free++;
    return 0;
}

static void free_remove(vk_block *b, size_t at)
{
    memmove(b->free_off + at, b->free_off + at + 1, (b->n_free - at - 1) * sizeof *b->free_off);
    memmove(b->free_len + at, b->free_len + at + 1, (b->n_free - at - 1) * sizeof *b->free_len);
    b->n_free--;
}

/* First fit; returns the offset or (VkDeviceSize)-1. */
static VkDeviceSize block_take(vk_block *b, VkDeviceSize size, VkDeviceSize align)
{
    for (size_t i = 0; i < b->n_free; i++) {
        VkDeviceSize off = align_up(b->free_off[i], align), end = b->free_off[i] + b->free_len[i];
        if (off + size > end)
            continue;
        VkDeviceSize head = off - b->free_off[i], tail = end - (off + size);
        if (head == 0 && tail == 0) {
            free_remove(b, i);
        } else if (head == 0) {
            b->free_off[i] = off + size;
            b->free_len[i] = tail;
        } else {
            b->free_len[i] = head;
            if (tail && free_insert(b, i + 1, off + size, tail) != 0)
                return (VkDeviceSize)-1;
        }
        return off;
    }
    return (VkDeviceSize)-1;
}

static void block_give(vk_block *b, VkDeviceSize off, VkDeviceSize len)
{
    size_t i = 0;
    while (i < b->n_free && b->free_off[i] < off)
        i++;
    /* merge with neighbours */
    bool left = i > 0 && b->free_off[i - 1] + b->free_len[i - 1] == off;
    bool right = i < b->n_free && off + len == b->free_off[i];
    if (left && right) {
        b->free_len[i - 1] += len + b->free_len[i];
        free_remove(b, i);
    } else if (left) {
        b->free_len[i - 1] += len;
    } else if (right) {
        b->free_off[i] = off;
        b->free_len[i] += len;
    } else if (free_insert(b, i, off, len) != 0) {
        /* out of host memory: the range leaks inside the block, nothing breaks */
    }
}

static void block_destroy(vk_ctx *ctx, vk_block *b)
{
    if (b->map)
        vkUnmapMemory(ctx->dev, b->mem);
    vkFreeMemory(ctx->dev, b->mem, NULL);
    free(b->free_off);
    free(b->free_len);
    free(b);
}

static vk_block *block_new(vk_ctx *ctx, VkDeviceSize size, bool dedicated)
{
    vk_block *b = calloc(1, sizeof *b);
    if (!b) {
        ag_set_error("vulkan: out of host memory");
        return NULL;
    }
    if (mem_alloc(ctx, ctx->dev_type, size, &b->mem, &b->map) != 0) {
        free(b);
        return NULL;
    }
    b->size = size;
    b->dedicated = dedicated;
    if (!dedicated && free_insert(b, 0, 0, size) != 0) {
        block_destroy(ctx, b);
        ag_set_error("vulkan: out of host memory");
        return NULL;
    }
    return b;
}

/* ---- ag_buffer interface ---- */

static ag_buffer *buffer_alloc_unlocked(ag_backend *be, size_t size)
{
    vk_ctx *ctx = be->impl;
    ag_buffer *ab = calloc(1, sizeof *ab);
    vk_buf *vb = calloc(1, sizeof *vb);
    if (!ab || !vb) {
        free(ab);
        free(vb);
        ag_set_error("vulkan: out of host memory");
        return NULL;
    }
    /* rounded so shaders may read whole uint words / vec4s at the end */
    vb->size = align_up(size ? size : 1, 16);
    VkMemoryRequirements req;
    if (make_buffer(ctx, vb->size,
                    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                        VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                    &vb->buf, &req) != 0)
        goto fail;
    if (!(req.memoryTypeBits & (1u << ctx->dev_type))) {
        ag_set_error("vulkan: buffer memory type mismatch");
        goto fail;
    }
    vk_block *blk = NULL;
    VkDeviceSize off = 0;
    if (req.size >= DEDICATED_MIN) {
        blk = block_new(ctx, req.size, true);
        if (!blk)
            goto fail;
        blk->next = ctx->blocks;
        ctx->blocks = blk;
    } else {
        for (vk_block *b = ctx->blocks; b; b = b->next) {
            if (b->dedicated)
                continue;
            off = block_take(b, req.size, req.alignment);
            if (off != (VkDeviceSize)-1) {
                blk = b;
                break;
            }
        }
        if (!blk) {
            blk = block_new(ctx, BLOCK_SIZE, false);
            if (!blk)
                goto fail;
            blk->next = ctx->blocks;
            ctx->blocks = blk;
            off = block_take(blk, req.size, req.alignment);
            if (off == (VkDeviceSize)-1) {
                ag_set_error("vulkan: sub-allocation failed");
                goto fail;
            }
        }
    }
    VkResult r = vkBindBufferMemory(ctx->dev, vb->buf, blk->mem, off);
    if (r != VK_SUCCESS) {
        if (!blk->dedicated)
            block_give(blk, off, req.size);
        ag_set_error("vulkan: cannot bind buffer memory (%s)", vk_result_str(r));
        goto fail;
    }
    vb->block = blk;
    vb->block_off = off;
    ab->backend = be;
    ab->size = size;
    ab->host = NULL; /* even when mapped: callers go through buffer_write/read */
    ab->impl = vb;
    return ab;
fail:
    if (vb->buf)
        vkDestroyBuffer(ctx->dev, vb->buf, NULL);
    free(vb);
    free(ab);
    return NULL;
}

static void unlink_block(vk_ctx *ctx, vk_block *blk)
{
    for (vk_block **p = &ctx->blocks; *p; p = &(*p)->next)
        if (*p == blk) {
            *p = blk->next;
            return;
        }
}

static void buffer_free_unlocked(ag_buffer *buf)
{
    if (!buf)
        return;
    vk_ctx *ctx = buf->backend->impl;
    vk_buf *vb = buf->impl;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->dev, vb->buf, &req);
    vkDestroyBuffer(ctx->dev, vb->buf, NULL);
    if (vb->block->dedicated) {
        unlink_block(ctx, vb->block);
        block_destroy(ctx, vb->block);
    } else {
        block_give(vb->block, vb->block_off, req.size);
    }
    free(vb);
    free(buf);
}

static int check_span(const ag_buffer *buf, size_t offset, size_t n, const char *what)
{
    if (offset > buf->size || n > buf->size - offset) {
        ag_set_error("vulkan: %s of %zu bytes at %zu past the end of a %zu-byte buffer", what, n, offset, buf->size);
        return -1;
    }
    return 0;
}

/* Copy between a device buffer and the staging buffer. */
static int staged_copy(vk_ctx *ctx, VkBuffer src, VkDeviceSize src_off, VkBuffer dst, VkDeviceSize dst_off,
                       VkDeviceSize n)
{
    if (vk_oneshot_begin(ctx) != 0)
        return -1;
    const VkBufferCopy c = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    vkCmdCopyBuffer(ctx->cmd, src, dst, 1, &c);
    return vk_oneshot_submit(ctx);
}

static int buffer_write_unlocked(ag_buffer *buf, size_t offset, const void *src, size_t n)
{
    if (check_span(buf, offset, n, "write") != 0)
        return -1;
    vk_ctx *ctx = buf->backend->impl;
    vk_buf *vb = buf->impl;
    if (n == 0)
        return 0;
    if (ctx->direct_map && vb->block->map) {
        memcpy((char *)vb->block->map + vb->block_off + offset, src, n);
        return 0;
    }
    for (size_t done = 0; done < n;) {
        size_t c = n - done < ctx->staging_size ? n - done : (size_t)ctx->staging_size;
        memcpy(ctx->staging_map, (const char *)src + done, c);
        if (staged_copy(ctx, ctx->staging, 0, vb->buf, offset + done, c) != 0)
            return -1;
        done += c;
    }
    return 0;
}

static int buffer_read_unlocked(ag_buffer *buf, size_t offset, void *dst, size_t n)
{
    if (check_span(buf, offset, n, "read") != 0)
        return -1;
    vk_ctx *ctx = buf->backend->impl;
    vk_buf *vb = buf->impl;
    if (n == 0)
        return 0;
    if (ctx->direct_map && vb->block->map) {
        memcpy(dst, (const char *)vb->block->map + vb->block_off + offset, n);
        return 0;
    }
    for (size_t done = 0; done < n;) {
        size_t c = n - done < ctx->staging_size ? n - done : (size_t)ctx->staging_size;
        if (staged_copy(ctx, vb->buf, offset + done, ctx->staging, 0, c) != 0)
            return -1;
        memcpy((char *)dst + done, ctx->staging_map, c);
        done += c;
    }
    return 0;
}

int vk_memory_init(vk_ctx *ctx)
{
    vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->memprops);
    /* probe the memory types a storage buffer may use */
    VkBuffer probe;
    VkMemoryRequirements req;
    if (make_buffer(ctx, 256,
                    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                        VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                    &probe, &req) != 0)
        return -1;
    vkDestroyBuffer(ctx->dev, probe, NULL);

    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    /* AG_VULKAN_FORCE_STAGING=1 takes the discrete-GPU path on unified-memory devices (tests) */
    const char *fs = getenv("AG_VULKAN_FORCE_STAGING");
    bool force_staging = fs && *fs && strcmp(fs, "0") != 0;
    int t = force_staging ? -1 : find_type(ctx, req.memoryTypeBits, dl | hv);
    if (t >= 0) {
        ctx->direct_map = true;
    } else {
        t = find_type(ctx, req.memoryTypeBits, dl);
        if (t < 0)
            t = find_type(ctx, req.memoryTypeBits, 0);
    }
    if (t < 0) {
        ag_set_error("vulkan: no memory type for storage buffers on '%s'", ctx->name);
        return -1;
    }
    ctx->dev_type = (uint32_t)t;
    ctx->heap_size = heap_of(ctx, ctx->dev_type);
    if (ctx->direct_map)
        return 0;

    /* staging buffer: host-visible, coherent (cached preferred for reads) */
    ctx->staging_size = STAGING_SIZE;
    if (make_buffer(ctx, ctx->staging_size, VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                    &ctx->staging, &req) != 0)
        return -1;
    int st = find_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (st < 0)
        st = find_type(ctx, req.memoryTypeBits, hv);
    if (st < 0) {
        ag_set_error("vulkan: no host-visible memory for staging on '%s'", ctx->name);
        return -1;
    }
    ctx->staging_type = (uint32_t)st;
    if (mem_alloc(ctx, ctx->staging_type, req.size, &ctx->staging_mem, &ctx->staging_map) != 0)
        return -1;
    VkResult r = vkBindBufferMemory(ctx->dev, ctx->staging, ctx->staging_mem, 0);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot bind staging memory (%s)", vk_result_str(r));
        return -1;
    }
    return 0;
}

void vk_memory_free(vk_ctx *ctx)
{
    if (ctx->staging)
        vkDestroyBuffer(ctx->dev, ctx->staging, NULL);
    if (ctx->staging_mem) {
        if (ctx->staging_map)
            vkUnmapMemory(ctx->dev, ctx->staging_mem);
        vkFreeMemory(ctx->dev, ctx->staging_mem, NULL);
    }
    /* blocks still holding buffers the caller did not free */
    while (ctx->blocks) {
        vk_block *b = ctx->blocks;
        ctx->blocks = b->next;
        block_destroy(ctx, b);
    }
}

int vk_tensor_binding_range(vk_ctx *ctx, const ag_tensor *t, size_t off_in_t, size_t n, vk_binding *b, uint32_t *skew)
{
    const ag_tensor *s = t->view_src ? t->view_src : t;
    size_t off = (t->view_src ? t->view_src->offset + t->view_offs : t->offset) + off_in_t;
    if (!s->buffer || s->buffer->backend != &ctx->be) {
        ag_set_error("vulkan: tensor '%s' is not stored in a buffer of this backend", t->name);
        return -1;
    }
    const vk_buf *vb = s->buffer->impl;
    if (off > vb->size || n > vb->size - off) {
        ag_set_error("vulkan: tensor '%s': bytes %zu..%zu lie outside its buffer", t->name, off, off + n);
        return -1;
    }
    VkDeviceSize start = off / ctx->lim.min_align * ctx->lim.min_align;
    VkDeviceSize range = align_up(off - start + n, 4);
    if (start + range > vb->size)
        range = vb->size - start;
    if (range > ctx->lim.max_range) {
        ag_set_error("vulkan: tensor '%s' spans %llu bytes, more than this device's maxStorageBufferRange (%llu)",
                     t->name, (unsigned long long)range, (unsigned long long)ctx->lim.max_range);
        return -1;
    }
    b->buf = vb->buf;
    b->offset = start;
    b->range = range;
    if (skew)
        *skew = (uint32_t)(off - start);
    return 0;
}

int vk_tensor_binding(vk_ctx *ctx, const ag_tensor *t, vk_binding *b, uint32_t *skew)
{
    return vk_tensor_binding_range(ctx, t, 0, ag_nbytes(t), b, skew);
}

int vk_tensor_binding_elems(vk_ctx *ctx, const ag_tensor *t, size_t elem_size, vk_binding *b, uint32_t *skew)
{
    uint32_t bytes;
    if (vk_tensor_binding(ctx, t, b, &bytes) != 0)
        return -1;
    if (bytes % elem_size) {
        ag_set_error("vulkan: tensor '%s' starts at a byte offset not a multiple of %zu", t->name, elem_size);
        return -1;
    }
    if ((uint64_t)ag_nelements(t) + bytes / elem_size > UINT32_MAX) {
        ag_set_error("vulkan: tensor '%s' has too many elements for 32-bit indexing", t->name);
        return -1;
    }
    *skew = (uint32_t)(bytes / elem_size);
    return 0;
}

/* Locked entry points (see vk_ctx.lock). */
ag_buffer *vk_buffer_alloc(ag_backend *be, size_t size)
{
    vk_ctx *ctx = be->impl;
    pthread_mutex_lock(&ctx->lock);
    ag_buffer *b = buffer_alloc_unlocked(be, size);
    pthread_mutex_unlock(&ctx->lock);
    return b;
}

void vk_buffer_free(ag_buffer *buf)
{
    if (!buf)
        return;
    vk_ctx *ctx = buf->backend->impl;
    pthread_mutex_lock(&ctx->lock);
    buffer_free_unlocked(buf);
    pthread_mutex_unlock(&ctx->lock);
}

int vk_buffer_write(ag_buffer *buf, size_t offset, const void *src, size_t n)
{
    vk_ctx *ctx = buf->backend->impl;
    pthread_mutex_lock(&ctx->lock);
    int rc = buffer_write_unlocked(buf, offset, src, n);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

int vk_buffer_read(ag_buffer *buf, size_t offset, void *dst, size_t n)
{
    vk_ctx *ctx = buf->backend->impl;
    pthread_mutex_lock(&ctx->lock);
    int rc = buffer_read_unlocked(buf, offset, dst, n);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}
