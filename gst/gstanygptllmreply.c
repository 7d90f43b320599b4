/* anygptllm, streaming task side: one request -> prompt -> core session -> text pieces and
 * token items pushed downstream, the `anygptllm` element message, and the chat history. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstanygptllm.h"

#include "anygpt/error.h"

#define GST_CAT_DEFAULT anygpt_core_debug

/* The spec's voice-chat template (speech in, text + speech out) for chat speech items when the
 * instruction property is not set: a voice assistant is what sends speech to a chat. */
#define VOICE_CHAT_INSTRUCTION "Please interpret the user's voice commands, provide text " \
    "responses, and generate corresponding voice replies"

/* Property values a request is generated with (copied under the object lock). */
typedef struct
{
  ag_task task;
  gchar *instruction, *system;
  guint history;
  gdouble temperature, top_p, repetition_penalty;
  gint top_k, max_new_tokens;
  gint64 seed;
  gboolean constrain_spans;
  gboolean speech_reply;
  GstAnygptLlmTextMode text_mode;
  guint64 caption_duration;
} Settings;

static void
settings_read (GstAnygptLlm * self, Settings * s)
{
  GST_OBJECT_LOCK (self);
  s->task = self->task;
  s->instruction = g_strdup (self->instruction);
  s->system = g_strdup (self->system_prompt);
  s->history = self->history;
  s->temperature = self->temperature;
  s->top_p = self->top_p;
  s->repetition_penalty = self->repetition_penalty;
  s->top_k = self->top_k;
  s->max_new_tokens = self->max_new_tokens;
  s->seed = self->seed;
  s->constrain_spans = self->constrain_spans;
  s->speech_reply = self->speech_reply == GST_ANYGPT_LLM_SPEECH_REPLY_ALWAYS;
  s->text_mode = self->text_mode;
  s->caption_duration = self->caption_duration;
  GST_OBJECT_UNLOCK (self);
}

static void
settings_clear (Settings * s)
{
  g_free (s->instruction);
  g_free (s->system);
}

/* Set properties replace a parameter in every span kind; negative ones keep the spec's. */
static void
settings_apply (const Settings * s, ag_gen_config * c)
{
  ag_sampling_params *spans[] = { &c->text, &c->speech, &c->image, &c->music };
  for (guint i = 0; i < G_N_ELEMENTS (spans); i++) {
    if (s->temperature >= 0)
      spans[i]->temperature = (float) s->temperature;
    if (s->top_p >= 0)
      spans[i]->top_p = (float) s->top_p;
    if (s->top_k >= 0)
      spans[i]->top_k = s->top_k;
    if (s->repetition_penalty >= 0.01)
      spans[i]->repetition_penalty = (float) s->repetition_penalty;
  }
  if (s->max_new_tokens > 0)
    c->max_new_tokens = s->max_new_tokens;
  c->constrain_spans = s->constrain_spans;
  c->force_speech_reply = s->speech_reply && s->task == AG_TASK_CHAT;
  c->seed = s->seed >= 0 ? (uint64_t) s->seed :
      ((uint64_t) g_random_int () << 32) | g_random_int ();
}

void
gst_anygpt_llm_send_sticky_events (GstAnygptLlm * self)
{
  GstPad *pads[] = { self->text_src, self->speech_src, self->image_src, self->music_src };
  if (self->need_stream_start) {
    guint group = gst_util_group_id_next ();
    /* gst_pad_create_stream_id wants at most one sink pad: a random id per start, like a
     * source without a URI */
    guint64 base = ((guint64) g_random_int () << 32) | g_random_int ();
    for (guint i = 0; i < G_N_ELEMENTS (pads); i++) {
      gchar *id = g_strdup_printf ("%016" G_GINT64_MODIFIER "x/%s", base, GST_PAD_NAME (pads[i]));
      GstEvent *ev = gst_event_new_stream_start (id);
      gst_event_set_group_id (ev, group);
      gst_pad_push_event (pads[i], ev);
      g_free (id);
      GstCaps *caps = gst_pad_get_pad_template_caps (pads[i]);
      gst_pad_push_event (pads[i], gst_event_new_caps (caps));
      gst_caps_unref (caps);
    }
    self->need_stream_start = FALSE;
    self->need_segment = TRUE;
  }
  g_mutex_lock (&self->lock);
  gboolean need_segment = self->need_segment;
  self->need_segment = FALSE;
  g_mutex_unlock (&self->lock);
  if (need_segment) {
    /* output times are running times of the input (see Timing): a plain segment from 0 */
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    /* a new segment (start, flush, barge-in): a reply held from before is not sent */
    gst_anygpt_llm_reset_text_timing (self);
    gst_anygpt_llm_push_src_event (self, gst_event_new_segment (&seg));
    self->text_pos = 0;
  }
}

