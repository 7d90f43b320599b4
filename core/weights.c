/* Weights of one GGUF file bound to a backend: zero-copy on host-visible backends, one upload
 * per tensor elsewhere. Loads of the same file onto the same backend share one ag_weights
 * (process-wide list, refcounted), so every model object using a file sees one copy. */
#include "anygpt/weights.h"
#include "anygpt/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* what makes two loads "the same file": the inode as it is now (a file rewritten in place or
 * replaced under the same name is loaded anew) */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
} file_key;

struct ag_weights {
    ag_gguf *gguf;
    ag_ctx *ctx;
    ag_buffer *buf;
    char *path;
    size_t device_bytes, total_bytes;
    /* sharing: in the list while users > 0 */
    ag_backend *be;
    file_key key;
    bool listed;
    int users;
    ag_weights *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ag_weights *g_shared;

static bool key_of(const char *path, file_key *k)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    *k = (file_key){st.st_dev, st.st_ino, st.st_size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
    return true;
}

static ag_weights *find_locked(ag_backend *be, const file_key *k)
{
    for (ag_weights *w = g_shared; w; w = w->next)
        if (w->be == be && w->key.dev == k->dev && w->key.ino == k->ino && w->key.size == k->size &&
            w->key.mtime_ns == k->mtime_ns)
            return w;
    return NULL;
}

static bool arch_ok(const ag_weights *w, const char *path, const char *arch)
{
    if (!arch)
        return true;
    const char *have = ag_gguf_get_str(w->gguf, "general.architecture");
    if (!have || strcmp(have, arch) != 0) {
        ag_set_error("%s: this is a '%s' model file, expected '%s'", path, have ? have : "(no architecture)", arch);
        return false;
    }
    return true;
}

/* Another user of a listed entry (arch checked), or NULL. */
static ag_weights *share_locked(ag_backend *be, const file_key *k, const char *path, const char *arch, bool *bad)
{
    ag_weights *w = find_locked(be, k);
    *bad = false;
    if (!w)
        return NULL;
    if (!arch_ok(w, path, arch)) {
        *bad = true;
        return NULL;
    }
    w->users++;
    return w;
}

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

static ag_weights *load_new(ag_backend *be, const char *path, const char *arch, ag_progress_fn progress, void *user);

ag_weights *ag_weights_load(ag_backend *be, const char *path, const char *arch, ag_progress_fn progress, void *user)
{
    file_key k;
    bool bad;
    if (!key_of(path, &k))
        return load_new(be, path, arch, progress, user); /* fails with the reader's message */
    pthread_mutex_lock(&g_lock);
    ag_weights *w = share_locked(be, &k, path, arch, &bad);
    pthread_mutex_unlock(&g_lock);
    if (bad)
        return NULL;
    if (w) {
        if (progress)
            progress(user, w->total_bytes, w->total_bytes);
        return w;
    }
    /* loaded outside the lock (may take long); a concurrent load of the same file keeps the
     * first one listed */
    ag_weights *fresh = load_new(be, path, arch, progress, user);
    if (!fresh)
        return NULL;
    pthread_mutex_lock(&g_lock);
    w = share_locked(be, &k, path, arch, &bad);
    if (!w) {
        fresh->be = be;
        fresh->key = k;
        fresh->listed = true;
        fresh->users = 1;
        fresh->next = g_shared;
        g_shared = fresh;
    }
    pthread_mutex_unlock(&g_lock);
    if (w)
        ag_weights_free(fresh);
    return w ? w : fresh;
}

static ag_weights *load_new(ag_backend *be, const char *path, const char *arch, ag_progress_fn progress, void *user)
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
    if (w->listed) {
        pthread_mutex_lock(&g_lock);
        const bool last = --w->users == 0;
        if (last)
            for (ag_weights **p = &g_shared; *p; p = &(*p)->next)
                if (*p == w) {
                    *p = w->next;
                    break;
                }
        pthread_mutex_unlock(&g_lock);
        if (!last)
            return;
    }
    ag_buffer_free(w->buf);
    ag_ctx_free(w->ctx);
    ag_gguf_close(w->gguf);
    free(w->path);
    free(w);
}

int ag_weights_users(const ag_weights *w)
{
    pthread_mutex_lock(&g_lock);
    const int n = w->listed ? w->users : 1;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int ag_weights_shared_users(ag_backend *be, const char *path)
{
    file_key k;
    if (!path || !key_of(path, &k))
        return 0;
    pthread_mutex_lock(&g_lock);
    const ag_weights *w = find_locked(be, &k);
    const int n = w ? w->users : 0;
    pthread_mutex_unlock(&g_lock);
    return n;
}

void ag_weights_shared_stats(size_t *n_files, size_t *n_users, size_t *device_bytes)
{
    size_t f = 0, u = 0, d = 0;
    pthread_mutex_lock(&g_lock);
    for (const ag_weights *w = g_shared; w; w = w->next) {
        f++;
        u += (size_t)w->users;
        d += w->device_bytes;
    }
    pthread_mutex_unlock(&g_lock);
    if (n_files)
        *n_files = f;
    if (n_users)
        *n_users = u;
    if (device_bytes)
        *device_bytes = d;
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
