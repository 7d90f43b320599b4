/**
 * SECTION:element-seeddiffuse
 * @title: seeddiffuse
 *
 * AnyGPT's image de-tokenizer: each image item (32 SEED codes, what anygptllm puts on its
 * image_src and seedtokenize makes) becomes one picture, through SEED's decode MLP (a 1024-d
 * unCLIP image embedding), Stable Diffusion 2.1 unCLIP (the embedding as class conditioning,
 * classifier-free guidance, the model's PNDM or DDIM scheduler) and the VAE decoder
 * (anygpt/unclip.h; model file: anygpt-convert seed-unclip).
 *
 * Input: `application/x-anygpt-tokens, modality=image, codebooks=1`, one buffer = one item of
 * exactly the model's 32 codes. A stream whose codebook-size exceeds the model's is refused at
 * the caps (an error naming both sizes); other token streams are refused by the caps.
 *
 * Output: `video/x-raw, format=RGB, width=S, height=S, framerate=0/1` with S the model's image
 * size (768 for the published model, the UNet's sample_size times the VAE's scale factor). The
 * caps are fixed as soon as the model is loaded (READY). One frame per item, PTS and duration
 * the item's (an item from anygptllm has the PTS of the request it answers).
 *
 * Bad items: an item whose size is not 32 int32 codes, or with a code outside the model's
 * codebook, is skipped with a warning (GST_ELEMENT_WARNING naming the item: its number in the
 * stream, its PTS, the count or the index and value of the bad code); no frame is made for it,
 * a GAP event with its time (when it has one) goes downstream instead, and the next item is
 * decoded as usual. Nothing else is refused at run time: an error of the core (out of memory,
 * a device error) is an element error.
 *
 * Seeds: #GstSeedDiffuse:seed S >= 0 draws each image's starting noise (the latents, then the
 * embedding noise) exactly as `torch.Generator('cpu').manual_seed(S)` would, so every item
 * with the same codes gives the same picture; -1 (default) draws a fresh seed per image, which
 * the image's `seeddiffuse` message reports (set it as the seed to make that image again).
 *
 * Work runs on the element's own streaming task (the src pad's); the chain function checks the
 * item and hands it over. Input queue: at most one item waits while one is generated.
 * - non-live upstream (a file, a text prompt): the chain function blocks until the task took
 *   the waiting item, so no item is lost;
 * - live upstream (the latency query says live): the chain function never blocks; a newer item
 *   replaces the waiting one, which is dropped, counted (`dropped` in the next message) and
 *   reported in a QoS message (format buffers).
 *
 * Messages (element messages, for progress bars and logs):
 * - `seeddiffuse-progress` after every denoising step: item (guint64, 1-based number of the
 *   item in the stream), pts (guint64 ns, GST_CLOCK_TIME_NONE when untimed), seed (guint64),
 *   step (gint, 1..of), of (gint: the UNet evaluations of the image, 21 for 20 PNDM steps,
 *   20 for 20 DDIM steps), elapsed (gdouble s since the image's start), eta (gdouble s: the
 *   mean step time times the steps left, plus the previous image's VAE decode time; never
 *   increases within an image).
 * - `seeddiffuse` per image when it is done (before its frame is pushed) or aborted: item,
 *   pts, duration, seed, steps (the property), evaluations (0 when stopped before the first
 *   step), guidance-scale, noise-level, width, height, seconds (gdouble: codes -> pixels),
 *   decode-seconds (gdouble: the VAE decode's share), aborted (boolean: a flush or a stop cut
 *   it short; no frame follows), generated and dropped (guint64: images made and items
 *   dropped since the start).
 *
 * Latency: not real-time. An image takes seconds (tiny models) to minutes (the published model
 * on a CPU); the element adds nothing to the latency upstream reports, since its time depends on
 * the model, the steps and the device, and answers max = none (an item may wait any time). A
 * sink that syncs to the clock would show every frame late: use sync=false, or a file sink.
 *
 * Stopping: a flush or PLAYING->NULL stops the image in progress after the current UNet
 * evaluation (the core's step callback; the VAE decode of a finished loop is not interrupted)
 * and drops the waiting item. EOS is forwarded after the items received before it. When
 * downstream answers a frame with EOS (pngenc snapshot=true), the element sends EOS downstream
 * and refuses further items with EOS.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 anygptllm name=llm model-path=anygpt-llm.gguf task=text-to-image \
 *     prompt="a cat" max-new-tokens=32 constrain-spans=true llm.image_src ! \
 *     seeddiffuse model-path=seed-unclip.gguf ! pngenc ! filesink location=cat.png
 * gst-launch-1.0 filesrc location=in.png ! decodebin ! videoconvert ! \
 *     seedtokenize model-path=seed-tokenizer.gguf ! \
 *     seeddiffuse model-path=seed-unclip.gguf seed=0 ! pngenc ! filesink location=out.png
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
#include "anygpt/unclip.h"

#define GST_CAT_DEFAULT anygpt_core_debug

#define GST_TYPE_SEED_DIFFUSE (gst_seed_diffuse_get_type ())
G_DECLARE_FINAL_TYPE (GstSeedDiffuse, gst_seed_diffuse, GST, SEED_DIFFUSE, GstElement)

/* AnyGPT's image items: 32 codes */
#define SEED_CODES 32

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
    GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_ANYGPT_TOKENS_MEDIA_TYPE ", modality=(string)image, "
        "codebooks=(int)1, codebook-size=(int)[1, 2147483647], rate=(fraction)0/1"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw, format=(string)RGB, width=(int)[1, 4096], "
        "height=(int)[1, 4096], framerate=(fraction)0/1, pixel-aspect-ratio=(fraction)1/1"));

