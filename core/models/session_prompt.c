/* AnyGPT prompt assembly: see anygpt/session.h and specs/anygpt.md. */
#include "anygpt/session.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static char *sb_finish(sbuf *b) {
    if (b->failed) {
        free(b->p);
        ag_set_error("prompt: out of memory");
        return NULL;
    }
    if (!b->p)
        sb_put(b, "", 0);
    return b->p;
}

char *ag_modality_string(ag_modality m, const int32_t *codes, size_t n) {
    const char *start, *end, *prefix;
    int32_t limit;
    switch (m) {
    case AG_MODALITY_SPEECH: start = "<sosp>"; end = "<eosp>"; prefix = "<\xF0\x9F\x97\xA3\xEF\xB8\x8F"; limit = 1024; break;
    case AG_MODALITY_IMAGE: start = "<soim>"; end = "<eoim>"; prefix = "<\xF0\x9F\x91\x80"; limit = 8192; break;
    case AG_MODALITY_MUSIC: start = "<somu>"; end = "<eomu>"; prefix = "<\xF0\x9F\x8E\xB6"; limit = 2048; break;
    default: ag_set_error("modality string: unknown modality %d", (int)m); return NULL;
    }
    if (n && !codes) {
        ag_set_error("modality string: no codes");
        return NULL;
    }
    if (m == AG_MODALITY_MUSIC && n % 4) {
        ag_set_error("modality string: %zu music codes is not a whole number of 4-codebook frames", n);
        return NULL;
    }
    sbuf b = {0};
    sb_str(&b, start);
    for (size_t i = 0; i < n; i++) {
        if (codes[i] < 0 || codes[i] >= limit) {
            free(b.p);
            ag_set_error("modality string: code %d at %zu outside [0, %d)", codes[i], i, limit);
            return NULL;
        }
        int32_t v = m == AG_MODALITY_MUSIC ? codes[i] + 2048 * (int32_t)(i % 4) : codes[i];
        char num[16];
        int k = snprintf(num, sizeof num, "%d>", v);
        sb_str(&b, prefix);
        sb_put(&b, num, (size_t)k);
    }
    sb_str(&b, end);
    return sb_finish(&b);
}

static const char *const task_names[] = {"chat", "asr", "tts", "caption", "text-to-image",
                                         "text-to-music", "music-caption", "raw"};

int ag_task_from_name(const char *name) {
    for (size_t i = 0; name && i < sizeof task_names / sizeof task_names[0]; i++)
        if (!strcmp(name, task_names[i]))
            return (int)i;
    return -1;
}

const char *ag_task_name(ag_task t) {
    return (unsigned)t < sizeof task_names / sizeof task_names[0] ? task_names[t] : NULL;
}

/* Default instruction per task (chat model templates, prompter.py wording) and the expected
 * input modality (NONE: text input). */
static const char *task_instruction(ag_task t, ag_modality *in) {
    *in = AG_MODALITY_NONE;
    switch (t) {
    case AG_TASK_ASR: *in = AG_MODALITY_SPEECH; return "Please transcribe the given speech.";
    case AG_TASK_TTS: return "Please read the given text.";
    case AG_TASK_CAPTION: *in = AG_MODALITY_IMAGE; return "Please describe the picture briefly.";
    case AG_TASK_TEXT_TO_IMAGE: return "Please generation an image.";
    case AG_TASK_TEXT_TO_MUSIC: return "Please compose a piece of music from the given text.";
    case AG_TASK_MUSIC_CAPTION:
        *in = AG_MODALITY_MUSIC;
        return "Please interpret the given music and provide a textual description.";
    default: return NULL;
    }
}

static const char *task_forced_start(ag_task t) {
    switch (t) {
    case AG_TASK_TTS: return " <sosp>";
    case AG_TASK_TEXT_TO_IMAGE: return " <soim>";
    case AG_TASK_TEXT_TO_MUSIC: return " <somu>";
    default: return "";
    }
}

char *ag_prompt_build(const ag_prompt_desc *d) {
    if (!d || (unsigned)d->task > AG_TASK_RAW) {
        ag_set_error("prompt: bad request");
        return NULL;
    }
    if (d->n_history && !d->history) {
        ag_set_error("prompt: history count without turns");
        return NULL;
    }
    /* limits.h: a message or item past these cannot fit any context; refused before the prompt
     * text (and its tokens) are built */
    size_t text_len = d->text ? strlen(d->text) : 0;
    if (text_len > AG_MAX_MESSAGE_BYTES || d->n_codes > AG_MAX_CONTEXT) {
        ag_set_error("prompt: a %s of %zu %s, more than the %d accepted", text_len > AG_MAX_MESSAGE_BYTES ? "message" : "token item",
                     text_len > AG_MAX_MESSAGE_BYTES ? text_len : d->n_codes,
                     text_len > AG_MAX_MESSAGE_BYTES ? "bytes" : "codes",
                     text_len > AG_MAX_MESSAGE_BYTES ? AG_MAX_MESSAGE_BYTES : AG_MAX_CONTEXT);
        return NULL;
    }
    sbuf b = {0};
    if (d->task == AG_TASK_RAW) {
        sb_str(&b, d->text ? d->text : "");
        return sb_finish(&b);
    }
    ag_modality in;
    const char *instr = task_instruction(d->task, &in);
    if (d->instruction)
        instr = d->instruction;
    /* The user message: "{input} {instruction}"; chat: the text, after a modality item if any. */
    sbuf u = {0};
    if (in != AG_MODALITY_NONE || (d->task == AG_TASK_CHAT && d->modality != AG_MODALITY_NONE)) {
        ag_modality m = in != AG_MODALITY_NONE ? in : d->modality;
        if (d->modality != AG_MODALITY_NONE && d->modality != m) {
            ag_set_error("prompt: task %s does not take %s codes", ag_task_name(d->task), d->modality == AG_MODALITY_SPEECH ? "speech" : d->modality == AG_MODALITY_IMAGE ? "image" : "music");
            return NULL;
        }
        char *ms = ag_modality_string(m, d->codes, d->n_codes);
        if (!ms)
            return NULL;
        sb_str(&u, ms);
        free(ms);
    } else if (d->text) {
        sb_str(&u, d->text);
    }
    if (d->task == AG_TASK_CHAT) {
        if (in == AG_MODALITY_NONE && d->modality != AG_MODALITY_NONE && d->text && d->text[0]) {
            sb_str(&u, " ");
            sb_str(&u, d->text);
        }
        if (d->instruction && d->instruction[0]) {
            sb_str(&u, " ");
            sb_str(&u, d->instruction);
        }
    } else if (instr && instr[0]) {
        sb_str(&u, " ");
        sb_str(&u, instr);
    }
    char *user = sb_finish(&u);
    if (!user)
        return NULL;
    sb_str(&b, d->system ? d->system : AG_DEFAULT_SYSTEM_PROMPT);
    for (size_t i = 0; i < d->n_history; i++) {
        sb_str(&b, "\n[Human]: ");
        sb_str(&b, d->history[i].user ? d->history[i].user : "");
        sb_str(&b, "<eoh>\n[MMGPT]: ");
        sb_str(&b, d->history[i].reply ? d->history[i].reply : "");
        sb_str(&b, "<eos>");
    }
    sb_str(&b, "\n[Human]: ");
    sb_str(&b, user);
    sb_str(&b, "<eoh>\n[MMGPT]:");
    sb_str(&b, task_forced_start(d->task));
    free(user);
    return sb_finish(&b);
}
