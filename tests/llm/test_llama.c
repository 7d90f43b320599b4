/* LLaMA on both backends against the independent PyTorch reference (tests/reference/llama_ref.py)
 * on a tiny random AnyGPT-style checkpoint converted by anygpt-convert:
 *  - every prompt position's logits within 1e-4 of the largest |logit| (F32 weights, F32 cache),
 *    and within 1e-2 with the default F16 cache;
 *  - the same logits when the prompt is fed in pieces through the KV cache, and after a rewind;
 *  - 64 greedy tokens identical;
 *  - F16 / Q8_0 / Q4_0 files against the reference run on the same rounded weights (so what
 *    remains is our arithmetic: for quantized weights, the Q8_0 rounding of activations);
 *  - bad ids and context overflow rejected.
 * The quantized files come from a second, well-conditioned checkpoint (COND), whose F32 conversion
 * is held to the reference too.
 * usage: test_llama REF.bin F32.gguf COND_REF.bin COND_F32.gguf [FILE.gguf FILE_REF.bin BOUND]... */
#include "anygpt/error.h"
#include "anygpt/llama.h"
#include "anygpt/sampling.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ag_check.h"

static int skipped;

typedef struct {
    uint32_t n_vocab, n_prompt, n_greedy;
    float *logits;
    int32_t *greedy;
} reference;

/* The prompt the reference was run on (same list in tests/llm/meson.build). */
static const int32_t PROMPT[] = {1, 37, 250, 12, 99, 401, 7, 318, 64, 5, 222, 140, 33, 390, 17, 280, 11};
#define N_PROMPT ((int32_t)(sizeof PROMPT / sizeof *PROMPT))

static int read_ref(const char *path, reference *r)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int ok = fread(&r->n_vocab, 4, 1, f) == 1 && fread(&r->n_prompt, 4, 1, f) == 1 && fread(&r->n_greedy, 4, 1, f) == 1;
    if (ok && (r->n_prompt != N_PROMPT || r->n_vocab == 0 || r->n_vocab > 1000000 || r->n_greedy > 4096))
        ok = 0;
    if (ok) {
        r->logits = malloc((size_t)r->n_prompt * r->n_vocab * 4);
        r->greedy = malloc((size_t)r->n_greedy * 4 + 4);
        ok = r->logits && r->greedy && fread(r->logits, 4, (size_t)r->n_prompt * r->n_vocab, f) == (size_t)r->n_prompt * r->n_vocab &&
             fread(r->greedy, 4, r->n_greedy, f) == r->n_greedy;
    }
    fclose(f);
    return ok ? 0 : -1;
}

/* max |a - b| over max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - (double)b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / (mb > 0 ? mb : 1);
}

static void run_exact(ag_backend *be, const char *gguf, const reference *r)
{
    const char *bn = ag_backend_name(be);
    ag_llama *m = ag_llama_load(be, gguf, 128, AG_TYPE_F32, NULL, NULL);
    CHECK(m != NULL, "%s: load %s: %s", bn, gguf, ag_last_error());
    if (!m)
        return;
    const int32_t V = ag_llama_hparams_of(m)->n_vocab;
    CHECK(V == (int32_t)r->n_vocab, "%s: vocab %d vs reference %u", bn, V, r->n_vocab);
    if (V != (int32_t)r->n_vocab) {
        ag_llama_free(m);
        return;
    }
    float *all = malloc((size_t)N_PROMPT * V * 4), *last = malloc((size_t)V * 4);
    /* 1. prefill: every position */
    int rc = ag_llama_eval(m, PROMPT, N_PROMPT, last, all);
    CHECK(rc == 0, "%s: prefill: %s", bn, ag_last_error());
    double worst = 0;
    for (int32_t t = 0; rc == 0 && t < N_PROMPT; t++)
        worst = fmax(worst, rel_err(all + (size_t)t * V, r->logits + (size_t)t * V, (size_t)V));
    printf("# %s: prefill logits vs reference: max rel err %.2e over %d positions\n", bn, worst, N_PROMPT);
    CHECK(rc == 0 && worst < 1e-4, "%s: prefill logits rel err %.3e >= 1e-4", bn, worst);

    /* 2. the same through the cache: 5 tokens, then one at a time; then rewind and redo the tail */
    CHECK(ag_llama_truncate(m, 0) == 0, "%s: truncate", bn);
    rc = ag_llama_eval(m, PROMPT, 5, last, NULL);
    double w2 = rc == 0 ? rel_err(last, r->logits + (size_t)4 * V, (size_t)V) : 1;
    for (int32_t t = 5; rc == 0 && t < N_PROMPT; t++) {
        rc = ag_llama_eval(m, PROMPT + t, 1, last, NULL);
        w2 = fmax(w2, rel_err(last, r->logits + (size_t)t * V, (size_t)V));
    }
    CHECK(rc == 0 && w2 < 1e-4, "%s: incremental decode rel err %.3e (%s)", bn, w2, rc ? ag_last_error() : "ok");
    rc = ag_llama_truncate(m, 9) | ag_llama_eval(m, PROMPT + 9, N_PROMPT - 9, last, NULL);
    double w3 = rc == 0 ? rel_err(last, r->logits + (size_t)(N_PROMPT - 1) * V, (size_t)V) : 1;
    CHECK(rc == 0 && w3 < 1e-4, "%s: rewind to 9 and re-evaluate: rel err %.3e", bn, w3);
    printf("# %s: cached decode max rel err %.2e, after rewind %.2e\n", bn, w2, w3);

    /* 3. greedy continuation */
    int32_t same = 0, first_diff = -1;
    for (uint32_t i = 0; rc == 0 && i < r->n_greedy; i++) {
        int32_t tok = ag_argmax_f32(last, V);
        if (tok == r->greedy[i])
            same++;
        else if (first_diff < 0)
            first_diff = (int32_t)i;
        rc = ag_llama_eval(m, &r->greedy[i], 1, last, NULL); /* follow the reference's path */
    }
    printf("# %s: greedy %d/%u tokens identical\n", bn, same, r->n_greedy);
    CHECK(rc == 0 && same == (int32_t)r->n_greedy, "%s: greedy differs from token %d (%s)", bn, first_diff,
          rc ? ag_last_error() : "");

    /* 4. bad input */
    const int32_t bad[] = {V};
    CHECK(ag_llama_eval(m, bad, 1, last, NULL) != 0 && strstr(ag_last_error(), "outside the vocabulary"),
          "%s: id out of range must be rejected", bn);
    CHECK(ag_llama_truncate(m, ag_llama_n_past(m) + 1) != 0, "%s: truncate past the end must fail", bn);
    int32_t *many = calloc(200, sizeof *many);
    CHECK(ag_llama_eval(m, many, 200, last, NULL) != 0 && strstr(ag_last_error(), "context"),
          "%s: context overflow must be rejected", bn);
    free(many);
    free(all);
    free(last);
    ag_llama_free(m);
}