/* An item or a serialized event, in stream order, for the task. */
typedef struct
{
  gint32 codes[SEED_CODES];
  guint64 number;               /* 1-based, in the stream */
  GstClockTime pts, duration, running_time;
  GstEvent *event;
} Item;

struct _GstSeedDiffuse
{
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  /* properties (object lock; model-path, device, backend: gstanygptshared.h) */
  gint steps, noise_level;
  gdouble guidance_scale;
  gint64 seed;
  /* model (READY and up) */
  ag_unclip *model;
  ag_unclip_info info;
  GstVideoInfo out_info;
  /* hand-over to the task (lock) */
  GMutex lock;
  GCond cond;
  GQueue items;
  guint n_items_waiting;
  gboolean flushing;
  GstFlowReturn srcresult;
  guint64 n_generated, n_dropped;
  gint abort;                   /* atomic: stop the image in progress */
  /* the task's own */
  gdouble last_decode_s;        /* the previous image's VAE decode, for the ETA */
  /* stream state (the sink pad's streaming thread) */
  gint codebook_size;           /* from the caps; 0 before them */
  gboolean caps_queued;
  GstSegment segment;
  gint live;                    /* upstream live: 1, 0; -1 not asked yet */
  guint64 n_items;
};

G_DEFINE_TYPE (GstSeedDiffuse, gst_seed_diffuse, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (seeddiffuse, "seeddiffuse", GST_RANK_NONE, GST_TYPE_SEED_DIFFUSE);

enum
{
  /* 1..4: model-path, device, device-index, threads (gstanygptshared.h) */
  PROP_FIRST_OWN = GST_ANYGPT_SHARED_N_PROPS - 1,
  PROP_STEPS,
  PROP_GUIDANCE_SCALE,
  PROP_NOISE_LEVEL,
  PROP_SEED,
};

#define DEFAULT_STEPS 20        /* AnyGPT's num_inference_steps */
#define DEFAULT_GUIDANCE_SCALE 10.0
#define DEFAULT_NOISE_LEVEL 0
#define DEFAULT_SEED -1

static void
item_free (Item * it)
{
  if (it->event)
    gst_event_unref (it->event);
  g_free (it);
}

/* ---- model ---- */

static gpointer
load_unclip (ag_backend * be, const gchar * path, ag_progress_fn progress, void *progress_user,
    gpointer user)
{
  (void) user;
  return ag_unclip_load (be, path, progress, progress_user);
}

static gboolean
load_model (GstSeedDiffuse * self)
{
  GstElement *el = GST_ELEMENT (self);
  self->model = gst_anygpt_shared_load (el,
      "a SEED unCLIP GGUF (anygpt-convert seed-unclip)", load_unclip, NULL);
  if (!self->model)
    return FALSE;
  const gchar *path = gst_anygpt_shared_model_path (el);
  self->info = *ag_unclip_info_of (self->model);
  const ag_unclip_info *in = &self->info;
  gchar *reason = NULL;
  if (in->n_codes != SEED_CODES)
    reason = g_strdup_printf ("%s decodes %d codes per image; AnyGPT's image items are %d "
        "codes", path, in->n_codes, SEED_CODES);
  else if (in->image_size < 1 || in->image_size > 4096)
    reason = g_strdup_printf ("%s makes %dx%d images; at most 4096x4096 are supported", path,
        in->image_size, in->image_size);
  if (reason) {
    gst_anygpt_shared_load_failed (el, reason);
    g_free (reason);
    return FALSE;
  }
  gst_video_info_set_format (&self->out_info, GST_VIDEO_FORMAT_RGB, in->image_size,
      in->image_size);
  GST_INFO_OBJECT (self, "loaded %s on %s: %dx%d images, %s, codebook %d", path,
      ag_backend_device_name (gst_anygpt_shared_backend (el)), in->image_size, in->image_size,
      in->scheduler, in->codebook_size);
  return TRUE;
}

static void
unload_model (GstSeedDiffuse * self)
{
  g_clear_pointer (&self->model, ag_unclip_free);
  gst_anygpt_shared_close (GST_ELEMENT (self));
}

/* Fixed output caps of the loaded model. */
static GstCaps *
out_caps (GstSeedDiffuse * self)
{
  GstCaps *caps = gst_video_info_to_caps (&self->out_info);
  gst_caps_set_simple (caps, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
  return caps;
}

/* ---- hand-over ---- */

static void
set_flushing (GstSeedDiffuse * self, gboolean flushing)
{
  g_mutex_lock (&self->lock);
  self->flushing = flushing;
  self->srcresult = flushing ? GST_FLOW_FLUSHING : GST_FLOW_OK;
  g_atomic_int_set (&self->abort, flushing);
  if (!flushing) {
    g_queue_clear_full (&self->items, (GDestroyNotify) item_free);
    self->n_items_waiting = 0;
  }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
queue_event (GstSeedDiffuse * self, GstEvent * ev)
{
  Item *it = g_new0 (Item, 1);
  it->event = ev;
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->items, it);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* ---- the task ---- */

typedef struct
{
  GstSeedDiffuse *self;
  const Item *it;
  guint64 seed;
  gint64 t0;                    /* monotonic us at the start */
  gint64 t_last;                /* at the last step */
  gint evaluations;             /* UNet evaluations of the image (known from the first step) */
  gdouble eta;
} StepState;

static bool
on_step (void *user, int32_t step, int32_t n_steps)
{
  StepState *st = user;
  GstSeedDiffuse *self = st->self;
  st->t_last = g_get_monotonic_time ();
  st->evaluations = n_steps;
  gdouble elapsed = (st->t_last - st->t0) / 1e6;
  gdouble eta = elapsed / step * (n_steps - step) + self->last_decode_s;
  if (eta > st->eta)            /* a progress bar does not go back */
    eta = st->eta;
  st->eta = eta;
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("seeddiffuse-progress",
              "item", G_TYPE_UINT64, st->it->number,
              "pts", G_TYPE_UINT64, (guint64) st->it->pts,
              "seed", G_TYPE_UINT64, st->seed,
              "step", G_TYPE_INT, step, "of", G_TYPE_INT, n_steps,
              "elapsed", G_TYPE_DOUBLE, elapsed, "eta", G_TYPE_DOUBLE, eta, NULL)));
  return g_atomic_int_get (&self->abort) == 0;
}

/* The seed of one image: the property, or a fresh one (63 bits, so that it fits the property). */
static guint64
image_seed (gint64 prop)
{
  if (prop >= 0)
    return (guint64) prop;
  return (((guint64) g_random_int () << 32) | g_random_int ()) & G_MAXINT64;
}

/* The RGB rows into a video frame of the output caps (rows padded as GstVideoInfo says). */
static GstBuffer *
frame_buffer (GstSeedDiffuse * self, const guint8 * rgb)
{
  GstBuffer *out = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&self->out_info), NULL);
  GstVideoFrame vf;
  if (!gst_video_frame_map (&vf, &self->out_info, out, GST_MAP_WRITE)) {
    gst_buffer_unref (out);
    return NULL;
  }
  const gsize row = (gsize) self->info.image_size * 3;
  for (gint y = 0; y < self->info.image_size; y++)
    memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, 0) +
        (gsize) y * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0), rgb + (gsize) y * row, row);
  gst_video_frame_unmap (&vf);
  return out;
}

