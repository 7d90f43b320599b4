/* seeddiffuse in a GstHarness on a micro SEED unCLIP model (argv[1]: 32 codes of 8192, UNet at
 * an 8x8 latent, 16x16 images; tests/reference/make_unclip_demo.py through anygpt-convert
 * seed-unclip), argv[2] a GGUF of another architecture:
 *  - caps: src caps fixed from the model in READY (RGB 16x16, framerate 0/1); image tokens
 *    accepted, speech / music / 4-codebook tokens refused; a codebook larger than the model's
 *    and non-image caps end in an error naming them;
 *  - the frame is byte for byte ag_unclip_generate's for the same codes and parameters (two
 *    settings of steps / guidance-scale / noise-level / seed: every property reaches the core);
 *  - timestamps: PTS and duration the item's, in its segment; an untimed item gives an untimed
 *    frame; caps and segment before;
 *  - progress: one seeddiffuse-progress message per UNet evaluation (PNDM: steps + 1), step
 *    1..of, elapsed not decreasing, eta not increasing; the seeddiffuse message after it;
 *  - seed=-1: each image reports a drawn seed, and seed=that seed makes the same frame again;
 *  - cancel: PLAYING->NULL and a flush while denoising stop after at most the UNet step in
 *    flight (counted by the progress messages), no frame, an aborted message; after the flush
 *    the next item comes out;
 *  - bad items (31 codes, a code of 8192, a negative code, 30 bytes): a warning naming the
 *    item and the problem, a GAP with its time, no frame; the next item is decoded;
 *  - live upstream: while an image is made (its push held), newer items replace the waiting
 *    one: two frames, the dropped items in QoS messages; latency query;
 *  - EOS after an item: its frame, then EOS; downstream answering EOS (pngenc snapshot=true):
 *    EOS sent downstream, the next items refused with EOS;
 *  - bad models (missing, another architecture, no path): NULL->READY fails naming them;
 *  - vulkan (when present, not under valgrind): one image, 2 steps, = the core on vulkan.
 *
 * usage: test_seeddiffuse MICRO.gguf OTHER-ARCH.gguf */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <valgrind/valgrind.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/unclip.h"

#define N_CODES 32
#define K 8192
#define SIDE 16

static const gchar *model_path, *wrong_path;

static gboolean
under_valgrind (void)
{
  return RUNNING_ON_VALGRIND != 0;
}

static gboolean
vulkan_present (void)
{
  ag_backend *be = ag_backend_new (AG_DEVICE_VULKAN, -1, 1);
  if (!be)
    return FALSE;
  ag_backend_free (be);
  return TRUE;
}

/* A fixed item: codes spread over the codebook, varied by `salt`. */
static void
make_codes (guint salt, gint32 * codes)
{
  for (gint i = 0; i < N_CODES; i++)
    codes[i] = (gint32) (((guint32) (i + 1) * 2654435761u + salt * 40503u) % K);
}

static GstBuffer *
item_buffer (const gint32 * codes, gsize n, GstClockTime pts, GstClockTime dur)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, n * 4, NULL);
  gst_buffer_fill (b, 0, codes, n * 4);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = dur;
  return b;
}

static GstBuffer *
item_in (guint salt, GstClockTime pts)
{
  gint32 codes[N_CODES];
  make_codes (salt, codes);
  return item_buffer (codes, N_CODES, pts, GST_CLOCK_TIME_NONE);
}

static GstCaps *
token_caps (const gchar * modality, gint codebooks, gint k)
{
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING,
      modality, "codebooks", G_TYPE_INT, codebooks, "codebook-size", G_TYPE_INT, k, "rate",
      GST_TYPE_FRACTION, 0, 1, NULL);
}

/* The core's image for the codes and parameters on a device. */
static guint8 *
core_image (const gchar * device, const gint32 * codes, const ag_unclip_params * p)
{
  ag_backend *be = ag_backend_new (g_str_equal (device, "cpu") ? AG_DEVICE_CPU :
      AG_DEVICE_VULKAN, -1, 1);
  fail_unless (be != NULL, "%s", ag_last_error ());
  ag_unclip *m = ag_unclip_load (be, model_path, NULL, NULL);
  fail_unless (m != NULL, "%s", ag_last_error ());
  fail_unless_equals_int (ag_unclip_info_of (m)->image_size, SIDE);
  guint8 *rgb = g_malloc (SIDE * SIDE * 3);
  fail_unless_equals_int (ag_unclip_generate (m, codes, N_CODES, p, NULL, NULL, rgb), 0);
  ag_unclip_free (m);
  ag_backend_free (be);
  return rgb;
}

/* ---- harness ---- */

