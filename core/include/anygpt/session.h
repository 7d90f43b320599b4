/* anygpt core: AnyGPT prompt assembly (chat-model "MMGPT" template, spec anygpt.md).
 *
 * Every task uses the chat template
 *   {system}\n[Human]: {user}<eoh>\n[MMGPT]: {reply}<eos>\n ... [Human]: {user}<eoh>\n[MMGPT]:
 * where {user} is the task's template from the spec (prompter.py wording, "generation" sic) and
 * text-to-X tasks append " <sosp>" / " <soim>" / " <somu>" so the reply starts in that span.
 * AG_TASK_RAW uses the given text unchanged. The generation session (model + sampler) is not
 * implemented yet: only prompt building is. */
#ifndef ANYGPT_SESSION_H
#define ANYGPT_SESSION_H
#include <stddef.h>
#include <stdint.h>
#include "anygpt/text.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum ag_task {
    AG_TASK_CHAT = 0,
    AG_TASK_ASR,
    AG_TASK_TTS,
    AG_TASK_CAPTION,
    AG_TASK_TEXT_TO_IMAGE,
    AG_TASK_TEXT_TO_MUSIC,
    AG_TASK_MUSIC_CAPTION,
    AG_TASK_RAW
} ag_task;

#define AG_DEFAULT_SYSTEM_PROMPT                                                                         \
    "You are an AI assistant named MMGPT who can understand and generate multimodal content, including " \
    "text, speech, images and audio."

/* One previous turn of a chat. */
typedef struct ag_chat_turn {
    const char *user;  /* the user message as it stood in the prompt */
    const char *reply; /* the reply text read between "[MMGPT]: " and <eos> */
} ag_chat_turn;

typedef struct ag_prompt_desc {
    ag_task task;
    const char *system;      /* NULL: AG_DEFAULT_SYSTEM_PROMPT */
    const char *text;        /* chat message / caption to speak / text to render */
    const char *instruction; /* NULL: the task's default wording */
    ag_modality modality;    /* kind of codes (input for asr/caption/music-caption, optional for chat) */
    const int32_t *codes;    /* speech: layer-1 codes; image: 32 codes; music: frame-major 4 codebooks */
    size_t n_codes;
    const ag_chat_turn *history;
    size_t n_history;
} ag_prompt_desc;

/* Token string of a modality item: "<sosp><🗣️c0>...<eosp>", "<soim><👀c0>...<eoim>",
 * "<somu><🎶v>...<eomu>" with v = code + 2048 * (i % 4) for music. malloc'd; NULL + error on bad
 * input (negative or too large code, music count not a multiple of 4). */
char *ag_modality_string(ag_modality m, const int32_t *codes, size_t n);

/* The exact prompt text of a request. malloc'd; NULL + ag_last_error() on bad input. */
char *ag_prompt_build(const ag_prompt_desc *d);

/* Task name <-> enum ("chat", "asr", "tts", "caption", "text-to-image", "text-to-music",
 * "music-caption", "raw"); -1 / NULL when unknown. */
int ag_task_from_name(const char *name);
const char *ag_task_name(ag_task t);

#ifdef __cplusplus
}
#endif
#endif