/* Prefill logits of a file (with a KV cache of kv_type) against a reference, within bound. */
static void check_file(ag_backend *be, const char *gguf, ag_type kv_type, double bound, const reference *r)
{
    ag_llama *m = ag_llama_load(be, gguf, 64, kv_type, NULL, NULL);
    CHECK(m != NULL, "%s: load %s: %s", ag_backend_name(be), gguf, ag_last_error());
    if (!m)
        return;
    const int32_t V = ag_llama_hparams_of(m)->n_vocab;
    float *all = malloc((size_t)N_PROMPT * V * 4);
    int rc = ag_llama_eval(m, PROMPT, N_PROMPT, NULL, all);
    double worst = 0;
    for (int32_t t = 0; rc == 0 && t < N_PROMPT; t++)
        worst = fmax(worst, rel_err(all + (size_t)t * V, r->logits + (size_t)t * V, (size_t)V));
    const char *base = strrchr(gguf, '/') ? strrchr(gguf, '/') + 1 : gguf;
    printf("# %s: %s (%s KV cache) logits vs reference on the same weights: max rel err %.2e (bound %.1e)\n",
           ag_backend_name(be), base, ag_type_name(kv_type), worst, bound);
    CHECK(rc == 0 && worst < bound, "%s: %s rel err %.3e >= %.1e (%s)", ag_backend_name(be), base, worst, bound,
          rc ? ag_last_error() : "");
    free(all);
    ag_llama_free(m);
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 5) % 3) {
        fprintf(stderr, "usage: %s REF.bin F32.gguf COND_REF.bin COND_F32.gguf [FILE.gguf FILE_REF.bin BOUND]...\n",
                argv[0]);
        return 2;
    }
    reference r = {0}, rc = {0};
    if (read_ref(argv[1], &r) != 0 || read_ref(argv[3], &rc) != 0) {
        printf("cannot read the references %s, %s\n", argv[1], argv[3]);
        return 1;
    }
    const char *only = getenv("AG_TEST_BACKEND");
    for (int b = 0; b < 2; b++) {
        const char *kind = b == 0 ? "cpu" : "vulkan";
        if (only && strcmp(only, kind))
            continue;
        ag_backend *be = b == 0 ? ag_backend_cpu_new(2) : ag_backend_vulkan_new(-1);
        if (!be) {
            const char *req = getenv("AG_REQUIRE_VULKAN");
            if (b == 1 && !(req && strcmp(req, "1") == 0)) {
                printf("# vulkan: skipped (%s)\n", ag_last_error());
                skipped++;
                continue;
            }
            CHECK(0, "%s backend: %s", kind, ag_last_error());
            continue;
        }
        printf("# device: %s %s\n", ag_backend_name(be), ag_backend_device_name(be));
        run_exact(be, argv[2], &r);
        check_file(be, argv[2], AG_TYPE_F16, 1e-2, &r); /* llama.cpp's default cache: F16 rounding */
        check_file(be, argv[4], AG_TYPE_F32, 1e-4, &rc);
        for (int i = 5; i + 2 < argc; i += 3) {
            reference rq = {0};
            if (read_ref(argv[i + 1], &rq) != 0) {
                CHECK(0, "cannot read reference %s", argv[i + 1]);
                continue;
            }
            /* The vulkan shaders multiply stored weights by F32 activations: only float rounding
             * remains. The cpu rounds activations to Q8_0 for quantized weights (the integer dot
             * products of quant.h, as llama.cpp does): its bound is that rounding's measured
             * effect on this model times 1.5. */
            const bool q8_act = strcmp(ag_backend_name(be), "cpu") == 0 && strstr(argv[i], "q") != NULL;
            check_file(be, argv[i], AG_TYPE_F32, q8_act ? atof(argv[i + 2]) : 1e-4, &rq);
            free(rq.logits);
            free(rq.greedy);
        }
        ag_backend_free(be);
    }
    free(r.logits);
    free(r.greedy);
    free(rc.logits);
    free(rc.greedy);
    printf("%d passed, %d failed, %d skipped\n", t_pass, t_fail, skipped);
    return t_fail ? 1 : 0;
}
