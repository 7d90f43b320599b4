/**
 * SECTION:element-anygptllm
 * @title: anygptllm
 *
 * Runs the AnyGPT LLM (LLaMA-2-7B with speech, image and music tokens) on the anygpt compute
 * core. Requests arrive on request sink pads:
 *
 * - `text_sink_%u` (text/x-raw, format=utf8): every buffer is one whole user message (leading and
 *   trailing white space is removed, empty messages are ignored);
 * - `tokens_sink_%u` (application/x-anygpt-tokens): every buffer is one item (a speech utterance,
 *   an image, a music clip). Speech items may carry several RVQ layers: layer 1 is used.
 *
 * Each request becomes one prompt built for the #GstAnygptLlm:task with the templates of the
 * AnyGPT chat model, and one reply. The reply text leaves `text_src` as it is generated, piece
 * by piece, or as one buffer when the reply is complete (#GstAnygptLlm:text-mode, below); the
 * last buffer of a reply carries GST_BUFFER_FLAG_MARKER (an empty buffer when the reply has no
 * text). Generated speech, image and music spans are pushed as one token buffer per item on
 * `speech_src`, `image_src` and `music_src` (MARKER set: the item ends there), or, for speech
 * with #GstAnygptLlm:speech-chunk N > 0, in buffers of N frames while the item is generated
 * (an item's last buffer, at most N frames, has MARKER set; the others do not). Source pads
 * that are not linked are skipped.
 * Every source pad gets stream-start, caps and a TIME segment before data.
 *
 * ## Timing
 *
 * Every output answers a request and carries that request's time, so textoverlay, subtitle
 * muxers and sinks line replies up with the media they answer. A request's time is the
 * running time of its input buffer's PTS in its sink pad's segment (for a stream starting at
 * 0: the PTS itself; a segment in another format: the PTS as it is); the source pads carry a
 * plain TIME segment from 0, so a running time downstream is the input's running time. An input
 * buffer without a PTS gives outputs without one (sinks render them at once).
 *
 * - `text-mode=stream`: each piece has the request's PTS and no duration (a piece is not a
 *   caption: it belongs to the reply at that time); for consoles, files and applications that
 *   read a reply as it is written (fdsink, appsink).
 * - `text-mode=whole`: one buffer per reply, sent when the reply is complete: the whole text
 *   (white space at both ends removed), MARKER set, PTS = the request's, duration =
 *   #GstAnygptLlm:caption-duration when set, else the request's own duration (an utterance, a
 *   music clip, a timed text message), else (images) until the next request's time: such a
 *   reply is held until the next request reaches the streaming task, and at EOS it gets the
 *   previous reply's duration (none for a single one). This is what textoverlay needs (it
 *   renders one text buffer over its PTS..PTS+duration span, a buffer without duration over one
 *   video frame only, and never joins pieces) and what a subtitle muxer needs (a buffer is a
 *   cue). Before a request's reply, the time between the last reply's end and the request is
 *   covered by a GAP event on `text_src`, so a textoverlay that waits for text (wait-text=true)
 *   lets the video up to the request through while the reply is generated.
 * - `text-mode=auto` (default): whole for asr, caption and music-caption, stream otherwise.
 * - Speech and music items: the reply's first item of a kind at the request's PTS, the next
 *   ones right after it (50 frames a second), duration frames / 50 s: a spoken reply starts at
 *   the time of the utterance it answers. Image items: the request's PTS, no duration. From a
 *   live upstream (latency query) speech and music items start no earlier than the running
 *   time they are pushed at: the request's time has passed, and a syncing sink would drop them.
 *
 * Captions of a file (non-live) get exact spans by default: each caption lasts until the next
 * one. A textoverlay on the same video waits (wait-text=true) for the caption of each frame;
 * as that caption is only complete once the next image item arrived, the video branch of a tee
 * must hold the frames of one interval between captions (queue max-size-time above it, or
 * unbounded), else the pipeline stalls. Writing the captions to SRT first (`anygpt-run --srt`)
 * and overlaying with subtitleoverlay avoids this.
 * Live captioning: a caption exists only some time after its frame (tokenizer and LLM), so a
 * caption lasting until the next frame would reach a live textoverlay after its span ended and
 * never show. Set caption-duration to about the time between captions plus the LLM's latency,
 * textoverlay wait-text=false (the video must not wait for text), and put a queue before
 * textoverlay's text pad (textoverlay holds one caption and blocks the next one until the
 * video passed the first one's end). #GstAnygptLlm:duplex auto keeps a live camera from
 * building a backlog (below).
 *
 * Latency: the LLM is not a real-time element (a reply takes as long as it takes). With live
 * input it answers the latency query with upstream's latency plus #GstAnygptLlm:latency (0 by
 * default, also added to the maximum), so an app that budgets a turn time can let synchronised
 * sinks play the replies (timed at their request) that late. Every dropped request (half-duplex,
 * newest) also posts a QoS message (live, the request's PTS, dropped count in buffers).
 *
 * Requests queue up to 8 deep (GST_ANYGPT_LLM_MAX_QUEUED); while the queue is full the
 * upstream chain function waits (back-pressure, nothing is dropped). Generation runs on the
 * element's own streaming task. A bad request (wrong modality for the task, invalid UTF-8,
 * empty item) is dropped with an element warning. A flush on any sink pad stops the reply being
 * generated within one token and drops the queued requests; EOS on every sink pad lets the
 * queued requests finish, then pushes EOS on all source pads; going to READY stops at once.
 *
 * When no sink pad was requested, the element works as a source: it answers #GstAnygptLlm:prompt
 * once when it starts streaming and then sends EOS, so gst-launch-1.0 one-liners terminate. The
 * prompt is also answered when every sink pad reaches EOS without a single request.
 *
 * Spoken replies (#GstAnygptLlm:speech-reply): `auto` leaves it to the model whether a chat reply
 * has speech. `always` makes every chat reply end in speech, in AnyGPT's reply form
 * "{text}<eot>\n{speech}": when the text part ends (the model writes `<eot>` or an end tag, or
 * 100 text tokens, at most half of max-new-tokens) the tokens of "<eot>\n<sosp>" are forced and
 * a speech span of speech codes only is sampled with the speech configuration; the reply ends
 * with that span. For voice assistants: random or real models may answer in text only.
 *
 * Turn taking (#GstAnygptLlm:duplex), for live conversations:
 * - `queue` (default): every request is answered, in order (files, applications);
 * - `half`: half-duplex. A request arriving while a reply is generated or queued, or while the
 *   last reply's audio plays (its speech / music duration plus the latency its branch reports,
 *   counted from the end of the reply's generation; on a live stream at least until its end
 *   timestamp plus the pipeline latency the sinks play with), or one whose speech began then (its PTS on
 *   the clock when live, else its arrival minus its duration), is dropped: an element message `anygptllm-dropped` (fields reason:
 *   "generating" or "playing", dropped: the count since READY) is posted instead. With a
 *   microphone this keeps what is heard while the assistant speaks (its own voice included)
 *   from becoming a turn;
 * - `barge-in`: such a request interrupts: the reply being generated stops within one token
 *   (it is not kept in the history; its `anygptllm` message says cancelled), queued
 *   requests are dropped (an `anygptllm-dropped` message each, reason "replaced"), a flush (flush-start,
 *   flush-stop without reset-time: the running time goes on) is sent on every source pad so downstream discards the reply's audio still
 *   queued or playing, and the new request is answered next;
 * - `newest`: live captioning. While a reply is generated one request waits; a newer one
 *   replaces it (the replaced one gets an `anygptllm-dropped` message, reason "superseded").
 *   A camera faster than the LLM gets captions of its newest frame, never a backlog of stale
 *   frames, and the upstream chain function never blocks;
 * - `auto` (default): `newest` for task=caption when the sink pad's upstream is live (its
 *   latency query says so), `queue` otherwise (files are captioned frame by frame).
 * Every `anygptllm-dropped` message has the fields reason, dropped (the count since READY) and
 * pts (guint64, the dropped request's time, GST_CLOCK_TIME_NONE when untimed).
 *
 * After each reply an element message named `anygptllm` is posted with the fields prompt
 * (string, the prompt as built), reply (string, modality tokens included), task (string),
 * prompt-tokens, reused-tokens (found in the KV cache), generated-tokens (int),
 * prefill-tokens-per-second, decode-tokens-per-second (double), cancelled (boolean), and the
 * timing fields (guint64 nanoseconds, GST_CLOCK_TIME_NONE when unknown): pts (the request's
 * time, see Timing), duration (a whole reply's duration when known at that point:
 * caption-duration or the request's own; NONE: until the next request), latency (from the
 * request's arrival at the element to the reply's first text piece or item, queueing
 * included) and running-time (the pipeline's running time at that first output; minus pts it
 * is the delay from the media to its answer, on live pipelines).
 * For the chat task, the last #GstAnygptLlm:history turns (user message + reply, cancelled
 * replies excluded) are put in front of each new message.
 *
 * Sampling: the core samples the text of a reply with the spec's text configuration and the
 * inside of a speech / image / music span with that modality's configuration (AnyGPT's config
 * files). The properties temperature, top-p, top-k, repetition-penalty replace the value of
 * that parameter in every one of these configurations when set (>= 0); negative values keep
 * the spec's per-modality values.
 *
 * ## Example launch lines
 * |[
 * echo "Hello" | gst-launch-1.0 -q fdsrc ! text/x-raw,format=utf8 ! \
 *     anygptllm model-path=anygpt-chat-q4_0.gguf task=chat ! fdsink
 * gst-launch-1.0 anygptllm model-path=anygpt-chat-q4_0.gguf task=text-to-music \
 *     prompt="calm piano" name=llm llm.music_src ! filesink location=music.tokens
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstanygptllm.h"
#include "gstanygptlatency.h"
#include "gstanygptshared.h"

#include "anygpt/error.h"

GST_DEBUG_CATEGORY_STATIC (anygpt_llm_debug);
#define GST_CAT_DEFAULT anygpt_llm_debug

enum
{
  /* 1..4: model-path, device, device-index, threads (gstanygptshared.h) */
  PROP_FIRST_OWN = GST_ANYGPT_SHARED_N_PROPS - 1,
  PROP_CONTEXT_LENGTH,
  PROP_TASK,
  PROP_PROMPT,
  PROP_INSTRUCTION,
  PROP_SYSTEM_PROMPT,
  PROP_HISTORY,
  PROP_TEMPERATURE,
  PROP_TOP_P,
  PROP_TOP_K,
  PROP_REPETITION_PENALTY,
  PROP_MAX_NEW_TOKENS,
  PROP_SEED,
  PROP_CONSTRAIN_SPANS,
  PROP_SPEECH_REPLY,
  PROP_DUPLEX,
  PROP_TEXT_MODE,
  PROP_CAPTION_DURATION,
  PROP_SPEECH_CHUNK,
  PROP_LATENCY,
};

