/**
 * SECTION:element-soundstorm
 * @title: soundstorm
 *
 * SoundStorm: semantic speech tokens (SpeechTokenizer RVQ layer 1, what anygptllm puts on its
 * speech_src) in, all 8 RVQ layers out, ready for encodecdecode. The masked decoding follows
 * AnyGPT's (steps, greedy and seed properties; see anygpt/soundstorm.h).
 *
 * Voice: the reply can take the voice of a prompt, given either as
 *  - `voice-prompt`, a WAV file at the tokenizer's rate (16 kHz), encoded once at NULL->READY
 *    with the SpeechTokenizer model in `voice-prompt-tokenizer`, or
 *  - the request pad `prompt` receiving one 8-layer speech token item (e.g. from
 *    `speechtokenize layers=8`); while that pad exists, items on `sink` wait until the prompt
 *    has arrived (or the prompt pad got EOS). A newer prompt item replaces the older one.
 * The pad's prompt wins over the file's.
 *
 * Input items may carry 1..N codebooks; only the first (semantic) layer is used. Each item is
 * generated with the same `seed`, so an item's result does not depend on what came before.
 * Generation runs in the streaming thread (put a queue before the element to decouple it); it
 * is not interruptible inside one item: a state change waits for the item in progress.
 * An element message `soundstorm` follows each item (frames, prompt-frames, seconds).
 *
 * Streamed speech (`chunk` N > 0): an item may arrive in several buffers (anygptllm
 * speech-chunk), the one with MARKER set ending it (or EOS). As soon as N semantic frames are
 * waiting they are generated and pushed as one buffer, conditioned on the previous chunk of the
 * item (all its levels, as a voice prompt; the first chunk takes the voice prompt); the rest
 * goes out when the item ends, MARKER on the item's last buffer (see ag_soundstorm_stream for
 * the seeds). A state change waits for the chunk in progress only. One `soundstorm` message per
 * chunk, with `chunk` (its index in the item) and `last`. chunk=0 (default): whole items, exactly
 * as above.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 ... anygptllm name=llm task=tts prompt="Hello" llm.speech_src !
 *   soundstorm model-path=soundstorm.gguf ! encodecdecode model-path=speechtokenizer.gguf !
 *   audioconvert ! wavenc ! filesink location=reply.wav
 * ]|
 */
#include "gstanygptaudioelements.h"
#include "gstanygptcore.h"
#include "gstanygptlatency.h"
#include "gstanygptshared.h"

#include "anygpt/error.h"
#include "anygpt/seanet.h"
#include "anygpt/soundstorm.h"
#include "anygpt/wav.h"

#define GST_CAT_DEFAULT anygpt_core_debug

#define GST_TYPE_SOUNDSTORM (gst_soundstorm_get_type ())
G_DECLARE_FINAL_TYPE (GstSoundStorm, gst_soundstorm, GST, SOUNDSTORM, GstElement)

struct _GstSoundStorm
{
  GstElement parent;
  GstPad *sinkpad, *srcpad, *promptpad;
  /* properties (object lock; model-path, device, backend: gstanygptshared.h) */
  gchar *voice_prompt, *voice_tokenizer;
  gint steps;
  guint64 seed;
  gboolean greedy;
  guint chunk;
  /* model (READY and up) */
  ag_soundstorm *model;
  GstAnygptLatency latency;     /* longest item so far */
  gint levels;                  /* n_q + 1: codebooks out */
  gint32 *file_prompt;          /* [file_prompt_frames][levels] from voice-prompt */
  gsize file_prompt_frames;
  /* stream */
  GstAnygptTokensInfo in_info, prompt_info;
  gboolean have_caps;
  GMutex lock;                  /* guards the pad prompt and the wait below */
  GCond cond;
  gint32 *pad_prompt;
  gsize pad_prompt_frames;
  gboolean prompt_done, flushing;
  /* streamed speech (chunk > 0): the item in progress, NULL between items */
  ag_soundstorm_stream *stream;
  GstClockTime item_pts;
  guint item_chunk;             /* the chunk the item started with */
  guint64 item_frames, item_chunks;
  gsize item_prompt_frames;
};

