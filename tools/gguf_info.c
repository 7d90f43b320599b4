/* anygpt-gguf-info FILE.gguf: print a GGUF file's header, metadata and tensor table.
 * Exit 1 with the reader's error on a bad file. */
#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_SHOWN 8   /* array elements printed */
#define MAX_STR 96    /* string bytes printed */

static const char *type_str(ag_gguf_type t)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "str", "arr", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* Quoted, with control and non-ASCII bytes escaped, cut at MAX_STR bytes. */
static void print_str(const char *s, uint64_t n)
{
    putchar('"');
    for (uint64_t k = 0; k < n && k < MAX_STR; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    putchar('"');
    if (n > MAX_STR)
        printf("...(%" PRIu64 " bytes)", n);
}

static void print_elem(ag_gguf_type t, const unsigned char *p)
{
    switch (t) {
    case AG_GGUF_UINT8: printf("%u", p[0]); break;
    case AG_GGUF_INT8: { int8_t v; memcpy(&v, p, 1); printf("%d", v); break; }
    case AG_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); printf("%u", v); break; }
    case AG_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); printf("%d", v); break; }
    case AG_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); printf("%" PRIu32, v); break; }
    case AG_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); printf("%" PRId32, v); break; }
    case AG_GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); printf("%" PRIu64, v); break; }
    case AG_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); printf("%" PRId64, v); break; }
    case AG_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); printf("%.9g", v); break; }
    case AG_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); printf("%.17g", v); break; }
    case AG_GGUF_BOOL: printf("%s", p[0] ? "true" : "false"); break;
    default: printf("?"); break;
    }
}

static size_t elem_size(ag_gguf_type t)
{
    switch (t) {
    case AG_GGUF_UINT8: case AG_GGUF_INT8: case AG_GGUF_BOOL: return 1;
    case AG_GGUF_UINT16: case AG_GGUF_INT16: return 2;
    case AG_GGUF_UINT32: case AG_GGUF_INT32: case AG_GGUF_FLOAT32: return 4;
    default: return 8;
    }
}

/* Scalars are readable as one-element arrays through the arr accessors. */
static void print_kv(const ag_gguf *f, int64_t i)
{
    ag_gguf_type t = ag_gguf_kv_type(f, i), et = ag_gguf_arr_type(f, i);
    uint64_t n = ag_gguf_arr_n(f, i);
    printf("  %s = ", ag_gguf_key(f, i));
    if (t == AG_GGUF_ARRAY)
        printf("arr[%s, %" PRIu64 "] [", type_str(et), n);
    else
        printf("%s ", type_str(t));
    for (uint64_t j = 0; j < n && j < MAX_SHOWN; j++) {
        if (j)
            printf(", ");
        if (et == AG_GGUF_STRING) {
            uint64_t len;
            const char *s = ag_gguf_arr_str(f, i, j, &len);
            print_str(s, len);
        } else {
            print_elem(et, (const unsigned char *)ag_gguf_arr_data(f, i) + j * elem_size(et));
        }
    }
    if (t == AG_GGUF_ARRAY)
        printf("%s]", n > MAX_SHOWN ? ", ..." : "");
    putchar('\n');
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: anygpt-gguf-info FILE.gguf\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    ag_gguf *f = ag_gguf_open(argv[1]);
    if (!f) {
        fprintf(stderr, "anygpt-gguf-info: %s\n", ag_last_error());
        return 1;
    }
    size_t size;
    ag_gguf_mapping(f, &size);
    printf("file: %s (%zu bytes)\n", argv[1], size);
    printf("version: %" PRIu32 "\n", ag_gguf_version(f));
    printf("alignment: %zu\n", ag_gguf_alignment(f));
    printf("data offset: %zu\n", ag_gguf_data_offset(f));
    printf("key-values: %" PRId64 "\n", ag_gguf_n_kv(f));
    for (int64_t i = 0; i < ag_gguf_n_kv(f); i++)
        print_kv(f, i);

    int64_t nt = ag_gguf_n_tensors(f);
    printf("tensors: %" PRId64 "\n", nt);
    uint64_t total_bytes = 0, total_elems = 0, per_type[AG_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < nt; i++) {
        ag_type type = ag_gguf_tensor_type(f, i);
        int nd = ag_gguf_tensor_n_dims(f, i);
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        printf("  %-40s %-5s [", ag_gguf_tensor_name(f, i), ag_type_name(type));
        uint64_t nel = 1;
        for (int d = 0; d < nd; d++) {
            printf("%s%" PRId64, d ? ", " : "", ne[d]);
            nel *= (uint64_t)ne[d];
        }
        size_t bytes = ag_gguf_tensor_size(f, i);
        printf("] offset %zu bytes %zu\n", ag_gguf_tensor_file_offset(f, i), bytes);
        total_bytes += bytes;
        total_elems += nel;
        per_type[type] += 1;
    }
    printf("total: %" PRId64 " tensors, %" PRIu64 " elements, %" PRIu64 " bytes of tensor data", nt, total_elems,
           total_bytes);
    for (int t = 0; t < AG_TYPE_COUNT; t++)
        if (per_type[t])
            printf(", %" PRIu64 " %s", per_type[t], ag_type_name((ag_type)t));
    printf("\n");
    ag_gguf_close(f);
    return 0;
}
