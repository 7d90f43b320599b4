/* Text tokenizer: building from arrays (validated), token lookups, modality classification. */
#include "text_internal.h"
#include "utf8.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t ag_text_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int32_t ag_text_map_find(const struct ag_text_tokenizer *t, const char *s, size_t n)
{
    uint32_t i = ag_text_hash(s, n) & t->map.mask;
    for (;;) {
        int32_t id = t->map.slots[i];
        if (id < 0)
            return -1;
        if (t->len[id] == n && memcmp(ag_text_str(t, id), s, n) == 0)
            return id;
        i = (i + 1) & t->map.mask;
    }
}

/* ---------------- trie of added tokens ---------------- */

static uint32_t edge_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

int32_t ag_text_trie_child(const ag_text_trie *tr, int32_t node, uint32_t cp)
{
    if (!tr->ekey)
        return -1;
    uint64_t k = (((uint64_t)(uint32_t)node << 32) | cp) + 1;
    uint32_t i = edge_hash(k) & tr->emask;
    for (;;) {
        if (tr->ekey[i] == 0)
            return -1;
        if (tr->ekey[i] == k)
            return tr->eval[i];
        i = (i + 1) & tr->emask;
    }
}

static int trie_new_node(ag_text_trie *tr)
{
    if (tr->n_nodes == tr->cap_nodes) {
        int32_t nc = tr->cap_nodes ? tr->cap_nodes * 2 : 64;
        int32_t *nt = realloc(tr->term, (size_t)nc * sizeof *nt);
        if (!nt)
            return -1;
        tr->term = nt;
        tr->cap_nodes = nc;
    }
    tr->term[tr->n_nodes] = -1;
    return tr->n_nodes++;
}

/* Edge table sized once for the total code points of all added tokens (an upper bound). */
static int trie_build(struct ag_text_tokenizer *t)
{
    ag_text_trie *tr = &t->trie;
    size_t total = 0;
    for (int32_t id = 0; id < t->n; id++)
        if (t->type[id] == AG_TOKEN_USER_DEFINED || t->type[id] == AG_TOKEN_CONTROL || t->type[id] == AG_TOKEN_UNKNOWN)
            total += t->len[id];
    uint32_t cap = 16;
    while (cap < total * 2 + 16)
        cap *= 2;
    tr->ekey = calloc(cap, sizeof *tr->ekey);
    tr->eval = malloc(cap * sizeof *tr->eval);
    if (!tr->ekey || !tr->eval || trie_new_node(tr) < 0)
        return -1;
    tr->emask = cap - 1;
    for (int32_t id = 0; id < t->n; id++) {
        uint8_t ty = t->type[id];
        if (ty != AG_TOKEN_USER_DEFINED && ty != AG_TOKEN_CONTROL && ty != AG_TOKEN_UNKNOWN)
            continue;
        const unsigned char *s = (const unsigned char *)ag_text_str(t, id);
        size_t n = t->len[id], i = 0;
        int32_t node = 0;
        while (i < n) {
            uint32_t cp;
            int l = ag_utf8_decode(s + i, n - i, &cp); /* strings were validated */
            i += (size_t)l;
            int32_t child = ag_text_trie_child(tr, node, cp);
            if (child < 0) {
                child = trie_new_node(tr);
                if (child < 0)
                    return -1;
                uint64_t k = (((uint64_t)(uint32_t)node << 32) | cp) + 1;
                uint32_t j = edge_hash(k) & tr->emask;
                while (tr->ekey[j] != 0)
                    j = (j + 1) & tr->emask;
                tr->ekey[j] = k;
                tr->eval[j] = child;
                tr->n_edges++;
            }
            node = child;
        }
        tr->term[node] = id;
    }
    return 0;
}

/* ---------------- modality tokens ---------------- */

static const char *const mod_prefix[4] = {
    NULL,
    "<\xF0\x9F\x97\xA3\xEF\xB8\x8F", /* <🗣️ : U+1F5E3 U+FE0F */
    "<\xF0\x9F\x91\x80",             /* <👀 : U+1F440 */
    "<\xF0\x9F\x8E\xB6",             /* <🎶 : U+1F3B6 */
};

