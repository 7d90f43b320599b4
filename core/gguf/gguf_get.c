/* GGUF reader accessors. Every index is checked; a bad one sets the error and returns a neutral
 * value (NULL, 0, -1), never touches memory out of range.
 * Extension of the header's contract: ag_gguf_arr_type / _arr_n / _arr_data / _arr_str also work on
 * scalar KVs (as one-element arrays), so tools can read scalar types that have no typed getter. */
#include "gguf_internal.h"

#include "anygpt/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const ag_gguf_kv *kv_at(const ag_gguf *f, int64_t i)
{
    if (!f || i < 0 || i >= f->n_kv) {
        ag_set_error("%s: key-value index %" PRId64 " out of range", f ? f->label : "gguf", i);
        return NULL;
    }
    return &f->kvs[i];
}

static const ag_gguf_tinfo *t_at(const ag_gguf *f, int64_t i)
{
    if (!f || i < 0 || i >= f->n_tensors) {
        ag_set_error("%s: tensor index %" PRId64 " out of range", f ? f->label : "gguf", i);
        return NULL;
    }
    return &f->tensors[i];
}

uint32_t ag_gguf_version(const ag_gguf *f) { return f ? f->version : 0; }
size_t ag_gguf_alignment(const ag_gguf *f) { return f ? f->alignment : 0; }
int64_t ag_gguf_n_kv(const ag_gguf *f) { return f ? f->n_kv : 0; }
int64_t ag_gguf_n_tensors(const ag_gguf *f) { return f ? f->n_tensors : 0; }
size_t ag_gguf_data_offset(const ag_gguf *f) { return f ? f->data_offset : 0; }

const void *ag_gguf_mapping(const ag_gguf *f, size_t *size)
{
    if (size)
        *size = f ? f->size : 0;
    return f ? f->data : NULL;
}

/* Binary search over an index array sorted by name. */
static int64_t lookup(const int64_t *sorted, int64_t n, const char *name, const char *(*name_of)(const ag_gguf *, int64_t),
                      const ag_gguf *f)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_of(f, sorted[mid]), name);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static const char *key_of(const ag_gguf *f, int64_t i) { return f->kvs[i].key; }
static const char *tname_of(const ag_gguf *f, int64_t i) { return f->tensors[i].name; }

int64_t ag_gguf_find_key(const ag_gguf *f, const char *key)
{
    if (!f || !key || !f->kv_sorted)
        return -1;
    return lookup(f->kv_sorted, f->n_kv, key, key_of, f);
}

int64_t ag_gguf_find_tensor(const ag_gguf *f, const char *name)
{
    if (!f || !name || !f->t_sorted)
        return -1;
    return lookup(f->t_sorted, f->n_tensors, name, tname_of, f);
}

const char *ag_gguf_key(const ag_gguf *f, int64_t i)
{
    const ag_gguf_kv *kv = kv_at(f, i);
    return kv ? kv->key : NULL;
}

ag_gguf_type ag_gguf_kv_type(const ag_gguf *f, int64_t i)
{
    const ag_gguf_kv *kv = kv_at(f, i);
    return kv ? kv->type : (ag_gguf_type)-1;
}

ag_gguf_type ag_gguf_arr_type(const ag_gguf *f, int64_t i)
{
    const ag_gguf_kv *kv = kv_at(f, i);
    return kv ? kv->arr_type : (ag_gguf_type)-1;
}

uint64_t ag_gguf_arr_n(const ag_gguf *f, int64_t i)
{
    const ag_gguf_kv *kv = kv_at(f, i);
    return kv ? kv->arr_n : 0;
}

const void *ag_gguf_arr_data(const ag_gguf *f, int64_t i)
{
    const ag_gguf_kv *kv = kv_at(f, i);
    if (!kv)
        return NULL;
    if (kv->arr_type == AG_GGUF_STRING) {
        ag_set_error("%s: key '%s' holds strings: use ag_gguf_arr_str", f->label, kv->key);
        return NULL;
    }
    return f->data + kv->value_off;
}

const char *ag_gguf_arr_str(const ag_gguf *f, int64_t i, uint64_t j, uint64_t *len)
{
    const ag_gguf_kv *kv = kv_at(f, i);
    if (len)
        *len = 0;
    if (!kv)
        return NULL;
    if (kv->arr_type != AG_GGUF_STRING || j >= kv->arr_n) {
        ag_set_error("%s: key '%s' has no string element %" PRIu64, f->label, kv->key, j);
        return NULL;
    }
    size_t off = kv->type == AG_GGUF_ARRAY ? kv->str_offs[j] : kv->value_off;
    uint64_t n;
    memcpy(&n, f->data + off, 8);
    if (len)
        *len = n;
    return (const char *)f->data + off + 8;
}

/* ---- typed getters ---- */

static const ag_gguf_kv *find_kv(const ag_gguf *f, const char *key)
{
    int64_t i = ag_gguf_find_key(f, key);
    if (i < 0) {
        ag_set_error("%s: key '%s' not found", f ? f->label : "gguf", key ? key : "(null)");
        return NULL;
    }
    return &f->kvs[i];
}

