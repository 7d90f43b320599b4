/**
 * SECTION:element-encodecdecode
 * @title: encodecdecode
 *
 * SEANet codec decoder: AnyGPT token buffers in, audio out. The model file chooses the mode:
 * a SpeechTokenizer GGUF (16 kHz) decodes speech tokens (modality=speech), an Encodec 32 kHz
 * GGUF decodes music tokens (modality=music). The sink caps follow the loaded model
 * (codebook-size = the model's, rate = sample rate / hop, codebooks 1..n_q); the source caps
 * are F32LE mono at the model's sample rate.
 *
 * Fewer codebooks than the model's n_q decode with the first N RVQ layers only (the missing
 * residual layers count as zero: coarser audio, e.g. semantic layer only).
 *
 * One token buffer in gives one audio buffer of frames * hop samples out, with the input's PTS
 * (or, when it has none, the end of the previous output, from 0) and the duration of those
 * samples. Codes outside the codebook, partial frames and items over an hour are stream
 * errors, not crashes. Decoding runs in the streaming thread.
 *
 * Streamed items (#GstEncodecDecode:stream-context N > 0, for soundstorm chunk=N output): the
 * buffers of an item up to the one with MARKER set (or EOS) are decoded as one signal: each
 * buffer is decoded with up to N frames before it and the last 4 frames held back until their
 * right-hand neighbours arrive (all at the item's end), and only the window's exact middle is
 * output, so chunks join without a seam (ag_seanet_stream). Output times run on from the
 * item's first PTS. 0 (default): every buffer is decoded alone, as above.
 *
 * In a live pipeline (upstream answered the latency query live) an item whose start time has
 * already passed when its audio is ready (it was stamped upstream before SoundStorm and the
 * decode ran, e.g. a spoken reply after a barge-in) is moved to the current running time, with
 * the rest of the item after it, so a syncing sink plays it whole instead of dropping its start
 * as late. An item starts at the first buffer, after MARKER, after DISCONT or where an input's
 * PTS does not continue the previous one. Not live: timestamps are never moved.
 *
 * Before each audio buffer is pushed an element message named `encodecdecode` is posted with
 * the fields frames (guint64, token frames decoded), samples (guint64), rate (gint, Hz),
 * decode-time (guint64, nanoseconds spent decoding) and, for streamed items, first (gboolean:
 * the item's first audio; absent: every buffer is a whole item), so applications can time the
 * stage
 * (tools/anygpt-run prints it per turn).
 *
 * Why a GstElement with explicit pads and not GstAudioDecoder: every input is one whole item
 * (an utterance, a clip) with its own timestamp and gaps between items are normal;
 * GstAudioDecoder's sample-counting timestamps and resync logic do not add anything here.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 ... ! speechtokenize model-path=st.gguf layers=8 !
 *   encodecdecode model-path=st.gguf ! audioconvert ! wavenc ! filesink location=out.wav
 * ]|
 */
#include "gstanygptaudioelements.h"
#include "gstanygptcodec.h"
#include "gstanygptlatency.h"
#include "gstanygptshared.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "anygpt/seanet.h"

#define GST_CAT_DEFAULT anygpt_core_debug

#define GST_TYPE_ENCODECDECODE (gst_encodecdecode_get_type ())
G_DECLARE_FINAL_TYPE (GstEncodecDecode, gst_encodecdecode, GST, ENCODECDECODE, GstElement)

struct _GstEncodecDecode
{
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  /* model (READY and up; model-path, device, backend: gstanygptshared.h) */
  guint stream_context;      /* object lock */
  ag_seanet *model;
  ag_seanet_info info;
  GstAnygptLatency latency;     /* longest decode so far */
  /* stream */
  GstAnygptTokensInfo tokens;
  gboolean have_caps;
  GstClockTime next_pts;
  guint64 next_offset;
  /* streamed items (stream-context > 0): the item in progress, NULL between items */
  ag_seanet_stream *stream;
  GstClockTime item_pts;
  guint64 item_samples;
  /* live pipelines (the last latency query said so): an item that would reach the sink after
   * its time (its PTS was set upstream before SoundStorm and the decode ran) is moved to now,
   * whole, instead of having its start clipped by a syncing sink */
  gint live;                    /* atomic */
  GstClockTime shift;           /* added to the PTS of the item in progress */
  GstClockTime in_expect;       /* whole items: the input PTS that would continue the last one */
};

