/* Vocabulary for the llama GGUF: tokens, scores, token types, special ids. */
#include "llm_vocab.h"
#include "json.h"
#include "spm_model.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int set_token(llm_vocab *v, int64_t id, const char *text, float score, int type)
{
    char *s = strdup(text);
    if (!s) {
        ag_set_error("out of memory");
        return -1;
    }
    free(v->tokens[id]);
    v->tokens[id] = s;
    v->scores[id] = score;
    v->types[id] = type;
    return 0;
}

/* convert_hf_to_gguf.py does_token_look_special(). */
static bool looks_special(const char *t)
{
    size_t n = strlen(t);
    if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") || !strcmp(t, "[@BOS@]"))
        return true;
    if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>"))
        return true;
    const char *fwl = "<\xef\xbd\x9c", *fwr = "\xef\xbd\x9c>"; /* <｜ ... ｜> */
    if (n >= 8 && !strncmp(t, fwl, 4) && !strcmp(t + n - 4, fwr))
        return true;
    return n >= 8 && !strncmp(t, "<unused", 7) && t[n - 1] == '>';
}

/* Replace every U+2581 (the SentencePiece space) by ' '. */
static char *prenormalize_spaces(const char *s)
{
    char *o = malloc(strlen(s) + 1), *q = o;
    if (!o)
        return NULL;
    while (*s) {
        if (!strncmp(s, "\xe2\x96\x81", 3)) {
            *q++ = ' ';
            s += 3;
        } else {
            *q++ = *s++;
        }
    }
    *q = 0;
    return o;
}

static int join(char *buf, size_t n, const char *dir, const char *file)
{
    if (snprintf(buf, n, "%s/%s", dir, file) >= (int)n) {
        ag_set_error("%s: path too long", dir);
        return -1;
    }
    return 0;
}

/* added_tokens.json: {"content": id, ...} -> USER_DEFINED, score -1000 (as llama.cpp). */
static int apply_added_tokens_json(llm_vocab *v, const char *path, bool *seen)
{
    json_value *j = json_parse_file(path);
    if (!j)
        return -1;
    int rc = -1;
    if (j->kind != JSON_OBJECT) {
        ag_set_error("%s: expected an object of token -> id", path);
        goto done;
    }
    for (size_t k = 0; k < j->n; k++) {
        const json_value *id = j->items[k];
        if (id->kind != JSON_NUMBER || !id->is_int || id->i < 0) {
            ag_set_error("%s: token '%s' has no valid integer id", path, j->keys[k]);
            goto done;
        }
        if (id->i >= v->n) {
            ag_set_error("%s: added token '%s' has id %lld but config.json vocab_size is %lld (the embedding "
                         "rows): ids must be below it",
                         path, j->keys[k], (long long)id->i, (long long)v->n);
            goto done;
        }
        if (seen[id->i] && id->i >= v->n_spm) {
            ag_set_error("%s: id %lld is given to two added tokens ('%s' and '%s')", path, (long long)id->i,
                         v->tokens[id->i], j->keys[k]);
            goto done;
        }
        if (set_token(v, id->i, j->keys[k], -1000.0f, SPM_USER_DEFINED))
            goto done;
        seen[id->i] = true;
    }
    rc = 0;
done:
    json_free(j);
    return rc;
}

/* tokenizer_config.json added_tokens_decoder: {"id": {"content", "special"}}: special or
 * special-looking -> CONTROL, else USER_DEFINED with spaces pre-normalized; score -1000. */
static int apply_added_tokens_decoder(llm_vocab *v, const json_value *tc, const char *path, bool *seen)
{
    const json_value *dec = json_get(tc, "added_tokens_decoder");
    if (!dec)
        return 0;
    if (dec->kind != JSON_OBJECT) {
        ag_set_error("%s: added_tokens_decoder is not an object", path);
        return -1;
    }
    for (size_t k = 0; k < dec->n; k++) {
        char *end;
        long long id = strtoll(dec->keys[k], &end, 10);
        const char *content = json_get_str(dec->items[k], "content");
        if (*end || end == dec->keys[k] || id < 0 || !content) {
            ag_set_error("%s: bad added_tokens_decoder entry '%s'", path, dec->keys[k]);
            return -1;
        }
        if (id >= v->n) {
            ag_set_error("%s: added token '%s' has id %lld, beyond vocab_size %lld", path, content, id,
                         (long long)v->n);
            return -1;
        }
        bool special = false;
        json_get_bool(dec->items[k], "special", &special);
        if (special || looks_special(content)) {
            if (set_token(v, id, content, -1000.0f, SPM_CONTROL))
                return -1;
        } else {
            char *t = prenormalize_spaces(content);
            if (!t || set_token(v, id, t, -1000.0f, SPM_USER_DEFINED)) {
                free(t);
                if (!t)
                    ag_set_error("out of memory");
                return -1;
            }
            free(t);
        }
        seen[id] = true;
    }
    return 0;
}

