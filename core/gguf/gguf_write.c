/* GGUF v3 writer. KVs are kept serialized (type + value bytes) in insertion order, so copying
 * from a reader is a byte copy; tensor data is referenced and streamed out at write time. */
#include "gguf_internal.h"

#include "anygpt/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    uint8_t *raw; /* type (u32) + value, as in the file */
    size_t raw_len;
} wkv;

typedef struct wtensor {
    char *name;
    ag_type type;
    int n_dims;
    int64_t ne[AG_MAX_DIMS];
    const void *data;
    size_t size;
} wtensor;

struct ag_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    size_t alignment;
};

/* A growable byte buffer for serializing one value. */
typedef struct bbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bbuf;

static void put(bbuf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bbuf *b, uint64_t v) { put(b, &v, 8); }

ag_gguf_writer *ag_gguf_writer_new(void)
{
    ag_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) {
        ag_set_error("gguf writer: out of memory");
        return NULL;
    }
    w->alignment = AG_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void ag_gguf_writer_free(ag_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].raw);
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

static bool has_key(const ag_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0)
            return true;
    return false;
}

static int check_key(const ag_gguf_writer *w, const char *key)
{
    if (!w || !key) {
        ag_set_error("gguf writer: NULL writer or key");
        return -1;
    }
    size_t n = strlen(key);
    if (n == 0 || n > AG_GGUF_MAX_KEY || !ag_gguf_utf8_ok((const uint8_t *)key, n)) {
        ag_set_error("gguf writer: key '%.200s' must be 1..%u bytes of valid UTF-8", key, AG_GGUF_MAX_KEY);
        return -1;
    }
    if (has_key(w, key)) {
        ag_set_error("gguf writer: key '%.200s' set twice", key);
        return -1;
    }
    return 0;
}

/* general.alignment decides the file layout: accept it only as a valid u32. */
static int note_alignment(ag_gguf_writer *w, const char *key, const uint8_t *raw, size_t raw_len)
{
    if (strcmp(key, "general.alignment") != 0)
        return 0;
    uint32_t t, a;
    memcpy(&t, raw, 4);
    if (t != AG_GGUF_UINT32 || raw_len != 8) {
        ag_set_error("gguf writer: general.alignment must be a u32 (got %s)", ag_gguf_type_str(t));
        return -1;
    }
    memcpy(&a, raw + 4, 4);
    if (a == 0 || (a & (a - 1)) != 0) {
        ag_set_error("gguf writer: general.alignment %u is not a nonzero power of two", a);
        return -1;
    }
    w->alignment = a;
    return 0;
}

/* Takes ownership of b->p in every case. */
static int add_raw(ag_gguf_writer *w, const char *key, bbuf *b)
{
    if (b->oom) {
        free(b->p);
        ag_set_error("gguf writer: out of memory");
        return -1;
    }
    if (note_alignment(w, key, b->p, b->len)) {
        free(b->p);
        return -1;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *k = realloc(w->kvs, cap * sizeof *k);
        if (!k) {
            free(b->p);
            ag_set_error("gguf writer: out of memory");
            return -1;
        }
        w->kvs = k;
        w->cap_kv = cap;
    }
    char *kc = strdup(key);
    if (!kc) {
        free(b->p);
        ag_set_error("gguf writer: out of memory");
        return -1;
    }
    w->kvs[w->n_kv++] = (wkv){kc, b->p, b->len};
    return 0;
}

static int set_scalar(ag_gguf_writer *w, const char *key, ag_gguf_type t, const void *v)
{
    if (check_key(w, key))
        return -1;
    bbuf b = {0};
    put_u32(&b, t);
    put(&b, v, ag_gguf_type_size(t));
    return add_raw(w, key, &b);
}

int ag_gguf_set_u32(ag_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, AG_GGUF_UINT32, &v); }
int ag_gguf_set_i32(ag_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, AG_GGUF_INT32, &v); }
int ag_gguf_set_u64(ag_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, AG_GGUF_UINT64, &v); }
int ag_gguf_set_f32(ag_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, AG_GGUF_FLOAT32, &v); }
int ag_gguf_set_f64(ag_gguf_writer *w, const char *key, double v) { return set_scalar(w, key, AG_GGUF_FLOAT64, &v); }