#define DEFAULT_CONTEXT_LENGTH 0
#define DEFAULT_TASK AG_TASK_CHAT
#define DEFAULT_HISTORY 4
#define DEFAULT_SAMPLING -1.0
#define DEFAULT_TOP_K -1
#define DEFAULT_MAX_NEW_TOKENS -1
#define DEFAULT_SEED -1
#define DEFAULT_CONSTRAIN_SPANS FALSE
#define DEFAULT_SPEECH_REPLY GST_ANYGPT_LLM_SPEECH_REPLY_AUTO
#define DEFAULT_DUPLEX GST_ANYGPT_LLM_DUPLEX_AUTO
#define DEFAULT_TEXT_MODE GST_ANYGPT_LLM_TEXT_MODE_AUTO
#define DEFAULT_CAPTION_DURATION 0

#define TEXT_CAPS "text/x-raw, format=(string)utf8"

static GstStaticPadTemplate text_sink_template = GST_STATIC_PAD_TEMPLATE ("text_sink_%u",
    GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS (TEXT_CAPS));
static GstStaticPadTemplate text_src_template = GST_STATIC_PAD_TEMPLATE ("text_src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (TEXT_CAPS));

GType
gst_anygpt_llm_task_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {AG_TASK_CHAT, "Chat (text or a speech/image/music item in, text and items out)", "chat"},
    {AG_TASK_ASR, "Speech recognition (speech item in, text out)", "asr"},
    {AG_TASK_TTS, "Text to speech (text in, speech tokens out)", "tts"},
    {AG_TASK_CAPTION, "Image captioning (image item in, text out)", "caption"},
    {AG_TASK_TEXT_TO_IMAGE, "Text to image (text in, image tokens out)", "text-to-image"},
    {AG_TASK_TEXT_TO_MUSIC, "Text to music (text in, music tokens out)", "text-to-music"},
    {AG_TASK_MUSIC_CAPTION, "Music captioning (music item in, text out)", "music-caption"},
    {AG_TASK_RAW, "Raw (the text is the whole prompt)", "raw"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstAnygptLlmTask", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_anygpt_llm_speech_reply_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ANYGPT_LLM_SPEECH_REPLY_AUTO, "As the model writes it", "auto"},
    {GST_ANYGPT_LLM_SPEECH_REPLY_ALWAYS,
        "Every chat reply ends in speech (\"<eot>\\n<sosp>\" forced after the text)", "always"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstAnygptLlmSpeechReply", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_anygpt_llm_duplex_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ANYGPT_LLM_DUPLEX_QUEUE, "Answer every request in order", "queue"},
    {GST_ANYGPT_LLM_DUPLEX_HALF,
        "Drop requests while generating or while the reply's audio plays", "half"},
    {GST_ANYGPT_LLM_DUPLEX_BARGE_IN,
        "A request while busy stops the reply and flushes the source pads", "barge-in"},
    {GST_ANYGPT_LLM_DUPLEX_NEWEST,
        "While busy one request waits; a newer one replaces it (live captioning)", "newest"},
    {GST_ANYGPT_LLM_DUPLEX_AUTO,
        "newest for task=caption on live input, queue otherwise", "auto"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstAnygptLlmDuplex", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_anygpt_llm_text_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ANYGPT_LLM_TEXT_MODE_AUTO,
        "whole for asr, caption and music-caption, stream otherwise", "auto"},
    {GST_ANYGPT_LLM_TEXT_MODE_STREAM,
        "Pieces as generated, each at the request's time, no duration", "stream"},
    {GST_ANYGPT_LLM_TEXT_MODE_WHOLE,
        "One buffer per reply with the request's time and a duration (overlays, subtitles)",
        "whole"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstAnygptLlmTextMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define gst_anygpt_llm_parent_class parent_class
G_DEFINE_TYPE (GstAnygptLlm, gst_anygpt_llm, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (anygptllm, "anygptllm", GST_RANK_NONE,
    GST_TYPE_ANYGPT_LLM, anygpt_core_debug_init ());

GstAnygptLlmRequest *
gst_anygpt_llm_request_new (GstAnygptLlmRequestKind kind)
{
  GstAnygptLlmRequest *r = g_new0 (GstAnygptLlmRequest, 1);
  r->kind = kind;
  r->pts = r->duration = GST_CLOCK_TIME_NONE;
  r->arrival_us = g_get_monotonic_time ();
  return r;
}

void
gst_anygpt_llm_request_free (GstAnygptLlmRequest * r)
{
  if (!r)
    return;
  g_free (r->text);
  g_free (r->codes);
  g_free (r);
}

/* ---- request queue ---- */

/* Monotonic time (us) at which the speech of r began: from its PTS (running time) on the
 * pipeline clock when it lies in the past (a live source), else its arrival minus its duration
 * (the latest it can have begun). */
static gint64
request_began_us (GstAnygptLlm * self, const GstAnygptLlmRequest * r, gint64 now_us)
{
  gint64 began = now_us;
  if (GST_CLOCK_TIME_IS_VALID (r->duration))
    began -= (gint64) (r->duration / 1000);
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  if (clock && GST_CLOCK_TIME_IS_VALID (r->pts)) {
    GstClockTime now = gst_clock_get_time (clock), base = gst_element_get_base_time (GST_ELEMENT (self));
    if (now >= base && now - base >= r->pts)
      began = MIN (began, now_us - (gint64) ((now - base - r->pts) / 1000));
  }
  if (clock)
    gst_object_unref (clock);
  return began;
}

/* The turn taking a request from pad gets: duplex=auto is newest for the captions of a live
 * stream (a camera must not build a backlog of stale frames), queue otherwise. */
static GstAnygptLlmDuplex
effective_duplex (GstAnygptLlm * self, GstPad * pad)
{
  GST_OBJECT_LOCK (self);
  GstAnygptLlmDuplex duplex = self->duplex;
  ag_task task = self->task;
  GST_OBJECT_UNLOCK (self);
  if (duplex != GST_ANYGPT_LLM_DUPLEX_AUTO)
    return duplex;
  return task == AG_TASK_CAPTION && gst_anygpt_upstream_is_live (pad) ? GST_ANYGPT_LLM_DUPLEX_NEWEST :
      GST_ANYGPT_LLM_DUPLEX_QUEUE;
}

static void
post_dropped (GstAnygptLlm * self, const gchar * reason, guint n, GstClockTime pts)
{
  /* and QoS, as live elements that drop data post it (processed: not counted) */
  GstMessage *qos = gst_message_new_qos (GST_OBJECT (self), TRUE, GST_CLOCK_TIME_NONE,
      GST_CLOCK_TIME_NONE, pts, GST_CLOCK_TIME_NONE);
  gst_message_set_qos_stats (qos, GST_FORMAT_BUFFERS, G_MAXUINT64, n);
  gst_element_post_message (GST_ELEMENT (self), qos);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("anygptllm-dropped",
              "reason", G_TYPE_STRING, reason, "dropped", G_TYPE_UINT, n,
              "pts", G_TYPE_UINT64, (guint64) pts, NULL)));
}

/* Queues r, with the turn taking of the pad it came from (pad NULL: as it comes, for EOS and
 * the prompt). Waits while the queue is full (unless force). Not OK when flushing or when the
 * task stopped (EOS, error): r is freed then. */
static GstFlowReturn
queue_push (GstAnygptLlm * self, GstAnygptLlmRequest * r, GstPad * pad, gboolean force)
{
  GstAnygptLlmDuplex duplex = pad ? effective_duplex (self, pad) : GST_ANYGPT_LLM_DUPLEX_QUEUE;
  guint n_replaced = 0;
  GArray *superseded = NULL;    /* newest: the times of the waiting requests r replaces */
  guint n_dropped = 0;
  if (pad && r->kind != GST_ANYGPT_LLM_REQ_EOS)
    r->live = gst_anygpt_upstream_is_live (pad);
  /* half-duplex: when the request's speech began (the clock is not taken under the lock) */
  gint64 began_us = duplex == GST_ANYGPT_LLM_DUPLEX_HALF && r->kind != GST_ANYGPT_LLM_REQ_EOS ?
      request_began_us (self, r, g_get_monotonic_time ()) : G_MAXINT64;
  g_mutex_lock (&self->lock);
  if (duplex == GST_ANYGPT_LLM_DUPLEX_NEWEST && r->kind != GST_ANYGPT_LLM_REQ_EOS &&
      self->srcresult == GST_FLOW_OK) {
    for (GList * l = self->queue.head, *next; l; l = next) {
      next = l->next;
      GstAnygptLlmRequest *q = l->data;
      if (q->kind == GST_ANYGPT_LLM_REQ_EOS)
        continue;
      if (!superseded)
        superseded = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
      g_array_append_val (superseded, q->pts);
      g_queue_delete_link (&self->queue, l);
      gst_anygpt_llm_request_free (q);
      self->n_dropped++;
    }
    n_dropped = self->n_dropped;
  }
  /* turn taking: is the element busy with an earlier request (see duplex) */
  if ((duplex == GST_ANYGPT_LLM_DUPLEX_HALF || duplex == GST_ANYGPT_LLM_DUPLEX_BARGE_IN) &&
      r->kind != GST_ANYGPT_LLM_REQ_EOS && self->srcresult == GST_FLOW_OK) {
    gboolean generating = self->generating || !g_queue_is_empty (&self->queue);
    gboolean playing = g_get_monotonic_time () < self->busy_until;
    /* half-duplex: speech that began while the reply played is not a turn either, though it
     * arrives later (an utterance reaches the element once the VAD closed it: the assistant's
     * own voice coming back through a microphone ends with the reply, and is closed after) */
    if (duplex == GST_ANYGPT_LLM_DUPLEX_HALF && began_us < self->busy_until)
      playing = TRUE;
    if (duplex == GST_ANYGPT_LLM_DUPLEX_HALF)
      GST_DEBUG_OBJECT (self, "half-duplex: request began %" G_GINT64_FORMAT " ms ago, reply audio "
          "busy for %" G_GINT64_FORMAT " ms more, generating %d", (g_get_monotonic_time () - began_us) / 1000,
          (self->busy_until - g_get_monotonic_time ()) / 1000, generating);
    if ((generating || playing) && duplex == GST_ANYGPT_LLM_DUPLEX_HALF) {
      guint n = ++self->n_dropped;
      g_mutex_unlock (&self->lock);
      GstClockTime pts = r->pts;
      gst_anygpt_llm_request_free (r);
      GST_INFO_OBJECT (self, "half-duplex: request dropped (%s)",
          generating ? "generating" : "playing");
      post_dropped (self, generating ? "generating" : "playing", n, pts);
      return GST_FLOW_OK;
    }
    if ((generating || playing) && duplex == GST_ANYGPT_LLM_DUPLEX_BARGE_IN) {
      GST_INFO_OBJECT (self, "barge-in: stopping the reply (%s)",
          generating ? "generating" : "playing");
      g_atomic_int_set (&self->interrupt, 1);
      n_replaced = self->queue.length;
      g_queue_clear_full (&self->queue, (GDestroyNotify) gst_anygpt_llm_request_free);
      self->busy_until = 0;
    }
  }
  while (!force && self->srcresult == GST_FLOW_OK &&
      self->queue.length >= GST_ANYGPT_LLM_MAX_QUEUED)
    g_cond_wait (&self->cond, &self->lock);
  GstFlowReturn ret = self->srcresult;
  if (ret == GST_FLOW_OK) {
    g_queue_push_tail (&self->queue, r);
    if (r->kind != GST_ANYGPT_LLM_REQ_EOS)
      self->n_received++;
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  if (ret != GST_FLOW_OK)
    gst_anygpt_llm_request_free (r);
  /* barge-in: the queued requests the new one replaced were never answered */
  for (guint i = 0; i < n_replaced; i++)
    post_dropped (self, "replaced", 0, GST_CLOCK_TIME_NONE);
  /* newest: neither were the waiting ones r superseded */
  for (guint i = 0; superseded && i < superseded->len; i++) {
    GST_INFO_OBJECT (self, "newest: waiting request at %" GST_TIME_FORMAT " superseded",
        GST_TIME_ARGS (g_array_index (superseded, GstClockTime, i)));
    post_dropped (self, "superseded", n_dropped - superseded->len + i + 1,
        g_array_index (superseded, GstClockTime, i));
  }
  if (superseded)
    g_array_free (superseded, TRUE);
  return ret;
}

static void
queue_set_flushing (GstAnygptLlm * self, gboolean flushing)
{
  g_mutex_lock (&self->lock);
  self->flushing = flushing;
  self->srcresult = flushing ? GST_FLOW_FLUSHING : GST_FLOW_OK;
  g_atomic_int_set (&self->cancel, flushing);
  if (!flushing) {
    g_queue_clear_full (&self->queue, (GDestroyNotify) gst_anygpt_llm_request_free);
    self->need_segment = TRUE;
  }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* The prompt property as a request, once per start, when nothing else came. */
static void
queue_prompt_locked (GstAnygptLlm * self)
{
  GST_OBJECT_LOCK (self);
  gchar *prompt = g_strdup (self->prompt);
  GST_OBJECT_UNLOCK (self);
  if (self->prompt_queued || !prompt || !prompt[0]) {
    g_free (prompt);
    return;
  }
  GstAnygptLlmRequest *r = gst_anygpt_llm_request_new (GST_ANYGPT_LLM_REQ_TEXT);
  r->text = prompt;
  g_queue_push_tail (&self->queue, r);
  self->prompt_queued = TRUE;
}

static void
gst_anygpt_llm_loop (GstAnygptLlm * self)
{
  g_mutex_lock (&self->lock);
  while (!self->flushing && g_queue_is_empty (&self->queue))
    g_cond_wait (&self->cond, &self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    gst_pad_pause_task (self->text_src);
    return;
  }
  GstAnygptLlmRequest *r = g_queue_pop_head (&self->queue);
  self->generating = r->kind != GST_ANYGPT_LLM_REQ_EOS;
  g_cond_broadcast (&self->cond);       /* room for a waiting chain function */
  g_mutex_unlock (&self->lock);

  /* barge-in: downstream drops what is left of the interrupted reply */
  if (g_atomic_int_compare_and_exchange (&self->interrupt, 1, 0)) {
    GST_DEBUG_OBJECT (self, "barge-in: flushing the source pads");
    gst_anygpt_llm_push_src_event (self, gst_event_new_flush_start ());
    /* no reset-time: a sink posting reset-time makes the pipeline restart its running time
     * at 0 while the next reply keeps the request's time on the old timeline, so it would
     * play that many seconds late (or be dropped) */
    gst_anygpt_llm_push_src_event (self, gst_event_new_flush_stop (FALSE));
    g_mutex_lock (&self->lock);
    self->need_segment = TRUE;
    g_mutex_unlock (&self->lock);
  }
  gst_anygpt_llm_send_sticky_events (self);
  GstFlowReturn ret = gst_anygpt_llm_process (self, r);
  gst_anygpt_llm_request_free (r);
  g_mutex_lock (&self->lock);
  self->generating = FALSE;
  self->busy_until = g_get_monotonic_time () + self->reply_audio_us;
  g_mutex_unlock (&self->lock);
  if (ret != GST_FLOW_OK) {
    GST_DEBUG_OBJECT (self, "pausing task: %s", gst_flow_get_name (ret));
    g_mutex_lock (&self->lock);
    if (!self->flushing)
      self->srcresult = ret;
    g_cond_broadcast (&self->cond);     /* a chain function waiting for room returns it */
    g_mutex_unlock (&self->lock);
    gst_pad_pause_task (self->text_src);
  }
}

static gboolean
text_src_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode, gboolean active)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (parent);
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    queue_set_flushing (self, FALSE);
    g_mutex_lock (&self->lock);
    self->need_stream_start = TRUE;
    self->generating = FALSE;
    self->busy_until = 0;
    self->n_dropped = 0;
    GST_OBJECT_LOCK (self);
    self->sink_latency = GST_CLOCK_TIME_NONE;
    GST_OBJECT_UNLOCK (self);
    g_atomic_int_set (&self->interrupt, 0);
    /* no sink pad: act as a source answering the prompt property */
    if (GST_ELEMENT (self)->numsinkpads == 0) {
      queue_prompt_locked (self);
      if (self->prompt_queued) {
        GstAnygptLlmRequest *eos = gst_anygpt_llm_request_new (GST_ANYGPT_LLM_REQ_EOS);
        g_queue_push_tail (&self->queue, eos);
      }
    }
    g_mutex_unlock (&self->lock);
    /* the task starts in READY->PAUSED once every source pad is active: started here, it
     * could push stream-start on a pad not yet activated (the event is refused there, and
     * that pad's first buffer would then come without caps) */
    return TRUE;
  }
  /* stops the reply within one token, then joins the task */
  queue_set_flushing (self, TRUE);
  return gst_pad_stop_task (pad);
}

/* ---- sink pads ---- */

static gboolean
all_sinks_eos (GstAnygptLlm * self)
{
  gboolean all = TRUE;
  GST_OBJECT_LOCK (self);
  for (GList * l = GST_ELEMENT (self)->sinkpads; l; l = l->next)
    if (!gst_pad_get_element_private (l->data))
      all = FALSE;
  GST_OBJECT_UNLOCK (self);
  return all;
}

void
gst_anygpt_llm_push_src_event (GstAnygptLlm * self, GstEvent * ev)
{
  GstPad *pads[] = { self->text_src, self->speech_src, self->image_src, self->music_src };
  for (guint i = 0; i < G_N_ELEMENTS (pads); i++)
    gst_pad_push_event (pads[i], gst_event_ref (ev));
  gst_event_unref (ev);
}

/* The token caps this element reads: the model's codebook sizes, whole items. */
static gboolean
tokens_caps_ok (GstAnygptLlm * self, GstCaps * caps)
{
  GstAnygptTokensInfo info;
  if (!gst_anygpt_tokens_info_from_caps (&info, caps))
    return FALSE;
  switch (info.modality) {
    case GST_ANYGPT_MODALITY_SPEECH:
      return info.codebook_size == 1024;
    case GST_ANYGPT_MODALITY_IMAGE:
      return info.codebook_size == 8192 && info.codebooks == 1;
    case GST_ANYGPT_MODALITY_MUSIC:
      return info.codebook_size == 2048 && info.codebooks == 4;
  }
  return FALSE;
}

static gboolean
sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = TRUE;
      if (g_str_equal (GST_PAD_TEMPLATE_NAME_TEMPLATE (GST_PAD_PAD_TEMPLATE (pad)),
              "tokens_sink_%u"))
        ok = tokens_caps_ok (self, caps);
      if (!ok)
        GST_WARNING_OBJECT (pad, "refusing caps %" GST_PTR_FORMAT
            " (speech: codebook-size 1024; image: 1 codebook of 8192; music: 4 of 2048)", caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_FLUSH_START:
      gst_anygpt_llm_push_src_event (self, event);
      queue_set_flushing (self, TRUE);
      gst_pad_pause_task (self->text_src);      /* waits for the task: stopped within a token */
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      gst_anygpt_llm_push_src_event (self, event);
      gst_pad_set_element_private (pad, NULL);
      /* the task only runs while the source pads are active (PAUSED and up) */
      if (!gst_pad_is_active (self->text_src))
        return TRUE;
      queue_set_flushing (self, FALSE);
      return gst_pad_start_task (self->text_src, (GstTaskFunction) gst_anygpt_llm_loop, self,
          NULL);
    case GST_EVENT_EOS:{
      gst_event_unref (event);
      gst_pad_set_element_private (pad, GINT_TO_POINTER (1));
      if (!all_sinks_eos (self))
        return TRUE;
      g_mutex_lock (&self->lock);
      if (self->n_received == 0)
        queue_prompt_locked (self);
      g_mutex_unlock (&self->lock);
      GstAnygptLlmRequest *r = gst_anygpt_llm_request_new (GST_ANYGPT_LLM_REQ_EOS);
      return queue_push (self, r, NULL, TRUE) == GST_FLOW_OK;
    }
    default:
      /* our source pads have their own stream-start / segment; other serialized events
       * would overtake the queued requests */
      if (GST_EVENT_IS_SERIALIZED (event)) {
        gst_event_unref (event);
        return TRUE;
      }
      return gst_pad_event_default (pad, parent, event);
  }
}

/* A request with the time of buf: its PTS as running time in the pad's segment (the source
 * pads carry a plain TIME segment from 0, so downstream running times match the input's; a
 * segment in another format: the PTS as it is), and its duration. */
static GstAnygptLlmRequest *
request_for_buffer (GstAnygptLlmRequestKind kind, GstPad * pad, GstBuffer * buf)
{
  GstAnygptLlmRequest *r = gst_anygpt_llm_request_new (kind);
  GstClockTime pts = GST_BUFFER_PTS (buf);
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return r;
  r->pts = pts;
  GstEvent *ev = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
  if (ev) {
    const GstSegment *seg;
    gst_event_parse_segment (ev, &seg);
    if (seg->format == GST_FORMAT_TIME)
      r->pts = gst_segment_to_running_time (seg, GST_FORMAT_TIME, pts);
    gst_event_unref (ev);
  }
  if (GST_CLOCK_TIME_IS_VALID (r->pts))
    r->duration = GST_BUFFER_DURATION (buf);
  return r;
}

static GstFlowReturn
text_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (parent);
  GstAnygptLlmRequest *r = request_for_buffer (GST_ANYGPT_LLM_REQ_TEXT, pad, buf);
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    gst_anygpt_llm_request_free (r);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cannot map the text buffer"));
    return GST_FLOW_ERROR;
  }
  const gchar *end;
  gboolean valid = g_utf8_validate ((const gchar *) map.data, (gssize) map.size, &end);
  gchar *text = valid ? g_strstrip (g_strndup ((const gchar *) map.data, map.size)) : NULL;
  gsize bad_at = valid ? 0 : (gsize) (end - (const gchar *) map.data);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  if (!valid) {
    gst_anygpt_llm_request_free (r);
    GST_ELEMENT_WARNING (self, STREAM, DECODE, ("Text input is not valid UTF-8."),
        ("invalid byte at offset %" G_GSIZE_FORMAT " on %s; message dropped", bad_at,
            GST_PAD_NAME (pad)));
    return GST_FLOW_OK;
  }
  GST_OBJECT_LOCK (self);
  ag_task task = self->task;
  GST_OBJECT_UNLOCK (self);
  if (task == AG_TASK_ASR || task == AG_TASK_CAPTION || task == AG_TASK_MUSIC_CAPTION) {
    GST_ELEMENT_WARNING (self, STREAM, WRONG_TYPE, ("Task %s takes a token item, not text.",
            ag_task_name (task)), ("message on %s dropped", GST_PAD_NAME (pad)));
    g_free (text);
    gst_anygpt_llm_request_free (r);
    return GST_FLOW_OK;
  }
  if (!text[0]) {
    g_free (text);
    gst_anygpt_llm_request_free (r);
    return GST_FLOW_OK;
  }
  r->text = text;
  return queue_push (self, r, pad, FALSE);
}

