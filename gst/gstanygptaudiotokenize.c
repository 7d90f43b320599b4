/* Base of the utterance-level audio tokenizers: see gstanygptaudiotokenize.h for why this is a
 * GstElement with explicit pads. Timestamps: every input buffer with a PTS anchors absolute
 * sample index -> time; without any PTS, time runs from 0 at the sample count. */
#include "gstanygptaudiotokenize.h"

#include "anygpt/error.h"
#include "gstanygptcodec.h"
#include "gstanygptlatency.h"
#include "gstanygptshared.h"

#define GST_CAT_DEFAULT anygpt_core_debug

typedef struct
{
  GstPad *sinkpad, *srcpad;
  /* model (READY and up; model-path, device, backend: gstanygptshared.h) */
  ag_seanet *model;
  ag_seanet_info info;
  GstAnygptLatency latency;     /* longest encode so far */
  gint codebooks;
  /* stream (streaming thread) */
  gboolean have_caps;
  gfloat *pending;
  gsize n_pending, cap_pending;
  guint64 pending_start;        /* absolute index of pending[0] */
  guint64 n_total;              /* samples received since the stream start */
  GstClockTime anchor_pts;
  guint64 anchor_pos;
} GstAnygptAudioTokenizePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (GstAnygptAudioTokenize, gst_anygpt_audio_tokenize,
    GST_TYPE_ELEMENT);

static void gst_anygpt_audio_tokenize_constructed (GObject * object);

#define PRIV(self) ((GstAnygptAudioTokenizePrivate *) \
    gst_anygpt_audio_tokenize_get_instance_private (self))
#define KLASS(self) GST_ANYGPT_AUDIO_TOKENIZE_GET_CLASS (self)

void
gst_anygpt_audio_tokenize_class_add_templates (GstElementClass * klass, gint rate,
    const gchar * modality)
{
  GstCaps *sink = gst_caps_new_simple ("audio/x-raw",
      "format", G_TYPE_STRING, "F32LE", "rate", G_TYPE_INT, rate,
      "channels", G_TYPE_INT, 1, "layout", G_TYPE_STRING, "interleaved", NULL);
  GstCaps *src = gst_anygpt_tokens_caps_any (modality);
  gst_element_class_add_pad_template (klass,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, sink));
  gst_element_class_add_pad_template (klass,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, src));
  gst_caps_unref (sink);
  gst_caps_unref (src);
}

const ag_seanet_info *
gst_anygpt_audio_tokenize_info (GstAnygptAudioTokenize * self)
{
  return &PRIV (self)->info;
}

guint64
gst_anygpt_audio_tokenize_pending_start (GstAnygptAudioTokenize * self)
{
  return PRIV (self)->pending_start;
}

gsize
gst_anygpt_audio_tokenize_pending (GstAnygptAudioTokenize * self)
{
  return PRIV (self)->n_pending;
}

const gfloat *
gst_anygpt_audio_tokenize_pending_data (GstAnygptAudioTokenize * self)
{
  return PRIV (self)->pending;
}

void
gst_anygpt_audio_tokenize_drop (GstAnygptAudioTokenize * self, gsize n)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  n = MIN (n, p->n_pending);
  if (n < p->n_pending)
    memmove (p->pending, p->pending + n, (p->n_pending - n) * sizeof (gfloat));
  p->n_pending -= n;
  p->pending_start += n;
}

static GstClockTime
time_of (GstAnygptAudioTokenize * self, guint64 pos)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  gint rate = KLASS (self)->sample_rate;
  if (pos >= p->anchor_pos)
    return p->anchor_pts + gst_util_uint64_scale (pos - p->anchor_pos, GST_SECOND, rate);
  GstClockTime back = gst_util_uint64_scale (p->anchor_pos - pos, GST_SECOND, rate);
  return p->anchor_pts > back ? p->anchor_pts - back : 0;
}