/* Integer value as sign + magnitude; false for non-integer types. */
static bool kv_int(const ag_gguf *f, const ag_gguf_kv *kv, bool *neg, uint64_t *mag)
{
    const uint8_t *p = f->data + kv->value_off;
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed = true;
    switch (kv->type) {
    case AG_GGUF_UINT8: u = *p, is_signed = false; break;
    case AG_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); u = v; is_signed = false; break; }
    case AG_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); u = v; is_signed = false; break; }
    case AG_GGUF_UINT64: memcpy(&u, p, 8); is_signed = false; break;
    case AG_GGUF_INT8: { int8_t v; memcpy(&v, p, 1); s = v; break; }
    case AG_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); s = v; break; }
    case AG_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); s = v; break; }
    case AG_GGUF_INT64: memcpy(&s, p, 8); break;
    default: return false;
    }
    if (is_signed) {
        *neg = s < 0;
        *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    } else {
        *neg = false;
        *mag = u;
    }
    return true;
}

/* Fetch an integer KV that must lie in [-neg_max, pos_max]. */
static bool get_int(const ag_gguf *f, const char *key, uint64_t neg_max, uint64_t pos_max, const char *want,
                    bool *neg, uint64_t *mag)
{
    const ag_gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return false;
    if (!kv_int(f, kv, neg, mag)) {
        ag_set_error("%s: key '%s' has type %s, expected an integer", f->label, key, ag_gguf_type_str(kv->type));
        return false;
    }
    if (*neg ? *mag > neg_max : *mag > pos_max) {
        ag_set_error("%s: key '%s' value %s%" PRIu64 " does not fit in %s", f->label, key, *neg ? "-" : "", *mag,
                     want);
        return false;
    }
    return true;
}

bool ag_gguf_get_u32(const ag_gguf *f, const char *key, uint32_t *out)
{
    bool neg;
    uint64_t m;
    if (!get_int(f, key, 0, UINT32_MAX, "u32", &neg, &m))
        return false;
    *out = (uint32_t)m;
    return true;
}

bool ag_gguf_get_i32(const ag_gguf *f, const char *key, int32_t *out)
{
    bool neg;
    uint64_t m;
    if (!get_int(f, key, (uint64_t)INT32_MAX + 1, INT32_MAX, "i32", &neg, &m))
        return false;
    *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return true;
}

bool ag_gguf_get_u64(const ag_gguf *f, const char *key, uint64_t *out)
{
    bool neg;
    uint64_t m;
    if (!get_int(f, key, 0, UINT64_MAX, "u64", &neg, &m))
        return false;
    *out = m;
    return true;
}

bool ag_gguf_get_f32(const ag_gguf *f, const char *key, float *out)
{
    const ag_gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return false;
    const uint8_t *p = f->data + kv->value_off;
    if (kv->type == AG_GGUF_FLOAT32) {
        memcpy(out, p, 4);
    } else if (kv->type == AG_GGUF_FLOAT64) {
        double d;
        memcpy(&d, p, 8);
        *out = (float)d;
    } else {
        ag_set_error("%s: key '%s' has type %s, expected f32", f->label, key, ag_gguf_type_str(kv->type));
        return false;
    }
    return true;
}

bool ag_gguf_get_f64(const ag_gguf *f, const char *key, double *out)
{
    const ag_gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return false;
    const uint8_t *p = f->data + kv->value_off;
    if (kv->type == AG_GGUF_FLOAT64) {
        memcpy(out, p, 8);
    } else if (kv->type == AG_GGUF_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *out = v;
    } else {
        ag_set_error("%s: key '%s' has type %s, expected f64", f->label, key, ag_gguf_type_str(kv->type));
        return false;
    }
    return true;
}

bool ag_gguf_get_bool(const ag_gguf *f, const char *key, bool *out)
{
    const ag_gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return false;
    if (kv->type != AG_GGUF_BOOL) {
        ag_set_error("%s: key '%s' has type %s, expected bool", f->label, key, ag_gguf_type_str(kv->type));
        return false;
    }
    *out = f->data[kv->value_off] != 0;
    return true;
}

const char *ag_gguf_get_str(const ag_gguf *f, const char *key)
{
    const ag_gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return NULL;
    if (kv->type != AG_GGUF_STRING) {
        ag_set_error("%s: key '%s' has type %s, expected str", f->label, key, ag_gguf_type_str(kv->type));
        return NULL;
    }
    return kv->str;
}

/* ---- tensors ---- */

const char *ag_gguf_tensor_name(const ag_gguf *f, int64_t i)
{
    const ag_gguf_tinfo *t = t_at(f, i);
    return t ? t->name : NULL;
}

ag_type ag_gguf_tensor_type(const ag_gguf *f, int64_t i)
{
    const ag_gguf_tinfo *t = t_at(f, i);
    return t ? t->type : AG_TYPE_COUNT;
}

int ag_gguf_tensor_n_dims(const ag_gguf *f, int64_t i)
{
    const ag_gguf_tinfo *t = t_at(f, i);
    return t ? t->n_dims : 0;
}

void ag_gguf_tensor_ne(const ag_gguf *f, int64_t i, int64_t ne[AG_MAX_DIMS])
{
    const ag_gguf_tinfo *t = t_at(f, i);
    for (int d = 0; d < AG_MAX_DIMS; d++)
        ne[d] = t ? t->ne[d] : 0;
}

size_t ag_gguf_tensor_size(const ag_gguf *f, int64_t i)
{
    const ag_gguf_tinfo *t = t_at(f, i);
    return t ? t->size : 0;
}

size_t ag_gguf_tensor_file_offset(const ag_gguf *f, int64_t i)
{
    const ag_gguf_tinfo *t = t_at(f, i);
    return t ? f->data_offset + (size_t)t->offset : 0;
}

const void *ag_gguf_tensor_data(const ag_gguf *f, int64_t i)
{
    const ag_gguf_tinfo *t = t_at(f, i);
    return t ? f->data + f->data_offset + t->offset : NULL;
}
