/* GGUF v3 layout (ggml docs/gguf.md): magic, version, n_tensors, n_kv, KVs, tensor infos
 * (name, n_dims, ne[], type, offset), padding to the alignment, tensor data (each aligned). */
#include "gguf_stream.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *name;
    ag_type type;
    int n_dims;
    int64_t ne[AG_MAX_DIMS];
    size_t nbytes;
    uint64_t offset;
} gs_tensor;

struct gs_writer {
    uint8_t *kv;   /* serialized KVs */
    size_t kv_n, kv_cap;
    uint64_t n_kv;
    char **keys;
    gs_tensor *t;
    size_t n_t, cap_t;
    FILE *f;
    char *path, *tmp;
    int next;      /* next tensor to write */
    uint64_t pos;  /* bytes written in the data section */
    size_t part;   /* bytes of tensor `next` written so far */
    bool failed;
};

gs_writer *gs_new(void)
{
    gs_writer *w = calloc(1, sizeof *w);
    if (!w)
        ag_set_error("out of memory");
    return w;
}

void gs_free(gs_writer *w)
{
    if (!w)
        return;
    if (w->f) {
        fclose(w->f);
        unlink(w->tmp);
    }
    for (uint64_t k = 0; k < w->n_kv; k++)
        free(w->keys[k]);
    free(w->keys);
    for (size_t k = 0; k < w->n_t; k++)
        free(w->t[k].name);
    free(w->t);
    free(w->kv);
    free(w->path);
    free(w->tmp);
    free(w);
}

static int put(gs_writer *w, const void *d, size_t n)
{
    if (w->kv_n + n > w->kv_cap) {
        size_t nc = w->kv_cap ? w->kv_cap * 2 : 4096;
        while (nc < w->kv_n + n)
            nc *= 2;
        uint8_t *nk = realloc(w->kv, nc);
        if (!nk) {
            ag_set_error("gguf writer: out of memory");
            return -1;
        }
        w->kv = nk;
        w->kv_cap = nc;
    }
    memcpy(w->kv + w->kv_n, d, n);
    w->kv_n += n;
    return 0;
}