/* The modality a task reads from a token item (NONE: any, for chat; -1: none). */
static gint
task_item_modality (ag_task task)
{
  switch (task) {
    case AG_TASK_CHAT:
      return AG_MODALITY_NONE;
    case AG_TASK_ASR:
      return AG_MODALITY_SPEECH;
    case AG_TASK_CAPTION:
      return AG_MODALITY_IMAGE;
    case AG_TASK_MUSIC_CAPTION:
      return AG_MODALITY_MUSIC;
    default:
      return -1;
  }
}

static GstFlowReturn
tokens_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (parent);
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstAnygptTokensInfo info;
  gboolean have_info = caps && gst_anygpt_tokens_info_from_caps (&info, caps);
  gst_clear_caps (&caps);
  if (!have_info) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("no caps on %s", GST_PAD_NAME (pad)));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GST_OBJECT_LOCK (self);
  ag_task task = self->task;
  GST_OBJECT_UNLOCK (self);
  gint want = task_item_modality (task);
  if (want < 0 || (want != AG_MODALITY_NONE && want != (gint) info.modality)) {
    gst_buffer_unref (buf);
    GST_ELEMENT_WARNING (self, STREAM, WRONG_TYPE, ("Task %s does not take %s items.",
            ag_task_name (task), gst_anygpt_modality_name (info.modality)),
        ("item on %s dropped", GST_PAD_NAME (pad)));
    return GST_FLOW_OK;
  }
  GstMapInfo map;
  const gint32 *ids;
  gsize n_frames;
  if (!gst_anygpt_tokens_map (buf, &info, &map, &ids, &n_frames)) {
    gsize size = gst_buffer_get_size (buf);
    gst_buffer_unref (buf);
    GST_ELEMENT_WARNING (self, STREAM, DECODE, ("Malformed token item."),
        ("%" G_GSIZE_FORMAT " bytes on %s is not a whole number of aligned %d-codebook int32 "
            "frames; item dropped", size, GST_PAD_NAME (pad), info.codebooks));
    return GST_FLOW_OK;
  }
  /* speech: the semantic layer (first codebook) only; music and image: as they are */
  gint keep = info.modality == GST_ANYGPT_MODALITY_SPEECH ? 1 : info.codebooks;
  gsize n = n_frames * (gsize) keep;
  gint32 *codes = g_new (gint32, MAX (n, 1));
  gboolean in_range = TRUE;
  for (gsize f = 0; f < n_frames; f++)
    for (gint c = 0; c < keep; c++) {
      gint32 v = GINT32_FROM_LE (ids[f * (gsize) info.codebooks + (gsize) c]);
      codes[f * (gsize) keep + (gsize) c] = v;
      in_range &= v >= 0 && v < info.codebook_size;
    }
  gst_buffer_unmap (buf, &map);
  GstAnygptLlmRequest *r = request_for_buffer (GST_ANYGPT_LLM_REQ_ITEM, pad, buf);
  gst_buffer_unref (buf);
  if (n == 0 || !in_range || (info.modality == GST_ANYGPT_MODALITY_IMAGE && n != 32)) {
    gst_anygpt_llm_request_free (r);
    g_free (codes);
    GST_ELEMENT_WARNING (self, STREAM, DECODE, ("Malformed token item."),
        ("%s item of %" G_GSIZE_FORMAT " codes on %s: %s; item dropped",
            gst_anygpt_modality_name (info.modality), n, GST_PAD_NAME (pad),
            !in_range ? "code outside the codebook" : n == 0 ? "empty" : "an image has 32 codes"));
    return GST_FLOW_OK;
  }
  r->modality = (ag_modality) info.modality;
  r->codes = codes;
  r->n_codes = n;
  return queue_push (self, r, pad, FALSE);
}

