/* SEANet decoding of an item in pieces (anygpt/seanet.h, streaming): each call decodes
 * [left context][held back][new] and keeps the exact middle, so consecutive outputs join where a
 * whole-item decode would put the same samples. */
#include "anygpt/error.h"
#include "anygpt/seanet.h"

#include <stdlib.h>
#include <string.h>

/* frames held at most (context + held back + one call's codes); a longer call is refused */
#define SEANET_STREAM_MAX_FRAMES (1 << 20)

struct ag_seanet_stream {
    ag_seanet *m;
    int n_q, left, right;
    int32_t *codes; /* [ctx + held][n_q] */
    int64_t ctx, held, cap;
    float *win; /* decoded window */
    int64_t win_cap;
};

ag_seanet_stream *ag_seanet_stream_new(ag_seanet *m, int n_q, int left, int right)
{
    if (!m || n_q < 1 || n_q > ag_seanet_info_of(m)->n_q || left < 0 || left > 4096 || right < 0 || right > 4096) {
        ag_set_error("seanet stream: bad arguments (%d layers, context %d/%d frames)", n_q, left, right);
        return NULL;
    }
    ag_seanet_stream *s = calloc(1, sizeof *s);
    if (!s) {
        ag_set_error("out of memory");
        return NULL;
    }
    s->m = m;
    s->n_q = n_q;
    s->left = left;
    s->right = right;
    return s;
}

void ag_seanet_stream_free(ag_seanet_stream *s)
{
    if (!s)
        return;
    free(s->codes);
    free(s->win);
    free(s);
}

void ag_seanet_stream_reset(ag_seanet_stream *s)
{
    if (s)
        s->ctx = s->held = 0;
}

static int grow(void **p, int64_t *cap, int64_t want, size_t elem)
{
    if (want <= *cap)
        return 0;
    int64_t c = *cap ? *cap : 1024;
    while (c < want)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) {
        ag_set_error("out of memory");
        return -1;
    }
    *p = q;
    *cap = c;
    return 0;
}

int64_t ag_seanet_stream_decode(ag_seanet_stream *s, const int32_t *codes, int64_t n, bool end, float *audio)
{
    if (!s || n < 0 || (n > 0 && !codes) || !audio) {
        ag_set_error("seanet stream: bad arguments to decode");
        return -1;
    }
    const int64_t total = s->ctx + s->held + n, hop = ag_seanet_info_of(s->m)->hop;
    if (total > SEANET_STREAM_MAX_FRAMES) {
        ag_set_error("seanet stream: %lld frames in one call (at most %d)", (long long)n,
                     SEANET_STREAM_MAX_FRAMES - (int)(s->ctx + s->held));
        return -1;
    }
    if (grow((void **)&s->codes, &s->cap, total * s->n_q, sizeof(int32_t)) != 0)
        return -1;
    if (n)
        memcpy(s->codes + (s->ctx + s->held) * s->n_q, codes, (size_t)(n * s->n_q) * sizeof(int32_t));
    s->held += n;
    const int64_t emit = end ? s->held : (s->held > s->right ? s->held - s->right : 0);
    if (emit == 0) {
        if (end)
            ag_seanet_stream_reset(s);
        return 0;
    }
    if (grow((void **)&s->win, &s->win_cap, total * hop, sizeof(float)) != 0 ||
        ag_seanet_decode(s->m, s->codes, total, s->n_q, s->win) != 0)
        return -1;
    memcpy(audio, s->win + s->ctx * hop, (size_t)(emit * hop) * sizeof(float));
    if (end) {
        ag_seanet_stream_reset(s);
        return emit * hop;
    }
    /* keep the last `left` output frames as context, then what is still held back */
    const int64_t out_end = s->ctx + emit, ctx = out_end < s->left ? out_end : s->left;
    const int64_t keep = ctx + s->held - emit;
    memmove(s->codes, s->codes + (out_end - ctx) * s->n_q, (size_t)(keep * s->n_q) * sizeof(int32_t));
    s->ctx = ctx;
    s->held -= emit;
    return emit * hop;
}