/* frames held back for their right-hand context when streaming (the decoder's first conv
 * reaches 3 frames ahead; tests/soundstorm/test_soundstorm_stream measures the join) */
#define STREAM_RIGHT_CONTEXT 4

G_DEFINE_TYPE (GstEncodecDecode, gst_encodecdecode, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (encodecdecode, "encodecdecode", GST_RANK_NONE,
    GST_TYPE_ENCODECDECODE);

enum
{
  /* 1..4: model-path, device, device-index, threads (gstanygptshared.h) */
  PROP_FIRST_OWN = GST_ANYGPT_SHARED_N_PROPS - 1,
  PROP_STREAM_CONTEXT,
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("audio/x-raw, format=(string)F32LE, "
        "rate=(int)[1, MAX], channels=(int)1, layout=(string)interleaved"));

static GstAnygptModality
model_modality (GstEncodecDecode * self)
{
  /* SpeechTokenizer is the 16 kHz codec; Encodec 32 kHz carries music */
  return self->info.sample_rate == 16000 ? GST_ANYGPT_MODALITY_SPEECH :
      GST_ANYGPT_MODALITY_MUSIC;
}

/* what the loaded model accepts */
static GstCaps *
model_sink_caps (GstEncodecDecode * self)
{
  gint num, den;
  gst_anygpt_codec_frame_rate (&self->info, &num, &den);
  GstCaps *c = gst_caps_new_simple (GST_ANYGPT_TOKENS_MEDIA_TYPE,
      "modality", G_TYPE_STRING, gst_anygpt_modality_name (model_modality (self)),
      "codebook-size", G_TYPE_INT, self->info.codebook_size,
      "rate", GST_TYPE_FRACTION, num, den, NULL);
  if (self->info.n_q > 1)
    gst_caps_set_simple (c, "codebooks", GST_TYPE_INT_RANGE, 1, self->info.n_q, NULL);
  else
    gst_caps_set_simple (c, "codebooks", G_TYPE_INT, 1, NULL);
  return c;
}

static GstCaps *
model_src_caps (GstEncodecDecode * self)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "F32LE",
      "rate", G_TYPE_INT, self->info.sample_rate, "channels", G_TYPE_INT, 1,
      "layout", G_TYPE_STRING, "interleaved", NULL);
}

static gboolean
gst_encodecdecode_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (parent);
  if (gst_anygpt_shared_handle_query (GST_ELEMENT (self), query))
    return TRUE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY && pad == self->srcpad) {
    /* live: an item leaves after its decode (the longest seen so far) */
    gboolean ok = gst_anygpt_latency_query (&self->latency, self->sinkpad, query, 0, FALSE);
    gboolean live = FALSE;
    if (ok)
      gst_query_parse_latency (query, &live, NULL, NULL);
    g_atomic_int_set (&self->live, live);
    return ok;
  }
  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS && self->model) {
    GstCaps *caps = pad == self->sinkpad ? model_sink_caps (self) : model_src_caps (self);
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
set_caps (GstEncodecDecode * self, GstCaps * caps)
{
  GstAnygptTokensInfo ti;
  GstCaps *want = model_sink_caps (self);
  gboolean ok = gst_anygpt_tokens_info_from_caps (&ti, caps) && gst_caps_is_subset (caps, want)
      && ti.codebooks <= self->info.n_q;
  gst_caps_unref (want);
  if (!ok) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("the model (%d Hz, %d codebooks of %d) cannot decode %" GST_PTR_FORMAT,
            self->info.sample_rate, self->info.n_q, self->info.codebook_size, caps));
    return FALSE;
  }
  self->tokens = ti;
  g_clear_pointer (&self->stream, ag_seanet_stream_free);      /* new layers: a new item */
  GstCaps *out = model_src_caps (self);
  ok = gst_pad_push_event (self->srcpad, gst_event_new_caps (out));
  gst_caps_unref (out);
  self->have_caps = ok;
  return ok;
}

