/* seedtokenize in a GstHarness on the micro SEED tokenizer (argv[1], 56x56 input; argv[2] its
 * folder with the PyTorch reference's codes for a 320x240 frame), argv[3] a GGUF of another
 * architecture, argv[4] / argv[5] the 224x224 tiny tokenizer of tests/seed and its fixtures:
 *  - caps: every listed format accepted, others refused, fixed token caps out; 0x0 and absurd
 *    frame sizes end in an error that names the size;
 *  - codes: the 320x240 frame as RGB gives the reference's codes (PIL resize, PyTorch float32;
 *    only near ties may flip; micro on cpu and vulkan, tiny on cpu) and exactly the core's
 *    ag_seed_tokenizer_encode_image; an odd 319x239 crop (padded rows) in each of the 10
 *    formats gives the same codes as the core on the packed RGB pixels;
 *  - timestamps: PTS = the frame's, no duration, MARKER, the per-frame message;
 *  - interval on non-live input: 10 s at 30 fps, interval 2000 ms -> frames 0, 2, 4, 6, 8 s; a
 *    stream with a gap moves to the next grid point;
 *  - live input: while a frame is encoded (its push held by a probe) newer frames replace the
 *    waiting one: two outputs, the dropped ones counted in QoS messages and the next message;
 *  - latency query: a live upstream's latency plus one interval;
 *  - EOS right after a frame: its codes, then EOS; a flush while a frame is encoded and one
 *    waits: the frame after the flush comes out with its time;
 *  - PLAYING->NULL while tokenizing returns, the encode is aborted (the core's abort callback:
 *    an aborted message, no codes);
 *  - bad models (missing, another architecture, no path): NULL->READY fails naming them.
 * Under valgrind: fewer formats, no tiny model, no vulkan.
 *
 * usage: test_seedtokenize MICRO.gguf MICRO_DIR OTHER-ARCH.gguf TINY.gguf TINY_DIR */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <valgrind/valgrind.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seed_tokenizer.h"

#define N_CODES 32
#define NEAR_TIE 1e-3f
#define FW 320
#define FH 240

static const gchar *model_path, *micro_dir, *wrong_path, *tiny_path, *tiny_dir;
static guint8 *fixture_rgb;     /* [FH][FW][3], the same frame in both fixture folders */

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

/* A fixture file of exactly want bytes, or NULL (said on stderr). */
static gpointer
read_fixture (const gchar * dir, const gchar * name, gsize want)
{
  gchar *path = g_build_filename (dir, name, NULL), *data = NULL;
  gsize n = 0;
  if (!g_file_get_contents (path, &data, &n, NULL) || n != want) {
    g_printerr ("fixture %s: %" G_GSIZE_FORMAT " bytes, want %" G_GSIZE_FORMAT "\n", path, n,
        want);
    g_clear_pointer (&data, g_free);
  }
  g_free (path);
  return data;
}

/* ---- frames ---- */

/* The w x h crop at (0,0) of the fixture frame in format fmt, rows as GstVideoInfo lays them
 * out (padded to 4 bytes), the padding bytes and the x / alpha channel set to junk. */
static GstBuffer *
frame_in (GstVideoFormat fmt, gint w, gint h, GstClockTime pts)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, fmt, w, h);
  GstBuffer *b = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&info), NULL);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  memset (map.data, 0xa7, map.size);
  const gint ps = GST_VIDEO_INFO_COMP_PSTRIDE (&info, 0);
  const gint off[3] = { GST_VIDEO_INFO_COMP_POFFSET (&info, 0),
    GST_VIDEO_INFO_COMP_POFFSET (&info, 1), GST_VIDEO_INFO_COMP_POFFSET (&info, 2)
  };
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++) {
      guint8 *px = map.data + y * GST_VIDEO_INFO_PLANE_STRIDE (&info, 0) + x * ps;
      for (gint c = 0; c < 3; c++)
        px[off[c]] = fixture_rgb[(y * FW + x) * 3 + c];
    }
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = GST_SECOND / 30;
  return b;
}