int ag_gguf_set_bool(ag_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, AG_GGUF_BOOL, &b);
}

int ag_gguf_set_str(ag_gguf_writer *w, const char *key, const char *v)
{
    if (check_key(w, key))
        return -1;
    if (!v) {
        ag_set_error("gguf writer: key '%.200s': NULL string", key);
        return -1;
    }
    bbuf b = {0};
    size_t n = strlen(v);
    put_u32(&b, AG_GGUF_STRING);
    put_u64(&b, n);
    put(&b, v, n);
    return add_raw(w, key, &b);
}

int ag_gguf_set_arr(ag_gguf_writer *w, const char *key, ag_gguf_type type, const void *data, uint64_t n)
{
    if (check_key(w, key))
        return -1;
    size_t es = ag_gguf_type_size(type);
    if (es == 0) {
        ag_set_error("gguf writer: key '%.200s': array element type %s is not a plain type%s", key,
                     ag_gguf_type_str(type), type == AG_GGUF_STRING ? " (use ag_gguf_set_arr_str)" : "");
        return -1;
    }
    if ((n && !data) || n > SIZE_MAX / es) {
        ag_set_error("gguf writer: key '%.200s': bad array (%" PRIu64 " elements, data %p)", key, n, data);
        return -1;
    }
    if (type == AG_GGUF_BOOL) {
        for (uint64_t j = 0; j < n; j++) {
            if (((const uint8_t *)data)[j] > 1) {
                ag_set_error("gguf writer: key '%.200s': bool element %" PRIu64 " is not 0 or 1", key, j);
                return -1;
            }
        }
    }
    bbuf b = {0};
    put_u32(&b, AG_GGUF_ARRAY);
    put_u32(&b, type);
    put_u64(&b, n);
    if (n)
        put(&b, data, (size_t)n * es);
    return add_raw(w, key, &b);
}

int ag_gguf_set_arr_str(ag_gguf_writer *w, const char *key, const char *const *strs, uint64_t n)
{
    if (check_key(w, key))
        return -1;
    if (n && !strs) {
        ag_set_error("gguf writer: key '%.200s': NULL string array", key);
        return -1;
    }
    bbuf b = {0};
    put_u32(&b, AG_GGUF_ARRAY);
    put_u32(&b, AG_GGUF_STRING);
    put_u64(&b, n);
    for (uint64_t j = 0; j < n; j++) {
        if (!strs[j]) {
            free(b.p);
            ag_set_error("gguf writer: key '%.200s': string %" PRIu64 " is NULL", key, j);
            return -1;
        }
        size_t len = strlen(strs[j]);
        put_u64(&b, len);
        put(&b, strs[j], len);
    }
    return add_raw(w, key, &b);
}

int ag_gguf_copy_kvs(ag_gguf_writer *w, const ag_gguf *src)
{
    if (!w || !src) {
        ag_set_error("gguf writer: NULL writer or source");
        return -1;
    }
    for (int64_t i = 0; i < src->n_kv; i++) {
        const ag_gguf_kv *kv = &src->kvs[i];
        if (has_key(w, kv->key))
            continue;
        bbuf b = {0};
        put(&b, src->data + kv->raw_off, kv->raw_len);
        if (add_raw(w, kv->key, &b))
            return -1;
    }
    return 0;
}