G_DEFINE_TYPE (GstSoundStorm, gst_soundstorm, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (soundstorm, "soundstorm", GST_RANK_NONE, GST_TYPE_SOUNDSTORM);

enum
{
  /* 1..4: model-path, device, device-index, threads (gstanygptshared.h) */
  PROP_FIRST_OWN = GST_ANYGPT_SHARED_N_PROPS - 1,
  PROP_STEPS,
  PROP_SEED,
  PROP_GREEDY,
  PROP_VOICE_PROMPT,
  PROP_VOICE_TOKENIZER,
  PROP_CHUNK,
};

#define DEFAULT_STEPS 3         /* AnyGPT's vc_steps for speech decoding */
#define DEFAULT_SEED 0
#define DEFAULT_GREEDY TRUE     /* AnyGPT calls generate(greedy=True) */

static GstCaps *
speech_caps (gint codebooks_min, gint codebooks_max)
{
  GstCaps *c = gst_anygpt_tokens_caps_any ("speech");
  gst_caps_set_simple (c, "codebook-size", G_TYPE_INT, 1024, "rate", GST_TYPE_FRACTION, 50, 1,
      NULL);
  if (codebooks_min == codebooks_max)
    gst_caps_set_simple (c, "codebooks", G_TYPE_INT, codebooks_min, NULL);
  else
    gst_caps_set_simple (c, "codebooks", GST_TYPE_INT_RANGE, codebooks_min, codebooks_max,
        NULL);
  return c;
}

/* Encode the voice-prompt WAV into all layers with the SpeechTokenizer model. */
static gboolean
load_file_prompt (GstSoundStorm * self, const gchar * wav_path, const gchar * tok_path)
{
  ag_wav wav;
  gchar *reason = NULL;
  ag_seanet *st = NULL;
  if (!tok_path || !*tok_path) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No tokenizer for the voice prompt"),
        ("voice-prompt is set: set voice-prompt-tokenizer to the SpeechTokenizer GGUF"));
    return FALSE;
  }
  memset (&wav, 0, sizeof wav);
  st = ag_seanet_load (gst_anygpt_shared_backend (GST_ELEMENT (self)), tok_path, NULL, NULL);
  if (!st)
    reason = g_strdup (ag_last_error ());
  /* the prompt may use half of the frames a call accepts: a longer file is refused before its
   * samples are decoded (limits.h) */
  else if (ag_wav_read_max (wav_path, (int64_t) AG_SOUNDSTORM_MAX_FRAMES / 2 *
          ag_seanet_info_of (st)->hop, &wav) != 0) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Cannot read voice prompt \"%s\"", wav_path),
        ("%s", ag_last_error ()));
    ag_seanet_free (st);
    return FALSE;
  } else if (ag_seanet_info_of (st)->n_q < self->levels
      || ag_seanet_info_of (st)->codebook_size > 1024)
    reason = g_strdup_printf ("%s has %d codebooks of %d; SoundStorm needs %d of at most 1024",
        tok_path, ag_seanet_info_of (st)->n_q, ag_seanet_info_of (st)->codebook_size,
        self->levels);
  else if (wav.sample_rate != ag_seanet_info_of (st)->sample_rate)
    reason = g_strdup_printf ("%s is %d Hz; the tokenizer needs %d Hz (resample it, e.g. with "
        "gst-launch-1.0 filesrc ! decodebin ! audioresample ! audio/x-raw,rate=%d ! wavenc)",
        wav_path, wav.sample_rate, ag_seanet_info_of (st)->sample_rate,
        ag_seanet_info_of (st)->sample_rate);
  else if (ag_seanet_n_frames (st, wav.n) < 1
      || ag_seanet_n_frames (st, wav.n) > AG_SOUNDSTORM_MAX_FRAMES / 2)
    reason = g_strdup_printf ("%s: %lld samples is not a usable prompt length", wav_path,
        (long long) wav.n);
  if (!reason) {
    gsize frames = (gsize) ag_seanet_n_frames (st, wav.n);
    self->file_prompt = g_new (gint32, frames * self->levels);
    if (ag_seanet_encode (st, wav.samples, wav.n, self->levels, self->file_prompt) != 0) {
      reason = g_strdup (ag_last_error ());
      g_clear_pointer (&self->file_prompt, g_free);
    } else {
      self->file_prompt_frames = frames;
    }
  }
  ag_wav_clear (&wav);
  if (st)
    ag_seanet_free (st);
  if (reason) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Cannot use voice prompt \"%s\"", wav_path),
        ("%s", reason));
    g_free (reason);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "voice prompt %s: %" G_GSIZE_FORMAT " frames", wav_path,
      self->file_prompt_frames);
  return TRUE;
}