static GstCaps *
video_caps (GstVideoFormat fmt, gint w, gint h)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, fmt, w, h);
  GST_VIDEO_INFO_FPS_N (&info) = 30;
  GST_VIDEO_INFO_FPS_D (&info) = 1;
  return gst_video_info_to_caps (&info);
}

/* The core's codes for the packed RGB w x h crop. */
static void
core_codes (const gchar * device, const gchar * model, gint w, gint h, gint32 * codes)
{
  ag_backend *be = ag_backend_new (g_str_equal (device, "cpu") ? AG_DEVICE_CPU :
      AG_DEVICE_VULKAN, -1, 1);
  fail_unless (be != NULL, "%s", ag_last_error ());
  ag_seed_tokenizer *m = ag_seed_tokenizer_load (be, model, NULL, NULL);
  fail_unless (m != NULL, "%s", ag_last_error ());
  guint8 *rgb = g_new (guint8, (gsize) w * h * 3);
  for (gint y = 0; y < h; y++)
    memcpy (rgb + (gsize) y * w * 3, fixture_rgb + (gsize) y * FW * 3, (gsize) w * 3);
  const ag_image_view v = { rgb, w, h, (size_t) w * 3, 3, 0, 1, 2 };
  fail_unless_equals_int (ag_seed_tokenizer_encode_image (m, &v, codes, NULL, NULL), 0);
  g_free (rgb);
  ag_seed_tokenizer_free (m);
  ag_backend_free (be);
}

/* ---- harness ---- */

/* seedtokenize on a model, one thread, not started */
static GstElement *
make_element (const gchar * model, const gchar * device)
{
  GstElement *e = gst_element_factory_make ("seedtokenize", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model-path", model, "threads", 1, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", device);
  return e;
}

/* e (its reference taken) in a playing harness with a bus, upstream live or not */
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

/* seedtokenize on the micro model with the properties set */
static GstHarness *
harness_for (const gchar * device, gboolean live, const gchar * first_prop, ...)
{
  GstElement *e = make_element (model_path, device);
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
  GstBus *bus = harness_bus (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);
}

static void
start_stream (GstHarness * h, GstVideoFormat fmt, gint w, gint ht)
{
  gst_harness_set_src_caps (h, video_caps (fmt, w, ht));
}

/* Pulls the next buffer (waits for it) and copies its codes. */
static GstBuffer *
pull_codes (GstHarness * h, gint32 * codes)
{
  GstBuffer *b = gst_harness_pull (h);
  fail_unless (b != NULL, "no output");
  fail_unless_equals_int (gst_buffer_get_size (b), N_CODES * 4);
  gst_buffer_extract (b, 0, codes, N_CODES * 4);
  return b;
}

/* Waits for EOS on the harness's sink side (the task pushes it). */
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

/* The messages of a type on the bus, in order; the others go to *others when given, else
 * are dropped (the caller frees the lists). */
static GList *
messages_of (GstHarness * h, GstMessageType type, const gchar * name, GList ** others)
{
  GList *l = NULL;
  GstMessage *m;
  while ((m = gst_bus_pop (harness_bus (h)))) {
    if (GST_MESSAGE_TYPE (m) == type && (!name ||
            gst_structure_has_name (gst_message_get_structure (m), name)))
      l = g_list_append (l, m);
    else if (others)
      *others = g_list_append (*others, m);
    else
      gst_message_unref (m);
  }
  return l;
}

/* The `seedtokenize` messages on the bus, in order. */
static GList *
frame_messages (GstHarness * h)
{
  return messages_of (h, GST_MESSAGE_ELEMENT, "seedtokenize", NULL);
}

