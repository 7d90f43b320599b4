/* The empty prompt as StableUnCLIPImg2ImgPipeline tokenizes it: CLIPTokenizer("") is bos, eos;
 * padding="max_length" to model_max_length appends the pad token. The three tokens and the length
 * come from the tokenizer folder (tokenizer_config.json, special_tokens_map.json, vocab.json,
 * added_tokens.json), never from text_encoder/config.json, whose bos/eos/pad ids are
 * CLIPTextConfig defaults (SD 2.x: pad "!" is 0 while its config says pad_token_id 1). */
#include "seed_unclip.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Optional JSON file: *out NULL when absent; -1 when present but unreadable. */
static int parse_opt(const char *dir, const char *name, json_value **out)
{
    char p[4096];
    cv_nm(p, sizeof p, "%s/%s", dir, name);
    *out = NULL;
    if (!is_file(p))
        return 0;
    *out = json_parse_file(p);
    return *out ? 0 : -1;
}

/* A special token as a file writes it: a string, or an AddedToken dict with "content". */
static int token_value(const json_value *v, const char *file, const char *key, const char **out)
{
    *out = NULL;
    if (!v)
        return 0;
    if (v->kind == JSON_STRING)
        *out = v->str;
    else if (v->kind == JSON_OBJECT)
        *out = json_get_str(v, "content");
    if (!*out) {
        ag_set_error("tokenizer/%s: '%s' is %s, not a token", file, key,
                     v->kind == JSON_NULL ? "null" : "neither a string nor a token object");
        return -1;
    }
    return 0;
}

/* The token string of key (bos_token, eos_token, pad_token): both files must agree; absent from
 * both: CLIPTokenizer's default. */
static int special(const json_value *tc, const json_value *sm, const char *key, const char *def, const char **out)
{
    const char *a, *b;
    if (token_value(tc ? json_get(tc, key) : NULL, "tokenizer_config.json", key, &a) ||
        token_value(sm ? json_get(sm, key) : NULL, "special_tokens_map.json", key, &b))
        return -1;
    if (a && b && strcmp(a, b)) {
        ag_set_error("tokenizer: %s is '%s' in tokenizer_config.json but '%s' in special_tokens_map.json", key, a, b);
        return -1;
    }
    *out = a ? a : b ? b : def;
    return 0;
}

static bool id_in(const json_value *v, const char *s, int64_t *id)
{
    const json_value *e = v ? json_get(v, s) : NULL;
    if (!e || e->kind != JSON_NUMBER || !e->is_int)
        return false;
    *id = e->i;
    return true;
}

/* The id of token s: added_tokens_decoder of tokenizer_config.json, added_tokens.json, vocab.json
 * (the first that has it; the others must agree). */
static int token_id(const json_value *tc, const json_value *added, const json_value *vocab, const char *key,
                    const char *s, int64_t vocab_size, int32_t *out)
{
    int64_t ids[3];
    bool have[3] = {false, false, false};
    const json_value *dec = tc ? json_get(tc, "added_tokens_decoder") : NULL;
    for (size_t i = 0; dec && dec->kind == JSON_OBJECT && i < dec->n; i++) {
        const char *c = json_get_str(dec->items[i], "content");
        char *end;
        long long v = strtoll(dec->keys[i], &end, 10);
        if (c && !strcmp(c, s) && *dec->keys[i] && !*end) {
            ids[0] = v;
            have[0] = true;
            break;
        }
    }
    have[1] = id_in(added, s, &ids[1]);
    have[2] = id_in(vocab, s, &ids[2]);
    int first = have[0] ? 0 : have[1] ? 1 : have[2] ? 2 : -1;
    if (first < 0) {
        ag_set_error("tokenizer: %s '%s' is in none of vocab.json, added_tokens.json, added_tokens_decoder", key, s);
        return -1;
    }
    for (int k = first + 1; k < 3; k++)
        if (have[k] && ids[k] != ids[first]) {
            ag_set_error("tokenizer: %s '%s' has id %lld in one file and %lld in another", key, s,
                         (long long)ids[first], (long long)ids[k]);
            return -1;
        }
    if (ids[first] < 0 || ids[first] >= vocab_size) {
        ag_set_error("tokenizer: %s '%s' has id %lld, outside the text encoder's %lld embeddings", key, s,
                     (long long)ids[first], (long long)vocab_size);
        return -1;
    }
    *out = (int32_t)ids[first];
    return 0;
}

int clip_empty_prompt_ids(const char *dir, int64_t vocab_size, int32_t **ids, int64_t *n)
{
    json_value *tc = NULL, *sm = NULL, *added = NULL, *vocab = NULL;
    const char *bos, *eos, *pad;
    int32_t b, e, pd;
    int64_t len;
    int rc = -1;
    char p[4096];
    *ids = NULL;
    cv_nm(p, sizeof p, "%s/vocab.json", dir);
    if (!is_file(p)) {
        ag_set_error("%s: no vocab.json (the CLIP tokenizer files are needed for the empty prompt)", dir);
        return -1;
    }
    if (!(vocab = json_parse_file(p)) || parse_opt(dir, "tokenizer_config.json", &tc) ||
        parse_opt(dir, "special_tokens_map.json", &sm) || parse_opt(dir, "added_tokens.json", &added))
        goto out;
    if (vocab->kind != JSON_OBJECT) {
        ag_set_error("%s: not a token -> id object", p);
        goto out;
    }
    const char *cls = tc ? json_get_str(tc, "tokenizer_class") : NULL;
    if (cls && strcmp(cls, "CLIPTokenizer") && strcmp(cls, "CLIPTokenizerFast")) {
        ag_set_error("%s/tokenizer_config.json: tokenizer_class '%s' is not a CLIP tokenizer", dir, cls);
        goto out;
    }
    if (!tc || !json_get_int(tc, "model_max_length", &len) || len < 2 || len > 65536) {
        ag_set_error("%s/tokenizer_config.json: no usable model_max_length (the padded prompt length)", dir);
        goto out;
    }
    if (special(tc, sm, "bos_token", "<|startoftext|>", &bos) || special(tc, sm, "eos_token", "<|endoftext|>", &eos) ||
        special(tc, sm, "pad_token", "<|endoftext|>", &pad) ||
        token_id(tc, added, vocab, "bos_token", bos, vocab_size, &b) ||
        token_id(tc, added, vocab, "eos_token", eos, vocab_size, &e) ||
        token_id(tc, added, vocab, "pad_token", pad, vocab_size, &pd))
        goto out;
    if (!(*ids = malloc((size_t)len * sizeof **ids))) {
        ag_set_error("out of memory");
        goto out;
    }
    (*ids)[0] = b;
    (*ids)[1] = e;
    for (int64_t i = 2; i < len; i++)
        (*ids)[i] = pd;
    *n = len;
    rc = 0;
out:
    json_free(tc);
    json_free(sm);
    json_free(added);
    json_free(vocab);
    return rc;
}
