/* The generation session (core/models/session.c) on the tiny random AnyGPT checkpoint, on cpu and
 * vulkan, against tests/reference/session_ref.py (PyTorch, float64, recomputed from scratch at
 * every step, run here through popen on the prompt ids our tokenizer gives):
 *  1. greedy chat reply ids equal the reference's;
 *  2. KV reuse: a second request sharing a prefix gives the ids of a fresh session and of the
 *     reference, and n_reused is the common prefix with what the cache held;
 *  3. spans: a forced " <sosp>" reply's items are the reference ids' speech codes up to <eosp>;
 *     music truncated to whole 4-code frames; text pieces concatenate to ag_text_decode of the
 *     text ids; the per-span config switch (a check that fails without the switch);
 *  4. cancel after k tokens, a prompt longer than the context, bad codes;
 *  5. seeded sampling reproducible;
 *  6. a forced spoken reply (force_speech_reply): lead ids, speech codes, one item, reply text.
 * usage: test_session MODEL.gguf PYTHON session_ref.py HF_DIR */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/ag_check.h"

#define MAXT 512

typedef struct {
    int32_t n;
    int32_t v[MAXT];
} idlist;

/* What the callbacks saw. */
typedef struct {
    idlist ids;
    char text[4096];
    size_t text_len;
    int n_items;
    ag_modality item_m[8];
    idlist item_codes[8];
    int item_cb[8];
    int polls, stop_after; /* should_stop: true once stop_after tokens came (-1: never) */
} seen;

static void on_text(void *u, const char *p, size_t n)
{
    seen *s = u;
    if (s->text_len + n < sizeof s->text) {
        memcpy(s->text + s->text_len, p, n);
        s->text_len += n;
        s->text[s->text_len] = 0;
    }
}

static void on_item(void *u, ag_modality m, const int32_t *codes, size_t n_frames, int codebooks)
{
    seen *s = u;
    if (s->n_items >= 8)
        return;
    int k = s->n_items++;
    s->item_m[k] = m;
    s->item_cb[k] = codebooks;
    s->item_codes[k].n = 0;
    for (size_t i = 0; i < n_frames * (size_t)codebooks && i < MAXT; i++)
        s->item_codes[k].v[s->item_codes[k].n++] = codes[i];
}

static bool should_stop(void *u)
{
    seen *s = u;
    s->polls++;
    return s->stop_after >= 0 && s->ids.n >= s->stop_after;
}

static void on_token(void *u, int32_t id)
{
    seen *s = u;
    if (s->ids.n < MAXT)
        s->ids.v[s->ids.n++] = id;
}

static ag_gen_callbacks callbacks(seen *s)
{
    memset(s, 0, sizeof *s);
    s->stop_after = -1;
    return (ag_gen_callbacks){.user = s, .on_text = on_text, .on_item = on_item, .should_stop = should_stop,
                              .on_token = on_token};
}

static void greedy_config(ag_gen_config *c, int32_t max_new)
{
    const ag_sampling_params g = {0.0f, 0, 1.0f, 1.0f, 0};
    c->text = c->speech = c->image = c->music = g;
    c->max_new_tokens = max_new;
    c->seed = 1;
}

static bool same_ids(const idlist *a, const idlist *b)
{
    return a->n == b->n && !memcmp(a->v, b->v, (size_t)a->n * sizeof *a->v);
}

static void print_ids(const char *what, const idlist *l)
{
    printf("#   %s (%d):", what, l->n);
    for (int i = 0; i < l->n; i++)
        printf(" %d", l->v[i]);
    printf("\n");
}

/* ---- the requests and their reference replies ---- */

typedef struct {
    const char *name;
    ag_prompt_desc d;
    ag_gen_config c;
    idlist prompt, ref; /* prompt ids (our tokenizer), the reference's reply */
} job;

