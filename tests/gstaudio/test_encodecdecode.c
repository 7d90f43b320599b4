/* encodecdecode in a GstHarness on the tiny SpeechTokenizer model: sink caps follow the model,
 * output length frames * hop and samples equal to ag_seanet_decode (cpu; vulkan within a
 * tolerance when a device exists), fewer codebooks, timestamps with and without input PTS,
 * late items moved to now in live pipelines (whole and streamed),
 * hostile buffers (codes out of range, partial frames) as errors, empty buffers.
 *
 * usage: test_encodecdecode SPEECHTOKENIZER.gguf OTHER-ARCH.gguf */
#include "audio_util.h"

#define RATE 16000
#define HOP 320

static GstCaps *
token_caps (const gchar * modality, gint codebooks, gint size)
{
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING,
      modality, "codebooks", G_TYPE_INT, codebooks, "codebook-size", G_TYPE_INT, size,
      "rate", GST_TYPE_FRACTION, 50, 1, NULL);
}

static GstBuffer *
token_buffer (const gint32 * ids, gsize n, GstClockTime pts)
{
  GstBuffer *b = n ? gst_buffer_new_memdup (ids, n * sizeof (gint32)) : gst_buffer_new ();
  GST_BUFFER_PTS (b) = pts;
  return b;
}

/* ag_seanet_decode on cpu (threads 1) */
static gfloat *
core_decode (const gint32 * codes, gint64 frames, gint n_q)
{
  ag_backend *be = ag_backend_cpu_new (1);
  ag_seanet *m = ag_seanet_load (be, model_path, NULL, NULL);
  fail_unless (m != NULL, "%s", ag_last_error ());
  gfloat *audio = g_new (gfloat, frames * HOP);
  fail_unless (ag_seanet_decode (m, codes, frames, n_q, audio) == 0, "%s", ag_last_error ());
  ag_seanet_free (m);
  ag_backend_free (be);
  return audio;
}

/* interleave the first n_q of 8 layers */
static gint32 *
first_layers (const gint32 * codes8, gint64 frames, gint n_q)
{
  gint32 *c = g_new (gint32, frames * n_q);
  for (gint64 t = 0; t < frames; t++)
    for (gint q = 0; q < n_q; q++)
      c[t * n_q + q] = codes8[t * 8 + q];
  return c;
}

GST_START_TEST (test_caps)
{
  GstHarness *h = harness_for ("encodecdecode", "cpu", NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  GstCaps *caps = gst_pad_query_caps (sink, NULL);
  GstStructure *s = gst_caps_get_structure (caps, 0);
  gint k = 0;
  fail_unless_equals_string (gst_structure_get_string (s, "modality"), "speech");
  fail_unless (gst_structure_get_int (s, "codebook-size", &k) && k == 64);
  gst_caps_unref (caps);

  GstCaps *ok8 = token_caps ("speech", 8, 64), *ok1 = token_caps ("speech", 1, 64);
  GstCaps *too_many = token_caps ("speech", 9, 64), *wrong_k = token_caps ("speech", 8, 1024);
  GstCaps *music = token_caps ("music", 4, 64);
  fail_unless (gst_pad_query_accept_caps (sink, ok8));
  fail_unless (gst_pad_query_accept_caps (sink, ok1));
  fail_if (gst_pad_query_accept_caps (sink, too_many), "9 codebooks accepted");
  fail_if (gst_pad_query_accept_caps (sink, wrong_k), "codebook-size 1024 accepted");
  fail_if (gst_pad_query_accept_caps (sink, music), "music accepted by a speech model");

  GstPad *src = gst_element_get_static_pad (h->element, "src");
  GstCaps *out = gst_pad_query_caps (src, NULL);
  gint rate = 0;
  fail_unless (gst_caps_is_fixed (out));
  fail_unless (gst_structure_get_int (gst_caps_get_structure (out, 0), "rate", &rate) &&
      rate == RATE);
  gst_caps_unref (out);

  gst_caps_unref (ok8);
  gst_caps_unref (ok1);
  gst_caps_unref (too_many);
  gst_caps_unref (wrong_k);
  gst_caps_unref (music);
  gst_object_unref (src);
  gst_object_unref (sink);
  harness_teardown (h);
}

GST_END_TEST;

static void
check_decode (const gchar * device, gint n_q)
{
  const gsize n = RATE * 3 / 10;
  gfloat *x = make_speech (n, RATE, 150, 5);
  gint64 frames;
  gint32 *codes8 = core_encode (x, n, 8, &frames);
  gint32 *codes = first_layers (codes8, frames, n_q);
  gfloat *want = core_decode (codes, frames, n_q);

  GstHarness *h = harness_for ("encodecdecode", device, NULL);
  gst_harness_set_src_caps (h, token_caps ("speech", n_q, 64));
  fail_unless_equals_int (gst_harness_push (h, token_buffer (codes, frames * n_q, GST_SECOND)),
      GST_FLOW_OK);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_int (gst_buffer_get_size (b), frames * HOP * 4);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b),
      gst_util_uint64_scale (frames * HOP, GST_SECOND, RATE));
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  const gfloat *y = (const gfloat *) map.data;
  gdouble peak = 0, worst = 0;
  for (gint64 i = 0; i < frames * HOP; i++) {
    peak = MAX (peak, fabs (want[i]));
    worst = MAX (worst, fabs (y[i] - want[i]));
  }
  gst_buffer_unmap (b, &map);
  g_print ("# device %s, %d codebooks: max |diff| %.3g (peak %.3g)\n", device, n_q, worst, peak);
  fail_unless (peak > 0);
  if (g_str_equal (device, "cpu"))
    fail_unless (worst == 0, "cpu output differs from the core by %g", worst);
  else
    fail_unless (worst <= 1e-4 * peak + 1e-6, "vulkan differs by %g (peak %g)", worst, peak);
  gst_buffer_unref (b);
  g_free (want);
  g_free (codes);
  g_free (codes8);
  g_free (x);
  harness_teardown (h);
}

