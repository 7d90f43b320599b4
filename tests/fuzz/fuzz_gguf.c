/* GGUF reader (core/gguf): header, KVs, tensor infos, data offsets. Every accessor is walked on
 * what opens; what opens is copied through the writer and must read back the same (KVs byte for
 * byte via ag_gguf_copy_kvs, tensor infos and data). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile uint8_t sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    if (n)
        sink ^= b[0] ^ b[n - 1];
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_gguf: %s\n", what);
        abort();
    }
}

static void walk_kvs(const ag_gguf *f)
{
    for (int64_t i = 0; i < ag_gguf_n_kv(f); i++) {
        const char *key = ag_gguf_key(f, i);
        check(key && ag_gguf_find_key(f, key) == i, "key lookup");
        ag_gguf_type t = ag_gguf_kv_type(f, i), at = ag_gguf_arr_type(f, i);
        uint64_t n = ag_gguf_arr_n(f, i);
        if (at == AG_GGUF_STRING) {
            for (uint64_t j = 0; j < n; j++) {
                uint64_t len = 0;
                const char *s = ag_gguf_arr_str(f, i, j, &len);
                check(s != NULL, "string element");
                touch(s, (size_t)len);
            }
        } else {
            const void *d = ag_gguf_arr_data(f, i);
            check(d != NULL || n == 0, "array data");
            if (d && n)
                touch(d, 1);
        }
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        float f32;
        bool b;
        (void)ag_gguf_get_u32(f, key, &u32);
        (void)ag_gguf_get_i32(f, key, &i32);
        (void)ag_gguf_get_u64(f, key, &u64);
        (void)ag_gguf_get_f32(f, key, &f32);
        (void)ag_gguf_get_bool(f, key, &b);
        const char *s = ag_gguf_get_str(f, key);
        check((s != NULL) == (t == AG_GGUF_STRING), "string getter");
        if (s)
            sink ^= (uint8_t)strlen(s);
    }
}

static void walk_tensors(const ag_gguf *f, size_t size)
{
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
        const char *name = ag_gguf_tensor_name(f, i);
        check(name && ag_gguf_find_tensor(f, name) == i, "tensor lookup");
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        int nd = ag_gguf_tensor_n_dims(f, i);
        check(nd >= 1 && nd <= AG_MAX_DIMS, "n_dims");
        size_t bytes = ag_gguf_tensor_size(f, i), off = ag_gguf_tensor_file_offset(f, i);
        check(off <= size && bytes <= size - off, "tensor inside the file");
        touch(ag_gguf_tensor_data(f, i), bytes);
        sink ^= (uint8_t)ag_gguf_tensor_type(f, i);
    }
}

/* Writer round trip of what the reader accepted. */
static void roundtrip(const ag_gguf *f)
{
    ag_gguf_writer *w = ag_gguf_writer_new();
    check(w != NULL, "writer");
    check(ag_gguf_copy_kvs(w, f) == 0, "copy_kvs of a file that opened");
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        check(ag_gguf_add_tensor(w, ag_gguf_tensor_name(f, i), ag_gguf_tensor_type(f, i), ag_gguf_tensor_n_dims(f, i),
                                 ne, ag_gguf_tensor_data(f, i), ag_gguf_tensor_size(f, i)) == 0,
              "add_tensor of a tensor that opened");
    }
    const char *path = fz_write_tmp("rt", (const uint8_t *)"", 0);
    if (ag_gguf_writer_write(w, path) != 0) {
        /* The writer may refuse what the reader tolerates (e.g. an alignment KV it sets itself);
         * then it must say why. */
        fz_expect_error("ag_gguf_writer_write");
        ag_gguf_writer_free(w);
        return;
    }
    ag_gguf_writer_free(w);
    ag_gguf *g = ag_gguf_open(path);
    check(g != NULL, "re-open of the written copy");
    check(ag_gguf_n_kv(g) >= ag_gguf_n_kv(f) && ag_gguf_n_tensors(g) == ag_gguf_n_tensors(f), "counts kept");
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
        int64_t j = ag_gguf_find_tensor(g, ag_gguf_tensor_name(f, i));
        check(j >= 0 && ag_gguf_tensor_size(g, j) == ag_gguf_tensor_size(f, i) &&
                  memcmp(ag_gguf_tensor_data(g, j), ag_gguf_tensor_data(f, i), ag_gguf_tensor_size(f, i)) == 0,
              "tensor data kept");
    }
    for (int64_t i = 0; i < ag_gguf_n_kv(f); i++) {
        int64_t j = ag_gguf_find_key(g, ag_gguf_key(f, i));
        check(j >= 0 && ag_gguf_kv_type(g, j) == ag_gguf_kv_type(f, i) && ag_gguf_arr_n(g, j) == ag_gguf_arr_n(f, i),
              "kv kept");
    }
    ag_gguf_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_clear_error();
    ag_gguf *f = ag_gguf_open_memory(data, size, "fuzz.gguf");
    if (!f) {
        fz_expect_error("ag_gguf_open_memory");
        return 0;
    }
    size_t map_size;
    check(ag_gguf_mapping(f, &map_size) == data && map_size == size, "mapping");
    check(ag_gguf_version(f) == 2 || ag_gguf_version(f) == 3, "version");
    check(ag_gguf_data_offset(f) <= size, "data offset");
    walk_kvs(f);
    walk_tensors(f, size);
    roundtrip(f);
    ag_gguf_close(f);
    return 0;
}
