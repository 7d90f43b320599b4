/**
 * SECTION:element-seedtokenize
 * @title: seedtokenize
 *
 * The SEED image tokenizer (AnyGPT's image tokenizer): each tokenized video frame becomes one
 * image item of 32 codes for anygptllm. The frame is resized to 224x224 with PIL's bicubic
 * filter, as the reference does (exactly: same bytes), so any frame size works; packed RGB
 * layouts are read as they are (alpha is ignored, as PIL's convert("RGB") does); other formats
 * go through videoconvert.
 *
 * Output: `application/x-anygpt-tokens, modality=image, codebooks=1, codebook-size=8192,
 * rate=0/1`, one buffer of 32 int32 codes per tokenized frame, PTS = the frame's PTS (in the
 * frame's segment, which is forwarded), no duration (a caption of it lasts until the next
 * item, see anygptllm), GST_BUFFER_FLAG_MARKER set.
 *
 * Which frames (#GstSeedTokenize:interval, milliseconds; 0: every frame): the frame times are
 * running times. The first timed frame after the start, a flush or a new stream is tokenized
 * and sets the grid origin T0; after that the frame tokenized is the first whose time is at or
 * after the next grid point T0 + k * interval not yet passed. A 30 fps file from 0 with
 * interval=2000 gives the frames at exactly 0, 2, 4, 6 ... s; a frame that skips a grid point
 * (a gap in the stream) moves to the grid point after it. Frames without a PTS are all
 * tokenized.
 *
 * Encoding runs on the element's own streaming task (the src pad's); the chain function only
 * hands the frame over:
 * - non-live input (a file; upstream's latency query says not live): the chain function waits
 *   until the task has taken the previous frame, so nothing is dropped and the output does not
 *   depend on timing (one frame waits while one is encoded);
 * - live input (a camera): the chain function never waits. While a frame is encoded, the
 *   newest selected frame waits, and a newer one replaces it: the replaced frame is dropped,
 *   counted, and reported in a QoS message (format buffers: processed = frames tokenized,
 *   dropped = frames dropped since the start) and in the next element message's `dropped`.
 *
 * Per tokenized frame an element message named `seedtokenize` is posted before its codes are
 * pushed: pts (guint64 ns, the frame's PTS, GST_CLOCK_TIME_NONE when untimed), running-time
 * (guint64 ns), encode-ms (double: resize + encode), wait-ms (double: from the frame's arrival
 * at the element to the start of its encode), latency-ms (double: arrival -> codes ready),
 * tokenized and dropped (guint64: frames since the start), aborted (boolean: TRUE for a frame
 * whose encode a flush or a stop cut short; no codes follow such a message).
 *
 * Latency: a live upstream's latency plus one #GstSeedTokenize:interval (the time one item
 * stands for). The encode time is not included: it depends on the device and the model, and a
 * live stream does not wait for it (frames are dropped instead); anygptllm's captions say in
 * their own timing how late they are.
 *
 * Flush and EOS: a flush aborts the encode in progress at the core's next stage boundary (a
 * few ViT blocks; the resize of the frame before them is not interrupted) and drops the
 * waiting frame; EOS is forwarded after the frames received before it. Going to READY aborts
 * the encode in progress the same way, so PLAYING->NULL returns within one stage of the
 * encoder (measured on a 3840x2160 frame and the micro test model: ~35 ms, the resize).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=x.png ! pngdec ! videoconvert ! \
 *     seedtokenize model-path=seed-tokenizer.gguf ! filesink location=codes.bin
 * gst-launch-1.0 filesrc location=clip.mkv ! decodebin ! videoconvert ! \
 *     seedtokenize model-path=seed-tokenizer.gguf interval=2000 ! \
 *     anygptllm model-path=anygpt-chat.gguf task=caption ! fdsink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/video/video.h>

#include "gstanygptcore.h"
#include "gstanygptlatency.h"
#include "gstanygptshared.h"
#include "gstanygptimageelements.h"

#include "anygpt/error.h"
#include "anygpt/seed_tokenizer.h"

#define GST_CAT_DEFAULT anygpt_core_debug

#define GST_TYPE_SEED_TOKENIZE (gst_seed_tokenize_get_type ())
G_DECLARE_FINAL_TYPE (GstSeedTokenize, gst_seed_tokenize, GST, SEED_TOKENIZE, GstElement)

/* AnyGPT's image items: 32 codes of an 8192-entry codebook */
#define SEED_CODES 32
#define SEED_CODEBOOK 8192

