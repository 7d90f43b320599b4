/* anygpt core: AnyGPT prompt assembly (chat-model "MMGPT" template, spec anygpt.md).
 *
 * Every task uses the chat template
 *   {system}\n[Human]: {user}<eoh>\n[MMGPT]: {reply}<eos>\n ... [Human]: {user}<eoh>\n[MMGPT]:
 * where {user} is the task's template from the spec (prompter.py wording, "generation" sic) and
 * text-to-X tasks append " <sosp>" / " <soim>" / " <somu>" so the reply starts in that span.
 * AG_TASK_RAW uses the given text unchanged.
 *
 * A generation session (ag_session, second half of this header) owns a loaded LLaMA model, its
 * tokenizer and a sampler, and runs one reply at a time: prompt -> tokens (KV cache reused for
 * the longest common prefix with the previous request) -> sampled tokens, streamed as text
 * pieces and modality items through callbacks. */
#ifndef ANYGPT_SESSION_H
#define ANYGPT_SESSION_H
#include <stddef.h>
#include <stdint.h>
#include "anygpt/text.h"
#include "anygpt/llama.h"
#include "anygpt/sampling.h"
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


/* ---- generation session ---- */

typedef struct ag_session ag_session;

/* Load the LLM (a llama.cpp-convention GGUF with AnyGPT's vocab) onto be. n_ctx: KV length
 * (0: the model's). The backend stays owned by the caller and must outlive the session. */
ag_session *ag_session_new(ag_backend *be, const char *model_path, int32_t n_ctx, ag_progress_fn progress,
                           void *user);
/* Same with the KV cache type chosen (ag_session_new: AG_TYPE_F16, as llama.cpp; AG_TYPE_F32 for
 * exact logits, e.g. to compare with a reference). */
ag_session *ag_session_new_kv(ag_backend *be, const char *model_path, int32_t n_ctx, ag_type kv_type,
                              ag_progress_fn progress, void *user);
void ag_session_free(ag_session *s);
const ag_text_tokenizer *ag_session_tokenizer(const ag_session *s);
ag_llama *ag_session_model(ag_session *s);

/* Sampling per span kind: text outside modality spans, and inside <sosp>..<eosp>,
 * <soim>..<eoim>, <somu>..<eomu>. The parameters switch the moment the span tag is generated
 * (or forced by the prompt), so one reply mixing text and speech uses the spec's text config for
 * the text and its speech config for the speech. */
typedef struct ag_gen_config {
    ag_sampling_params text, speech, image, music;
    int32_t max_new_tokens; /* whole reply; <= 0: the target modality's default from the spec */
    uint64_t seed;
    /* Inside a span only its modality's code tokens and its end tag may be sampled, outside
     * spans no code token (default false, as the reference, which samples freely and reads only
     * the codes between the tags). */
    bool constrain_spans;
    /* Spoken reply for voice chat (default false: the reply is what the model writes). When set,
     * a reply is guaranteed to end with a speech item, in the spec's reply form
     * "{text}<eot>\n{speech}": once the text part ends -- the model samples <eot>, an end id
     * (<eos>, <eom>, EOS) while no speech span was written yet, or the text part reaches
     * speech_reply_text_tokens -- the ids "<eot>\n<sosp>" tokenize to are forced (the ones the
     * model did not write itself: after a sampled <eot> only "\n<sosp>"), evaluated as one
     * batch, and the speech span is sampled with the speech config, constrained to speech codes
     * and <eosp> whatever constrain_spans says, with <eosp> forbidden before
     * speech.min_new_tokens codes. The reply ends when that span closes (or at max_new_tokens /
     * a full context: the span is still reported, as any truncated span). A speech span the
     * model opens by itself counts the same. Forced ids go through on_token like sampled ones
     * and are counted in n_generated; the text part is capped at half of max_new_tokens so the
     * speech always has room. Text pieces between <eot> and <sosp> ("\n") reach on_text. */
    bool force_speech_reply;
    int32_t speech_reply_text_tokens; /* <= 0: 100 (the spec's text max_new_tokens) */
} ag_gen_config;