static GstElement *
make_element (const gchar * model, const gchar * device)
{
  GstElement *e = gst_element_factory_make ("seeddiffuse", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model-path", model, "threads", 1, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", device);
  return e;
}

static GstHarness *
harness_wrap (GstElement * e, gboolean live)
{
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  gst_object_unref (bus);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_live (h, live);
  return h;
}

/* seeddiffuse on the micro model with the properties set; unless set: one step without
 * guidance (a single UNet evaluation of batch 1: cheap under valgrind) */
static GstHarness *
harness_for (const gchar * device, gboolean live, const gchar * first_prop, ...)
{
  GstElement *e = make_element (model_path, device);
  g_object_set (e, "steps", 1, "guidance-scale", 1.0, NULL);
  if (first_prop) {
    va_list ap;
    va_start (ap, first_prop);
    g_object_set_valist (G_OBJECT (e), first_prop, ap);
    va_end (ap);
  }
  return harness_wrap (e, live);
}

static GstBus *
harness_bus (GstHarness * h)
{
  GstBus *bus = gst_element_get_bus (h->element);
  gst_object_unref (bus);       /* the element keeps it */
  return bus;
}

static void
harness_teardown (GstHarness * h)
{
  gst_bus_set_flushing (harness_bus (h), TRUE);
  gst_harness_teardown (h);
}

static void
start_stream (GstHarness * h)
{
  gst_harness_set_src_caps (h, token_caps ("image", 1, K));
}

/* Pulls the next frame (waits for it) and copies its pixels. */
static GstBuffer *
pull_frame (GstHarness * h, guint8 * rgb)
{
  GstBuffer *b = gst_harness_pull (h);
  fail_unless (b != NULL, "no output");
  fail_unless_equals_int (gst_buffer_get_size (b), SIDE * SIDE * 3);   /* rows of 48 bytes */
  gst_buffer_extract (b, 0, rgb, SIDE * SIDE * 3);
  return b;
}

static void
wait_eos (GstHarness * h)
{
  for (;;) {
    GstEvent *ev = gst_harness_pull_event (h);
    fail_unless (ev != NULL, "no EOS");
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
    if (eos)
      return;
  }
}

/* The messages of a type (and structure name) on the bus, in order; the others are dropped. */
static GList *
messages_of (GstHarness * h, GstMessageType type, const gchar * name)
{
  GList *l = NULL;
  GstMessage *m;
  while ((m = gst_bus_pop (harness_bus (h)))) {
    if (GST_MESSAGE_TYPE (m) == type && (!name ||
            gst_structure_has_name (gst_message_get_structure (m), name)))
      l = g_list_append (l, m);
    else
      gst_message_unref (m);
  }
  return l;
}

static guint64
msg_u64 (GstMessage * m, const gchar * f)
{
  guint64 v = G_MAXUINT64;
  fail_unless (gst_structure_get_uint64 (gst_message_get_structure (m), f, &v), "no %s", f);
  return v;
}

static gint
msg_int (GstMessage * m, const gchar * f)
{
  gint v = -1;
  fail_unless (gst_structure_get_int (gst_message_get_structure (m), f, &v), "no %s", f);
  return v;
}

static gdouble
msg_double (GstMessage * m, const gchar * f)
{
  gdouble v = -1;
  fail_unless (gst_structure_get_double (gst_message_get_structure (m), f, &v), "no %s", f);
  return v;
}

static gboolean
msg_bool (GstMessage * m, const gchar * f)
{
  gboolean v = FALSE;
  fail_unless (gst_structure_get_boolean (gst_message_get_structure (m), f, &v), "no %s", f);
  return v;
}

static void
free_messages (GList * l)
{
  g_list_free_full (l, (GDestroyNotify) gst_message_unref);
}

/* ---- tests ---- */

