/* GGUF reader: maps the file read-only and validates every count, length, offset and size
 * against the bytes actually present before anything is allocated or dereferenced. */
#include "gguf_internal.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Smallest possible records, used to reject counts that cannot fit before allocating:
 * KV = key length (8) + 1 key byte + type (4) + 1 value byte;
 * tensor info = name length (8) + 1 name byte + n_dims (4) + one ne (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 14u
#define MIN_TINFO_BYTES 33u
#define HEADER_BYTES 24u

typedef struct cursor {
    const uint8_t *p;
    size_t size, pos;
    const char *label;
} cursor;

static int need(cursor *c, uint64_t n, const char *what)
{
    if (n > c->size - c->pos) {
        ag_set_error("%s: file truncated: %s at offset %zu needs %" PRIu64 " bytes but only %zu remain "
                     "(file is %zu bytes)",
                     c->label, what, c->pos, n, c->size - c->pos, c->size);
        return -1;
    }
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what))
        return -1;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what))
        return -1;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A length-prefixed string: on success *s points into the file and *len is validated. */
static int rd_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what)
{
    if (rd_u64(c, len, what))
        return -1;
    if (*len > c->size - c->pos) {
        ag_set_error("%s: %s at offset %zu has length %" PRIu64 ", past the end of the file (%zu bytes)",
                     c->label, what, c->pos - 8, *len, c->size);
        return -1;
    }
    *s = c->p + c->pos;
    c->pos += (size_t)*len;
    return 0;
}

static char *dup_n(const uint8_t *s, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

static void free_contents(ag_gguf *f)
{
    for (int64_t i = 0; f->kvs && i < f->n_kv; i++) {
        free(f->kvs[i].key);
        free(f->kvs[i].str_offs);
        free(f->kvs[i].str);
    }
    for (int64_t i = 0; f->tensors && i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->kvs);
    free(f->kv_sorted);
    free(f->tensors);
    free(f->t_sorted);
}

void ag_gguf_close(ag_gguf *f)
{
    if (!f)
        return;
    free_contents(f);
    if (f->map)
        munmap(f->map, f->size);
    free(f->label);
    free(f);
}

/* One value of a plain type (or a string) at the cursor; arrays are handled by the caller. */
static int parse_plain(cursor *c, const char *key, ag_gguf_type t, const char *what)
{
    size_t sz = ag_gguf_type_size(t);
    if (need(c, sz, what))
        return -1;
    if (t == AG_GGUF_BOOL && c->p[c->pos] > 1) {
        ag_set_error("%s: key '%s': bool value %u at offset %zu is neither 0 nor 1", c->label, key, c->p[c->pos],
                     c->pos);
        return -1;
    }
    c->pos += sz;
    return 0;
}

/* Checked after the file-size bounds (which give the more telling message for a corrupt count). */
static int too_long(const cursor *c, const ag_gguf_kv *kv)
{
    if (kv->arr_n <= AG_MAX_GGUF_ARRAY)
        return 0;
    ag_set_error("%s: key '%s': array of %" PRIu64 " elements, more than the %d accepted", c->label, kv->key,
                 kv->arr_n, AG_MAX_GGUF_ARRAY);
    return -1;
}

static int parse_array(cursor *c, ag_gguf_kv *kv)
{
    uint32_t et;
    if (rd_u32(c, &et, "array element type") || rd_u64(c, &kv->arr_n, "array count"))
        return -1;
    if (et == AG_GGUF_ARRAY) {
        ag_set_error("%s: key '%s': nested arrays (array of arrays) are not supported", c->label, kv->key);
        return -1;
    }
    if (et > AG_GGUF_FLOAT64) {
        ag_set_error("%s: key '%s': unknown array element type %u", c->label, kv->key, et);
        return -1;
    }
    kv->arr_type = (ag_gguf_type)et;
    kv->value_off = c->pos;
    size_t left = c->size - c->pos;
    if (et == AG_GGUF_STRING) {
        if (kv->arr_n > left / 8) {
            ag_set_error("%s: key '%s': array count %" PRIu64 " of strings cannot fit in the %zu bytes left in "
                         "the file",
                         c->label, kv->key, kv->arr_n, left);
            return -1;
        }
        if (too_long(c, kv))
            return -1;
        kv->str_offs = malloc(((size_t)kv->arr_n ? (size_t)kv->arr_n : 1) * sizeof *kv->str_offs);
        if (!kv->str_offs) {
            ag_set_error("%s: out of memory", c->label);
            return -1;
        }
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            const uint8_t *s;
            uint64_t len;
            kv->str_offs[j] = c->pos;
            if (rd_str(c, &s, &len, "string array element"))
                return -1;
            if (len > AG_MAX_GGUF_STRING) {
                ag_set_error("%s: key '%s': string element %" PRIu64 " is %" PRIu64 " bytes, more than the %d "
                             "accepted",
                             c->label, kv->key, j, len, AG_MAX_GGUF_STRING);
                return -1;
            }
        }
        return 0;
    }
    size_t es = ag_gguf_type_size(kv->arr_type);
    if (kv->arr_n > left / es) {
        ag_set_error("%s: key '%s': array count %" PRIu64 " of %s (%zu bytes each) runs past the end of the "
                     "file (%zu bytes left)",
                     c->label, kv->key, kv->arr_n, ag_gguf_type_str(et), es, left);
        return -1;
    }
    if (too_long(c, kv))
        return -1;
    if (kv->arr_type == AG_GGUF_BOOL) {
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            if (c->p[c->pos + j] > 1) {
                ag_set_error("%s: key '%s': bool array element %" PRIu64 " is %u, neither 0 nor 1", c->label,
                             kv->key, j, c->p[c->pos + j]);
                return -1;
            }
        }
    }
    c->pos += (size_t)kv->arr_n * es;
    return 0;
}