/* Generates one image and pushes its frame (nothing when aborted). */
static GstFlowReturn
generate (GstSeedDiffuse * self, const Item * it)
{
  GST_OBJECT_LOCK (self);
  ag_unclip_params p = {
    .steps = self->steps,
    .guidance_scale = (float) self->guidance_scale,
    .noise_level = self->noise_level,
    .seed = image_seed (self->seed),
  };
  GST_OBJECT_UNLOCK (self);
  const gint side = self->info.image_size;
  guint8 *rgb = g_malloc ((gsize) side * side * 3);
  StepState st = { self, it, p.seed, g_get_monotonic_time (), 0, 0, G_MAXDOUBLE };
  st.t_last = st.t0;
  int rc = g_atomic_int_get (&self->abort) ? 1 :
      ag_unclip_generate (self->model, it->codes, SEED_CODES, &p, on_step, &st, rgb);
  gint64 t1 = g_get_monotonic_time ();
  if (rc < 0) {
    g_free (rgb);
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Image generation failed"),
        ("item %" G_GUINT64_FORMAT " (pts %" GST_TIME_FORMAT "): %s", it->number,
            GST_TIME_ARGS (it->pts), ag_last_error ()));
    return GST_FLOW_ERROR;
  }
  gdouble decode_s = rc == 0 ? (t1 - st.t_last) / 1e6 : 0.0;
  if (rc == 0)
    self->last_decode_s = decode_s;
  g_mutex_lock (&self->lock);
  if (rc == 0)
    self->n_generated++;
  guint64 generated = self->n_generated, dropped = self->n_dropped;
  g_mutex_unlock (&self->lock);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), gst_structure_new ("seeddiffuse",
              "item", G_TYPE_UINT64, it->number,
              "pts", G_TYPE_UINT64, (guint64) it->pts,
              "duration", G_TYPE_UINT64, (guint64) it->duration,
              "seed", G_TYPE_UINT64, p.seed,
              "steps", G_TYPE_INT, p.steps,
              "evaluations", G_TYPE_INT, st.evaluations,
              "guidance-scale", G_TYPE_DOUBLE, (gdouble) p.guidance_scale,
              "noise-level", G_TYPE_INT, p.noise_level,
              "width", G_TYPE_INT, side, "height", G_TYPE_INT, side,
              "seconds", G_TYPE_DOUBLE, (t1 - st.t0) / 1e6,
              "decode-seconds", G_TYPE_DOUBLE, decode_s,
              "aborted", G_TYPE_BOOLEAN, rc == 1,
              "generated", G_TYPE_UINT64, generated, "dropped", G_TYPE_UINT64, dropped, NULL)));
  if (rc == 1) {
    g_free (rgb);
    GST_DEBUG_OBJECT (self, "item %" G_GUINT64_FORMAT " aborted", it->number);
    return GST_FLOW_FLUSHING;
  }
  GST_DEBUG_OBJECT (self, "item %" G_GUINT64_FORMAT ": %.2f s, seed %" G_GUINT64_FORMAT,
      it->number, (t1 - st.t0) / 1e6, p.seed);
  GstBuffer *out = frame_buffer (self, rgb);
  g_free (rgb);
  if (!out) {
    GST_ELEMENT_ERROR (self, CORE, FAILED, (NULL), ("cannot map an output frame"));
    return GST_FLOW_ERROR;
  }
  GST_BUFFER_PTS (out) = it->pts;
  GST_BUFFER_DURATION (out) = it->duration;
  return gst_pad_push (self->srcpad, out);
}

