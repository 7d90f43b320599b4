/* Round trip through our writer and reader: every KV type (scalars, arrays, strings), tensors of
 * every type and rank, several alignments; ag_gguf_copy_kvs; the writer's own error checks.
 * usage: test_gguf_roundtrip OUT_DIR */
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "fixture_data.h"
#include "image_builder.h"
#include "../common/ag_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char out_dir[4096];

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", out_dir, name); }

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    *size = p ? fread(p, 1, (size_t)n, fp) : 0;
    fclose(fp);
    return p;
}

/* An image with one scalar of every type, including those the writer has no setter for. */
static img all_scalars_image(void)
{
    img b = {0};
    img_header(&b, 3, 0, 13);
    img_kv(&b, "s.u8", AG_GGUF_UINT8), img_u8(&b, 250);
    img_kv(&b, "s.i8", AG_GGUF_INT8), img_u8(&b, (uint8_t)-7);
    uint16_t u16 = 65000;
    int16_t i16 = -1234;
    img_kv(&b, "s.u16", AG_GGUF_UINT16), img_put(&b, &u16, 2);
    img_kv(&b, "s.i16", AG_GGUF_INT16), img_put(&b, &i16, 2);
    img_kv(&b, "s.u32", AG_GGUF_UINT32), img_u32(&b, 123456789);
    img_kv(&b, "s.i32", AG_GGUF_INT32), img_u32(&b, (uint32_t)-123456789);
    float f = -0.375f;
    img_kv(&b, "s.f32", AG_GGUF_FLOAT32), img_put(&b, &f, 4);
    img_kv(&b, "s.bool", AG_GGUF_BOOL), img_u8(&b, 0);
    img_kv(&b, "s.str", AG_GGUF_STRING), img_str(&b, "copy me");
    img_kv(&b, "s.u64", AG_GGUF_UINT64), img_u64(&b, UINT64_MAX - 1);
    img_kv(&b, "s.i64", AG_GGUF_INT64), img_u64(&b, (uint64_t)INT64_MIN);
    double d = 2.5e-300;
    img_kv(&b, "s.f64", AG_GGUF_FLOAT64), img_put(&b, &d, 8);
    img_kv(&b, "s.arr", AG_GGUF_ARRAY), img_u32(&b, AG_GGUF_STRING), img_u64(&b, 2), img_str(&b, "x"),
        img_str(&b, "yz");
    img_pad(&b, 32);
    return b;
}

static void build(ag_gguf_writer *w, uint32_t align, const fix_tensor *t)
{
    static const uint8_t au8[] = {9, 8, 7};
    static const int8_t ai8[] = {-1, 2};
    static const uint16_t au16[] = {1, 2, 65535};
    static const int16_t ai16[] = {-5};
    static const uint32_t au32[] = {4294967295u, 0};
    static const int32_t ai32[] = {INT32_MIN, INT32_MAX, 0, 42};
    static const float af32[] = {1.0f, -0.0f, 3.25e10f};
    static const bool abool[] = {false, true};
    static const uint64_t au64[] = {0, 1ull << 40};
    static const int64_t ai64[] = {-3};
    static const double af64[] = {0.1, -1e-310};
    static const char *const astr[] = {"\xe4\xbd\xa0\xe5\xa5\xbd", "", "<0x0A>", "\xe2\x96\x81the"};
    if (align)
        CHECK(ag_gguf_set_u32(w, "general.alignment", align) == 0, "alignment %u: %s", align, ag_last_error());
    CHECK(ag_gguf_set_str(w, "general.name", "round trip") == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_u32(w, "k.u32", 3000000000u) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_i32(w, "k.i32", -77) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_u64(w, "k.u64", UINT64_MAX) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_f32(w, "k.f32", 1e-3f) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_bool(w, "k.bool", false) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_str(w, "k.empty", "") == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.u8", AG_GGUF_UINT8, au8, 3) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.i8", AG_GGUF_INT8, ai8, 2) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.u16", AG_GGUF_UINT16, au16, 3) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.i16", AG_GGUF_INT16, ai16, 1) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.u32", AG_GGUF_UINT32, au32, 2) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.i32", AG_GGUF_INT32, ai32, 4) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.f32", AG_GGUF_FLOAT32, af32, 3) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.bool", AG_GGUF_BOOL, abool, 2) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.u64", AG_GGUF_UINT64, au64, 2) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.i64", AG_GGUF_INT64, ai64, 1) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr(w, "a.f64", AG_GGUF_FLOAT64, af64, 2) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr_str(w, "a.str", astr, 4) == 0, "%s", ag_last_error());
    CHECK(ag_gguf_set_arr_str(w, "a.str0", NULL, 0) == 0, "%s", ag_last_error());
    for (int k = 0; k < FIX_N_TENSORS; k++)
        CHECK(ag_gguf_add_tensor(w, t[k].name, t[k].type, t[k].n_dims, t[k].ne, t[k].data, t[k].size) == 0,
              "%s: %s", t[k].name, ag_last_error());
}