/* tokenizer.json added_tokens fill ids that neither file above names (llama.cpp reads only
 * those two; a checkpoint with only tokenizer.json would otherwise lose its added tokens). */
static int apply_tokenizer_json(llm_vocab *v, const json_value *tj, const char *path, bool *seen)
{
    const json_value *at = json_get(tj, "added_tokens");
    if (!at)
        return 0;
    if (at->kind != JSON_ARRAY) {
        ag_set_error("%s: added_tokens is not an array", path);
        return -1;
    }
    for (size_t k = 0; k < at->n; k++) {
        int64_t id;
        const char *content = json_get_str(at->items[k], "content");
        if (!json_get_int(at->items[k], "id", &id) || id < 0 || !content) {
            ag_set_error("%s: bad added_tokens entry %zu", path, k);
            return -1;
        }
        if (id >= v->n) {
            ag_set_error("%s: added token '%s' has id %lld, beyond vocab_size %lld", path, content, (long long)id,
                         (long long)v->n);
            return -1;
        }
        if (seen[id] || id < v->n_spm)
            continue;
        bool special = false;
        json_get_bool(at->items[k], "special", &special);
        if (set_token(v, id, content, -1000.0f, special ? SPM_CONTROL : SPM_USER_DEFINED))
            return -1;
        seen[id] = true;
    }
    return 0;
}

static const char *const special_names[SPECIAL_COUNT] = {"bos", "eos", "unk", "sep", "pad", "mask"};
static const char *const special_keys[SPECIAL_COUNT] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id"};

static void set_special(llm_vocab *v, int typ, int64_t id)
{
    if (v->special[typ] < 0 && id >= 0 && id < v->n)
        v->special[typ] = id;
}

/* Content of a "bos_token"-style entry: a string or {"content": ...}. */
static const char *token_content(const json_value *e)
{
    if (!e)
        return NULL;
    if (e->kind == JSON_STRING)
        return e->str;
    return json_get_str(e, "content");
}

static int64_t find_content(const llm_vocab *v, const json_value *tj, const char *content)
{
    const json_value *at = json_get(tj, "added_tokens");
    if (at && at->kind == JSON_ARRAY)
        for (size_t k = 0; k < at->n; k++) {
            int64_t id;
            const char *c = json_get_str(at->items[k], "content");
            if (c && !strcmp(c, content) && json_get_int(at->items[k], "id", &id))
                return id;
        }
    for (int64_t id = 0; id < v->n; id++)
        if (v->tokens[id] && !strcmp(v->tokens[id], content))
            return id;
    return -1;
}