static guint64
msg_u64 (GstMessage * m, const gchar * f)
{
  guint64 v = G_MAXUINT64;
  fail_unless (gst_structure_get_uint64 (gst_message_get_structure (m), f, &v), "no %s", f);
  return v;
}

static gboolean
msg_aborted (GstMessage * m)
{
  gboolean a = FALSE;
  fail_unless (gst_structure_get_boolean (gst_message_get_structure (m), "aborted", &a));
  return a;
}

/* ---- tests ---- */

static const GstVideoFormat formats[] = {
  GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx,
  GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA,
  GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR,
};

/* The error a caps event with this size posts: the push fails, the message names the size. */
static void
check_refused_size (gint w, gint ht, const gchar * want)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("s")));
  GstCaps *caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "RGB",
      "width", G_TYPE_INT, w, "height", G_TYPE_INT, ht, "framerate", GST_TYPE_FRACTION, 30, 1,
      NULL);
  fail_if (gst_pad_send_event (sink, gst_event_new_caps (caps)), "%dx%d accepted", w, ht);
  gst_caps_unref (caps);
  GstMessage *m = gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error for %dx%d", w, ht);
  GError *err = NULL;
  gst_message_parse_error (m, &err, NULL);
  g_print ("# %dx%d refused: %s\n", w, ht, err->message);
  fail_unless (strstr (err->message, want) != NULL, "want '%s' in: %s", want, err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_object_unref (sink);
  harness_teardown (h);
}

GST_START_TEST (test_caps)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstCaps *c = video_caps (formats[i], 64, 48);
    fail_unless (gst_pad_query_accept_caps (sink, c), "%s refused",
        gst_video_format_to_string (formats[i]));
    gst_caps_unref (c);
  }
  GstCaps *i420 = video_caps (GST_VIDEO_FORMAT_I420, 64, 48);
  GstCaps *gray = video_caps (GST_VIDEO_FORMAT_GRAY8, 64, 48);
  fail_if (gst_pad_query_accept_caps (sink, i420), "I420 accepted");
  fail_if (gst_pad_query_accept_caps (sink, gray), "GRAY8 accepted");
  gst_caps_unref (i420);
  gst_caps_unref (gray);

  GstCaps *src = gst_pad_peer_query_caps (h->sinkpad, NULL);
  GstStructure *s = gst_caps_get_structure (src, 0);
  gint cb = 0, k = 0, rn = -1, rd = 0;
  fail_unless (gst_caps_is_fixed (src));
  fail_unless_equals_string (gst_structure_get_string (s, "modality"), "image");
  fail_unless (gst_structure_get_int (s, "codebooks", &cb) && cb == 1);
  fail_unless (gst_structure_get_int (s, "codebook-size", &k) && k == 8192);
  fail_unless (gst_structure_get_fraction (s, "rate", &rn, &rd) && rn == 0 && rd == 1);
  gst_caps_unref (src);
  gst_object_unref (sink);
  harness_teardown (h);

  check_refused_size (0, 0, "0x0");
  check_refused_size (40000, 30, "40000x30");
  check_refused_size (30, 1 << 20, "30x1048576");
}

GST_END_TEST;