static void verify(const ag_gguf *f, uint32_t align, const fix_tensor *t)
{
    size_t a = align ? align : AG_GGUF_DEFAULT_ALIGNMENT;
    CHECK(ag_gguf_version(f) == 3, "version");
    CHECK(ag_gguf_alignment(f) == a, "alignment %zu", ag_gguf_alignment(f));
    CHECK(ag_gguf_n_kv(f) == 20 + (align ? 1 : 0), "n_kv %" PRId64, ag_gguf_n_kv(f));
    CHECK(strcmp(ag_gguf_key(f, align ? 1 : 0), "general.name") == 0, "insertion order");
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f32;
    bool b = true;
    const char *s = ag_gguf_get_str(f, "general.name");
    CHECK(s && strcmp(s, "round trip") == 0, "general.name");
    CHECK(ag_gguf_get_u32(f, "k.u32", &u32) && u32 == 3000000000u, "k.u32");
    CHECK(ag_gguf_get_i32(f, "k.i32", &i32) && i32 == -77, "k.i32");
    CHECK(ag_gguf_get_u64(f, "k.u64", &u64) && u64 == UINT64_MAX, "k.u64");
    CHECK(ag_gguf_get_f32(f, "k.f32", &f32) && f32 == 1e-3f, "k.f32");
    CHECK(ag_gguf_get_bool(f, "k.bool", &b) && !b, "k.bool");
    s = ag_gguf_get_str(f, "k.empty");
    CHECK(s && !*s, "k.empty");
    struct {
        const char *key;
        ag_gguf_type t;
        uint64_t n;
        size_t es;
        const void *v;
    } arrs[] = {
        {"a.u8", AG_GGUF_UINT8, 3, 1, (const uint8_t[]){9, 8, 7}},
        {"a.i8", AG_GGUF_INT8, 2, 1, (const int8_t[]){-1, 2}},
        {"a.u16", AG_GGUF_UINT16, 3, 2, (const uint16_t[]){1, 2, 65535}},
        {"a.i16", AG_GGUF_INT16, 1, 2, (const int16_t[]){-5}},
        {"a.u32", AG_GGUF_UINT32, 2, 4, (const uint32_t[]){4294967295u, 0}},
        {"a.i32", AG_GGUF_INT32, 4, 4, (const int32_t[]){INT32_MIN, INT32_MAX, 0, 42}},
        {"a.f32", AG_GGUF_FLOAT32, 3, 4, (const float[]){1.0f, -0.0f, 3.25e10f}},
        {"a.bool", AG_GGUF_BOOL, 2, 1, (const uint8_t[]){0, 1}},
        {"a.u64", AG_GGUF_UINT64, 2, 8, (const uint64_t[]){0, 1ull << 40}},
        {"a.i64", AG_GGUF_INT64, 1, 8, (const int64_t[]){-3}},
        {"a.f64", AG_GGUF_FLOAT64, 2, 8, (const double[]){0.1, -1e-310}},
    };
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++) {
        int64_t i = ag_gguf_find_key(f, arrs[k].key);
        CHECK(i >= 0 && ag_gguf_kv_type(f, i) == AG_GGUF_ARRAY && ag_gguf_arr_type(f, i) == arrs[k].t &&
                  ag_gguf_arr_n(f, i) == arrs[k].n,
              "%s header", arrs[k].key);
        if (i >= 0 && ag_gguf_arr_n(f, i) == arrs[k].n)
            CHECK(memcmp(ag_gguf_arr_data(f, i), arrs[k].v, arrs[k].n * arrs[k].es) == 0, "%s values",
                  arrs[k].key);
    }
    static const char *const astr[] = {"\xe4\xbd\xa0\xe5\xa5\xbd", "", "<0x0A>", "\xe2\x96\x81the"};
    int64_t i = ag_gguf_find_key(f, "a.str");
    CHECK(i >= 0 && ag_gguf_arr_type(f, i) == AG_GGUF_STRING && ag_gguf_arr_n(f, i) == 4, "a.str header");
    for (uint64_t j = 0; i >= 0 && j < 4; j++) {
        uint64_t len;
        const char *e = ag_gguf_arr_str(f, i, j, &len);
        CHECK(e && len == strlen(astr[j]) && memcmp(e, astr[j], len) == 0, "a.str[%" PRIu64 "]", j);
    }
    i = ag_gguf_find_key(f, "a.str0");
    CHECK(i >= 0 && ag_gguf_arr_type(f, i) == AG_GGUF_STRING && ag_gguf_arr_n(f, i) == 0, "empty string array");

    CHECK(ag_gguf_n_tensors(f) == FIX_N_TENSORS, "n_tensors");
    CHECK(ag_gguf_data_offset(f) % a == 0, "data offset %zu not aligned", ag_gguf_data_offset(f));
    for (int k = 0; k < FIX_N_TENSORS && ag_gguf_n_tensors(f) == FIX_N_TENSORS; k++) {
        int64_t ti = ag_gguf_find_tensor(f, t[k].name);
        int64_t ne[AG_MAX_DIMS];
        CHECK(ti == k, "%s index", t[k].name);
        ag_gguf_tensor_ne(f, k, ne);
        CHECK(ag_gguf_tensor_type(f, k) == t[k].type && ag_gguf_tensor_n_dims(f, k) == t[k].n_dims &&
                  memcmp(ne, t[k].ne, sizeof ne) == 0 && ag_gguf_tensor_size(f, k) == t[k].size,
              "%s descriptor", t[k].name);
        CHECK(ag_gguf_tensor_file_offset(f, k) % a == 0, "%s offset not aligned", t[k].name);
        CHECK(memcmp(ag_gguf_tensor_data(f, k), t[k].data, t[k].size) == 0, "%s data", t[k].name);
    }
}

