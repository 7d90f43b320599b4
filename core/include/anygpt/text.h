/* anygpt core: the LLaMA SentencePiece (BPE) text tokenizer with AnyGPT's added tokens.
 *
 * Encoding follows HF transformers' slow LlamaTokenizer (4.34, the version AnyGPT pins) on top of
 * SentencePiece 0.1.x BPE:
 *  1. added tokens (GGUF token types USER_DEFINED, CONTROL and UNKNOWN: "<sosp>", "[Human]", "<s>",
 *     "<🗣️12>" ...) split the text first, with the same left-to-right trie scan as HF's Trie.split;
 *  2. each remaining text segment goes through SentencePiece: spaces -> U+2581, the dummy "▁"
 *     prefix (see ag_text_prefix_mode), merges of the highest-scoring adjacent pair (leftmost on
 *     ties), resegmentation of UNUSED pieces, byte fallback <0xNN> for what the vocab lacks;
 *  3. BOS (and EOS) are added when the vocab says so and the caller asks for special tokens.
 * Decoding follows SentencePiece: "▁" -> ' ', byte tokens -> raw bytes (invalid UTF-8 -> U+FFFD
 * per byte), control tokens invisible, the first piece's dummy-prefix space removed.
 *
 * A tokenizer is immutable after creation and may be used from several threads at once;
 * a stream (ag_text_stream) belongs to one thread. */
#ifndef ANYGPT_TEXT_H
#define ANYGPT_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "anygpt/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tokenizer.ggml.token_type values (SentencePiece's piece types). */
typedef enum ag_token_type {
    AG_TOKEN_NORMAL = 1,
    AG_TOKEN_UNKNOWN = 2,
    AG_TOKEN_CONTROL = 3,
    AG_TOKEN_USER_DEFINED = 4,
    AG_TOKEN_UNUSED = 5,
    AG_TOKEN_BYTE = 6
} ag_token_type;

/* Where the SentencePiece dummy prefix "▁" goes.
 * LEGACY: HF LlamaTokenizer(legacy=True), the default of transformers 4.34 when
 *   tokenizer_config.json has no "legacy" key: every text segment between added tokens is encoded
 *   as its own SentencePiece call, so each gets a "▁" ("<eoh> [MMGPT]" -> <eoh> "▁▁" ...).
 * FIRST: HF legacy=False: one "▁" before the whole text (literal U+2581 in the text become
 *   spaces first), none after an added token; a leading "▁" piece followed directly by a
 *   CONTROL/UNKNOWN token is dropped.
 * NONE: no dummy prefix at all (GGUF tokenizer.ggml.add_space_prefix = false). */
typedef enum ag_text_prefix_mode {
    AG_TEXT_PREFIX_LEGACY = 0,
    AG_TEXT_PREFIX_FIRST = 1,
    AG_TEXT_PREFIX_NONE = 2
} ag_text_prefix_mode;

typedef enum ag_modality {
    AG_MODALITY_NONE = 0,
    AG_MODALITY_SPEECH = 1, /* <🗣️N>: '<' U+1F5E3 U+FE0F digits '>' */
    AG_MODALITY_IMAGE = 2,  /* <👀N>: '<' U+1F440 digits '>' */
    AG_MODALITY_MUSIC = 3   /* <🎶N>: '<' U+1F3B6 digits '>' */
} ag_modality;

typedef struct ag_text_tokenizer ag_text_tokenizer;

/* A vocabulary given as plain arrays (what the GGUF keys hold). Everything is copied. */
typedef struct ag_text_vocab_desc {
    int32_t n_tokens;
    const char *const *tokens; /* token strings, UTF-8 */
    const size_t *token_lens;  /* byte lengths, or NULL when the strings are NUL-terminated */
    const float *scores;       /* NULL: all 0 */
    const int32_t *types;      /* ag_token_type values; NULL: all NORMAL */
    int32_t bos_id, eos_id, unk_id, pad_id; /* -1: none */
    bool add_bos, add_eos;
    ag_text_prefix_mode prefix_mode;
    const char *label; /* names the vocab in error messages; NULL: "vocab" */
} ag_text_vocab_desc;

/* Build from arrays. NULL with ag_last_error() on any inconsistency (bad UTF-8, duplicate
 * strings, malformed or incomplete byte tokens, ids out of range ...). */
ag_text_tokenizer *ag_text_tokenizer_new(const ag_text_vocab_desc *desc);
/* Build from a GGUF's llama.cpp tokenizer keys: tokenizer.ggml.model = "llama",
 * tokenizer.ggml.tokens / scores / token_type, tokenizer.ggml.{bos,eos,unknown,padding}_token_id,
 * tokenizer.ggml.add_bos_token (default true), tokenizer.ggml.add_eos_token (default false),
 * tokenizer.ggml.add_space_prefix (default true), and this project's
 * anygpt.tokenizer.hf_legacy (bool, default true: AG_TEXT_PREFIX_LEGACY; false: FIRST). */