static gpointer
load_soundstorm (ag_backend * be, const gchar * path, ag_progress_fn progress,
    void *progress_user, gpointer user)
{
  (void) user;
  return ag_soundstorm_load (be, path, progress, progress_user);
}

static gboolean
load_model (GstSoundStorm * self)
{
  GstElement *el = GST_ELEMENT (self);
  GST_OBJECT_LOCK (self);
  gchar *wav = g_strdup (self->voice_prompt), *tok = g_strdup (self->voice_tokenizer);
  GST_OBJECT_UNLOCK (self);
  gboolean ok = FALSE;

  self->model = gst_anygpt_shared_load (el, "a SoundStorm GGUF (anygpt-convert soundstorm)",
      load_soundstorm, NULL);
  if (!self->model)
    goto out;
  const ag_soundstorm_info *info = ag_soundstorm_info_of (self->model);
  self->levels = info->n_q + 1;
  if (info->codebook_size != 1024 || info->semantic_vocab != 1024) {
    gchar *reason = g_strdup_printf ("codebooks of %d and a semantic vocabulary of %d: not a "
        "SpeechTokenizer SoundStorm", info->codebook_size, info->semantic_vocab);
    gst_anygpt_shared_load_failed (el, reason);
    g_free (reason);
    goto out;
  }
  if (wav && *wav && !load_file_prompt (self, wav, tok))
    goto out;
  ok = TRUE;
out:
  g_free (wav);
  g_free (tok);
  return ok;
}

static void
unload_model (GstSoundStorm * self)
{
  g_clear_pointer (&self->model, ag_soundstorm_free);
  gst_anygpt_shared_close (GST_ELEMENT (self));
  g_clear_pointer (&self->file_prompt, g_free);
  self->file_prompt_frames = 0;
}

static void
set_flushing (GstSoundStorm * self, gboolean flushing)
{
  g_mutex_lock (&self->lock);
  self->flushing = flushing;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static gboolean
gst_soundstorm_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstSoundStorm *self = GST_SOUNDSTORM (parent);
  if (gst_anygpt_shared_handle_query (GST_ELEMENT (self), query))
    return TRUE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY && pad == self->srcpad)
    /* live: an item leaves after its processing (the longest seen so far) */
    return gst_anygpt_latency_query (&self->latency, self->sinkpad, query, 0, FALSE);
  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS && self->model) {
    GstCaps *caps = pad == self->srcpad ? speech_caps (self->levels, self->levels) :
        pad == self->promptpad ? speech_caps (self->levels, 64) : speech_caps (1, 64);
    GstCaps *filter, *res;
    gst_query_parse_caps (query, &filter);
    res = filter ? gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST) :
        gst_caps_ref (caps);
    gst_query_set_caps_result (query, res);
    gst_caps_unref (res);
    gst_caps_unref (caps);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
check_caps (GstSoundStorm * self, GstCaps * caps, gint min_codebooks,
    GstAnygptTokensInfo * info)
{
  if (!gst_anygpt_tokens_info_from_caps (info, caps)
      || info->modality != GST_ANYGPT_MODALITY_SPEECH || info->codebook_size != 1024
      || info->rate_n != 50 || info->rate_d != 1 || info->codebooks < min_codebooks) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("need speech tokens (codebook-size 1024, 50/1, at least %d codebooks), got %"
            GST_PTR_FORMAT, min_codebooks, caps));
    return FALSE;
  }
  return TRUE;
}

