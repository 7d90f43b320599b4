/* SentencePiece tokenizer.model (ModelProto protobuf): the pieces with score and type, and the
 * trainer/normalizer fields a converter needs. Minimal, bounds-checked wire-format reader. */
#ifndef AG_CONVERT_SPM_MODEL_H
#define AG_CONVERT_SPM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ModelProto.SentencePiece.Type values (also llama.cpp's token types). */
enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4, SPM_UNUSED = 5, SPM_BYTE = 6 };

typedef struct {
    char *piece; /* UTF-8, NUL-terminated */
    float score;
    int type;
} spm_piece;

typedef struct {
    spm_piece *pieces;
    size_t n;
    /* TrainerSpec */
    int model_type; /* 1 unigram, 2 bpe, 3 word, 4 char */
    int32_t unk_id, bos_id, eos_id, pad_id;
    bool byte_fallback;
    /* NormalizerSpec */
    bool add_dummy_prefix, remove_extra_whitespaces;
} spm_model;

int spm_model_load(spm_model *m, const char *path);
int spm_model_parse(spm_model *m, const uint8_t *data, size_t size, const char *label);
void spm_model_free(spm_model *m);

#endif