GST_START_TEST (test_caps)
{
  GstElement *e = make_element (model_path, "cpu");
  GstPad *src = gst_element_get_static_pad (e, "src");
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  /* NULL: the template (any size) */
  GstCaps *c = gst_pad_query_caps (src, NULL);
  fail_if (gst_caps_is_fixed (c), "fixed caps before the model is loaded");
  gst_caps_unref (c);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  c = gst_pad_query_caps (src, NULL);
  fail_unless (gst_caps_is_fixed (c), "src caps in READY: %" GST_PTR_FORMAT, c);
  GstVideoInfo info;
  fail_unless (gst_video_info_from_caps (&info, c));
  fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&info), GST_VIDEO_FORMAT_RGB);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&info), SIDE);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&info), SIDE);
  fail_unless_equals_int (GST_VIDEO_INFO_FPS_N (&info), 0);
  gchar *str = gst_caps_to_string (c);
  g_print ("# src caps in READY: %s\n", str);
  g_free (str);
  gst_caps_unref (c);
  /* sink: image tokens of one codebook */
  struct
  {
    const gchar *mod;
    gint cb, k;
    gboolean ok;
  } cases[] = {
    {"image", 1, K, TRUE}, {"image", 1, 512, TRUE}, {"speech", 1, 1024, FALSE},
    {"music", 4, 2048, FALSE}, {"image", 4, K, FALSE},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    c = token_caps (cases[i].mod, cases[i].cb, cases[i].k);
    fail_unless_equals_int (gst_pad_query_accept_caps (sink, c), cases[i].ok);
    gst_caps_unref (c);
  }
  c = gst_pad_query_caps (sink, NULL);
  const GValue *k = gst_structure_get_value (gst_caps_get_structure (c, 0), "codebook-size");
  fail_unless (k && GST_VALUE_HOLDS_INT_RANGE (k) && gst_value_get_int_range_max (k) == K,
      "sink caps %" GST_PTR_FORMAT, c);
  gst_caps_unref (c);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
}

GST_END_TEST;

/* A caps event the element refuses: the push fails; want: what the error says (NULL: caps
 * the pad itself refuses, no error). */
static void
check_refused_caps (GstCaps * caps, const gchar * want)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("s")));
  fail_if (gst_pad_send_event (sink, gst_event_new_caps (caps)), "accepted %" GST_PTR_FORMAT,
      caps);
  GstMessage *m = gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR);
  gchar *str = gst_caps_to_string (caps);
  if (want) {
    fail_unless (m != NULL, "no error for %s", str);
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error (m, &err, &dbg);
    gchar *all = g_strdup_printf ("%s | %s", err->message, dbg);
    g_print ("# refused %s: %s\n", str, all);
    fail_unless (strstr (all, want) != NULL, "want '%s' in: %s", want, all);
    g_free (all);
    g_free (dbg);
    g_error_free (err);
    gst_message_unref (m);
  } else {
    g_print ("# refused by the pad: %s\n", str);
    fail_unless (m == NULL);
  }
  g_free (str);
  gst_caps_unref (caps);
  gst_object_unref (sink);
  harness_teardown (h);
}

GST_START_TEST (test_refused_caps)
{
  check_refused_caps (token_caps ("image", 1, K + 1), "codebook-size is 8193");
  check_refused_caps (token_caps ("speech", 1, 1024), NULL);
  check_refused_caps (token_caps ("image", 2, K), NULL);
}

GST_END_TEST;

/* One item through the element = the core's image for the same parameters, byte for byte. */
static void
check_core (const gchar * device, gint steps, gdouble guidance, gint level, gint64 seed,
    guint salt)
{
  GstHarness *h = harness_for (device, FALSE, "steps", steps, "guidance-scale", guidance,
      "noise-level", level, "seed", seed, NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, item_in (salt, 0)), GST_FLOW_OK);
  guint8 got[SIDE * SIDE * 3];
  gst_buffer_unref (pull_frame (h, got));
  harness_teardown (h);
  gint32 codes[N_CODES];
  make_codes (salt, codes);
  const ag_unclip_params p = { steps, (float) guidance, level, (uint64_t) seed };
  guint8 *want = core_image (device, codes, &p);
  gint diff = 0, lo = 255, hi = 0;
  for (gint i = 0; i < SIDE * SIDE * 3; i++) {
    diff += got[i] != want[i];
    lo = MIN (lo, got[i]);
    hi = MAX (hi, got[i]);
  }
  g_print ("# %s: steps %d, guidance %g, noise level %d, seed %" G_GINT64_FORMAT ": %d of %d "
      "bytes differ from ag_unclip_generate (pixels %d..%d)\n", device, steps, guidance, level,
      seed, diff, SIDE * SIDE * 3, lo, hi);
  fail_unless (diff == 0, "the element's frame is not the core's");
  fail_unless (hi > lo, "a flat image says nothing");
  g_free (want);
}

GST_START_TEST (test_core_identical)
{
  check_core ("cpu", under_valgrind ()? 2 : 3, 10.0, 0, 42, 1);
  if (!under_valgrind ())       /* the other properties: the same path, more valgrind minutes */
    check_core ("cpu", 2, 1.0, 250, 7, 2);
}

GST_END_TEST;

GST_START_TEST (test_vulkan)
{
  if (under_valgrind () || !vulkan_present ()) {
    g_print ("# vulkan: %s, skipped\n", under_valgrind ()? "under valgrind" : "no device");
    return;
  }
  check_core ("vulkan", 2, 10.0, 0, 5, 3);
}

GST_END_TEST;