/* An item starts at input time pts: in a live pipeline, how far it must move so that its start
 * is not already past (0 when it is on time, or not live). */
static GstClockTime
item_shift (GstEncodecDecode * self, GstClockTime pts)
{
  if (!g_atomic_int_get (&self->live) || !GST_CLOCK_TIME_IS_VALID (pts))
    return 0;
  GstClockTime now = gst_element_get_current_running_time (GST_ELEMENT (self));
  if (!GST_CLOCK_TIME_IS_VALID (now) || now <= pts)
    return 0;
  GST_DEBUG_OBJECT (self, "item at %" GST_TIME_FORMAT " is %" GST_TIME_FORMAT " late: moved to "
      "now", GST_TIME_ARGS (pts), GST_TIME_ARGS (now - pts));
  return now - pts;
}

/* stream-context > 0: frames [n] are the next part of an item (end: its last); pushes what is
 * final now */
static GstFlowReturn
decode_streamed (GstEncodecDecode * self, const gint32 * ids, gsize frames, gboolean end,
    GstClockTime pts)
{
  if (!self->stream) {
    if (frames == 0)
      return GST_FLOW_OK;
    GST_OBJECT_LOCK (self);
    gint left = (gint) self->stream_context;
    GST_OBJECT_UNLOCK (self);
    self->stream = ag_seanet_stream_new (self->model, self->tokens.codebooks, left,
        STREAM_RIGHT_CONTEXT);
    if (!self->stream) {
      GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Cannot decode tokens"), ("%s",
              ag_last_error ()));
      return GST_FLOW_ERROR;
    }
    self->item_pts = GST_CLOCK_TIME_IS_VALID (pts) ? pts : self->next_pts;
    self->item_pts += item_shift (self, self->item_pts);
    self->item_samples = 0;
  }
  const gsize hop = (gsize) self->info.hop;
  GstBuffer *out = gst_buffer_new_allocate (NULL, (frames + STREAM_RIGHT_CONTEXT) * hop *
      sizeof (gfloat), NULL);
  GstMapInfo omap;
  gst_buffer_map (out, &omap, GST_MAP_WRITE);
  GstClockTime t0 = gst_util_get_timestamp ();
  int64_t n = ag_seanet_stream_decode (self->stream, ids, (int64_t) frames, end,
      (float *) omap.data);
  gst_buffer_unmap (out, &omap);
  if (end || n < 0)
    g_clear_pointer (&self->stream, ag_seanet_stream_free);
  if (n <= 0) {
    gst_buffer_unref (out);
    if (n == 0)
      return GST_FLOW_OK;
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Cannot decode tokens"), ("%s", ag_last_error ()));
    return GST_FLOW_ERROR;
  }
  gst_buffer_set_size (out, (gsize) n * sizeof (gfloat));
  gboolean first = self->item_samples == 0;
  const gint rate = self->info.sample_rate;
  GstClockTime start = self->item_pts + gst_util_uint64_scale (self->item_samples, GST_SECOND,
      rate);
  self->item_samples += (guint64) n;
  GstClockTime stop = self->item_pts + gst_util_uint64_scale (self->item_samples, GST_SECOND,
      rate);
  GST_BUFFER_PTS (out) = start;
  GST_BUFFER_DURATION (out) = stop - start;
  GST_BUFFER_OFFSET (out) = self->next_offset;
  GST_BUFFER_OFFSET_END (out) = self->next_offset + (guint64) n;
  if (end)
    GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_MARKER);
  self->next_pts = stop;
  self->next_offset += (guint64) n;
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("encodecdecode",
              "frames", G_TYPE_UINT64, (guint64) n / hop, "samples", G_TYPE_UINT64,
              (guint64) n, "rate", G_TYPE_INT, rate, "decode-time", G_TYPE_UINT64,
              (guint64) (gst_util_get_timestamp () - t0), "first", G_TYPE_BOOLEAN,
              first, NULL)));
  return gst_pad_push (self->srcpad, out);
}