static int parse_kv(cursor *c, int64_t idx, ag_gguf_kv *kv)
{
    const uint8_t *k;
    uint64_t klen;
    if (rd_str(c, &k, &klen, "key"))
        return -1;
    if (klen == 0 || klen > AG_GGUF_MAX_KEY) {
        ag_set_error("%s: key-value %" PRId64 ": key length %" PRIu64 " is out of range 1..%u", c->label, idx,
                     klen, AG_GGUF_MAX_KEY);
        return -1;
    }
    if (!ag_gguf_utf8_ok(k, (size_t)klen)) {
        ag_set_error("%s: key-value %" PRId64 ": key at offset %zu is not valid UTF-8 (or contains NUL)", c->label,
                     idx, (size_t)(k - c->p));
        return -1;
    }
    if (!(kv->key = dup_n(k, (size_t)klen))) {
        ag_set_error("%s: out of memory", c->label);
        return -1;
    }
    uint32_t t;
    kv->raw_off = c->pos;
    if (rd_u32(c, &t, "value type"))
        return -1;
    if (t > AG_GGUF_FLOAT64) {
        ag_set_error("%s: key '%s': unknown value type %u", c->label, kv->key, t);
        return -1;
    }
    kv->type = kv->arr_type = (ag_gguf_type)t;
    kv->arr_n = 1;
    kv->value_off = c->pos;
    if (t == AG_GGUF_ARRAY) {
        if (parse_array(c, kv))
            return -1;
    } else if (t == AG_GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        if (rd_str(c, &s, &len, "string value"))
            return -1;
        if (len > AG_MAX_GGUF_STRING) {
            ag_set_error("%s: key '%s': string value of %" PRIu64 " bytes, more than the %d accepted", c->label,
                         kv->key, len, AG_MAX_GGUF_STRING);
            return -1;
        }
        if (!(kv->str = dup_n(s, (size_t)len))) {
            ag_set_error("%s: out of memory", c->label);
            return -1;
        }
    } else if (parse_plain(c, kv->key, (ag_gguf_type)t, "value")) {
        return -1;
    }
    kv->raw_len = c->pos - kv->raw_off;
    return 0;
}

