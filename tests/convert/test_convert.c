/* anygpt-convert llm against fixtures from tests/reference/make_tiny_llama.py: every KV, the
 * token list/scores/types and every tensor (after the Q/K permutation, bit-exact F32 and
 * numpy-rounded F16) must match what the Python script computed independently; broken inputs
 * must be refused with a message naming the problem; truncated inputs must never crash.
 * usage: test_convert FIXTURE_DIR ANYGPT_CONVERT_EXE WORK_DIR */
#include "ckpt.h"
#include "convert.h"
#include "json.h"
#include "spm_model.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/ag_check.h"

static const char *fix_dir, *exe, *work;

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void check_kvs(const ag_gguf *g, const json_value *exp, const char *name)
{
    const json_value *kv = json_get(exp, "kv");
    for (size_t k = 0; k < kv->n; k++) {
        const char *key = kv->keys[k];
        const json_value *v = kv->items[k];
        int64_t i = ag_gguf_find_key(g, key);
        CHECK(i >= 0, "%s: key %s missing", name, key);
        if (i < 0)
            continue;
        if (v->kind == JSON_STRING) {
            const char *s = ag_gguf_get_str(g, key);
            const char *want = strcmp(key, "general.name") ? v->str : name; /* the folder name */
            CHECK(s && !strcmp(s, want), "%s: %s = '%s', expected '%s'", name, key, s ? s : "(null)", want);
        } else if (v->kind == JSON_BOOL) {
            bool b = !v->b;
            CHECK(ag_gguf_get_bool(g, key, &b) && b == v->b, "%s: %s bool mismatch", name, key);
        } else if (v->is_int) {
            uint32_t u = 0;
            CHECK(ag_gguf_kv_type(g, i) == AG_GGUF_UINT32 && ag_gguf_get_u32(g, key, &u) && u == (uint32_t)v->i,
                  "%s: %s = %u (type %d), expected u32 %lld", name, key, u, ag_gguf_kv_type(g, i), (long long)v->i);
        } else {
            float f = 0;
            CHECK(ag_gguf_get_f32(g, key, &f) && f == (float)v->num, "%s: %s = %g, expected %g", name, key, f,
                  v->num);
        }
    }
    /* keys llama.cpp would not expect must not sneak in under llama.* */
    for (int64_t i = 0; i < ag_gguf_n_kv(g); i++) {
        const char *key = ag_gguf_key(g, i);
        bool ok = json_get(kv, key) || !strncmp(key, "tokenizer.ggml.tokens", 21) ||
                  !strcmp(key, "tokenizer.ggml.scores") || !strcmp(key, "tokenizer.ggml.token_type") ||
                  !strcmp(key, "anygpt.generation_config") || !strcmp(key, "general.file_type");
        CHECK(ok, "%s: unexpected key %s", name, key);
    }
    bool want_gen = false;
    json_get_bool(exp, "generation_config", &want_gen);
    const char *gc = ag_gguf_get_str(g, "anygpt.generation_config");
    json_value *gj = gc ? json_parse(gc, strlen(gc), "generation_config") : NULL;
    double temp = 0;
    CHECK(!want_gen || (gj && json_get_num(gj, "temperature", &temp) && temp == 0.9),
          "%s: anygpt.generation_config missing or wrong", name);
    json_free(gj);
}