#define VIDEO_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
    GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_ANYGPT_TOKENS_MEDIA_TYPE ", modality=(string)image, "
        "codebooks=(int)1, codebook-size=(int)8192, rate=(fraction)0/1"));

/* A frame or a serialized event, in stream order, for the task. */
typedef struct
{
  GstBuffer *frame;
  GstVideoInfo info;
  GstClockTime running_time;
  gint64 arrival_us;            /* monotonic */
  GstEvent *event;
} Item;

struct _GstSeedTokenize
{
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  guint interval_ms;
  /* model (READY and up; model-path, device, backend: gstanygptshared.h) */
  ag_seed_tokenizer *model;
  /* hand-over to the task (lock) */
  GMutex lock;
  GCond cond;
  GQueue items;
  guint n_frames_waiting;
  gboolean flushing;
  GstFlowReturn srcresult;
  guint64 n_tokenized, n_dropped;
  gint abort;                   /* atomic: stop the encode in progress */
  /* stream state (the sink pad's streaming thread) */
  GstVideoInfo vinfo;
  gboolean have_vinfo, caps_queued;
  GstSegment segment;
  gint live;                    /* upstream live: 1, 0; -1 not asked yet */
  GstClockTime grid_origin, next_due;
};

G_DEFINE_TYPE (GstSeedTokenize, gst_seed_tokenize, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (seedtokenize, "seedtokenize", GST_RANK_NONE,
    GST_TYPE_SEED_TOKENIZE);

enum
{
  /* 1..4: model-path, device, device-index, threads (gstanygptshared.h) */
  PROP_FIRST_OWN = GST_ANYGPT_SHARED_N_PROPS - 1,
  PROP_INTERVAL,
};

#define DEFAULT_INTERVAL 0

static void
item_free (Item * it)
{
  if (it->frame)
    gst_buffer_unref (it->frame);
  if (it->event)
    gst_event_unref (it->event);
  g_free (it);
}

/* ---- model ---- */

static gpointer
load_seed_tokenizer (ag_backend * be, const gchar * path, ag_progress_fn progress,
    void *progress_user, gpointer user)
{
  (void) user;
  return ag_seed_tokenizer_load (be, path, progress, progress_user);
}

static gboolean
load_model (GstSeedTokenize * self)
{
  GstElement *el = GST_ELEMENT (self);
  self->model = gst_anygpt_shared_load (el,
      "a SEED tokenizer GGUF (anygpt-convert seed-tokenizer)", load_seed_tokenizer, NULL);
  if (!self->model)
    return FALSE;
  const gchar *path = gst_anygpt_shared_model_path (el);
  const ag_seed_tokenizer_info *in = ag_seed_tokenizer_info_of (self->model);
  if (in->n_query != SEED_CODES || in->codebook_size != SEED_CODEBOOK) {
    gchar *reason = g_strdup_printf ("%s makes %d codes of %d per image; AnyGPT's image items "
        "are %d codes of %d", path, in->n_query, in->codebook_size, SEED_CODES, SEED_CODEBOOK);
    gst_anygpt_shared_load_failed (el, reason);
    g_free (reason);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "loaded %s on %s", path,
      ag_backend_device_name (gst_anygpt_shared_backend (el)));
  return TRUE;
}

static void
unload_model (GstSeedTokenize * self)
{
  g_clear_pointer (&self->model, ag_seed_tokenizer_free);
  gst_anygpt_shared_close (GST_ELEMENT (self));
}

/* ---- hand-over ---- */

static void
set_flushing (GstSeedTokenize * self, gboolean flushing)
{
  g_mutex_lock (&self->lock);
  self->flushing = flushing;
  self->srcresult = flushing ? GST_FLOW_FLUSHING : GST_FLOW_OK;
  g_atomic_int_set (&self->abort, flushing);
  if (!flushing) {
    g_queue_clear_full (&self->items, (GDestroyNotify) item_free);
    self->n_frames_waiting = 0;
  }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* The selection state of a new stream (start, flush, stream-start). */
static void
reset_selection (GstSeedTokenize * self)
{
  self->live = -1;
  self->grid_origin = GST_CLOCK_TIME_NONE;
  self->next_due = GST_CLOCK_TIME_NONE;
}

static void
queue_event (GstSeedTokenize * self, GstEvent * ev)
{
  Item *it = g_new0 (Item, 1);
  it->event = ev;
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->items, it);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static bool
abort_requested (void *user)
{
  GstSeedTokenize *self = user;
  return g_atomic_int_get (&self->abort) != 0;
}

static void
post_frame_message (GstSeedTokenize * self, const Item * it, gint64 start_us, gint64 end_us,
    guint64 tokenized, guint64 dropped, gboolean aborted)
{
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("seedtokenize",
              "pts", G_TYPE_UINT64, (guint64) GST_BUFFER_PTS (it->frame),
              "running-time", G_TYPE_UINT64, (guint64) it->running_time,
              "encode-ms", G_TYPE_DOUBLE, (end_us - start_us) / 1e3,
              "wait-ms", G_TYPE_DOUBLE, (start_us - it->arrival_us) / 1e3,
              "latency-ms", G_TYPE_DOUBLE, (end_us - it->arrival_us) / 1e3,
              "tokenized", G_TYPE_UINT64, tokenized, "dropped", G_TYPE_UINT64, dropped,
              "aborted", G_TYPE_BOOLEAN, aborted, NULL)));
}