static void
gst_seed_diffuse_loop (GstSeedDiffuse * self)
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
  if (!it->event)
    self->n_items_waiting--;
  g_cond_broadcast (&self->cond);       /* a waiting chain function may hand over its item */
  g_mutex_unlock (&self->lock);

  GstFlowReturn ret = GST_FLOW_OK;
  if (it->event) {
    /* EOS too: the task then waits for a flush or a new stream */
    gst_pad_push_event (self->srcpad, it->event);
    it->event = NULL;
  } else {
    ret = generate (self, it);
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
  /* downstream wants no more (pngenc snapshot=true): as the streaming thread we end the stream */
  if (!flushing && ret == GST_FLOW_EOS)
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  /* errors of our own were posted where they happened */
  if (!flushing && (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) && ret != GST_FLOW_ERROR)
    GST_ELEMENT_FLOW_ERROR (self, ret);
  GST_DEBUG_OBJECT (self, "pausing task: %s", gst_flow_get_name (ret));
  gst_pad_pause_task (self->srcpad);
}

static gboolean
start_task (GstSeedDiffuse * self)
{
  return gst_pad_start_task (self->srcpad, (GstTaskFunction) gst_seed_diffuse_loop, self, NULL);
}

static gboolean
src_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode, gboolean active)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (parent);
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    set_flushing (self, FALSE);
    return start_task (self);
  }
  /* stops the image in progress after its current UNet step, releases a waiting chain */
  set_flushing (self, TRUE);
  return gst_pad_stop_task (pad);
}

