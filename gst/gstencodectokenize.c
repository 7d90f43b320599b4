/**
 * SECTION:element-encodectokenize
 * @title: encodectokenize
 *
 * Encodec 32 kHz encoder + residual VQ: 32 kHz mono F32 audio in, music tokens out
 * (application/x-anygpt-tokens, modality=music, codebooks = the model's n_q (4),
 * codebook-size 2048, 50 frames/s, int32 frame-major [frames][codebooks]).
 *
 * Like AnyGPT's music path, only the first clip-length seconds of the stream are tokenized (from
 * the start, not a random crop): one buffer is pushed when the clip is full (the rest of the
 * stream is then dropped until a flush) or at EOS / the "anygpt-end-utterance" event if it comes
 * first. PTS = first sample of the clip, duration = its length, MARKER set; an element message
 * "encodectokenize" (frames, start, duration, encode-time) is posted. clip-length=0 keeps
 * everything until EOS (memory grows with the stream).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=song.ogg ! decodebin ! audioconvert ! audioresample !
 *   audio/x-raw,format=F32LE,rate=32000,channels=1 !
 *   encodectokenize model-path=encodec_32khz.gguf ! fakesink
 * ]|
 */
#include "gstanygptaudioelements.h"
#include "gstanygptaudiotokenize.h"

#define GST_CAT_DEFAULT anygpt_core_debug

#define GST_TYPE_ENCODECTOKENIZE (gst_encodectokenize_get_type ())
G_DECLARE_FINAL_TYPE (GstEncodecTokenize, gst_encodectokenize, GST, ENCODECTOKENIZE,
    GstAnygptAudioTokenize)

struct _GstEncodecTokenize
{
  GstAnygptAudioTokenize parent;
  gdouble clip_length;          /* property (object lock) */
  guint64 limit;                /* samples of the clip; 0: unlimited (set at start) */
  gboolean done;                /* clip pushed: drop the rest */
};

G_DEFINE_TYPE (GstEncodecTokenize, gst_encodectokenize, GST_TYPE_ANYGPT_AUDIO_TOKENIZE);
GST_ELEMENT_REGISTER_DEFINE (encodectokenize, "encodectokenize", GST_RANK_NONE,
    GST_TYPE_ENCODECTOKENIZE);

enum
{
  PROP_0,
  PROP_CLIP_LENGTH,
};

#define RATE 32000
#define DEFAULT_CLIP_LENGTH 20.0

static gint
gst_encodectokenize_get_codebooks (GstAnygptAudioTokenize * base)
{
  return gst_anygpt_audio_tokenize_info (base)->n_q;
}

static gboolean
gst_encodectokenize_start (GstAnygptAudioTokenize * base)
{
  GstEncodecTokenize *self = GST_ENCODECTOKENIZE (base);
  GST_OBJECT_LOCK (self);
  self->limit = (guint64) (self->clip_length * RATE);
  GST_OBJECT_UNLOCK (self);
  self->done = FALSE;
  return TRUE;
}

static void
gst_encodectokenize_reset (GstAnygptAudioTokenize * base)
{
  GST_ENCODECTOKENIZE (base)->done = FALSE;
}

static GstFlowReturn
gst_encodectokenize_process (GstAnygptAudioTokenize * base, guint64 pos, gsize n)
{
  GstEncodecTokenize *self = GST_ENCODECTOKENIZE (base);
  gsize pending = gst_anygpt_audio_tokenize_pending (base);
  if (self->done) {
    gst_anygpt_audio_tokenize_drop (base, pending);
    return GST_FLOW_OK;
  }
  if (!self->limit || pos + n < self->limit)
    return GST_FLOW_OK;
  /* the clip is full: push its part of the pending audio, drop the rest */
  guint64 start = gst_anygpt_audio_tokenize_pending_start (base);
  self->done = TRUE;
  GstFlowReturn ret = gst_anygpt_audio_tokenize_emit (base, (gsize) (self->limit - start));
  gst_anygpt_audio_tokenize_drop (base, gst_anygpt_audio_tokenize_pending (base));
  return ret;
}

static void
gst_encodectokenize_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstEncodecTokenize *self = GST_ENCODECTOKENIZE (object);
  switch (prop_id) {
    case PROP_CLIP_LENGTH:
      GST_OBJECT_LOCK (self);
      self->clip_length = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_encodectokenize_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstEncodecTokenize *self = GST_ENCODECTOKENIZE (object);
  switch (prop_id) {
    case PROP_CLIP_LENGTH:
      GST_OBJECT_LOCK (self);
      g_value_set_double (value, self->clip_length);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_encodectokenize_class_init (GstEncodecTokenizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstAnygptAudioTokenizeClass *base_class = GST_ANYGPT_AUDIO_TOKENIZE_CLASS (klass);

  gobject_class->set_property = gst_encodectokenize_set_property;
  gobject_class->get_property = gst_encodectokenize_get_property;

  base_class->sample_rate = RATE;
  base_class->modality = GST_ANYGPT_MODALITY_MUSIC;
  base_class->model_kind = "Encodec 32 kHz";
  base_class->get_codebooks = gst_encodectokenize_get_codebooks;
  base_class->process = gst_encodectokenize_process;
  base_class->start = gst_encodectokenize_start;
  base_class->reset = gst_encodectokenize_reset;

  g_object_class_install_property (gobject_class, PROP_CLIP_LENGTH,
      g_param_spec_double ("clip-length", "Clip length",
          "Seconds tokenized from the start of the stream (0: all, until EOS)", 0.0, 3600.0,
          DEFAULT_CLIP_LENGTH,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  gst_anygpt_audio_tokenize_class_add_templates (element_class, RATE, "music");
  gst_element_class_set_static_metadata (element_class, "Encodec 32 kHz encoder",
      "Codec/Encoder/Audio", "Music audio (32 kHz) to AnyGPT music tokens, one buffer per clip",
      "gst-anygpt");
}

static void
gst_encodectokenize_init (GstEncodecTokenize * self)
{
  self->clip_length = DEFAULT_CLIP_LENGTH;
}