static gboolean
gst_encodecdecode_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = set_caps (self, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_FLUSH_STOP:
      self->next_pts = 0;
      self->next_offset = 0;
      self->shift = 0;
      self->in_expect = GST_CLOCK_TIME_NONE;
      g_clear_pointer (&self->stream, ag_seanet_stream_free);
      break;
    case GST_EVENT_EOS:
      if (self->stream)         /* the item's end never came: it ends here */
        decode_streamed (self, NULL, 0, TRUE, GST_CLOCK_TIME_NONE);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static GstFlowReturn
gst_encodecdecode_chain (GstPad * pad, GstObject * parent, GstBuffer * in)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (parent);
  GstMapInfo imap, omap;
  const gint32 *ids;
  gsize frames;
  if (!self->have_caps) {
    gst_buffer_unref (in);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("token buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!gst_anygpt_tokens_map (in, &self->tokens, &imap, &ids, &frames)) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Malformed token buffer"),
        ("%" G_GSIZE_FORMAT " bytes is not a whole number of %d-codebook int32 frames",
            gst_buffer_get_size (in), self->tokens.codebooks));
    gst_buffer_unref (in);
    return GST_FLOW_ERROR;
  }
  GstClockTime pts = GST_BUFFER_PTS_IS_VALID (in) ? GST_BUFFER_PTS (in) : self->next_pts;
  GST_OBJECT_LOCK (self);
  gboolean streamed = self->stream_context > 0;
  GST_OBJECT_UNLOCK (self);
  if ((streamed || self->stream) && frames <= (gsize) AG_CODEC_MAX_SECONDS *
      self->info.sample_rate / self->info.hop) {
    GstFlowReturn r = decode_streamed (self, ids, frames,
        GST_BUFFER_FLAG_IS_SET (in, GST_BUFFER_FLAG_MARKER), GST_BUFFER_PTS (in));
    gst_buffer_unmap (in, &imap);
    gst_buffer_unref (in);
    return r;
  }
  if (frames == 0) {
    gst_buffer_unmap (in, &imap);
    gst_buffer_unref (in);
    return GST_FLOW_OK;
  }
  /* a hostile size must not turn into a huge allocation: one item is at most an hour */
  if (frames > (gsize) AG_CODEC_MAX_SECONDS * self->info.sample_rate / self->info.hop) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Token buffer too long"),
        ("%" G_GSIZE_FORMAT " frames is more than %d s of audio", frames, AG_CODEC_MAX_SECONDS));
    gst_buffer_unmap (in, &imap);
    gst_buffer_unref (in);
    return GST_FLOW_ERROR;
  }
  gsize samples = frames * (gsize) self->info.hop;
  GstBuffer *out = gst_buffer_new_allocate (NULL, samples * sizeof (gfloat), NULL);
  gst_buffer_map (out, &omap, GST_MAP_WRITE);
  GstClockTime t0 = gst_util_get_timestamp ();
  int rc = ag_seanet_decode (self->model, ids, (int64_t) frames, self->tokens.codebooks,
      (float *) omap.data);
  GstClockTime took = gst_util_get_timestamp () - t0;
  gst_anygpt_latency_observe (&self->latency, took);
  gst_buffer_unmap (out, &omap);
  gst_buffer_unmap (in, &imap);
  gboolean marker = GST_BUFFER_FLAG_IS_SET (in, GST_BUFFER_FLAG_MARKER);
  gboolean discont = GST_BUFFER_FLAG_IS_SET (in, GST_BUFFER_FLAG_DISCONT);
  gst_buffer_unref (in);
  if (rc != 0) {
    gst_buffer_unref (out);
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Cannot decode tokens"), ("%s", ag_last_error ()));
    return GST_FLOW_ERROR;
  }
  GstClockTime dur = gst_util_uint64_scale (samples, GST_SECOND, self->info.sample_rate);
  /* a whole item starts where the input does not continue the last one */
  if (pts != self->in_expect || discont)
    self->shift = item_shift (self, pts);
  self->in_expect = marker ? GST_CLOCK_TIME_NONE : pts + dur;
  pts += self->shift;
  GST_BUFFER_PTS (out) = pts;
  GST_BUFFER_DURATION (out) = dur;
  GST_BUFFER_OFFSET (out) = self->next_offset;
  GST_BUFFER_OFFSET_END (out) = self->next_offset + samples;
  if (marker)
    GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_MARKER);
  self->next_pts = pts + dur;
  self->next_offset += samples;
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("encodecdecode",
              "frames", G_TYPE_UINT64, (guint64) frames, "samples", G_TYPE_UINT64,
              (guint64) samples, "rate", G_TYPE_INT, (gint) self->info.sample_rate,
              "decode-time", G_TYPE_UINT64, (guint64) took,
              NULL)));
  return gst_pad_push (self->srcpad, out);
}

