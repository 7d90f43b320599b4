/* A user's text through the LLM's tokenizer and prompt builder (core/text, core/models/
 * session_prompt.c), on the tests' SentencePiece vocabulary (AG_FUZZ_VOCAB: tests/text's
 * spm_vocab.gguf). The first byte picks the task; the text is encoded in each prefix mode and
 * decoded (whole and streamed), and the input's bytes are also taken as token ids (decoded) and
 * as speech codes (a prompt with a modality item). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/session.h"
#include "anygpt/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ag_text_tokenizer *g_vocab;
static ag_gguf *g_vocab_file;

/* at exit: the leak checker sees the vocabulary freed, not left behind */
static void vocab_free(void)
{
    ag_text_tokenizer_free(g_vocab);
    ag_gguf_close(g_vocab_file);
}

static ag_text_tokenizer *vocab(void)
{
    if (g_vocab)
        return g_vocab;
    atexit(vocab_free);
    const char *path = getenv("AG_FUZZ_VOCAB");
    if (!path || !(g_vocab_file = ag_gguf_open(path)) || !(g_vocab = ag_text_tokenizer_from_gguf(g_vocab_file))) {
        fprintf(stderr, "fuzz_text: set AG_FUZZ_VOCAB to a tokenizer GGUF (tests/text/spm_vocab.gguf): %s\n",
                path ? ag_last_error() : "unset");
        abort();
    }
    return g_vocab;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_text_tokenizer *t = vocab();
    if (size < 1)
        return 0;
    ag_task task = (ag_task)(data[0] % 8);
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    size_t len = size - 1;
    int32_t *ids = NULL;
    for (int mode = 0; mode < 3; mode++) {
        ag_text_tokenizer_set_prefix_mode(t, (ag_text_prefix_mode)mode);
        ag_clear_error();
        int64_t n = ag_text_encode_alloc(t, text, len, mode == 1, &ids);
        if (n < 0) {
            fz_expect_error("ag_text_encode_alloc");
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= ag_text_n_tokens(t))
                abort();
        ag_clear_error();
        int64_t need = ag_text_decode(t, ids, (size_t)n, 0, NULL, 0);
        char *out = need >= 0 ? malloc((size_t)need + 1) : NULL;
        if (need < 0 || !out || ag_text_decode(t, ids, (size_t)n, 0, out, (size_t)need + 1) != need)
            abort();
        /* streamed decoding gives the same text */
        ag_text_stream *s = ag_text_stream_new(t, 0);
        size_t got = 0;
        const char *piece;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = ag_text_stream_push(s, ids[i], &piece);
            if (k < 0 || got + (size_t)k > (size_t)need || memcmp(out + got, piece, (size_t)k))
                abort();
            got += (size_t)k;
        }
        int64_t k = ag_text_stream_flush(s, &piece);
        if (k < 0 || got + (size_t)k != (size_t)need || memcmp(out + got, piece, (size_t)k)) {
            fprintf(stderr, "fuzz_text: streamed decode differs from ag_text_decode\n");
            abort();
        }
        ag_text_stream_free(s);
        free(out);
        free(ids);
        ids = NULL;
    }
    /* the bytes as ids (in range) */
    size_t n_ids = len / 2;
    int32_t *raw = malloc((n_ids ? n_ids : 1) * sizeof *raw);
    for (size_t i = 0; i < n_ids; i++)
        raw[i] = (int32_t)(((uint32_t)(uint8_t)text[2 * i] | (uint32_t)(uint8_t)text[2 * i + 1] << 8) %
                           (uint32_t)ag_text_n_tokens(t));
    char buf[256];
    if (ag_text_decode(t, raw, n_ids, AG_TEXT_DECODE_SKIP_ADDED, buf, sizeof buf) < 0)
        abort();
    /* a prompt with the text as the message and the ids as speech codes */
    ag_prompt_desc d = {0};
    d.task = task;
    d.text = text;
    d.modality = AG_MODALITY_SPEECH;
    d.codes = raw;
    d.n_codes = n_ids;
    ag_clear_error();
    char *p = ag_prompt_build(&d);
    if (!p)
        fz_expect_error("ag_prompt_build");
    free(p);
    free(raw);
    free(text);
    return 0;
}