static GstFlowReturn push_ready_chunks (GstSoundStorm * self, gboolean end);

static gboolean
gst_soundstorm_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstSoundStorm *self = GST_SOUNDSTORM (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = check_caps (self, caps, 1, &self->in_info);
      gst_event_unref (event);
      if (!ok)
        return FALSE;
      GstCaps *out = speech_caps (self->levels, self->levels);
      ok = gst_pad_push_event (self->srcpad, gst_event_new_caps (out));
      gst_caps_unref (out);
      self->have_caps = ok;
      return ok;
    }
    case GST_EVENT_FLUSH_START:
      set_flushing (self, TRUE);
      break;
    case GST_EVENT_FLUSH_STOP:
      g_clear_pointer (&self->stream, ag_soundstorm_stream_free);
      set_flushing (self, FALSE);
      break;
    case GST_EVENT_EOS:
      if (self->stream)         /* the item's end never came: it ends here */
        push_ready_chunks (self, TRUE);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* The prompt pad consumes its events: nothing of the prompt stream goes downstream. */
static gboolean
gst_soundstorm_prompt_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstSoundStorm *self = GST_SOUNDSTORM (parent);
  gboolean ok = TRUE;
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      ok = check_caps (self, caps, self->levels, &self->prompt_info);
      break;
    }
    case GST_EVENT_EOS:
      g_mutex_lock (&self->lock);
      self->prompt_done = TRUE;
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_FLUSH_STOP:
      g_mutex_lock (&self->lock);
      self->prompt_done = FALSE;
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }
  gst_event_unref (event);
  return ok;
}

static GstFlowReturn
gst_soundstorm_prompt_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstSoundStorm *self = GST_SOUNDSTORM (parent);
  GstMapInfo map;
  const gint32 *ids;
  gsize frames;
  if (!self->prompt_info.codebooks || !gst_anygpt_tokens_map (buf, &self->prompt_info, &map,
          &ids, &frames)) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Malformed voice prompt tokens"),
        ("no caps, or %" G_GSIZE_FORMAT " bytes is not a whole number of frames",
            gst_buffer_get_size (buf)));
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  /* keep the first `levels` codebooks of each frame */
  gint32 *p = frames ? g_new (gint32, frames * self->levels) : NULL;
  for (gsize f = 0; f < frames; f++)
    memcpy (p + f * self->levels, ids + f * self->prompt_info.codebooks,
        sizeof (gint32) * self->levels);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  g_mutex_lock (&self->lock);
  g_free (self->pad_prompt);
  self->pad_prompt = p;
  self->pad_prompt_frames = frames;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;
}

/* The voice prompt of an item: the pad's when that pad exists (waiting for it), else the
 * file's. FALSE when flushing. */
static gboolean
take_prompt (GstSoundStorm * self, gint32 ** prompt, gsize * tp)
{
  *prompt = NULL;
  *tp = 0;
  g_mutex_lock (&self->lock);
  while (self->promptpad && !self->pad_prompt && !self->prompt_done && !self->flushing)
    g_cond_wait (&self->cond, &self->lock);
  gboolean flushing = self->flushing;
  if (self->pad_prompt) {
    *prompt = g_memdup2 (self->pad_prompt, self->pad_prompt_frames * self->levels * 4);
    *tp = self->pad_prompt_frames;
  }
  g_mutex_unlock (&self->lock);
  if (flushing) {
    g_clear_pointer (prompt, g_free);
    return FALSE;
  }
  if (!*prompt && self->file_prompt) {
    *prompt = g_memdup2 (self->file_prompt, self->file_prompt_frames * self->levels * 4);
    *tp = self->file_prompt_frames;
  }
  return TRUE;
}

/* chunk > 0: generate and push every chunk that is ready (with end: the rest of the item).
 * Stops between chunks when flushing. */