/* PTS and duration kept (in the item's segment), untimed stays untimed; caps and segment
 * first */
GST_START_TEST (test_timestamps)
{
  GstHarness *h = harness_for ("cpu", FALSE, "steps", 1, "seed", (gint64) 1, NULL);
  fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("s")));
  GstCaps *caps = token_caps ("image", 1, K);
  fail_unless (gst_harness_push_event (h, gst_event_new_caps (caps)));
  gst_caps_unref (caps);
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = 5 * GST_SECOND;
  seg.time = 5 * GST_SECOND;
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  const GstClockTime pts[] = { 5 * GST_SECOND, 7 * GST_SECOND + GST_SECOND / 3,
    GST_CLOCK_TIME_NONE
  };
  const GstClockTime dur[] = { GST_SECOND, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE };
  for (guint i = 0; i < G_N_ELEMENTS (pts); i++) {
    gint32 codes[N_CODES];
    make_codes (i, codes);
    fail_unless_equals_int (gst_harness_push (h, item_buffer (codes, N_CODES, pts[i], dur[i])),
        GST_FLOW_OK);
  }
  GstEvent *ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_STREAM_START);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_CAPS);
  GstCaps *out;
  gst_event_parse_caps (ev, &out);
  GstVideoInfo vi;
  fail_unless (gst_video_info_from_caps (&vi, out));
  fail_unless (GST_VIDEO_INFO_WIDTH (&vi) == SIDE && GST_VIDEO_INFO_HEIGHT (&vi) == SIDE);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_SEGMENT);
  const GstSegment *out_seg;
  gst_event_parse_segment (ev, &out_seg);
  fail_unless_equals_uint64 (out_seg->start, 5 * GST_SECOND);
  gst_event_unref (ev);
  for (guint i = 0; i < G_N_ELEMENTS (pts); i++) {
    guint8 rgb[SIDE * SIDE * 3];
    GstBuffer *b = pull_frame (h, rgb);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), pts[i]);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), dur[i]);
    gst_buffer_unref (b);
  }
  GList *msgs = messages_of (h, GST_MESSAGE_ELEMENT, "seeddiffuse");
  fail_unless_equals_int (g_list_length (msgs), 3);
  guint i = 0;
  for (GList * l = msgs; l; l = l->next, i++) {
    fail_unless_equals_uint64 (msg_u64 (l->data, "pts"), pts[i]);
    fail_unless_equals_uint64 (msg_u64 (l->data, "duration"), dur[i]);
    fail_unless_equals_uint64 (msg_u64 (l->data, "item"), i + 1);
    fail_unless_equals_uint64 (msg_u64 (l->data, "generated"), i + 1);
  }
  free_messages (msgs);
  harness_teardown (h);
}

GST_END_TEST;

/* steps 3 (PNDM: 4 evaluations): 4 progress messages in order, then the image's message; two
 * images (under valgrind one of 2 steps: 3 evaluations) */
GST_START_TEST (test_progress)
{
  const gint steps = under_valgrind ()? 2 : 3, evals = steps + 1;
  GstHarness *h = harness_for ("cpu", FALSE, "steps", steps, "seed", (gint64) 11, NULL);
  const guint n_items = under_valgrind ()? 1 : 2;
  start_stream (h);
  for (guint n = 0; n < n_items; n++)
    fail_unless_equals_int (gst_harness_push (h, item_in (n, n * GST_SECOND)), GST_FLOW_OK);
  for (guint n = 0; n < n_items; n++) {
    guint8 rgb[SIDE * SIDE * 3];
    gst_buffer_unref (pull_frame (h, rgb));
  }
  GList *all = messages_of (h, GST_MESSAGE_ELEMENT, NULL);
  gint step = 0, n_done = 0;
  gdouble elapsed = 0, eta = G_MAXDOUBLE;
  for (GList * l = all; l; l = l->next) {
    GstMessage *m = l->data;
    const GstStructure *s = gst_message_get_structure (m);
    if (gst_structure_has_name (s, "seeddiffuse-progress")) {
      fail_unless_equals_int (msg_int (m, "step"), step + 1);
      fail_unless_equals_int (msg_int (m, "of"), evals);
      fail_unless_equals_uint64 (msg_u64 (m, "item"), n_done + 1);
      fail_unless_equals_uint64 (msg_u64 (m, "pts"), n_done * GST_SECOND);
      fail_unless_equals_uint64 (msg_u64 (m, "seed"), 11);
      gdouble el = msg_double (m, "elapsed"), et = msg_double (m, "eta");
      fail_unless (el >= elapsed && el > 0, "elapsed %g after %g", el, elapsed);
      fail_unless (et <= eta && et >= 0, "eta %g after %g", et, eta);
      g_print ("# item %d step %d/%d: elapsed %.4f s, eta %.4f s\n", n_done + 1, step + 1,
          evals, el, et);
      step++;
      elapsed = el;
      eta = et;
    } else if (gst_structure_has_name (s, "seeddiffuse")) {
      fail_unless_equals_int (step, evals);
      fail_unless_equals_int (msg_int (m, "evaluations"), evals);
      fail_unless_equals_int (msg_int (m, "steps"), steps);
      fail_unless_equals_uint64 (msg_u64 (m, "seed"), 11);
      fail_unless_equals_int (msg_int (m, "width"), SIDE);
      fail_if (msg_bool (m, "aborted"));
      gdouble secs = msg_double (m, "seconds"), dec = msg_double (m, "decode-seconds");
      fail_unless (secs >= elapsed && dec >= 0 && dec <= secs, "seconds %g, decode %g", secs,
          dec);
      g_print ("# item %d: %.4f s (VAE %.4f s)\n", n_done + 1, secs, dec);
      n_done++;
      step = 0;
      elapsed = 0;
      eta = G_MAXDOUBLE;
    }
  }
  fail_unless_equals_int (n_done, n_items);
  free_messages (all);
  harness_teardown (h);
}