static void test_round_trips(void)
{
    static fix_tensor t[FIX_N_TENSORS];
    fix_tensors(t);
    static const uint32_t aligns[] = {0, 1, 8, 64, 4096};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/roundtrip_%u.gguf", out_dir, aligns[k]);
        ag_gguf_writer *w = ag_gguf_writer_new();
        build(w, aligns[k], t);
        CHECK(ag_gguf_writer_write(w, path) == 0, "write %s: %s", path, ag_last_error());
        ag_gguf_writer_free(w);
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        CHECK(access(tmp, F_OK) != 0, "temporary %s left behind", tmp);
        ag_gguf *f = ag_gguf_open(path);
        CHECK(f, "open %s: %s", path, ag_last_error());
        if (f) {
            verify(f, aligns[k], t);
            ag_gguf_close(f);
        }
        /* Same checks on the memory image. */
        size_t size = 0;
        uint8_t *p = slurp(path, &size);
        f = p ? ag_gguf_open_memory(p, size, "mem") : NULL;
        CHECK(f, "open_memory: %s", ag_last_error());
        if (f) {
            verify(f, aligns[k], t);
            ag_gguf_close(f);
        }
        free(p);
    }
}

/* copy_kvs brings every scalar type across; re-writing a file from its reader reproduces it. */
static void test_copy(void)
{
    img b = all_scalars_image();
    ag_gguf *src = ag_gguf_open_memory(b.p, b.len, "scalars");
    CHECK(src, "scalars image: %s", ag_last_error());
    if (!src) {
        free(b.p);
        return;
    }
    ag_gguf_writer *w = ag_gguf_writer_new();
    CHECK(ag_gguf_set_str(w, "s.str", "kept") == 0, "pre-set");
    CHECK(ag_gguf_copy_kvs(w, src) == 0, "copy: %s", ag_last_error());
    char path[4200];
    path_of(path, sizeof path, "copy.gguf");
    CHECK(ag_gguf_writer_write(w, path) == 0, "write: %s", ag_last_error());
    ag_gguf_writer_free(w);
    ag_gguf *f = ag_gguf_open(path);
    CHECK(f, "open copy: %s", ag_last_error());
    if (f) {
        CHECK(ag_gguf_n_kv(f) == 13, "n_kv %" PRId64, ag_gguf_n_kv(f));
        const char *s = ag_gguf_get_str(f, "s.str");
        CHECK(s && strcmp(s, "kept") == 0, "existing key must not be overwritten");
        for (int64_t i = 0; i < ag_gguf_n_kv(src); i++) {
            const char *key = ag_gguf_key(src, i);
            int64_t j = ag_gguf_find_key(f, key);
            CHECK(j >= 0 && ag_gguf_kv_type(f, j) == ag_gguf_kv_type(src, i), "%s type", key);
            if (j < 0 || strcmp(key, "s.str") == 0 || strcmp(key, "s.arr") == 0)
                continue;
            size_t es = ag_gguf_kv_type(src, i) == AG_GGUF_UINT64 || ag_gguf_kv_type(src, i) == AG_GGUF_INT64 ||
                                ag_gguf_kv_type(src, i) == AG_GGUF_FLOAT64
                            ? 8
                            : 4;
            if (ag_gguf_kv_type(src, i) <= AG_GGUF_INT8 || ag_gguf_kv_type(src, i) == AG_GGUF_BOOL)
                es = 1;
            else if (ag_gguf_kv_type(src, i) <= AG_GGUF_INT16)
                es = 2;
            CHECK(memcmp(ag_gguf_arr_data(f, j), ag_gguf_arr_data(src, i), es) == 0, "%s value", key);
        }
        int64_t i8 = ag_gguf_find_key(f, "s.i8");
        int32_t v;
        CHECK(i8 >= 0 && ag_gguf_get_i32(f, "s.i8", &v) && v == -7, "s.i8");
        uint64_t len;
        const char *e = ag_gguf_arr_str(f, ag_gguf_find_key(f, "s.arr"), 1, &len);
        CHECK(e && len == 2 && memcmp(e, "yz", 2) == 0, "s.arr[1]");
        ag_gguf_close(f);
    }
    ag_gguf_close(src);
    free(b.p);

    /* Rewrite a full file (KVs and tensors) from its own reader: identical bytes. */
    char p1[4200], p2[4200];
    path_of(p1, sizeof p1, "roundtrip_64.gguf");
    path_of(p2, sizeof p2, "rewrite_64.gguf");
    f = ag_gguf_open(p1);
    CHECK(f, "%s", ag_last_error());
    if (!f)
        return;
    w = ag_gguf_writer_new();
    CHECK(ag_gguf_copy_kvs(w, f) == 0, "%s", ag_last_error());
    for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        CHECK(ag_gguf_add_tensor(w, ag_gguf_tensor_name(f, i), ag_gguf_tensor_type(f, i), ag_gguf_tensor_n_dims(f, i),
                                 ne, ag_gguf_tensor_data(f, i), ag_gguf_tensor_size(f, i)) == 0,
              "%s", ag_last_error());
    }
    CHECK(ag_gguf_writer_write(w, p2) == 0, "%s", ag_last_error());
    ag_gguf_writer_free(w);
    ag_gguf_close(f);
    size_t n1 = 0, n2 = 0;
    uint8_t *a1 = slurp(p1, &n1), *a2 = slurp(p2, &n2);
    CHECK(a1 && a2 && n1 == n2 && memcmp(a1, a2, n1) == 0, "rewrite differs (%zu vs %zu bytes)", n1, n2);
    free(a1);
    free(a2);
}