ag_text_tokenizer *ag_text_tokenizer_from_gguf(const ag_gguf *f);
void ag_text_tokenizer_free(ag_text_tokenizer *t);

/* Changes the prefix mode (not thread-safe against concurrent encodes). */
void ag_text_tokenizer_set_prefix_mode(ag_text_tokenizer *t, ag_text_prefix_mode mode);
ag_text_prefix_mode ag_text_tokenizer_prefix_mode(const ag_text_tokenizer *t);

int32_t ag_text_n_tokens(const ag_text_tokenizer *t);
int32_t ag_text_bos(const ag_text_tokenizer *t); /* -1 when the vocab has none */
int32_t ag_text_eos(const ag_text_tokenizer *t);
int32_t ag_text_unk(const ag_text_tokenizer *t);
int32_t ag_text_pad(const ag_text_tokenizer *t);
bool ag_text_add_bos(const ag_text_tokenizer *t);
/* Token string (not NUL-terminated; *len set) and type; NULL / 0 for an id out of range. */
const char *ag_text_token_str(const ag_text_tokenizer *t, int32_t id, size_t *len);
ag_token_type ag_text_token_type(const ag_text_tokenizer *t, int32_t id);
float ag_text_token_score(const ag_text_tokenizer *t, int32_t id);
/* Id of the token whose string is exactly str (len bytes; (size_t)-1: NUL-terminated); -1 if none. */
int32_t ag_text_token_id(const ag_text_tokenizer *t, const char *str, size_t len);

/* Modality tokens, parsed from the token strings at load. Returns the modality of id and its code
 * index (N in <🗣️N>) in *code; AG_MODALITY_NONE for every other token. */
ag_modality ag_text_token_modality(const ag_text_tokenizer *t, int32_t id, int32_t *code);
/* Id of the token for (modality, code); -1 if the vocab lacks it. */
int32_t ag_text_modality_token(const ag_text_tokenizer *t, ag_modality m, int32_t code);
/* 1 + the largest code present for the modality (0 when none). */
int32_t ag_text_modality_codes(const ag_text_tokenizer *t, ag_modality m);

/* Encode len bytes of UTF-8 (invalid bytes are taken as U+FFFD, like SentencePiece). With
 * add_special, BOS / EOS are added as the vocab's add_bos / add_eos say. Writes at most cap ids
 * and returns how many the full encoding has (call again with a bigger buffer when that exceeds
 * cap); -1 with ag_last_error() on failure. */
int64_t ag_text_encode(const ag_text_tokenizer *t, const char *text, size_t len, bool add_special, int32_t *out,
                       size_t cap);
/* Same, into a malloc'd array the caller frees. Returns the count or -1. */
int64_t ag_text_encode_alloc(const ag_text_tokenizer *t, const char *text, size_t len, bool add_special,
                             int32_t **out);

/* Decode flags. */
#define AG_TEXT_DECODE_SKIP_ADDED 1u    /* USER_DEFINED tokens (modality, role strings) produce nothing */
#define AG_TEXT_DECODE_KEEP_SPACE 2u    /* keep the first piece's dummy-prefix space */

/* Decode ids to UTF-8. Writes at most cap bytes, NUL-terminated when cap > 0 (the terminator
 * is not counted), and returns the full length; -1 with ag_last_error() for an id out of range. */
int64_t ag_text_decode(const ag_text_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char *out,
                       size_t cap);

/* Streaming detokenizer: feed ids one at a time, get back only complete UTF-8 characters; bytes
 * of a character split across byte tokens are held until it is complete. The concatenation of
 * every push and the final flush equals ag_text_decode of the same ids. */
typedef struct ag_text_stream ag_text_stream;
ag_text_stream *ag_text_stream_new(const ag_text_tokenizer *t, unsigned flags);
void ag_text_stream_free(ag_text_stream *s);
/* Forget held bytes and start a new text (the next piece's leading space is stripped again). */
void ag_text_stream_reset(ag_text_stream *s);
/* Returns the number of bytes now ready at *out (valid until the next call on s); -1 on error. */
int64_t ag_text_stream_push(ag_text_stream *s, int32_t id, const char **out);
/* End of text: held bytes that never completed a character come out as U+FFFD each. */
int64_t ag_text_stream_flush(ag_text_stream *s, const char **out);

#ifdef __cplusplus
}
#endif
#endif