GST_END_TEST;

/* seed=-1: a seed per image, in its message; that seed makes the same frame */
GST_START_TEST (test_random_seed)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  start_stream (h);
  guint8 img0[SIDE * SIDE * 3], img1[SIDE * SIDE * 3], again[SIDE * SIDE * 3];
  for (guint n = 0; n < 2; n++)
    fail_unless_equals_int (gst_harness_push (h, item_in (4, n * GST_SECOND)), GST_FLOW_OK);
  gst_buffer_unref (pull_frame (h, img0));
  gst_buffer_unref (pull_frame (h, img1));
  GList *msgs = messages_of (h, GST_MESSAGE_ELEMENT, "seeddiffuse");
  fail_unless_equals_int (g_list_length (msgs), 2);
  guint64 s0 = msg_u64 (msgs->data, "seed"), s1 = msg_u64 (msgs->next->data, "seed");
  free_messages (msgs);
  harness_teardown (h);
  g_print ("# seed=-1 drew %" G_GUINT64_FORMAT " and %" G_GUINT64_FORMAT "\n", s0, s1);
  fail_unless (s0 <= G_MAXINT64 && s1 <= G_MAXINT64 && s0 != s1);
  fail_unless (memcmp (img0, img1, sizeof img0) != 0, "two seeds, one image");

  h = harness_for ("cpu", FALSE, "seed", (gint64) s0, NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, item_in (4, 0)), GST_FLOW_OK);
  gst_buffer_unref (pull_frame (h, again));
  harness_teardown (h);
  fail_unless (memcmp (img0, again, sizeof img0) == 0, "seed %" G_GUINT64_FORMAT
      " does not reproduce its image", s0);
}

GST_END_TEST;

/* Counts the progress messages as they are posted (from the task). */
typedef struct
{
  gint steps;                   /* atomic */
  GMutex lock;
  GCond cond;
} StepCount;

static GstBusSyncReply
count_steps (GstBus * bus, GstMessage * m, gpointer user)
{
  StepCount *c = user;
  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT &&
      gst_structure_has_name (gst_message_get_structure (m), "seeddiffuse-progress")) {
    g_mutex_lock (&c->lock);
    g_atomic_int_inc (&c->steps);
    g_cond_broadcast (&c->cond);
    g_mutex_unlock (&c->lock);
  }
  return GST_BUS_PASS;
}

/* A long image (500 steps) in a harness; returns once `after` steps ran. */
static GstHarness *
start_long_image (StepCount * c, gint after)
{
  GstHarness *h = harness_for ("cpu", FALSE, "steps", 500, "seed", (gint64) 3, NULL);
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  c->steps = 0;
  gst_bus_set_sync_handler (harness_bus (h), count_steps, c, NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, item_in (5, 0)), GST_FLOW_OK);
  g_mutex_lock (&c->lock);
  while (g_atomic_int_get (&c->steps) < after)
    g_cond_wait (&c->cond, &c->lock);
  g_mutex_unlock (&c->lock);
  return h;
}

