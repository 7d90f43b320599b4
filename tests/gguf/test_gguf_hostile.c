/* Hostile GGUF files: every one must be rejected with a message naming the file and the problem,
 * never crash or leak (run under ASan). Images are built byte by byte (image_builder.h) and opened
 * from exact-size heap copies, so any read past the end is caught by ASan.
 * usage: test_gguf_hostile OUT_DIR */
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/limits.h"
#include "image_builder.h"
#include "../common/ag_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

static char out_dir[4096];

/* Fields of the small valid file that cases override. */
typedef struct spec {
    const char *magic;
    uint32_t version;
    uint64_t n_tensors_override, n_kv_override; /* 0: the real counts */
    uint32_t align_type;                        /* general.alignment KV type; 0: none */
    uint64_t align_value;
    const char *key0;     /* first key */
    size_t key0_len;      /* 0: strlen */
    uint64_t key0_len_field; /* 0: real length */
    const char *dup_key;  /* extra KV with this key */
    uint32_t val_type;    /* type of KV "v"; 0: u32 */
    uint64_t str_len_field;
    uint32_t arr_etype; /* element type of KV "arr" (u32 when 0, u8 when NONE) */
    uint64_t arr_n;     /* 0: 3 */
    uint8_t bool_val;
    /* tensors: a is f32 [8, 2] (64 bytes) at 0, b is q8_0 [32] (34 bytes) at 64 */
    const char *name_a, *name_b;
    uint32_t a_n_dims; /* 0: 2 */
    uint64_t a_ne[5];
    uint64_t a_off, b_off;
    uint32_t b_type;
    uint64_t b_ne0;
    size_t data_bytes; /* 0: full */
} spec;

static const uint32_t NONE = 0xfffffffe;

static img build(spec s)
{
    img b = {0};
    uint64_t n_kv = 4 + (s.align_type ? 1 : 0) + (s.dup_key ? 1 : 0);
    img_put(&b, s.magic ? s.magic : "GGUF", 4);
    img_u32(&b, s.version ? s.version : 3);
    img_u64(&b, s.n_tensors_override ? s.n_tensors_override : 2);
    img_u64(&b, s.n_kv_override ? s.n_kv_override : n_kv);
    if (s.align_type) {
        img_kv(&b, "general.alignment", s.align_type);
        if (s.align_type == AG_GGUF_UINT64)
            img_u64(&b, s.align_value);
        else if (s.align_type == AG_GGUF_STRING)
            img_str(&b, "32");
        else
            img_u32(&b, (uint32_t)s.align_value);
    }
    const char *k0 = s.key0 ? s.key0 : "general.architecture";
    size_t k0n = s.key0_len ? s.key0_len : strlen(k0);
    img_u64(&b, s.key0_len_field ? s.key0_len_field : k0n);
    img_put(&b, k0, k0n);
    img_u32(&b, AG_GGUF_STRING);
    img_u64(&b, s.str_len_field ? s.str_len_field : 4);
    img_put(&b, "test", 4);
    img_kv(&b, "v", s.val_type ? s.val_type : AG_GGUF_UINT32);
    img_u32(&b, 7);
    img_kv(&b, "flag", AG_GGUF_BOOL);
    img_u8(&b, s.bool_val);
    img_kv(&b, "arr", AG_GGUF_ARRAY);
    uint32_t et = s.arr_etype == NONE ? AG_GGUF_UINT8 : s.arr_etype ? s.arr_etype : AG_GGUF_UINT32;
    img_u32(&b, et);
    if (et == AG_GGUF_ARRAY) { /* nested: an array of one u32 array */
        img_u64(&b, 1);
        img_u32(&b, AG_GGUF_UINT32);
        img_u64(&b, 1);
        img_u32(&b, 5);
    } else {
        img_u64(&b, s.arr_n ? s.arr_n : 3);
        if (et == AG_GGUF_STRING)
            img_str(&b, "a"), img_str(&b, "b"), img_str(&b, "c");
        else
            img_u32(&b, 1), img_u32(&b, 2), img_u32(&b, 3);
    }
    if (s.dup_key) {
        img_kv(&b, s.dup_key, AG_GGUF_UINT8);
        img_u8(&b, 1);
    }
    uint64_t a_ne_default[4] = {8, 2};
    img_tinfo(&b, s.name_a ? s.name_a : "a", s.a_n_dims ? s.a_n_dims : 2, s.a_n_dims ? s.a_ne : a_ne_default,
              AG_TYPE_F32, s.a_off);
    uint64_t b_ne[1] = {s.b_ne0 ? s.b_ne0 : 32};
    img_tinfo(&b, s.name_b ? s.name_b : "b", 1, b_ne, s.b_type ? s.b_type : AG_TYPE_Q8_0, s.b_off ? s.b_off : 64);
    size_t align = s.align_type == AG_GGUF_UINT32 && s.align_value && !(s.align_value & (s.align_value - 1))
                       ? (size_t)s.align_value
                       : 32;
    img_pad(&b, align);
    size_t data = s.data_bytes ? s.data_bytes : 64 + 34;
    for (size_t i = 0; i < data; i++)
        img_u8(&b, (uint8_t)(i * 7));
    return b;
}

