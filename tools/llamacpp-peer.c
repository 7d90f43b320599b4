/* llama.cpp's Vulkan build timed on a GGUF file the way anygpt-bench-llm times ours: the prompt
 * file's tokens in one batch (prefill, up to the first greedy sample), then greedy decode.
 * Not part of the build: tools/llamacpp-peer.sh compiles it at pack time against the headers of
 * the llama.cpp release that node-llama-cpp's prebuilt binaries were made from, and runs it
 * where those binaries are unpacked (no node needed there).
 *   llamacpp-peer BIN_DIR MODEL.gguf PROMPT.txt N_GEN THREADS */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "llama.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void quiet(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR || getenv("AG_PEER_LOG"))
        fputs(text, stderr);
}

static llama_token greedy(struct llama_context *ctx, int32_t n_vocab)
{
    const float *l = llama_get_logits_ith(ctx, -1);
    llama_token best = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s BIN_DIR MODEL.gguf PROMPT.txt N_GEN THREADS\n", argv[0]);
        return 2;
    }
    const int n_gen = atoi(argv[4]), threads = atoi(argv[5]);
    char *text = read_text(argv[3]);
    if (!text || n_gen < 2 || threads < 1) {
        fprintf(stderr, "llamacpp-peer: cannot read %s, or N_GEN < 2, or THREADS < 1\n", argv[3]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(argv[1]); /* the Vulkan and CPU backends are plug-ins */
    llama_backend_init();

    /* ggml's Vulkan backend skips CPU devices (lavapipe) unless GGML_VK_VISIBLE_DEVICES names
     * them, and then every layer stays on the CPU without a word: refuse to time that */
    int gpus = 0;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) {
            printf("llama.cpp device %s: %s\n", ggml_backend_dev_name(d), ggml_backend_dev_description(d));
            gpus++;
        }
    }
    if (!gpus) {
        fprintf(stderr, "llamacpp-peer: llama.cpp found no Vulkan GPU (for lavapipe: GGML_VK_VISIBLE_DEVICES=0)\n");
        return 1;
    }

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = -1; /* every layer on the GPU */
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) {
        fprintf(stderr, "llamacpp-peer: llama.cpp could not load %s\n", argv[2]);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    const int32_t len = (int32_t)strlen(text);
    /* a byte-fallback vocabulary can give more tokens than bytes: ask again with the count */
    int32_t n = llama_tokenize(vocab, text, len, NULL, 0, true, false);
    n = n < 0 ? -n : n;
    llama_token *toks = n > 0 ? malloc((size_t)n * sizeof(llama_token)) : NULL;
    if (!toks || llama_tokenize(vocab, text, len, toks, n, true, false) != n) {
        fprintf(stderr, "llamacpp-peer: the prompt gave no tokens\n");
        return 1;
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n + n_gen + 16);
    cp.n_batch = (uint32_t)(n > 512 ? n : 512);
    cp.n_threads = cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llamacpp-peer: llama.cpp could not make a context\n");
        return 1;
    }

    /* warm-up, as anygpt-bench-llm's: pages the weights in, builds the GPU pipelines */
    llama_token warm[2] = {toks[0], toks[n > 1 ? 1 : 0]};
    if (llama_decode(ctx, llama_batch_get_one(warm, 2)) != 0) {
        fprintf(stderr, "llamacpp-peer: warm-up decode failed\n");
        return 1;
    }
    llama_memory_clear(llama_get_memory(ctx), true);

    const double t0 = now_s();
    if (llama_decode(ctx, llama_batch_get_one(toks, n)) != 0) {
        fprintf(stderr, "llamacpp-peer: prompt decode failed\n");
        return 1;
    }
    llama_token t = greedy(ctx, n_vocab);
    const double t1 = now_s();
    for (int i = 1; i < n_gen; i++) {
        if (llama_decode(ctx, llama_batch_get_one(&t, 1)) != 0) {
            fprintf(stderr, "llamacpp-peer: decode step %d failed\n", i);
            return 1;
        }
        t = greedy(ctx, n_vocab);
    }
    const double t2 = now_s();
    printf("llama.cpp prefill %d tokens: %.2f tok/s (includes the first sample)\n", n, n / (t1 - t0));
    printf("llama.cpp decode %d tokens: %.2f tok/s\n", n_gen - 1, (n_gen - 1) / (t2 - t1));
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(toks);
    free(text);
    return 0;
}