static int parse_tinfo(cursor *c, int64_t idx, ag_gguf_tinfo *ti)
{
    const uint8_t *s;
    uint64_t len;
    if (rd_str(c, &s, &len, "tensor name"))
        return -1;
    if (len == 0 || len >= AG_MAX_NAME) {
        ag_set_error("%s: tensor %" PRId64 ": name length %" PRIu64 " is out of range 1..%d", c->label, idx, len,
                     AG_MAX_NAME - 1);
        return -1;
    }
    if (!ag_gguf_utf8_ok(s, (size_t)len)) {
        ag_set_error("%s: tensor %" PRId64 ": name at offset %zu is not valid UTF-8 (or contains NUL)", c->label,
                     idx, (size_t)(s - c->p));
        return -1;
    }
    if (!(ti->name = dup_n(s, (size_t)len))) {
        ag_set_error("%s: out of memory", c->label);
        return -1;
    }
    uint32_t nd;
    if (rd_u32(c, &nd, "tensor n_dims"))
        return -1;
    if (nd < 1 || nd > AG_MAX_DIMS) {
        ag_set_error("%s: tensor '%s': n_dims %u is out of range 1..%d", c->label, ti->name, nd, AG_MAX_DIMS);
        return -1;
    }
    ti->n_dims = (int)nd;
    int64_t nel = 1;
    for (int d = 0; d < AG_MAX_DIMS; d++)
        ti->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if (rd_u64(c, &ne, "tensor dimension"))
            return -1;
        if (ne == 0 || ne > (uint64_t)INT64_MAX) {
            ag_set_error("%s: tensor '%s': dimension ne%u = %" PRIu64 " is out of range", c->label, ti->name, d,
                         ne);
            return -1;
        }
        ti->ne[d] = (int64_t)ne;
        if (__builtin_mul_overflow(nel, (int64_t)ne, &nel)) {
            ag_set_error("%s: tensor '%s': element count overflows (product of the dimensions up to ne%u)",
                         c->label, ti->name, d);
            return -1;
        }
    }
    uint32_t type;
    if (rd_u32(c, &type, "tensor type") || rd_u64(c, &ti->offset, "tensor offset"))
        return -1;
    if (!ag_type_valid((int)type)) {
        ag_set_error("%s: tensor '%s': unsupported tensor type id %u (supported: f32, f16, q4_0, q8_0, i32)",
                     c->label, ti->name, type);
        return -1;
    }
    ti->type = (ag_type)type;
    int64_t be = ag_type_block_elems(ti->type);
    if (ti->ne[0] % be != 0) {
        ag_set_error("%s: tensor '%s': ne0 = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                     c->label, ti->name, ti->ne[0], ag_type_name(ti->type), be);
        return -1;
    }
    ti->size = ag_gguf_tensor_bytes(ti->type, ti->n_dims, ti->ne);
    if (ti->size == 0) {
        ag_set_error("%s: tensor '%s': data size overflows", c->label, ti->name);
        return -1;
    }
    return 0;
}

/* qsort comparators need the array they index; the reader is single-threaded per call, and
 * qsort has no context argument in C17, so sort (index, pointer) pairs instead. */
typedef struct sort_ent {
    const char *name;
    uint64_t off;
    int64_t idx;
} sort_ent;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const sort_ent *)a)->name, ((const sort_ent *)b)->name);
}

static int cmp_off(const void *a, const void *b)
{
    uint64_t x = ((const sort_ent *)a)->off, y = ((const sort_ent *)b)->off;
    return x < y ? -1 : x > y;
}

/* Sort indices by name into *out; report a duplicate name. */
static int sort_names(ag_gguf *f, int64_t n, bool tensors, int64_t **out)
{
    sort_ent *e = malloc((size_t)(n ? n : 1) * sizeof *e);
    *out = malloc((size_t)(n ? n : 1) * sizeof **out);
    if (!e || !*out) {
        free(e);
        ag_set_error("%s: out of memory", f->label);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        e[i].name = tensors ? f->tensors[i].name : f->kvs[i].key;
        e[i].idx = i;
    }
    qsort(e, (size_t)n, sizeof *e, cmp_name);
    for (int64_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(e[i - 1].name, e[i].name) == 0) {
            ag_set_error("%s: duplicate %s '%.200s'", f->label, tensors ? "tensor name" : "key", e[i].name);
            free(e);
            return -1;
        }
        (*out)[i] = e[i].idx;
    }
    free(e);
    return 0;
}

