/* anygpt-make-random-llama OUT.gguf [--type q4_0|q8_0|f16] [--layers N] [--vocab N] [--seed S]
 *                          [--anygpt-vocab]
 *
 * A LLaMA-2-7B-shaped GGUF with random weights, for speed benchmarks against llama.cpp on the
 * very same file (llama.cpp's "llama" conventions, SentencePiece-style vocab it accepts).
 * Weights ~N(0, 0.02) (Irwin-Hall of four uniforms: fast, deterministic), norms 1.
 * token_embd and output.weight are in the chosen type (llama.cpp's default Q4_0 mix would put
 * output.weight in Q6_K, which we do not have). Tensors are generated and streamed in chunks,
 * so memory stays at a few MB whatever the file size.
 * --anygpt-vocab appends AnyGPT's added tokens after the base pieces, as the converter writes
 * them for fnlp/AnyGPT-chat (USER_DEFINED, score -1000, anygpt.* keys): a real-sized model the
 * voice assistant and the task pipelines can run on (speed benchmarks of a whole turn). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/quant.h"
#include "gguf_stream.h"

enum { DIM = 4096, N_HEAD = 32, N_FF = 11008, N_CTX = 4096 };

typedef struct {
    uint64_t s;
} rng_t;

/* splitmix64: good enough statistics, trivially seedable per tensor */
static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* sum of four 16-bit uniforms: mean 2, variance 4/12 -> scaled to N(0, sigma)-ish */
static void fill_normal(rng_t *r, float *x, size_t n, float sigma)
{
    const float k = sigma * 1.7320508f / 65536.0f; /* sqrt(3) / 2^16 */
    for (size_t i = 0; i < n; i++) {
        uint64_t v = rng_next(r);
        uint32_t s = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) + (uint32_t)((v >> 32) & 0xffff) +
                     (uint32_t)(v >> 48);
        x[i] = ((float)s - 131070.0f) * k;
    }
}

static int parse_type(const char *s, ag_type *t)
{
    if (!strcmp(s, "q4_0"))
        *t = AG_TYPE_Q4_0;
    else if (!strcmp(s, "q8_0"))
        *t = AG_TYPE_Q8_0;
    else if (!strcmp(s, "f16"))
        *t = AG_TYPE_F16;
    else
        return -1;
    return 0;
}

/* AnyGPT's added tokens in id order (tests/reference/make_tiny_llama.py ADDED; AnyGPT-chat's
 * added_tokens.json): roles and tags, then 8192 image, 1024 speech, 8192 music codes, each
 * modality followed by its start / end tags. */
static const char *const ROLES[] = {"[Human]", "[MMGPT]", "<eoh>", "<eos>", "<eom>", "<-Ins->", "<-Res->", "<eot>"};
static const struct {
    const char *mark, *start, *end; /* code k is "<" mark k ">" */
    int n;
} MODALITIES[] = {{"\xf0\x9f\x91\x80", "<soim>", "<eoim>", 8192},             /* U+1F440 eyes */
                  {"\xf0\x9f\x97\xa3\xef\xb8\x8f", "<sosp>", "<eosp>", 1024}, /* U+1F5E3 U+FE0F */
                  {"\xf0\x9f\x8e\xb6", "<somu>", "<eomu>", 8192}};             /* U+1F3B6 notes */
enum { N_ROLES = sizeof ROLES / sizeof *ROLES, N_MODALITIES = sizeof MODALITIES / sizeof *MODALITIES };

static int64_t anygpt_added_count(void)
{
    int64_t n = N_ROLES;
    for (int m = 0; m < N_MODALITIES; m++)
        n += MODALITIES[m].n + 2;
    return n;
}

/* the piece of added token k (0-based) into buf */
static void anygpt_added_piece(int64_t k, char *buf, size_t n)
{
    if (k < N_ROLES) {
        snprintf(buf, n, "%s", ROLES[k]);
        return;
    }
    k -= N_ROLES;
    for (int m = 0; m < N_MODALITIES; m++) {
        const int64_t span = MODALITIES[m].n + 2; /* codes, start tag, end tag */
        if (k < span) {
            if (k < MODALITIES[m].n)
                snprintf(buf, n, "<%s%d>", MODALITIES[m].mark, (int)k);
            else
                snprintf(buf, n, "%s", k == MODALITIES[m].n ? MODALITIES[m].start : MODALITIES[m].end);
            return;
        }
        k -= span;
    }
}