static void check_vocab(const ag_gguf *g, const json_value *exp, const char *name)
{
    const json_value *tok = json_get(exp, "tokens"), *sc = json_get(exp, "scores"), *ty = json_get(exp, "types");
    int64_t it = ag_gguf_find_key(g, "tokenizer.ggml.tokens"), is = ag_gguf_find_key(g, "tokenizer.ggml.scores"),
            iy = ag_gguf_find_key(g, "tokenizer.ggml.token_type");
    CHECK(it >= 0 && is >= 0 && iy >= 0, "%s: token arrays missing", name);
    if (it < 0 || is < 0 || iy < 0)
        return;
    CHECK(ag_gguf_arr_type(g, it) == AG_GGUF_STRING && ag_gguf_arr_n(g, it) == tok->n, "%s: tokens: %llu, want %zu",
          name, (unsigned long long)ag_gguf_arr_n(g, it), tok->n);
    CHECK(ag_gguf_arr_type(g, is) == AG_GGUF_FLOAT32 && ag_gguf_arr_n(g, is) == sc->n, "%s: scores array", name);
    CHECK(ag_gguf_arr_type(g, iy) == AG_GGUF_INT32 && ag_gguf_arr_n(g, iy) == ty->n, "%s: token_type array", name);
    if (ag_gguf_arr_n(g, it) != tok->n || ag_gguf_arr_n(g, is) != sc->n || ag_gguf_arr_n(g, iy) != ty->n)
        return;
    const float *scores = ag_gguf_arr_data(g, is);
    const int32_t *types = ag_gguf_arr_data(g, iy);
    size_t bad_tok = 0, bad_score = 0, bad_type = 0;
    for (size_t k = 0; k < tok->n; k++) {
        uint64_t len;
        const char *s = ag_gguf_arr_str(g, it, k, &len);
        if (!s || len != tok->items[k]->len || memcmp(s, tok->items[k]->str, len)) {
            if (!bad_tok++)
                printf("  token %zu: got '%.*s' want '%s'\n", k, (int)len, s ? s : "", tok->items[k]->str);
        }
        float f;
        memcpy(&f, (const char *)scores + 4 * k, 4);
        if (f != (float)sc->items[k]->num)
            bad_score++;
        int32_t t;
        memcpy(&t, (const char *)types + 4 * k, 4);
        if (t != (int32_t)ty->items[k]->i)
            bad_type++;
    }
    CHECK(bad_tok == 0, "%s: %zu token strings differ", name, bad_tok);
    CHECK(bad_score == 0, "%s: %zu scores differ", name, bad_score);
    CHECK(bad_type == 0, "%s: %zu token types differ", name, bad_type);
}

static void check_tensors(const ag_gguf *g, const char *expected_bin, ag_type wtype, int64_t n_tensors,
                          const char *name)
{
    size_t size;
    char *buf = read_whole_file(expected_bin, &size);
    CHECK(buf != NULL, "%s: %s", name, ag_last_error());
    if (!buf)
        return;
    CHECK(ag_gguf_n_tensors(g) == n_tensors, "%s: %lld tensors, want %lld", name, (long long)ag_gguf_n_tensors(g),
          (long long)n_tensors);
    size_t p = 0;
    int64_t seen = 0;
    while (p + 8 <= size) {
        uint32_t nl, nd;
        memcpy(&nl, buf + p, 4);
        if (nl > 100 || p + 8 + nl > size)
            break;
        char tname[128];
        snprintf(tname, sizeof tname, "%.*s", (int)nl, buf + p + 4);
        p += 4 + nl;
        memcpy(&nd, buf + p, 4);
        p += 4;
        if (nd < 1 || nd > 2 || p + 8 * nd > size)
            break;
        int64_t ne[4] = {1, 1, 1, 1}, n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            memcpy(&v, buf + p, 8);
            p += 8;
            ne[d] = (int64_t)v;
            n *= (int64_t)v;
        }
        if (p + (size_t)n * (nd == 2 ? 6 : 4) > size)
            break;
        const float *want = (const float *)(buf + p);
        p += (size_t)n * 4;
        const void *want2 = NULL;
        if (nd == 2) { /* f32 output must equal the f32 values, f16 output numpy's f16 rounding */
            want2 = wtype == AG_TYPE_F16 ? (const void *)(buf + p) : (const void *)want;
            p += (size_t)n * 2;
        }
        seen++;
        int64_t i = ag_gguf_find_tensor(g, tname);
        CHECK(i >= 0, "%s: tensor %s missing", name, tname);
        if (i < 0)
            continue;
        int64_t got_ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(g, i, got_ne);
        CHECK(ag_gguf_tensor_n_dims(g, i) == (int)nd && got_ne[0] == ne[0] && got_ne[1] == ne[1],
              "%s: %s shape [%lld %lld] want [%lld %lld]", name, tname, (long long)got_ne[0], (long long)got_ne[1],
              (long long)ne[0], (long long)ne[1]);
        ag_type want_type = nd == 2 ? wtype : AG_TYPE_F32;
        CHECK(ag_gguf_tensor_type(g, i) == want_type, "%s: %s type %d want %d", name, tname,
              ag_gguf_tensor_type(g, i), want_type);
        if (ag_gguf_tensor_type(g, i) != want_type || ag_gguf_tensor_n_dims(g, i) != (int)nd)
            continue;
        const void *data = ag_gguf_tensor_data(g, i);
        if (nd == 1) {
            CHECK(!memcmp(data, want, (size_t)n * 4), "%s: %s data differs", name, tname);
        } else {
            int64_t bad = 0, first = -1;
            const size_t es = wtype == AG_TYPE_F16 ? 2 : 4;
            for (int64_t k = 0; k < n; k++)
                if (memcmp((const char *)data + k * es, (const char *)want2 + k * es, es)) {
                    if (first < 0)
                        first = k;
                    bad++;
                }
            CHECK(bad == 0, "%s: %s: %lld of %lld elements differ (first at %lld)", name, tname, (long long)bad,
                  (long long)n, (long long)first);
        }
    }
    CHECK(seen == n_tensors, "%s: expected file holds %lld tensors", name, (long long)seen);
    free(buf);
}