int llm_vocab_load(llm_vocab *v, const char *dir, int64_t vocab_size)
{
    memset(v, 0, sizeof *v);
    for (int k = 0; k < SPECIAL_COUNT; k++)
        v->special[k] = -1;
    v->add_bos = v->add_eos = v->add_space_prefix = -1;
    char path[4096];
    spm_model spm = {0};
    json_value *tc = NULL, *tj = NULL, *cfg = NULL, *stm = NULL;
    bool *seen = NULL;
    int rc = -1;
    if (join(path, sizeof path, dir, "tokenizer.model") || spm_model_load(&spm, path))
        goto done;
    if ((int64_t)spm.n > vocab_size) {
        ag_set_error("%s: %zu pieces but config.json vocab_size is only %lld", path, spm.n, (long long)vocab_size);
        goto done;
    }
    v->n = vocab_size;
    v->n_spm = (int64_t)spm.n;
    v->tokens = calloc((size_t)vocab_size, sizeof *v->tokens);
    v->scores = calloc((size_t)vocab_size, sizeof *v->scores);
    v->types = calloc((size_t)vocab_size, sizeof *v->types);
    seen = calloc((size_t)vocab_size, 1);
    if (!v->tokens || !v->scores || !v->types || !seen) {
        ag_set_error("out of memory");
        goto done;
    }
    for (size_t k = 0; k < spm.n; k++) {
        /* sentencepiece IsUnknown/IsControl/IsUnused/IsByte, everything else NORMAL (user-defined
         * pieces of the model included), as llama.cpp. */
        int t = spm.pieces[k].type;
        int type = (t == SPM_UNKNOWN || t == SPM_CONTROL || t == SPM_UNUSED || t == SPM_BYTE) ? t : SPM_NORMAL;
        if (set_token(v, (int64_t)k, spm.pieces[k].piece, spm.pieces[k].score, type))
            goto done;
        seen[k] = true;
    }
    if (join(path, sizeof path, dir, "added_tokens.json"))
        goto done;
    if (file_exists(path) && apply_added_tokens_json(v, path, seen))
        goto done;
    if (join(path, sizeof path, dir, "tokenizer_config.json"))
        goto done;
    if (file_exists(path)) {
        if (!(tc = json_parse_file(path)))
            goto done;
        if (apply_added_tokens_decoder(v, tc, path, seen))
            goto done;
    }
    if (join(path, sizeof path, dir, "tokenizer.json"))
        goto done;
    if (file_exists(path)) {
        if (!(tj = json_parse_file(path)))
            goto done;
        if (apply_tokenizer_json(v, tj, path, seen))
            goto done;
    }
    /* Embedding rows past the last token (vocab padded to a multiple) become "[PAD<id>]", UNUSED,
     * score -10000, as llama.cpp pads; a hole between tokens is an error. */
    int64_t last = v->n - 1;
    while (last >= 0 && !seen[last])
        last--;
    if (last < v->n - 1)
        fprintf(stderr, "anygpt-convert: warning: ids %lld..%lld have no token (vocab padded): named [PAD<id>]\n",
                (long long)(last + 1), (long long)(v->n - 1));
    for (int64_t id = last + 1; id < v->n; id++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
        if (set_token(v, id, pad, -10000.0f, SPM_UNUSED))
            goto done;
        seen[id] = true;
    }
    /* Every other id below vocab_size must name a token: the embedding has vocab_size rows. */
    for (int64_t id = 0; id < v->n; id++)
        if (!seen[id]) {
            ag_set_error("%s: no token has id %lld: tokenizer.model has %lld pieces and the added tokens must "
                         "fill ids up to vocab_size %lld without gaps",
                         dir, (long long)id, (long long)v->n_spm, (long long)v->n);
            goto done;
        }
    v->n_added = last + 1 - v->n_spm;

    /* Special ids: tokenizer_config.json {typ}_token, then special_tokens_map.json, then
     * config.json {typ}_token_id, then tokenizer.model's trainer ids. First valid one wins. */
    if (join(path, sizeof path, dir, "special_tokens_map.json"))
        goto done;
    if (file_exists(path) && !(stm = json_parse_file(path)))
        goto done;
    if (join(path, sizeof path, dir, "config.json") || !(cfg = json_parse_file(path)))
        goto done;
    for (int typ = 0; typ < SPECIAL_COUNT; typ++) {
        char key[64];
        snprintf(key, sizeof key, "%s_token", special_names[typ]);
        const char *c = token_content(json_get(tc, key));
        if (c)
            set_special(v, typ, find_content(v, tj, c));
        c = token_content(json_get(stm, key));
        if (c)
            set_special(v, typ, find_content(v, tj, c));
        int64_t id;
        snprintf(key, sizeof key, "%s_token_id", special_names[typ]);
        if (json_get_int(cfg, key, &id))
            set_special(v, typ, id);
    }
    set_special(v, SPECIAL_BOS, spm.bos_id);
    set_special(v, SPECIAL_EOS, spm.eos_id);
    set_special(v, SPECIAL_UNK, spm.unk_id);
    bool b;
    if (json_get_bool(tc, "add_bos_token", &b))
        v->add_bos = b;
    if (json_get_bool(tc, "add_eos_token", &b))
        v->add_eos = b;
    if (json_get_bool(tc, "add_prefix_space", &b))
        v->add_space_prefix = b;
    const char *tmpl = json_get_str(tc, "chat_template");
    if (tmpl && !(v->chat_template = strdup(tmpl))) {
        ag_set_error("out of memory");
        goto done;
    }
    rc = 0;
done:
    spm_model_free(&spm);
    json_free(tc);
    json_free(tj);
    json_free(cfg);
    json_free(stm);
    free(seen);
    if (rc)
        llm_vocab_free(v);
    return rc;
}

int llm_vocab_write_kvs(const llm_vocab *v, gs_writer *w)
{
    if (gs_set_str(w, "tokenizer.ggml.model", "llama") || gs_set_str(w, "tokenizer.ggml.pre", "default") ||
        gs_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (uint64_t)v->n) ||
        gs_set_arr(w, "tokenizer.ggml.scores", AG_GGUF_FLOAT32, v->scores, (uint64_t)v->n) ||
        gs_set_arr(w, "tokenizer.ggml.token_type", AG_GGUF_INT32, v->types, (uint64_t)v->n))
        return -1;
    for (int typ = 0; typ < SPECIAL_COUNT; typ++)
        if (v->special[typ] >= 0 && gs_set_u32(w, special_keys[typ], (uint32_t)v->special[typ]))
            return -1;
    if (v->add_bos >= 0 && gs_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos))
        return -1;
    if (v->add_eos >= 0 && gs_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos))
        return -1;
    if (v->add_space_prefix >= 0 && gs_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix))
        return -1;
    if (v->chat_template && gs_set_str(w, "tokenizer.chat_template", v->chat_template))
        return -1;
    return 0;
}

void llm_vocab_free(llm_vocab *v)
{
    if (v->tokens)
        for (int64_t k = 0; k < v->n; k++)
            free(v->tokens[k]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->chat_template);
    memset(v, 0, sizeof *v);
}
