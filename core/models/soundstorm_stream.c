/* SoundStorm chunk by chunk (anygpt/soundstorm.h, streaming): semantic tokens are queued as
 * they arrive; each chunk is one whole masked decoding (soundstorm_decode.c) with the previous
 * chunk of the item, all levels, as its voice prompt. */
#include "anygpt/error.h"
#include "anygpt/soundstorm.h"
#include "soundstorm_internal.h"

#include <stdlib.h>
#include <string.h>

/* items longer than this many pending frames are refused (the queue is bounded) */
#define SS_STREAM_MAX_PENDING (1 << 22)

struct ag_soundstorm_stream {
    ag_soundstorm *m;
    int64_t chunk, L;
    int steps;
    uint64_t seed;
    bool greedy;
    int32_t *voice; /* [voice_n][L], the first chunk's prompt */
    int64_t voice_n;
    int32_t *prev; /* [prev_n][L]: the item's previous chunk */
    int64_t prev_n;
    int32_t *pend; /* pending semantic tokens */
    int64_t pend_n, pend_cap;
    int64_t index; /* chunks of the current item generated */
};

ag_soundstorm_stream *ag_soundstorm_stream_new(ag_soundstorm *m, int64_t chunk, const int32_t *prompt, int64_t tp,
                                               int steps, uint64_t seed, bool greedy)
{
    if (!m || chunk < 1 || chunk > AG_SOUNDSTORM_MAX_FRAMES / 2 || tp < 0 || (tp > 0 && !prompt) ||
        tp + chunk > AG_SOUNDSTORM_MAX_FRAMES || steps < 1 || steps > 1000) {
        ag_set_error("soundstorm stream: bad arguments (chunk %lld, %lld prompt frames, steps %d)",
                     (long long)chunk, (long long)tp, steps);
        return NULL;
    }
    const ag_soundstorm_info *in = ag_soundstorm_info_of(m);
    const int64_t L = in->n_q + 1;
    if (ss_check_prompt(in, prompt, tp) != 0)
        return NULL;
    ag_soundstorm_stream *s = calloc(1, sizeof *s);
    if (s) {
        s->voice = tp ? malloc((size_t)(tp * L) * sizeof(int32_t)) : NULL;
        s->prev = malloc((size_t)(chunk * L) * sizeof(int32_t));
    }
    if (!s || (tp && !s->voice) || !s->prev) {
        ag_soundstorm_stream_free(s);
        ag_set_error("out of memory");
        return NULL;
    }
    if (tp)
        memcpy(s->voice, prompt, (size_t)(tp * L) * sizeof(int32_t));
    *s = (ag_soundstorm_stream){m, chunk, L, steps, seed, greedy, s->voice, tp, s->prev, 0, NULL, 0, 0, 0};
    return s;
}

void ag_soundstorm_stream_free(ag_soundstorm_stream *s)
{
    if (!s)
        return;
    free(s->voice);
    free(s->prev);
    free(s->pend);
    free(s);
}

int64_t ag_soundstorm_stream_pending(const ag_soundstorm_stream *s) { return s ? s->pend_n : 0; }

void ag_soundstorm_stream_reset(ag_soundstorm_stream *s)
{
    if (!s)
        return;
    s->pend_n = s->prev_n = s->index = 0;
}

int ag_soundstorm_stream_push(ag_soundstorm_stream *s, const int32_t *semantic, int64_t n)
{
    if (!s || n < 0 || (n > 0 && !semantic)) {
        ag_set_error("soundstorm stream: bad arguments to push");
        return -1;
    }
    if (n > SS_STREAM_MAX_PENDING - s->pend_n) {
        ag_set_error("soundstorm stream: more than %d frames pending", SS_STREAM_MAX_PENDING);
        return -1;
    }
    if (ss_check_ids(semantic, n, 1, ag_soundstorm_info_of(s->m)->semantic_vocab - 1, "semantic token") != 0)
        return -1;
    if (s->pend_n + n > s->pend_cap) {
        int64_t cap = s->pend_cap ? s->pend_cap : 256;
        while (cap < s->pend_n + n)
            cap *= 2;
        int32_t *p = realloc(s->pend, (size_t)cap * sizeof *p);
        if (!p) {
            ag_set_error("out of memory");
            return -1;
        }
        s->pend = p;
        s->pend_cap = cap;
    }
    memcpy(s->pend + s->pend_n, semantic, (size_t)n * sizeof *semantic);
    s->pend_n += n;
    return 0;
}

int64_t ag_soundstorm_stream_next(ag_soundstorm_stream *s, bool end, int32_t *out)
{
    if (!s || !out) {
        ag_set_error("soundstorm stream: bad arguments to next");
        return -1;
    }
    const int64_t t = s->pend_n < s->chunk ? (end ? s->pend_n : 0) : s->chunk;
    if (t == 0) {
        if (end)
            ag_soundstorm_stream_reset(s);
        return 0;
    }
    const bool first = s->index == 0;
    const uint64_t seed = first ? s->seed : s->seed + (uint64_t)s->index * 0xD1B54A32D192ED03ull;
    if (ag_soundstorm_generate(s->m, s->pend, t, first ? s->voice : s->prev, first ? s->voice_n : s->prev_n,
                               s->steps, seed, s->greedy, out) != 0)
        return -1;
    memmove(s->pend, s->pend + t, (size_t)(s->pend_n - t) * sizeof *s->pend);
    s->pend_n -= t;
    memcpy(s->prev, out, (size_t)(t * s->L) * sizeof *out);
    s->prev_n = t;
    s->index++;
    if (end && s->pend_n == 0)
        ag_soundstorm_stream_reset(s);
    return t;
}
