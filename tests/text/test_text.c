/* Text tokenizer tests against SentencePiece / HF expectations made by
 * tests/reference/spm_make_model.py, plus closed-form checks of the BPE merge order and of the
 * vocab validation.
 * usage: test_text spm_vocab.gguf spm_expected.txt spm_hostile.txt */
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                                              \
    do {                                                                                                              \
        if (cond) {                                                                                                   \
            n_pass++;                                                                                                 \
        } else {                                                                                                      \
            n_fail++;                                                                                                 \
            if (n_fail <= 30) {                                                                                       \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                           \
                printf(__VA_ARGS__);                                                                                  \
                printf("\n");                                                                                         \
            }                                                                                                         \
        }                                                                                                             \
    } while (0)

/* Strict UTF-8 check written here, independent of the library's helper. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t l;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c >> 5) == 6) {
            l = 2;
            cp = c & 0x1F;
        } else if ((c >> 4) == 14) {
            l = 3;
            cp = c & 0x0F;
        } else if ((c >> 3) == 30) {
            l = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + l > n)
            return 0;
        for (size_t k = 1; k < l; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((l == 2 && cp < 0x80) || (l == 3 && cp < 0x800) || (l == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp < 0xE000))
            return 0;
        i += l;
    }
    return 1;
}

static size_t unhex(const char *h, char *out)
{
    size_t n = 0;
    while (h[0] && h[1] && h[0] != '\n') {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
        h += 2;
    }
    out[n] = 0;
    return n;
}

static size_t parse_ids(const char *s, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        if (n < cap)
            ids[n] = (int32_t)v;
        n++;
        s = end;
    }
    return n;
}

static int same_ids(const int32_t *a, int64_t na, const int32_t *b, size_t nb)
{
    return na >= 0 && (size_t)na == nb && (nb == 0 || memcmp(a, b, nb * sizeof *a) == 0);
}

static void print_ids(const char *what, const int32_t *v, size_t n)
{
    printf("   %s:", what);
    for (size_t i = 0; i < n && i < 40; i++)
        printf(" %d", v[i]);
    printf("\n");
}

/* Stream ids one by one: every chunk must be whole UTF-8, the concatenation must equal want. */
static void check_stream(const ag_text_tokenizer *t, const int32_t *ids, size_t n, const char *want, size_t wn,
                         int line)
{
    ag_text_stream *s = ag_text_stream_new(t, 0);
    char *acc = malloc(wn + 4 * n + 16);
    size_t an = 0;
    int chunks_ok = 1;
    for (size_t i = 0; i < n; i++) {
        const char *o;
        int64_t k = ag_text_stream_push(s, ids[i], &o);
        if (k < 0) {
            chunks_ok = 0;
            break;
        }
        if (!valid_utf8((const unsigned char *)o, (size_t)k))
            chunks_ok = 0;
        if (k > 0 && an + (size_t)k <= wn + 4 * n + 8) {
            memcpy(acc + an, o, (size_t)k);
            an += (size_t)k;
        }
    }
    const char *o;
    int64_t k = ag_text_stream_flush(s, &o);
    if (k > 0 && an + (size_t)k <= wn + 4 * n + 8) {
        if (!valid_utf8((const unsigned char *)o, (size_t)k))
            chunks_ok = 0;
        memcpy(acc + an, o, (size_t)k);
        an += (size_t)k;
    }
    CHECK(chunks_ok, "line %d: streamed chunk is not whole UTF-8", line);
    CHECK(an == wn && memcmp(acc, want, wn) == 0, "line %d: streamed text differs from the expected decode", line);
    free(acc);
    ag_text_stream_free(s);
}