static GstPad *
gst_anygpt_llm_request_new_pad (GstElement * element, GstPadTemplate * templ,
    const gchar * name, const GstCaps * caps)
{
  gboolean is_text = g_str_equal (GST_PAD_TEMPLATE_NAME_TEMPLATE (templ), "text_sink_%u");
  GstAnygptLlm *self = GST_ANYGPT_LLM (element);
  GST_OBJECT_LOCK (self);
  gchar *pad_name = name ? g_strdup (name) :
      g_strdup_printf (is_text ? "text_sink_%u" : "tokens_sink_%u", self->next_pad_id);
  self->next_pad_id++;
  GST_OBJECT_UNLOCK (self);
  GstPad *pad = gst_pad_new_from_template (templ, pad_name);
  g_free (pad_name);
  gst_pad_set_chain_function (pad, is_text ? GST_DEBUG_FUNCPTR (text_chain) :
      GST_DEBUG_FUNCPTR (tokens_chain));
  gst_pad_set_event_function (pad, GST_DEBUG_FUNCPTR (sink_event));
  GST_PAD_SET_PROXY_ALLOCATION (pad);
  if (GST_STATE (element) >= GST_STATE_PAUSED)
    gst_pad_set_active (pad, TRUE);
  if (!gst_element_add_pad (element, pad))
    return NULL;                /* a pad of that name exists */
  return pad;
}

