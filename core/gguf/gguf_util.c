/* Helpers shared by the GGUF reader and writer. */
#include "gguf_internal.h"

size_t ag_gguf_type_size(ag_gguf_type t)
{
    switch (t) {
    case AG_GGUF_UINT8:
    case AG_GGUF_INT8:
    case AG_GGUF_BOOL: return 1;
    case AG_GGUF_UINT16:
    case AG_GGUF_INT16: return 2;
    case AG_GGUF_UINT32:
    case AG_GGUF_INT32:
    case AG_GGUF_FLOAT32: return 4;
    case AG_GGUF_UINT64:
    case AG_GGUF_INT64:
    case AG_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *ag_gguf_type_str(uint32_t t)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "str", "arr", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

bool ag_gguf_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1fu, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0fu, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07u, min = 0x10000;
        } else {
            return false; /* stray continuation byte or 0xf8.. */
        }
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

size_t ag_gguf_tensor_bytes(ag_type type, int n_dims, const int64_t *ne)
{
    if (!ag_type_valid((int)type) || n_dims < 1 || n_dims > AG_MAX_DIMS)
        return 0;
    for (int d = 0; d < n_dims; d++)
        if (ne[d] <= 0)
            return 0;
    /* Not ag_row_size: its multiplication is unchecked, and here ne comes from the file. */
    int64_t be = ag_type_block_elems(type);
    size_t bytes;
    if (ne[0] % be != 0 || __builtin_mul_overflow((size_t)(ne[0] / be), ag_type_block_size(type), &bytes))
        return 0;
    for (int d = 1; d < n_dims; d++)
        if (__builtin_mul_overflow(bytes, (size_t)ne[d], &bytes))
            return 0;
    return bytes;
}