/* One RGB 320x240 frame: the reference's codes (near ties aside) and the core's exactly. */
static void
check_reference (const gchar * model, const gchar * dir, const gchar * device)
{
  gint32 *ref = read_fixture (dir, "resize.codes.i32", N_CODES * 4);
  gfloat *gap = read_fixture (dir, "resize.gap.f32", N_CODES * 4);
  fail_unless (ref && gap);
  GstHarness *h = harness_wrap (make_element (model, device), FALSE);
  start_stream (h, GST_VIDEO_FORMAT_RGB, FW, FH);
  fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, FW, FH, 0)),
      GST_FLOW_OK);
  gint32 got[N_CODES];
  gst_buffer_unref (pull_codes (h, got));
  gint same = 0, ties = 0, bad = 0;
  for (gint i = 0; i < N_CODES; i++) {
    same += got[i] == ref[i];
    ties += got[i] != ref[i] && gap[i] < NEAR_TIE;
    bad += got[i] != ref[i] && gap[i] >= NEAR_TIE;
  }
  g_print ("# %s, %s: 320x240 RGB frame, %d/%d codes as the PyTorch reference (PIL resize), "
      "%d near-tie flips, %d other\n", model, device, same, N_CODES, ties, bad);
  fail_unless (bad == 0 && same >= N_CODES * 95 / 100, "%s: %d same, %d bad", device, same, bad);
  if (g_str_equal (device, "cpu")) {
    gint32 core[N_CODES];
    core_codes ("cpu", model, FW, FH, core);
    fail_unless (memcmp (core, got, sizeof core) == 0, "element and core differ");
  }
  g_free (ref);
  g_free (gap);
  harness_teardown (h);
}

GST_START_TEST (test_reference_cpu)
{
  check_reference (model_path, micro_dir, "cpu");
  if (!under_valgrind ())       /* the 224x224 input of the real model */
    check_reference (tiny_path, tiny_dir, "cpu");
}

GST_END_TEST;

GST_START_TEST (test_reference_vulkan)
{
  if (under_valgrind () || !vulkan_present ()) {
    g_print ("# vulkan: %s, skipped\n", under_valgrind ()? "under valgrind" : "no device");
    return;
  }
  check_reference (model_path, micro_dir, "vulkan");
}

GST_END_TEST;

/* 319x239 (rows padded to 4 bytes in the 3-byte formats) in every format = RGB = the core on
 * the packed pixels */
GST_START_TEST (test_formats)
{
  const gint w = FW - 1, ht = FH - 1;
  gint32 core[N_CODES];
  core_codes ("cpu", model_path, w, ht, core);
  /* under valgrind: one 3-byte and two 4-byte layouts (ordering, x and alpha first / last) */
  const guint pick[] = { 0, 3, 8 };
  const guint n = under_valgrind ()? G_N_ELEMENTS (pick) : G_N_ELEMENTS (formats);
  for (guint i = 0; i < n; i++) {
    GstVideoFormat fmt = formats[under_valgrind ()? pick[i] : i];
    GstHarness *h = harness_for ("cpu", FALSE, NULL);
    start_stream (h, fmt, w, ht);
    fail_unless_equals_int (gst_harness_push (h, frame_in (fmt, w, ht, GST_SECOND)),
        GST_FLOW_OK);
    gint32 got[N_CODES];
    gst_buffer_unref (pull_codes (h, got));
    fail_unless (memcmp (got, core, sizeof core) == 0, "%s: codes differ from RGB / the core",
        gst_video_format_to_string (fmt));
    g_print ("# %s %dx%d: codes as RGB and the core\n", gst_video_format_to_string (fmt), w, ht);
    harness_teardown (h);
  }
}

GST_END_TEST;

/* PTS kept (in the frame's segment), no duration, MARKER; caps and segment before; the
 * message of each frame */