static int check_alignment(ag_gguf *f)
{
    f->alignment = AG_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = ag_gguf_find_key(f, "general.alignment");
    if (i < 0)
        return 0;
    const ag_gguf_kv *kv = &f->kvs[i];
    if (kv->type != AG_GGUF_UINT32) {
        ag_set_error("%s: general.alignment has type %s, expected u32", f->label, ag_gguf_type_str(kv->type));
        return -1;
    }
    uint32_t a;
    memcpy(&a, f->data + kv->value_off, 4);
    if (a == 0 || (a & (a - 1)) != 0) {
        ag_set_error("%s: general.alignment %u is not a nonzero power of two", f->label, a);
        return -1;
    }
    f->alignment = a;
    return 0;
}

static int check_tensor_data(ag_gguf *f, size_t info_end)
{
    size_t a = f->alignment;
    if (info_end > SIZE_MAX - (a - 1)) {
        ag_set_error("%s: data section offset overflows", f->label);
        return -1;
    }
    f->data_offset = (info_end + a - 1) / a * a;
    if (f->n_tensors == 0) {
        /* Nothing lives in the data section, so its padding is optional. */
        if (f->data_offset > f->size)
            f->data_offset = f->size;
        return 0;
    }
    if (f->data_offset > f->size) {
        ag_set_error("%s: tensor data section starts at offset %zu, past the end of the file (%zu bytes)",
                     f->label, f->data_offset, f->size);
        return -1;
    }
    size_t room = f->size - f->data_offset;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const ag_gguf_tinfo *t = &f->tensors[i];
        if (t->offset % a != 0) {
            ag_set_error("%s: tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %zu",
                         f->label, t->name, t->offset, a);
            return -1;
        }
        /* the data is used in place (mapped): a small general.alignment must still leave every
         * element on its natural boundary (F32/I32: 4 bytes, F16 and the quant blocks: 2) */
        size_t el = t->type == AG_TYPE_F32 || t->type == AG_TYPE_I32 ? 4 : 2;
        if ((f->data_offset + (size_t)(t->offset % el)) % el != 0) {
            ag_set_error("%s: tensor '%s': data at file offset %" PRIu64 " is not aligned to its %zu-byte elements "
                         "(general.alignment %zu)",
                         f->label, t->name, (uint64_t)f->data_offset + t->offset, el, a);
            return -1;
        }
        if (t->offset > room) {
            ag_set_error("%s: tensor '%s' data [offset %" PRIu64 " in the data section at %zu, %zu bytes] runs "
                         "past the end of the file (%zu bytes)",
                         f->label, t->name, t->offset, f->data_offset, t->size, f->size);
            return -1;
        }
        if (t->size > room - (size_t)t->offset) {
            ag_set_error("%s: tensor '%s' data [offset %zu, %zu bytes] runs past the end of the file (%zu bytes)",
                         f->label, t->name, f->data_offset + (size_t)t->offset, t->size, f->size);
            return -1;
        }
    }
    /* Overlaps: sorted by offset, each tensor must end before the next begins. */
    sort_ent *e = malloc((size_t)f->n_tensors * sizeof *e);
    if (!e) {
        ag_set_error("%s: out of memory", f->label);
        return -1;
    }
    for (int64_t i = 0; i < f->n_tensors; i++)
        e[i] = (sort_ent){f->tensors[i].name, f->tensors[i].offset, i};
    qsort(e, (size_t)f->n_tensors, sizeof *e, cmp_off);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const ag_gguf_tinfo *p = &f->tensors[e[i - 1].idx], *q = &f->tensors[e[i].idx];
        if (p->offset + p->size > q->offset) {
            ag_set_error("%s: tensors '%s' [offset %zu, %zu bytes] and '%s' [offset %zu, %zu bytes] overlap",
                         f->label, p->name, f->data_offset + (size_t)p->offset, p->size, q->name,
                         f->data_offset + (size_t)q->offset, q->size);
            free(e);
            return -1;
        }
    }
    free(e);
    return 0;
}