static void test_expected(ag_text_tokenizer *t, const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    size_t cap = 1 << 20;
    char *line = malloc(cap), *text = malloc(cap), *want = malloc(cap), *got = malloc(cap);
    int32_t *ids_l = malloc(cap * sizeof(int32_t)), *ids_f = malloc(cap * sizeof(int32_t)),
            *ids = malloc(cap * sizeof(int32_t));
    size_t tn = 0, nl = 0, nf = 0, nz = 0;
    int in_z = 0, lineno = 0, n_lines = 0, n_rt = 0, n_rt_ok = 0, n_legacy_ne_first = 0, n_z = 0;
    while (fgets(line, (int)cap, f)) {
        lineno++;
        char tag = line[0];
        const char *arg = line[1] ? line + 2 : line + 1;
        if (tag == 'N') {
            CHECK(ag_text_n_tokens(t) == atoi(arg), "vocab size %d, expected %d", ag_text_n_tokens(t), atoi(arg));
        } else if (tag == 'T') {
            tn = unhex(arg, text);
        } else if (tag == 'L') {
            nl = parse_ids(arg, ids_l, cap);
        } else if (tag == 'F') {
            nf = parse_ids(arg, ids_f, cap);
        } else if (tag == 'Z') {
            nz = parse_ids(arg, ids, cap);
            in_z = 1;
        } else if (tag == 'D' && in_z) { /* random ids: decode vs SentencePiece */
            size_t wn = unhex(arg, want);
            int64_t gn = ag_text_decode(t, ids, nz, 0, got, cap);
            CHECK(gn == (int64_t)wn && memcmp(got, want, wn) == 0, "line %d: decode of random ids differs", lineno);
            check_stream(t, ids, nz, want, wn, lineno);
            in_z = 0;
            n_z++;
        } else if (tag == 'D') {
            n_lines++;
            ag_text_tokenizer_set_prefix_mode(t, AG_TEXT_PREFIX_LEGACY);
            int64_t n = ag_text_encode(t, text, tn, true, ids, cap);
            CHECK(same_ids(ids, n, ids_l, nl), "line %d: legacy encode of '%.60s' differs", lineno, text);
            if (!same_ids(ids, n, ids_l, nl) && n_fail < 10) {
                print_ids("got ", ids, n > 0 ? (size_t)n : 0);
                print_ids("want", ids_l, nl);
            }
            ag_text_tokenizer_set_prefix_mode(t, AG_TEXT_PREFIX_FIRST);
            int64_t n2 = ag_text_encode(t, text, tn, true, ids, cap);
            CHECK(same_ids(ids, n2, ids_f, nf), "line %d: legacy=False encode of '%.60s' differs", lineno, text);
            if (!same_ids(ids, n2, ids_f, nf) && n_fail < 10) {
                print_ids("got ", ids, n2 > 0 ? (size_t)n2 : 0);
                print_ids("want", ids_f, nf);
            }
            ag_text_tokenizer_set_prefix_mode(t, AG_TEXT_PREFIX_LEGACY);
            if (!same_ids(ids_l, (int64_t)nl, ids_f, nf))
                n_legacy_ne_first++;
            size_t wn = unhex(arg, want);
            int64_t gn = ag_text_decode(t, ids_l, nl, 0, got, cap);
            CHECK(gn == (int64_t)wn && memcmp(got, want, wn) == 0, "line %d: decode of '%.60s' differs", lineno, text);
            check_stream(t, ids_l, nl, want, wn, lineno);
        } else if (tag == 'R') {
            if (atoi(arg)) { /* SentencePiece round-trips this text: so must we */
                n_rt++;
                int64_t gn = ag_text_decode(t, ids_l, nl, 0, got, cap);
                int ok = gn == (int64_t)tn && memcmp(got, text, tn) == 0;
                n_rt_ok += ok;
                CHECK(ok, "line %d: decode(encode(s)) != s", lineno);
            }
        }
    }
    printf("# %d corpus lines (%d encode differently with legacy=False), %d/%d round trips, %d random id "
           "sequences\n",
           n_lines, n_legacy_ne_first, n_rt_ok, n_rt, n_z);
    CHECK(n_lines > 500 && n_z > 100, "too few cases read from %s", path);
    fclose(f);
    free(line);
    free(text);
    free(want);
    free(got);
    free(ids_l);
    free(ids_f);
    free(ids);
}