/* Encodes one frame and pushes its codes (nothing when the encode was aborted). */
static GstFlowReturn
encode_frame (GstSeedTokenize * self, Item * it)
{
  GstVideoFrame vf;
  if (!gst_video_frame_map (&vf, &it->info, it->frame, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Malformed video frame"),
        ("%" G_GSIZE_FORMAT " bytes do not hold a %dx%d %s frame",
            gst_buffer_get_size (it->frame), GST_VIDEO_INFO_WIDTH (&it->info),
            GST_VIDEO_INFO_HEIGHT (&it->info), GST_VIDEO_INFO_NAME (&it->info)));
    return GST_FLOW_ERROR;
  }
  const ag_image_view view = {
    .data = GST_VIDEO_FRAME_PLANE_DATA (&vf, 0),
    .width = GST_VIDEO_FRAME_WIDTH (&vf),
    .height = GST_VIDEO_FRAME_HEIGHT (&vf),
    .stride = (size_t) GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0),
    .bpp = GST_VIDEO_FRAME_COMP_PSTRIDE (&vf, 0),
    .r = GST_VIDEO_FRAME_COMP_POFFSET (&vf, GST_VIDEO_COMP_R),
    .g = GST_VIDEO_FRAME_COMP_POFFSET (&vf, GST_VIDEO_COMP_G),
    .b = GST_VIDEO_FRAME_COMP_POFFSET (&vf, GST_VIDEO_COMP_B),
  };
  gint32 codes[SEED_CODES];
  gint64 t0 = g_get_monotonic_time ();
  int rc = ag_seed_tokenizer_encode_image (self->model, &view, codes, abort_requested, self);
  gint64 t1 = g_get_monotonic_time ();
  gst_video_frame_unmap (&vf);
  if (rc < 0) {
    GST_ELEMENT_ERROR (self, STREAM, ENCODE, ("SEED tokenizer failed"),
        ("frame at %" GST_TIME_FORMAT ": %s", GST_TIME_ARGS (GST_BUFFER_PTS (it->frame)),
            ag_last_error ()));
    return GST_FLOW_ERROR;
  }
  g_mutex_lock (&self->lock);
  if (rc == 0)
    self->n_tokenized++;
  guint64 tokenized = self->n_tokenized, dropped = self->n_dropped;
  g_mutex_unlock (&self->lock);
  post_frame_message (self, it, t0, t1, tokenized, dropped, rc == 1);
  if (rc == 1) {
    GST_DEBUG_OBJECT (self, "encode of %" GST_TIME_FORMAT " aborted",
        GST_TIME_ARGS (GST_BUFFER_PTS (it->frame)));
    return GST_FLOW_FLUSHING;
  }
  GST_LOG_OBJECT (self, "frame %" GST_TIME_FORMAT ": %.1f ms",
      GST_TIME_ARGS (GST_BUFFER_PTS (it->frame)), (t1 - t0) / 1e3);
  GstBuffer *out = gst_anygpt_tokens_buffer_new (codes, SEED_CODES, 1);
  GST_BUFFER_PTS (out) = GST_BUFFER_PTS (it->frame);
  GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_MARKER);
  return gst_pad_push (self->srcpad, out);
}

