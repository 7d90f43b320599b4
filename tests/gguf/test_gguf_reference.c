/* Reads GGUF files written by the independent Python writer (tests/reference/gguf_writer.py via
 * make_ref_fixture.py) and checks every KV and tensor value by value, and the data layout.
 * usage: test_gguf_reference FIXTURE_ALIGN32.gguf FIXTURE_ALIGN64.gguf (no args: skipped). */
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "fixture_data.h"
#include "../common/ag_check.h"

#include <inttypes.h>
#include <math.h>

static const char *const SCALAR_KEYS[] = {"general.architecture", "t.u8", "t.i8", "t.u16", "t.i16",
                                          "t.u32", "t.i32", "t.f32", "t.bool", "t.str", "t.u64",
                                          "t.i64", "t.f64", "t.empty_str"};
static const ag_gguf_type SCALAR_TYPES[] = {AG_GGUF_STRING, AG_GGUF_UINT8, AG_GGUF_INT8, AG_GGUF_UINT16,
                                            AG_GGUF_INT16, AG_GGUF_UINT32, AG_GGUF_INT32, AG_GGUF_FLOAT32,
                                            AG_GGUF_BOOL, AG_GGUF_STRING, AG_GGUF_UINT64, AG_GGUF_INT64,
                                            AG_GGUF_FLOAT64, AG_GGUF_STRING};
static const char *const ARRAY_KEYS[] = {"a.u8", "a.i8", "a.u16", "a.i16", "a.u32", "a.i32", "a.f32",
                                         "a.bool", "a.str", "a.u64", "a.i64", "a.f64", "a.empty"};
#define N_SCALARS 14
#define N_ARRAYS 13

static void check_array(const ag_gguf *f, const char *key, ag_gguf_type et, const void *expect, uint64_t n,
                        size_t es)
{
    int64_t i = ag_gguf_find_key(f, key);
    CHECK(i >= 0, "%s missing", key);
    if (i < 0)
        return;
    CHECK(ag_gguf_kv_type(f, i) == AG_GGUF_ARRAY, "%s type %d", key, ag_gguf_kv_type(f, i));
    CHECK(ag_gguf_arr_type(f, i) == et, "%s element type %d", key, ag_gguf_arr_type(f, i));
    CHECK(ag_gguf_arr_n(f, i) == n, "%s count %" PRIu64, key, ag_gguf_arr_n(f, i));
    if (ag_gguf_arr_n(f, i) == n && n > 0)
        CHECK(memcmp(ag_gguf_arr_data(f, i), expect, n * es) == 0, "%s values differ", key);
}