GST_START_TEST (test_decode_cpu)
{
  check_decode ("cpu", 8);
  check_decode ("cpu", 1);
  /* so the 1-codebook case above really differs from the full decode */
  gint32 c8[2 * 8], c1[2];
  for (gint i = 0; i < 16; i++)
    c8[i] = (i * 13 + 5) % 64;
  c1[0] = c8[0];
  c1[1] = c8[8];
  gfloat *a = core_decode (c8, 2, 8), *b = core_decode (c1, 2, 1);
  gdouble diff = 0;
  for (gint i = 0; i < 2 * HOP; i++)
    diff = MAX (diff, fabs (a[i] - b[i]));
  fail_unless (diff > 0, "1 and 8 codebooks decode the same");
  g_free (a);
  g_free (b);
}

GST_END_TEST;

GST_START_TEST (test_decode_vulkan)
{
  if (under_valgrind () || !vulkan_present ()) {
    g_print ("# device vulkan: %s, skipped\n", under_valgrind ()? "under valgrind" : "none found");
    return;
  }
  check_decode ("vulkan", 8);
}

GST_END_TEST;

/* without input PTS the output runs on from 0; empty buffers give nothing */
GST_START_TEST (test_timestamps_without_pts)
{
  gint32 ids[10 * 2] = { 0 };
  for (gint i = 0; i < 20; i++)
    ids[i] = (i * 7) % 64;
  GstHarness *h = harness_for ("encodecdecode", "cpu", NULL);
  gst_harness_set_src_caps (h, token_caps ("speech", 2, 64));
  fail_unless_equals_int (gst_harness_push (h, token_buffer (ids, 20, GST_CLOCK_TIME_NONE)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, token_buffer (ids, 0, GST_CLOCK_TIME_NONE)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, token_buffer (ids, 10, GST_CLOCK_TIME_NONE)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  GstBuffer *a = gst_harness_pull (h), *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (a), 0);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (a), 200 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 200 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 100 * GST_MSECOND);
  fail_unless_equals_int (gst_buffer_get_size (b), 5 * HOP * 4);
  gst_buffer_unref (a);
  gst_buffer_unref (b);
  harness_teardown (h);
}

GST_END_TEST;

/* Live pipelines: an item whose start has passed when its audio is ready moves to now (so a
 * syncing sink plays it whole); the rest of the item follows it; on time, or not live: kept. */
static GstClockTime
push_pull_pts (GstHarness * h, const gint32 * ids, gsize n, GstClockTime pts, gboolean marker)
{
  GstBuffer *b = token_buffer (ids, n, pts);
  if (marker)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  GstBuffer *out = NULL;
  GstClockTime t = GST_CLOCK_TIME_NONE;
  while ((b = gst_harness_try_pull (h))) {     /* streamed: the item's audio so far */
    if (!out)
      t = GST_BUFFER_PTS (b);
    out = b;
    gst_buffer_unref (b);
  }
  return t;
}