static void
gst_seed_tokenize_loop (GstSeedTokenize * self)
{
  g_mutex_lock (&self->lock);
  while (!self->flushing && g_queue_is_empty (&self->items))
    g_cond_wait (&self->cond, &self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    gst_pad_pause_task (self->srcpad);
    return;
  }
  Item *it = g_queue_pop_head (&self->items);
  if (it->frame)
    self->n_frames_waiting--;
  g_cond_broadcast (&self->cond);       /* a waiting chain function may hand over its frame */
  g_mutex_unlock (&self->lock);

  GstFlowReturn ret = GST_FLOW_OK;
  if (it->event) {
    /* EOS too: the task then waits for a flush or a new stream */
    gst_pad_push_event (self->srcpad, it->event);
    it->event = NULL;
  } else {
    ret = encode_frame (self, it);
  }
  item_free (it);
  if (ret == GST_FLOW_OK)
    return;
  g_mutex_lock (&self->lock);
  gboolean flushing = self->flushing;
  if (!flushing)
    self->srcresult = ret;
  g_cond_broadcast (&self->cond);       /* a waiting chain function returns it */
  g_mutex_unlock (&self->lock);
  /* errors of our own were posted where they happened */
  if (!flushing && (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) && ret != GST_FLOW_ERROR)
    GST_ELEMENT_FLOW_ERROR (self, ret);
  GST_DEBUG_OBJECT (self, "pausing task: %s", gst_flow_get_name (ret));
  gst_pad_pause_task (self->srcpad);
}

static gboolean
start_task (GstSeedTokenize * self)
{
  return gst_pad_start_task (self->srcpad, (GstTaskFunction) gst_seed_tokenize_loop, self,
      NULL);
}

static gboolean
src_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode, gboolean active)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (parent);
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    set_flushing (self, FALSE);
    return start_task (self);
  }
  /* aborts the encode in progress at its next stage, releases a waiting chain function */
  set_flushing (self, TRUE);
  return gst_pad_stop_task (pad);
}

/* ---- sink pad ---- */

/* Whether the frame at running time rt is one the interval selects (see the doc block). */
static gboolean
frame_selected (GstSeedTokenize * self, GstClockTime rt)
{
  GST_OBJECT_LOCK (self);
  GstClockTime interval = (GstClockTime) self->interval_ms * GST_MSECOND;
  GST_OBJECT_UNLOCK (self);
  if (interval == 0 || !GST_CLOCK_TIME_IS_VALID (rt))
    return TRUE;
  if (!GST_CLOCK_TIME_IS_VALID (self->grid_origin)) {
    self->grid_origin = rt;
    self->next_due = rt;
  }
  if (rt < self->next_due)
    return FALSE;
  self->next_due = self->grid_origin + ((rt - self->grid_origin) / interval + 1) * interval;
  return TRUE;
}

static GstFlowReturn
gst_seed_tokenize_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (parent);
  if (!self->have_vinfo) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("video frame before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GstClockTime pts = GST_BUFFER_PTS (buf), rt = pts;
  if (GST_CLOCK_TIME_IS_VALID (pts) && self->segment.format == GST_FORMAT_TIME)
    rt = gst_segment_to_running_time (&self->segment, GST_FORMAT_TIME, pts);
  if (!frame_selected (self, rt)) {
    gst_buffer_unref (buf);
    g_mutex_lock (&self->lock);
    GstFlowReturn ret = self->srcresult;
    g_mutex_unlock (&self->lock);
    return ret;
  }
  if (self->live < 0)
    self->live = gst_anygpt_upstream_is_live (self->sinkpad);

  Item *it = g_new0 (Item, 1);
  it->frame = buf;
  it->info = self->vinfo;
  it->running_time = rt;
  it->arrival_us = g_get_monotonic_time ();
  Item *replaced = NULL;
  g_mutex_lock (&self->lock);
  if (self->live) {
    /* the newest frame waits: a waiting older one is dropped */
    for (GList * l = self->items.head; l && self->n_frames_waiting; l = l->next) {
      Item *q = l->data;
      if (q->frame) {
        replaced = q;
        g_queue_delete_link (&self->items, l);
        self->n_frames_waiting--;
        self->n_dropped++;
        break;
      }
    }
  } else {
    while (self->srcresult == GST_FLOW_OK && self->n_frames_waiting > 0)
      g_cond_wait (&self->cond, &self->lock);
  }
  GstFlowReturn ret = self->srcresult;
  guint64 processed = self->n_tokenized, dropped = self->n_dropped;
  if (ret == GST_FLOW_OK) {
    g_queue_push_tail (&self->items, it);
    self->n_frames_waiting++;
    g_cond_broadcast (&self->cond);
    it = NULL;
  }
  g_mutex_unlock (&self->lock);
  if (it)
    item_free (it);
  if (replaced) {
    GST_DEBUG_OBJECT (self, "busy: frame at %" GST_TIME_FORMAT " replaced by a newer one",
        GST_TIME_ARGS (GST_BUFFER_PTS (replaced->frame)));
    GstClockTime q_pts = GST_BUFFER_PTS (replaced->frame);
    GstMessage *m = gst_message_new_qos (GST_OBJECT (self), TRUE, replaced->running_time,
        self->segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (q_pts) ?
        gst_segment_to_stream_time (&self->segment, GST_FORMAT_TIME, q_pts) :
        GST_CLOCK_TIME_NONE, q_pts, GST_BUFFER_DURATION (replaced->frame));
    gst_message_set_qos_stats (m, GST_FORMAT_BUFFERS, processed, dropped);
    gst_element_post_message (GST_ELEMENT (self), m);
    item_free (replaced);
  }
  return ret;
}

