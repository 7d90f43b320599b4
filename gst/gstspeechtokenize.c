/**
 * SECTION:element-speechtokenize
 * @title: speechtokenize
 *
 * SpeechTokenizer encoder + residual VQ: 16 kHz mono F32 audio in, one buffer of speech tokens
 * per utterance out (application/x-anygpt-tokens, modality=speech, 50 frames/s, int32
 * frame-major [frames][layers]; layer 1 is the semantic layer AnyGPT's LLM reads).
 *
 * The encoder is bidirectional, so an utterance is encoded when it is complete:
 * - at EOS,
 * - at the custom downstream event "anygpt-end-utterance" (forwarded after the utterance),
 * - with segment=vad, when the energy VAD (core/audio/vad.c) sees silence-ms of silence after
 *   at least min-speech-ms of speech; silence between utterances is dropped,
 * - with segment=meta, the same on the voice-activity flag of the GstAudioLevelMeta that an
 *   upstream voice detector attaches (webrtcdsp voice-detection=true) instead of the energy VAD:
 *   speech starts after min-speech-ms flagged as voice and ends silence-ms after the last voiced
 *   buffer. webrtcdsp attaches the meta only where the state changes, so a flag holds until the
 *   next meta; audio before the first meta is not speech. A quiet room with noise, or the
 *   assistant's own voice after echo cancellation, then never becomes a turn,
 * - in both modes, after max-utterance-s (a forced cut; the rest continues as a new utterance).
 * Each output buffer has the PTS of the utterance's first sample, its duration, and MARKER set;
 * an element message "speechtokenize" (frames, start, duration, encode-time, as guint64 /
 * nanoseconds) is posted per utterance. Less than one frame (20 ms) of audio gives nothing.
 * A flush drops pending audio. The encode runs in the streaming thread.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=in.wav ! decodebin ! audioconvert ! audioresample !
 *   audio/x-raw,format=F32LE,rate=16000,channels=1 !
 *   speechtokenize model-path=speechtokenizer.gguf segment=vad ! fakesink
 * ]|
 */
#include "gstanygptaudioelements.h"
#include "gstanygptaudiotokenize.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "anygpt/vad.h"

#include <gst/audio/audio.h>

#define GST_CAT_DEFAULT anygpt_core_debug

typedef enum
{
  GST_SPEECHTOKENIZE_SEGMENT_NONE = 0,
  GST_SPEECHTOKENIZE_SEGMENT_VAD = 1,
  GST_SPEECHTOKENIZE_SEGMENT_META = 2,
} GstSpeechTokenizeSegment;

#define GST_TYPE_SPEECHTOKENIZE_SEGMENT (gst_speechtokenize_segment_get_type ())
static GType
gst_speechtokenize_segment_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_SPEECHTOKENIZE_SEGMENT_NONE, "Utterances end at EOS, anygpt-end-utterance or max-utterance-s",
        "none"},
    {GST_SPEECHTOKENIZE_SEGMENT_VAD, "Energy voice-activity detection cuts utterances", "vad"},
    {GST_SPEECHTOKENIZE_SEGMENT_META, "The voice-activity flag of upstream GstAudioLevelMeta "
          "(webrtcdsp voice-detection=true) cuts utterances", "meta"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstSpeechTokenizeSegment", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define GST_TYPE_SPEECHTOKENIZE (gst_speechtokenize_get_type ())
G_DECLARE_FINAL_TYPE (GstSpeechTokenize, gst_speechtokenize, GST, SPEECHTOKENIZE,
    GstAnygptAudioTokenize)

struct _GstSpeechTokenize
{
  GstAnygptAudioTokenize parent;
  /* properties (object lock) */
  gint layers;
  GstSpeechTokenizeSegment segment;
  gint silence_ms, min_speech_ms;
  gdouble max_utterance_s;
  /* streaming state, set up at READY->PAUSED from the properties */
  ag_vad *vad;
  gboolean in_speech;
  gsize max_samples;            /* 0: no forced cut */
  gsize keep_samples;           /* silence kept for a VAD start that lies in the past */
  /* segment=meta: the flag of the last GstAudioLevelMeta seen (set by the sink pad probe, in
   * the streaming thread just before the buffer's samples reach process) */
  gboolean meta_mode, meta_voice;
  guint64 run_start;            /* first sample of the voiced run; NO_RUN when none */
  guint64 voiced_end;           /* one past the last voiced sample */
  gsize meta_min_speech, meta_silence;  /* min-speech-ms, silence-ms in samples */
};

#define NO_RUN G_MAXUINT64

G_DEFINE_TYPE (GstSpeechTokenize, gst_speechtokenize, GST_TYPE_ANYGPT_AUDIO_TOKENIZE);
GST_ELEMENT_REGISTER_DEFINE (speechtokenize, "speechtokenize", GST_RANK_NONE,
    GST_TYPE_SPEECHTOKENIZE);

enum
{
  PROP_0,
  PROP_LAYERS,
  PROP_SEGMENT,
  PROP_SILENCE_MS,
  PROP_MIN_SPEECH_MS,
  PROP_MAX_UTTERANCE_S,
};

#define RATE 16000
#define DEFAULT_LAYERS 1
#define DEFAULT_SEGMENT GST_SPEECHTOKENIZE_SEGMENT_NONE
#define DEFAULT_SILENCE_MS 600
#define DEFAULT_MIN_SPEECH_MS 200
#define DEFAULT_MAX_UTTERANCE_S 30.0

static gint
gst_speechtokenize_get_codebooks (GstAnygptAudioTokenize * base)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (base);
  GST_OBJECT_LOCK (self);
  gint n = self->layers;
  GST_OBJECT_UNLOCK (self);
  return n;
}

