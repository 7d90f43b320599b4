/* Streamed speech through the elements, on the tiny SoundStorm and SpeechTokenizer GGUFs:
 *  - soundstorm chunk=10: an item arriving in buffers of 7 frames (MARKER on the last) comes out
 *    as chunks of 10, 10, 10 and a shorter 7, MARKER on the last only, times running on from
 *    the item's PTS, codes equal to the core's ag_soundstorm_stream; the next item starts
 *    afresh (same tokens, same codes);
 *  - an item without MARKER ends at EOS (its rest goes out before the EOS);
 *  - cancel mid-stream: PLAYING->NULL while a long item is generated stops within a chunk;
 *  - encodecdecode stream-context=16: the chunks of an item decoded as one signal equal the
 *    core's whole decode of the item within 1e-5 of its peak, sample count and times exact.
 * argv: SOUNDSTORM.gguf SPEECHTOKENIZER.gguf */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <math.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"
#include "anygpt/soundstorm.h"

static const gchar *ss_path, *st_path;

static GstCaps *
speech_caps (gint codebooks, gint size)
{
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING,
      "speech", "codebooks", G_TYPE_INT, codebooks, "codebook-size", G_TYPE_INT, size,
      "rate", GST_TYPE_FRACTION, 50, 1, NULL);
}

static GstBuffer *
tokens (const gint32 * ids, gsize n, GstClockTime pts, gboolean marker)
{
  GstBuffer *b = gst_buffer_new_memdup (ids, n * 4);
  GST_BUFFER_PTS (b) = pts;
  if (marker)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
  return b;
}

static GstHarness *
make_soundstorm (guint chunk)
{
  GstElement *e = gst_element_factory_make ("soundstorm", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model-path", ss_path, "threads", 1, "seed", (guint64) 5, "chunk", chunk,
      NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps (h, speech_caps (1, 1024));
  return h;
}

/* The core's chunked codes of sem[n] (chunk, seed 5, steps 3, greedy): [n][8] */
static gint32 *
core_chunks (const gint32 * sem, gsize n, gsize chunk)
{
  ag_backend *be = ag_backend_cpu_new (1);
  ag_soundstorm *m = ag_soundstorm_load (be, ss_path, NULL, NULL);
  fail_unless (m != NULL, "%s", ag_last_error ());
  ag_soundstorm_stream *s = ag_soundstorm_stream_new (m, (int64_t) chunk, NULL, 0, 3, 5, TRUE);
  fail_unless (s && ag_soundstorm_stream_push (s, sem, (int64_t) n) == 0);
  gint32 *out = g_new (gint32, n * 8);
  gsize done = 0;
  int64_t k;
  while ((k = ag_soundstorm_stream_next (s, TRUE, out + done * 8)) > 0)
    done += (gsize) k;
  fail_unless (k == 0 && done == n);
  ag_soundstorm_stream_free (s);
  ag_soundstorm_free (m);
  ag_backend_free (be);
  return out;
}

/* n chunks of sizes[] (the item's chunks from `first` on, of `total`) */
static void
pull_chunks (GstHarness * h, const gsize * sizes, guint first_index, guint n, guint total,
    const gint32 * want, GstClockTime pts)
{
  gsize at = 0;
  for (guint i = 0; i < n; i++) {
    GstBuffer *b = gst_harness_pull (h);
    fail_unless (b != NULL);
    GstMapInfo m;
    gst_buffer_map (b, &m, GST_MAP_READ);
    fail_unless_equals_uint64 (m.size, sizes[i] * 8 * 4);
    fail_unless (memcmp (m.data, want + at * 8, m.size) == 0, "chunk %u: codes differ", i);
    gst_buffer_unmap (b, &m);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER),
        first_index + i + 1 == total);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), pts + at * 20 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), sizes[i] * 20 * GST_MSECOND);
    at += sizes[i];
    gst_buffer_unref (b);
  }
}