/* "<" prefix digits ">" with a canonical decimal (no sign, no leading zeros) below 2^31. */
static int parse_modality(const char *s, size_t n, int32_t *code)
{
    for (int m = 1; m <= 3; m++) {
        size_t pl = strlen(mod_prefix[m]);
        if (n < pl + 2 || memcmp(s, mod_prefix[m], pl) != 0 || s[n - 1] != '>')
            continue;
        const char *d = s + pl;
        size_t nd = n - pl - 1;
        if (nd > 10 || (nd > 1 && d[0] == '0'))
            return 0;
        int64_t v = 0;
        for (size_t i = 0; i < nd; i++) {
            if (d[i] < '0' || d[i] > '9')
                return 0;
            v = v * 10 + (d[i] - '0');
        }
        if (v > INT32_MAX)
            return 0;
        *code = (int32_t)v;
        return m;
    }
    return 0;
}

static int modality_build(struct ag_text_tokenizer *t)
{
    t->mod = calloc((size_t)(uint32_t)t->n, 1);
    t->code = malloc((size_t)(uint32_t)t->n * sizeof *t->code);
    if (!t->mod || !t->code) {
        ag_set_error("%s: out of memory", t->label);
        return -1;
    }
    for (int32_t id = 0; id < t->n; id++) {
        int32_t c = -1;
        int m = parse_modality(ag_text_str(t, id), t->len[id], &c);
        t->mod[id] = (int8_t)m;
        t->code[id] = m ? c : -1;
        if (m && c + 1 > t->mod_n[m]) {
            if (c >= t->n * 4 + 65536) { /* a code far beyond the vocab: keep the table bounded */
                ag_set_error("%s: modality token %d ('%.*s') has an implausible code", t->label, id, (int)t->len[id],
                             ag_text_str(t, id));
                return -1;
            }
            t->mod_n[m] = c + 1;
        }
    }
    for (int m = 1; m <= 3; m++) {
        if (!t->mod_n[m])
            continue;
        t->mod_ids[m] = malloc((size_t)(uint32_t)t->mod_n[m] * sizeof(int32_t));
        if (!t->mod_ids[m]) {
            ag_set_error("%s: out of memory", t->label);
            return -1;
        }
        for (int32_t c = 0; c < t->mod_n[m]; c++)
            t->mod_ids[m][c] = -1;
    }
    for (int32_t id = 0; id < t->n; id++)
        if (t->mod[id])
            t->mod_ids[t->mod[id]][t->code[id]] = id;
    return 0;
}

/* ---------------- creation ---------------- */

void ag_text_tokenizer_free(ag_text_tokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->map.slots);
    free(t->trie.term);
    free(t->trie.ekey);
    free(t->trie.eval);
    free(t->mod);
    free(t->code);
    for (int m = 0; m < 4; m++)
        free(t->mod_ids[m]);
    free(t);
}

/* "<0xHH>" -> byte value, or -1. */
static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

#define FAIL(...)                                                                                                     \
    do {                                                                                                              \
        ag_set_error(__VA_ARGS__);                                                                                    \
        goto fail;                                                                                                    \
    } while (0)

static bool special_ok(const char *label, const char *what, int32_t id, int32_t n)
{
    if (id < -1 || id >= n) {
        ag_set_error("%s: %s %d out of range (vocab has %d tokens)", label, what, id, n);
        return false;
    }
    return true;
}

