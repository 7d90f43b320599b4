/* anygpt-quantize end to end: run the tool on gen_quantize_ref.py's input and compare its output
 * with the file Python wrote from the same rules (tensor bytes, types, shapes; KVs).
 *   test_quantize_tool TOOL IN.gguf EXPECTED_Q8_0.gguf EXPECTED_Q4_0.gguf OUTDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include "../common/ag_check.h"

static int run_tool(const char *tool, const char *in, const char *out, const char *type)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* keep the test log short: the tool's table goes to /dev/null */
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(tool, tool, in, out, type, "--keep", "*.kept.*", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void compare(const char *label, const char *got_path, const char *want_path)
{
    ag_gguf *got = ag_gguf_open(got_path), *want = ag_gguf_open(want_path);
    CHECK(got && want, "%s: cannot open outputs: %s", label, ag_last_error());
    if (!got || !want) {
        ag_gguf_close(got);
        ag_gguf_close(want);
        return;
    }
    CHECK(ag_gguf_n_tensors(got) == ag_gguf_n_tensors(want), "%s: %lld tensors, want %lld", label,
          (long long)ag_gguf_n_tensors(got), (long long)ag_gguf_n_tensors(want));
    for (int64_t i = 0; i < ag_gguf_n_tensors(want); i++) {
        const char *name = ag_gguf_tensor_name(want, i);
        const int64_t j = ag_gguf_find_tensor(got, name);
        CHECK(j >= 0, "%s: tensor %s missing", label, name);
        if (j < 0)
            continue;
        int64_t ne_a[4], ne_b[4];
        ag_gguf_tensor_ne(got, j, ne_a);
        ag_gguf_tensor_ne(want, i, ne_b);
        CHECK(ag_gguf_tensor_type(got, j) == ag_gguf_tensor_type(want, i), "%s: %s is %s, want %s", label, name,
              ag_type_name(ag_gguf_tensor_type(got, j)), ag_type_name(ag_gguf_tensor_type(want, i)));
        CHECK(ag_gguf_tensor_n_dims(got, j) == ag_gguf_tensor_n_dims(want, i) && memcmp(ne_a, ne_b, sizeof ne_a) == 0,
              "%s: %s shape differs", label, name);
        const size_t sz = ag_gguf_tensor_size(want, i);
        CHECK(ag_gguf_tensor_size(got, j) == sz &&
                  memcmp(ag_gguf_tensor_data(got, j), ag_gguf_tensor_data(want, i), sz) == 0,
              "%s: %s data differs", label, name);
    }
    CHECK(ag_gguf_n_kv(got) == ag_gguf_n_kv(want), "%s: %lld KVs, want %lld", label, (long long)ag_gguf_n_kv(got),
          (long long)ag_gguf_n_kv(want));
    for (int64_t i = 0; i < ag_gguf_n_kv(want); i++) {
        const char *key = ag_gguf_key(want, i);
        const int64_t j = ag_gguf_find_key(got, key);
        CHECK(j >= 0 && ag_gguf_kv_type(got, j) == ag_gguf_kv_type(want, i), "%s: KV %s missing or retyped", label,
              key);
    }
    uint32_t a = 0, b = 1;
    CHECK(ag_gguf_get_u32(got, "general.file_type", &a) && ag_gguf_get_u32(want, "general.file_type", &b) && a == b,
          "%s: general.file_type %u, want %u", label, a, b);
    const char *arch = ag_gguf_get_str(got, "general.architecture");
    CHECK(arch && strcmp(arch, "llama") == 0, "%s: general.architecture not copied", label);
    const int64_t k = ag_gguf_find_key(got, "tokenizer.ggml.tokens");
    uint64_t len = 0;
    const char *s = k >= 0 ? ag_gguf_arr_str(got, k, 2, &len) : NULL;
    CHECK(s && len == 5 && memcmp(s, "hello", 5) == 0, "%s: string array not copied", label);
    ag_gguf_close(got);
    ag_gguf_close(want);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s TOOL IN EXPECTED_Q8_0 EXPECTED_Q4_0 OUTDIR\n", argv[0]);
        return 2;
    }
    printf("# device: cpu (file tool)\n");
    char out[4096];
    const char *types[2] = {"q8_0", "q4_0"};
    for (int t = 0; t < 2; t++) {
        snprintf(out, sizeof out, "%s/quantize_out_%s.gguf", argv[5], types[t]);
        const int rc = run_tool(argv[1], argv[2], out, types[t]);
        CHECK(rc == 0, "%s: tool exited with %d", types[t], rc);
        if (rc == 0)
            compare(types[t], out, argv[3 + t]);
        remove(out);
    }
    /* bad input: clear error, non-zero exit, no output file */
    snprintf(out, sizeof out, "%s/quantize_out_bad.gguf", argv[5]);
    CHECK(run_tool(argv[1], argv[0], out, "q4_0") == 1 && access(out, F_OK) != 0, "non-GGUF input must fail cleanly");
    CHECK(run_tool(argv[1], argv[2], out, "q5_k") == 2, "unknown type must be refused");
    return t_finish();
}