static const ag_text_tokenizer *TOK;
static int32_t T_SOSP, T_EOSP, T_SOIM, T_EOIM, T_SOMU, T_EOMU, T_EOS, T_EOM;

static int prompt_ids(job *j)
{
    char *p = ag_prompt_build(&j->d);
    if (!p)
        return -1;
    int64_t n = ag_text_encode(TOK, p, strlen(p), true, j->prompt.v, MAXT);
    free(p);
    if (n < 0 || n > MAXT)
        return -1;
    j->prompt.n = (int32_t)n;
    return 0;
}

/* Runs the reference on every job in one python process. */
static int run_reference(const char *py, const char *script, const char *hf, job *jobs, int n)
{
    char path[] = "/tmp/ag_session_jobsXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < n; i++) {
        const ag_sampling_params *sp[4] = {&jobs[i].c.text, &jobs[i].c.speech, &jobs[i].c.image, &jobs[i].c.music};
        fprintf(f, "%d|", jobs[i].c.max_new_tokens);
        for (int k = 0; k < 4; k++)
            fprintf(f, "%.9g,%d%s", (double)sp[k]->repetition_penalty, sp[k]->min_new_tokens, k < 3 ? ";" : "|");
        for (int k = 0; k < jobs[i].prompt.n; k++)
            fprintf(f, "%d%s", jobs[i].prompt.v[k], k + 1 < jobs[i].prompt.n ? "," : "|");
        fprintf(f, "%d\n", jobs[i].c.constrain_spans ? 1 : 0);
    }
    fclose(f);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' --tags %d,%d,%d,%d,%d,%d --ends %d,%d,%d < '%s'", py, script, hf, T_SOSP,
             T_EOSP, T_SOIM, T_EOIM, T_SOMU, T_EOMU, T_EOS, T_EOM, ag_text_eos(TOK), path);
    FILE *p = popen(cmd, "r");
    int got = 0;
    static char line[65536];
    while (p && got < n && fgets(line, sizeof line, p)) {
        idlist *r = &jobs[got++].ref;
        r->n = 0;
        for (char *s = line, *e; r->n < MAXT; s = e) {
            long v = strtol(s, &e, 10);
            if (e == s)
                break;
            r->v[r->n++] = (int32_t)v;
        }
    }
    int rc = p ? pclose(p) : -1;
    unlink(path);
    return rc == 0 && got == n ? 0 : -1;
}

/* Span walk of the spec over ids (start tag opens, its end tag closes), from state span. */
static int span_after(int span, int32_t id)
{
    const int32_t st[4] = {-1, T_SOSP, T_SOIM, T_SOMU}, en[4] = {-1, T_EOSP, T_EOIM, T_EOMU};
    if (span == 0) {
        for (int m = 1; m < 4; m++)
            if (id == st[m] && id >= 0)
                return m;
        return 0;
    }
    return id == en[span] ? 0 : span;
}

static bool is_end(int32_t id) { return id == T_EOS || id == T_EOM || id == ag_text_eos(TOK); }

/* NOSW_*: the switch job's reference without the switch (one config everywhere), not run here */
enum { J_CHAT, J_CHAT2, J_TTS, J_MUSIC, J_SWITCH, J_NOSW_SPEECH, J_NOSW_TEXT, J_TURN2, N_JOBS };
static job JOBS[N_JOBS];