static void test_lookup(ag_text_tokenizer *t)
{
    const char *names[] = {"[Human]", "[MMGPT]", "<eoh>", "<eos>", "<sosp>", "<eosp>", "<soim>", "<eoim>", "<somu>", "<eomu>"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        int32_t id = ag_text_token_id(t, names[i], (size_t)-1);
        size_t l;
        const char *s = ag_text_token_str(t, id, &l);
        CHECK(id >= 0 && s && l == strlen(names[i]) && memcmp(s, names[i], l) == 0, "lookup of %s", names[i]);
        CHECK(ag_text_token_type(t, id) == AG_TOKEN_USER_DEFINED, "%s is user-defined", names[i]);
        int32_t code;
        CHECK(ag_text_token_modality(t, id, &code) == AG_MODALITY_NONE && code == -1, "%s is not a modality token",
              names[i]);
    }
    CHECK(ag_text_token_id(t, "<nothing>", (size_t)-1) == -1, "absent token");
    CHECK(ag_text_token_id(t, "<s>", 3) == 1 && ag_text_bos(t) == 1 && ag_text_eos(t) == 2 && ag_text_unk(t) == 0,
          "special ids");
    const char *pre[4] = {NULL, "<\xF0\x9F\x97\xA3\xEF\xB8\x8F", "<\xF0\x9F\x91\x80", "<\xF0\x9F\x8E\xB6"};
    for (int m = 1; m <= 3; m++) {
        CHECK(ag_text_modality_codes(t, (ag_modality)m) == 64, "modality %d has 64 codes", m);
        int bad = 0;
        for (int c = 0; c < 64; c++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s%d>", pre[m], c);
            int32_t id = ag_text_token_id(t, buf, (size_t)-1);
            int32_t code = -5;
            if (id < 0 || ag_text_modality_token(t, (ag_modality)m, c) != id ||
                ag_text_token_modality(t, id, &code) != (ag_modality)m || code != c)
                bad++;
        }
        CHECK(!bad, "modality %d: %d codes misclassified", m, bad);
        CHECK(ag_text_modality_token(t, (ag_modality)m, 64) == -1 && ag_text_modality_token(t, (ag_modality)m, -1) == -1,
              "modality %d out-of-range codes", m);
    }
    int32_t code;
    CHECK(ag_text_token_modality(t, 5, &code) == AG_MODALITY_NONE && ag_text_token_modality(t, -1, &code) == 0 &&
              ag_text_token_modality(t, 1 << 30, &code) == 0,
          "ordinary and out-of-range ids are no modality tokens");
}

/* Closed forms on a hand-made vocab: highest score merges first, leftmost on ties. */
static void test_merge_order(void)
{
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "ab", "ba", "aba"};
    float sc[] = {0, 0, 0, -1, -2, -2, -3, -3, -4};
    int32_t ty[] = {2, 3, 3, 1, 1, 1, 1, 1, 1};
    ag_text_vocab_desc d = {.n_tokens = 9, .tokens = toks, .scores = sc, .types = ty, .bos_id = 1, .eos_id = 2,
                            .unk_id = 0, .pad_id = -1, .add_bos = false, .prefix_mode = AG_TEXT_PREFIX_NONE,
                            .label = "tiny"};
    ag_text_tokenizer *t = ag_text_tokenizer_new(&d);
    CHECK(t != NULL, "tiny vocab: %s", ag_last_error());
    if (!t)
        return;
    int32_t ids[16];
    int64_t n = ag_text_encode(t, "abab", 4, true, ids, 16); /* ties: (a,b) at 0 first -> ab ab */
    CHECK(n == 2 && ids[0] == 6 && ids[1] == 6, "tie -> leftmost pair merges first");
    n = ag_text_encode(t, "bab", 3, true, ids, 16); /* ba at 0 is leftmost -> ba b */
    CHECK(n == 2 && ids[0] == 7 && ids[1] == 5, "tie -> leftmost (ba b)");
    n = ag_text_encode(t, "xa", 2, true, ids, 16); /* no byte tokens: unknown -> <unk> */
    CHECK(n == 2 && ids[0] == 0 && ids[1] == 4, "unknown char -> <unk>");
    n = ag_text_encode(t, "xyz", 3, true, ids, 16); /* a run of unknown pieces is one <unk> */
    CHECK(n == 1 && ids[0] == 0, "unknown run -> one <unk>");
    ag_text_tokenizer_free(t);
    sc[7] = -2.5f; /* ba now beats ab */
    t = ag_text_tokenizer_new(&d);
    n = ag_text_encode(t, "abab", 4, true, ids, 16); /* a b a b -> a ba b -> aba b */
    CHECK(t && n == 2 && ids[0] == 8 && ids[1] == 5, "higher score merges first");
    if (!t)
        return;
    char out[32];
    int32_t dec[] = {1, 3, 4, 7, 3, 2};
    int64_t k = ag_text_decode(t, dec, 6, 0, out, sizeof out); /* <s> ▁ a ba ▁ </s> */
    CHECK(k == 5 && strcmp(out, " aba ") == 0, "no dummy prefix: no space stripped");
    ag_text_tokenizer_set_prefix_mode(t, AG_TEXT_PREFIX_LEGACY);
    k = ag_text_decode(t, dec, 6, 0, out, sizeof out);
    CHECK(k == 4 && strcmp(out, "aba ") == 0, "only the first dummy space is stripped");
    k = ag_text_decode(t, dec, 6, AG_TEXT_DECODE_KEEP_SPACE, out, sizeof out);
    CHECK(k == 5 && strcmp(out, " aba ") == 0, "KEEP_SPACE keeps it");
    k = ag_text_decode(t, dec, 6, 0, out, 3);
    CHECK(k == 4 && strcmp(out, "ab") == 0, "decode truncates to cap and terminates");
    int32_t badid = 99;
    CHECK(ag_text_decode(t, &badid, 1, 0, out, sizeof out) == -1, "decode rejects an id out of range");
    ag_text_tokenizer_free(t);
}