static void
gst_anygpt_llm_release_pad (GstElement * element, GstPad * pad)
{
  gst_pad_set_active (pad, FALSE);
  gst_element_remove_pad (element, pad);
}

/* ---- source pads ---- */

static gboolean
src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  if (gst_anygpt_shared_handle_query (GST_ELEMENT (parent), query))
    return TRUE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY && GST_ELEMENT (parent)->numsinkpads == 0) {
    /* working as a source: not live, and a reply's length has no bound */
    gst_query_set_latency (query, FALSE, 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    /* upstream's (all sink pads), plus the configured reply time when live */
    if (!gst_pad_query_default (pad, parent, query))
      return FALSE;
    GST_OBJECT_LOCK (parent);
    GstClockTime add = GST_ANYGPT_LLM (parent)->latency;
    GST_OBJECT_UNLOCK (parent);
    gst_anygpt_latency_add (query, add, FALSE);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

/* upstream events on a source pad: the pipeline latency the sinks were given is kept for
 * half-duplex (a reply's audio plays at its timestamps plus that latency) */
static gboolean
src_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (parent);
  if (GST_EVENT_TYPE (event) == GST_EVENT_LATENCY) {
    GstClockTime latency;
    gst_event_parse_latency (event, &latency);
    GST_OBJECT_LOCK (self);
    self->sink_latency = latency;
    GST_OBJECT_UNLOCK (self);
    GST_DEBUG_OBJECT (pad, "sinks play %" GST_TIME_FORMAT " after the timestamps", GST_TIME_ARGS (latency));
  }
  return gst_pad_event_default (pad, parent, event);
}

static GstPad *
make_src_pad (GstAnygptLlm * self, GstPadTemplate * templ)
{
  GstPad *pad = gst_pad_new_from_template (templ, GST_PAD_TEMPLATE_NAME_TEMPLATE (templ));
  gst_pad_use_fixed_caps (pad);
  gst_pad_set_query_function (pad, GST_DEBUG_FUNCPTR (src_query));
  gst_pad_set_event_function (pad, GST_DEBUG_FUNCPTR (src_event));
  gst_element_add_pad (GST_ELEMENT (self), pad);
  return pad;
}

static GstPadTemplate *
tokens_src_template (const gchar * name, GstAnygptModality m, gint codebooks, gint size,
    gint rate)
{
  GstAnygptTokensInfo info = { m, codebooks, size, rate, 1 };
  GstCaps *caps = gst_anygpt_tokens_caps_new (&info);
  GstPadTemplate *t = gst_pad_template_new (name, GST_PAD_SRC, GST_PAD_ALWAYS, caps);
  gst_caps_unref (caps);
  return t;
}

/* ---- state ---- */

static gpointer
load_session (ag_backend * be, const gchar * path, ag_progress_fn progress, void *progress_user,
    gpointer user)
{
  return ag_session_new (be, path, GPOINTER_TO_INT (user), progress, progress_user);
}

static gboolean
load_model (GstAnygptLlm * self)
{
  GST_OBJECT_LOCK (self);
  gint n_ctx = self->context_length;
  GST_OBJECT_UNLOCK (self);
  self->session = gst_anygpt_shared_load (GST_ELEMENT (self), "an AnyGPT LLM GGUF file",
      load_session, GINT_TO_POINTER (n_ctx));
  if (!self->session)
    return FALSE;
  GST_INFO_OBJECT (self, "loaded %s on %s", gst_anygpt_shared_model_path (GST_ELEMENT (self)),
      ag_backend_device_name (gst_anygpt_shared_backend (GST_ELEMENT (self))));
  return TRUE;
}

static void
unload_model (GstAnygptLlm * self)
{
  g_clear_pointer (&self->session, ag_session_free);
  gst_anygpt_shared_close (GST_ELEMENT (self));
  gst_anygpt_llm_clear_turns (self);
}

static GstStateChangeReturn
gst_anygpt_llm_change_state (GstElement * element, GstStateChange transition)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!load_model (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      g_mutex_lock (&self->lock);
      self->n_received = 0;
      self->prompt_queued = FALSE;
      g_mutex_unlock (&self->lock);
      GST_OBJECT_LOCK (self);
      for (GList * l = element->sinkpads; l; l = l->next)
        gst_pad_set_element_private (l->data, NULL);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)->change_state (element,
      transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;
  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_pad_start_task (self->text_src, (GstTaskFunction) gst_anygpt_llm_loop, self, NULL))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      g_mutex_lock (&self->lock);
      g_queue_clear_full (&self->queue, (GDestroyNotify) gst_anygpt_llm_request_free);
      g_mutex_unlock (&self->lock);
      gst_anygpt_llm_reset_text_timing (self);  /* the task is stopped */
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      unload_model (self);
      break;
    default:
      break;
  }
  return ret;
}