static void check_reply(const char *bn, const job *j, const seen *s, const ag_gen_stats *st)
{
    CHECK(same_ids(&s->ids, &j->ref), "%s %s: ids differ from the reference", bn, j->name);
    if (!same_ids(&s->ids, &j->ref)) {
        print_ids("ours", &s->ids);
        print_ids("reference", &j->ref);
    }
    CHECK(st->n_generated == s->ids.n && st->n_prompt == j->prompt.n, "%s %s: stats %d/%d vs %d/%d", bn, j->name,
          st->n_generated, st->n_prompt, s->ids.n, j->prompt.n);
    const bool ended = j->ref.n && is_end(j->ref.v[j->ref.n - 1]);
    /* the reply text: the forced start tag (if the prompt opened a span), then the ids, no end id */
    char want[8192];
    size_t off = 0;
    if (j->d.task == AG_TASK_TTS || j->d.task == AG_TASK_TEXT_TO_MUSIC)
        off = (size_t)snprintf(want, sizeof want, "%s", j->d.task == AG_TASK_TTS ? "<sosp>" : "<somu>");
    int64_t n = ag_text_decode(TOK, s->ids.v, (size_t)(s->ids.n - ended), 0, want + off, sizeof want - off);
    CHECK(n >= 0 && st->reply && !strcmp(st->reply, want), "%s %s: reply '%s' vs '%s'", bn, j->name,
          st->reply ? st->reply : "(null)", want);
    CHECK(st->hit_max_tokens == !ended && !st->cancelled && !st->context_full && st->reply,
          "%s %s: flags max %d cancelled %d full %d", bn, j->name, st->hit_max_tokens, st->cancelled,
          st->context_full);
}

/* Items and text the ids imply, derived here independently of session.c. */
static void check_spans(const char *bn, const job *j, const seen *s)
{
    int span = 0;
    for (int i = 0; i < j->prompt.n; i++)
        span = span_after(span, j->prompt.v[i]);
    idlist text = {0}, items[8];
    ag_modality im[8];
    int n_items = 0, open = -1;
    for (int i = 0; i < s->ids.n && !is_end(s->ids.v[i]); i++) {
        int32_t id = s->ids.v[i], code;
        if (span && open < 0 && n_items < 8) {
            open = n_items++;
            items[open].n = 0;
            im[open] = (ag_modality)span;
        }
        int next = span_after(span, id);
        if (span == 0 && next == 0)
            text.v[text.n++] = id;
        else if (span && next == span && (int)ag_text_token_modality(TOK, id, &code) == span)
            items[open].v[items[open].n++] = span == AG_MODALITY_MUSIC ? code % 2048 : code;
        if (span && next != span)
            open = -1;
        span = next;
        if (span == 0)
            open = -1;
    }
    /* drop empty items; music: whole frames */
    int k = 0;
    for (int i = 0; i < n_items; i++) {
        if (im[i] == AG_MODALITY_MUSIC)
            items[i].n -= items[i].n % 4;
        if (items[i].n) {
            items[k] = items[i];
            im[k++] = im[i];
        }
    }
    CHECK(s->n_items == k, "%s %s: %d items, expected %d", bn, j->name, s->n_items, k);
    for (int i = 0; i < k && i < s->n_items; i++) {
        CHECK(s->item_m[i] == im[i] && same_ids(&s->item_codes[i], &items[i]) &&
                  s->item_cb[i] == (im[i] == AG_MODALITY_MUSIC ? 4 : 1),
              "%s %s: item %d differs", bn, j->name, i);
    }
    char want[4096];
    int64_t n = ag_text_decode(TOK, text.v, (size_t)text.n, AG_TEXT_DECODE_SKIP_ADDED, want, sizeof want);
    CHECK(n >= 0 && (size_t)n == s->text_len && !memcmp(want, s->text, (size_t)n), "%s %s: text '%s' vs '%s'", bn,
          j->name, s->text, want);
}