/* Open an exact-size heap copy (so ASan sees any over-read). */
static ag_gguf *open_exact(const uint8_t *p, size_t n, const char *label)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    ag_gguf *f = ag_gguf_open_memory(copy, n, label);
    /* The handle points into the copy; callers in this file close it before the copy goes. */
    if (f) {
        /* Touch everything an accepted file exposes. */
        volatile uint8_t sink = 0;
        for (int64_t i = 0; i < ag_gguf_n_kv(f); i++) {
            (void)ag_gguf_key(f, i);
            if (ag_gguf_arr_type(f, i) == AG_GGUF_STRING) {
                for (uint64_t j = 0; j < ag_gguf_arr_n(f, i); j++) {
                    uint64_t len;
                    const char *s = ag_gguf_arr_str(f, i, j, &len);
                    for (uint64_t k = 0; k < len; k++)
                        sink ^= (uint8_t)s[k];
                }
            }
        }
        for (int64_t i = 0; i < ag_gguf_n_tensors(f); i++) {
            const uint8_t *d = ag_gguf_tensor_data(f, i);
            size_t sz = ag_gguf_tensor_size(f, i);
            sink ^= d[0];
            sink ^= d[sz - 1];
        }
        (void)sink;
        ag_gguf_close(f);
        free(copy);
        return (ag_gguf *)1; /* accepted (already closed) */
    }
    free(copy);
    return NULL;
}

static void reject(const char *name, spec s, const char *needle1, const char *needle2)
{
    img b = build(s);
    char label[128];
    snprintf(label, sizeof label, "hostile-%s.gguf", name);
    ag_clear_error();
    ag_gguf *f = open_exact(b.p, b.len, label);
    const char *e = ag_last_error();
    CHECK(f == NULL, "%s: accepted", name);
    CHECK(strncmp(e, label, strlen(label)) == 0, "%s: message does not name the file: %s", name, e);
    CHECK(strstr(e, needle1) != NULL, "%s: message lacks '%s': %s", name, needle1, e);
    if (needle2)
        CHECK(strstr(e, needle2) != NULL, "%s: message lacks '%s': %s", name, needle2, e);
    printf("# %-22s -> %s\n", name, e);
    free(b.p);
}