static GstFlowReturn
push_ready_chunks (GstSoundStorm * self, gboolean end)
{
  gint32 *codes = g_new (gint32, (gsize) self->item_chunk * self->levels);
  GstFlowReturn ret = GST_FLOW_OK;
  for (;;) {
    g_mutex_lock (&self->lock);
    gboolean flushing = self->flushing;
    g_mutex_unlock (&self->lock);
    if (flushing) {
      ret = GST_FLOW_FLUSHING;
      break;
    }
    gint64 t0 = g_get_monotonic_time ();
    int64_t k = ag_soundstorm_stream_next (self->stream, end, codes);
    gdouble secs = (g_get_monotonic_time () - t0) / 1e6;
    if (k < 0) {
      GST_ELEMENT_ERROR (self, STREAM, DECODE, ("SoundStorm failed"), ("%s", ag_last_error ()));
      ret = GST_FLOW_ERROR;
      break;
    }
    if (k == 0)
      break;
    gboolean last = end && ag_soundstorm_stream_pending (self->stream) == 0;
    GstBuffer *out = gst_anygpt_tokens_buffer_new (codes, (gsize) k, self->levels);
    if (GST_CLOCK_TIME_IS_VALID (self->item_pts))
      GST_BUFFER_PTS (out) = self->item_pts + self->item_frames * 20 * GST_MSECOND;
    GST_BUFFER_DURATION (out) = (GstClockTime) k * 20 * GST_MSECOND;
    if (last)
      GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_MARKER);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), gst_structure_new ("soundstorm",
                "frames", G_TYPE_UINT64, (guint64) k, "prompt-frames", G_TYPE_UINT64,
                (guint64) (self->item_chunks ? (guint64) self->item_chunk :
                    self->item_prompt_frames), "seconds", G_TYPE_DOUBLE, secs,
                "chunk", G_TYPE_UINT64, self->item_chunks, "last", G_TYPE_BOOLEAN, last,
                NULL)));
    GST_DEBUG_OBJECT (self, "chunk %" G_GUINT64_FORMAT ": %" G_GINT64_FORMAT " frames in %.2f s",
        self->item_chunks, (gint64) k, secs);
    self->item_frames += (guint64) k;
    self->item_chunks++;
    ret = gst_pad_push (self->srcpad, out);
    if (ret != GST_FLOW_OK)
      break;
  }
  g_free (codes);
  if (end || ret != GST_FLOW_OK)
    g_clear_pointer (&self->stream, ag_soundstorm_stream_free);
  return ret;
}

/* chunk > 0: sem [t] is the next part of an item; MARKER on `in` ends the item. */
static GstFlowReturn
chain_chunked (GstSoundStorm * self, GstBuffer * in, const gint32 * sem, gsize t, guint chunk)
{
  gboolean end = GST_BUFFER_FLAG_IS_SET (in, GST_BUFFER_FLAG_MARKER);
  if (!self->stream) {
    if (t == 0)                 /* nothing to say */
      return GST_FLOW_OK;
    gint32 *prompt;
    gsize tp;
    if (!take_prompt (self, &prompt, &tp))
      return GST_FLOW_FLUSHING;
    GST_OBJECT_LOCK (self);
    gint steps = self->steps;
    guint64 seed = self->seed;
    gboolean greedy = self->greedy;
    GST_OBJECT_UNLOCK (self);
    self->stream = tp + chunk <= AG_SOUNDSTORM_MAX_FRAMES ?
        ag_soundstorm_stream_new (self->model, chunk, prompt, (int64_t) tp, steps, seed,
        greedy) : NULL;
    g_free (prompt);
    if (!self->stream) {
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot stream SoundStorm"),
          ("chunk %u with %" G_GSIZE_FORMAT " prompt frames: %s", chunk, tp,
              tp + chunk > AG_SOUNDSTORM_MAX_FRAMES ? "too many frames" : ag_last_error ()));
      return GST_FLOW_ERROR;
    }
    self->item_chunk = chunk;
    self->item_pts = GST_BUFFER_PTS (in);
    self->item_frames = self->item_chunks = 0;
    self->item_prompt_frames = tp;
  }
  if (ag_soundstorm_stream_push (self->stream, sem, (int64_t) t) != 0) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Malformed semantic tokens"), ("%s",
            ag_last_error ()));
    g_clear_pointer (&self->stream, ag_soundstorm_stream_free);
    return GST_FLOW_ERROR;
  }
  return push_ready_chunks (self, end);
}