/* The references must exercise what the span checks are about, else they prove nothing. */
static void check_fixture(void)
{
    int n = 0;
    for (int i = 0; i < JOBS[J_TTS].ref.n; i++)
        n += ag_text_token_modality(TOK, JOBS[J_TTS].ref.v[i], &(int32_t){0}) == AG_MODALITY_SPEECH;
    CHECK(n >= 4, "fixture: the tts reply has %d speech codes", n);
    n = 0;
    for (int i = 0; i < JOBS[J_MUSIC].ref.n; i++)
        n += ag_text_token_modality(TOK, JOBS[J_MUSIC].ref.v[i], &(int32_t){0}) == AG_MODALITY_MUSIC;
    CHECK(n >= 4 && n % 4, "fixture: %d music codes, want a partial frame", n);
    const idlist *sw = &JOBS[J_SWITCH].ref;
    int eosp = -1;
    for (int i = 0; i < sw->n && eosp < 0; i++)
        if (sw->v[i] == T_EOSP)
            eosp = i;
    CHECK(eosp > 0 && eosp + 4 < sw->n, "fixture: the switch reply leaves its span at %d of %d", eosp, sw->n);
    CHECK(!same_ids(sw, &JOBS[J_NOSW_SPEECH].ref) && !same_ids(sw, &JOBS[J_NOSW_TEXT].ref),
          "fixture: the switch changes nothing");
}

static int generate(ag_session *ss, const job *j, seen *s, ag_gen_stats *st)
{
    ag_gen_callbacks cb = callbacks(s);
    return ag_session_generate(ss, &j->d, &j->c, &cb, st);
}

/* 6. A forced spoken reply (force_speech_reply): speech in, greedy. The ids before the lead are the
 * plain reply's; then the ids "<eot>\n<sosp>" tokenizes to (the rest of them when the model wrote
 * <eot>); then at least speech.min_new_tokens speech codes and <eosp>, where the reply ends; one
 * speech item with exactly those codes; the reply text holds the lead. budget: the text budget. */