static gboolean
gst_speechtokenize_start (GstAnygptAudioTokenize * base)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (base);
  GST_OBJECT_LOCK (self);
  gboolean vad = self->segment == GST_SPEECHTOKENIZE_SEGMENT_VAD;
  ag_vad_config cfg = ag_vad_config_default (RATE);
  cfg.silence_ms = self->silence_ms;
  cfg.min_speech_ms = self->min_speech_ms;
  self->max_samples = (gsize) (self->max_utterance_s * RATE);
  self->meta_mode = self->segment == GST_SPEECHTOKENIZE_SEGMENT_META;
  self->meta_min_speech = (gsize) self->min_speech_ms * RATE / 1000;
  self->meta_silence = (gsize) self->silence_ms * RATE / 1000;
  GST_OBJECT_UNLOCK (self);
  g_clear_pointer (&self->vad, ag_vad_free);
  self->in_speech = FALSE;
  self->meta_voice = FALSE;
  self->run_start = NO_RUN;
  self->voiced_end = 0;
  if (vad) {
    self->vad = ag_vad_new (&cfg);
    if (!self->vad) {
      GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, (NULL), ("%s", ag_last_error ()));
      return FALSE;
    }
    /* a START lies min-speech-ms (rounded up to frames) behind the newest sample */
    self->keep_samples = (gsize) (cfg.min_speech_ms + 2 * cfg.frame_ms) * RATE / 1000;
  }
  return TRUE;
}

static void
gst_speechtokenize_reset (GstAnygptAudioTokenize * base)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (base);
  if (self->vad)
    ag_vad_reset (self->vad);
  self->in_speech = FALSE;
  self->meta_voice = FALSE;
  self->run_start = NO_RUN;
  self->voiced_end = 0;
}

/* forced cuts while the pending utterance is longer than max-utterance-s */
static GstFlowReturn
cut_long (GstSpeechTokenize * self, guint64 upto)
{
  GstAnygptAudioTokenize *base = GST_ANYGPT_AUDIO_TOKENIZE (self);
  GstFlowReturn ret = GST_FLOW_OK;
  /* 0 (never) still stops at AG_CODEC_MAX_SECONDS: pending audio must not grow without bound */
  gsize max = self->max_samples ? self->max_samples : (gsize) AG_CODEC_MAX_SECONDS * RATE;
  while (ret == GST_FLOW_OK && upto - gst_anygpt_audio_tokenize_pending_start (base) > max)
    ret = gst_anygpt_audio_tokenize_emit (base, max);
  return ret;
}

