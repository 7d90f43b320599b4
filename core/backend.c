/* Backend-independent entry points: buffers, tensor binding and I/O, backend selection. */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "ag_config.h"
#include "backend_turns.h"

#include <stdlib.h>
#include <string.h>

#if !AG_HAVE_VULKAN
ag_backend *ag_backend_vulkan_new(int device_index)
{
    (void)device_index;
    ag_set_error("vulkan: this build has no Vulkan backend (configure with -Dvulkan=enabled)");
    return NULL;
}
int ag_vulkan_device_count(void) { return 0; }
int ag_vulkan_first_gpu(void) { return -1; }
int ag_vulkan_device_name(int index, char *out, size_t out_len)
{
    (void)index;
    if (out_len)
        out[0] = '\0';
    ag_set_error("vulkan: not built");
    return -1;
}
#endif

ag_backend *ag_backend_new(ag_device_kind kind, int device_index, int n_threads)
{
    switch (kind) {
    case AG_DEVICE_CPU: return ag_backend_cpu_new(n_threads);
    case AG_DEVICE_VULKAN: return ag_backend_vulkan_new(device_index);
    case AG_DEVICE_AUTO:
    default:
        if (device_index >= 0)
            return ag_backend_vulkan_new(device_index);
        {
            int gpu = ag_vulkan_first_gpu();
            ag_backend *be = gpu >= 0 ? ag_backend_vulkan_new(gpu) : NULL;
            if (be)
                return be;
        }
        return ag_backend_cpu_new(n_threads);
    }
}

void ag_backend_free(ag_backend *be)
{
    if (be) {
        ag_backend_turns_detach(be);
        be->iface->free(be);
    }
}

const char *ag_backend_name(ag_backend *be) { return be->iface->name(be); }
const char *ag_backend_device_name(ag_backend *be) { return be->iface->device_name(be); }

bool ag_backend_supports_node(ag_backend *be, const ag_tensor *node) { return be->iface->supports_node(be, node); }

int ag_backend_compute(ag_backend *be, ag_graph *g)
{
    for (size_t i = 0; i < ag_graph_n_nodes(g); i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        const ag_tensor *base = n->view_src ? n->view_src : n;
        if (!base->buffer) {
            ag_set_error("%s: node '%s' (%s) has no storage: allocate the graph first", ag_backend_name(be), n->name,
                         ag_op_name(n->op));
            return -1;
        }
    }
    for (size_t i = 0; i < ag_graph_n_leafs(g); i++) {
        const ag_tensor *l = ag_graph_leaf(g, i);
        if (!l->buffer) {
            ag_set_error("%s: tensor '%s' has no storage (weight not loaded or input not allocated)",
                         ag_backend_name(be), l->name);
            return -1;
        }
    }
    ag_backend_turn_begin(be);
    int rc = be->iface->compute(be, g);
    ag_backend_turn_end(be);
    return rc;
}

ag_buffer *ag_buffer_alloc(ag_backend *be, size_t size) { return be->iface->buffer_alloc(be, size ? size : 1); }

void ag_buffer_hint_grows(ag_buffer *buf)
{
    if (buf && buf->backend->iface->buffer_hint_grows)
        buf->backend->iface->buffer_hint_grows(buf);
}

ag_buffer *ag_buffer_from_host(ag_backend *be, void *ptr, size_t size)
{
    if (!be->iface->buffer_from_host) {
        ag_set_error("%s: cannot wrap host memory", ag_backend_name(be));
        return NULL;
    }
    return be->iface->buffer_from_host(be, ptr, size);
}

void ag_buffer_free(ag_buffer *buf)
{
    if (buf)
        buf->backend->iface->buffer_free(buf);
}

int ag_tensor_bind(ag_tensor *t, ag_buffer *buf, size_t offset)
{
    size_t n = ag_nbytes(t);
    if (offset > buf->size || n > buf->size - offset) {
        ag_set_error("tensor '%s' (%zu bytes at %zu) does not fit its buffer of %zu bytes", t->name, n, offset,
                     buf->size);
        return -1;
    }
    t->buffer = buf;
    t->offset = offset;
    t->data = buf->host ? (char *)buf->host + offset : NULL;
    return 0;
}

static const ag_tensor *storage_of(const ag_tensor *t, size_t *offs)
{
    if (t->view_src) {
        *offs = t->view_src->offset + t->view_offs;
        return t->view_src;
    }
    *offs = t->offset;
    return t;
}

int ag_tensor_set(ag_tensor *t, const void *src, size_t offset, size_t n)
{
    size_t base;
    const ag_tensor *s = storage_of(t, &base);
    if (!s->buffer) {
        ag_set_error("tensor '%s' has no storage yet", t->name);
        return -1;
    }
    if (offset > ag_nbytes(t) || n > ag_nbytes(t) - offset) {
        ag_set_error("write of %zu bytes at %zu past the end of tensor '%s' (%zu bytes)", n, offset, t->name,
                     ag_nbytes(t));
        return -1;
    }
    return s->buffer->backend->iface->buffer_write(s->buffer, base + offset, src, n);
}

int ag_tensor_get(const ag_tensor *t, void *dst, size_t offset, size_t n)
{
    size_t base;
    const ag_tensor *s = storage_of(t, &base);
    if (!s->buffer) {
        ag_set_error("tensor '%s' has no storage", t->name);
        return -1;
    }
    if (offset > ag_nbytes(t) || n > ag_nbytes(t) - offset) {
        ag_set_error("read of %zu bytes at %zu past the end of tensor '%s' (%zu bytes)", n, offset, t->name,
                     ag_nbytes(t));
        return -1;
    }
    return s->buffer->backend->iface->buffer_read(s->buffer, base + offset, dst, n);
}