/* n_base SentencePiece-like pieces, then n_added AnyGPT added tokens */
static int write_vocab(gs_writer *w, int64_t n_base, int64_t n_added)
{
    const int64_t n_vocab = n_base + n_added;
    char **toks = calloc((size_t)n_vocab, sizeof *toks);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    int rc = -1;
    if (!toks || !scores || !types)
        goto out;
    for (int64_t i = 0; i < n_vocab; i++) {
        char buf[32];
        if (i == 0)
            snprintf(buf, sizeof buf, "<unk>"), types[i] = 2; /* UNKNOWN */
        else if (i == 1)
            snprintf(buf, sizeof buf, "<s>"), types[i] = 3; /* CONTROL */
        else if (i == 2)
            snprintf(buf, sizeof buf, "</s>"), types[i] = 3;
        else if (i < 3 + 256)
            snprintf(buf, sizeof buf, "<0x%02X>", (unsigned)(i - 3)), types[i] = 6; /* BYTE */
        else if (i < n_base)
            snprintf(buf, sizeof buf, "\xe2\x96\x81tok%lld", (long long)i), types[i] = 1; /* NORMAL */
        else
            anygpt_added_piece(i - n_base, buf, sizeof buf), types[i] = 4; /* USER_DEFINED */
        scores[i] = i < 3 + 256 ? 0.0f : i < n_base ? -(float)(i - 259) : -1000.0f;
        if (!(toks[i] = strdup(buf)))
            goto out;
    }
    rc = gs_set_str(w, "tokenizer.ggml.model", "llama") || gs_set_str(w, "tokenizer.ggml.pre", "default") ||
         gs_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n_vocab) ||
         gs_set_arr(w, "tokenizer.ggml.scores", AG_GGUF_FLOAT32, scores, (uint64_t)n_vocab) ||
         gs_set_arr(w, "tokenizer.ggml.token_type", AG_GGUF_INT32, types, (uint64_t)n_vocab) ||
         gs_set_u32(w, "tokenizer.ggml.unknown_token_id", 0) || gs_set_u32(w, "tokenizer.ggml.bos_token_id", 1) ||
         gs_set_u32(w, "tokenizer.ggml.eos_token_id", 2) || gs_set_bool(w, "tokenizer.ggml.add_bos_token", true) ||
         gs_set_bool(w, "tokenizer.ggml.add_eos_token", false)
             ? -1
             : 0;
    /* the converter's AnyGPT keys (tools/convert/convert_llm.c); HF's legacy tokenizer as pinned */
    if (!rc && n_added)
        rc = gs_set_str(w, "anygpt.variant", "chat") ||
                     gs_set_u32(w, "anygpt.added_tokens.first_id", (uint32_t)n_base) ||
                     gs_set_u32(w, "anygpt.added_tokens.count", (uint32_t)n_added) ||
                     gs_set_bool(w, "anygpt.tokenizer.hf_legacy", true)
                 ? -1
                 : 0;
out:
    if (toks)
        for (int64_t i = 0; i < n_vocab; i++)
            free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    return rc;
}

/* Generate rows in chunks of ~1M floats, quantize, stream; norms are ones in F32. */
static int stream_tensor(gs_writer *w, int idx, int n_dims, const int64_t ne[2], ag_type type, uint64_t seed,
                         float *fbuf, void *qbuf, int64_t chunk_elems)
{
    rng_t r = {seed};
    if (n_dims == 1) {
        for (int64_t i = 0; i < ne[0]; i++)
            fbuf[i] = 1.0f;
        return gs_write_tensor(w, idx, fbuf, (size_t)ne[0] * sizeof(float));
    }
    const int64_t rows_per = chunk_elems / ne[0] > 0 ? chunk_elems / ne[0] : 1;
    for (int64_t r0 = 0; r0 < ne[1]; r0 += rows_per) {
        int64_t nr = ne[1] - r0 < rows_per ? ne[1] - r0 : rows_per;
        fill_normal(&r, fbuf, (size_t)(nr * ne[0]), 0.02f);
        size_t nb = ag_quantize(type, fbuf, qbuf, nr, ne[0]);
        if (gs_write_part(w, idx, qbuf, nb))
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    ag_type type = AG_TYPE_Q4_0;
    const char *type_name = "q4_0";
    long layers = 32, vocab = 32000;
    unsigned long long seed = 1234;
    bool anygpt_vocab = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--type") && i + 1 < argc) {
            type_name = argv[++i];
            if (parse_type(type_name, &type)) {
                fprintf(stderr, "unknown --type %s (q4_0|q8_0|f16)\n", type_name);
                return 2;
            }
        } else if (!strcmp(a, "--layers") && i + 1 < argc)
            layers = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--vocab") && i + 1 < argc)
            vocab = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--anygpt-vocab"))
            anygpt_vocab = true;
        else if (a[0] != '-' && !out)
            out = a;
        else {
            out = NULL;
            break;
        }
    }
    if (!out || layers < 1 || layers > 1024 || vocab < 260 || vocab > 1000000) {
        fprintf(stderr,
                "usage: %s OUT.gguf [--type q4_0|q8_0|f16] [--layers 1..1024] [--vocab 260..1000000] [--seed S]\n"
                "       [--anygpt-vocab]   append AnyGPT's added tokens after the --vocab base pieces\n",
                argv[0]);
        return 2;
    }
    const long base_vocab = vocab; /* --vocab counts the base pieces; the added tokens come after */
    if (anygpt_vocab)
        vocab += (long)anygpt_added_count();

    gs_writer *w = gs_new();
    if (!w) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    /* general.file_type: llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_0 = 2, Q8_0 = 7, F16 = 1 */
    uint32_t ftype = type == AG_TYPE_Q4_0 ? 2 : type == AG_TYPE_Q8_0 ? 7 : 1;
    char name[64];
    snprintf(name, sizeof name, "random-%s-7b-%s", anygpt_vocab ? "anygpt" : "llama", type_name);
    int bad = gs_set_str(w, "general.architecture", "llama") || gs_set_str(w, "general.type", "model") ||
              gs_set_str(w, "general.name", name) || gs_set_u32(w, "general.quantization_version", 2) ||
              gs_set_u32(w, "general.file_type", ftype) || gs_set_u32(w, "llama.vocab_size", (uint32_t)vocab) ||
              gs_set_u32(w, "llama.context_length", N_CTX) || gs_set_u32(w, "llama.embedding_length", DIM) ||
              gs_set_u32(w, "llama.block_count", (uint32_t)layers) ||
              gs_set_u32(w, "llama.feed_forward_length", N_FF) ||
              gs_set_u32(w, "llama.rope.dimension_count", DIM / N_HEAD) ||
              gs_set_u32(w, "llama.attention.head_count", N_HEAD) ||
              gs_set_u32(w, "llama.attention.head_count_kv", N_HEAD) ||
              gs_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f) ||
              gs_set_f32(w, "llama.rope.freq_base", 10000.0f) || write_vocab(w, base_vocab, vocab - base_vocab);

    /* tensor table: name, rank, ne (ggml order, ne[0] = row length) */
    typedef struct {
        char name[64];
        int n_dims;
        int64_t ne[2];
    } tspec;
    size_t n_t = 3 + 9 * (size_t)layers, nt = 0;
    tspec *ts = calloc(n_t, sizeof *ts);
    bad = bad || !ts;