/* segment=meta: samples [pos, pos + n) all have the voice flag of the last meta seen */
static GstFlowReturn
process_meta (GstSpeechTokenize * self, guint64 pos, gsize n)
{
  GstAnygptAudioTokenize *base = GST_ANYGPT_AUDIO_TOKENIZE (self);
  guint64 end = pos + n;
  GstFlowReturn ret = GST_FLOW_OK;
  if (self->meta_voice) {
    if (self->run_start == NO_RUN)
      self->run_start = pos;
    if (!self->in_speech && end - self->run_start >= self->meta_min_speech)
      self->in_speech = TRUE;
    self->voiced_end = end;
  } else if (self->in_speech) {
    if (end - self->voiced_end >= self->meta_silence) {
      /* the utterance ends after its last voiced sample */
      ret = cut_long (self, self->voiced_end);
      guint64 start = gst_anygpt_audio_tokenize_pending_start (base);
      if (ret == GST_FLOW_OK && self->voiced_end > start)
        ret = gst_anygpt_audio_tokenize_emit (base, (gsize) (self->voiced_end - start));
      self->in_speech = FALSE;
      self->run_start = NO_RUN;
    }
  } else {
    self->run_start = NO_RUN;   /* too short to be speech */
  }
  if (ret != GST_FLOW_OK)
    return ret;
  if (self->in_speech)
    return cut_long (self, end);
  /* outside speech keep only the voiced run that may become one */
  guint64 keep_from = self->run_start != NO_RUN ? self->run_start : end;
  guint64 start = gst_anygpt_audio_tokenize_pending_start (base);
  if (keep_from > start)
    gst_anygpt_audio_tokenize_drop (base, (gsize) MIN (keep_from - start,
            gst_anygpt_audio_tokenize_pending (base)));
  return GST_FLOW_OK;
}

/* segment=meta: note the voice flag before the buffer's samples are processed */
static GstPadProbeReturn
level_meta_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  GstSpeechTokenize *self = user_data;
  GstAudioLevelMeta *meta = gst_buffer_get_audio_level_meta (GST_PAD_PROBE_INFO_BUFFER (info));
  if (meta)
    self->meta_voice = meta->voice_activity;
  return GST_PAD_PROBE_OK;
}

static GstFlowReturn
gst_speechtokenize_process (GstAnygptAudioTokenize * base, guint64 pos, gsize n)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (base);
  if (self->meta_mode)
    return process_meta (self, pos, n);
  if (!self->vad)
    return cut_long (self, pos + n);

  guint64 start = gst_anygpt_audio_tokenize_pending_start (base);
  gsize room = ag_vad_max_events (self->vad, n);
  ag_vad_event *ev = g_new (ag_vad_event, room + 1);
  /* the new samples are the tail of the pending audio */
  int k = ag_vad_process (self->vad, gst_anygpt_audio_tokenize_pending_data (base) + (pos - start),
      n, ev, room + 1);
  GstFlowReturn ret = GST_FLOW_OK;
  for (int i = 0; i < k && ret == GST_FLOW_OK; i++) {
    start = gst_anygpt_audio_tokenize_pending_start (base);
    if (ev[i].kind == AG_VAD_START) {
      if ((guint64) ev[i].pos > start)
        gst_anygpt_audio_tokenize_drop (base, (gsize) ((guint64) ev[i].pos - start));
      self->in_speech = TRUE;
    } else {
      ret = cut_long (self, (guint64) ev[i].pos);
      start = gst_anygpt_audio_tokenize_pending_start (base);
      if (ret == GST_FLOW_OK && (guint64) ev[i].pos > start)
        ret = gst_anygpt_audio_tokenize_emit (base, (gsize) ((guint64) ev[i].pos - start));
      self->in_speech = FALSE;
    }
  }
  g_free (ev);
  if (ret != GST_FLOW_OK)
    return ret;
  if (self->in_speech)
    return cut_long (self, pos + n);
  /* silence: keep only what a coming START can reach back to */
  gsize pending = gst_anygpt_audio_tokenize_pending (base);
  if (pending > self->keep_samples)
    gst_anygpt_audio_tokenize_drop (base, pending - self->keep_samples);
  return GST_FLOW_OK;
}

/* with VAD, pending audio outside speech is only the silence kept for a coming start */
static GstFlowReturn
gst_speechtokenize_drain (GstAnygptAudioTokenize * base)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (base);
  gsize pending = gst_anygpt_audio_tokenize_pending (base);
  if ((self->vad || self->meta_mode) && !self->in_speech) {
    gst_anygpt_audio_tokenize_drop (base, pending);
    return GST_FLOW_OK;
  }
  /* in speech, what follows an early end continues as a new utterance */
  return gst_anygpt_audio_tokenize_emit (base, pending);
}