static void test_cases(void)
{
    spec ok = {0};
    img b = build(ok);
    CHECK(open_exact(b.p, b.len, "valid") != NULL, "the base file must be valid: %s", ag_last_error());
    free(b.p);
    /* Version 2 has the same layout (u64 counts): accepted. */
    b = build((spec){.version = 2});
    CHECK(open_exact(b.p, b.len, "v2") != NULL, "a version 2 file must be accepted: %s", ag_last_error());
    free(b.p);
    /* No tensors: the data section is empty and its padding optional. */
    img e = {0};
    img_header(&e, 3, 0, 1);
    img_kv(&e, "k", AG_GGUF_UINT8);
    img_u8(&e, 1);
    CHECK(open_exact(e.p, e.len, "unpadded") != NULL, "tensor-less file without padding: %s", ag_last_error());
    free(e.p);

    reject("magic", (spec){.magic = "GGUX"}, "magic", "not a GGUF file");
    reject("version99", (spec){.version = 99}, "version 99", NULL);
    reject("version1", (spec){.version = 1}, "version 1", "not supported");
    reject("bigendian", (spec){.version = 0x03000000}, "big-endian", NULL);
    reject("n_tensors", (spec){.n_tensors_override = 1ull << 60}, "1152921504606846976 tensors", NULL);
    reject("n_kv", (spec){.n_kv_override = 1ull << 62}, "4611686018427387904 key-value pairs", NULL);
    reject("n_kv_max", (spec){.n_kv_override = UINT64_MAX}, "key-value pairs", NULL);
    reject("key_len", (spec){.key0_len_field = 1ull << 63}, "key", "length 9223372036854775808");
    reject("str_len", (spec){.str_len_field = 1ull << 63}, "string value", "length 9223372036854775808");
    reject("str_len_max", (spec){.str_len_field = UINT64_MAX}, "string value", "past the end");
    reject("arr_count", (spec){.arr_n = 1ull << 61}, "'arr'", "array count 2305843009213693952");
    reject("arr_count_max", (spec){.arr_n = UINT64_MAX}, "'arr'", "array count");
    reject("arr_count_str", (spec){.arr_etype = AG_GGUF_STRING, .arr_n = 1ull << 61}, "'arr'",
           "array count 2305843009213693952");
    reject("arr_count_u8", (spec){.arr_etype = NONE, .arr_n = 1ull << 61}, "'arr'", "array count 2305843009213693952 of u8");
    reject("nested_array", (spec){.arr_etype = AG_GGUF_ARRAY}, "'arr'", "nested");
    reject("arr_type", (spec){.arr_etype = 13}, "'arr'", "unknown array element type 13");
    reject("value_type", (spec){.val_type = 42}, "'v'", "unknown value type 42");
    reject("key_utf8", (spec){.key0 = "bad\xc3("}, "not valid UTF-8", NULL);
    reject("key_overlong", (spec){.key0 = "x\xc0\xaf"}, "not valid UTF-8", NULL);
    reject("key_surrogate", (spec){.key0 = "x\xed\xa0\x80"}, "not valid UTF-8", NULL);
    reject("key_nul", (spec){.key0 = "ab\0cd", .key0_len = 5}, "not valid UTF-8", NULL);
    reject("key_cut_utf8", (spec){.key0 = "ab\xe2\x9c", .key0_len = 4}, "not valid UTF-8", NULL);
    reject("key_empty", (spec){.key0 = "", .key0_len = 0, .key0_len_field = 0}, "key length 0", NULL);
    reject("dup_key", (spec){.dup_key = "v"}, "duplicate key 'v'", NULL);
    reject("bool_value", (spec){.bool_val = 2}, "'flag'", "bool");
    reject("align_zero", (spec){.align_type = AG_GGUF_UINT32, .align_value = 0}, "general.alignment 0",
           "power of two");
    reject("align_48", (spec){.align_type = AG_GGUF_UINT32, .align_value = 48}, "general.alignment 48",
           "power of two");
    reject("align_u64", (spec){.align_type = AG_GGUF_UINT64, .align_value = 32}, "general.alignment",
           "expected u32");
    reject("align_str", (spec){.align_type = AG_GGUF_STRING}, "general.alignment", "expected u32");
    reject("offset_past_end", (spec){.b_off = 1u << 20}, "tensor 'b'", "past the end of the file");
    reject("offset_huge", (spec){.b_off = 1ull << 63}, "tensor 'b'", "past the end of the file");
    reject("data_past_end", (spec){.b_off = 96}, "tensor 'b' data [offset ", "runs past the end of the file (");
    reject("data_short", (spec){.data_bytes = 97}, "tensor 'b' data [offset ", "34 bytes] runs past the end");
    reject("misaligned", (spec){.b_off = 80}, "tensor 'b'", "offset 80 is not a multiple of the alignment 32");
    reject("misaligned_a64", (spec){.align_type = AG_GGUF_UINT32, .align_value = 64, .b_off = 96}, "tensor 'b'",
           "not a multiple of the alignment 64");
    reject("type_3", (spec){.b_type = 3}, "tensor 'b'", "type id 3");
    reject("type_39", (spec){.b_type = 39}, "tensor 'b'", "type id 39");
    reject("type_max", (spec){.b_type = UINT32_MAX}, "tensor 'b'", "type id 4294967295");
    reject("n_dims_5", (spec){.a_n_dims = 5, .a_ne = {8, 2, 1, 1, 1}}, "tensor 'a'", "n_dims 5");
    reject("ne_0", (spec){.a_n_dims = 2, .a_ne = {8, 0}}, "tensor 'a'", "ne1 = 0");
    reject("ne_too_big", (spec){.a_n_dims = 1, .a_ne = {1ull << 63}}, "tensor 'a'", "out of range");
    reject("ne_overflow", (spec){.a_n_dims = 2, .a_ne = {1ull << 32, 1ull << 32}}, "tensor 'a'",
           "element count overflows");
    reject("ne_overflow4", (spec){.a_n_dims = 4, .a_ne = {1u << 16, 1u << 16, 1u << 16, 1u << 16}}, "tensor 'a'",
           "element count overflows");
    reject("size_overflow", (spec){.a_n_dims = 1, .a_ne = {(1ull << 62) + 1}}, "tensor 'a'", "size overflows");
    reject("ne0_blocks", (spec){.b_ne0 = 16}, "tensor 'b'", "not a multiple of the q8_0 block size 32");
    reject("overlap", (spec){.b_off = 32}, "tensors 'a'", "overlap");
    reject("overlap_same", (spec){.a_off = 64, .data_bytes = 200}, "'b'", "overlap");
    reject("dup_tensor", (spec){.name_b = "a"}, "duplicate tensor name 'a'", NULL);
    reject("name_long", (spec){.name_a = "0123456789012345678901234567890123456789012345678901234567890123"},
           "tensor 0", "name length 64");
    reject("name_utf8", (spec){.name_b = "\xff"}, "tensor 1", "not valid UTF-8");
    reject("name_empty", (spec){.name_b = ""}, "tensor 1", "name length 0");

    ag_gguf *f = ag_gguf_open_memory(NULL, 0, "empty.gguf");
    CHECK(!f && strstr(ag_last_error(), "empty.gguf: file too short"), "%s", ag_last_error());
}