GST_START_TEST (test_timestamps)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("s")));
  GstCaps *caps = video_caps (GST_VIDEO_FORMAT_RGB, 32, 24);
  fail_unless (gst_harness_push_event (h, gst_event_new_caps (caps)));
  gst_caps_unref (caps);
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = 5 * GST_SECOND;
  seg.time = 5 * GST_SECOND;
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  const GstClockTime pts[] = { 5 * GST_SECOND, 5 * GST_SECOND + GST_SECOND / 3 };
  for (guint i = 0; i < G_N_ELEMENTS (pts); i++)
    fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, 32, 24,
                pts[i])), GST_FLOW_OK);
  /* the output stream: stream-start, caps, segment, then the items */
  GstEvent *ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_STREAM_START);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_CAPS);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_SEGMENT);
  const GstSegment *out_seg;
  gst_event_parse_segment (ev, &out_seg);
  fail_unless_equals_uint64 (out_seg->start, 5 * GST_SECOND);
  gst_event_unref (ev);
  for (guint i = 0; i < G_N_ELEMENTS (pts); i++) {
    gint32 codes[N_CODES];
    GstBuffer *b = pull_codes (h, codes);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), pts[i]);
    fail_if (GST_BUFFER_DURATION_IS_VALID (b), "an item has a duration");
    fail_unless (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER));
    for (gint c = 0; c < N_CODES; c++)
      fail_unless (codes[c] >= 0 && codes[c] < 8192);
    gst_buffer_unref (b);
  }
  GList *msgs = frame_messages (h);
  fail_unless_equals_int (g_list_length (msgs), 2);
  guint i = 0;
  for (GList * l = msgs; l; l = l->next, i++) {
    GstMessage *m = l->data;
    const GstStructure *s = gst_message_get_structure (m);
    gdouble enc = -1, wait = -1, lat = -1;
    fail_unless_equals_uint64 (msg_u64 (m, "pts"), pts[i]);
    fail_unless_equals_uint64 (msg_u64 (m, "running-time"), pts[i] - 5 * GST_SECOND);
    fail_unless_equals_uint64 (msg_u64 (m, "tokenized"), i + 1);
    fail_unless_equals_uint64 (msg_u64 (m, "dropped"), 0);
    fail_if (msg_aborted (m));
    fail_unless (gst_structure_get_double (s, "encode-ms", &enc) && enc > 0);
    fail_unless (gst_structure_get_double (s, "wait-ms", &wait) && wait >= 0);
    fail_unless (gst_structure_get_double (s, "latency-ms", &lat) && lat >= enc);
    g_print ("# frame %u: encode %.1f ms, waited %.1f ms\n", i, enc, wait);
  }
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);
  harness_teardown (h);
}

GST_END_TEST;

/* Pushes n frames at 30 fps from start (PTS from 0 + offset), returns the output PTS list. */
static GArray *
run_interval (guint interval_ms, const GstClockTime * pts, guint n)
{
  GstHarness *h = harness_for ("cpu", FALSE, "interval", interval_ms, NULL);
  start_stream (h, GST_VIDEO_FORMAT_RGB, 16, 12);
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, 16, 12,
                pts[i])), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  GstBuffer *b;
  while ((b = gst_harness_try_pull (h))) {
    g_array_append_val (out, GST_BUFFER_PTS (b));
    gst_buffer_unref (b);
  }
  GList *msgs = frame_messages (h);
  fail_unless_equals_int (g_list_length (msgs), out->len);
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);
  harness_teardown (h);
  return out;
}