/* The image's seeddiffuse message says aborted; it ran fewer steps than planned. */
static void
check_aborted (GstHarness * h, gint n_before, gint n_after, gdouble took, const gchar * how)
{
  GList *msgs = messages_of (h, GST_MESSAGE_ELEMENT, "seeddiffuse");
  fail_unless (msgs != NULL, "no message for the stopped image");
  GstMessage *m = msgs->data;
  fail_unless (msg_bool (m, "aborted"));
  gdouble secs = msg_double (m, "seconds");
  g_print ("# %s after %d steps (%.2f ms a step): returned in %.2f ms, %d step(s) after the "
      "request\n", how, n_before, secs * 1e3 / n_after, took * 1e3, n_after - n_before);
  fail_unless (n_after - n_before <= 1, "%d steps ran after the stop", n_after - n_before);
  fail_unless (n_after < 501);
  free_messages (msgs);
}

GST_START_TEST (test_stop_while_denoising)
{
  StepCount c;
  GstHarness *h = start_long_image (&c, under_valgrind ()? 1 : 3);
  gint n0 = g_atomic_int_get (&c.steps);
  gint64 t0 = g_get_monotonic_time ();
  fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gdouble took = (g_get_monotonic_time () - t0) / 1e6;
  gint n1 = g_atomic_int_get (&c.steps);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  check_aborted (h, n0, n1, took, "PLAYING->NULL");
  gst_bus_set_sync_handler (harness_bus (h), NULL, NULL, NULL);
  harness_teardown (h);
  g_mutex_clear (&c.lock);
  g_cond_clear (&c.cond);
}

GST_END_TEST;

/* A flush while denoising and one item waiting: the image stops, the waiting item is dropped,
 * the item after the flush comes out with its time. */
GST_START_TEST (test_flush_while_denoising)
{
  StepCount c;
  GstHarness *h = start_long_image (&c, under_valgrind ()? 1 : 2);
  /* the task has the first item: this one waits */
  fail_unless_equals_int (gst_harness_push (h, item_in (6, GST_SECOND)), GST_FLOW_OK);
  gint n0 = g_atomic_int_get (&c.steps);
  gint64 t0 = g_get_monotonic_time ();
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  gdouble took = (g_get_monotonic_time () - t0) / 1e6;
  gint n1 = g_atomic_int_get (&c.steps);
  check_aborted (h, n0, n1, took, "flush");
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  g_object_set (h->element, "steps", 1, NULL);
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  fail_unless_equals_int (gst_harness_push (h, item_in (7, 9 * GST_SECOND)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  guint8 rgb[SIDE * SIDE * 3];
  GstBuffer *b = pull_frame (h, rgb);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 9 * GST_SECOND);
  gst_buffer_unref (b);
  GList *msgs = messages_of (h, GST_MESSAGE_ELEMENT, "seeddiffuse");
  fail_unless_equals_int (g_list_length (msgs), 1);     /* the waiting item never started */
  fail_if (msg_bool (msgs->data, "aborted"));
  fail_unless_equals_uint64 (msg_u64 (msgs->data, "pts"), 9 * GST_SECOND);
  free_messages (msgs);
  fail_if (gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR) != NULL);
  gst_bus_set_sync_handler (harness_bus (h), NULL, NULL, NULL);
  harness_teardown (h);
  g_mutex_clear (&c.lock);
  g_cond_clear (&c.cond);
}

GST_END_TEST;

/* Bad items: a warning naming the item and the problem, a GAP with its time, no frame; the
 * element goes on with the next item. */