/* ---- sink pad ---- */

/* The item's codes into it, or a warning naming what is wrong (FALSE). */
static gboolean
read_item (GstSeedDiffuse * self, GstBuffer * buf, Item * it)
{
  gchar *what = NULL;
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    what = g_strdup ("its memory cannot be read");
  } else {
    if (map.size != SEED_CODES * 4) {
      what = map.size % 4 ? g_strdup_printf ("%" G_GSIZE_FORMAT " bytes is not a whole number "
          "of int32 codes", map.size) : g_strdup_printf ("%" G_GSIZE_FORMAT " codes, an image "
          "item has %d", map.size / 4, SEED_CODES);
    } else {
      memcpy (it->codes, map.data, sizeof it->codes);
      for (gint i = 0; i < SEED_CODES; i++) {
        it->codes[i] = GINT32_FROM_LE (it->codes[i]);
        if (it->codes[i] < 0 || it->codes[i] >= self->info.codebook_size) {
          what = g_strdup_printf ("code %d at index %d is outside the codebook [0, %d)",
              it->codes[i], i, self->info.codebook_size);
          break;
        }
      }
    }
    gst_buffer_unmap (buf, &map);
  }
  if (!what)
    return TRUE;
  GST_ELEMENT_WARNING (self, STREAM, DECODE, ("Image item %" G_GUINT64_FORMAT " skipped: %s",
          it->number, what), ("item %" G_GUINT64_FORMAT " at pts %" GST_TIME_FORMAT
          ": %s; no image is made for it", it->number, GST_TIME_ARGS (it->pts), what));
  g_free (what);
  return FALSE;
}