#define ADD(nd, a, b, ...)                                                                                           \
    do {                                                                                                             \
        snprintf(ts[nt].name, sizeof ts[nt].name, __VA_ARGS__);                                                      \
        ts[nt].n_dims = (nd), ts[nt].ne[0] = (a), ts[nt].ne[1] = (b);                                                \
        nt++;                                                                                                        \
    } while (0)
    if (!bad) {
        ADD(2, DIM, vocab, "token_embd.weight");
        for (long l = 0; l < layers; l++) {
            ADD(1, DIM, 1, "blk.%ld.attn_norm.weight", l);
            ADD(2, DIM, DIM, "blk.%ld.attn_q.weight", l);
            ADD(2, DIM, DIM, "blk.%ld.attn_k.weight", l);
            ADD(2, DIM, DIM, "blk.%ld.attn_v.weight", l);
            ADD(2, DIM, DIM, "blk.%ld.attn_output.weight", l);
            ADD(1, DIM, 1, "blk.%ld.ffn_norm.weight", l);
            ADD(2, DIM, N_FF, "blk.%ld.ffn_gate.weight", l);
            ADD(2, DIM, N_FF, "blk.%ld.ffn_up.weight", l);
            ADD(2, N_FF, DIM, "blk.%ld.ffn_down.weight", l);
        }
        ADD(1, DIM, 1, "output_norm.weight");
        ADD(2, DIM, vocab, "output.weight");
    }
#undef ADD
    for (size_t i = 0; i < nt && !bad; i++)
        bad = gs_add_tensor(w, ts[i].name, ts[i].n_dims == 1 ? AG_TYPE_F32 : type, ts[i].n_dims, ts[i].ne) < 0;

    const int64_t chunk = 1 << 20; /* floats per chunk (>= one row of N_FF) */
    float *fbuf = malloc((size_t)chunk * sizeof(float));
    void *qbuf = malloc((size_t)chunk * sizeof(float));
    bad = bad || !fbuf || !qbuf || gs_begin(w, out); /* writes OUT.tmp, renamed on success */
    uint64_t total = 0;
    for (size_t i = 0; i < nt && !bad; i++) {
        ag_type ty = ts[i].n_dims == 1 ? AG_TYPE_F32 : type;
        bad = stream_tensor(w, (int)i, ts[i].n_dims, ts[i].ne, ty, seed * 0x100000001B3ull + i, fbuf, qbuf, chunk);
        total += gs_tensor_nbytes(w, (int)i);
        if (i % 32 == 0)
            fprintf(stderr, "\r%zu/%zu tensors", i + 1, nt);
    }
    bad = bad || gs_finish(w);
    if (bad)
        fprintf(stderr, "\n%s: %s\n", out, ag_last_error());
    else
        fprintf(stderr, "\rwrote %s (%s, %ld layers, vocab %ld, %.2f GB of tensors)\n", out, type_name, layers,
                vocab, (double)total / 1e9);
    gs_free(w);
    free(fbuf);
    free(qbuf);
    free(ts);
    return bad ? 1 : 0;
}