/* n_dims 0 needs the dimension list left out entirely: patch the base file's field. */
static void test_n_dims_0(void)
{
    img b = {0};
    img_header(&b, 3, 1, 0);
    uint64_t ne[1] = {0};
    img_tinfo(&b, "z", 0, ne, AG_TYPE_F32, 0);
    img_zeros(&b, 64);
    ag_gguf *f = open_exact(b.p, b.len, "ndims0.gguf");
    CHECK(!f && strstr(ag_last_error(), "tensor 'z': n_dims 0"), "%s", ag_last_error());
    free(b.p);
}

/* Every prefix of the valid file: rejected (as truncated) or, complete, accepted. */
static void test_prefixes(void)
{
    img b = build((spec){0});
    int bad = 0;
    for (size_t n = 0; n <= b.len; n++) {
        ag_clear_error();
        ag_gguf *f = open_exact(b.p, n, "prefix.gguf");
        if (n < b.len && (f || !strstr(ag_last_error(), "prefix.gguf: "))) {
            bad++;
            printf("FAIL prefix %zu: %s\n", n, f ? "accepted" : ag_last_error());
        }
        if (n == b.len && !f) {
            bad++;
            printf("FAIL complete file rejected: %s\n", ag_last_error());
        }
    }
    CHECK(bad == 0, "%d prefixes misjudged", bad);
    printf("# %zu prefixes checked\n", b.len + 1);

    /* The same through files and mmap, including the empty file. */
    char path[4200];
    snprintf(path, sizeof path, "%s/prefix.gguf", out_dir);
    bad = 0;
    for (size_t n = 0; n <= b.len; n++) {
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(b.p, 1, n, fp) != n) {
            bad++;
            if (fp)
                fclose(fp);
            continue;
        }
        fclose(fp);
        ag_gguf *f = ag_gguf_open(path);
        if ((n < b.len) != (f == NULL) || (!f && !strstr(ag_last_error(), path)))
            bad++;
        ag_gguf_close(f);
    }
    CHECK(bad == 0, "%d file prefixes misjudged", bad);
    free(b.p);

    CHECK(!ag_gguf_open(out_dir) && strstr(ag_last_error(), "not a regular file"), "%s", ag_last_error());
    snprintf(path, sizeof path, "%s/does-not-exist.gguf", out_dir);
    CHECK(!ag_gguf_open(path) && strstr(ag_last_error(), "cannot open"), "%s", ag_last_error());
}

