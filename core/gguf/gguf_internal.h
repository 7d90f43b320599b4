/* Internal to core/gguf: the parsed file layout shared by the reader, the accessors and the
 * writer (which copies raw KV records out of a reader). */
#ifndef AG_GGUF_INTERNAL_H
#define AG_GGUF_INTERNAL_H

#include "anygpt/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AG_GGUF_MAGIC "GGUF"
#define AG_GGUF_MAX_KEY 65535 /* gguf.md: keys are at most 2^16-1 bytes */

typedef struct ag_gguf_kv {
    char *key; /* NUL-terminated copy */
    ag_gguf_type type;
    ag_gguf_type arr_type; /* arrays: element type; scalars: the type itself */
    uint64_t arr_n;        /* arrays: element count; scalars: 1 */
    size_t value_off;      /* file offset of the value (arrays: of the first element) */
    size_t raw_off;        /* file offset of the type field ... */
    size_t raw_len;        /* ... and the length of type + value, for ag_gguf_copy_kvs */
    size_t *str_offs;      /* string arrays: file offset of each element's u64 length */
    char *str;             /* string values: NUL-terminated copy */
} ag_gguf_kv;

typedef struct ag_gguf_tinfo {
    char *name;
    ag_type type;
    int n_dims;
    int64_t ne[AG_MAX_DIMS];
    size_t size;
    uint64_t offset; /* relative to the data section */
} ag_gguf_tinfo;

struct ag_gguf {
    char *label;
    const uint8_t *data;
    size_t size;
    void *map; /* non-NULL when we own an mmap of the file */
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    ag_gguf_kv *kvs;
    int64_t *kv_sorted; /* indices sorted by key, for lookup */
    int64_t n_tensors;
    ag_gguf_tinfo *tensors;
    int64_t *t_sorted; /* indices sorted by name */
};

/* Bytes of one element of a plain (non-string, non-array) value type; 0 for others. */
size_t ag_gguf_type_size(ag_gguf_type t);
/* Short name: "u8", "i32", "str", "arr", ...; "?" for unknown ids. */
const char *ag_gguf_type_str(uint32_t t);
/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without NUL bytes. */
bool ag_gguf_utf8_ok(const uint8_t *s, size_t n);
/* Bytes of a tensor of this type and shape, or 0 when invalid / overflowing. */
size_t ag_gguf_tensor_bytes(ag_type type, int n_dims, const int64_t *ne);

#endif