static void check_spoken_reply(ag_backend *be, const char *model, int32_t budget, int32_t max_new)
{
    /* a fresh session per run: both evaluate the prompt the same way (a KV-reused prefix takes
     * another numeric path, which can flip near-ties of the random model) */
    const char *bn = ag_backend_name(be);
    static const int32_t in_codes[5] = {1, 4, 2, 2, 5};
    const ag_prompt_desc d = {.task = AG_TASK_CHAT, .modality = AG_MODALITY_SPEECH, .codes = in_codes,
                              .n_codes = 5};
    ag_gen_config c = {0};
    greedy_config(&c, max_new);
    c.speech.min_new_tokens = 4;
    seen plain, sp;
    ag_gen_stats st = {0};
    ag_gen_callbacks cb = callbacks(&plain);
    ag_session *ss = ag_session_new_kv(be, model, 256, AG_TYPE_F32, NULL, NULL);
    CHECK(ss && ag_session_generate(ss, &d, &c, &cb, &st) == 0, "%s spoken: plain: %s", bn, ag_last_error());
    ag_gen_stats_clear(&st);
    ag_session_free(ss);
    ss = ag_session_new_kv(be, model, 256, AG_TYPE_F32, NULL, NULL);
    c.force_speech_reply = true;
    c.speech_reply_text_tokens = budget;
    cb = callbacks(&sp);
    CHECK(ss && ag_session_generate(ss, &d, &c, &cb, &st) == 0, "%s spoken: %s", bn, ag_last_error());
    int32_t lead[8];
    int64_t nl = ag_text_encode(TOK, "<eot>\n<sosp>", 12, false, lead, 8);
    const int32_t eot = ag_text_token_id(TOK, "<eot>", (size_t)-1);
    CHECK(nl >= 2 && lead[0] == eot && lead[nl - 1] == T_SOSP, "%s spoken: lead tokenizes to %lld ids", bn,
          (long long)nl);
    /* where the lead starts: the first <eot>, or the first id that differs from the plain reply */
    int at = -1;
    for (int i = 0; i < sp.ids.n && at < 0; i++)
        if (sp.ids.v[i] == eot || i >= plain.ids.n || sp.ids.v[i] != plain.ids.v[i])
            at = i;
    const int32_t eff = budget < max_new / 2 ? budget : max_new / 2;
    CHECK(at >= 0 && at <= eff, "%s spoken: lead at %d, text budget %d", bn, at, eff);
    if (at < 0 || nl < 2)
        goto done;
    /* before the budget, the lead comes only where the plain reply wrote <eot> or ended */
    CHECK(at == eff || (at < plain.ids.n && (plain.ids.v[at] == eot || is_end(plain.ids.v[at]))),
          "%s spoken: lead at %d before the budget %d, where the plain reply has %d", bn, at, eff,
          at < plain.ids.n ? plain.ids.v[at] : -1);
    for (int i = 0; i < at; i++)
        CHECK(!is_end(sp.ids.v[i]) && sp.ids.v[i] != T_SOSP, "%s spoken: id %d of the text part is %d", bn, i,
              sp.ids.v[i]);
    CHECK(at + nl <= sp.ids.n && !memcmp(sp.ids.v + at, lead, (size_t)nl * sizeof *lead),
          "%s spoken: the ids at %d are not the lead", bn, at);
    if (t_fail) {
        print_ids("plain", &plain.ids);
        print_ids("spoken", &sp.ids);
    }
    idlist codes = {0};
    int i = at + (int)nl;
    for (int32_t code; i < sp.ids.n && ag_text_token_modality(TOK, sp.ids.v[i], &code) == AG_MODALITY_SPEECH; i++)
        codes.v[codes.n++] = code;
    const bool closed = i == sp.ids.n - 1 && sp.ids.v[i] == T_EOSP;
    CHECK(closed || (i == sp.ids.n && st.hit_max_tokens), "%s spoken: after %d codes id %d of %d is %d", bn, codes.n,
          i, sp.ids.n, i < sp.ids.n ? sp.ids.v[i] : -1);
    CHECK(codes.n >= 4 || st.hit_max_tokens, "%s spoken: %d codes, min_new_tokens 4", bn, codes.n);
    CHECK(sp.n_items == 1 && sp.item_m[0] == AG_MODALITY_SPEECH && same_ids(&sp.item_codes[0], &codes),
          "%s spoken: %d items, first has %d codes (%d in the ids)", bn, sp.n_items, sp.item_codes[0].n, codes.n);
    CHECK(st.n_generated == sp.ids.n && st.reply && strstr(st.reply, "<eot>") && strstr(st.reply, "<sosp>") &&
              (!closed || strstr(st.reply, "<eosp>")),
          "%s spoken: reply '%s', %d generated", bn, st.reply ? st.reply : "(null)", st.n_generated);
    printf("# %s spoken reply: %d text ids, lead %lld ids, %d speech codes%s\n", bn, at, (long long)nl, codes.n,
           closed ? ", <eosp>" : ", max tokens");
done:
    ag_gen_stats_clear(&st);
    ag_session_free(ss);
}