void
gst_anygpt_llm_reset_text_timing (GstAnygptLlm * self)
{
  gst_clear_buffer (&self->pending_text);
  self->last_text_duration = GST_CLOCK_TIME_NONE;
  self->text_pos = GST_CLOCK_TIME_NONE;
}

void
gst_anygpt_llm_clear_turns (GstAnygptLlm * self)
{
  GstAnygptLlmTurn *t;
  while ((t = g_queue_pop_head (&self->turns))) {
    g_free (t->user);
    g_free (t->reply);
    g_free (t);
  }
}

static void
add_turn (GstAnygptLlm * self, gchar * user, const gchar * reply, guint keep)
{
  GstAnygptLlmTurn *t = g_new (GstAnygptLlmTurn, 1);
  t->user = user;
  t->reply = g_strdup (reply ? reply : "");
  g_queue_push_tail (&self->turns, t);
  while (self->turns.length > keep) {
    t = g_queue_pop_head (&self->turns);
    g_free (t->user);
    g_free (t->reply);
    g_free (t);
  }
}

/* ---- pushing while generating (callbacks from the core, on this task) ---- */

/* Unlinked pads and pads that reached EOS do not stop the reply; flushing and errors do. */
static void
push_buffer (GstAnygptLlm * self, GstPad * pad, GstBuffer * buf)
{
  if (self->gen_flow != GST_FLOW_OK) {
    gst_buffer_unref (buf);
    return;
  }
  GstFlowReturn f = gst_pad_push (pad, buf);
  if (f != GST_FLOW_OK && f != GST_FLOW_NOT_LINKED && f != GST_FLOW_EOS) {
    GST_DEBUG_OBJECT (pad, "push: %s, stopping the reply", gst_flow_get_name (f));
    self->gen_flow = f;
  }
}

/* A text buffer with its time; what it covers moves text_pos (where gaps start). */
static void
push_text_buffer (GstAnygptLlm * self, GstBuffer * b)
{
  GstClockTime pts = GST_BUFFER_PTS (b), dur = GST_BUFFER_DURATION (b);
  if (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (dur) &&
      GST_CLOCK_TIME_IS_VALID (self->text_pos))
    self->text_pos = MAX (self->text_pos, pts + dur);
  push_buffer (self, self->text_src, b);
}

/* stream text mode: a piece of the reply at the request's time, no duration */
static void
push_text_piece (GstAnygptLlm * self, const gchar * s, gsize len, gboolean marker)
{
  GstBuffer *b = len ? gst_buffer_new_memdup (s, len) : gst_buffer_new ();
  if (marker)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  GST_BUFFER_PTS (b) = self->reply_pts;
  push_text_buffer (self, b);
}

/* The held whole reply gets its duration from the next request's time (next: NONE at EOS or
 * when that request is untimed or not later: the last duration, or none). */
static void
release_pending_text (GstAnygptLlm * self, GstClockTime next)
{
  GstBuffer *b = self->pending_text;
  if (!b)
    return;
  self->pending_text = NULL;
  GstClockTime pts = GST_BUFFER_PTS (b);
  if (GST_CLOCK_TIME_IS_VALID (next) && next > pts)
    self->last_text_duration = next - pts;
  GST_BUFFER_DURATION (b) = self->last_text_duration;
  GST_DEBUG_OBJECT (self, "whole reply at %" GST_TIME_FORMAT " lasts %" GST_TIME_FORMAT,
      GST_TIME_ARGS (pts), GST_TIME_ARGS (self->last_text_duration));
  push_text_buffer (self, b);
}

/* No text before t: a GAP from what text_src covered, so a downstream textoverlay waiting for
 * text (wait-text) lets the video before t through while the reply is generated. */
static void
cover_text_until (GstAnygptLlm * self, GstClockTime t)
{
  if (!GST_CLOCK_TIME_IS_VALID (t) || !GST_CLOCK_TIME_IS_VALID (self->text_pos) ||
      t <= self->text_pos)
    return;
  gst_pad_push_event (self->text_src, gst_event_new_gap (self->text_pos, t - self->text_pos));
  self->text_pos = t;
}

