/* Weights of one GGUF file bound to a backend: zero-copy on host-visible backends, one upload
 * per tensor elsewhere. */
#include "anygpt/weights.h"
#include "anygpt/error.h"

#include <stdlib.h>
#include <string.h>

struct ag_weights {
    ag_gguf *gguf;
    ag_ctx *ctx;
    ag_buffer *buf;
    char *path;
    size_t device_bytes, total_bytes;
};

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static int bind_zero_copy(ag_weights *w, ag_backend *be)
{
    size_t map_size;
    const void *map = ag_gguf_mapping(w->gguf, &map_size);
    /* the backend only reads weights; the mapping is read-only */
    w->buf = ag_buffer_from_host(be, (void *)(uintptr_t)map, map_size);
    if (!w->buf)
        return -1;
    for (int64_t i = 0; i < ag_gguf_n_tensors(w->gguf); i++)
        if (ag_tensor_bind(ag_ctx_tensor(w->ctx, (size_t)i), w->buf, ag_gguf_tensor_file_offset(w->gguf, i)) != 0)
            return -1;
    return 0;
}

static int upload(ag_weights *w, ag_backend *be, ag_progress_fn progress, void *user)
{
    /* 256 bytes satisfies minStorageBufferOffsetAlignment on every known device */
    const size_t align = be->alignment > 256 ? be->alignment : 256;
    const int64_t n = ag_gguf_n_tensors(w->gguf);
    size_t total = 0;
    for (int64_t i = 0; i < n; i++)
        total = align_up(total, align) + ag_gguf_tensor_size(w->gguf, i);
    w->buf = ag_buffer_alloc(be, total ? total : align);
    if (!w->buf) {
        ag_set_error("%s: cannot allocate %.1f MiB of %s memory for the weights: %s", w->path,
                     (double)total / 1048576.0, ag_backend_name(be), ag_last_error());
        return -1;
    }
    w->device_bytes = total;
    size_t off = 0, done = 0;
    for (int64_t i = 0; i < n; i++) {
        ag_tensor *t = ag_ctx_tensor(w->ctx, (size_t)i);
        const size_t size = ag_gguf_tensor_size(w->gguf, i);
        off = align_up(off, align);
        if (ag_tensor_bind(t, w->buf, off) != 0 || ag_tensor_set(t, ag_gguf_tensor_data(w->gguf, i), 0, size) != 0)
            return -1;
        off += size;
        done += size;
        if (progress && !progress(user, done, w->total_bytes)) {
            ag_set_error("%s: loading cancelled", w->path);
            return -1;
        }
    }
    return 0;
}

ag_weights *ag_weights_load(ag_backend *be, const char *path, const char *arch, ag_progress_fn progress, void *user)
{
    ag_weights *w = calloc(1, sizeof *w);
    if (!w) {
        ag_set_error("out of memory");
        return NULL;
    }
    w->path = strdup(path);
    w->gguf = ag_gguf_open(path);
    if (!w->path || !w->gguf)
        goto fail;
    if (arch) {
        const char *have = ag_gguf_get_str(w->gguf, "general.architecture");
        if (!have || strcmp(have, arch) != 0) {
            ag_set_error("%s: this is a '%s' model file, expected '%s'", path, have ? have : "(no architecture)", arch);
            goto fail;
        }
    }
    const int64_t n = ag_gguf_n_tensors(w->gguf);
    w->ctx = ag_ctx_new((size_t)n + 1);
    if (!w->ctx)
        goto fail;
    for (int64_t i = 0; i < n; i++) {
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(w->gguf, i, ne);
        ag_tensor *t = ag_new_tensor(w->ctx, ag_gguf_tensor_type(w->gguf, i), AG_MAX_DIMS, ne);
        if (!t) {
            ag_set_error("%s: tensor '%s': %s", path, ag_gguf_tensor_name(w->gguf, i), ag_last_error());
            goto fail;
        }
        t->flags |= AG_FLAG_PARAM;
        ag_set_name(t, "%s", ag_gguf_tensor_name(w->gguf, i));
        w->total_bytes += ag_gguf_tensor_size(w->gguf, i);
    }
    ag_clear_error();
    if (bind_zero_copy(w, be) != 0) {
        ag_buffer_free(w->buf);
        w->buf = NULL;
        if (upload(w, be, progress, user) != 0)
            goto fail;
    } else if (progress) {
        progress(user, w->total_bytes, w->total_bytes);
    }
    return w;
fail:
    ag_weights_free(w);
    return NULL;
}

void ag_weights_free(ag_weights *w)
{
    if (!w)
        return;
    ag_buffer_free(w->buf);
    ag_ctx_free(w->ctx);
    ag_gguf_close(w->gguf);
    free(w->path);
    free(w);
}

const ag_gguf *ag_weights_gguf(const ag_weights *w) { return w->gguf; }
const char *ag_weights_path(const ag_weights *w) { return w->path; }
size_t ag_weights_device_bytes(const ag_weights *w) { return w->device_bytes; }
size_t ag_weights_total_bytes(const ag_weights *w) { return w->total_bytes; }

ag_tensor *ag_weights_find(ag_weights *w, const char *name)
{
    int64_t i = ag_gguf_find_tensor(w->gguf, name);
    return i < 0 ? NULL : ag_ctx_tensor(w->ctx, (size_t)i);
}

ag_tensor *ag_weights_get(ag_weights *w, const char *name)
{
    ag_tensor *t = ag_weights_find(w, name);
    if (!t)
        ag_set_error("%s: tensor '%s' is missing", w->path, name);
    return t;
}

ag_tensor *ag_weights_get_shaped(ag_weights *w, const char *name, int n_dims, const int64_t *ne)
{
    ag_tensor *t = ag_weights_get(w, name);
    if (!t)
        return NULL;
    for (int i = 0; i < AG_MAX_DIMS; i++) {
        int64_t want = i < n_dims ? ne[i] : 1;
        if (t->ne[i] != want) {
            ag_set_error("%s: tensor '%s' has shape [%lld,%lld,%lld,%lld], expected dim %d = %lld", w->path, name,
                         (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], i,
                         (long long)want);
            return NULL;
        }
    }
    return t;
}
