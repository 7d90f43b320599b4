/* Internal layout of the text tokenizer, shared by its source files. */
#ifndef AG_TEXT_INTERNAL_H
#define AG_TEXT_INTERNAL_H

#include "anygpt/text.h"

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

/* Open-addressing table of token ids keyed by their strings. */
typedef struct ag_text_strmap {
    int32_t *slots; /* -1 empty */
    uint32_t mask;
} ag_text_strmap;

/* Trie of the added-token strings over code points: edges in a hash table keyed (node, cp). */
typedef struct ag_text_trie {
    int32_t *term;   /* per node: token id ending here, or -1 */
    int32_t n_nodes, cap_nodes;
    uint64_t *ekey;  /* (node << 32 | cp) + 1; 0 = empty slot */
    int32_t *eval;   /* child node */
    uint32_t emask;
    uint32_t n_edges;
} ag_text_trie;

struct ag_text_tokenizer {
    int32_t n;
    char *arena;      /* all token strings, back to back */
    uint32_t *off, *len;
    float *score;
    uint8_t *type;
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos;
    ag_text_prefix_mode mode;
    ag_text_strmap map;
    int32_t byte_id[256];
    bool byte_fallback;
    bool has_unused;
    int32_t space_id;  /* NORMAL piece "▁", or -1 */
    ag_text_trie trie;
    int8_t *mod;       /* per id: ag_modality */
    int32_t *code;     /* per id: code index or -1 */
    int32_t *mod_ids[4];
    int32_t mod_n[4];
    char label[96];
};

static inline const char *ag_text_str(const struct ag_text_tokenizer *t, int32_t id) { return t->arena + t->off[id]; }

/* FNV-1a; good enough for token strings. */
uint32_t ag_text_hash(const char *s, size_t n);
/* Id of the token with exactly this string, or -1. */
int32_t ag_text_map_find(const struct ag_text_tokenizer *t, const char *s, size_t n);
/* Child of node for code point cp, or -1. */
int32_t ag_text_trie_child(const ag_text_trie *tr, int32_t node, uint32_t cp);

#endif