static void
gst_speechtokenize_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LAYERS:
      self->layers = g_value_get_int (value);
      break;
    case PROP_SEGMENT:
      self->segment = g_value_get_enum (value);
      break;
    case PROP_SILENCE_MS:
      self->silence_ms = g_value_get_int (value);
      break;
    case PROP_MIN_SPEECH_MS:
      self->min_speech_ms = g_value_get_int (value);
      break;
    case PROP_MAX_UTTERANCE_S:
      self->max_utterance_s = g_value_get_double (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_speechtokenize_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LAYERS:
      g_value_set_int (value, self->layers);
      break;
    case PROP_SEGMENT:
      g_value_set_enum (value, self->segment);
      break;
    case PROP_SILENCE_MS:
      g_value_set_int (value, self->silence_ms);
      break;
    case PROP_MIN_SPEECH_MS:
      g_value_set_int (value, self->min_speech_ms);
      break;
    case PROP_MAX_UTTERANCE_S:
      g_value_set_double (value, self->max_utterance_s);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* the base class makes the pads in its constructed */
static void
gst_speechtokenize_constructed (GObject * object)
{
  G_OBJECT_CLASS (gst_speechtokenize_parent_class)->constructed (object);
  GstPad *sink = gst_element_get_static_pad (GST_ELEMENT (object), "sink");
  gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER, level_meta_probe, object, NULL);
  gst_object_unref (sink);
}

static void
gst_speechtokenize_finalize (GObject * object)
{
  GstSpeechTokenize *self = GST_SPEECHTOKENIZE (object);
  g_clear_pointer (&self->vad, ag_vad_free);
  G_OBJECT_CLASS (gst_speechtokenize_parent_class)->finalize (object);
}

static void
gst_speechtokenize_class_init (GstSpeechTokenizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstAnygptAudioTokenizeClass *base_class = GST_ANYGPT_AUDIO_TOKENIZE_CLASS (klass);
  /* segmentation settings are read at READY->PAUSED */
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_speechtokenize_set_property;
  gobject_class->get_property = gst_speechtokenize_get_property;
  gobject_class->finalize = gst_speechtokenize_finalize;
  gobject_class->constructed = gst_speechtokenize_constructed;

  base_class->sample_rate = RATE;
  base_class->modality = GST_ANYGPT_MODALITY_SPEECH;
  base_class->model_kind = "SpeechTokenizer";
  base_class->get_codebooks = gst_speechtokenize_get_codebooks;
  base_class->process = gst_speechtokenize_process;
  base_class->drain = gst_speechtokenize_drain;
  base_class->start = gst_speechtokenize_start;
  base_class->reset = gst_speechtokenize_reset;

  g_object_class_install_property (gobject_class, PROP_LAYERS,
      g_param_spec_int ("layers", "Layers",
          "RVQ layers per frame (1: the semantic layer; up to the model's n_q, 8 for "
          "SpeechTokenizer)", 1, 64, DEFAULT_LAYERS, flags));
  g_object_class_install_property (gobject_class, PROP_SEGMENT,
      g_param_spec_enum ("segment", "Segment", "How utterances are cut",
          GST_TYPE_SPEECHTOKENIZE_SEGMENT, DEFAULT_SEGMENT, flags));
  g_object_class_install_property (gobject_class, PROP_SILENCE_MS,
      g_param_spec_int ("silence-ms", "Silence ms",
          "segment=vad or meta: silence that ends an utterance (milliseconds)", 10, 60000,
          DEFAULT_SILENCE_MS, flags));
  g_object_class_install_property (gobject_class, PROP_MIN_SPEECH_MS,
      g_param_spec_int ("min-speech-ms", "Minimum speech ms",
          "segment=vad or meta: voiced time that starts an utterance; shorter sounds are ignored "
          "(milliseconds)", 10, 60000, DEFAULT_MIN_SPEECH_MS, flags));
  g_object_class_install_property (gobject_class, PROP_MAX_UTTERANCE_S,
      g_param_spec_double ("max-utterance-s", "Maximum utterance s",
          "Force a cut after this many seconds of one utterance (0: only at 3600 s; bounds memory)",
          0.0, 3600.0, DEFAULT_MAX_UTTERANCE_S, flags));

  gst_anygpt_audio_tokenize_class_add_templates (element_class, RATE, "speech");
  gst_element_class_set_static_metadata (element_class, "SpeechTokenizer encoder",
      "Codec/Encoder/Audio", "Speech audio (16 kHz) to AnyGPT speech tokens, one buffer per "
      "utterance", "gst-anygpt");
  gst_type_mark_as_plugin_api (GST_TYPE_SPEECHTOKENIZE_SEGMENT, 0);
}

static void
gst_speechtokenize_init (GstSpeechTokenize * self)
{
  self->layers = DEFAULT_LAYERS;
  self->segment = DEFAULT_SEGMENT;
  self->silence_ms = DEFAULT_SILENCE_MS;
  self->min_speech_ms = DEFAULT_MIN_SPEECH_MS;
  self->max_utterance_s = DEFAULT_MAX_UTTERANCE_S;
  self->run_start = NO_RUN;
}