static GstFlowReturn
gst_seed_diffuse_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (parent);
  if (!self->codebook_size) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("token buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  Item *it = g_new0 (Item, 1);
  it->number = ++self->n_items;
  it->pts = GST_BUFFER_PTS (buf);
  it->duration = GST_BUFFER_DURATION (buf);
  it->running_time = it->pts;
  if (GST_CLOCK_TIME_IS_VALID (it->pts) && self->segment.format == GST_FORMAT_TIME)
    it->running_time = gst_segment_to_running_time (&self->segment, GST_FORMAT_TIME, it->pts);
  gboolean ok = read_item (self, buf, it);
  gst_buffer_unref (buf);
  if (!ok) {
    /* no frame for it: downstream learns that its time passed */
    if (GST_CLOCK_TIME_IS_VALID (it->pts))
      queue_event (self, gst_event_new_gap (it->pts, it->duration));
    item_free (it);
    g_mutex_lock (&self->lock);
    GstFlowReturn ret = self->srcresult;
    g_mutex_unlock (&self->lock);
    return ret;
  }
  if (self->live < 0)
    self->live = gst_anygpt_upstream_is_live (self->sinkpad);

  Item *replaced = NULL;
  g_mutex_lock (&self->lock);
  if (self->live) {
    /* the newest item waits: a waiting older one is dropped */
    for (GList * l = self->items.head; l && self->n_items_waiting; l = l->next) {
      Item *q = l->data;
      if (!q->event) {
        replaced = q;
        g_queue_delete_link (&self->items, l);
        self->n_items_waiting--;
        self->n_dropped++;
        break;
      }
    }
  } else {
    while (self->srcresult == GST_FLOW_OK && self->n_items_waiting > 0)
      g_cond_wait (&self->cond, &self->lock);
  }
  GstFlowReturn ret = self->srcresult;
  guint64 processed = self->n_generated, dropped = self->n_dropped;
  if (ret == GST_FLOW_OK) {
    g_queue_push_tail (&self->items, it);
    self->n_items_waiting++;
    g_cond_broadcast (&self->cond);
    it = NULL;
  }
  g_mutex_unlock (&self->lock);
  if (it)
    item_free (it);
  if (replaced) {
    GST_DEBUG_OBJECT (self, "busy: item %" G_GUINT64_FORMAT " replaced by a newer one",
        replaced->number);
    GstMessage *m = gst_message_new_qos (GST_OBJECT (self), TRUE, replaced->running_time,
        self->segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (replaced->pts) ?
        gst_segment_to_stream_time (&self->segment, GST_FORMAT_TIME, replaced->pts) :
        GST_CLOCK_TIME_NONE, replaced->pts, replaced->duration);
    gst_message_set_qos_stats (m, GST_FORMAT_BUFFERS, processed, dropped);
    gst_element_post_message (GST_ELEMENT (self), m);
    item_free (replaced);
  }
  return ret;
}

/* Image token caps of one codebook no larger than the model's; posts the error otherwise. */
static gboolean
set_caps (GstSeedDiffuse * self, GstCaps * caps)
{
  GstAnygptTokensInfo ti;
  if (!gst_anygpt_tokens_info_from_caps (&ti, caps) || ti.modality != GST_ANYGPT_MODALITY_IMAGE
      || ti.codebooks != 1) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Not image tokens"),
        ("need %s, modality=image, codebooks=1; got %" GST_PTR_FORMAT,
            GST_ANYGPT_TOKENS_MEDIA_TYPE, caps));
    return FALSE;
  }
  if (ti.codebook_size > self->info.codebook_size) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Image codes of %d do not fit this model",
            ti.codebook_size), ("the stream's codebook-size is %d; the model decodes codes "
            "of a %d-entry codebook", ti.codebook_size, self->info.codebook_size));
    return FALSE;
  }
  self->codebook_size = ti.codebook_size;
  return TRUE;
}

static gboolean
restore_sticky_event (GstPad * pad, GstEvent ** event, gpointer user)
{
  GstSeedDiffuse *self = user;
  GstEventType t = GST_EVENT_TYPE (*event);
  if (t == GST_EVENT_CAPS) {
    GstCaps *caps = out_caps (self);
    GstEvent *ev = gst_event_new_caps (caps);
    gst_caps_unref (caps);
    gst_pad_store_sticky_event (self->srcpad, ev);
    gst_event_unref (ev);
  } else if (t != GST_EVENT_SEGMENT && t != GST_EVENT_EOS) {
    gst_pad_store_sticky_event (self->srcpad, *event);
  }
  return TRUE;
}