/* Random bytes (with pieces of added tokens and broken UTF-8) in every mode: no crash, ids in range,
 * decode gives valid UTF-8 and the stream agrees with it. Mostly for the sanitizer builds. */
static void test_fuzz(ag_text_tokenizer *t)
{
    static const char *frags[] = {"<eoh>", "<\xF0\x9F\x97\xA3\xEF\xB8\x8F", "<\xF0\x9F\x91\x80", "12>", "[Human]", "<s>",
                                  "\xE2\x96\x81", " ", "  ", "\n", "\xF0\x9F", "\x80", "\xFF", "ab", "\xE6\x9D\xB1", "@@", "%QRS", "#XY"};
    uint32_t rng = 12345;
    char buf[256], out[4096];
    int32_t ids[1024];
    int bad_range = 0, bad_utf8 = 0, bad_stream = 0, errors = 0;
    for (int it = 0; it < 3000; it++) {
        size_t n = 0;
        int parts = (int)((rng = rng * 1664525u + 1013904223u) >> 28);
        for (int p = 0; p < parts; p++) {
            rng = rng * 1664525u + 1013904223u;
            if ((rng >> 16) % 3 == 0) {
                buf[n++] = (char)(rng >> 8);
            } else {
                const char *fr = frags[(rng >> 12) % (sizeof frags / sizeof *frags)];
                size_t l = strlen(fr);
                memcpy(buf + n, fr, l);
                n += l;
            }
        }
        ag_text_tokenizer_set_prefix_mode(t, (ag_text_prefix_mode)(it % 3));
        int64_t k = ag_text_encode(t, buf, n, it % 2, ids, 1024);
        if (k < 0 || k > 1024) {
            errors++;
            continue;
        }
        for (int64_t i = 0; i < k; i++)
            bad_range += ids[i] < 0 || ids[i] >= ag_text_n_tokens(t);
        int64_t d = ag_text_decode(t, ids, (size_t)k, (unsigned)(it % 4), out, sizeof out);
        if (d < 0 || d >= (int64_t)sizeof out) {
            errors++;
            continue;
        }
        bad_utf8 += !valid_utf8((const unsigned char *)out, (size_t)d);
        ag_text_stream *s = ag_text_stream_new(t, (unsigned)(it % 4));
        char acc[4096];
        size_t an = 0;
        for (int64_t i = 0; i <= k; i++) {
            const char *o;
            int64_t c = i < k ? ag_text_stream_push(s, ids[i], &o) : ag_text_stream_flush(s, &o);
            if (c < 0 || an + (size_t)c > sizeof acc) {
                bad_stream++;
                break;
            }
            memcpy(acc + an, o, (size_t)c);
            an += (size_t)c;
        }
        bad_stream += an != (size_t)d || memcmp(acc, out, an) != 0;
        ag_text_stream_free(s);
    }
    ag_text_tokenizer_set_prefix_mode(t, AG_TEXT_PREFIX_LEGACY);
    CHECK(!errors && !bad_range && !bad_utf8 && !bad_stream,
          "fuzz: %d errors, %d ids out of range, %d invalid UTF-8 decodes, %d stream mismatches", errors, bad_range,
          bad_utf8, bad_stream);
}

static void expect_reject(ag_text_vocab_desc *d, const char *words, const char *what)
{
    ag_clear_error();
    ag_text_tokenizer *t = ag_text_tokenizer_new(d);
    CHECK(t == NULL && strstr(ag_last_error(), words) != NULL, "%s: expected rejection with '%s', got '%s'", what,
          words, t ? "(accepted)" : ag_last_error());
    ag_text_tokenizer_free(t);
}