static GstFlowReturn
gst_soundstorm_chain (GstPad * pad, GstObject * parent, GstBuffer * in)
{
  GstSoundStorm *self = GST_SOUNDSTORM (parent);
  GstMapInfo map;
  const gint32 *ids;
  gsize t;
  if (!self->have_caps) {
    gst_buffer_unref (in);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("token buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!gst_anygpt_tokens_map (in, &self->in_info, &map, &ids, &t)) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Malformed token buffer"),
        ("%" G_GSIZE_FORMAT " bytes is not a whole number of %d-codebook int32 frames",
            gst_buffer_get_size (in), self->in_info.codebooks));
    gst_buffer_unref (in);
    return GST_FLOW_ERROR;
  }
  gint32 *sem = g_new (gint32, MAX (t, 1));
  for (gsize i = 0; i < t; i++)
    sem[i] = ids[i * self->in_info.codebooks];
  gst_buffer_unmap (in, &map);
  GST_OBJECT_LOCK (self);
  guint chunk = self->chunk;
  GST_OBJECT_UNLOCK (self);
  if (chunk > 0 || self->stream) {
    /* an item in progress keeps the chunk it started with */
    GstFlowReturn r = chain_chunked (self, in, sem, t, self->stream ? self->item_chunk : chunk);
    g_free (sem);
    gst_buffer_unref (in);
    return r;
  }

  /* the prompt: from the pad when one exists (waiting for it), else from the file */
  gint32 *prompt;
  gsize tp;
  if (!take_prompt (self, &prompt, &tp)) {
    g_free (sem);
    gst_buffer_unref (in);
    return GST_FLOW_FLUSHING;
  }
  if (t == 0) {                 /* nothing to say: nothing to push */
    g_free (sem);
    g_free (prompt);
    gst_buffer_unref (in);
    return GST_FLOW_OK;
  }
  if (t + tp > AG_SOUNDSTORM_MAX_FRAMES) {
    g_free (sem);
    g_free (prompt);
    gst_buffer_unref (in);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Item too long"),
        ("%" G_GSIZE_FORMAT " + %" G_GSIZE_FORMAT " prompt frames exceed %d", t, tp,
            AG_SOUNDSTORM_MAX_FRAMES));
    return GST_FLOW_ERROR;
  }

  GST_OBJECT_LOCK (self);
  gint steps = self->steps;
  guint64 seed = self->seed;
  gboolean greedy = self->greedy;
  GST_OBJECT_UNLOCK (self);
  gint32 *codes = g_new (gint32, t * self->levels);
  gint64 t0 = g_get_monotonic_time ();
  int rc = ag_soundstorm_generate (self->model, sem, (int64_t) t, prompt, (int64_t) tp, steps,
      seed, greedy, codes);
  gdouble secs = (g_get_monotonic_time () - t0) / 1e6;
  gst_anygpt_latency_observe (&self->latency, (GstClockTime) (secs * GST_SECOND));
  g_free (sem);
  g_free (prompt);
  if (rc != 0) {
    g_free (codes);
    gst_buffer_unref (in);
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("SoundStorm failed"), ("%s", ag_last_error ()));
    return GST_FLOW_ERROR;
  }
  GstBuffer *out = gst_anygpt_tokens_buffer_new (codes, t, self->levels);
  g_free (codes);
  gst_buffer_copy_into (out, in, GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  if (!GST_BUFFER_DURATION_IS_VALID (out))
    GST_BUFFER_DURATION (out) = gst_util_uint64_scale (t, GST_SECOND, 50);
  gst_buffer_unref (in);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("soundstorm",
              "frames", G_TYPE_UINT64, (guint64) t, "prompt-frames", G_TYPE_UINT64,
              (guint64) tp, "seconds", G_TYPE_DOUBLE, secs, NULL)));
  GST_DEBUG_OBJECT (self, "%" G_GSIZE_FORMAT " frames (+%" G_GSIZE_FORMAT " prompt) in %.2f s",
      t, tp, secs);
  return gst_pad_push (self->srcpad, out);
}