static void
check_live_restamp (guint stream_context)
{
  gint32 ids[10 * 2];
  for (gint i = 0; i < 20; i++)
    ids[i] = (i * 5) % 64;
  const GstClockTime d = 200 * GST_MSECOND;     /* 10 frames */
  GstHarness *h = harness_for ("encodecdecode", "cpu", "stream-context", stream_context, NULL);
  gst_harness_use_testclock (h);
  gst_harness_set_src_caps (h, token_caps ("speech", 2, 64));
  gst_harness_set_time (h, 5 * GST_SECOND);
  /* not live (no latency query said so): a late item keeps its time */
  fail_unless_equals_uint64 (push_pull_pts (h, ids, 20, 1 * GST_SECOND, TRUE), 1 * GST_SECOND);
  /* live from here */
  gst_harness_set_upstream_latency (h, 20 * GST_MSECOND);
  fail_unless (GST_CLOCK_TIME_IS_VALID (gst_harness_query_latency (h)));
  /* on time: kept */
  fail_unless_equals_uint64 (push_pull_pts (h, ids, 20, 10 * GST_SECOND, TRUE), 10 * GST_SECOND);
  /* 8 s late at 20 s: moved to 20 s; its next part (no MARKER before) follows it, even later */
  gst_harness_set_time (h, 20 * GST_SECOND);
  GstClockTime part1 = push_pull_pts (h, ids, 20, 12 * GST_SECOND, FALSE);
  gst_harness_set_time (h, 21 * GST_SECOND);
  GstClockTime part2 = push_pull_pts (h, ids, 20, 12 * GST_SECOND + d, TRUE);
  if (stream_context == 0) {
    fail_unless_equals_uint64 (part1, 20 * GST_SECOND);
    fail_unless_equals_uint64 (part2, 20 * GST_SECOND + d);
  } else {
    /* streamed: the 4 frames held back come with the end; the item starts at 20 s */
    fail_unless_equals_uint64 (part1, 20 * GST_SECOND);
    fail_unless_equals_uint64 (part2, 20 * GST_SECOND + d - 4 * 20 * GST_MSECOND);
  }
  /* the next item, late again: moved to now */
  gst_harness_set_time (h, 30 * GST_SECOND);
  fail_unless_equals_uint64 (push_pull_pts (h, ids, 20, 25 * GST_SECOND, TRUE), 30 * GST_SECOND);
  /* a flush forgets the shift; an item on time afterwards keeps its time */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  gst_harness_set_src_caps (h, token_caps ("speech", 2, 64));
  fail_unless_equals_uint64 (push_pull_pts (h, ids, 20, 40 * GST_SECOND, TRUE), 40 * GST_SECOND);
  harness_teardown (h);
}

GST_START_TEST (test_live_restamp)
{
  check_live_restamp (0);
  check_live_restamp (8);
}

GST_END_TEST;

static void
check_hostile (const gint32 * ids, gsize n_bytes, const gchar * expect)
{
  GstHarness *h = harness_for ("encodecdecode", "cpu", NULL);
  gst_harness_set_src_caps (h, token_caps ("speech", 2, 64));
  GstBuffer *buf = gst_buffer_new_memdup (ids, n_bytes);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_ERROR);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  GstMessage *m = gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error message");
  GError *err = NULL;
  gchar *dbg = NULL;
  gst_message_parse_error (m, &err, &dbg);
  g_print ("# refused: %s | %s\n", err->message, dbg);
  fail_unless (dbg && strstr (dbg, expect), "want '%s' in '%s'", expect, dbg);
  g_error_free (err);
  g_free (dbg);
  gst_message_unref (m);
  harness_teardown (h);
}

GST_START_TEST (test_hostile)
{
  gint32 ids[8] = { 1, 2, 3, 64, 5, 6, 7, 8 };
  check_hostile (ids, sizeof ids, "outside the codebook");
  gint32 neg[4] = { 1, -1, 3, 4 };
  check_hostile (neg, sizeof neg, "outside the codebook");
  gint32 ok[4] = { 1, 2, 3, 4 };
  check_hostile (ok, 12, "not a whole number");
  /* more than an hour of frames (16000/320 * 3600 = 180000) is refused before allocating */
  gsize big = 180001 * 2;
  gint32 *many = g_new0 (gint32, big);
  check_hostile (many, big * sizeof (gint32), "more than 3600 s");
  g_free (many);
}

GST_END_TEST;

static Suite *
encodecdecode_suite (void)
{
  Suite *s = suite_create ("encodecdecode");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_decode_cpu);
  tcase_add_test (tc, test_decode_vulkan);
  tcase_add_test (tc, test_timestamps_without_pts);
  tcase_add_test (tc, test_live_restamp);
  tcase_add_test (tc, test_hostile);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  parse_args (argc, argv);
  return gst_check_run_suite (encodecdecode_suite (), "encodecdecode", __FILE__);
}