/* Random corruption of the valid file: whatever happens, no crash, no over-read, no leak. */
static void test_mutations(void)
{
    img b = build((spec){0});
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int accepted = 0, rejected = 0;
    uint8_t *m = malloc(b.len);
    for (int it = 0; it < 20000; it++) {
        memcpy(m, b.p, b.len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(rng >> 33) % b.len;
            uint8_t v = (uint8_t)(rng >> 17);
            /* Favour values that hit edge cases in counts and lengths. */
            m[pos] = (it & 8) ? v : (v & 1 ? 0xff : 0x00);
        }
        if (open_exact(m, b.len, "mut"))
            accepted++;
        else
            rejected++;
    }
    free(m);
    free(b.p);
    printf("# mutations: %d accepted, %d rejected\n", accepted, rejected);
    CHECK(rejected > 0 && accepted + rejected == 20000, "mutations ran");
}

/* Counts and lengths past anygpt/limits.h are refused even when the file has the bytes for them
 * (the images are padded so only the limit can say no). */
static void limit_case(const char *name, img *b, size_t pad, const char *needle)
{
    for (size_t i = 0; i < pad; i++)
        img_u8(b, 0);
    char label[64];
    snprintf(label, sizeof label, "limit-%s.gguf", name);
    ag_clear_error();
    ag_gguf *f = ag_gguf_open_memory(b->p, b->len, label);
    const char *e = ag_last_error();
    CHECK(f == NULL, "%s: accepted", name);
    ag_gguf_close(f);
    CHECK(strstr(e, label) && strstr(e, needle) && strstr(e, "accepted"), "%s: message: %s", name, e);
    printf("# %-22s -> %s\n", name, e);
    free(b->p);
}

static void test_limits(void)
{
    img b = {0};
    img_header(&b, 3, 0, (uint64_t)AG_MAX_GGUF_KVS + 1);
    limit_case("kv-count", &b, ((size_t)AG_MAX_GGUF_KVS + 1) * 14, "key-value pairs");
    b = (img){0};
    img_header(&b, 3, (uint64_t)AG_MAX_GGUF_TENSORS + 1, 0);
    limit_case("tensor-count", &b, ((size_t)AG_MAX_GGUF_TENSORS + 1) * 33, "tensors");
    b = (img){0};
    img_header(&b, 3, 0, 1);
    img_kv(&b, "big", AG_GGUF_ARRAY);
    img_u32(&b, AG_GGUF_UINT8);
    img_u64(&b, (uint64_t)AG_MAX_GGUF_ARRAY + 1);
    limit_case("array-count", &b, (size_t)AG_MAX_GGUF_ARRAY + 1, "array of");
    b = (img){0};
    img_header(&b, 3, 0, 1);
    img_kv(&b, "long", AG_GGUF_STRING);
    img_u64(&b, (uint64_t)AG_MAX_GGUF_STRING + 1);
    limit_case("string-length", &b, (size_t)AG_MAX_GGUF_STRING + 1, "string value");
    b = (img){0};
    img_header(&b, 3, 0, 1);
    img_kv(&b, "tokens", AG_GGUF_ARRAY);
    img_u32(&b, AG_GGUF_STRING);
    img_u64(&b, 1);
    img_u64(&b, (uint64_t)AG_MAX_GGUF_STRING + 1);
    limit_case("array-string-length", &b, (size_t)AG_MAX_GGUF_STRING + 1, "string element");
}

int main(int argc, char **argv)
{
    snprintf(out_dir, sizeof out_dir, "%s", argc > 1 ? argv[1] : ".");
    test_cases();
    test_n_dims_0();
    test_prefixes();
    test_limits();
    test_mutations();
    return t_finish();
}