static gboolean
gst_seed_diffuse_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = set_caps (self, caps);
      gst_event_unref (event);
      if (ok && !self->caps_queued) {
        GstCaps *oc = out_caps (self);
        queue_event (self, gst_event_new_caps (oc));
        gst_caps_unref (oc);
        self->caps_queued = TRUE;
      }
      return ok;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &self->segment);
      break;
    case GST_EVENT_STREAM_START:
      self->live = -1;
      self->n_items = 0;
      break;
    case GST_EVENT_FLUSH_START:
      gst_pad_push_event (self->srcpad, event);
      set_flushing (self, TRUE);        /* stops the image in progress */
      gst_pad_pause_task (self->srcpad);        /* waits for the task to leave its loop */
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      self->live = -1;
      gst_segment_init (&self->segment, GST_FORMAT_TIME);
      gst_pad_push_event (self->srcpad, event);
      if (!gst_pad_is_active (self->srcpad))
        return TRUE;
      set_flushing (self, FALSE);
      /* the flush discarded the queued events: what of them still holds (stream-start, our
       * caps, tags) goes out with the next push, as queue does it */
      gst_pad_sticky_events_foreach (self->sinkpad, restore_sticky_event, self);
      self->caps_queued = self->codebook_size != 0;
      return start_task (self);
    default:
      break;
  }
  if (GST_EVENT_IS_SERIALIZED (event)) {
    /* after the items received before it */
    queue_event (self, event);
    return TRUE;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* Caps query answer: the template, narrowed to the model once it is loaded. */
static GstCaps *
pad_caps (GstSeedDiffuse * self, GstPad * pad)
{
  if (!self->model)
    return gst_pad_get_pad_template_caps (pad);
  if (pad == self->srcpad)
    return out_caps (self);
  GstCaps *c = gst_pad_get_pad_template_caps (pad);
  c = gst_caps_make_writable (c);
  gst_caps_set_simple (c, "codebook-size", GST_TYPE_INT_RANGE, 1, self->info.codebook_size,
      NULL);
  if (self->info.codebook_size == 1)
    gst_caps_set_simple (c, "codebook-size", G_TYPE_INT, 1, NULL);
  return c;
}

static gboolean
gst_seed_diffuse_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (parent);
  if (gst_anygpt_shared_handle_query (GST_ELEMENT (self), query))
    return TRUE;
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps = pad_caps (self, pad), *res;
      gst_query_parse_caps (query, &filter);
      res = filter ? gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST) :
          gst_caps_ref (caps);
      gst_query_set_caps_result (query, res);
      gst_caps_unref (res);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS:{
      if (pad != self->sinkpad)
        break;
      /* any image token caps of one codebook, so that a codebook too large for the model
       * reaches the caps event and ends with an error that says so */
      GstCaps *caps, *tmpl = gst_pad_get_pad_template_caps (pad);
      gst_query_parse_accept_caps (query, &caps);
      gst_query_set_accept_caps_result (query, gst_caps_is_fixed (caps) &&
          gst_caps_can_intersect (caps, tmpl));
      gst_caps_unref (tmpl);
      return TRUE;
    }
    case GST_QUERY_LATENCY:{
      if (pad != self->srcpad)
        break;
      /* not real-time: nothing added to upstream's minimum, and no bound on the maximum */
      if (!gst_pad_peer_query (self->sinkpad, query))
        return FALSE;
      gboolean live;
      GstClockTime min, max;
      gst_query_parse_latency (query, &live, &min, &max);
      gst_query_set_latency (query, live, min, GST_CLOCK_TIME_NONE);
      return TRUE;
    }
    default:
      break;
  }
  return gst_pad_query_default (pad, parent, query);
}

/* ---- element ---- */