ag_text_tokenizer *ag_text_tokenizer_new(const ag_text_vocab_desc *d)
{
    if (!d) {
        ag_set_error("ag_text_tokenizer_new: NULL description");
        return NULL;
    }
    const char *label = d->label ? d->label : "vocab";
    if (d->n_tokens <= 0 || d->n_tokens > (1 << 28) || !d->tokens) {
        ag_set_error("%s: vocabulary has %d tokens", label, d->n_tokens);
        return NULL;
    }
    if ((unsigned)d->prefix_mode > AG_TEXT_PREFIX_NONE) {
        ag_set_error("%s: unknown prefix mode %d", label, (int)d->prefix_mode);
        return NULL;
    }
    if (!special_ok(label, "BOS id", d->bos_id, d->n_tokens) || !special_ok(label, "EOS id", d->eos_id, d->n_tokens) ||
        !special_ok(label, "unknown-token id", d->unk_id, d->n_tokens) ||
        !special_ok(label, "padding id", d->pad_id, d->n_tokens))
        return NULL;
    if (d->add_bos && d->bos_id < 0) {
        ag_set_error("%s: add_bos_token is set but there is no BOS id", label);
        return NULL;
    }
    if (d->add_eos && d->eos_id < 0) {
        ag_set_error("%s: add_eos_token is set but there is no EOS id", label);
        return NULL;
    }

    ag_text_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        ag_set_error("%s: out of memory", label);
        return NULL;
    }
    snprintf(t->label, sizeof t->label, "%s", label);
    const int32_t n = d->n_tokens;
    t->n = n;
    t->bos = d->bos_id;
    t->eos = d->eos_id;
    t->unk = d->unk_id;
    t->pad = d->pad_id;
    t->add_bos = d->add_bos;
    t->add_eos = d->add_eos;
    t->mode = d->prefix_mode;
    t->space_id = -1;
    for (int i = 0; i < 256; i++)
        t->byte_id[i] = -1;

    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n);
    if (!t->off || !t->len || !t->score || !t->type)
        FAIL("%s: out of memory", label);

    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *s = d->tokens[i];
        if (!s)
            FAIL("%s: token %d is NULL", label, i);
        size_t l = d->token_lens ? d->token_lens[i] : strlen(s);
        if (l == 0)
            FAIL("%s: token %d is an empty string", label, i);
        if (l > 4096)
            FAIL("%s: token %d is %zu bytes long (at most 4096)", label, i, l);
        if (!ag_utf8_valid(s, l))
            FAIL("%s: token %d is not valid UTF-8", label, i);
        total += l;
        if (total > (size_t)UINT32_MAX - 1)
            FAIL("%s: token strings too large", label);
    }
    t->arena = malloc(total + 1);
    if (!t->arena)
        FAIL("%s: out of memory", label);
    size_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
        memcpy(t->arena + pos, d->tokens[i], l);
        t->off[i] = (uint32_t)pos;
        t->len[i] = (uint32_t)l;
        pos += l;
        float sc = d->scores ? d->scores[i] : 0.0f;
        if (sc != sc)
            FAIL("%s: token %d has a NaN score", label, i);
        t->score[i] = sc;
        int32_t ty = d->types ? d->types[i] : AG_TOKEN_NORMAL;
        if (ty < AG_TOKEN_NORMAL || ty > AG_TOKEN_BYTE)
            FAIL("%s: token %d has unknown type %d (expected 1..6)", label, i, ty);
        t->type[i] = (uint8_t)ty;
    }
    t->arena[pos] = 0;

    /* string -> id map; duplicates would make encoding ambiguous */
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2u)
        cap *= 2;
    t->map.slots = malloc(cap * sizeof(int32_t));
    if (!t->map.slots)
        FAIL("%s: out of memory", label);
    memset(t->map.slots, 0xff, cap * sizeof(int32_t));
    t->map.mask = cap - 1;
    for (int32_t i = 0; i < n; i++) {
        uint32_t h = ag_text_hash(ag_text_str(t, i), t->len[i]) & t->map.mask;
        while (t->map.slots[h] >= 0) {
            int32_t o = t->map.slots[h];
            if (t->len[o] == t->len[i] && memcmp(ag_text_str(t, o), ag_text_str(t, i), t->len[i]) == 0)
                FAIL("%s: tokens %d and %d are the same string '%.*s'", label, o, i, (int)t->len[i],
                     ag_text_str(t, i));
            h = (h + 1) & t->map.mask;
        }
        t->map.slots[h] = i;
    }

    /* byte tokens: all 256 or none */
    int n_bytes = 0;
    for (int32_t i = 0; i < n; i++) {
        if (t->type[i] == AG_TOKEN_UNUSED)
            t->has_unused = true;
        if (t->type[i] != AG_TOKEN_BYTE)
            continue;
        int b = parse_byte_token(ag_text_str(t, i), t->len[i]);
        if (b < 0)
            FAIL("%s: byte token %d is '%.*s', not <0xNN>", label, i, (int)t->len[i], ag_text_str(t, i));
        if (t->byte_id[b] >= 0)
            FAIL("%s: byte 0x%02X has two tokens (%d and %d)", label, b, t->byte_id[b], i);
        t->byte_id[b] = i;
        n_bytes++;
    }
    if (n_bytes != 0 && n_bytes != 256)
        FAIL("%s: %d byte tokens <0xNN>; byte fallback needs all 256", label, n_bytes);
    t->byte_fallback = n_bytes == 256;
    if (t->unk >= 0 && t->type[t->unk] == AG_TOKEN_BYTE)
        FAIL("%s: unknown-token id %d is a byte token", label, t->unk);
    if (!t->byte_fallback && t->unk < 0)
        FAIL("%s: no byte tokens and no unknown token: some text could not be encoded", label);
    int32_t sp = ag_text_map_find(t, "\xE2\x96\x81", 3);
    if (sp >= 0 && t->type[sp] == AG_TOKEN_NORMAL)
        t->space_id = sp;

    if (trie_build(t) < 0)
        FAIL("%s: out of memory", label);
    if (modality_build(t) < 0)
        goto fail;
    return t;