static void
note_first_output (GstAnygptLlm * self)
{
  if (self->first_output_us)
    return;
  self->first_output_us = g_get_monotonic_time ();
  self->first_output_rt = gst_element_get_current_running_time (GST_ELEMENT (self));
}

/* stream: the newest piece is held back so the last one of the reply can carry MARKER;
 * whole: the reply is collected */
static void
on_text (void *user, const char *piece, size_t len)
{
  GstAnygptLlm *self = user;
  if (!len)
    return;
  note_first_output (self);
  if (self->held->len && !self->whole_text) {
    push_text_piece (self, self->held->str, self->held->len, FALSE);
    g_string_truncate (self->held, 0);
  }
  g_string_append_len (self->held, piece, (gssize) len);
}

/* the pipeline's running time now, NONE without a clock */
static GstClockTime
running_time_now (GstAnygptLlm * self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock), base = gst_element_get_base_time (GST_ELEMENT (self));
  gst_object_unref (clock);
  return now >= base ? now - base : GST_CLOCK_TIME_NONE;
}

/* Live: how long from now until the sinks have played the reply's audio: its end timestamp
 * (the speech or music position after its last frames) plus the latency the sinks add, past
 * the running time now; 0 when unknown (no LATENCY event yet, no clock, untimed). */
static gint64
audio_end_from_now_us (GstAnygptLlm * self)
{
  GST_OBJECT_LOCK (self);
  GstClockTime latency = self->sink_latency;
  GST_OBJECT_UNLOCK (self);
  GstClockTime end = self->speech_pos;
  if (GST_CLOCK_TIME_IS_VALID (self->music_pos) && (!GST_CLOCK_TIME_IS_VALID (end) || self->music_pos > end))
    end = self->music_pos;
  GstClockTime now = running_time_now (self);
  if (!GST_CLOCK_TIME_IS_VALID (latency) || !GST_CLOCK_TIME_IS_VALID (end) || !GST_CLOCK_TIME_IS_VALID (now) ||
      end + latency <= now)
    return 0;
  return (gint64) ((end + latency - now) / 1000);
}

/* A run of speech/music frames on its pad, timed one after the other at 50 a second. */
static void
push_frames (GstAnygptLlm * self, GstPad * pad, ag_modality m, const int32_t * codes,
    size_t n_frames, int codebooks, gboolean marker)
{
  GstBuffer *b = gst_anygpt_tokens_buffer_new (codes, n_frames, codebooks);
  GstClockTime dur = (GstClockTime) n_frames * 20 * GST_MSECOND;
  GstClockTime *pos = m == AG_MODALITY_SPEECH ? &self->speech_pos : &self->music_pos;
  /* live: the request's time has passed by now; a sink that syncs would drop the reply as
   * late, so it plays from the running time it is pushed at (no earlier) */
  GstClockTime now = self->reply_live ? running_time_now (self) : GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID (now) && (!GST_CLOCK_TIME_IS_VALID (*pos) || *pos < now))
    *pos = now;
  GST_BUFFER_PTS (b) = *pos;
  GST_BUFFER_DURATION (b) = dur;
  if (marker)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  if (GST_CLOCK_TIME_IS_VALID (*pos))
    *pos += dur;
  self->reply_audio_us += (gint64) n_frames * 20000;
  push_buffer (self, pad, b);
}

/* speech-chunk: a chunk of the open speech item goes out once more than a chunk is waiting, so
 * the item's last buffer (sent by on_item) is never empty */
static void
on_item_progress (void *user, ag_modality m, const int32_t *codes, size_t n_frames,
    int codebooks)
{
  GstAnygptLlm *self = user;
  gsize chunk = self->reply_speech_chunk;
  if (m != AG_MODALITY_SPEECH || codebooks != 1 || chunk == 0
      || n_frames <= self->speech_sent + chunk)
    return;
  note_first_output (self);
  GST_LOG_OBJECT (self->speech_src, "chunk of %" G_GSIZE_FORMAT " frames", chunk);
  push_frames (self, self->speech_src, m, codes + self->speech_sent, chunk, 1, FALSE);
  self->speech_sent += chunk;
}