GST_START_TEST (test_bad_items)
{
  GstHarness *h = harness_for ("cpu", FALSE, "steps", 1, NULL);
  start_stream (h);
  gint32 codes[N_CODES];
  make_codes (8, codes);
  struct
  {
    gsize bytes;
    gint index;
    gint32 value;
    const gchar *want;
  } bad[] = {
    {31 * 4, -1, 0, "item 1 skipped: 31 codes, an image item has 32"},
    {N_CODES * 4, 5, K, "item 2 skipped: code 8192 at index 5 is outside the codebook [0, 8192)"},
    {N_CODES * 4, 31, -3, "item 3 skipped: code -3 at index 31"},
    {30, -1, 0, "item 4 skipped: 30 bytes is not a whole number of int32 codes"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    gint32 c[N_CODES];
    memcpy (c, codes, sizeof c);
    if (bad[i].index >= 0)
      c[bad[i].index] = bad[i].value;
    GstBuffer *b = gst_buffer_new_allocate (NULL, bad[i].bytes, NULL);
    gst_buffer_fill (b, 0, c, bad[i].bytes);
    GST_BUFFER_PTS (b) = (i + 1) * GST_SECOND;
    GST_BUFFER_DURATION (b) = GST_SECOND / 2;
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
  fail_unless_equals_int (gst_harness_push (h, item_buffer (codes, N_CODES, 10 * GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  /* the GAPs of the skipped items, in order, then the frame */
  guint gaps = 0;
  for (;;) {
    GstEvent *ev = gst_harness_pull_event (h);
    fail_unless (ev != NULL);
    GstEventType t = GST_EVENT_TYPE (ev);
    if (t == GST_EVENT_GAP) {
      GstClockTime ts, d;
      gst_event_parse_gap (ev, &ts, &d);
      gaps++;
      fail_unless_equals_uint64 (ts, gaps * GST_SECOND);
      fail_unless_equals_uint64 (d, GST_SECOND / 2);
    }
    gst_event_unref (ev);
    if (t == GST_EVENT_EOS)
      break;
  }
  fail_unless_equals_int (gaps, G_N_ELEMENTS (bad));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  guint8 rgb[SIDE * SIDE * 3];
  GstBuffer *b = pull_frame (h, rgb);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 10 * GST_SECOND);
  gst_buffer_unref (b);
  GList *warnings = NULL, *l;
  GstMessage *m;
  while ((m = gst_bus_pop (harness_bus (h)))) {
    fail_if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR, "an error for a bad item");
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING)
      warnings = g_list_append (warnings, m);
    else
      gst_message_unref (m);
  }
  fail_unless_equals_int (g_list_length (warnings), G_N_ELEMENTS (bad));
  guint i = 0;
  for (l = warnings; l; l = l->next, i++) {
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_warning (l->data, &err, &dbg);
    g_print ("# warning: %s | %s\n", err->message, dbg);
    fail_unless (strstr (err->message, bad[i].want) != NULL, "want '%s' in: %s", bad[i].want,
        err->message);
    gchar *at = g_strdup_printf ("pts 0:00:0%u", i + 1);
    fail_unless (strstr (dbg, at) != NULL, "want '%s' in: %s", at, dbg);
    g_free (at);
    g_free (dbg);
    g_error_free (err);
  }
  free_messages (warnings);
  harness_teardown (h);
}

GST_END_TEST;

/* Holds the first buffer the element pushes until released, so the task is busy. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean entered, release;
} Hold;

static GstPadProbeReturn
hold_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user)
{
  Hold *hd = user;
  g_mutex_lock (&hd->lock);
  hd->entered = TRUE;
  g_cond_broadcast (&hd->cond);
  while (!hd->release)
    g_cond_wait (&hd->cond, &hd->lock);
  g_mutex_unlock (&hd->lock);
  return GST_PAD_PROBE_REMOVE;
}

/* Live: item 1's frame is held; items 2..4 come meanwhile: 2 waits, 3 and 4 replace the waiting
 * one (2 dropped, each in a QoS message), then item 4 is made. */
GST_START_TEST (test_live_drop)
{
  GstHarness *h = harness_for ("cpu", TRUE, "steps", 1, NULL);
  start_stream (h);
  Hold hd = { 0 };
  g_mutex_init (&hd.lock);
  g_cond_init (&hd.cond);
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, hold_probe, &hd, NULL);
  fail_unless_equals_int (gst_harness_push (h, item_in (1, 0)), GST_FLOW_OK);
  g_mutex_lock (&hd.lock);
  while (!hd.entered)
    g_cond_wait (&hd.cond, &hd.lock);
  g_mutex_unlock (&hd.lock);
  for (guint i = 2; i <= 4; i++)        /* the task is busy: none of these pushes waits */
    fail_unless_equals_int (gst_harness_push (h, item_in (i, i * GST_SECOND)), GST_FLOW_OK);
  g_mutex_lock (&hd.lock);
  hd.release = TRUE;
  g_cond_broadcast (&hd.cond);
  g_mutex_unlock (&hd.lock);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  guint8 rgb[SIDE * SIDE * 3];
  GstBuffer *b = pull_frame (h, rgb);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 0);
  gst_buffer_unref (b);
  b = pull_frame (h, rgb);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 4 * GST_SECOND);
  gst_buffer_unref (b);
  GList *qos = messages_of (h, GST_MESSAGE_QOS, NULL);
  fail_unless_equals_int (g_list_length (qos), 2);
  guint n = 0;
  for (GList * l = qos; l; l = l->next) {
    gboolean live;
    guint64 rt, st, ts, dur, processed, dropped;
    GstFormat fmt;
    gst_message_parse_qos (l->data, &live, &rt, &st, &ts, &dur);
    gst_message_parse_qos_stats (l->data, &fmt, &processed, &dropped);
    n++;
    fail_unless (live);
    fail_unless_equals_uint64 (ts, (n + 1) * GST_SECOND);
    fail_unless_equals_uint64 (dropped, n);
  }
  free_messages (qos);
  gst_object_unref (src);
  harness_teardown (h);
  g_mutex_clear (&hd.lock);
  g_cond_clear (&hd.cond);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  GstHarness *h = harness_for ("cpu", TRUE, NULL);
  gst_harness_set_upstream_latency (h, 33 * GST_MSECOND);
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  GstQuery *q = gst_query_new_latency ();
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  fail_unless (gst_pad_query (src, q));
  gst_query_parse_latency (q, &live, &min, &max);
  gst_query_unref (q);
  fail_unless (live);
  fail_unless_equals_uint64 (min, 33 * GST_MSECOND);
  fail_if (GST_CLOCK_TIME_IS_VALID (max), "a bounded maximum latency");
  gst_object_unref (src);
  harness_teardown (h);

  h = harness_for ("cpu", FALSE, NULL);
  src = gst_element_get_static_pad (h->element, "src");
  q = gst_query_new_latency ();
  fail_unless (gst_pad_query (src, q));
  gst_query_parse_latency (q, &live, &min, NULL);
  gst_query_unref (q);
  fail_if (live);
  gst_object_unref (src);
  harness_teardown (h);
}

