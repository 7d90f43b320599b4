/* The LLaMA vocabulary as llama.cpp's converter builds it (convert_hf_to_gguf.py,
 * _create_vocab_sentencepiece + gguf-py SpecialVocab): SentencePiece pieces, then AnyGPT's added
 * tokens, plus the special token ids and add_bos/add_eos flags. */
#ifndef AG_CONVERT_LLM_VOCAB_H
#define AG_CONVERT_LLM_VOCAB_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf_stream.h"

enum { SPECIAL_BOS, SPECIAL_EOS, SPECIAL_UNK, SPECIAL_SEP, SPECIAL_PAD, SPECIAL_MASK, SPECIAL_COUNT };

typedef struct {
    char **tokens;
    float *scores;
    int32_t *types;
    int64_t n;        /* == config vocab_size */
    int64_t n_spm;    /* pieces from tokenizer.model */
    int64_t n_added;  /* ids n_spm..n_spm+n_added-1; the rest (if any) are [PAD<id>] */
    int64_t special[SPECIAL_COUNT]; /* -1 when unknown */
    int add_bos, add_eos, add_space_prefix; /* -1 absent, 0/1 */
    char *chat_template;
} llm_vocab;

/* dir: the HF folder; vocab_size from config.json (must equal the embedding rows). */
int llm_vocab_load(llm_vocab *v, const char *dir, int64_t vocab_size);
int llm_vocab_write_kvs(const llm_vocab *v, gs_writer *w);
void llm_vocab_free(llm_vocab *v);

#endif