/* element messages are named after the element (its factory) */
static const gchar *
message_name (GstAnygptAudioTokenize * self)
{
  GstElementFactory *f = gst_element_get_factory (GST_ELEMENT (self));
  return f ? GST_OBJECT_NAME (f) : G_OBJECT_TYPE_NAME (self);
}

GstFlowReturn
gst_anygpt_audio_tokenize_emit (GstAnygptAudioTokenize * self, gsize n)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  gint rate = KLASS (self)->sample_rate;
  n = MIN (n, p->n_pending);
  if (n < (gsize) p->info.hop) {
    gst_anygpt_audio_tokenize_drop (self, n);
    return GST_FLOW_OK;
  }
  gint64 frames = ag_seanet_n_frames (p->model, (gint64) n);
  gint cb = p->codebooks;
  GstBuffer *buf = gst_buffer_new_allocate (NULL, (gsize) frames * cb * 4, NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  gint64 t0 = g_get_monotonic_time ();
  int rc = ag_seanet_encode (p->model, p->pending, (int64_t) n, cb, (int32_t *) map.data);
  GstClockTime took = (GstClockTime) (g_get_monotonic_time () - t0) * GST_USECOND;
  gst_buffer_unmap (buf, &map);
  gst_anygpt_latency_observe (&p->latency, took);
  if (rc != 0) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, STREAM, ENCODE, ("%s encoding failed", KLASS (self)->model_kind),
        ("%lld samples: %s", (long long) n, ag_last_error ()));
    return GST_FLOW_ERROR;
  }
  GstClockTime start = time_of (self, p->pending_start);
  GstClockTime dur = gst_util_uint64_scale (n, GST_SECOND, rate);
  GST_BUFFER_PTS (buf) = start;
  GST_BUFFER_DURATION (buf) = dur;
  GST_BUFFER_OFFSET (buf) = p->pending_start;
  GST_BUFFER_OFFSET_END (buf) = p->pending_start + n;
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_MARKER);
  gst_anygpt_audio_tokenize_drop (self, n);
  GST_DEBUG_OBJECT (self, "utterance %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT ", %lld frames",
      GST_TIME_ARGS (start), GST_TIME_ARGS (dur), (long long) frames);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          gst_structure_new (message_name (self),
              "frames", G_TYPE_UINT64, (guint64) frames, "start", G_TYPE_UINT64, start,
              "duration", G_TYPE_UINT64, dur, "encode-time", G_TYPE_UINT64, took, NULL)));
  return gst_pad_push (p->srcpad, buf);
}

static GstFlowReturn
flush_all (GstAnygptAudioTokenize * self)
{
  if (KLASS (self)->drain)
    return KLASS (self)->drain (self);
  return gst_anygpt_audio_tokenize_emit (self, PRIV (self)->n_pending);
}

static void
reset_stream (GstAnygptAudioTokenize * self)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  p->n_pending = 0;
  p->pending_start = p->n_total = 0;
  p->anchor_pts = 0;
  p->anchor_pos = 0;
  if (KLASS (self)->reset)
    KLASS (self)->reset (self);
}

static GstFlowReturn
gst_anygpt_audio_tokenize_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstAnygptAudioTokenize *self = GST_ANYGPT_AUDIO_TOKENIZE (parent);
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  GstMapInfo map;
  if (!p->have_caps) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("audio buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, RESOURCE, READ, (NULL), ("cannot map input buffer"));
    return GST_FLOW_ERROR;
  }
  gsize n = map.size / sizeof (gfloat);
  if (map.size % sizeof (gfloat)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Malformed audio buffer"),
        ("%" G_GSIZE_FORMAT " bytes is not a whole number of F32 samples", map.size));
    gst_buffer_unmap (buf, &map);
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  if (GST_BUFFER_PTS_IS_VALID (buf)) {
    p->anchor_pts = GST_BUFFER_PTS (buf);
    p->anchor_pos = p->n_total;
  }
  if (p->n_pending == 0)
    p->pending_start = p->n_total;
  if (p->n_pending + n > p->cap_pending) {
    p->cap_pending = MAX (p->n_pending + n, p->cap_pending * 2);
    p->pending = g_realloc_n (p->pending, p->cap_pending, sizeof (gfloat));
  }
  if (n)                        /* copied: the memory may be unaligned */
    memcpy (p->pending + p->n_pending, map.data, n * sizeof (gfloat));
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  guint64 pos = p->n_total;
  p->n_pending += n;
  p->n_total += n;
  if (n == 0 || !KLASS (self)->process)
    return GST_FLOW_OK;
  return KLASS (self)->process (self, pos, n);
}