static int64_t chunk_elems; /* 0: the converter's default */

static void check_variant_as(const char *name, const char *exp_name, ag_type wtype, bool via_exe)
{
    char in[1024], out[1024], expj[1024], expb[1024], cmd[4096];
    snprintf(in, sizeof in, "%s/%s", fix_dir, name);
    snprintf(out, sizeof out, "%s/%s.gguf", work, name);
    snprintf(expj, sizeof expj, "%s/%s.expected.json", fix_dir, exp_name);
    snprintf(expb, sizeof expb, "%s/%s.expected.bin", fix_dir, exp_name);
    unlink(out);
    int rc;
    if (via_exe) {
        snprintf(cmd, sizeof cmd, "'%s' llm '%s' '%s' --dtype %s --quiet", exe, in, out,
                 wtype == AG_TYPE_F16 ? "f16" : "f32");
        rc = system(cmd);
    } else {
        convert_opts o = {wtype, true, chunk_elems};
        rc = convert_llm(in, out, &o);
    }
    CHECK(rc == 0, "%s: conversion failed: %s", name, via_exe ? "(see stderr)" : ag_last_error());
    if (rc)
        return;
    ag_gguf *g = ag_gguf_open(out);
    CHECK(g != NULL, "%s: output does not open: %s", name, ag_last_error());
    json_value *exp = json_parse_file(expj);
    CHECK(exp != NULL, "%s: %s", name, ag_last_error());
    if (g && exp) {
        int64_t nt = 0;
        json_get_int(exp, "n_tensors", &nt);
        check_kvs(g, exp, name);
        uint32_t ft = 99;
        CHECK(ag_gguf_get_u32(g, "general.file_type", &ft) && ft == (wtype == AG_TYPE_F16 ? 1u : 0u),
              "%s: general.file_type %u", name, ft);
        check_vocab(g, exp, name);
        check_tensors(g, expb, wtype, nt, name);
    }
    json_free(exp);
    ag_gguf_close(g);
    unlink(out);
    printf("# checked %s\n", name);
}

static void check_variant(const char *name, ag_type wtype, bool via_exe)
{
    check_variant_as(name, name, wtype, via_exe);
}

static void check_refused(const char *dir, const char *want)
{
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/%s", fix_dir, dir);
    snprintf(out, sizeof out, "%s/%s.gguf", work, dir);
    unlink(out);
    convert_opts o = {AG_TYPE_F16, true, 0};
    ag_clear_error();
    int rc = convert_llm(in, out, &o);
    CHECK(rc == -1, "%s: accepted", dir);
    const char *e = ag_last_error();
    CHECK(e && strstr(e, want), "%s: error '%s' does not mention '%s'", dir, e ? e : "(none)", want);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    CHECK(!exists(out) && !exists(tmp), "%s: output left behind", dir);
    printf("# %s refused: %s\n", dir, e ? e : "");
}

/* Last embedding row without a token: padded as llama.cpp does, everything else unchanged. */
static void check_pad_tail(void)
{
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/pad-tail", fix_dir);
    snprintf(out, sizeof out, "%s/pad-tail.gguf", work);
    convert_opts o = {AG_TYPE_F16, true, 0};
    int rc = convert_llm(in, out, &o);
    CHECK(rc == 0, "pad-tail: %s", ag_last_error());
    ag_gguf *g = rc == 0 ? ag_gguf_open(out) : NULL;
    CHECK(g != NULL, "pad-tail: %s", ag_last_error());
    if (!g)
        return;
    int64_t it = ag_gguf_find_key(g, "tokenizer.ggml.tokens"), is = ag_gguf_find_key(g, "tokenizer.ggml.scores"),
            iy = ag_gguf_find_key(g, "tokenizer.ggml.token_type");
    uint64_t n = it >= 0 ? ag_gguf_arr_n(g, it) : 0, len = 0;
    CHECK(n == 432, "pad-tail: %llu tokens", (unsigned long long)n);
    if (n == 432 && is >= 0 && iy >= 0) {
        const char *s = ag_gguf_arr_str(g, it, 431, &len);
        const char *s2 = ag_gguf_arr_str(g, it, 430, &len);
        float sc;
        int32_t ty;
        memcpy(&sc, (const char *)ag_gguf_arr_data(g, is) + 4 * 431, 4);
        memcpy(&ty, (const char *)ag_gguf_arr_data(g, iy) + 4 * 431, 4);
        CHECK(s && !strncmp(s, "[PAD431]", 8) && sc == -10000.0f && ty == 5, "pad-tail: token 431 not padding");
        CHECK(s2 && !strncmp(s2, "<somu>", 6), "pad-tail: token 430 changed");
    }
    uint32_t cnt = 0;
    CHECK(ag_gguf_get_u32(g, "anygpt.added_tokens.count", &cnt) && cnt == 31, "pad-tail: added count %u", cnt);
    ag_gguf_close(g);
    unlink(out);
}

