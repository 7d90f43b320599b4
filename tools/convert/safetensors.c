/* safetensors: u64 little-endian header length, JSON header {name: {dtype, shape, data_offsets}},
 * then the data section. Every offset, size and shape is checked against the file. */
#include "ckpt.h"
#include "json.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <stdlib.h>
#include <string.h>

static int parse_dtype(const char *s, ckpt_dtype *d)
{
    static const struct { const char *n; ckpt_dtype d; } tab[] = {
        {"F32", CKPT_F32}, {"F16", CKPT_F16}, {"BF16", CKPT_BF16}, {"F64", CKPT_F64},
        {"I64", CKPT_I64}, {"I32", CKPT_I32}, {"I8", CKPT_I8}, {"U8", CKPT_U8}, {"BOOL", CKPT_BOOL}};
    for (size_t k = 0; k < sizeof tab / sizeof tab[0]; k++)
        if (strcmp(s, tab[k].n) == 0) {
            *d = tab[k].d;
            return 0;
        }
    return -1;
}

int safetensors_load(ckpt *c, const char *path)
{
    const ckpt_map *m = ckpt_map_file(c, path);
    if (!m)
        return -1;
    const uint8_t *base = m->base;
    if (m->size < 8) {
        ag_set_error("%s: too short for a safetensors file", path);
        return -1;
    }
    uint64_t hlen;
    memcpy(&hlen, base, 8);
    if (hlen > AG_MAX_SAFETENSORS_HEADER) {
        ag_set_error("%s: safetensors header length %llu is more than the %d accepted", path,
                     (unsigned long long)hlen, AG_MAX_SAFETENSORS_HEADER);
        return -1;
    }
    if (hlen > m->size - 8) {
        ag_set_error("%s: safetensors header length %llu runs past the end of the file (truncated?)", path,
                     (unsigned long long)hlen);
        return -1;
    }
    json_value *h = json_parse((const char *)base + 8, (size_t)hlen, path);
    if (!h)
        return -1;
    int rc = -1;
    if (h->kind != JSON_OBJECT) {
        ag_set_error("%s: safetensors header is not a JSON object", path);
        goto done;
    }
    const uint8_t *data = base + 8 + hlen;
    const size_t dsize = m->size - 8 - (size_t)hlen;
    for (size_t k = 0; k < h->n; k++) {
        const char *name = h->keys[k];
        const json_value *e = h->items[k];
        if (strcmp(name, "__metadata__") == 0)
            continue;
        const char *dt = json_get_str(e, "dtype");
        const json_value *shape = json_get(e, "shape");
        const json_value *offs = json_get(e, "data_offsets");
        ckpt_tensor t = {0};
        t.name = (char *)name;
        t.file = m->path;
        if (!dt || parse_dtype(dt, &t.dtype)) {
            ag_set_error("%s: tensor '%s': missing or unsupported dtype '%s'", path, name, dt ? dt : "(none)");
            goto done;
        }
        if (!shape || shape->kind != JSON_ARRAY || shape->n > CKPT_MAX_DIMS || !offs ||
            offs->kind != JSON_ARRAY || offs->n != 2) {
            ag_set_error("%s: tensor '%s': bad shape or data_offsets", path, name);
            goto done;
        }
        t.n_dims = (int)shape->n;
        uint64_t numel = 1;
        for (int d = 0; d < t.n_dims; d++) {
            const json_value *v = shape->items[d];
            if (v->kind != JSON_NUMBER || !v->is_int || v->i < 0 ||
                __builtin_mul_overflow(numel, (uint64_t)v->i, &numel)) {
                ag_set_error("%s: tensor '%s': bad dimension", path, name);
                goto done;
            }
            t.shape[d] = v->i;
        }
        int64_t s = 1;
        for (int d = t.n_dims - 1; d >= 0; d--) {
            t.strides[d] = s;
            s *= t.shape[d] ? t.shape[d] : 1;
        }
        const json_value *b = offs->items[0], *en = offs->items[1];
        if (b->kind != JSON_NUMBER || en->kind != JSON_NUMBER || !b->is_int || !en->is_int || b->i < 0 ||
            en->i < b->i) {
            ag_set_error("%s: tensor '%s': bad data_offsets", path, name);
            goto done;
        }
        uint64_t bytes;
        if (__builtin_mul_overflow(numel, (uint64_t)ckpt_dtype_size(t.dtype), &bytes) ||
            (uint64_t)(en->i - b->i) != bytes) {
            ag_set_error("%s: tensor '%s': data_offsets span %lld bytes but shape and dtype need %llu", path, name,
                         (long long)(en->i - b->i), (unsigned long long)bytes);
            goto done;
        }
        if ((uint64_t)en->i > dsize) {
            ag_set_error("%s: tensor '%s' data runs past the end of the file (truncated?)", path, name);
            goto done;
        }
        t.data = data + b->i;
        if (ckpt_add(c, &t))
            goto done;
    }
    rc = 0;
done:
    json_free(h);
    return rc;
}