/* the token caps this model and codebooks setting produce; rate = sample_rate / hop, reduced */
static GstCaps *
out_caps (GstAnygptAudioTokenize * self)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  gint num, den;
  gst_anygpt_codec_frame_rate (&p->info, &num, &den);
  GstAnygptTokensInfo ti = { KLASS (self)->modality, p->codebooks, p->info.codebook_size,
    num, den
  };
  return gst_anygpt_tokens_caps_new (&ti);
}

static gboolean
set_caps (GstAnygptAudioTokenize * self, GstCaps * caps)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  /* the pad's accept-caps already checked the template; this guards direct event calls */
  GstCaps *tmpl = gst_pad_get_pad_template_caps (p->sinkpad);
  gboolean ok = gst_caps_is_subset (caps, tmpl);
  gst_caps_unref (tmpl);
  if (!ok) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("need F32LE mono audio at %d Hz, got %" GST_PTR_FORMAT, KLASS (self)->sample_rate, caps));
    return FALSE;
  }
  GstCaps *out = out_caps (self);
  ok = gst_pad_push_event (p->srcpad, gst_event_new_caps (out));
  gst_caps_unref (out);
  p->have_caps = ok;
  return ok;
}

static gboolean
gst_anygpt_audio_tokenize_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstAnygptAudioTokenize *self = GST_ANYGPT_AUDIO_TOKENIZE (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = set_caps (self, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_FLUSH_STOP:
      reset_stream (self);
      break;
    case GST_EVENT_EOS:
      /* the flow result is lost here; errors were posted by emit */
      flush_all (self);
      break;
    case GST_EVENT_CUSTOM_DOWNSTREAM:
      if (gst_event_has_name (event, GST_ANYGPT_END_UTTERANCE_EVENT))
        flush_all (self);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_anygpt_audio_tokenize_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstAnygptAudioTokenize *self = GST_ANYGPT_AUDIO_TOKENIZE (parent);
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  if (gst_anygpt_shared_handle_query (GST_ELEMENT (self), query))
    return TRUE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    /* live: an utterance leaves its encode time after its end (the longest so far); it is
     * held whole, so no bound on the maximum. Not the VAD's hangover: see the README (one
     * compute core per process, latency) */
    return gst_anygpt_latency_query (&p->latency, p->sinkpad, query, 0, TRUE);
  }
  /* once the model is loaded the output caps are known exactly */
  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS && p->model) {
    GstCaps *cur = out_caps (self), *filter, *res;
    gst_query_parse_caps (query, &filter);
    res = filter ? gst_caps_intersect_full (filter, cur, GST_CAPS_INTERSECT_FIRST) :
        gst_caps_ref (cur);
    gst_query_set_caps_result (query, res);
    gst_caps_unref (res);
    gst_caps_unref (cur);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
load_model (GstAnygptAudioTokenize * self)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  GstAnygptAudioTokenizeClass *k = KLASS (self);
  p->model = gst_anygpt_codec_load (GST_ELEMENT (self), k->model_kind, k->sample_rate);
  if (!p->model)
    return FALSE;
  p->info = *ag_seanet_info_of (p->model);
  /* for caps queries in READY; checked (and refused if out of range) at READY->PAUSED */
  p->codebooks = CLAMP (k->get_codebooks (self), 1, p->info.n_q);
  return TRUE;
}