static GstPad *
gst_soundstorm_request_new_pad (GstElement * element, GstPadTemplate * templ,
    const gchar * name, const GstCaps * caps)
{
  GstSoundStorm *self = GST_SOUNDSTORM (element);
  g_mutex_lock (&self->lock);
  if (self->promptpad) {
    g_mutex_unlock (&self->lock);
    GST_WARNING_OBJECT (self, "there is only one prompt pad");
    return NULL;
  }
  GstPad *pad = gst_pad_new_from_template (templ, "prompt");
  gst_pad_set_chain_function (pad, GST_DEBUG_FUNCPTR (gst_soundstorm_prompt_chain));
  gst_pad_set_event_function (pad, GST_DEBUG_FUNCPTR (gst_soundstorm_prompt_event));
  gst_pad_set_query_function (pad, GST_DEBUG_FUNCPTR (gst_soundstorm_query));
  self->promptpad = pad;
  self->prompt_done = FALSE;
  g_mutex_unlock (&self->lock);
  gst_pad_set_active (pad, GST_STATE (element) >= GST_STATE_PAUSED);
  gst_element_add_pad (element, pad);
  return pad;
}

static void
gst_soundstorm_release_pad (GstElement * element, GstPad * pad)
{
  GstSoundStorm *self = GST_SOUNDSTORM (element);
  g_mutex_lock (&self->lock);
  if (pad == self->promptpad) {
    self->promptpad = NULL;
    g_clear_pointer (&self->pad_prompt, g_free);
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  gst_element_remove_pad (element, pad);
}

static GstStateChangeReturn
gst_soundstorm_change_state (GstElement * element, GstStateChange transition)
{
  GstSoundStorm *self = GST_SOUNDSTORM (element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!load_model (self)) {
        unload_model (self);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      gst_anygpt_latency_reset (&self->latency);
      self->have_caps = FALSE;
      set_flushing (self, FALSE);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      set_flushing (self, TRUE);        /* release a chain waiting for the prompt */
      break;
    default:
      break;
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_soundstorm_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    g_clear_pointer (&self->stream, ag_soundstorm_stream_free);
    g_mutex_lock (&self->lock);
    g_clear_pointer (&self->pad_prompt, g_free);
    self->pad_prompt_frames = 0;
    self->prompt_done = FALSE;
    g_mutex_unlock (&self->lock);
  } else if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    unload_model (self);
  }
  return ret;
}