static void check_kvs(const ag_gguf *f, bool has_align)
{
    int64_t base = has_align ? 1 : 0;
    CHECK(ag_gguf_n_kv(f) == base + N_SCALARS + N_ARRAYS, "n_kv %" PRId64, ag_gguf_n_kv(f));
    if (has_align)
        CHECK(strcmp(ag_gguf_key(f, 0), "general.alignment") == 0, "first key %s", ag_gguf_key(f, 0));
    /* File order is kept. */
    for (int k = 0; k < N_SCALARS; k++) {
        const char *key = ag_gguf_key(f, base + k);
        CHECK(key && strcmp(key, SCALAR_KEYS[k]) == 0, "key %d is %s, expected %s", k, key, SCALAR_KEYS[k]);
        CHECK(ag_gguf_kv_type(f, base + k) == SCALAR_TYPES[k], "%s type %d", SCALAR_KEYS[k],
              ag_gguf_kv_type(f, base + k));
        CHECK(ag_gguf_find_key(f, SCALAR_KEYS[k]) == base + k, "find %s", SCALAR_KEYS[k]);
    }
    for (int k = 0; k < N_ARRAYS; k++)
        CHECK(ag_gguf_find_key(f, ARRAY_KEYS[k]) == base + N_SCALARS + k, "find %s", ARRAY_KEYS[k]);
    CHECK(ag_gguf_find_key(f, "t.absent") == -1, "absent key found");

    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f32;
    bool b;
    CHECK(ag_gguf_get_u32(f, "t.u8", &u32) && u32 == 200, "t.u8 %u", u32);
    CHECK(ag_gguf_get_i32(f, "t.u8", &i32) && i32 == 200, "t.u8 as i32");
    CHECK(ag_gguf_get_i32(f, "t.i8", &i32) && i32 == -100, "t.i8 %d", i32);
    CHECK(!ag_gguf_get_u32(f, "t.i8", &u32) && strstr(ag_last_error(), "does not fit"), "%s", ag_last_error());
    CHECK(ag_gguf_get_u32(f, "t.u16", &u32) && u32 == 60000, "t.u16");
    CHECK(ag_gguf_get_i32(f, "t.i16", &i32) && i32 == -30000, "t.i16");
    CHECK(ag_gguf_get_u32(f, "t.u32", &u32) && u32 == 4000000000u, "t.u32");
    CHECK(!ag_gguf_get_i32(f, "t.u32", &i32), "t.u32 as i32 must not fit");
    CHECK(ag_gguf_get_u64(f, "t.u32", &u64) && u64 == 4000000000u, "t.u32 as u64");
    CHECK(ag_gguf_get_i32(f, "t.i32", &i32) && i32 == -2000000000, "t.i32");
    CHECK(ag_gguf_get_f32(f, "t.f32", &f32) && f32 == 1.5f, "t.f32 %g", f32);
    CHECK(ag_gguf_get_bool(f, "t.bool", &b) && b, "t.bool");
    const char *s = ag_gguf_get_str(f, "t.str");
    CHECK(s && strcmp(s, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93") == 0, "t.str '%s'", s);
    s = ag_gguf_get_str(f, "general.architecture");
    CHECK(s && strcmp(s, "test-arch") == 0, "arch '%s'", s);
    s = ag_gguf_get_str(f, "t.empty_str");
    CHECK(s && s[0] == '\0', "empty str");
    CHECK(ag_gguf_get_u64(f, "t.u64", &u64) && u64 == (1ull << 63) + 5, "t.u64 %" PRIu64, u64);
    CHECK(!ag_gguf_get_u32(f, "t.u64", &u32), "t.u64 as u32 must not fit");
    CHECK(!ag_gguf_get_u64(f, "t.i64", &u64), "negative i64 as u64");
    CHECK(ag_gguf_get_f32(f, "t.f64", &f32) && f32 == (float)3.141592653589793, "t.f64 as f32");
    double d = 0;
    CHECK(ag_gguf_get_f64(f, "t.f64", &d) && d == 3.141592653589793, "t.f64 %.17g", d);
    CHECK(ag_gguf_get_f64(f, "t.f32", &d) && d == 1.5, "t.f32 as f64");
    CHECK(!ag_gguf_get_f64(f, "t.str", &d) && strstr(ag_last_error(), "expected f64"), "%s", ag_last_error());
    CHECK(!ag_gguf_get_u32(f, "t.absent", &u32) && strstr(ag_last_error(), "not found"), "%s", ag_last_error());
    CHECK(!ag_gguf_get_str(f, "t.u32") && strstr(ag_last_error(), "expected str"), "%s", ag_last_error());
    CHECK(!ag_gguf_get_bool(f, "t.u8", &b), "u8 as bool");
    CHECK(!ag_gguf_get_f32(f, "t.str", &f32), "str as f32");
    if (has_align)
        CHECK(ag_gguf_get_u32(f, "general.alignment", &u32) && u32 == 64, "alignment kv");

    /* Scalars without a typed getter, through the one-element-array view. */
    int64_t i = ag_gguf_find_key(f, "t.i64");
    int64_t i64;
    double f64;
    int16_t i16;
    memcpy(&i64, ag_gguf_arr_data(f, i), 8);
    CHECK(ag_gguf_arr_n(f, i) == 1 && i64 == -(1ll << 62) - 3, "t.i64 %" PRId64, i64);
    i = ag_gguf_find_key(f, "t.f64");
    memcpy(&f64, ag_gguf_arr_data(f, i), 8);
    CHECK(f64 == 3.141592653589793, "t.f64 %.17g", f64);
    i = ag_gguf_find_key(f, "t.i16");
    memcpy(&i16, ag_gguf_arr_data(f, i), 2);
    CHECK(i16 == -30000, "t.i16 %d", i16);
    uint64_t len;
    i = ag_gguf_find_key(f, "t.str");
    s = ag_gguf_arr_str(f, i, 0, &len);
    CHECK(s && len == 17 && memcmp(s, "h\xc3\xa9llo", 6) == 0, "t.str as element");

    static const uint8_t au8[] = {0, 1, 255};
    static const int8_t ai8[] = {-128, 0, 127};
    static const uint16_t au16[] = {0, 65535};
    static const int16_t ai16[] = {-32768, 32767};
    static const uint32_t au32[] = {1, 2, 3, 4000000000u};
    static const int32_t ai32[] = {-1, 0, 1};
    static const float af32[] = {0.5f, -2.25f};
    static const uint8_t abool[] = {1, 0, 1};
    static const uint64_t au64[] = {UINT64_MAX};
    static const int64_t ai64[] = {INT64_MIN, INT64_MAX};
    static const double af64[] = {1e300, -0.0};
    check_array(f, "a.u8", AG_GGUF_UINT8, au8, 3, 1);
    check_array(f, "a.i8", AG_GGUF_INT8, ai8, 3, 1);
    check_array(f, "a.u16", AG_GGUF_UINT16, au16, 2, 2);
    check_array(f, "a.i16", AG_GGUF_INT16, ai16, 2, 2);
    check_array(f, "a.u32", AG_GGUF_UINT32, au32, 4, 4);
    check_array(f, "a.i32", AG_GGUF_INT32, ai32, 3, 4);
    check_array(f, "a.f32", AG_GGUF_FLOAT32, af32, 2, 4);
    check_array(f, "a.bool", AG_GGUF_BOOL, abool, 3, 1);
    check_array(f, "a.u64", AG_GGUF_UINT64, au64, 1, 8);
    check_array(f, "a.i64", AG_GGUF_INT64, ai64, 2, 8);
    check_array(f, "a.f64", AG_GGUF_FLOAT64, af64, 2, 8);
    check_array(f, "a.empty", AG_GGUF_INT32, NULL, 0, 4);

    static const char *const astr[] = {"a", "", "\xc3\xbcn\xc3\xaf", "tab\t"};
    i = ag_gguf_find_key(f, "a.str");
    CHECK(ag_gguf_arr_type(f, i) == AG_GGUF_STRING && ag_gguf_arr_n(f, i) == 4, "a.str shape");
    for (uint64_t j = 0; j < 4 && ag_gguf_arr_n(f, i) == 4; j++) {
        s = ag_gguf_arr_str(f, i, j, &len);
        CHECK(s && len == strlen(astr[j]) && memcmp(s, astr[j], len) == 0, "a.str[%" PRIu64 "]", j);
    }
    CHECK(ag_gguf_arr_str(f, i, 4, &len) == NULL, "a.str[4] must be out of range");
    CHECK(ag_gguf_arr_data(f, i) == NULL, "arr_data on strings");
    CHECK(ag_gguf_key(f, -1) == NULL && ag_gguf_key(f, 1000) == NULL, "bad kv index");
}

static void check_tensors(const ag_gguf *f, size_t align)
{
    fix_tensor t[FIX_N_TENSORS];
    fix_tensors(t);
    CHECK(ag_gguf_n_tensors(f) == FIX_N_TENSORS, "n_tensors %" PRId64, ag_gguf_n_tensors(f));
    if (ag_gguf_n_tensors(f) != FIX_N_TENSORS)
        return;
    size_t size;
    const uint8_t *map = ag_gguf_mapping(f, &size);
    size_t doff = ag_gguf_data_offset(f);
    CHECK(doff % align == 0 && doff <= size, "data offset %zu", doff);
    size_t expect_off = doff; /* the reference writer packs tensors in order, each padded */
    for (int k = 0; k < FIX_N_TENSORS; k++) {
        CHECK(strcmp(ag_gguf_tensor_name(f, k), t[k].name) == 0, "tensor %d name %s", k, ag_gguf_tensor_name(f, k));
        CHECK(ag_gguf_find_tensor(f, t[k].name) == k, "find %s", t[k].name);
        CHECK(ag_gguf_tensor_type(f, k) == t[k].type, "%s type", t[k].name);
        CHECK(ag_gguf_tensor_n_dims(f, k) == t[k].n_dims, "%s n_dims %d", t[k].name, ag_gguf_tensor_n_dims(f, k));
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, k, ne);
        CHECK(memcmp(ne, t[k].ne, sizeof ne) == 0, "%s shape [%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "]",
              t[k].name, ne[0], ne[1], ne[2], ne[3]);
        CHECK(ag_gguf_tensor_size(f, k) == t[k].size, "%s size %zu", t[k].name, ag_gguf_tensor_size(f, k));
        size_t off = ag_gguf_tensor_file_offset(f, k);
        CHECK(off == expect_off, "%s offset %zu, expected %zu", t[k].name, off, expect_off);
        CHECK(ag_gguf_tensor_data(f, k) == map + off, "%s data pointer", t[k].name);
        CHECK(memcmp(ag_gguf_tensor_data(f, k), t[k].data, t[k].size) == 0, "%s bytes differ", t[k].name);
        expect_off += (t[k].size + align - 1) / align * align;
    }
    /* Decoded values, so the formulas themselves are held to known numbers. */
    float v;
    memcpy(&v, (const uint8_t *)ag_gguf_tensor_data(f, 0) + 4 * 6, 4);
    CHECK(v == 1.75f, "f32.vec[6] %g", v);
    ag_fp16 h;
    memcpy(&h, (const uint8_t *)ag_gguf_tensor_data(f, 2) + 2 * 23, 2);
    CHECK(ag_fp16_to_fp32(h) == 2.75f, "f16.cube[23] %g", ag_fp16_to_fp32(h));
    const ag_block_q8_0 *q8 = ag_gguf_tensor_data(f, 3);
    CHECK(ag_fp16_to_fp32(q8[3].d) == 0.25f && (uint8_t)q8[3].qs[1] == 70, "q8 block 3");
    int32_t id;
    memcpy(&id, (const uint8_t *)ag_gguf_tensor_data(f, 5) + 4 * 5, 4);
    CHECK(id == 2500, "i32.ids[5] %d", id);
    CHECK(ag_gguf_find_tensor(f, "nope") == -1, "absent tensor");
    CHECK(ag_gguf_tensor_name(f, FIX_N_TENSORS) == NULL && ag_gguf_tensor_data(f, -1) == NULL, "bad index");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("SKIP: no reference fixtures (reference python not found at configure time)\n");
        return 77;
    }
    for (int a = 1; a <= 2; a++) {
        size_t align = a == 1 ? 32 : 64;
        ag_gguf *f = ag_gguf_open(argv[a]);
        CHECK(f != NULL, "open %s: %s", argv[a], ag_last_error());
        if (!f)
            continue;
        printf("# %s: %" PRId64 " kvs, %" PRId64 " tensors\n", argv[a], ag_gguf_n_kv(f), ag_gguf_n_tensors(f));
        CHECK(ag_gguf_version(f) == 3, "version");
        CHECK(ag_gguf_alignment(f) == align, "alignment %zu", ag_gguf_alignment(f));
        check_kvs(f, align != 32);
        check_tensors(f, align);
        ag_gguf_close(f);
    }
    return t_finish();
}
