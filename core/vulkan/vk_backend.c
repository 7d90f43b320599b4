/* Vulkan backend: instance, device selection, queue, and the ag_backend interface. */
#include "vulkan/vk_ctx.h"
#include "backend_turns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#include <link.h>
#endif

#define NO_DEVICE_HINT "(is mesa-vulkan-drivers installed? VK_ICD_FILENAMES?)"

const char *vk_result_str(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    default: return "VkResult error";
    }
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static bool layer_present(const char *want)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(p[i].layerName, want) == 0)
                found = true;
    free(p);
    return found;
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer scans a library's globals only while it is mapped. The Vulkan loader unloads
 * the driver at vkDestroyInstance, after which memory the driver still holds through its
 * globals (llvmpipe's JIT state) is reported as leaked from "<unknown module>". Sanitizer builds
 * keep the drivers (libvulkan_*.so) resident, so only real leaks are reported. */
static int pin_driver(struct dl_phdr_info *info, size_t size, void *user)
{
    (void)size;
    (void)user;
    const char *base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    if (base && strncmp(base + 1, "libvulkan_", 10) == 0)
        (void)dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    return 0;
}
#endif

static int instance_create(VkInstance *out, bool validate)
{
    const VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "anygpt",
        .pEngineName = "anygpt-core",
        .apiVersion = VK_API_VERSION_1_1,
    };
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    bool use_layer = validate && env_flag("AG_VULKAN_VALIDATE");
    if (use_layer && !layer_present(layers[0])) {
        fprintf(stderr, "anygpt: AG_VULKAN_VALIDATE is set but %s is not installed; running without it\n",
                layers[0]);
        use_layer = false;
    }
    const VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
        .enabledLayerCount = use_layer ? 1u : 0u,
        .ppEnabledLayerNames = use_layer ? layers : NULL,
    };
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER) { /* the loader found no driver at all */
        ag_set_error("vulkan: no Vulkan devices found " NO_DEVICE_HINT " (vkCreateInstance: %s)", vk_result_str(r));
        return -1;
    }
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot create an instance (%s) " NO_DEVICE_HINT, vk_result_str(r));
        return -1;
    }
#if defined(__SANITIZE_ADDRESS__)
    dl_iterate_phdr(pin_driver, NULL);
#endif
    return 0;
}

/* Physical devices of an instance (malloc'd), or NULL with an error when there are none. */
static VkPhysicalDevice *list_devices(VkInstance inst, uint32_t *n)
{
    *n = 0;
    VkResult r = vkEnumeratePhysicalDevices(inst, n, NULL);
    if (r != VK_SUCCESS || *n == 0) {
        ag_set_error("vulkan: no Vulkan devices found " NO_DEVICE_HINT);
        return NULL;
    }
    VkPhysicalDevice *d = calloc(*n, sizeof *d);
    if (!d || vkEnumeratePhysicalDevices(inst, n, d) < 0) {
        free(d);
        ag_set_error("vulkan: cannot list devices");
        return NULL;
    }
    return d;
}

int ag_vulkan_device_count(void)
{
    VkInstance inst;
    if (instance_create(&inst, false) != 0)
        return 0;
    uint32_t n;
    VkPhysicalDevice *d = list_devices(inst, &n);
    free(d);
    vkDestroyInstance(inst, NULL);
    return d ? (int)n : 0;
}

int ag_vulkan_first_gpu(void)
{
    VkInstance inst;
    if (instance_create(&inst, false) != 0)
        return -1;
    uint32_t n;
    VkPhysicalDevice *d = list_devices(inst, &n);
    int found = -1;
    for (uint32_t i = 0; d && i < n && found < 0; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(d[i], &p);
        if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ||
            p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
            p.deviceType == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU)
            found = (int)i;
    }
    free(d);
    vkDestroyInstance(inst, NULL);
    return found;
}

int ag_vulkan_device_name(int index, char *out, size_t out_len)
{
    if (out_len)
        out[0] = '\0';
    VkInstance inst;
    if (instance_create(&inst, false) != 0)
        return -1;
    uint32_t n;
    VkPhysicalDevice *d = list_devices(inst, &n);
    int rc = -1;
    if (d) {
        if (index < 0 || (uint32_t)index >= n) {
            ag_set_error("vulkan: device index %d out of range (%u devices)", index, n);
        } else {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(d[index], &p);
            snprintf(out, out_len, "%s", p.deviceName);
            rc = 0;
        }
    }
    free(d);
    vkDestroyInstance(inst, NULL);
    return rc;
}

int vk_oneshot_begin(vk_ctx *ctx)
{
    const VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VkResult r = vkResetCommandBuffer(ctx->cmd, 0);
    if (r == VK_SUCCESS)
        r = vkBeginCommandBuffer(ctx->cmd, &bi);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot begin a command buffer (%s)", vk_result_str(r));
        return -1;
    }
    ctx->recording = true;
    return 0;
}