static void
gst_soundstorm_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstSoundStorm *self = GST_SOUNDSTORM (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STEPS:
      self->steps = g_value_get_int (value);
      break;
    case PROP_SEED:
      self->seed = g_value_get_uint64 (value);
      break;
    case PROP_GREEDY:
      self->greedy = g_value_get_boolean (value);
      break;
    case PROP_VOICE_PROMPT:
      g_free (self->voice_prompt);
      self->voice_prompt = g_value_dup_string (value);
      break;
    case PROP_VOICE_TOKENIZER:
      g_free (self->voice_tokenizer);
      self->voice_tokenizer = g_value_dup_string (value);
      break;
    case PROP_CHUNK:
      self->chunk = g_value_get_uint (value);
      break;
    default:
      if (!gst_anygpt_shared_set_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_soundstorm_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstSoundStorm *self = GST_SOUNDSTORM (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STEPS:
      g_value_set_int (value, self->steps);
      break;
    case PROP_SEED:
      g_value_set_uint64 (value, self->seed);
      break;
    case PROP_GREEDY:
      g_value_set_boolean (value, self->greedy);
      break;
    case PROP_VOICE_PROMPT:
      g_value_set_string (value, self->voice_prompt);
      break;
    case PROP_VOICE_TOKENIZER:
      g_value_set_string (value, self->voice_tokenizer);
      break;
    case PROP_CHUNK:
      g_value_set_uint (value, self->chunk);
      break;
    default:
      if (!gst_anygpt_shared_get_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_soundstorm_finalize (GObject * object)
{
  GstSoundStorm *self = GST_SOUNDSTORM (object);
  g_free (self->voice_prompt);
  g_free (self->voice_tokenizer);
  g_free (self->pad_prompt);
  g_clear_pointer (&self->stream, ag_soundstorm_stream_free);
  unload_model (self);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (gst_soundstorm_parent_class)->finalize (object);
}

static void
gst_soundstorm_class_init (GstSoundStormClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  /* model, device and voice prompt are read on NULL->READY; steps, seed, greedy per item */
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_soundstorm_set_property;
  gobject_class->get_property = gst_soundstorm_get_property;
  gobject_class->finalize = gst_soundstorm_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_soundstorm_change_state);
  element_class->request_new_pad = GST_DEBUG_FUNCPTR (gst_soundstorm_request_new_pad);
  element_class->release_pad = GST_DEBUG_FUNCPTR (gst_soundstorm_release_pad);

  gst_anygpt_shared_class_init (element_class,
          "SoundStorm GGUF (anygpt-convert soundstorm), loaded on NULL->READY");
  g_object_class_install_property (gobject_class, PROP_STEPS,
      g_param_spec_int ("steps", "Steps",
          "Masked decoding passes of the second RVQ level (AnyGPT: 3); the other levels take "
          "one greedy pass each", 1, 64, DEFAULT_STEPS, flags));
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed",
          "Seed of the sampling noise; every item uses it afresh", 0, G_MAXUINT64,
          DEFAULT_SEED, flags));
  g_object_class_install_property (gobject_class, PROP_GREEDY,
      g_param_spec_boolean ("greedy", "Greedy",
          "AnyGPT's greedy decoding (argmax, except the intermediate level-2 passes); false "
          "also samples the last level-2 pass", DEFAULT_GREEDY, flags));
  g_object_class_install_property (gobject_class, PROP_VOICE_PROMPT,
      g_param_spec_string ("voice-prompt", "Voice prompt",
          "WAV file whose voice the speech takes (16 kHz, any length), encoded on "
          "NULL->READY with voice-prompt-tokenizer", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_VOICE_TOKENIZER,
      g_param_spec_string ("voice-prompt-tokenizer", "Voice prompt tokenizer",
          "SpeechTokenizer GGUF used to encode voice-prompt", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_CHUNK,
      g_param_spec_uint ("chunk", "Chunk",
          "Streamed speech: generate an item in chunks of this many frames (50 a second) as "
          "its tokens arrive, each conditioned on the previous one; an item may come in "
          "several buffers, MARKER on its last. 0 = whole items, one buffer each", 0,
          AG_SOUNDSTORM_MAX_FRAMES / 2, 0, flags));

  GstCaps *sink = gst_anygpt_tokens_caps_any ("speech");
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, sink));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("prompt", GST_PAD_SINK, GST_PAD_REQUEST, sink));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, sink));
  gst_caps_unref (sink);
  gst_element_class_set_static_metadata (element_class, "SoundStorm",
      "Codec/Decoder/Audio", "Semantic speech tokens to all SpeechTokenizer RVQ layers "
      "(AnyGPT's SoundStorm), optionally in the voice of a prompt", "gst-anygpt");
}

static void
gst_soundstorm_init (GstSoundStorm * self)
{
  gst_anygpt_shared_instance_init (GST_ELEMENT (self));
  self->steps = DEFAULT_STEPS;
  self->seed = DEFAULT_SEED;
  self->greedy = DEFAULT_GREEDY;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->sinkpad = gst_pad_new_from_template (gst_element_class_get_pad_template
      (GST_ELEMENT_GET_CLASS (self), "sink"), "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_soundstorm_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_soundstorm_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_soundstorm_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_template (gst_element_class_get_pad_template
      (GST_ELEMENT_GET_CLASS (self), "src"), "src");
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_soundstorm_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