/* Caps: a listed packed RGB format at a usable size. Posts the error and returns FALSE. */
static gboolean
set_caps (GstSeedTokenize * self, GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  gint w = 0, h = 0;
  if (!gst_caps_is_fixed (caps) || !gst_structure_get_int (s, "width", &w) ||
      !gst_structure_get_int (s, "height", &h)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Video caps without a frame size"),
        ("got %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  if (w < 1 || h < 1 || w > AG_IMAGE_MAX_SIDE || h > AG_IMAGE_MAX_SIDE) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("Frame size %dx%d is not usable: each side must be 1..%d pixels", w, h,
            AG_IMAGE_MAX_SIDE), ("got %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  GstVideoInfo info;
  GstCaps *tmpl = gst_static_pad_template_get_caps (&sink_template);
  gboolean ok = gst_caps_can_intersect (caps, tmpl) && gst_video_info_from_caps (&info, caps);
  gst_caps_unref (tmpl);
  if (!ok) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Unsupported video format"),
        ("need packed 8-bit RGB video (%s; put videoconvert before seedtokenize), got %"
            GST_PTR_FORMAT, VIDEO_FORMATS, caps));
    return FALSE;
  }
  self->vinfo = info;
  self->have_vinfo = TRUE;
  return TRUE;
}

/* Our source caps (fixed) as an event. */
static GstEvent *
out_caps_event (void)
{
  GstCaps *caps = gst_static_pad_template_get_caps (&src_template);
  GstEvent *ev = gst_event_new_caps (caps);
  gst_caps_unref (caps);
  return ev;
}

static gboolean
restore_sticky_event (GstPad * pad, GstEvent ** event, gpointer user)
{
  GstSeedTokenize *self = user;
  GstEventType t = GST_EVENT_TYPE (*event);
  if (t == GST_EVENT_CAPS) {
    GstEvent *caps = out_caps_event ();
    gst_pad_store_sticky_event (self->srcpad, caps);
    gst_event_unref (caps);
  } else if (t != GST_EVENT_SEGMENT && t != GST_EVENT_EOS) {
    gst_pad_store_sticky_event (self->srcpad, *event);
  }
  return TRUE;
}