int ag_gguf_add_tensor(ag_gguf_writer *w, const char *name, ag_type type, int n_dims, const int64_t *ne,
                       const void *data, size_t size)
{
    if (!w || !name || !ne) {
        ag_set_error("gguf writer: NULL writer, name or shape");
        return -1;
    }
    size_t len = strlen(name);
    if (len == 0 || len >= AG_MAX_NAME || !ag_gguf_utf8_ok((const uint8_t *)name, len)) {
        ag_set_error("gguf writer: tensor name '%.200s' must be 1..%d bytes of valid UTF-8", name, AG_MAX_NAME - 1);
        return -1;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0) {
            ag_set_error("gguf writer: tensor '%s' added twice", name);
            return -1;
        }
    }
    if (!ag_type_valid((int)type) || n_dims < 1 || n_dims > AG_MAX_DIMS) {
        ag_set_error("gguf writer: tensor '%s': bad type id %d or n_dims %d", name, (int)type, n_dims);
        return -1;
    }
    size_t expect = ag_gguf_tensor_bytes(type, n_dims, ne);
    if (expect == 0) {
        ag_set_error("gguf writer: tensor '%s': invalid %s shape (dimensions must be > 0, ne0 whole blocks, "
                     "size must not overflow)",
                     name, ag_type_name(type));
        return -1;
    }
    if (size != expect || !data) {
        ag_set_error("gguf writer: tensor '%s': %zu bytes of data given, its %s shape needs %zu", name, size,
                     ag_type_name(type), expect);
        return -1;
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) {
            ag_set_error("gguf writer: out of memory");
            return -1;
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }
    char *nc = strdup(name);
    if (!nc) {
        ag_set_error("gguf writer: out of memory");
        return -1;
    }
    wtensor *t = &w->tensors[w->n_tensors++];
    *t = (wtensor){nc, type, n_dims, {1, 1, 1, 1}, data, size};
    for (int d = 0; d < n_dims; d++)
        t->ne[d] = ne[d];
    return 0;
}

/* ---- output ---- */

static bool wr(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n; }

static bool wr_zeros(FILE *fp, size_t n)
{
    static const uint8_t zeros[4096];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (!wr(fp, zeros, k))
            return false;
        n -= k;
    }
    return true;
}

static bool wr_str(FILE *fp, const char *s)
{
    uint64_t n = strlen(s);
    return wr(fp, &n, 8) && wr(fp, s, (size_t)n);
}

static size_t pad_of(size_t pos, size_t a) { return (a - pos % a) % a; }

/* Everything up to the end of the data; false on an I/O error (errno set). */
static bool write_all(const ag_gguf_writer *w, FILE *fp, const uint64_t *offs)
{
    size_t a = w->alignment, pos = 0;
    uint32_t version = 3;
    uint64_t nt = w->n_tensors, nk = w->n_kv;
    if (!wr(fp, AG_GGUF_MAGIC, 4) || !wr(fp, &version, 4) || !wr(fp, &nt, 8) || !wr(fp, &nk, 8))
        return false;
    pos = 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!wr_str(fp, w->kvs[i].key) || !wr(fp, w->kvs[i].raw, w->kvs[i].raw_len))
            return false;
        pos += 8 + strlen(w->kvs[i].key) + w->kvs[i].raw_len;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        if (!wr_str(fp, t->name) || !wr(fp, &nd, 4))
            return false;
        for (int d = 0; d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            if (!wr(fp, &ne, 8))
                return false;
        }
        if (!wr(fp, &type, 4) || !wr(fp, &offs[i], 8))
            return false;
        pos += 8 + strlen(t->name) + 4 + 8 * (size_t)t->n_dims + 4 + 8;
    }
    if (!wr_zeros(fp, pad_of(pos, a)))
        return false;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (!wr(fp, t->data, t->size) || !wr_zeros(fp, pad_of(t->size, a)))
            return false;
    }
    return true;
}

int ag_gguf_writer_write(ag_gguf_writer *w, const char *path)
{
    if (!w || !path) {
        ag_set_error("gguf writer: NULL writer or path");
        return -1;
    }
    /* Data offsets: each tensor starts aligned, in insertion order. */
    uint64_t *offs = malloc((w->n_tensors ? w->n_tensors : 1) * sizeof *offs);
    if (!offs) {
        ag_set_error("%s: out of memory", path);
        return -1;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        offs[i] = off;
        uint64_t padded = (uint64_t)w->tensors[i].size + pad_of(w->tensors[i].size, w->alignment);
        if (__builtin_add_overflow(off, padded, &off)) {
            free(offs);
            ag_set_error("%s: tensor data too large", path);
            return -1;
        }
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(offs);
        ag_set_error("%s: out of memory", path);
        return -1;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        ag_set_error("%s: cannot create: %s", tmp, strerror(errno));
        free(offs);
        free(tmp);
        return -1;
    }
    bool ok = write_all(w, fp, offs) && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int err = errno;
    if (fclose(fp) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        unlink(tmp);
        ag_set_error("%s: write failed: %s", path, strerror(err));
    }
    free(offs);
    free(tmp);
    return ok ? 0 : -1;
}