static GstStateChangeReturn
gst_encodecdecode_change_state (GstElement * element, GstStateChange transition)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    self->model = gst_anygpt_codec_load (element, "SpeechTokenizer or Encodec", 0);
    if (!self->model)
      return GST_STATE_CHANGE_FAILURE;
    self->info = *ag_seanet_info_of (self->model);
  } else if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    g_clear_pointer (&self->stream, ag_seanet_stream_free);
    gst_anygpt_latency_reset (&self->latency);
    self->have_caps = FALSE;
    self->next_pts = 0;
    self->next_offset = 0;
    self->shift = 0;
    self->in_expect = GST_CLOCK_TIME_NONE;
    g_atomic_int_set (&self->live, FALSE);
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_encodecdecode_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    g_clear_pointer (&self->stream, ag_seanet_stream_free);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    g_clear_pointer (&self->model, ag_seanet_free);
    gst_anygpt_shared_close (element);
  }
  return ret;
}

static void
gst_encodecdecode_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STREAM_CONTEXT:
      self->stream_context = g_value_get_uint (value);
      break;
    default:
      if (!gst_anygpt_shared_set_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_encodecdecode_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STREAM_CONTEXT:
      g_value_set_uint (value, self->stream_context);
      break;
    default:
      if (!gst_anygpt_shared_get_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_encodecdecode_finalize (GObject * object)
{
  GstEncodecDecode *self = GST_ENCODECDECODE (object);
  g_clear_pointer (&self->stream, ag_seanet_stream_free);
  g_clear_pointer (&self->model, ag_seanet_free);
  G_OBJECT_CLASS (gst_encodecdecode_parent_class)->finalize (object);
}

static void
gst_encodecdecode_class_init (GstEncodecDecodeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_encodecdecode_set_property;
  gobject_class->get_property = gst_encodecdecode_get_property;
  gobject_class->finalize = gst_encodecdecode_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_encodecdecode_change_state);

  gst_anygpt_shared_class_init (element_class,
          "GGUF of a SpeechTokenizer (speech) or Encodec 32 kHz (music) model, loaded on "
          "NULL->READY");
  g_object_class_install_property (gobject_class, PROP_STREAM_CONTEXT,
      g_param_spec_uint ("stream-context", "Stream context",
          "Streamed items (soundstorm chunk > 0): decode the buffers of an item, up to the one "
          "with MARKER, as one signal, each with this many frames of context before it (16 "
          "is plenty) and 4 held back until the next arrives; 0 = every buffer decoded alone",
          0, 4096, 0, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  GstCaps *sink = gst_caps_new_empty ();
  gst_caps_append (sink, gst_anygpt_tokens_caps_any ("speech"));
  gst_caps_append (sink, gst_anygpt_tokens_caps_any ("music"));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, sink));
  gst_caps_unref (sink);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "SEANet codec decoder",
      "Codec/Decoder/Audio", "AnyGPT speech tokens (SpeechTokenizer) or music tokens (Encodec "
      "32 kHz) to audio, chosen by the model file", "gst-anygpt");
}

static void
gst_encodecdecode_init (GstEncodecDecode * self)
{
  gst_anygpt_shared_instance_init (GST_ELEMENT (self));
  self->in_expect = GST_CLOCK_TIME_NONE;
  self->sinkpad = gst_pad_new_from_template (gst_element_class_get_pad_template
      (GST_ELEMENT_GET_CLASS (self), "sink"), "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_encodecdecode_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_encodecdecode_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_encodecdecode_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_encodecdecode_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
