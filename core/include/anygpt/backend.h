/* anygpt core: backends (cpu, vulkan), their buffers, and graph memory planning. */
#ifndef ANYGPT_BACKEND_H
#define ANYGPT_BACKEND_H

#include "anygpt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_backend ag_backend;
typedef struct ag_buffer ag_buffer;

/* A span of backend memory. host is non-NULL when the CPU can address it directly. */
struct ag_buffer {
    ag_backend *backend;
    size_t size;
    void *host;
    void *impl;     /* backend private */
    bool borrowed;  /* wraps memory the buffer does not own (e.g. an mmap'd GGUF) */
};

/* The interface each backend implements. Return 0 on success, -1 with ag_set_error() else. */
typedef struct ag_backend_iface {
    const char *(*name)(ag_backend *be);
    /* Human-readable device description (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
    const char *(*device_name)(ag_backend *be);
    ag_buffer *(*buffer_alloc)(ag_backend *be, size_t size);
    /* Wrap host memory without copying; NULL where the backend cannot (vulkan). */
    ag_buffer *(*buffer_from_host)(ag_backend *be, void *ptr, size_t size);
    void (*buffer_free)(ag_buffer *buf);
    /* Optional: see ag_buffer_hint_grows. */
    void (*buffer_hint_grows)(ag_buffer *buf);
    int (*buffer_write)(ag_buffer *buf, size_t offset, const void *src, size_t n);
    int (*buffer_read)(ag_buffer *buf, size_t offset, void *dst, size_t n);
    /* Can this backend execute this node (op + types + shapes)? */
    bool (*supports_node)(ag_backend *be, const ag_tensor *node);
    int (*compute)(ag_backend *be, ag_graph *g);
    void (*free)(ag_backend *be);
} ag_backend_iface;

struct ag_backend {
    const ag_backend_iface *iface;
    size_t alignment; /* of tensor offsets inside buffers */
    void *impl;
    struct ag_backend_turns *turns; /* fair-turn lock (ag_backend_turn_begin), set by the constructors */
};

/* cpu: n_threads <= 0 picks the number of online processors. */
ag_backend *ag_backend_cpu_new(int n_threads);
int ag_backend_cpu_n_threads(ag_backend *be);

/* vulkan: device_index < 0 picks the first discrete GPU, else the first device. NULL with
 * ag_last_error() set when Vulkan is unavailable (not built, no loader, no device). */
ag_backend *ag_backend_vulkan_new(int device_index);
/* Number of Vulkan physical devices (0 if none / not built); names via ag_vulkan_device_name. */
int ag_vulkan_device_count(void);
int ag_vulkan_device_name(int index, char *out, size_t out_len);
/* Index of the first device that is a GPU (discrete, integrated or virtual; not a CPU driver
 * such as lavapipe), -1 if none. */
int ag_vulkan_first_gpu(void);

typedef enum ag_device_kind { AG_DEVICE_AUTO = 0, AG_DEVICE_CPU, AG_DEVICE_VULKAN } ag_device_kind;
/* auto: with device_index >= 0 that Vulkan device; else the first Vulkan GPU (a CPU driver such
 * as lavapipe is never chosen by auto: the cpu backend is faster there), else cpu. */
ag_backend *ag_backend_new(ag_device_kind kind, int device_index, int n_threads);

void ag_backend_free(ag_backend *be);
const char *ag_backend_name(ag_backend *be);
const char *ag_backend_device_name(ag_backend *be);
bool ag_backend_supports_node(ag_backend *be, const ag_tensor *node);
int ag_backend_compute(ag_backend *be, ag_graph *g);

/* Fair turns when several threads share one backend (elements of a process share one backend
 * per device): ag_backend_compute runs each graph inside a turn, and turns are given in the
 * order threads asked for them (FIFO ticket lock). So a thread submitting graph after graph
 * (LLM decode steps) and another running a few long graphs (SoundStorm passes) interleave, and
 * neither waits for more than the turn already queued before it. A thread may hold a turn over
 * several graphs (begin/end nest on the same thread). Both backends are safe to call from
 * several threads (their own locks guard buffers, scratch and the thread pool / queue); turns
 * add the order. */
void ag_backend_turn_begin(ag_backend *be);
void ag_backend_turn_end(ag_backend *be);
/* Turns given so far, how many of them had to wait for another thread's turn, and how many
 * threads wait for one now (any pointer may be NULL). */
void ag_backend_turn_stats(ag_backend *be, uint64_t *served, uint64_t *waited, int *waiting);

ag_buffer *ag_buffer_alloc(ag_backend *be, size_t size);
/* Says that buf, just allocated and not written yet, fills a little at a time (a KV cache sized
 * for the whole context): the backend keeps its resident memory to what is written (cpu: small
 * pages, where big buffers otherwise get transparent huge pages). A hint: no-op where unknown. */
void ag_buffer_hint_grows(ag_buffer *buf);
ag_buffer *ag_buffer_from_host(ag_backend *be, void *ptr, size_t size);
void ag_buffer_free(ag_buffer *buf);

/* Bind t to buf at offset (aligned by the caller); sets t->data when buf is host-visible. */
int ag_tensor_bind(ag_tensor *t, ag_buffer *buf, size_t offset);
/* Copy bytes into / out of a tensor's storage (offset within the tensor, contiguous tensors). */
int ag_tensor_set(ag_tensor *t, const void *src, size_t offset, size_t n);
int ag_tensor_get(const ag_tensor *t, void *dst, size_t offset, size_t n);

/* Graph memory planner: gives every unbound tensor of a graph (inputs, intermediates) a place
 * in one compute buffer, reusing the space of tensors whose last reader has run. Outputs and
 * inputs are never overlapped with anything alive. The buffer is kept and grown as needed. */
typedef struct ag_allocator ag_allocator;
ag_allocator *ag_allocator_new(ag_backend *be);
void ag_allocator_free(ag_allocator *a);
int ag_allocator_alloc_graph(ag_allocator *a, ag_graph *g);
size_t ag_allocator_buffer_size(const ag_allocator *a);

#ifdef __cplusplus
}
#endif
#endif