GST_START_TEST (test_interval_file)
{
  /* 10 s at 30 fps, 2 s: exactly the frames at 0, 2, 4, 6, 8 s */
  GstClockTime pts[300];
  for (guint i = 0; i < 300; i++)
    pts[i] = gst_util_uint64_scale (i, GST_SECOND, 30);
  GArray *out = run_interval (2000, pts, 300);
  fail_unless_equals_int (out->len, 5);
  for (guint i = 0; i < 5; i++)
    fail_unless_equals_uint64 (g_array_index (out, GstClockTime, i), 2 * i * GST_SECOND);
  g_array_free (out, TRUE);
  /* a stream from 3.3 s with a gap: grid 3.3, 5.3, 7.3, 9.3; the frame after the gap (8.0)
   * takes the place of 7.3 */
  const GstClockTime gap[] = { 3300, 4000, 5200, 5300, 5400, 8000, 9000, 9299, 9300, 9400 };
  const GstClockTime want[] = { 3300, 5300, 8000, 9300 };
  GstClockTime pts2[G_N_ELEMENTS (gap)];
  for (guint i = 0; i < G_N_ELEMENTS (gap); i++)
    pts2[i] = gap[i] * GST_MSECOND;
  out = run_interval (2000, pts2, G_N_ELEMENTS (gap));
  fail_unless_equals_int (out->len, G_N_ELEMENTS (want));
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    fail_unless_equals_uint64 (g_array_index (out, GstClockTime, i), want[i] * GST_MSECOND);
  g_array_free (out, TRUE);
  /* interval 0: every frame */
  out = run_interval (0, pts, 4);
  fail_unless_equals_int (out->len, 4);
  g_array_free (out, TRUE);
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

/* Live: frame 0 is encoded and its push held; frames 1..5 come meanwhile: each replaces the
 * waiting one (4 dropped, each in a QoS message), then frame 5 is encoded. */
GST_START_TEST (test_live_drop)
{
  GstHarness *h = harness_for ("cpu", TRUE, NULL);
  start_stream (h, GST_VIDEO_FORMAT_RGB, 32, 24);
  Hold hd = { 0 };
  g_mutex_init (&hd.lock);
  g_cond_init (&hd.cond);
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, hold_probe, &hd, NULL);
  const GstClockTime dt = GST_SECOND / 30;
  fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, 32, 24, 0)),
      GST_FLOW_OK);
  g_mutex_lock (&hd.lock);
  while (!hd.entered)
    g_cond_wait (&hd.cond, &hd.lock);
  g_mutex_unlock (&hd.lock);
  /* the task is busy: none of these pushes waits */
  for (guint i = 1; i <= 5; i++)
    fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, 32, 24,
                i * dt)), GST_FLOW_OK);
  g_mutex_lock (&hd.lock);
  hd.release = TRUE;
  g_cond_broadcast (&hd.cond);
  g_mutex_unlock (&hd.lock);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  gint32 codes[N_CODES];
  GstBuffer *b = pull_codes (h, codes);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 0);
  gst_buffer_unref (b);
  b = pull_codes (h, codes);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 5 * dt);
  gst_buffer_unref (b);

  /* QoS: one per dropped frame, with its time and the running counts */
  guint n_qos = 0;
  GList *msgs = NULL, *qos = messages_of (h, GST_MESSAGE_QOS, NULL, &msgs);
  for (GList * l = qos; l; l = l->next) {
    GstMessage *m = l->data;
    gboolean live;
    guint64 rt, st, ts, dur, processed, dropped;
    GstFormat fmt;
    gst_message_parse_qos (m, &live, &rt, &st, &ts, &dur);
    gst_message_parse_qos_stats (m, &fmt, &processed, &dropped);
    n_qos++;
    fail_unless (live);
    fail_unless_equals_int (fmt, GST_FORMAT_BUFFERS);
    fail_unless_equals_uint64 (ts, n_qos * dt);
    fail_unless_equals_uint64 (dropped, n_qos);
    fail_unless_equals_uint64 (processed, 1);
  }
  g_list_free_full (qos, (GDestroyNotify) gst_message_unref);
  fail_unless_equals_int (n_qos, 4);
  for (GList * l = msgs, *next; l; l = next) {   /* keep the frame messages */
    next = l->next;
    if (GST_MESSAGE_TYPE (l->data) != GST_MESSAGE_ELEMENT ||
        !gst_structure_has_name (gst_message_get_structure (l->data), "seedtokenize")) {
      gst_message_unref (l->data);
      msgs = g_list_delete_link (msgs, l);
    }
  }
  fail_unless_equals_int (g_list_length (msgs), 2);
  fail_unless_equals_uint64 (msg_u64 (msgs->data, "dropped"), 0);
  fail_unless_equals_uint64 (msg_u64 (msgs->next->data, "dropped"), 4);
  fail_unless_equals_uint64 (msg_u64 (msgs->next->data, "tokenized"), 2);
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);
  gst_object_unref (src);
  harness_teardown (h);
  g_mutex_clear (&hd.lock);
  g_cond_clear (&hd.cond);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  GstHarness *h = harness_for ("cpu", TRUE, "interval", 2000, NULL);
  gst_harness_set_upstream_latency (h, 33 * GST_MSECOND);
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  GstQuery *q = gst_query_new_latency ();
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  fail_unless (gst_pad_query (src, q));
  gst_query_parse_latency (q, &live, &min, &max);
  gst_query_unref (q);
  fail_unless (live);
  fail_unless_equals_uint64 (min, 2033 * GST_MSECOND);
  harness_teardown (h);
  gst_object_unref (src);

  h = harness_for ("cpu", FALSE, "interval", 2000, NULL);
  src = gst_element_get_static_pad (h->element, "src");
  q = gst_query_new_latency ();
  fail_unless (gst_pad_query (src, q));
  gst_query_parse_latency (q, &live, &min, NULL);
  gst_query_unref (q);
  fail_if (live);
  fail_unless_equals_uint64 (min, 0);
  gst_object_unref (src);
  harness_teardown (h);
}