/* Cut a file at many lengths: every reader must fail cleanly (or succeed) without crashing. */
static void truncation_sweep(const char *src, const char *tag, int steps)
{
    size_t size;
    char *data = read_whole_file(src, &size);
    CHECK(data != NULL, "%s", ag_last_error());
    if (!data)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/trunc-%s", work, tag);
    int refused = 0;
    for (int s = 0; s < steps; s++) {
        size_t len = (size_t)((double)size * s / steps);
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL, "cannot create %s", path);
        if (!f)
            break;
        fwrite(data, 1, len, f);
        fclose(f);
        ckpt c;
        ckpt_init(&c);
        refused += ckpt_load_file(&c, path) != 0;
        ckpt_free(&c);
    }
    CHECK(refused == steps, "%s: %d of %d truncations refused", tag, refused, steps);
    unlink(path);
    free(data);
}

/* Flip bytes in the first `span` bytes (pickle / JSON header) with a fixed LCG: readers must
 * refuse or accept, never crash or read out of bounds (run under ASan in CI). */
static void mutation_sweep(const char *src, const char *tag, size_t span, int iters)
{
    size_t size;
    char *data = read_whole_file(src, &size);
    CHECK(data != NULL, "%s", ag_last_error());
    if (!data)
        return;
    if (span > size)
        span = size;
    char *mut = malloc(size);
    char path[1024];
    snprintf(path, sizeof path, "%s/mut-%s", work, tag);
    uint32_t rng = 12345;
    int loaded = 0;
    for (int it = 0; it < iters && mut; it++) {
        memcpy(mut, data, size);
        for (int k = 0; k < 1 + it % 4; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t at = (rng >> 8) % span;
            rng = rng * 1664525u + 1013904223u;
            mut[at] = (char)(rng >> 24);
        }
        FILE *f = fopen(path, "wb");
        if (!f)
            break;
        fwrite(mut, 1, size, f);
        fclose(f);
        ckpt c;
        ckpt_init(&c);
        if (ckpt_load_file(&c, path) == 0) {
            loaded++;
            /* whatever was accepted must be readable within its bounds */
            for (size_t k = 0; k < c.n; k++) {
                int64_t n = ckpt_numel(&c.t[k]);
                float *buf = n > 0 && n < (1 << 22) ? malloc((size_t)n * sizeof *buf) : NULL;
                if (buf)
                    ckpt_to_f32(&c.t[k], buf);
                free(buf);
            }
        }
        ckpt_free(&c);
    }
    CHECK(loaded < iters, "%s: every mutation accepted", tag);
    printf("# %s: %d of %d mutations still loaded\n", tag, loaded, iters);
    unlink(path);
    free(mut);
    free(data);
}

static void spm_sweep(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/AnyGPT-chat-f32/tokenizer.model", fix_dir);
    size_t size;
    char *data = read_whole_file(path, &size);
    CHECK(data != NULL, "%s", ag_last_error());
    if (!data)
        return;
    spm_model m;
    CHECK(spm_model_parse(&m, (const uint8_t *)data, size, "tokenizer.model") == 0, "%s", ag_last_error());
    CHECK(m.n == 400 && m.unk_id == 0 && m.bos_id == 1 && m.eos_id == 2 && m.pad_id == -1 && m.model_type == 2 &&
              m.byte_fallback,
          "trainer fields: n %zu unk %d bos %d eos %d pad %d type %d", m.n, m.unk_id, m.bos_id, m.eos_id, m.pad_id,
          m.model_type);
    spm_model_free(&m);
    /* every prefix: no crash; a cut inside a field must be reported */
    int ok = 0;
    for (size_t len = 0; len < size; len += 7) {
        spm_model t;
        if (spm_model_parse(&t, (const uint8_t *)data, len, "prefix") == 0) {
            ok++;
            spm_model_free(&t);
        }
    }
    CHECK(ok < (int)(size / 7), "every prefix of tokenizer.model accepted");
    free(data);
}