static GstStateChangeReturn
gst_seed_diffuse_change_state (GstElement * element, GstStateChange transition)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!load_model (self)) {
        unload_model (self);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      self->codebook_size = 0;
      self->caps_queued = FALSE;
      self->live = -1;
      self->n_items = 0;
      self->last_decode_s = 0;
      gst_segment_init (&self->segment, GST_FORMAT_TIME);
      g_mutex_lock (&self->lock);
      self->n_generated = self->n_dropped = 0;
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_seed_diffuse_parent_class)->change_state (element, transition);
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      g_mutex_lock (&self->lock);
      g_queue_clear_full (&self->items, (GDestroyNotify) item_free);
      self->n_items_waiting = 0;
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
gst_seed_diffuse_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STEPS:
      self->steps = g_value_get_int (value);
      break;
    case PROP_GUIDANCE_SCALE:
      self->guidance_scale = g_value_get_double (value);
      break;
    case PROP_NOISE_LEVEL:
      self->noise_level = g_value_get_int (value);
      break;
    case PROP_SEED:
      self->seed = g_value_get_int64 (value);
      break;
    default:
      if (!gst_anygpt_shared_set_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_seed_diffuse_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STEPS:
      g_value_set_int (value, self->steps);
      break;
    case PROP_GUIDANCE_SCALE:
      g_value_set_double (value, self->guidance_scale);
      break;
    case PROP_NOISE_LEVEL:
      g_value_set_int (value, self->noise_level);
      break;
    case PROP_SEED:
      g_value_set_int64 (value, self->seed);
      break;
    default:
      if (!gst_anygpt_shared_get_property (object, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_seed_diffuse_finalize (GObject * object)
{
  GstSeedDiffuse *self = GST_SEED_DIFFUSE (object);
  g_queue_clear_full (&self->items, (GDestroyNotify) item_free);
  unload_model (self);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (gst_seed_diffuse_parent_class)->finalize (object);
}

static void
gst_seed_diffuse_class_init (GstSeedDiffuseClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  /* model and device are read on NULL->READY, the generation settings per image */
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_seed_diffuse_set_property;
  gobject_class->get_property = gst_seed_diffuse_get_property;
  gobject_class->finalize = gst_seed_diffuse_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_seed_diffuse_change_state);

  gst_anygpt_shared_class_init (element_class,
          "SEED unCLIP GGUF (anygpt-convert seed-unclip), loaded on NULL->READY");
  g_object_class_install_property (gobject_class, PROP_STEPS,
      g_param_spec_int ("steps", "Steps",
          "Denoising steps (AnyGPT: 20; PNDM runs one UNet evaluation more)", 1, 1000,
          DEFAULT_STEPS, flags));
  g_object_class_install_property (gobject_class, PROP_GUIDANCE_SCALE,
      g_param_spec_double ("guidance-scale", "Guidance scale",
          "Classifier-free guidance (AnyGPT: 10); <= 1 runs the conditional branch only, "
          "half the work", 0.0, 100.0, DEFAULT_GUIDANCE_SCALE, flags));
  g_object_class_install_property (gobject_class, PROP_NOISE_LEVEL,
      g_param_spec_int ("noise-level", "Noise level",
          "DDPM noise added to the image embedding (AnyGPT: 0); more gives looser variations",
          0, 999, DEFAULT_NOISE_LEVEL, flags));
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_int64 ("seed", "Seed",
          "Seed of each image's noise, as torch.Generator('cpu').manual_seed(seed); -1: a "
          "fresh seed per image (reported in its seeddiffuse message)", -1, G_MAXINT64,
          DEFAULT_SEED, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "SEED unCLIP image decoder",
      "Codec/Decoder/Video", "AnyGPT image tokens (32 SEED codes) to pictures: SEED decode, "
      "Stable Diffusion 2.1 unCLIP with guidance, VAE decoder; one frame per item",
      "gst-anygpt");
}

static void
gst_seed_diffuse_init (GstSeedDiffuse * self)
{
  gst_anygpt_shared_instance_init (GST_ELEMENT (self));
  self->steps = DEFAULT_STEPS;
  self->guidance_scale = DEFAULT_GUIDANCE_SCALE;
  self->noise_level = DEFAULT_NOISE_LEVEL;
  self->seed = DEFAULT_SEED;
  self->srcresult = GST_FLOW_FLUSHING;
  self->flushing = TRUE;
  self->live = -1;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->items);
  gst_segment_init (&self->segment, GST_FORMAT_TIME);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_seed_diffuse_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_seed_diffuse_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_seed_diffuse_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_activatemode_function (self->srcpad, GST_DEBUG_FUNCPTR (src_activate_mode));
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_seed_diffuse_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