static int check_header(cursor *c, ag_gguf *f, uint64_t *n_tensors, uint64_t *n_kv)
{
    if (c->size < 4) {
        ag_set_error("%s: file too short to be GGUF (%zu bytes)", c->label, c->size);
        return -1;
    }
    if (memcmp(c->p, AG_GGUF_MAGIC, 4) != 0) {
        ag_set_error("%s: not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")", c->label, c->p[0],
                     c->p[1], c->p[2], c->p[3]);
        return -1;
    }
    c->pos = 4;
    if (rd_u32(c, &f->version, "version"))
        return -1;
    if (f->version == 1) {
        ag_set_error("%s: GGUF version 1 is not supported (32-bit counts; supported versions: 2, 3)", c->label);
        return -1;
    }
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffffu) == 0)
            ag_set_error("%s: GGUF version field %#x looks big-endian; only little-endian files are supported",
                         c->label, f->version);
        else
            ag_set_error("%s: unsupported GGUF version %u (supported versions: 2, 3)", c->label, f->version);
        return -1;
    }
    if (rd_u64(c, n_tensors, "tensor count") || rd_u64(c, n_kv, "key-value count"))
        return -1;
    size_t left = c->size - c->pos;
    if (*n_kv > left / MIN_KV_BYTES) {
        ag_set_error("%s: header claims %" PRIu64 " key-value pairs, more than the %zu bytes after the header can "
                     "hold",
                     c->label, *n_kv, left);
        return -1;
    }
    if (*n_tensors > left / MIN_TINFO_BYTES || *n_kv * MIN_KV_BYTES + *n_tensors * MIN_TINFO_BYTES > left) {
        ag_set_error("%s: header claims %" PRIu64 " tensors and %" PRIu64 " key-value pairs, more than the %zu "
                     "bytes after the header can hold",
                     c->label, *n_tensors, *n_kv, left);
        return -1;
    }
    if (*n_kv > AG_MAX_GGUF_KVS) {
        ag_set_error("%s: header claims %" PRIu64 " key-value pairs, more than the %d accepted", c->label, *n_kv,
                     AG_MAX_GGUF_KVS);
        return -1;
    }
    if (*n_tensors > AG_MAX_GGUF_TENSORS) {
        ag_set_error("%s: header claims %" PRIu64 " tensors, more than the %d accepted", c->label, *n_tensors,
                     AG_MAX_GGUF_TENSORS);
        return -1;
    }
    return 0;
}

static int parse(ag_gguf *f)
{
    cursor c = {f->data, f->size, 0, f->label};
    uint64_t n_tensors, n_kv;
    if (check_header(&c, f, &n_tensors, &n_kv))
        return -1;
    /* Counts are bounded by the file size now, so these allocations are too. */
    f->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *f->kvs);
    f->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *f->tensors);
    if (!f->kvs || !f->tensors) {
        ag_set_error("%s: out of memory", f->label);
        return -1;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = (int64_t)i + 1; /* so close frees what was parsed */
        if (parse_kv(&c, (int64_t)i, &f->kvs[i]))
            return -1;
    }
    if (sort_names(f, f->n_kv, false, &f->kv_sorted) || check_alignment(f))
        return -1;
    for (uint64_t i = 0; i < n_tensors; i++) {
        f->n_tensors = (int64_t)i + 1;
        if (parse_tinfo(&c, (int64_t)i, &f->tensors[i]))
            return -1;
    }
    if (sort_names(f, f->n_tensors, true, &f->t_sorted))
        return -1;
    return check_tensor_data(f, c.pos);
}

static ag_gguf *open_image(const void *data, size_t size, const char *label, void *map)
{
    ag_gguf *f = calloc(1, sizeof *f);
    char *lab = strdup(label ? label : "<memory>");
    if (!f || !lab) {
        free(f);
        free(lab);
        if (map)
            munmap(map, size);
        ag_set_error("%s: out of memory", label ? label : "<memory>");
        return NULL;
    }
    f->label = lab;
    f->data = data;
    f->size = size;
    f->map = map;
    if (parse(f)) {
        ag_gguf_close(f);
        return NULL;
    }
    return f;
}

ag_gguf *ag_gguf_open_memory(const void *data, size_t size, const char *label)
{
    if (!data && size) {
        ag_set_error("%s: NULL data", label ? label : "<memory>");
        return NULL;
    }
    static const uint8_t empty[1];
    return open_image(data ? data : empty, size, label, NULL);
}

ag_gguf *ag_gguf_open(const char *path)
{
    if (!path) {
        ag_set_error("ag_gguf_open: NULL path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ag_set_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ag_set_error("%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        ag_set_error("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 4) {
        ag_set_error("%s: file too short to be GGUF (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED) {
        ag_set_error("%s: cannot mmap %zu bytes: %s", path, size, strerror(err));
        return NULL;
    }
    return open_image(map, size, path, map);
}