/* The spec's generation configs (AnyGPT config/ files) for a task, with one measured change:
 *
 * Beam search is not implemented. In OpenMOSS/AnyGPT, num_beams 5 (generate_config.json, with
 * do_sample true: HF beam sampling) is used only by the chat CLI (cli_infer_chat_model.py), for
 * every request whose target is text (its default); speech/image/music targets load their own
 * configs, without beams; the base-model CLI reads generate_config.json only for vc_steps
 * (SoundStorm). Beams would need 5 KV caches and 5 decodes per token, and text could not stream
 * until the beams settle. Measured instead (tests/reference/beam_measure.py, tiny checkpoint,
 * chat prompts, 24 tokens, 4 seeds, mean per-token log-prob under the model): greedy -0.647,
 * 5-beam search -0.482, 5-beam sampling (the reference) -0.529, sampling at temperature 1
 * -1.220 (3 prompts); at temperature 0.3 -0.624, 0.5 -0.692, 0.7 -0.925 (2 prompts, beam
 * sampling -0.494 on those). Plain sampling at temperature 1 is far from what the reference's
 * beams produce, so the text config samples at temperature 0.3 (top-p 1, no penalty, min 10
 * new tokens), the nearest measured; max_new_tokens for text targets is the chat CLI's 500.
 * Speech 1.0 / rep. 1.05 / max 1500, image 1.0 / max 200, music 1.0 / top-k 200 / rep. 1.15 /
 * max 2000, all min 10, as the spec's table. */
void ag_gen_config_default(ag_gen_config *c, ag_task task);

typedef struct ag_gen_callbacks {
    void *user;
    /* reply text outside modality spans, complete UTF-8 characters only (may be NULL) */
    void (*on_text)(void *user, const char *piece, size_t len);
    /* a modality item, once its end tag is generated or the reply ends inside it (truncated to
     * whole frames): codes frame-major [n_frames][codebooks] (speech 1, image 1, music 4) */
    void (*on_item)(void *user, ag_modality m, const int32_t *codes, size_t n_frames, int codebooks);
    /* polled before every model evaluation: true stops the reply (stats->cancelled) */
    bool (*should_stop)(void *user);
    /* every sampled id in order, the end id included (may be NULL; for tools and tests) */
    void (*on_token)(void *user, int32_t id);
    /* the open span so far (may be NULL; for streaming an item while it is generated): called
     * each time a whole frame is added, with all its codes so far, frame-major as on_item;
     * on_item still follows when the span closes */
    void (*on_item_progress)(void *user, ag_modality m, const int32_t *codes, size_t n_frames, int codebooks);
} ag_gen_callbacks;

typedef struct ag_gen_stats {
    int32_t n_prompt;    /* prompt tokens */
    int32_t n_reused;    /* of which found in the KV cache (common prefix with the last request) */
    int32_t n_generated; /* tokens sampled */
    double prefill_s, decode_s;
    bool cancelled, hit_max_tokens, context_full;
    char *prompt; /* the prompt text as built (malloc'd; ag_gen_stats_clear frees) */
    char *reply;  /* the reply as text, modality tokens included, without the end tag: what a
                     later turn's history holds (malloc'd; NUL bytes of sampled <0x00> tokens
                     dropped) */
} ag_gen_stats;
void ag_gen_stats_clear(ag_gen_stats *st);

/* Build the prompt of d, generate one reply. 0 on success (also when cancelled), -1 with
 * ag_last_error() on failure (bad codes, prompt longer than the context, backend error).
 * c NULL: ag_gen_config_default(d->task); cb and st may be NULL. *st is overwritten (clear a
 * previous result first) and must be cleared after the call, also after a failure.
 * The reply ends at <eos>, <eom> or the tokenizer's EOS (not part of stats->reply), at
 * max_new_tokens, when the context is full, or when should_stop says so. Tokens inside a span
 * that are not codes of its modality are skipped; a span without codes is not reported. */
int ag_session_generate(ag_session *s, const ag_prompt_desc *d, const ag_gen_config *c,
                        const ag_gen_callbacks *cb, ag_gen_stats *st);

#ifdef __cplusplus
}
#endif
#endif