static void run_backend(ag_backend *be, const char *model)
{
    const char *bn = ag_backend_name(be);
    ag_session *ss = ag_session_new_kv(be, model, 256, AG_TYPE_F32, NULL, NULL);
    CHECK(ss != NULL, "%s: session: %s", bn, ag_last_error());
    if (!ss)
        return;
    seen s;
    ag_gen_stats st = {0};

    /* 1. greedy chat */
    job *j = &JOBS[J_CHAT];
    CHECK(generate(ss, j, &s, &st) == 0, "%s chat: %s", bn, ag_last_error());
    check_reply(bn, j, &s, &st);
    check_spans(bn, j, &s);
    CHECK(st.n_reused == 0 && st.prefill_s > 0 && st.decode_s > 0, "%s chat: reused %d, times %g %g", bn, st.n_reused,
          st.prefill_s, st.decode_s);
    /* what the cache holds now: the prompt and every generated id but the last */
    idlist cache = j->prompt;
    for (int i = 0; i + 1 < s.ids.n; i++)
        cache.v[cache.n++] = s.ids.v[i];
    ag_gen_stats_clear(&st);

    /* 2. KV reuse: another message, then a second turn (its history repeats the reply) */
    const int reuse_jobs[2] = {J_TURN2, J_CHAT2}; /* the second turn right after the first */
    for (int t = 0; t < 2; t++) {
        j = &JOBS[reuse_jobs[t]];
        int32_t lcp = 0;
        while (lcp < cache.n && lcp < j->prompt.n - 1 && cache.v[lcp] == j->prompt.v[lcp])
            lcp++;
        CHECK(generate(ss, j, &s, &st) == 0, "%s %s: %s", bn, j->name, ag_last_error());
        check_reply(bn, j, &s, &st);
        CHECK(st.n_reused == lcp && lcp > 0, "%s %s: n_reused %d, common prefix %d", bn, j->name, st.n_reused, lcp);
        printf("# %s %s: %d prompt tokens, %d reused, %d generated\n", bn, j->name, st.n_prompt, st.n_reused,
               st.n_generated);
        cache = j->prompt;
        for (int i = 0; i + 1 < s.ids.n; i++)
            cache.v[cache.n++] = s.ids.v[i];
        idlist reused_ids = s.ids;
        ag_gen_stats_clear(&st);
        ag_session *fresh = ag_session_new_kv(be, model, 256, AG_TYPE_F32, NULL, NULL);
        if (fresh) {
            CHECK(generate(fresh, j, &s, &st) == 0 && same_ids(&s.ids, &reused_ids) && st.n_reused == 0,
                  "%s %s: fresh session differs", bn, j->name);
            ag_gen_stats_clear(&st);
            ag_session_free(fresh);
        }
    }

    /* 3. spans: speech forced by the prompt, music truncated to whole frames, the switch */
    for (int t = J_TTS; t <= J_SWITCH; t++) {
        j = &JOBS[t];
        CHECK(generate(ss, j, &s, &st) == 0, "%s %s: %s", bn, j->name, ag_last_error());
        check_reply(bn, j, &s, &st);
        check_spans(bn, j, &s);
        ag_gen_stats_clear(&st);
    }

    /* 4. cancel after k tokens; too long a prompt; bad codes */
    for (int k = 0; k <= 3; k += 3) {
        ag_gen_callbacks cb = callbacks(&s);
        s.stop_after = k;
        CHECK(ag_session_generate(ss, &JOBS[J_CHAT].d, &JOBS[J_CHAT].c, &cb, &st) == 0 && st.cancelled &&
                  st.n_generated == k && s.ids.n == k && s.polls == k + 1 && st.reply,
              "%s cancel after %d: generated %d, cancelled %d, polls %d", bn, k, st.n_generated, st.cancelled,
              s.polls);
        ag_gen_stats_clear(&st);
    }
    char longtext[8192];
    for (size_t i = 0; i + 1 < sizeof longtext; i++)
        longtext[i] = "kalomi "[i % 7];
    longtext[sizeof longtext - 1] = 0;
    ag_prompt_desc d = {.task = AG_TASK_CHAT, .text = longtext};
    CHECK(ag_session_generate(ss, &d, NULL, NULL, &st) == -1 && strstr(ag_last_error(), "context"),
          "%s: long prompt: %s", bn, ag_last_error());
    ag_gen_stats_clear(&st);
    const int32_t bad[] = {3, 1024};
    ag_prompt_desc db = {.task = AG_TASK_ASR, .modality = AG_MODALITY_SPEECH, .codes = bad, .n_codes = 2};
    CHECK(ag_session_generate(ss, &db, NULL, NULL, &st) == -1 && strstr(ag_last_error(), "1024"), "%s: bad codes: %s",
          bn, ag_last_error());
    ag_gen_stats_clear(&st);
    const int32_t frag[] = {1, 2, 3};
    ag_prompt_desc dm = {.task = AG_TASK_MUSIC_CAPTION, .modality = AG_MODALITY_MUSIC, .codes = frag, .n_codes = 3};
    CHECK(ag_session_generate(ss, &dm, NULL, NULL, &st) == -1, "%s: 3 music codes accepted", bn);
    ag_gen_stats_clear(&st);
    /* the session still works after the failures, and the cache was kept honest */
    CHECK(generate(ss, &JOBS[J_CHAT], &s, &st) == 0, "%s: after failures: %s", bn, ag_last_error());
    check_reply(bn, &JOBS[J_CHAT], &s, &st);
    ag_gen_stats_clear(&st);

    /* a full context ends the reply: the last id sampled has no room to be evaluated */
    j = &JOBS[J_CHAT];
    ag_session *small = ag_session_new_kv(be, model, j->prompt.n + 5, AG_TYPE_F32, NULL, NULL);
    CHECK(small != NULL, "%s: small session: %s", bn, ag_last_error());
    if (small) {
        idlist want = j->ref;
        want.n = 6;
        CHECK(generate(small, j, &s, &st) == 0 && st.context_full && !st.hit_max_tokens && same_ids(&s.ids, &want),
              "%s: full context: %d generated, context_full %d", bn, s.ids.n, st.context_full);
        ag_gen_stats_clear(&st);
        ag_session_free(small);
    }

    /* 5. seeded sampling: the spec's configs at temperature 1 */
    ag_gen_config c;
    ag_gen_config_default(&c, AG_TASK_CHAT);
    c.max_new_tokens = 24;
    idlist runs[3];
    const uint64_t seeds[3] = {7, 7, 8};
    for (int r = 0; r < 3; r++) {
        c.seed = seeds[r];
        ag_gen_callbacks cb = callbacks(&s);
        CHECK(ag_session_generate(ss, &JOBS[J_CHAT].d, &c, &cb, &st) == 0, "%s sample: %s", bn, ag_last_error());
        runs[r] = s.ids;
        ag_gen_stats_clear(&st);
    }
    CHECK(same_ids(&runs[0], &runs[1]), "%s: same seed, different ids", bn);
    CHECK(!same_ids(&runs[0], &runs[2]), "%s: different seeds, same ids", bn);
    CHECK(runs[0].n >= 10, "%s: %d sampled tokens, min_new_tokens is 10", bn, runs[0].n);
    check_spoken_reply(be, model, 6, 48); /* the plain reply ends after 2 ids: the lead replaces its end */
    check_spoken_reply(be, model, 1, 48); /* the budget ends the text part after 1 id */
    ag_session_free(ss);
}