GST_START_TEST (test_soundstorm_chunks)
{
  gint32 sem[37];
  for (guint i = 0; i < 37; i++)
    sem[i] = (gint32) ((i * 389 + 17) % 1024);
  gint32 *want = core_chunks (sem, 37, 10);
  GstHarness *h = make_soundstorm (10);
  const gsize sizes[] = { 10, 10, 10, 7 };
  for (guint item = 0; item < 2; item++) {
    GstClockTime pts = (3 + item) * GST_SECOND;
    for (guint at = 0; at < 37; at += 7) {
      guint k = MIN (7, 37 - at);
      fail_unless_equals_int (gst_harness_push (h, tokens (sem + at, k,
                  pts + at * 20 * GST_MSECOND, at + k == 37)), GST_FLOW_OK);
      /* a chunk goes out as soon as its 10 frames are in */
      fail_unless_equals_int (gst_harness_buffers_in_queue (h), at + k == 37 ? 4 - (at / 10) :
          (at + k) / 10 - at / 10);
      pull_chunks (h, sizes + at / 10, at / 10, gst_harness_buffers_in_queue (h), 4,
          want + (at / 10) * 10 * 8, pts + (at / 10) * 10 * 20 * GST_MSECOND);
    }
  }
  gst_harness_teardown (h);
  g_free (want);
}

GST_END_TEST;