/* ---- properties ---- */

static void
gst_anygpt_llm_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_CONTEXT_LENGTH:
      self->context_length = g_value_get_int (value);
      break;
    case PROP_TASK:
      self->task = g_value_get_enum (value);
      break;
    case PROP_PROMPT:
      g_free (self->prompt);
      self->prompt = g_value_dup_string (value);
      break;
    case PROP_INSTRUCTION:
      g_free (self->instruction);
      self->instruction = g_value_dup_string (value);
      break;
    case PROP_SYSTEM_PROMPT:
      g_free (self->system_prompt);
      self->system_prompt = g_value_dup_string (value);
      break;
    case PROP_HISTORY:
      self->history = g_value_get_uint (value);
      break;
    case PROP_TEMPERATURE:
      self->temperature = g_value_get_double (value);
      break;
    case PROP_TOP_P:
      self->top_p = g_value_get_double (value);
      break;
    case PROP_TOP_K:
      self->top_k = g_value_get_int (value);
      break;
    case PROP_REPETITION_PENALTY:
      self->repetition_penalty = g_value_get_double (value);
      break;
    case PROP_MAX_NEW_TOKENS:
      self->max_new_tokens = g_value_get_int (value);
      break;
    case PROP_SEED:
      self->seed = g_value_get_int64 (value);
      break;
    case PROP_CONSTRAIN_SPANS:
      self->constrain_spans = g_value_get_boolean (value);
      break;
    case PROP_SPEECH_REPLY:
      self->speech_reply = g_value_get_enum (value);
      break;
    case PROP_DUPLEX:
      self->duplex = g_value_get_enum (value);
      break;
    case PROP_TEXT_MODE:
      self->text_mode = g_value_get_enum (value);
      break;
    case PROP_CAPTION_DURATION:
      self->caption_duration = g_value_get_uint64 (value);
      break;
    case PROP_SPEECH_CHUNK:
      self->speech_chunk = g_value_get_uint (value);
      break;
    case PROP_LATENCY:
      self->latency = g_value_get_uint64 (value);
      break;
    default:
      if (!gst_anygpt_shared_set_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_anygpt_llm_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_CONTEXT_LENGTH:
      g_value_set_int (value, self->context_length);
      break;
    case PROP_TASK:
      g_value_set_enum (value, self->task);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prompt);
      break;
    case PROP_INSTRUCTION:
      g_value_set_string (value, self->instruction);
      break;
    case PROP_SYSTEM_PROMPT:
      g_value_set_string (value, self->system_prompt);
      break;
    case PROP_HISTORY:
      g_value_set_uint (value, self->history);
      break;
    case PROP_TEMPERATURE:
      g_value_set_double (value, self->temperature);
      break;
    case PROP_TOP_P:
      g_value_set_double (value, self->top_p);
      break;
    case PROP_TOP_K:
      g_value_set_int (value, self->top_k);
      break;
    case PROP_REPETITION_PENALTY:
      g_value_set_double (value, self->repetition_penalty);
      break;
    case PROP_MAX_NEW_TOKENS:
      g_value_set_int (value, self->max_new_tokens);
      break;
    case PROP_SEED:
      g_value_set_int64 (value, self->seed);
      break;
    case PROP_CONSTRAIN_SPANS:
      g_value_set_boolean (value, self->constrain_spans);
      break;
    case PROP_SPEECH_REPLY:
      g_value_set_enum (value, self->speech_reply);
      break;
    case PROP_DUPLEX:
      g_value_set_enum (value, self->duplex);
      break;
    case PROP_TEXT_MODE:
      g_value_set_enum (value, self->text_mode);
      break;
    case PROP_CAPTION_DURATION:
      g_value_set_uint64 (value, self->caption_duration);
      break;
    case PROP_SPEECH_CHUNK:
      g_value_set_uint (value, self->speech_chunk);
      break;
    case PROP_LATENCY:
      g_value_set_uint64 (value, self->latency);
      break;
    default:
      if (!gst_anygpt_shared_get_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_anygpt_llm_finalize (GObject * object)
{
  GstAnygptLlm *self = GST_ANYGPT_LLM (object);
  unload_model (self);
  g_queue_clear_full (&self->queue, (GDestroyNotify) gst_anygpt_llm_request_free);
  gst_anygpt_llm_reset_text_timing (self);
  g_string_free (self->held, TRUE);
  g_free (self->prompt);
  g_free (self->instruction);
  g_free (self->system_prompt);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)
#define RW_NULL (RW | GST_PARAM_MUTABLE_READY)
#define RW_PLAY (RW | GST_PARAM_MUTABLE_PLAYING)

static void
gst_anygpt_llm_class_init (GstAnygptLlmClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (anygpt_llm_debug, "anygptllm", 0, "AnyGPT LLM element");

  gobject_class->set_property = gst_anygpt_llm_set_property;
  gobject_class->get_property = gst_anygpt_llm_get_property;
  gobject_class->finalize = gst_anygpt_llm_finalize;

  /* model and device: read when going NULL->READY */
  gst_anygpt_shared_class_init (element_class,
          "AnyGPT LLM GGUF file (anygpt-convert llm), loaded on NULL->READY");
  g_object_class_install_property (gobject_class, PROP_CONTEXT_LENGTH,
      g_param_spec_int ("context-length", "Context length",
          "KV cache length in tokens (0: the model's context length)", 0, 1 << 20,
          DEFAULT_CONTEXT_LENGTH, RW_NULL));

  /* requests: read when a request starts */
  g_object_class_install_property (gobject_class, PROP_TASK,
      g_param_spec_enum ("task", "Task", "How requests become prompts (chat model templates)",
          GST_TYPE_ANYGPT_LLM_TASK, DEFAULT_TASK, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "Text answered once when no sink pad is requested (then EOS follows), or when all "
          "sink pads reach EOS without a request", NULL, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_INSTRUCTION,
      g_param_spec_string ("instruction", "Instruction",
          "Replaces the task's instruction in the user message (NULL: the spec's wording; chat: "
          "appended to the message, speech items get the spec's voice-chat instruction)", NULL,
          RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_SYSTEM_PROMPT,
      g_param_spec_string ("system-prompt", "System prompt",
          "First line of every prompt (NULL: the AnyGPT chat model's system prompt)", NULL,
          RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_HISTORY,
      g_param_spec_uint ("history", "History",
          "Chat task: previous turns (message and reply) kept in the prompt", 0, 1000,
          DEFAULT_HISTORY, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_TEMPERATURE,
      g_param_spec_double ("temperature", "Temperature",
          "Sampling temperature for every span kind (0: greedy; negative: the spec's "
          "per-modality values)", -1.0, 100.0, DEFAULT_SAMPLING, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_TOP_P,
      g_param_spec_double ("top-p", "Top p",
          "Nucleus sampling mass for every span kind (1: off; negative: the spec's values)",
          -1.0, 1.0, DEFAULT_SAMPLING, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_int ("top-k", "Top k",
          "Keep the k most likely tokens, every span kind (0: off; negative: the spec's values)",
          -1, G_MAXINT, DEFAULT_TOP_K, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_REPETITION_PENALTY,
      g_param_spec_double ("repetition-penalty", "Repetition penalty",
          "Penalty on tokens already in the prompt or reply, every span kind (1: off; "
          "below 0.01: the spec's values)", -1.0, 100.0, DEFAULT_SAMPLING, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_MAX_NEW_TOKENS,
      g_param_spec_int ("max-new-tokens", "Max new tokens",
          "Tokens generated per reply at most (<= 0: the spec's value for the target modality)",
          -1, G_MAXINT, DEFAULT_MAX_NEW_TOKENS, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_int64 ("seed", "Seed",
          "Sampling seed used for every reply, so a request gives the same reply each time "
          "(-1: a random seed per reply)", -1, G_MAXINT64, DEFAULT_SEED, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_CONSTRAIN_SPANS,
      g_param_spec_boolean ("constrain-spans", "Constrain spans",
          "Inside a speech/image/music span sample only that modality's codes and its end tag "
          "(FALSE: sample freely and keep the codes found, as the reference does)",
          DEFAULT_CONSTRAIN_SPANS, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_SPEECH_REPLY,
      g_param_spec_enum ("speech-reply", "Speech reply",
          "Chat task: auto = the reply is what the model writes; always = every reply ends in "
          "speech (after its text, \"<eot>\\n<sosp>\" is forced and speech codes are sampled)",
          GST_TYPE_ANYGPT_LLM_SPEECH_REPLY, DEFAULT_SPEECH_REPLY, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_DUPLEX,
      g_param_spec_enum ("duplex", "Duplex",
          "Requests arriving while a reply is generated or its audio plays: queue = answered "
          "in order (back-pressure at 8 waiting); half = dropped (message anygptllm-dropped); "
          "barge-in = the reply stops, the source pads are flushed, the new request is "
          "answered; newest = one request waits, a newer one replaces it (message "
          "anygptllm-dropped, reason superseded); auto = newest for task=caption when the "
          "input is live (latency query), queue otherwise",
          GST_TYPE_ANYGPT_LLM_DUPLEX, DEFAULT_DUPLEX, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_TEXT_MODE,
      g_param_spec_enum ("text-mode", "Text mode",
          "How a reply leaves text_src: stream = pieces as generated (PTS = the request's, "
          "no duration, MARKER on the last); whole = one buffer when the reply is complete "
          "(PTS = the request's, duration: see caption-duration), for textoverlay and "
          "subtitle muxers; auto = whole for asr, caption and music-caption",
          GST_TYPE_ANYGPT_LLM_TEXT_MODE, DEFAULT_TEXT_MODE, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_CAPTION_DURATION,
      g_param_spec_uint64 ("caption-duration", "Caption duration",
          "Duration of a whole reply (text-mode=whole), ns. 0: the request's own duration "
          "(an utterance, a clip), else until the next request's PTS (images: the reply is "
          "sent when the next request is taken, or at EOS with the previous duration). Live "
          "overlays: about the time between captions plus the LLM latency",
          0, G_MAXUINT64, DEFAULT_CAPTION_DURATION, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_SPEECH_CHUNK,
      g_param_spec_uint ("speech-chunk", "Speech chunk",
          "Streamed speech: push a speech item on speech_src in buffers of this many frames "
          "(50 a second) while it is generated, the item's last buffer (at most this long) "
          "with MARKER set, so soundstorm chunk=N and encodecdecode can speak before the "
          "reply ends; 0 = one buffer per item when it is complete (MARKER set)",
          0, 16384, 0, RW_PLAY));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint64 ("latency", "Latency",
          "Live input: the time a reply may take, ns, added to the latency upstream reports "
          "(also the maximum). The LLM is not a real-time element: a reply takes as long as it "
          "takes, so it adds nothing by default; set the turn time you budget so that "
          "synchronised sinks play the replies (timed at the request) that late instead of "
          "dropping them", 0, G_MAXUINT64, 0, RW_PLAY));

  gst_element_class_add_static_pad_template (element_class, &text_sink_template);
  GstCaps *any_tokens = gst_anygpt_tokens_caps_any (NULL);
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("tokens_sink_%u", GST_PAD_SINK, GST_PAD_REQUEST, any_tokens));
  gst_caps_unref (any_tokens);
  gst_element_class_add_static_pad_template (element_class, &text_src_template);
  gst_element_class_add_pad_template (element_class,
      tokens_src_template ("speech_src", GST_ANYGPT_MODALITY_SPEECH, 1, 1024, 50));
  gst_element_class_add_pad_template (element_class,
      tokens_src_template ("image_src", GST_ANYGPT_MODALITY_IMAGE, 1, 8192, 0));
  gst_element_class_add_pad_template (element_class,
      tokens_src_template ("music_src", GST_ANYGPT_MODALITY_MUSIC, 4, 2048, 50));

  gst_element_class_set_static_metadata (element_class, "AnyGPT LLM",
      "Generator/Text/Audio/Video",
      "Any-to-any multimodal LLM: text, speech, image and music tokens in, streamed text "
      "and token items out", "gst-anygpt developers");

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_anygpt_llm_change_state);
  element_class->request_new_pad = GST_DEBUG_FUNCPTR (gst_anygpt_llm_request_new_pad);
  element_class->release_pad = GST_DEBUG_FUNCPTR (gst_anygpt_llm_release_pad);

  gst_type_mark_as_plugin_api (GST_TYPE_ANYGPT_LLM_TASK, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ANYGPT_LLM_SPEECH_REPLY, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ANYGPT_LLM_DUPLEX, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ANYGPT_LLM_TEXT_MODE, 0);
}

static void
gst_anygpt_llm_init (GstAnygptLlm * self)
{
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (self);
  self->sink_latency = GST_CLOCK_TIME_NONE;
  self->text_src = make_src_pad (self, gst_element_class_get_pad_template (klass, "text_src"));
  gst_pad_set_activatemode_function (self->text_src,
      GST_DEBUG_FUNCPTR (text_src_activate_mode));
  self->speech_src = make_src_pad (self,
      gst_element_class_get_pad_template (klass, "speech_src"));
  self->image_src = make_src_pad (self, gst_element_class_get_pad_template (klass,
          "image_src"));
  self->music_src = make_src_pad (self, gst_element_class_get_pad_template (klass,
          "music_src"));

  gst_anygpt_shared_instance_init (GST_ELEMENT (self));
  self->context_length = DEFAULT_CONTEXT_LENGTH;
  self->task = DEFAULT_TASK;
  self->history = DEFAULT_HISTORY;
  self->temperature = self->top_p = self->repetition_penalty = DEFAULT_SAMPLING;
  self->top_k = DEFAULT_TOP_K;
  self->max_new_tokens = DEFAULT_MAX_NEW_TOKENS;
  self->seed = DEFAULT_SEED;
  self->constrain_spans = DEFAULT_CONSTRAIN_SPANS;
  self->speech_reply = DEFAULT_SPEECH_REPLY;
  self->duplex = DEFAULT_DUPLEX;

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->queue);
  g_queue_init (&self->turns);
  self->flushing = TRUE;
  self->srcresult = GST_FLOW_FLUSHING;
  self->held = g_string_new (NULL);
  self->text_mode = DEFAULT_TEXT_MODE;
  self->caption_duration = DEFAULT_CAPTION_DURATION;
  gst_anygpt_llm_reset_text_timing (self);
}