static void
on_item (void *user, ag_modality m, const int32_t *codes, size_t n_frames, int codebooks)
{
  GstAnygptLlm *self = user;
  gsize sent = m == AG_MODALITY_SPEECH ? self->speech_sent : 0;
  if (m == AG_MODALITY_SPEECH)
    self->speech_sent = 0;
  GstPad *pad = m == AG_MODALITY_SPEECH ? self->speech_src :
      m == AG_MODALITY_IMAGE ? self->image_src : m == AG_MODALITY_MUSIC ? self->music_src : NULL;
  gint want = m == AG_MODALITY_MUSIC ? 4 : 1;
  if (!pad || codebooks != want || n_frames == 0) {
    GST_WARNING_OBJECT (self, "dropping item of modality %d with %d codebooks, %zu frames",
        (int) m, codebooks, n_frames);
    return;
  }
  GST_DEBUG_OBJECT (pad, "item of %zu frames (%" G_GSIZE_FORMAT " streamed)", n_frames, sent);
  note_first_output (self);
  if (m != AG_MODALITY_IMAGE) { /* speech and music: 50 frames a second, one after the other */
    if (sent < n_frames)
      push_frames (self, pad, m, codes + sent * codebooks, n_frames - sent, codebooks, TRUE);
    return;
  }
  GstBuffer *b = gst_anygpt_tokens_buffer_new (codes, n_frames, codebooks);
  GST_BUFFER_PTS (b) = self->reply_pts;
  GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  push_buffer (self, pad, b);
}

static bool
should_stop (void *user)
{
  GstAnygptLlm *self = user;
  return g_atomic_int_get (&self->cancel) || g_atomic_int_get (&self->interrupt) ||
      self->gen_flow != GST_FLOW_OK;
}

/* ---- one request ---- */