GST_START_TEST (test_soundstorm_eos_ends_item)
{
  gint32 sem[13];
  for (guint i = 0; i < 13; i++)
    sem[i] = (gint32) ((i * 77 + 5) % 1024);
  gint32 *want = core_chunks (sem, 13, 10);
  GstHarness *h = make_soundstorm (10);
  fail_unless_equals_int (gst_harness_push (h, tokens (sem, 13, 0, FALSE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 1);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  const gsize sizes[] = { 10, 3 };
  pull_chunks (h, sizes, 0, 2, 2, want, 0);
  gst_harness_teardown (h);
  g_free (want);
}

GST_END_TEST;

/* cancel mid-stream: a probe holds the second chunk until PLAYING->NULL has begun */
typedef struct
{
  GMutex lock;
  GCond cond;
  guint n;
  gboolean stopping;
} Handoff;

static GstPadProbeReturn
hold_second (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Handoff *ho = data;
  g_mutex_lock (&ho->lock);
  ho->n++;
  g_cond_broadcast (&ho->cond);
  while (ho->n == 2 && !ho->stopping)
    g_cond_wait (&ho->cond, &ho->lock);
  g_mutex_unlock (&ho->lock);
  return GST_PAD_PROBE_OK;
}

static gpointer
push_long_item (gpointer data)
{
  GstHarness *h = data;
  gint32 *sem = g_new (gint32, 400);
  for (guint i = 0; i < 400; i++)
    sem[i] = (gint32) (i % 1024);
  GstFlowReturn r = gst_harness_push (h, tokens (sem, 400, 0, FALSE));
  g_free (sem);
  return GINT_TO_POINTER (r);
}

GST_START_TEST (test_soundstorm_cancel_mid_stream)
{
  GstHarness *h = make_soundstorm (4);
  Handoff ho;
  g_mutex_init (&ho.lock);
  g_cond_init (&ho.cond);
  ho.n = 0;
  ho.stopping = FALSE;
  gst_pad_add_probe (h->sinkpad, GST_PAD_PROBE_TYPE_BUFFER, hold_second, &ho, NULL);
  /* one item of 400 frames = 100 chunks, in one buffer, no end yet */
  GThread *th = g_thread_new ("push", push_long_item, h);
  g_mutex_lock (&ho.lock);
  while (ho.n < 2)
    g_cond_wait (&ho.cond, &ho.lock);
  ho.stopping = TRUE;
  g_cond_broadcast (&ho.cond);
  g_mutex_unlock (&ho.lock);
  gint64 t0 = g_get_monotonic_time ();
  fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gint64 took = g_get_monotonic_time () - t0;
  GstFlowReturn r = GPOINTER_TO_INT (g_thread_join (th));
  fail_unless (r == GST_FLOW_FLUSHING, "the item ended with %s", gst_flow_get_name (r));
  fail_unless (took < 5 * G_USEC_PER_SEC, "PLAYING->NULL took %" G_GINT64_FORMAT " us", took);
  fail_unless (ho.n < 50, "%u of 100 chunks went out after the stop", ho.n);
  gst_harness_teardown (h);
  g_mutex_clear (&ho.lock);
  g_cond_clear (&ho.cond);
}

GST_END_TEST;

GST_START_TEST (test_decode_stream_context)
{
  ag_backend *be = ag_backend_cpu_new (1);
  ag_seanet *st = ag_seanet_load (be, st_path, NULL, NULL);
  fail_unless (st != NULL, "%s", ag_last_error ());
  const ag_seanet_info info = *ag_seanet_info_of (st), *in = &info;
  const gsize n = 35, hop = (gsize) in->hop;
  gint32 *codes = g_new (gint32, n * 8);
  for (gsize i = 0; i < n * 8; i++)
    codes[i] = (gint32) (((i * 2654435761u) >> 7) % (guint) in->codebook_size);
  gfloat *whole = g_new (gfloat, n * hop);
  fail_unless (ag_seanet_decode (st, codes, (int64_t) n, 8, whole) == 0);
  double peak = 0;
  for (gsize i = 0; i < n * hop; i++)
    peak = fmax (peak, fabs (whole[i]));
  ag_seanet_free (st);
  ag_backend_free (be);

  GstElement *e = gst_element_factory_make ("encodecdecode", NULL);
  g_object_set (e, "model-path", st_path, "threads", 1, "stream-context", 16, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps (h, speech_caps (8, in->codebook_size));
  const gsize pieces[] = { 13, 13, 9 };
  gsize at = 0;
  for (guint i = 0; i < 3; i++) {
    fail_unless_equals_int (gst_harness_push (h, tokens (codes + at * 8, pieces[i] * 8,
                2 * GST_SECOND + at * 20 * GST_MSECOND, i == 2)), GST_FLOW_OK);
    at += pieces[i];
  }
  gsize got = 0;
  double diff = 0;
  guint nb = gst_harness_buffers_in_queue (h);
  fail_unless_equals_int (nb, 3);
  for (guint i = 0; i < nb; i++) {
    GstBuffer *b = gst_harness_pull (h);
    GstMapInfo m;
    gst_buffer_map (b, &m, GST_MAP_READ);
    const gfloat *x = (const gfloat *) m.data;
    gsize k = m.size / 4;
    fail_unless (got + k <= n * hop);
    for (gsize j = 0; j < k; j++)
      diff = fmax (diff, fabs (x[j] - whole[got + j]));
    gst_buffer_unmap (b, &m);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 2 * GST_SECOND +
        gst_util_uint64_scale (got, GST_SECOND, in->sample_rate));
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER), i + 1 == nb);
    got += k;
    gst_buffer_unref (b);
  }
  fail_unless_equals_uint64 (got, n * hop);
  g_print ("# encodecdecode stream-context 16, pieces 13+13+9: max |diff| %.3g (peak %.3g)\n",
      diff, peak);
  fail_unless (diff <= 1e-5 * peak, "streamed decode off by %g (peak %g)", diff, peak);
  /* an item without MARKER ends at EOS */
  fail_unless_equals_int (gst_harness_push (h, tokens (codes, 10 * 8, 0, FALSE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 1);    /* 4 frames held back */
  gst_buffer_unref (gst_harness_pull (h));
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (gst_buffer_get_size (b), 4 * hop * 4);
  gst_buffer_unref (b);
  gst_harness_teardown (h);
  g_free (codes);
  g_free (whole);
}

GST_END_TEST;

static Suite *
stream_suite (void)
{
  Suite *s = suite_create ("speechstream");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_soundstorm_chunks);
  tcase_add_test (tc, test_soundstorm_eos_ends_item);
  tcase_add_test (tc, test_soundstorm_cancel_mid_stream);
  tcase_add_test (tc, test_decode_stream_context);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 3) {
    g_printerr ("usage: %s SOUNDSTORM.gguf SPEECHTOKENIZER.gguf\n", argv[0]);
    return 2;
  }
  ss_path = argv[1];
  st_path = argv[2];
  gst_check_init (NULL, NULL);
  return gst_check_run_suite (stream_suite (), "speechstream", __FILE__);
}