GST_END_TEST;

/* EOS right after an item: its frame, then EOS */
GST_START_TEST (test_eos_after_item)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, item_in (9, 0)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  harness_teardown (h);
}

GST_END_TEST;

static GstPadProbeReturn
answer_eos (GstPad * pad, GstPadProbeInfo * info, gpointer user)
{
  gst_buffer_unref (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_DATA (info) = NULL;
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_EOS;
  return GST_PAD_PROBE_HANDLED;
}

/* Downstream answers the first frame with EOS (as pngenc snapshot=true): the element, being
 * the streaming thread, sends EOS downstream; the next item is refused with EOS. */
GST_START_TEST (test_downstream_eos)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  start_stream (h);
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, answer_eos, NULL, NULL);
  fail_unless_equals_int (gst_harness_push (h, item_in (10, 0)), GST_FLOW_OK);
  wait_eos (h);
  /* the task stopped: a further item is refused (the second push may still be taken while
   * the first image is made, the third cannot) */
  GstFlowReturn r1 = gst_harness_push (h, item_in (11, GST_SECOND));
  GstFlowReturn r2 = gst_harness_push (h, item_in (12, 2 * GST_SECOND));
  fail_unless (r1 == GST_FLOW_EOS || r2 == GST_FLOW_EOS, "pushes after EOS: %s, %s",
      gst_flow_get_name (r1), gst_flow_get_name (r2));
  fail_if (gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR) != NULL);
  gst_object_unref (src);
  harness_teardown (h);
}

GST_END_TEST;

static void
check_refused_model (const gchar * path, const gchar * reason)
{
  GstElement *e = gst_element_factory_make ("seeddiffuse", NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  if (path)
    g_object_set (e, "model-path", path, "device", 1, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error message for %s", path);
  GError *err = NULL;
  gchar *dbg = NULL;
  gst_message_parse_error (m, &err, &dbg);
  gchar *all = g_strdup_printf ("%s | %s", err->message, dbg ? dbg : "");
  g_print ("# refused %s: %s\n", path ? path : "(none)", all);
  if (path)
    fail_unless (strstr (all, path) != NULL, "path not named: %s", all);
  fail_unless (strstr (all, reason) != NULL, "want '%s' in: %s", reason, all);
  g_free (all);
  g_free (dbg);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_START_TEST (test_bad_models)
{
  check_refused_model ("/nonexistent/seed-unclip.gguf", "not found");
  check_refused_model (wrong_path, "expected 'seed-unclip'");
  check_refused_model (NULL, "model-path");
}

GST_END_TEST;

static Suite *
seeddiffuse_suite (void)
{
  Suite *s = suite_create ("seeddiffuse");
  TCase *tc = tcase_create ("general");
  /* under valgrind a 500-step image's first step alone can take a minute on a busy machine */
  tcase_set_timeout (tc, under_valgrind ()? 600 : 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_refused_caps);
  tcase_add_test (tc, test_core_identical);
  tcase_add_test (tc, test_vulkan);
  tcase_add_test (tc, test_timestamps);
  tcase_add_test (tc, test_progress);
  tcase_add_test (tc, test_random_seed);
  tcase_add_test (tc, test_stop_while_denoising);
  tcase_add_test (tc, test_flush_while_denoising);
  tcase_add_test (tc, test_bad_items);
  tcase_add_test (tc, test_live_drop);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_eos_after_item);
  tcase_add_test (tc, test_downstream_eos);
  tcase_add_test (tc, test_bad_models);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 3) {
    g_printerr ("usage: %s MICRO.gguf OTHER-ARCH.gguf\n", argv[0]);
    return 2;
  }
  model_path = argv[1];
  wrong_path = argv[2];
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (seeddiffuse_suite (), "seeddiffuse", __FILE__);
}