static void setup_jobs(void)
{
    const ag_prompt_desc chat = {.task = AG_TASK_CHAT, .text = "ka lo mi ne ru"};
    JOBS[J_CHAT] = (job){.name = "chat", .d = chat};
    JOBS[J_CHAT2] = (job){.name = "chat, other message", .d = {.task = AG_TASK_CHAT, .text = "ka lo po ve"}};
    /* a second turn after the first: its history repeats the first message (the reply text does
     * not matter: re-tokenized after "[MMGPT]:" it no longer matches what was generated) */
    static const ag_chat_turn turn1 = {.user = "ka lo mi ne ru", .reply = "ta shi po ve."};
    JOBS[J_TURN2] = (job){.name = "second turn",
                          .d = {.task = AG_TASK_CHAT, .text = "shi an el", .history = &turn1, .n_history = 1}};
    JOBS[J_TTS] = (job){.name = "tts", .d = {.task = AG_TASK_TTS, .text = "the ing or um"}};
    JOBS[J_MUSIC] = (job){.name = "music", .d = {.task = AG_TASK_TEXT_TO_MUSIC, .text = "ta shi po"}};
    for (int i = 0; i < N_JOBS; i++)
        greedy_config(&JOBS[i].c, 32);
    /* spans hold only codes here (the random model would not write any), music: 7 codes are not a
     * whole number of frames */
    JOBS[J_TTS].c.constrain_spans = true;
    JOBS[J_MUSIC].c.constrain_spans = true;
    JOBS[J_MUSIC].c.max_new_tokens = 7;
    /* The switch: a strong repetition penalty for speech only. Inside the forced span it soon
     * penalizes every code, so <eosp> wins and the reply goes on as text, unpenalized. Without
     * the switch (one config throughout) the ids differ: checked on the reference's own runs. */
    const ag_prompt_desc tts = {.task = AG_TASK_TTS, .text = "ka lo mi ne ru"};
    JOBS[J_SWITCH] = (job){.name = "switch", .d = tts};
    JOBS[J_NOSW_SPEECH] = (job){.name = "switch, speech config only", .d = tts};
    JOBS[J_NOSW_TEXT] = (job){.name = "switch, text config only", .d = tts};
    for (int i = J_SWITCH; i <= J_NOSW_TEXT; i++) {
        greedy_config(&JOBS[i].c, 32);
        JOBS[i].c.constrain_spans = true;
        JOBS[i].c.speech.repetition_penalty = 3.0f;
    }
    JOBS[J_NOSW_SPEECH].c.text = JOBS[J_NOSW_SPEECH].c.speech;
    JOBS[J_NOSW_TEXT].c.speech = JOBS[J_NOSW_TEXT].c.text;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL.gguf PYTHON session_ref.py HF_DIR\n", argv[0]);
        return 2;
    }
    ag_gguf *f = ag_gguf_open(argv[1]);
    ag_text_tokenizer *tok = f ? ag_text_tokenizer_from_gguf(f) : NULL;
    ag_gguf_close(f);
    if (!tok) {
        printf("cannot read the vocab of %s: %s\n", argv[1], ag_last_error());
        return 1;
    }
    TOK = tok;
    const char *names[8] = {"<sosp>", "<eosp>", "<soim>", "<eoim>", "<somu>", "<eomu>", "<eos>", "<eom>"};
    int32_t *dst[8] = {&T_SOSP, &T_EOSP, &T_SOIM, &T_EOIM, &T_SOMU, &T_EOMU, &T_EOS, &T_EOM};
    for (int i = 0; i < 8; i++) {
        *dst[i] = ag_text_token_id(tok, names[i], (size_t)-1);
        CHECK(*dst[i] >= 0, "vocab lacks %s", names[i]);
    }
    setup_jobs();
    for (int i = 0; i < N_JOBS; i++)
        CHECK(prompt_ids(&JOBS[i]) == 0, "prompt %s: %s", JOBS[i].name, ag_last_error());
    CHECK(run_reference(argv[2], argv[3], argv[4], JOBS, N_JOBS) == 0, "reference failed");
    for (int i = 0; i < N_JOBS; i++)
        print_ids(JOBS[i].name, &JOBS[i].ref);
    check_fixture();

    int skipped = 0;
    const char *only = getenv("AG_TEST_BACKEND");
    for (int b = 0; b < 2 && !t_fail; b++) {
        const char *kind = b == 0 ? "cpu" : "vulkan";
        if (only && strcmp(only, kind))
            continue;
        ag_backend *be = b == 0 ? ag_backend_cpu_new(2) : ag_backend_vulkan_new(-1);
        if (!be) {
            const char *req = getenv("AG_REQUIRE_VULKAN");
            if (b == 1 && !(req && strcmp(req, "1") == 0)) {
                printf("# vulkan: skipped (%s)\n", ag_last_error());
                skipped++;
                continue;
            }
            CHECK(0, "%s backend: %s", kind, ag_last_error());
            continue;
        }
        printf("# device: %s %s\n", ag_backend_name(be), ag_backend_device_name(be));
        run_backend(be, argv[1]);
        ag_backend_free(be);
    }
    ag_text_tokenizer_free(tok);
    printf("%d passed, %d failed, %d skipped\n", t_pass, t_fail, skipped);
    return t_fail ? 1 : 0;
}