static GstStateChangeReturn
gst_anygpt_audio_tokenize_change_state (GstElement * element, GstStateChange transition)
{
  GstAnygptAudioTokenize *self = GST_ANYGPT_AUDIO_TOKENIZE (element);
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  GstStateChangeReturn ret;
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!load_model (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      p->codebooks = KLASS (self)->get_codebooks (self);
      if (p->codebooks < 1 || p->codebooks > p->info.n_q) {
        GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, (NULL),
            ("%d codebooks requested, the model has %d", p->codebooks, p->info.n_q));
        return GST_STATE_CHANGE_FAILURE;
      }
      p->have_caps = FALSE;
      reset_stream (self);
      gst_anygpt_latency_reset (&p->latency);
      if (KLASS (self)->start && !KLASS (self)->start (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    default:
      break;
  }
  ret = GST_ELEMENT_CLASS (gst_anygpt_audio_tokenize_parent_class)->change_state (element,
      transition);
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      reset_stream (self);
      g_clear_pointer (&p->pending, g_free);
      p->cap_pending = 0;
      p->have_caps = FALSE;
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      g_clear_pointer (&p->model, ag_seanet_free);
      gst_anygpt_shared_close (element);
      break;
    default:
      break;
  }
  return ret;
}

static void
gst_anygpt_audio_tokenize_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  if (!gst_anygpt_shared_set_property (object, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_anygpt_audio_tokenize_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  if (!gst_anygpt_shared_get_property (object, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_anygpt_audio_tokenize_finalize (GObject * object)
{
  GstAnygptAudioTokenizePrivate *p = PRIV (GST_ANYGPT_AUDIO_TOKENIZE (object));
  g_free (p->pending);
  if (p->model)
    ag_seanet_free (p->model);
  G_OBJECT_CLASS (gst_anygpt_audio_tokenize_parent_class)->finalize (object);
}

static void
gst_anygpt_audio_tokenize_class_init (GstAnygptAudioTokenizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_anygpt_audio_tokenize_set_property;
  gobject_class->get_property = gst_anygpt_audio_tokenize_get_property;
  gobject_class->finalize = gst_anygpt_audio_tokenize_finalize;
  gobject_class->constructed = gst_anygpt_audio_tokenize_constructed;
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_anygpt_audio_tokenize_change_state);

  gst_anygpt_shared_class_init (element_class,
      "GGUF codec model (from anygpt-convert), loaded on NULL->READY");
  gst_type_mark_as_plugin_api (GST_TYPE_ANYGPT_AUDIO_TOKENIZE, 0);
}

/* Pads come from the subclass's templates: the final class is only in place once the
 * instance is constructed (instance_init runs with each ancestor's class). */
static void
gst_anygpt_audio_tokenize_constructed (GObject * object)
{
  GstAnygptAudioTokenize *self = GST_ANYGPT_AUDIO_TOKENIZE (object);
  GstAnygptAudioTokenizePrivate *p = PRIV (self);
  GstElementClass *k = GST_ELEMENT_GET_CLASS (self);
  G_OBJECT_CLASS (gst_anygpt_audio_tokenize_parent_class)->constructed (object);
  p->sinkpad = gst_pad_new_from_template (gst_element_class_get_pad_template (k, "sink"), "sink");
  gst_pad_set_chain_function (p->sinkpad, GST_DEBUG_FUNCPTR (gst_anygpt_audio_tokenize_chain));
  gst_pad_set_event_function (p->sinkpad,
      GST_DEBUG_FUNCPTR (gst_anygpt_audio_tokenize_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), p->sinkpad);
  p->srcpad = gst_pad_new_from_template (gst_element_class_get_pad_template (k, "src"), "src");
  gst_pad_set_query_function (p->srcpad, GST_DEBUG_FUNCPTR (gst_anygpt_audio_tokenize_src_query));
  gst_element_add_pad (GST_ELEMENT (self), p->srcpad);
}

static void
gst_anygpt_audio_tokenize_init (GstAnygptAudioTokenize * self)
{
  gst_anygpt_shared_instance_init (GST_ELEMENT (self));
}