int vk_oneshot_submit(vk_ctx *ctx)
{
    /* make this command buffer's writes visible to the host (mapped reads, staging) and to
     * later submissions: a fence wait alone only makes them available */
    const VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_HOST_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT |
                         VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                             VK_PIPELINE_STAGE_TRANSFER_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    ctx->recording = false;
    VkResult r = vkEndCommandBuffer(ctx->cmd);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot end the command buffer (%s)", vk_result_str(r));
        return -1;
    }
    const VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->cmd,
    };
    r = vkResetFences(ctx->dev, 1, &ctx->fence);
    if (r == VK_SUCCESS)
        r = vkQueueSubmit(ctx->queue, 1, &si, ctx->fence);
    if (r == VK_SUCCESS)
        r = vkWaitForFences(ctx->dev, 1, &ctx->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: queue submission failed (%s)", vk_result_str(r));
        return -1;
    }
    return 0;
}

static const char *be_name(ag_backend *be)
{
    (void)be;
    return "vulkan";
}

static const char *be_device_name(ag_backend *be) { return ((vk_ctx *)be->impl)->desc; }

static void be_free(ag_backend *be)
{
    vk_ctx *ctx = be->impl;
    if (ctx->dev) {
        vkDeviceWaitIdle(ctx->dev);
        vk_profile_close(ctx);
        vk_compute_free(ctx);
        vk_chunks_free(ctx);
        vk_descriptors_free(ctx);
        vk_pipelines_free(ctx);
        vk_memory_free(ctx);
        if (ctx->fence)
            vkDestroyFence(ctx->dev, ctx->fence, NULL);
        if (ctx->cmd_pool)
            vkDestroyCommandPool(ctx->dev, ctx->cmd_pool, NULL);
        vkDestroyDevice(ctx->dev, NULL);
    }
    if (ctx->instance)
        vkDestroyInstance(ctx->instance, NULL);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static const ag_backend_iface vk_iface = {
    .name = be_name,
    .device_name = be_device_name,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_from_host = NULL,
    .buffer_free = vk_buffer_free,
    .buffer_write = vk_buffer_write,
    .buffer_read = vk_buffer_read,
    .supports_node = vk_supports_node,
    .compute = vk_compute,
    .free = be_free,
};

static int pick_device(vk_ctx *ctx, int index)
{
    uint32_t n;
    VkPhysicalDevice *d = list_devices(ctx->instance, &n);
    if (!d)
        return -1;
    const char *env = getenv("AG_VULKAN_DEVICE");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 0) {
            free(d);
            ag_set_error("vulkan: AG_VULKAN_DEVICE='%s' is not a device index", env);
            return -1;
        }
        index = (int)v;
    }
    if (index >= (int)n) {
        free(d);
        ag_set_error("vulkan: device index %d out of range (%u devices)", index, n);
        return -1;
    }
    if (index < 0) {
        index = 0;
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(d[i], &p);
            if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) {
                index = (int)i;
                break;
            }
        }
    }
    ctx->phys = d[index];
    free(d);
    return 0;
}

/* The decode matvec's shape (vk_limits.matvec_*): defaults, or the AG_VK_MATVEC_ROWS (1..8) and
 * AG_VK_MATVEC_WG (a power of two, 16..1024) a sweep sets; its shared memory (WG * rows * 8
 * columns floats) must fit the device. */
static int matvec_shape(vk_ctx *ctx)
{
    vk_limits *l = &ctx->lim;
    l->matvec_rows = 2;
    l->matvec_wg = 32;
    const char *r = getenv("AG_VK_MATVEC_ROWS"), *w = getenv("AG_VK_MATVEC_WG");
    if (r && *r)
        l->matvec_rows = (uint32_t)strtoul(r, NULL, 10);
    if (w && *w)
        l->matvec_wg = (uint32_t)strtoul(w, NULL, 10);
    const uint64_t shared = (uint64_t)l->matvec_wg * l->matvec_rows * 8 * sizeof(float);
    if (l->matvec_rows < 1 || l->matvec_rows > 8 || l->matvec_wg < 16 || l->matvec_wg > 1024 ||
        (l->matvec_wg & (l->matvec_wg - 1)) || l->matvec_wg > l->max_wg_invocations || shared > l->max_shared) {
        ag_set_error("vulkan: decode matvec of %u rows x %u threads (AG_VK_MATVEC_ROWS 1..8, AG_VK_MATVEC_WG a "
                     "power of two 16..1024) does not fit device '%s' (%u threads, %u bytes shared)",
                     l->matvec_rows, l->matvec_wg, ctx->name, l->max_wg_invocations, l->max_shared);
        return -1;
    }
    return 0;
}

