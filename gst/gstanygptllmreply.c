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
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_anygpt_llm_push_src_event (self, gst_event_new_segment (&seg));
  }
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

static void
push_text (GstAnygptLlm * self, const gchar * s, gsize len, gboolean marker)
{
  GstBuffer *b = len ? gst_buffer_new_memdup (s, len) : gst_buffer_new ();
  if (marker)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  push_buffer (self, self->text_src, b);
}

/* The newest piece is held back so the last one of the reply can carry MARKER. */
static void
on_text (void *user, const char *piece, size_t len)
{
  GstAnygptLlm *self = user;
  if (!len)
    return;
  if (self->held->len) {
    push_text (self, self->held->str, self->held->len, FALSE);
    g_string_truncate (self->held, 0);
  }
  g_string_append_len (self->held, piece, (gssize) len);
}

static void
on_item (void *user, ag_modality m, const int32_t *codes, size_t n_frames, int codebooks)
{
  GstAnygptLlm *self = user;
  GstPad *pad = m == AG_MODALITY_SPEECH ? self->speech_src :
      m == AG_MODALITY_IMAGE ? self->image_src : m == AG_MODALITY_MUSIC ? self->music_src : NULL;
  gint want = m == AG_MODALITY_MUSIC ? 4 : 1;
  if (!pad || codebooks != want || n_frames == 0) {
    GST_WARNING_OBJECT (self, "dropping item of modality %d with %d codebooks, %zu frames",
        (int) m, codebooks, n_frames);
    return;
  }
  GST_DEBUG_OBJECT (pad, "item of %zu frames", n_frames);
  if (m != AG_MODALITY_IMAGE)   /* speech and music: 50 frames a second */
    self->reply_audio_us += (gint64) n_frames * 20000;
  push_buffer (self, pad, gst_anygpt_tokens_buffer_new (codes, n_frames, codebooks));
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
post_reply_message (GstAnygptLlm * self, ag_task task, const ag_gen_stats * st)
{
  gint prefilled = st->n_prompt - st->n_reused;
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
      "cancelled", G_TYPE_BOOLEAN, (gboolean) st->cancelled, NULL);
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

GstFlowReturn
gst_anygpt_llm_process (GstAnygptLlm * self, GstAnygptLlmRequest * r)
{
  if (r->kind == GST_ANYGPT_LLM_REQ_EOS)
    return end_of_stream (self, GST_FLOW_EOS);

  Settings set;
  settings_read (self, &set);
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
    .should_stop = should_stop
  };
  ag_gen_stats st = { 0 };
  self->gen_flow = GST_FLOW_OK;
  self->reply_audio_us = 0;
  g_string_truncate (self->held, 0);
  if (ag_session_generate (self->session, &d, &cfg, &cb, &st) < 0) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Generation failed."), ("%s", ag_last_error ()));
    ag_gen_stats_clear (&st);
    ret = end_of_stream (self, GST_FLOW_ERROR);
    goto done;
  }
  if (!g_atomic_int_get (&self->cancel))
    push_text (self, self->held->str, self->held->len, TRUE);
  g_string_truncate (self->held, 0);
  /* the reply is complete: turn taking (duplex) treats the element as free (or playing the
   * reply's audio) before the application reads the reply message */
  g_mutex_lock (&self->lock);
  self->generating = FALSE;
  self->busy_until = g_get_monotonic_time () + self->reply_audio_us;
  g_mutex_unlock (&self->lock);
  post_reply_message (self, set.task, &st);
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