static void json_cases(void)
{
    static const struct { const char *text; bool ok; } cases[] = {
        {"{\"a\": [1, 2.5e3, -0, true, false, null, \"\\u00e9\\ud83d\\ude00\"]}", true},
        {"{\"a\": 1,}", false}, {"[1 2]", false}, {"\"\\ud800\"", false}, {"01", false}, {"{\"a\" 1}", false},
        {"\"abc", false}, {"[1e]", false}, {"NaN", false}, {"{} x", false}, {"\"\xff\"", false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        json_value *v = json_parse(cases[k].text, strlen(cases[k].text), "case");
        CHECK((v != NULL) == cases[k].ok, "json case %zu: '%s'", k, cases[k].text);
        if (v && k == 0) {
            const json_value *a = json_get(v, "a");
            CHECK(a && a->n == 7 && a->items[1]->num == 2500.0 && !strcmp(a->items[6]->str, "\xc3\xa9\xf0\x9f\x98\x80"),
                  "json values");
        }
        json_free(v);
    }
    char deep[400];
    memset(deep, '[', sizeof deep);
    json_value *v = json_parse(deep, sizeof deep, "deep");
    CHECK(v == NULL, "deep nesting accepted");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_convert FIXTURE_DIR ANYGPT_CONVERT WORK_DIR\n");
        return 2;
    }
    fix_dir = argv[1];
    exe = argv[2];
    work = argv[3];
    check_variant("AnyGPT-chat-f32", AG_TYPE_F32, true);
    check_variant("AnyGPT-chat-f32", AG_TYPE_F16, false);
    check_variant("AnyGPT-base-bf16", AG_TYPE_F16, false);
    check_variant("tiny-gqa-safetensors", AG_TYPE_F16, false);
    check_variant("tiny-gqa-safetensors", AG_TYPE_F32, false);
    /* small scratch: tensors stream in many row chunks (1000 elements: not a whole number of rows) */
    chunk_elems = 1000;
    check_variant("AnyGPT-base-bf16", AG_TYPE_F16, false);
    check_variant("tiny-gqa-safetensors", AG_TYPE_F32, false);
    chunk_elems = 50; /* less than a row (64 or 172 columns): one row per piece */
    check_variant("AnyGPT-chat-f32", AG_TYPE_F16, false);
    chunk_elems = 0;
    /* ZIP64 central directory (torch shards over 4 GiB); general.name is the folder name */
    check_variant_as("AnyGPT-chat-zip64", "AnyGPT-chat-f32", AG_TYPE_F32, false);

    check_pad_tail();
    check_refused("bad-truncated", "truncated");
    check_refused("bad-forbidden-global", "forbidden global 'posix.system'");
    check_refused("bad-missing-tensor", "'model.norm.weight' is missing");
    check_refused("bad-wrong-shape", "'model.layers.1.mlp.up_proj.weight' has shape [172 x 65]");
    check_refused("bad-compressed", "is compressed");
    check_refused("bad-extra-tensor", "unexpected tensor 'model.layers.1.self_attn.q_proj.bias'");
    check_refused("bad-token-gap", "no token has id");
    check_refused("bad-index-mismatch", "'model.norm.weight' is listed in pytorch_model.bin.index.json");
    char pwned[1024];
    snprintf(pwned, sizeof pwned, "%s/PWNED", fix_dir);
    CHECK(!exists(pwned), "the forbidden global ran");

    char src[1024];
    snprintf(src, sizeof src, "%s/AnyGPT-chat-f32/pytorch_model-00002-of-00002.bin", fix_dir);
    truncation_sweep(src, "shard.bin", 97);
    snprintf(src, sizeof src, "%s/tiny-gqa-safetensors/model-00002-of-00002.safetensors", fix_dir);
    truncation_sweep(src, "shard.safetensors", 97);
    snprintf(src, sizeof src, "%s/AnyGPT-chat-f32/pytorch_model-00001-of-00002.bin", fix_dir);
    mutation_sweep(src, "shard.bin", 2048, 300);
    snprintf(src, sizeof src, "%s/tiny-gqa-safetensors/model-00001-of-00002.safetensors", fix_dir);
    mutation_sweep(src, "shard.safetensors", 1024, 300);
    spm_sweep();
    json_cases();

    return t_finish();
}