static gboolean
gst_seed_tokenize_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = set_caps (self, caps);
      gst_event_unref (event);
      if (ok && !self->caps_queued) {
        queue_event (self, out_caps_event ());
        self->caps_queued = TRUE;
      }
      return ok;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &self->segment);
      break;
    case GST_EVENT_STREAM_START:
      reset_selection (self);
      break;
    case GST_EVENT_FLUSH_START:
      gst_pad_push_event (self->srcpad, event);
      set_flushing (self, TRUE);        /* aborts the encode in progress */
      gst_pad_pause_task (self->srcpad);        /* waits for the task to leave its loop */
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      reset_selection (self);
      gst_segment_init (&self->segment, GST_FORMAT_TIME);
      gst_pad_push_event (self->srcpad, event);
      if (!gst_pad_is_active (self->srcpad))
        return TRUE;
      set_flushing (self, FALSE);
      /* the flush discarded the queued events: what of them still holds (stream-start, our
       * caps, tags) goes out with the next push, as queue does it */
      gst_pad_sticky_events_foreach (self->sinkpad, restore_sticky_event, self);
      self->caps_queued = self->have_vinfo;
      return start_task (self);
    default:
      break;
  }
  if (GST_EVENT_IS_SERIALIZED (event)) {
    /* after the frames received before it */
    queue_event (self, event);
    return TRUE;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_seed_tokenize_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  if (GST_QUERY_TYPE (query) == GST_QUERY_ACCEPT_CAPS) {
    /* any listed format is accepted here, whatever its size, so that a frame size we cannot
     * use reaches the caps event and ends with an error that says so */
    GstCaps *caps, *any = gst_caps_from_string ("video/x-raw, format=(string)" VIDEO_FORMATS);
    gst_query_parse_accept_caps (query, &caps);
    gst_query_set_accept_caps_result (query, gst_caps_is_fixed (caps) &&
        gst_caps_can_intersect (caps, any));
    gst_caps_unref (any);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

/* ---- src pad ---- */

static gboolean
gst_seed_tokenize_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (parent);
  if (gst_anygpt_shared_handle_query (GST_ELEMENT (self), query))
    return TRUE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    if (!gst_pad_peer_query (self->sinkpad, query))
      return FALSE;
    GST_OBJECT_LOCK (self);
    GstClockTime add = (GstClockTime) self->interval_ms * GST_MSECOND;
    GST_OBJECT_UNLOCK (self);
    gst_anygpt_latency_add (query, add, FALSE);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

/* ---- element ---- */

static GstStateChangeReturn
gst_seed_tokenize_change_state (GstElement * element, GstStateChange transition)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!load_model (self)) {
        unload_model (self);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      self->have_vinfo = FALSE;
      self->caps_queued = FALSE;
      gst_segment_init (&self->segment, GST_FORMAT_TIME);
      reset_selection (self);
      g_mutex_lock (&self->lock);
      self->n_tokenized = self->n_dropped = 0;
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_seed_tokenize_parent_class)->change_state (element, transition);
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      g_mutex_lock (&self->lock);
      g_queue_clear_full (&self->items, (GDestroyNotify) item_free);
      self->n_frames_waiting = 0;
      g_mutex_unlock (&self->lock);
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      unload_model (self);
      break;
    default:
      break;
  }
  return ret;
}

static void
gst_seed_tokenize_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_INTERVAL:
      self->interval_ms = g_value_get_uint (value);
      break;
    default:
      if (!gst_anygpt_shared_set_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_seed_tokenize_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_INTERVAL:
      g_value_set_uint (value, self->interval_ms);
      break;
    default:
      if (!gst_anygpt_shared_get_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_seed_tokenize_finalize (GObject * object)
{
  GstSeedTokenize *self = GST_SEED_TOKENIZE (object);
  g_queue_clear_full (&self->items, (GDestroyNotify) item_free);
  unload_model (self);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (gst_seed_tokenize_parent_class)->finalize (object);
}

static void
gst_seed_tokenize_class_init (GstSeedTokenizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  /* model and device are read on NULL->READY, interval per frame */
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_seed_tokenize_set_property;
  gobject_class->get_property = gst_seed_tokenize_get_property;
  gobject_class->finalize = gst_seed_tokenize_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_seed_tokenize_change_state);

  gst_anygpt_shared_class_init (element_class,
      "SEED tokenizer GGUF (anygpt-convert seed-tokenizer), loaded on NULL->READY");
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint ("interval", "Interval",
          "Tokenize at most one frame per interval, in milliseconds (0: every frame): the "
          "first frame at or after each grid point first-frame-time + k * interval",
          0, G_MAXUINT, DEFAULT_INTERVAL, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "SEED image tokenizer",
      "Codec/Encoder/Video", "Video frames to AnyGPT image tokens (SEED: EVA ViT-g, causal "
      "Q-Former, 32 codes of 8192), one item per frame or per interval", "gst-anygpt");
}

static void
gst_seed_tokenize_init (GstSeedTokenize * self)
{
  gst_anygpt_shared_instance_init (GST_ELEMENT (self));
  self->interval_ms = DEFAULT_INTERVAL;
  self->srcresult = GST_FLOW_FLUSHING;
  self->flushing = TRUE;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->items);
  gst_segment_init (&self->segment, GST_FORMAT_TIME);
  reset_selection (self);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_seed_tokenize_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_seed_tokenize_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_seed_tokenize_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_pad_set_activatemode_function (self->srcpad, GST_DEBUG_FUNCPTR (src_activate_mode));
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_seed_tokenize_src_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