static void
post_reply_message (GstAnygptLlm * self, ag_task task, const ag_gen_stats * st,
    const GstAnygptLlmRequest * r, GstClockTime duration)
{
  gint prefilled = st->n_prompt - st->n_reused;
  GstClockTime latency = self->first_output_us ?
      (GstClockTime) (self->first_output_us - r->arrival_us) * GST_USECOND : GST_CLOCK_TIME_NONE;
  GstStructure *s = gst_structure_new ("anygptllm",
      "prompt", G_TYPE_STRING, st->prompt ? st->prompt : "",
      "reply", G_TYPE_STRING, st->reply ? st->reply : "",
      "task", G_TYPE_STRING, ag_task_name (task),
      "prompt-tokens", G_TYPE_INT, st->n_prompt,
      "reused-tokens", G_TYPE_INT, st->n_reused,
      "generated-tokens", G_TYPE_INT, st->n_generated,
      "prefill-tokens-per-second", G_TYPE_DOUBLE,
      st->prefill_s > 0 ? prefilled / st->prefill_s : 0.0,
      "decode-tokens-per-second", G_TYPE_DOUBLE,
      st->decode_s > 0 ? st->n_generated / st->decode_s : 0.0,
      "cancelled", G_TYPE_BOOLEAN, (gboolean) st->cancelled,
      "pts", G_TYPE_UINT64, (guint64) r->pts,
      "duration", G_TYPE_UINT64, (guint64) duration,
      "latency", G_TYPE_UINT64, (guint64) latency,
      "running-time", G_TYPE_UINT64, (guint64) self->first_output_rt, NULL);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

/* The user message as it stands in the prompt (what a later turn's history repeats). */
static gchar *
user_message (const ag_prompt_desc * d)
{
  char *item = d->text ? NULL : ag_modality_string (d->modality, d->codes, d->n_codes);
  if (!d->text && !item)
    return NULL;
  gboolean instr = d->instruction && d->instruction[0];
  gchar *m = g_strconcat (d->text ? d->text : item, instr ? " " : "",
      instr ? d->instruction : "", NULL);
  free (item);
  return m;
}

/* The prompt of d, leaving out the oldest chat turns while it is longer than the context (a
 * reply needs one more position). NULL with *why (or ag_last_error) when it cannot fit. */
static char *
fit_prompt (GstAnygptLlm * self, ag_prompt_desc * d, gchar ** why)
{
  const ag_text_tokenizer *tok = ag_session_tokenizer (self->session);
  int32_t n_ctx = ag_llama_n_ctx (ag_session_model (self->session));
  for (;;) {
    char *p = ag_prompt_build (d);
    if (!p)
      return NULL;
    int64_t n = ag_text_encode (tok, p, strlen (p), true, NULL, 0);
    if (n >= 0 && n < n_ctx)
      return p;
    free (p);
    if (n < 0)
      return NULL;
    if (d->n_history == 0) {
      *why = g_strdup_printf ("the prompt has %" G_GINT64_FORMAT " tokens, the context holds %d "
          "(context-length)", (gint64) n, (int) n_ctx);
      return NULL;
    }
    GST_INFO_OBJECT (self, "prompt of %" G_GINT64_FORMAT " tokens: leaving out the oldest turn",
        (gint64) n);
    d->history++;
    d->n_history--;
  }
}

/* EOS on every source pad; returns why the task stops (EOS, or the fatal flow). */
static GstFlowReturn
end_of_stream (GstAnygptLlm * self, GstFlowReturn why)
{
  gst_anygpt_llm_push_src_event (self, gst_event_new_eos ());
  return why;
}

/* Whole text mode for a task (text-mode auto: the tasks that describe an item). */
static gboolean
text_mode_whole (GstAnygptLlmTextMode mode, ag_task task)
{
  if (mode == GST_ANYGPT_LLM_TEXT_MODE_AUTO)
    return task == AG_TASK_ASR || task == AG_TASK_CAPTION || task == AG_TASK_MUSIC_CAPTION;
  return mode == GST_ANYGPT_LLM_TEXT_MODE_WHOLE;
}

/* How long a whole reply lasts: caption-duration, else the request's own duration (an
 * utterance, a clip, timed text; an image's frame duration says nothing about its caption),
 * else NONE: until the next request. */
static GstClockTime
reply_duration (const Settings * s, const GstAnygptLlmRequest * r)
{
  if (s->caption_duration > 0)
    return s->caption_duration;
  if (GST_CLOCK_TIME_IS_VALID (r->duration) &&
      !(r->kind == GST_ANYGPT_LLM_REQ_ITEM && r->modality == AG_MODALITY_IMAGE))
    return r->duration;
  return GST_CLOCK_TIME_NONE;
}

/* How long the audio items pushed now take to be heard: the largest minimum latency that the
 * speech and music branches report (0 when unlinked or unanswered), in microseconds. */
static gint64
downstream_latency_us (GstAnygptLlm * self)
{
  GstPad *pads[] = { self->speech_src, self->music_src };
  GstClockTime most = 0;
  for (guint i = 0; i < G_N_ELEMENTS (pads); i++) {
    GstQuery *q = gst_query_new_latency ();
    gboolean live = FALSE;
    GstClockTime min = 0;
    if (pads[i] && gst_pad_peer_query (pads[i], q)) {
      gst_query_parse_latency (q, &live, &min, NULL);
      if (GST_CLOCK_TIME_IS_VALID (min))
        most = MAX (most, min);
    }
    gst_query_unref (q);
  }
  return (gint64) (most / 1000);
}
/* The whole reply as one buffer (white space at both ends removed), MARKER set; held back
 * when its duration waits for the next request. */
static void
finish_whole_text (GstAnygptLlm * self, GstClockTime duration)
{
  gchar *text = g_strstrip (g_strdup (self->held->str));
  gsize len = strlen (text);
  GstBuffer *b;
  if (len) {
    b = gst_buffer_new_wrapped (text, len);
  } else {
    g_free (text);
    b = gst_buffer_new ();
  }
  GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  GST_BUFFER_PTS (b) = self->reply_pts;
  GST_BUFFER_DURATION (b) = duration;
  if (GST_CLOCK_TIME_IS_VALID (self->reply_pts) && !GST_CLOCK_TIME_IS_VALID (duration)) {
    self->pending_text = b;
    return;
  }
  push_text_buffer (self, b);
}

GstFlowReturn
gst_anygpt_llm_process (GstAnygptLlm * self, GstAnygptLlmRequest * r)
{
  /* a whole reply waiting for this request's time goes out first */
  self->gen_flow = GST_FLOW_OK;
  release_pending_text (self, r->pts);
  if (r->kind == GST_ANYGPT_LLM_REQ_EOS)
    return end_of_stream (self, GST_FLOW_EOS);

  Settings set;
  settings_read (self, &set);
  self->whole_text = text_mode_whole (set.text_mode, set.task);
  if (self->whole_text)
    cover_text_until (self, r->pts);
  self->reply_pts = self->speech_pos = self->music_pos = r->pts;
  self->reply_live = r->live;
  self->first_output_us = 0;
  self->first_output_rt = GST_CLOCK_TIME_NONE;
  GstClockTime duration = reply_duration (&set, r);
  ag_prompt_desc d = {.task = set.task,.system = set.system,.instruction = set.instruction };
  if (r->kind == GST_ANYGPT_LLM_REQ_TEXT) {
    d.text = r->text;
  } else {
    d.modality = r->modality;
    d.codes = r->codes;
    d.n_codes = r->n_codes;
    if (set.task == AG_TASK_CHAT && r->modality == AG_MODALITY_SPEECH && !d.instruction)
      d.instruction = VOICE_CHAT_INSTRUCTION;
  }
  gboolean chat = set.task == AG_TASK_CHAT;
  guint n_hist = chat ? MIN (set.history, self->turns.length) : 0;
  ag_chat_turn *hist = g_new0 (ag_chat_turn, MAX (n_hist, 1));
  GList *l = g_queue_peek_tail_link (&self->turns);
  for (guint i = n_hist; i > 0; i--, l = l->prev) {
    GstAnygptLlmTurn *t = l->data;
    hist[i - 1] = (ag_chat_turn) { t->user, t->reply };
  }
  d.history = hist;             /* fit_prompt may advance it past the oldest turns */
  d.n_history = n_hist;

  GstFlowReturn ret = GST_FLOW_OK;
  /* a request the templates or the context cannot take is dropped, the stream goes on */
  gchar *why = NULL;
  char *check = fit_prompt (self, &d, &why);
  gchar *user = check && chat ? user_message (&d) : NULL;
  if (!check || (chat && !user)) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("Request dropped."), ("%s",
            why ? why : ag_last_error ()));
    g_free (why);
    goto done;
  }

  ag_gen_config cfg;
  ag_gen_config_default (&cfg, set.task);
  settings_apply (&set, &cfg);
  ag_gen_callbacks cb = {.user = self,.on_text = on_text,.on_item = on_item,
    .should_stop = should_stop,.on_item_progress = on_item_progress
  };
  GST_OBJECT_LOCK (self);
  self->reply_speech_chunk = self->speech_chunk;
  GST_OBJECT_UNLOCK (self);
  self->speech_sent = 0;
  ag_gen_stats st = { 0 };
  self->reply_audio_us = 0;
  g_string_truncate (self->held, 0);
  if (ag_session_generate (self->session, &d, &cfg, &cb, &st) < 0) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Generation failed."), ("%s", ag_last_error ()));
    ag_gen_stats_clear (&st);
    ret = end_of_stream (self, GST_FLOW_ERROR);
    goto done;
  }
  if (!g_atomic_int_get (&self->cancel) && self->gen_flow == GST_FLOW_OK) {
    if (self->whole_text)
      finish_whole_text (self, duration);
    else
      push_text_piece (self, self->held->str, self->held->len, TRUE);
  }
  g_string_truncate (self->held, 0);
  /* its audio plays after what downstream holds (SoundStorm, decode, the sink's buffer) */
  if (self->reply_audio_us > 0)
    self->reply_audio_us += downstream_latency_us (self);
  /* live: the sinks play it at its timestamps plus the pipeline latency, which also holds what
   * the capture side keeps (a microphone's buffer, the VAD): later than the estimate above,
   * whose end a reply's echo could begin after (half-duplex would answer it) */
  if (self->reply_audio_us > 0 && self->reply_live)
    self->reply_audio_us = MAX (self->reply_audio_us, audio_end_from_now_us (self));
  /* the reply is complete: turn taking (duplex) treats the element as free (or playing the
   * reply's audio) before the application reads the reply message */
  g_mutex_lock (&self->lock);
  self->generating = FALSE;
  self->busy_until = g_get_monotonic_time () + self->reply_audio_us;
  g_mutex_unlock (&self->lock);
  post_reply_message (self, set.task, &st, r, duration);
  if (chat && !st.cancelled && self->gen_flow == GST_FLOW_OK) {
    add_turn (self, user, st.reply, set.history);
    user = NULL;
  }
  ag_gen_stats_clear (&st);

  if (self->gen_flow == GST_FLOW_FLUSHING || g_atomic_int_get (&self->cancel)) {
    ret = GST_FLOW_FLUSHING;
  } else if (self->gen_flow != GST_FLOW_OK) {
    GST_ELEMENT_FLOW_ERROR (self, self->gen_flow);
    ret = end_of_stream (self, self->gen_flow);
  }
done:
  free (check);
  g_free (user);
  g_free (hist);
  settings_clear (&set);
  return ret;
}
