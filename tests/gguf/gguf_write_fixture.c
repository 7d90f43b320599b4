/* Writes, through the C writer API, the file make_ref_fixture.writer_subset() builds with the
 * independent Python writer; check_writer.py then compares the two byte for byte.
 * usage: gguf_write_fixture OUT.gguf */
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "fixture_data.h"

#include <stdio.h>

static int write_fixture(ag_gguf_writer *w, const char *path)
{
    static const uint8_t au8[] = {0, 1, 255};
    static const int8_t ai8[] = {-128, 0, 127};
    static const uint16_t au16[] = {0, 65535};
    static const int16_t ai16[] = {-32768, 32767};
    static const uint32_t au32[] = {1, 2, 3, 4000000000u};
    static const int32_t ai32[] = {-1, 0, 1};
    static const float af32[] = {0.5f, -2.25f};
    static const bool abool[] = {true, false, true};
    static const char *const astr[] = {"a", "", "\xc3\xbcn\xc3\xaf", "tab\t"};
    static const uint64_t au64[] = {UINT64_MAX};
    static const int64_t ai64[] = {INT64_MIN, INT64_MAX};
    static const double af64[] = {1e300, -0.0};
    if (ag_gguf_set_u32(w, "general.alignment", 64) || ag_gguf_set_str(w, "general.architecture", "test-arch") ||
        ag_gguf_set_u32(w, "t.u32", 4000000000u) || ag_gguf_set_i32(w, "t.i32", -2000000000) ||
        ag_gguf_set_u64(w, "t.u64", (1ull << 63) + 5) || ag_gguf_set_f32(w, "t.f32", 1.5f) ||
        ag_gguf_set_bool(w, "t.bool", true) ||
        ag_gguf_set_str(w, "t.str", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93") ||
        ag_gguf_set_arr(w, "a.u8", AG_GGUF_UINT8, au8, 3) || ag_gguf_set_arr(w, "a.i8", AG_GGUF_INT8, ai8, 3) ||
        ag_gguf_set_arr(w, "a.u16", AG_GGUF_UINT16, au16, 2) ||
        ag_gguf_set_arr(w, "a.i16", AG_GGUF_INT16, ai16, 2) ||
        ag_gguf_set_arr(w, "a.u32", AG_GGUF_UINT32, au32, 4) ||
        ag_gguf_set_arr(w, "a.i32", AG_GGUF_INT32, ai32, 3) ||
        ag_gguf_set_arr(w, "a.f32", AG_GGUF_FLOAT32, af32, 2) ||
        ag_gguf_set_arr(w, "a.bool", AG_GGUF_BOOL, abool, 3) || ag_gguf_set_arr_str(w, "a.str", astr, 4) ||
        ag_gguf_set_arr(w, "a.u64", AG_GGUF_UINT64, au64, 1) ||
        ag_gguf_set_arr(w, "a.i64", AG_GGUF_INT64, ai64, 2) ||
        ag_gguf_set_arr(w, "a.f64", AG_GGUF_FLOAT64, af64, 2) || ag_gguf_set_arr(w, "a.empty", AG_GGUF_INT32, NULL, 0))
        return -1;
    static fix_tensor t[FIX_N_TENSORS]; /* referenced until the write */
    fix_tensors(t);
    for (int k = 0; k < FIX_N_TENSORS; k++)
        if (ag_gguf_add_tensor(w, t[k].name, t[k].type, t[k].n_dims, t[k].ne, t[k].data, t[k].size))
            return -1;
    return ag_gguf_writer_write(w, path);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gguf_write_fixture OUT.gguf\n");
        return 2;
    }
    ag_gguf_writer *w = ag_gguf_writer_new();
    int rc = w ? write_fixture(w, argv[1]) : -1;
    ag_gguf_writer_free(w);
    if (rc) {
        fprintf(stderr, "gguf_write_fixture: %s\n", ag_last_error());
        return 1;
    }
    return 0;
}