static int device_create(vk_ctx *ctx)
{
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(ctx->phys, &p);
    if (p.apiVersion < VK_API_VERSION_1_1) {
        ag_set_error("vulkan: device '%s' supports only Vulkan %u.%u (1.1 needed)", p.deviceName,
                     VK_VERSION_MAJOR(p.apiVersion), VK_VERSION_MINOR(p.apiVersion));
        return -1;
    }
    snprintf(ctx->name, sizeof ctx->name, "%s", p.deviceName);
    ctx->lim.min_align = p.limits.minStorageBufferOffsetAlignment ? p.limits.minStorageBufferOffsetAlignment : 1;
    ctx->lim.max_range = p.limits.maxStorageBufferRange;
    for (int i = 0; i < 3; i++)
        ctx->lim.max_groups[i] = p.limits.maxComputeWorkGroupCount[i];
    ctx->lim.max_wg_invocations = p.limits.maxComputeWorkGroupInvocations;
    ctx->lim.max_shared = p.limits.maxComputeSharedMemorySize;
    ctx->lim.max_push = p.limits.maxPushConstantsSize;
    /* subgroup arithmetic in compute shaders (Vulkan 1.1 core query) */
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(ctx->phys, &p2);
    ctx->lim.subgroup_add = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                            (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                            (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && sg.subgroupSize > 0;
    const char *sgv = getenv("AG_VULKAN_SUBGROUP");
    if (sgv && strcmp(sgv, "0") == 0)
        ctx->lim.subgroup_add = false;
    else if (sgv && strcmp(sgv, "1") == 0 && !ctx->lim.subgroup_add) {
        ag_set_error("vulkan: AG_VULKAN_SUBGROUP=1 but device '%s' has no subgroup arithmetic in compute shaders",
                     p.deviceName);
        return -1;
    }
    if (matvec_shape(ctx) != 0)
        return -1;
    snprintf(ctx->desc, sizeof ctx->desc, "%s, %s reductions", ctx->name,
             ctx->lim.subgroup_add ? "subgroup" : "shared-memory");
    /* AG_VULKAN_MAX_RANGE lowers maxStorageBufferRange so tests exercise the split paths */
    const char *mr = getenv("AG_VULKAN_MAX_RANGE");
    if (mr && *mr) {
        unsigned long long v = strtoull(mr, NULL, 10);
        if (v >= 256 && v < ctx->lim.max_range)
            ctx->lim.max_range = (uint32_t)v;
    }

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->phys, &nq, NULL);
    VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
    if (!q) {
        ag_set_error("vulkan: out of memory");
        return -1;
    }
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->phys, &nq, q);
    /* prefer a compute queue without graphics (async compute), else any with compute */
    int fam = -1;
    for (uint32_t i = 0; i < nq; i++)
        if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) {
            fam = (int)i;
            break;
        }
    for (uint32_t i = 0; fam < 0 && i < nq; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            fam = (int)i;
    free(q);
    if (fam < 0) {
        ag_set_error("vulkan: device '%s' has no compute queue", ctx->name);
        return -1;
    }
    ctx->queue_family = (uint32_t)fam;
    const float prio = 1.0f;
    const VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    const VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
    };
    VkResult r = vkCreateDevice(ctx->phys, &dci, NULL, &ctx->dev);
    if (r != VK_SUCCESS) {
        ctx->dev = VK_NULL_HANDLE;
        ag_set_error("vulkan: cannot create a device on '%s' (%s)", ctx->name, vk_result_str(r));
        return -1;
    }
    vkGetDeviceQueue(ctx->dev, ctx->queue_family, 0, &ctx->queue);

    const VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    r = vkCreateCommandPool(ctx->dev, &pci, NULL, &ctx->cmd_pool);
    if (r == VK_SUCCESS) {
        const VkCommandBufferAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
            .commandPool = ctx->cmd_pool,
            .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
            .commandBufferCount = 1,
        };
        r = vkAllocateCommandBuffers(ctx->dev, &ai, &ctx->cmd);
    }
    if (r == VK_SUCCESS) {
        const VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        r = vkCreateFence(ctx->dev, &fci, NULL, &ctx->fence);
    }
    if (r != VK_SUCCESS) {
        ag_set_error("vulkan: cannot create command objects (%s)", vk_result_str(r));
        return -1;
    }
    return 0;
}

ag_backend *ag_backend_vulkan_new(int device_index)
{
    vk_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx)
        ctx->chunk_nodes = -1; /* AG_VK_CHUNK_NODES read at the first big compute */
    if (!ctx) {
        ag_set_error("vulkan: out of memory");
        return NULL;
    }
    ctx->be.iface = &vk_iface;
    ctx->be.impl = ctx;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ctx->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (instance_create(&ctx->instance, true) != 0 || pick_device(ctx, device_index) != 0 ||
        device_create(ctx) != 0 || vk_memory_init(ctx) != 0) {
        be_free(&ctx->be);
        return NULL;
    }
    /* tensor offsets aligned for direct binding (and for 16-byte vector loads) */
    ctx->be.alignment = ctx->lim.min_align > 16 ? (size_t)ctx->lim.min_align : 16;
    if (ag_backend_turns_attach(&ctx->be) != 0) {
        be_free(&ctx->be);
        return NULL;
    }
    return &ctx->be;
}

const vk_limits *vk_ctx_limits(const vk_ctx *ctx) { return &ctx->lim; }
