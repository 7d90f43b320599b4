/* Token ids -> UTF-8, following SentencePiece's decoder: "▁" -> ' ', byte tokens collected and
 * decoded as UTF-8 (each byte that does not form a valid character -> U+FFFD), control tokens
 * invisible, <unk> -> " ⁇ ", and the first text piece loses the space of its dummy prefix.
 * Batch decoding is the stream run to the end, so both always agree. */
#include "text_internal.h"
#include "utf8.h"

#include "anygpt/error.h"

#include <stdlib.h>
#include <string.h>

#define UNK_SURFACE " \xE2\x81\x87 " /* SentencePiece's default unk_surface */

struct ag_text_stream {
    const struct ag_text_tokenizer *t;
    unsigned flags;
    unsigned char pend[4]; /* bytes of a character not complete yet */
    int npend;
    bool is_bos_ws;   /* the next text piece may still lose its leading "▁" */
    bool bos_ws_seen; /* the previous text piece lost one */
    bool any_text;    /* something was produced (or is held) */
    char *out;
    size_t nout, capout;
};

static int out_put(ag_text_stream *s, const void *p, size_t n)
{
    if (s->nout + n > s->capout) {
        size_t nc = s->capout ? s->capout : 64;
        while (nc < s->nout + n)
            nc *= 2;
        char *no = realloc(s->out, nc);
        if (!no) {
            ag_set_error("%s: out of memory while decoding", s->t->label);
            return -1;
        }
        s->out = no;
        s->capout = nc;
    }
    memcpy(s->out + s->nout, p, n);
    s->nout += n;
    s->any_text = true;
    return 0;
}

static void pend_drop(ag_text_stream *s, int k)
{
    memmove(s->pend, s->pend + k, (size_t)(s->npend - k));
    s->npend -= k;
}

/* Emit every character the held bytes decide. final: the byte run has ended, so an incomplete
 * sequence is invalid. */
static int drain(ag_text_stream *s, bool final)
{
    while (s->npend > 0) {
        int need = ag_utf8_lead_len(s->pend[0]);
        bool bad = need == 0;
        for (int i = 1; !bad && i < need && i < s->npend; i++)
            bad = !ag_utf8_is_trail(s->pend[i]);
        if (!bad && s->npend < need) {
            if (!final)
                return 0; /* wait for more bytes */
            bad = true;
        }
        uint32_t cp;
        int l = bad ? 0 : ag_utf8_decode(s->pend, (size_t)need, &cp);
        if (l == 0) {
            if (out_put(s, AG_UTF8_REPLACEMENT, 3) < 0)
                return -1;
            pend_drop(s, 1);
        } else {
            if (out_put(s, s->pend, (size_t)l) < 0)
                return -1;
            pend_drop(s, l);
        }
    }
    return 0;
}

/* Text of a non-byte piece: "▁" -> ' ', the first one may drop its leading "▁". */
static int put_piece(ag_text_stream *s, const char *p, size_t n)
{
    const bool strip = s->is_bos_ws && !(s->flags & AG_TEXT_DECODE_KEEP_SPACE) && s->t->mode != AG_TEXT_PREFIX_NONE;
    s->bos_ws_seen = false;
    if (strip && n >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0) {
        p += 3;
        n -= 3;
        s->bos_ws_seen = true;
    }
    size_t i = 0, run = 0;
    while (i < n) {
        if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
            if ((run < i && out_put(s, p + run, i - run) < 0) || out_put(s, " ", 1) < 0)
                return -1;
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    if (run < n && out_put(s, p + run, n - run) < 0)
        return -1;
    return 0;
}

static int push_id(ag_text_stream *s, int32_t id)
{
    const struct ag_text_tokenizer *t = s->t;
    if (id < 0 || id >= t->n) {
        ag_set_error("%s: token id %d out of range (vocab has %d tokens)", t->label, id, t->n);
        return -1;
    }
    uint8_t ty = t->type[id];
    if (ty == AG_TOKEN_BYTE) {
        int b = -1;
        for (int k = 0; k < 256; k++) /* byte ids are few; a map is not worth it */
            if (t->byte_id[k] == id) {
                b = k;
                break;
            }
        s->pend[s->npend++] = (unsigned char)b;
        s->any_text = true;
        return drain(s, false);
    }
    /* a non-byte piece ends the byte run */
    if (drain(s, true) < 0)
        return -1;
    if (s->bos_ws_seen || s->any_text)
        s->is_bos_ws = false;
    if (ty == AG_TOKEN_CONTROL || (ty == AG_TOKEN_USER_DEFINED && (s->flags & AG_TEXT_DECODE_SKIP_ADDED))) {
        s->bos_ws_seen = false;
        return 0;
    }
    if (ty == AG_TOKEN_UNKNOWN) {
        s->bos_ws_seen = false;
        return out_put(s, UNK_SURFACE, sizeof UNK_SURFACE - 1);
    }
    return put_piece(s, ag_text_str(t, id), t->len[id]);
}

void ag_text_stream_reset(ag_text_stream *s)
{
    if (!s)
        return;
    s->npend = 0;
    s->is_bos_ws = true;
    s->bos_ws_seen = false;
    s->any_text = false;
    s->nout = 0;
}

ag_text_stream *ag_text_stream_new(const ag_text_tokenizer *t, unsigned flags)
{
    if (!t) {
        ag_set_error("ag_text_stream_new: NULL tokenizer");
        return NULL;
    }
    ag_text_stream *s = calloc(1, sizeof *s);
    if (!s) {
        ag_set_error("%s: out of memory", t->label);
        return NULL;
    }
    s->t = t;
    s->flags = flags;
    ag_text_stream_reset(s);
    return s;
}

void ag_text_stream_free(ag_text_stream *s)
{
    if (!s)
        return;
    free(s->out);
    free(s);
}

int64_t ag_text_stream_push(ag_text_stream *s, int32_t id, const char **out)
{
    if (!s) {
        ag_set_error("ag_text_stream_push: NULL stream");
        return -1;
    }
    s->nout = 0;
    if (out)
        *out = "";
    if (push_id(s, id) < 0)
        return -1;
    if (out && s->out)
        *out = s->out;
    return (int64_t)s->nout;
}

int64_t ag_text_stream_flush(ag_text_stream *s, const char **out)
{
    if (!s) {
        ag_set_error("ag_text_stream_flush: NULL stream");
        return -1;
    }
    s->nout = 0;
    if (out)
        *out = "";
    if (drain(s, true) < 0)
        return -1;
    if (out && s->out)
        *out = s->out;
    return (int64_t)s->nout;
}

int64_t ag_text_decode(const ag_text_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char *out,
                       size_t cap)
{
    if (!t || (!ids && n)) {
        ag_set_error("ag_text_decode: bad arguments");
        return -1;
    }
    ag_text_stream s;
    memset(&s, 0, sizeof s);
    s.t = t;
    s.flags = flags;
    ag_text_stream_reset(&s);
    int64_t rc = -1;
    for (size_t i = 0; i < n; i++)
        if (push_id(&s, ids[i]) < 0)
            goto done;
    if (drain(&s, true) < 0)
        goto done;
    rc = (int64_t)s.nout;
    if (cap > 0 && out) {
        size_t c = s.nout < cap - 1 ? s.nout : cap - 1;
        if (c)
            memcpy(out, s.out, c);
        out[c] = 0;
    }
done:
    free(s.out);
    return rc;
}