static void expect_err(int rc, const char *what, const char *needle)
{
    CHECK(rc == -1 && strstr(ag_last_error(), needle), "%s: rc %d, error '%s' lacks '%s'", what, rc, ag_last_error(),
          needle);
}

static void test_writer_errors(void)
{
    ag_gguf_writer *w = ag_gguf_writer_new();
    float data[32] = {0};
    int64_t ne[4] = {32, 1, 1, 1}, ne16[1] = {16}, ne0[2] = {4, 0};
    CHECK(ag_gguf_set_u32(w, "x", 1) == 0, "first set");
    expect_err(ag_gguf_set_i32(w, "x", 2), "duplicate key", "set twice");
    expect_err(ag_gguf_set_u32(w, "", 2), "empty key", "UTF-8");
    expect_err(ag_gguf_set_u32(w, "bad\xff", 2), "non-UTF-8 key", "UTF-8");
    expect_err(ag_gguf_set_u32(w, "general.alignment", 3), "alignment 3", "power of two");
    expect_err(ag_gguf_set_u32(w, "general.alignment", 0), "alignment 0", "power of two");
    expect_err(ag_gguf_set_u64(w, "general.alignment", 64), "alignment as u64", "u32");
    expect_err(ag_gguf_set_arr(w, "s", AG_GGUF_STRING, data, 1), "string via set_arr", "set_arr_str");
    expect_err(ag_gguf_set_arr(w, "s", AG_GGUF_ARRAY, data, 1), "nested via set_arr", "not a plain type");
    expect_err(ag_gguf_set_arr(w, "s", AG_GGUF_UINT8, NULL, 3), "NULL data", "bad array");
    expect_err(ag_gguf_set_str(w, "s", NULL), "NULL string", "NULL");
    CHECK(ag_gguf_add_tensor(w, "t", AG_TYPE_F32, 1, ne, data, sizeof data) == 0, "add: %s", ag_last_error());
    expect_err(ag_gguf_add_tensor(w, "t", AG_TYPE_F32, 1, ne, data, sizeof data), "duplicate tensor", "added twice");
    expect_err(ag_gguf_add_tensor(w, "u", AG_TYPE_F32, 1, ne, data, 12), "short data", "needs 128");
    expect_err(ag_gguf_add_tensor(w, "u", AG_TYPE_Q4_0, 1, ne16, data, 9), "partial block", "invalid q4_0 shape");
    expect_err(ag_gguf_add_tensor(w, "u", AG_TYPE_F32, 2, ne0, data, 0), "zero dim", "invalid f32 shape");
    expect_err(ag_gguf_add_tensor(w, "u", (ag_type)3, 1, ne, data, 72), "type 3", "bad type id 3");
    expect_err(ag_gguf_add_tensor(w, "u", AG_TYPE_F32, 5, ne, data, 128), "5 dims", "n_dims 5");
    expect_err(ag_gguf_add_tensor(w, "0123456789012345678901234567890123456789012345678901234567890123", AG_TYPE_F32,
                                  1, ne, data, 128),
               "64-byte name", "tensor name");
    char path[4200];
    path_of(path, sizeof path, "no_such_dir/x.gguf");
    expect_err(ag_gguf_writer_write(w, path), "unwritable path", "x.gguf.tmp");
    /* rename() onto a directory fails after the data went out: the temporary must be removed. */
    char dir[4200], dtmp[4300];
    path_of(dir, sizeof dir, "a_directory.gguf");
    mkdir(dir, 0755);
    snprintf(dtmp, sizeof dtmp, "%s.tmp", dir);
    expect_err(ag_gguf_writer_write(w, dir), "rename onto a directory", "write failed");
    CHECK(access(dtmp, F_OK) != 0, "%s left behind after a failed write", dtmp);
    /* Writing twice from one writer gives the same file; a failed call left it usable. */
    char p1[4200], p2[4200];
    path_of(p1, sizeof p1, "twice_a.gguf");
    path_of(p2, sizeof p2, "twice_b.gguf");
    CHECK(ag_gguf_writer_write(w, p1) == 0 && ag_gguf_writer_write(w, p2) == 0, "%s", ag_last_error());
    ag_gguf_writer_free(w);
    size_t n1 = 0, n2 = 0;
    uint8_t *a1 = slurp(p1, &n1), *a2 = slurp(p2, &n2);
    CHECK(a1 && a2 && n1 == n2 && memcmp(a1, a2, n1) == 0, "writes differ");
    free(a1);
    free(a2);

    /* An empty writer makes a valid empty file. */
    w = ag_gguf_writer_new();
    path_of(p1, sizeof p1, "empty.gguf");
    CHECK(ag_gguf_writer_write(w, p1) == 0, "%s", ag_last_error());
    ag_gguf_writer_free(w);
    ag_gguf *f = ag_gguf_open(p1);
    CHECK(f && ag_gguf_n_kv(f) == 0 && ag_gguf_n_tensors(f) == 0, "empty file: %s", ag_last_error());
    ag_gguf_close(f);
}

int main(int argc, char **argv)
{
    snprintf(out_dir, sizeof out_dir, "%s", argc > 1 ? argv[1] : ".");
    test_round_trips();
    test_copy();
    test_writer_errors();
    return t_finish();
}