static int put_u32(gs_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(gs_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(gs_writer *w, const char *s)
{
    size_t n = strlen(s);
    return put_u64(w, n) || put(w, s, n);
}

static int begin_kv(gs_writer *w, const char *key, uint32_t type)
{
    for (uint64_t k = 0; k < w->n_kv; k++)
        if (strcmp(w->keys[k], key) == 0) {
            ag_set_error("gguf writer: key '%s' set twice", key);
            return -1;
        }
    char **nk = realloc(w->keys, (w->n_kv + 1) * sizeof *nk);
    if (!nk) {
        ag_set_error("gguf writer: out of memory");
        return -1;
    }
    w->keys = nk;
    if (!(w->keys[w->n_kv] = strdup(key))) {
        ag_set_error("gguf writer: out of memory");
        return -1;
    }
    w->n_kv++;
    return put_str(w, key) || put_u32(w, type);
}

int gs_set_u32(gs_writer *w, const char *key, uint32_t v) { return begin_kv(w, key, AG_GGUF_UINT32) || put(w, &v, 4) ? -1 : 0; }
int gs_set_i32(gs_writer *w, const char *key, int32_t v) { return begin_kv(w, key, AG_GGUF_INT32) || put(w, &v, 4) ? -1 : 0; }
int gs_set_f32(gs_writer *w, const char *key, float v) { return begin_kv(w, key, AG_GGUF_FLOAT32) || put(w, &v, 4) ? -1 : 0; }
int gs_set_f64(gs_writer *w, const char *key, double v) { return begin_kv(w, key, AG_GGUF_FLOAT64) || put(w, &v, 8) ? -1 : 0; }
int gs_set_bool(gs_writer *w, const char *key, bool v)
{
    uint8_t b = v;
    return begin_kv(w, key, AG_GGUF_BOOL) || put(w, &b, 1) ? -1 : 0;
}
int gs_set_str(gs_writer *w, const char *key, const char *v) { return begin_kv(w, key, AG_GGUF_STRING) || put_str(w, v) ? -1 : 0; }

static size_t type_size(int type)
{
    switch (type) {
    case AG_GGUF_UINT8: case AG_GGUF_INT8: case AG_GGUF_BOOL: return 1;
    case AG_GGUF_UINT16: case AG_GGUF_INT16: return 2;
    case AG_GGUF_UINT32: case AG_GGUF_INT32: case AG_GGUF_FLOAT32: return 4;
    case AG_GGUF_UINT64: case AG_GGUF_INT64: case AG_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

int gs_set_arr(gs_writer *w, const char *key, int type, const void *data, uint64_t n)
{
    size_t es = type_size(type);
    if (!es) {
        ag_set_error("gguf writer: array type %d not supported for '%s'", type, key);
        return -1;
    }
    return begin_kv(w, key, AG_GGUF_ARRAY) || put_u32(w, (uint32_t)type) || put_u64(w, n) ||
                   put(w, data, (size_t)n * es)
               ? -1
               : 0;
}

int gs_set_arr_str(gs_writer *w, const char *key, const char *const *strs, uint64_t n)
{
    if (begin_kv(w, key, AG_GGUF_ARRAY) || put_u32(w, AG_GGUF_STRING) || put_u64(w, n))
        return -1;
    for (uint64_t k = 0; k < n; k++)
        if (put_str(w, strs[k]))
            return -1;
    return 0;
}

static uint64_t align_up(uint64_t x) { return (x + AG_GGUF_DEFAULT_ALIGNMENT - 1) / AG_GGUF_DEFAULT_ALIGNMENT * AG_GGUF_DEFAULT_ALIGNMENT; }

int gs_add_tensor(gs_writer *w, const char *name, ag_type type, int n_dims, const int64_t *ne)
{
    if (n_dims < 1 || n_dims > AG_MAX_DIMS || !ag_type_valid((int)type) || ne[0] <= 0 ||
        ne[0] % ag_type_block_elems(type)) {
        ag_set_error("gguf writer: tensor '%s': bad rank, type or row length for that type", name);
        return -1;
    }
    for (size_t k = 0; k < w->n_t; k++)
        if (strcmp(w->t[k].name, name) == 0) {
            ag_set_error("gguf writer: tensor '%s' added twice", name);
            return -1;
        }
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 64;
        gs_tensor *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt) {
            ag_set_error("gguf writer: out of memory");
            return -1;
        }
        w->t = nt;
        w->cap_t = nc;
    }
    gs_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) {
        ag_set_error("gguf writer: out of memory");
        return -1;
    }
    t->type = type;
    t->n_dims = n_dims;
    size_t rows = 1;
    for (int d = 0; d < n_dims; d++) {
        t->ne[d] = ne[d];
        if (d)
            rows *= (size_t)ne[d];
    }
    t->nbytes = ag_row_size(type, ne[0]) * rows;
    if (!t->nbytes) {
        free(t->name);
        ag_set_error("gguf writer: tensor '%s' is empty", name);
        return -1;
    }
    t->offset = w->n_t ? align_up(w->t[w->n_t - 1].offset + w->t[w->n_t - 1].nbytes) : 0;
    return (int)w->n_t++;
}

size_t gs_tensor_nbytes(const gs_writer *w, int idx)
{
    return idx >= 0 && (size_t)idx < w->n_t ? w->t[idx].nbytes : 0;
}

static int fwrite_all(gs_writer *w, const void *d, size_t n)
{
    if (n && fwrite(d, 1, n, w->f) != n) {
        ag_set_error("%s: write failed: %s", w->tmp, strerror(errno));
        w->failed = true;
        return -1;
    }
    return 0;
}

static int write_zeros(gs_writer *w, size_t n)
{
    static const uint8_t z[AG_GGUF_DEFAULT_ALIGNMENT];
    return fwrite_all(w, z, n);
}

int gs_begin(gs_writer *w, const char *path)
{
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 5);
    if (!w->path || !w->tmp) {
        ag_set_error("out of memory");
        return -1;
    }
    sprintf(w->tmp, "%s.tmp", path);
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        ag_set_error("%s: cannot create: %s", w->tmp, strerror(errno));
        return -1;
    }
    uint32_t version = 3;
    uint64_t nt = w->n_t;
    if (fwrite_all(w, "GGUF", 4) || fwrite_all(w, &version, 4) || fwrite_all(w, &nt, 8) ||
        fwrite_all(w, &w->n_kv, 8) || fwrite_all(w, w->kv, w->kv_n))
        return -1;
    uint64_t hdr = 24 + w->kv_n;
    for (size_t k = 0; k < w->n_t; k++) {
        const gs_tensor *t = &w->t[k];
        uint64_t len = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
        if (fwrite_all(w, &len, 8) || fwrite_all(w, t->name, len) || fwrite_all(w, &nd, 4))
            return -1;
        for (int d = 0; d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            if (fwrite_all(w, &ne, 8))
                return -1;
        }
        if (fwrite_all(w, &ty, 4) || fwrite_all(w, &t->offset, 8))
            return -1;
        hdr += 8 + len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    return write_zeros(w, (size_t)(align_up(hdr) - hdr));
}

int gs_write_part(gs_writer *w, int idx, const void *data, size_t size)
{
    if (!w->f || w->failed || idx != w->next || (size_t)idx >= w->n_t ||
        size > w->t[idx].nbytes - w->part) {
        ag_set_error("gguf writer: tensor %d written out of order or past its size", idx);
        return -1;
    }
    const gs_tensor *t = &w->t[idx];
    if (w->part == 0 && write_zeros(w, (size_t)(t->offset - w->pos)))
        return -1;
    if (fwrite_all(w, data, size))
        return -1;
    w->part += size;
    w->pos = t->offset + w->part;
    if (w->part == t->nbytes) {
        w->part = 0;
        w->next++;
    }
    return 0;
}

int gs_write_tensor(gs_writer *w, int idx, const void *data, size_t size)
{
    if ((size_t)idx < w->n_t && size != w->t[idx].nbytes) {
        ag_set_error("gguf writer: tensor '%s' is %zu bytes, %zu given", w->t[idx].name, w->t[idx].nbytes, size);
        return -1;
    }
    return gs_write_part(w, idx, data, size);
}

int gs_finish(gs_writer *w)
{
    if (!w->f || w->failed || (size_t)w->next != w->n_t || w->part) {
        ag_set_error("gguf writer: %zu of %zu tensors written", (size_t)w->next, w->n_t);
        return -1;
    }
    /* Pad the last tensor so the file size is a multiple of the alignment, as ggml does. */
    if (write_zeros(w, (size_t)(align_up(w->pos) - w->pos)))
        return -1;
    int rc = fflush(w->f) != 0 || fsync(fileno(w->f)) != 0;
    rc |= fclose(w->f) != 0;
    w->f = NULL;
    if (rc) {
        ag_set_error("%s: write failed: %s", w->tmp, strerror(errno));
        unlink(w->tmp);
        return -1;
    }
    if (rename(w->tmp, w->path) != 0) {
        ag_set_error("%s: rename to %s failed: %s", w->tmp, w->path, strerror(errno));
        unlink(w->tmp);
        return -1;
    }
    return 0;
}
