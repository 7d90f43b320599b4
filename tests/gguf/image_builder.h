/* Builds raw GGUF images byte by byte in the tests (independent of the library's writer), so
 * hostile and odd files can be made with any field wrong. */
#ifndef AG_TEST_IMAGE_BUILDER_H
#define AG_TEST_IMAGE_BUILDER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct img {
    uint8_t *p;
    size_t len, cap;
} img;

static inline void img_put(img *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static inline void img_u8(img *b, uint8_t v) { img_put(b, &v, 1); }
static inline void img_u32(img *b, uint32_t v) { img_put(b, &v, 4); }
static inline void img_u64(img *b, uint64_t v) { img_put(b, &v, 8); }
static inline void img_strn(img *b, const char *s, size_t n)
{
    img_u64(b, n);
    img_put(b, s, n);
}
static inline void img_str(img *b, const char *s) { img_strn(b, s, strlen(s)); }
static inline void img_header(img *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    img_put(b, "GGUF", 4);
    img_u32(b, version);
    img_u64(b, n_tensors);
    img_u64(b, n_kv);
}
/* Key and type of a KV; the caller appends the value. */
static inline void img_kv(img *b, const char *key, uint32_t type)
{
    img_str(b, key);
    img_u32(b, type);
}
/* A tensor info with n_dims dimensions. */
static inline void img_tinfo(img *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                             uint64_t offset)
{
    img_str(b, name);
    img_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        img_u64(b, ne[d]);
    img_u32(b, type);
    img_u64(b, offset);
}
static inline void img_pad(img *b, size_t align)
{
    while (b->len % align)
        img_u8(b, 0);
}
static inline void img_zeros(img *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        img_u8(b, 0);
}

#endif