GST_END_TEST;

/* EOS right after a frame: its codes come first, then EOS */
GST_START_TEST (test_eos_mid_frame)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  start_stream (h, GST_VIDEO_FORMAT_BGRx, FW, FH);
  fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_BGRx, FW, FH,
              GST_SECOND)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  harness_teardown (h);
}

GST_END_TEST;

/* A flush while a frame is encoded and one waits: the encode stops (or its codes are dropped
 * by the flush), the waiting frame is dropped, and the frame after the flush comes out with
 * its time. */
GST_START_TEST (test_flush_mid_frame)
{
  GstHarness *h = harness_for ("cpu", FALSE, NULL);
  start_stream (h, GST_VIDEO_FORMAT_RGB, FW, FH);
  /* non-live: the second push returns once the task took the first frame */
  for (guint i = 0; i < 2; i++)
    fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, FW, FH,
                i * GST_SECOND / 30)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  fail_unless_equals_int (gst_harness_push (h, frame_in (GST_VIDEO_FORMAT_RGB, FW, FH,
              7 * GST_SECOND)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  /* the first frame's codes (when they were pushed before the flush) are gone with it */
  GstBuffer *b, *last = NULL;
  while ((b = gst_harness_try_pull (h))) {
    if (last)
      gst_buffer_unref (last);
    last = b;
  }
  fail_unless (last != NULL, "nothing after the flush");
  fail_unless_equals_uint64 (GST_BUFFER_PTS (last), 7 * GST_SECOND);
  gst_buffer_unref (last);
  GList *msgs = frame_messages (h);
  fail_unless_equals_int (g_list_length (msgs), 2);  /* the first frame's and the last's */
  fail_unless_equals_uint64 (msg_u64 (msgs->data, "pts"), 0);
  g_print ("# flush mid-frame: the first frame's encode %s\n",
      msg_aborted (msgs->data) ? "was aborted" : "had finished");
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);
  fail_if (gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR) != NULL);
  harness_teardown (h);
}

GST_END_TEST;

/* PLAYING->NULL right after the task took a frame (non-live: the push of a second frame returns
 * then): the state change returns, and the encode is aborted at the core's next stage (an
 * aborted message, no codes). The stop races the frame's resize (a 4K frame: tens of ms) and
 * first stage, so a few tries are allowed; one abort shows the callback works. Returns the
 * number of aborted tries. */
#define BIG_W 3840
#define BIG_H 2160