fail:
    ag_text_tokenizer_free(t);
    return NULL;
}

/* ---------------- accessors ---------------- */

void ag_text_tokenizer_set_prefix_mode(ag_text_tokenizer *t, ag_text_prefix_mode mode)
{
    if (t && (unsigned)mode <= AG_TEXT_PREFIX_NONE)
        t->mode = mode;
}
ag_text_prefix_mode ag_text_tokenizer_prefix_mode(const ag_text_tokenizer *t) { return t ? t->mode : AG_TEXT_PREFIX_LEGACY; }
int32_t ag_text_n_tokens(const ag_text_tokenizer *t) { return t ? t->n : 0; }
int32_t ag_text_bos(const ag_text_tokenizer *t) { return t ? t->bos : -1; }
int32_t ag_text_eos(const ag_text_tokenizer *t) { return t ? t->eos : -1; }
int32_t ag_text_unk(const ag_text_tokenizer *t) { return t ? t->unk : -1; }
int32_t ag_text_pad(const ag_text_tokenizer *t) { return t ? t->pad : -1; }
bool ag_text_add_bos(const ag_text_tokenizer *t) { return t && t->add_bos; }

const char *ag_text_token_str(const ag_text_tokenizer *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->len[id];
    return ag_text_str(t, id);
}

ag_token_type ag_text_token_type(const ag_text_tokenizer *t, int32_t id)
{
    return (t && id >= 0 && id < t->n) ? (ag_token_type)t->type[id] : (ag_token_type)0;
}

float ag_text_token_score(const ag_text_tokenizer *t, int32_t id)
{
    return (t && id >= 0 && id < t->n) ? t->score[id] : 0.0f;
}

int32_t ag_text_token_id(const ag_text_tokenizer *t, const char *str, size_t len)
{
    if (!t || !str)
        return -1;
    if (len == (size_t)-1)
        len = strlen(str);
    return ag_text_map_find(t, str, len);
}

ag_modality ag_text_token_modality(const ag_text_tokenizer *t, int32_t id, int32_t *code)
{
    if (!t || id < 0 || id >= t->n || !t->mod[id]) {
        if (code)
            *code = -1;
        return AG_MODALITY_NONE;
    }
    if (code)
        *code = t->code[id];
    return (ag_modality)t->mod[id];
}

int32_t ag_text_modality_token(const ag_text_tokenizer *t, ag_modality m, int32_t code)
{
    if (!t || m < AG_MODALITY_SPEECH || m > AG_MODALITY_MUSIC || code < 0 || code >= t->mod_n[m])
        return -1;
    return t->mod_ids[m][code];
}

int32_t ag_text_modality_codes(const ag_text_tokenizer *t, ag_modality m)
{
    if (!t || m < AG_MODALITY_SPEECH || m > AG_MODALITY_MUSIC)
        return 0;
    return t->mod_n[m];
}
