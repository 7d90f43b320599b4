/* AnyGPT generation session: prompt -> KV-cached LLaMA -> per-span sampling -> streamed text and
 * modality items. See anygpt/session.h for the contract and specs/anygpt.md for the facts. */
#include "anygpt/session.h"
#include "anygpt/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Span kinds, indexed by ag_modality (NONE = text). */
#define N_SPANS 4

struct ag_session {
    ag_llama *model;
    ag_text_tokenizer *tok;
    ag_sampler *sampler;
    ag_text_stream *stream;
    int32_t n_vocab;      /* ids the sampler may pick: the model's rows that the vocab names */
    int32_t *cache_ids;   /* what the KV cache holds, n_ctx long */
    uint8_t *modality_of; /* ag_modality of every id (constrained spans) */
    int32_t n_cache;
    int32_t span_start[N_SPANS], span_end[N_SPANS]; /* tag ids, -1 when the vocab lacks them */
    int32_t end_ids[3];   /* <eos>, <eom>, the tokenizer's EOS: the reply ends */
    size_t n_end;
    /* "<eot>\n<sosp>" as the tokenizer gives it (force_speech_reply); n_speech_lead 0: the
     * vocab cannot express it */
    int32_t speech_lead[8];
    int n_speech_lead;
};

/* The ids of the spoken-reply lead "<eot>\n<sosp>" (spec: reply "{text}<eot>\n{speech}"). Added
 * tokens split the text, so these are the ids the lead has inside any reply. */