static guint
stop_while_tokenizing (const gchar * device, guint tries)
{
  guint aborted = 0;
  for (guint t = 0; t < tries && !aborted; t++) {
    GstHarness *h = harness_for (device, FALSE, NULL);
    start_stream (h, GST_VIDEO_FORMAT_RGB, BIG_W, BIG_H);
    GstBuffer *frame = frame_in (GST_VIDEO_FORMAT_RGB, FW, FH, 0);
    /* a large frame, the fixture tiled: its resize widens the window */
    GstBuffer *big = gst_buffer_new_allocate (NULL, BIG_W * BIG_H * 3, NULL);
    GstMapInfo src, dst;
    gst_buffer_map (frame, &src, GST_MAP_READ);
    gst_buffer_map (big, &dst, GST_MAP_WRITE);
    for (gint y = 0; y < BIG_H; y++)
      for (gint x = 0; x < BIG_W; x++)
        memcpy (dst.data + (y * BIG_W + x) * 3, src.data + (y % FH) * FW * 3 + (x % FW) * 3, 3);
    gst_buffer_unmap (frame, &src);
    gst_buffer_unmap (big, &dst);
    gst_buffer_unref (frame);
    GST_BUFFER_PTS (big) = 0;
    GstBuffer *next = gst_buffer_copy (big);
    GST_BUFFER_PTS (next) = GST_SECOND / 30;
    fail_unless_equals_int (gst_harness_push (h, big), GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_push (h, next), GST_FLOW_OK);
    gint64 t0 = g_get_monotonic_time ();
    fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    gdouble took = (g_get_monotonic_time () - t0) / 1e6;
    GList *msgs = frame_messages (h);
    fail_unless (g_list_length (msgs) <= 1, "the waiting frame was encoded");
    gboolean ab = msgs && msg_aborted (msgs->data);
    g_print ("# %s: PLAYING->NULL while tokenizing took %.3f s; encode %s\n", device, took,
        ab ? "aborted" : "had finished");
    if (ab) {
      aborted++;
      fail_unless_equals_int (gst_harness_buffers_received (h), 0);
    }
    g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);
    harness_teardown (h);
  }
  return aborted;
}

GST_START_TEST (test_stop_while_tokenizing)
{
  fail_unless (stop_while_tokenizing ("cpu", 5) > 0, "no encode was aborted in 5 tries");
  if (under_valgrind () || !vulkan_present ())
    return;
  /* lavapipe: an encode of the tiny model takes seconds, the stop comes within one stage */
  fail_unless (stop_while_tokenizing ("vulkan", 1) == 1, "vulkan: encode not aborted");
}

GST_END_TEST;

static void
check_refused_model (const gchar * path, const gchar * reason)
{
  GstElement *e = gst_element_factory_make ("seedtokenize", NULL);
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
  check_refused_model ("/nonexistent/seed.gguf", "not found");
  check_refused_model (wrong_path, "expected 'seed-tokenizer'");
  check_refused_model (NULL, "model-path");
}

GST_END_TEST;

static Suite *
seedtokenize_suite (void)
{
  Suite *s = suite_create ("seedtokenize");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_reference_cpu);
  tcase_add_test (tc, test_reference_vulkan);
  tcase_add_test (tc, test_formats);
  tcase_add_test (tc, test_timestamps);
  tcase_add_test (tc, test_interval_file);
  tcase_add_test (tc, test_live_drop);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_eos_mid_frame);
  tcase_add_test (tc, test_flush_mid_frame);
  tcase_add_test (tc, test_stop_while_tokenizing);
  tcase_add_test (tc, test_bad_models);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 6) {
    g_printerr ("usage: %s MICRO.gguf MICRO_DIR OTHER-ARCH.gguf TINY.gguf TINY_DIR\n", argv[0]);
    return 2;
  }
  model_path = argv[1];
  micro_dir = argv[2];
  wrong_path = argv[3];
  tiny_path = argv[4];
  tiny_dir = argv[5];
  gst_check_init (&argc, &argv);
  if (!(fixture_rgb = read_fixture (micro_dir, "resize.rgb", FW * FH * 3)))
    return 1;
  int failed = gst_check_run_suite (seedtokenize_suite (), "seedtokenize", __FILE__);
  g_free (fixture_rgb);
  return failed;
}