static void test_hostile_arrays(void)
{
    const char *toks[] = {"<unk>", "<s>", "</s>", "a", "b"};
    int32_t ty[] = {2, 3, 3, 1, 1};
    ag_text_vocab_desc d = {.n_tokens = 5, .tokens = toks, .types = ty, .bos_id = 1, .eos_id = 2, .unk_id = 0,
                            .pad_id = -1, .add_bos = true, .label = "arr"};
    ag_text_tokenizer *ok = ag_text_tokenizer_new(&d);
    CHECK(ok != NULL, "base array vocab accepted: %s", ag_last_error());
    ag_text_tokenizer_free(ok);
    CHECK(ag_text_tokenizer_new(NULL) == NULL, "NULL description rejected");
    ag_text_vocab_desc e = d;
    e.n_tokens = 0;
    expect_reject(&e, "0 tokens", "empty vocab");
    e = d;
    e.bos_id = 5;
    expect_reject(&e, "BOS id 5 out of range", "bos");
    e = d;
    e.bos_id = -1;
    expect_reject(&e, "no BOS", "add_bos without bos");
    const char *t2[] = {"<unk>", "<s>", "</s>", "a", "a"};
    e = d;
    e.tokens = t2;
    expect_reject(&e, "same string", "duplicate");
    const char *t3[] = {"<unk>", "<s>", "</s>", "a", "\xED\xA0\x80"}; /* a UTF-16 surrogate */
    e = d;
    e.tokens = t3;
    expect_reject(&e, "not valid UTF-8", "surrogate");
    int32_t ty2[] = {2, 3, 3, 1, 0};
    e = d;
    e.types = ty2;
    expect_reject(&e, "unknown type 0", "type 0");
    int32_t ty3[] = {2, 3, 3, 1, 6};
    e = d;
    e.types = ty3;
    expect_reject(&e, "not <0xNN>", "byte token 'b'");
    const char *t4[] = {"<unk>", "<s>", "</s>", "a", "<0x41>"};
    e = d;
    e.tokens = t4;
    e.types = ty3;
    expect_reject(&e, "needs all 256", "one byte token");
    int32_t ty4[] = {1, 3, 3, 1, 1};
    e = d;
    e.types = ty4;
    e.unk_id = -1;
    expect_reject(&e, "no unknown token", "no unk, no bytes");
    float nan_sc[] = {0, 0, 0, 0, 0};
    nan_sc[3] = 0.0f / 0.0f;
    e = d;
    e.scores = nan_sc;
    expect_reject(&e, "NaN", "NaN score");
}

static void test_hostile_files(const char *manifest)
{
    FILE *f = fopen(manifest, "r");
    CHECK(f != NULL, "cannot open %s", manifest);
    if (!f)
        return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", manifest);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        char *words = tab + 1;
        words[strcspn(words, "\n")] = 0;
        char path[2048];
        snprintf(path, sizeof path, "%s/spm_hostile/%s.gguf", dir, line);
        ag_gguf *g = ag_gguf_open(path);
        CHECK(g != NULL, "%s: GGUF itself should open: %s", line, ag_last_error());
        if (!g)
            continue;
        ag_clear_error();
        ag_text_tokenizer *t = ag_text_tokenizer_from_gguf(g);
        if (words[0] == '=') { /* a valid file: check the prefix mode it selects */
            ag_text_prefix_mode want = strcmp(words, "=FIRST") == 0 ? AG_TEXT_PREFIX_FIRST : AG_TEXT_PREFIX_NONE;
            CHECK(t && ag_text_tokenizer_prefix_mode(t) == want, "%s: should load with mode %s (%s)", line, words + 1,
                  t ? "loaded" : ag_last_error());
            ag_text_tokenizer_free(t);
            ag_gguf_close(g);
            continue;
        }
        CHECK(t == NULL && strstr(ag_last_error(), words), "%s: expected rejection with '%s', got '%s'", line, words,
              t ? "(accepted)" : ag_last_error());
        if (!t && n < 40)
            printf("# rejected %-20s %s\n", line, ag_last_error());
        ag_text_tokenizer_free(t);
        ag_gguf_close(g);
        n++;
    }
    fclose(f);
    CHECK(n >= 10, "only %d hostile files", n);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s spm_vocab.gguf spm_expected.txt spm_hostile.txt\n", argv[0]);
        return 2;
    }
    printf("# device: cpu (text tokenizer)\n");
    ag_gguf *g = ag_gguf_open(argv[1]);
    CHECK(g != NULL, "open %s: %s", argv[1], ag_last_error());
    ag_text_tokenizer *t = g ? ag_text_tokenizer_from_gguf(g) : NULL;
    CHECK(t != NULL, "tokenizer from %s: %s", argv[1], ag_last_error());
    if (t) {
        CHECK(ag_text_tokenizer_prefix_mode(t) == AG_TEXT_PREFIX_LEGACY && ag_text_add_bos(t), "GGUF defaults");
        test_expected(t, argv[2]);
        test_lookup(t);
        test_fuzz(t);
    }
    ag_text_tokenizer_free(t);
    ag_gguf_close(g);
    test_merge_order();
    test_hostile_arrays();
    test_hostile_files(argv[3]);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