static void init_speech_lead(ag_session *s)
{
    int32_t ids[8];
    const char lead[] = "<eot>\n<sosp>";
    int64_t n = ag_text_encode(s->tok, lead, sizeof lead - 1, false, ids, 8);
    s->n_speech_lead = 0;
    if (n >= 2 && n <= 8 && ids[0] == ag_text_token_id(s->tok, "<eot>", (size_t)-1) &&
        ids[n - 1] == s->span_start[AG_MODALITY_SPEECH] && ids[0] >= 0 && ids[n - 1] >= 0) {
        memcpy(s->speech_lead, ids, (size_t)n * sizeof *ids);
        s->n_speech_lead = (int)n;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int32_t tok_id(const ag_text_tokenizer *t, const char *s) { return ag_text_token_id(t, s, (size_t)-1); }

ag_session *ag_session_new_kv(ag_backend *be, const char *model_path, int32_t n_ctx, ag_type kv_type,
                              ag_progress_fn progress, void *user)
{
    if (!be || !model_path) {
        ag_set_error("session: no backend or model path");
        return NULL;
    }
    ag_session *s = calloc(1, sizeof *s);
    if (!s) {
        ag_set_error("session: out of memory");
        return NULL;
    }
    s->model = ag_llama_load(be, model_path, n_ctx, kv_type, progress, user);
    if (!s->model)
        goto fail;
    s->tok = ag_text_tokenizer_from_gguf(ag_weights_gguf(ag_llama_weights(s->model)));
    if (!s->tok)
        goto fail;
    const int32_t nv = ag_llama_hparams_of(s->model)->n_vocab, nt = ag_text_n_tokens(s->tok);
    s->n_vocab = nv < nt ? nv : nt;
    s->sampler = ag_sampler_new(0);
    s->stream = ag_text_stream_new(s->tok, AG_TEXT_DECODE_SKIP_ADDED);
    s->cache_ids = malloc((size_t)ag_llama_n_ctx(s->model) * sizeof *s->cache_ids);
    s->modality_of = malloc((size_t)s->n_vocab);
    if (!s->sampler || !s->stream || !s->cache_ids || !s->modality_of) {
        ag_set_error("session: out of memory");
        goto fail;
    }
    static const char *const tags[N_SPANS][2] = {
        {NULL, NULL}, {"<sosp>", "<eosp>"}, {"<soim>", "<eoim>"}, {"<somu>", "<eomu>"}};
    s->span_start[0] = s->span_end[0] = -1;
    for (int m = 1; m < N_SPANS; m++) {
        s->span_start[m] = tok_id(s->tok, tags[m][0]);
        s->span_end[m] = tok_id(s->tok, tags[m][1]);
    }
    for (int32_t i = 0; i < s->n_vocab; i++) {
        int32_t code;
        s->modality_of[i] = (uint8_t)ag_text_token_modality(s->tok, i, &code);
    }
    const int32_t ends[3] = {tok_id(s->tok, "<eos>"), tok_id(s->tok, "<eom>"), ag_text_eos(s->tok)};
    for (int i = 0; i < 3; i++)
        if (ends[i] >= 0)
            s->end_ids[s->n_end++] = ends[i];
    init_speech_lead(s);
    return s;
fail:
    ag_session_free(s);
    return NULL;
}

ag_session *ag_session_new(ag_backend *be, const char *model_path, int32_t n_ctx, ag_progress_fn progress,
                           void *user)
{
    return ag_session_new_kv(be, model_path, n_ctx, AG_TYPE_F16, progress, user);
}

void ag_session_free(ag_session *s)
{
    if (!s)
        return;
    ag_llama_free(s->model);
    ag_text_tokenizer_free(s->tok);
    ag_sampler_free(s->sampler);
    ag_text_stream_free(s->stream);
    free(s->cache_ids);
    free(s->modality_of);
    free(s);
}

const ag_text_tokenizer *ag_session_tokenizer(const ag_session *s) { return s ? s->tok : NULL; }
ag_llama *ag_session_model(ag_session *s) { return s ? s->model : NULL; }

/* Defaults of the spec's table (the AnyGPT config files), but text at temperature 0.3 in place of
 * the reference's 5-beam sampling (measured: see the note in session.h). */
static const ag_sampling_params CFG_TEXT = {0.3f, 0, 1.0f, 1.0f, 10};
static const ag_sampling_params CFG_SPEECH = {1.0f, 0, 1.0f, 1.05f, 10};
static const ag_sampling_params CFG_IMAGE = {1.0f, 0, 1.0f, 1.0f, 10};
static const ag_sampling_params CFG_MUSIC = {1.0f, 200, 1.0f, 1.15f, 10};

/* max_new_tokens by the reply's target modality: text 500 (generate_config.json, what the chat
 * reference uses for text targets), speech 1500, image 200, music 2000; a spoken chat (speech
 * in: text <eot> speech out) 1500. */
static int32_t default_max_new(ag_task task, ag_modality in)
{
    switch (task) {
    case AG_TASK_TTS: return 1500;
    case AG_TASK_TEXT_TO_IMAGE: return 200;
    case AG_TASK_TEXT_TO_MUSIC: return 2000;
    case AG_TASK_ASR:
    case AG_TASK_CAPTION:
    case AG_TASK_MUSIC_CAPTION: return 500;
    case AG_TASK_CHAT: return in == AG_MODALITY_SPEECH ? 1500 : 500;
    default: return 500;
    }
}

void ag_gen_config_default(ag_gen_config *c, ag_task task)
{
    if (!c)
        return;
    c->text = CFG_TEXT;
    c->speech = CFG_SPEECH;
    c->image = CFG_IMAGE;
    c->music = CFG_MUSIC;
    c->max_new_tokens = default_max_new(task, AG_MODALITY_NONE);
    c->seed = 0;
    c->constrain_spans = false;
    c->force_speech_reply = false;
    c->speech_reply_text_tokens = 0;
}

void ag_gen_stats_clear(ag_gen_stats *st)
{
    if (!st)
        return;
    free(st->prompt);
    free(st->reply);
    memset(st, 0, sizeof *st);
}

/* ---- one reply ---- */

typedef struct gen {
    ag_session *s;
    const ag_gen_callbacks *cb;
    int span;           /* ag_modality of the open span, 0 outside */
    int32_t *codes;     /* codes of the open span */
    size_t n_codes, cap_codes;
} gen;

static int push_code(gen *g, int32_t code)
{
    if (g->n_codes == g->cap_codes) {
        size_t cap = g->cap_codes ? g->cap_codes * 2 : 256;
        int32_t *p = realloc(g->codes, cap * sizeof *p);
        if (!p) {
            ag_set_error("session: out of memory");
            return -1;
        }
        g->codes = p;
        g->cap_codes = cap;
    }
    g->codes[g->n_codes++] = code;
    return 0;
}

/* Hand the open span's codes out (music: whole 4-code frames only) and close it. Empty items are
 * not reported: there is nothing to decode. */
static void close_span(gen *g)
{
    const int cb = g->span == AG_MODALITY_MUSIC ? 4 : 1;
    const size_t frames = g->n_codes / (size_t)cb;
    if (frames && g->cb && g->cb->on_item)
        g->cb->on_item(g->cb->user, (ag_modality)g->span, g->codes, frames, cb);
    g->span = 0;
    g->n_codes = 0;
}

static void emit_text(gen *g, const char *p, int64_t n)
{
    if (n > 0 && g->cb && g->cb->on_text)
        g->cb->on_text(g->cb->user, p, (size_t)n);
}

/* One generated (or prompt-forced) token through the span state machine. */
static int take_token(gen *g, int32_t id)
{
    ag_session *s = g->s;
    if (g->span == 0) {
        for (int m = 1; m < N_SPANS; m++)
            if (id == s->span_start[m]) {
                g->span = m;
                g->n_codes = 0;
                return 0;
            }
        const char *p;
        int64_t n = ag_text_stream_push(s->stream, id, &p);
        if (n < 0)
            return -1;
        emit_text(g, p, n);
        return 0;
    }
    if (id == s->span_end[g->span]) {
        close_span(g);
        return 0;
    }
    int32_t code;
    /* Tokens of another kind inside a span carry no code: the reference's parser (digits between
     * the tags) would not see them either, except digits of other modality tokens, which it
     * would misread; we skip them. */
    if ((int)ag_text_token_modality(s->tok, id, &code) != g->span)
        return 0;
    if (g->span == AG_MODALITY_MUSIC)
        code %= 2048; /* value = code + 2048 * layer; the layer is the position in the frame */
    if (push_code(g, code) != 0)
        return -1;
    const int cb = g->span == AG_MODALITY_MUSIC ? 4 : 1;
    if (g->n_codes % (size_t)cb == 0 && g->cb && g->cb->on_item_progress)
        g->cb->on_item_progress(g->cb->user, (ag_modality)g->span, g->codes, g->n_codes / (size_t)cb, cb);
    return 0;
}

static bool is_end(const ag_session *s, int32_t id)
{
    for (size_t i = 0; i < s->n_end; i++)
        if (id == s->end_ids[i])
            return true;
    return false;
}

static bool poll_stop(const ag_gen_callbacks *cb)
{
    return cb && cb->should_stop && cb->should_stop(cb->user);
}

/* The reply as text (modality tokens included, NUL bytes dropped), the forced start tag first
 * when the prompt opened a span. */
static char *reply_text(ag_session *s, int forced_span, const int32_t *ids, size_t n)
{
    size_t tl = 0;
    const char *tag = forced_span ? ag_text_token_str(s->tok, s->span_start[forced_span], &tl) : NULL;
    int64_t len = ag_text_decode(s->tok, ids, n, 0, NULL, 0);
    if (len < 0)
        return NULL;
    char *out = malloc(tl + (size_t)len + 1);
    if (!out) {
        ag_set_error("session: out of memory");
        return NULL;
    }
    if (tl)
        memcpy(out, tag, tl);
    ag_text_decode(s->tok, ids, n, 0, out + tl, (size_t)len + 1);
    /* a sampled <0x00> byte token would end the C string early and cut the rest of the reply
     * (its speech span, in the history too): NUL bytes are dropped */
    size_t w = tl;
    for (size_t r = tl; r < tl + (size_t)len; r++)
        if (out[r])
            out[w++] = out[r];
    out[w] = 0;
    return out;
}

int ag_session_generate(ag_session *s, const ag_prompt_desc *d, const ag_gen_config *c,
                        const ag_gen_callbacks *cb, ag_gen_stats *st)
{
    ag_gen_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    if (!s || !d) {
        ag_set_error("session: no session or request");
        return -1;
    }
    ag_gen_config cfg;
    if (c)
        cfg = *c;
    else
        ag_gen_config_default(&cfg, d->task);
    const int32_t max_new = cfg.max_new_tokens > 0 ? cfg.max_new_tokens : default_max_new(d->task, d->modality);
    const bool fsr = cfg.force_speech_reply;
    if (fsr && s->n_speech_lead == 0) {
        ag_set_error("session: the model's vocabulary cannot write \"<eot>\\n<sosp>\" (no <eot> or <sosp> "
                     "token): no spoken reply can be forced");
        return -1;
    }
    /* text part of a forced spoken reply: at most half of the reply, at least one token */
    int32_t text_budget = cfg.speech_reply_text_tokens > 0 ? cfg.speech_reply_text_tokens : 100;
    if (text_budget > max_new / 2)
        text_budget = max_new / 2;
    if (text_budget < 1)
        text_budget = 1;

    st->prompt = ag_prompt_build(d);
    if (!st->prompt)
        goto fail_nostate;
    int32_t *ids = NULL;
    int64_t n64 = ag_text_encode_alloc(s->tok, st->prompt, strlen(st->prompt), true, &ids);
    if (n64 < 0)
        goto fail_nostate;
    const int32_t n_ctx = ag_llama_n_ctx(s->model);
    if (n64 == 0 || n64 >= n_ctx) {
        ag_set_error("session: the prompt has %lld tokens, the context holds %d (one more is needed to reply)",
                     (long long)n64, n_ctx);
        free(ids);
        goto fail_nostate;
    }
    const int32_t n_prompt = (int32_t)n64;
    st->n_prompt = n_prompt;

    /* History for the repetition penalty: prompt + generated (HF): what the cache holds plus the
     * ids about to be evaluated (one sampled id and a forced speech lead), at most n_ctx + 9. */
    int32_t *hist = malloc(((size_t)n_ctx + 9) * sizeof *hist);
    float *logits = malloc((size_t)ag_llama_hparams_of(s->model)->n_vocab * sizeof *logits);
    gen g = {.s = s, .cb = cb};
    int rc = -1;
    if (!hist || !logits) {
        ag_set_error("session: out of memory");
        goto out;
    }
    memcpy(hist, ids, (size_t)n_prompt * sizeof *hist);
    int32_t n_hist = n_prompt;

    /* KV reuse: keep the longest common prefix with what the cache holds, but evaluate at least
     * the last prompt token to get its logits. */
    int32_t reuse = 0;
    const int32_t n_have = s->n_cache < ag_llama_n_past(s->model) ? s->n_cache : ag_llama_n_past(s->model);
    while (reuse < n_have && reuse < n_prompt - 1 && s->cache_ids[reuse] == ids[reuse])
        reuse++;
    if (ag_llama_truncate(s->model, reuse) != 0)
        goto out;
    s->n_cache = reuse;
    st->n_reused = reuse;

    /* The prompt may open a span (" <sosp>" forced by the template): replay its tags. */
    for (int32_t i = 0; i < n_prompt; i++) {
        if (g.span == 0) {
            for (int m = 1; m < N_SPANS; m++)
                if (ids[i] == s->span_start[m])
                    g.span = m;
        } else if (ids[i] == s->span_end[g.span]) {
            g.span = 0;
        }
    }
    const int forced_span = g.span;
    ag_text_stream_reset(s->stream);
    ag_sampler_seed(s->sampler, cfg.seed);

    if (poll_stop(cb)) {
        st->cancelled = true;
        st->reply = reply_text(s, forced_span, NULL, 0);
        rc = st->reply ? 0 : -1;
        goto out;
    }
    double t0 = now_s();
    if (ag_llama_eval(s->model, ids + reuse, n_prompt - reuse, logits, NULL) != 0) {
        s->n_cache = 0;
        ag_llama_truncate(s->model, 0);
        goto out;
    }
    memcpy(s->cache_ids + reuse, ids + reuse, (size_t)(n_prompt - reuse) * sizeof *ids);
    s->n_cache = n_prompt;
    st->prefill_s = now_s() - t0;

    t0 = now_s();
    const ag_sampling_params *per_span[N_SPANS] = {&cfg.text, &cfg.speech, &cfg.image, &cfg.music};
    int32_t n_gen = 0, n_pre = 0; /* n_pre: ids of a forced spoken reply's text part */
    bool ended = false, speech_started = forced_span == AG_MODALITY_SPEECH;
    const int32_t eosp = s->span_end[AG_MODALITY_SPEECH];
    for (;;) {
        if (cfg.constrain_spans && g.span)
            for (int32_t i = 0; i < s->n_vocab; i++)
                if (s->modality_of[i] != g.span && i != s->span_end[g.span])
                    logits[i] = -INFINITY;
        if (cfg.constrain_spans && !g.span) /* text: no bare codes (a span opens with its tag) */
            for (int32_t i = 0; i < s->n_vocab; i++)
                if (s->modality_of[i] != AG_MODALITY_NONE)
                    logits[i] = -INFINITY;
        if (fsr && g.span == AG_MODALITY_SPEECH) {
            for (int32_t i = 0; i < s->n_vocab; i++)
                if (s->modality_of[i] != AG_MODALITY_SPEECH && i != eosp)
                    logits[i] = -INFINITY;
            if (eosp >= 0 && eosp < s->n_vocab && g.n_codes < (size_t)(cfg.speech.min_new_tokens > 0 ? cfg.speech.min_new_tokens : 0))
                logits[eosp] = -INFINITY;
        }
        int32_t id = ag_sampler_sample(s->sampler, per_span[g.span], logits, s->n_vocab, hist, (size_t)n_hist, n_gen,
                                       s->end_ids, s->n_end);
        if (id < 0)
            goto out;
        /* A forced spoken reply: an end id before the speech replaces itself with the lead; a
         * sampled <eot> or the last id of the text budget is followed by (the rest of) it. */
        int lead_from = -1;
        bool accept = true;
        if (fsr && !speech_started) {
            if (is_end(s, id)) {
                lead_from = 0;
                accept = false;
            } else if (id == s->speech_lead[0]) {
                lead_from = 1;
            } else if (n_pre + 1 >= text_budget) {
                lead_from = 0;
            }
        }
        int32_t batch[1 + 8];
        int nb = 0;
        if (accept) {
            n_gen++;
            hist[n_hist++] = id;
            if (cb && cb->on_token)
                cb->on_token(cb->user, id);
            if (lead_from < 0 && is_end(s, id)) {
                ended = true;
                break;
            }
            const int span_before = g.span;
            if (take_token(&g, id) != 0)
                goto out;
            batch[nb++] = id;
            if (fsr && !speech_started) {
                n_pre++;
                speech_started = g.span == AG_MODALITY_SPEECH;
            } else if (fsr && span_before == AG_MODALITY_SPEECH && g.span == 0) {
                break; /* the spoken reply's speech span closed: the reply is complete */
            }
        }
        if (lead_from >= 0) {
            if (g.span)
                close_span(&g); /* an image / music span the text part had open */
            for (int k = lead_from; k < s->n_speech_lead; k++) {
                const int32_t f = s->speech_lead[k];
                n_gen++;
                hist[n_hist++] = f;
                if (cb && cb->on_token)
                    cb->on_token(cb->user, f);
                if (take_token(&g, f) != 0)
                    goto out;
                batch[nb++] = f;
            }
            speech_started = true;
        }
        if (n_gen >= max_new) {
            st->hit_max_tokens = true;
            break;
        }
        if (ag_llama_n_past(s->model) + nb > n_ctx) {
            st->context_full = true;
            break;
        }
        if (poll_stop(cb)) {
            st->cancelled = true;
            break;
        }
        if (ag_llama_eval(s->model, batch, nb, logits, NULL) != 0) {
            s->n_cache = 0;
            ag_llama_truncate(s->model, 0);
            goto out;
        }
        memcpy(s->cache_ids + s->n_cache, batch, (size_t)nb * sizeof *batch);
        s->n_cache += nb;
    }
    st->decode_s = now_s() - t0;
    st->n_generated = n_gen;
    if (g.span)
        close_span(&g); /* the reply ended inside a span: still decoded, whole frames */
    const char *p;
    int64_t n = ag_text_stream_flush(s->stream, &p);
    if (n < 0)
        goto out;
    emit_text(&g, p, n);
    st->reply = reply_text(s, forced_span, hist + n_prompt, (size_t)(n_gen - (ended ? 1 : 0)));
    if (!st->reply)
        goto out;
    rc = 0;
out:
    free(g.codes);
    free(hist);
    free(logits);
    free(ids);
    if (st == &local)
        ag_gen_stats_clear(st);
    return rc;
fail_nostate:
    if (st == &local)
        ag_gen_stats_clear(st);
    return -1;
}
