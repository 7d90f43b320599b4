/* speechtokenize segment=meta in a GstHarness on the tiny SpeechTokenizer model: utterances cut
 * on the voice-activity flag of GstAudioLevelMeta (what webrtcdsp voice-detection=true
 * attaches), not on the audio's energy. The audio is loud speech-like sound all through (the
 * energy VAD hears one long utterance after a quiet 0.3 s); the flags say voice in [0.5, 1.3) s, in [2.3, 3.1) s with
 * a 300 ms unvoiced gap inside (shorter than silence-ms: no cut), and for a 100 ms blip at 4 s
 * (shorter than min-speech-ms: ignored). Expected: two utterances at exactly those spans, codes
 * equal to the core's for those samples; the flag on state changes only (as webrtcdsp does) and on
 * every buffer give the same; no meta at all gives nothing; segment=vad on the same audio gives one
 * utterance (the energy VAD really differs); a flush in speech forgets the state.
 *
 * usage: test_speechtokenize_meta SPEECHTOKENIZER.gguf OTHER-ARCH.gguf */
#include "audio_util.h"

#include <gst/audio/audio.h>

#define RATE 16000
#define CHUNK (RATE / 100)      /* 10 ms buffers, as webrtcdsp pushes them */
#define SECONDS 5.0
/* the segment enum's values (read when the harness starts the element) */
#define SEGMENT_VAD 1
#define SEGMENT_META 2

static gboolean
voiced_at (gdouble t)
{
  return (t >= 0.5 && t < 1.3) || (t >= 2.3 && t < 2.6) || (t >= 2.9 && t < 3.1) ||
      (t >= 4.0 && t < 4.1);
}

/* pushes the whole signal in 10 ms buffers; meta: 0 none, 1 on state changes, 2 every buffer */
static void
push_signal (GstHarness * h, const gfloat * x, gsize n, gint meta)
{
  gst_harness_set_src_caps (h, audio_caps ("F32LE", RATE, 1));
  gboolean state = FALSE;
  for (gsize off = 0; off < n; off += CHUNK) {
    GstBuffer *b = audio_buffer (x + off, MIN (CHUNK, n - off),
        gst_util_uint64_scale (off, GST_SECOND, RATE), RATE);
    gboolean v = voiced_at ((gdouble) off / RATE);
    if (meta == 2 || (meta == 1 && v != state))
      gst_buffer_add_audio_level_meta (b, 30, v);
    state = v;
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
}

static void
check_utterance (GstHarness * h, const gfloat * x, gdouble from, gdouble to)
{
  GstBuffer *buf = gst_harness_pull (h);
  fail_unless (buf != NULL);
  g_print ("# utterance %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT " (want %.2f s + %.2f s)\n",
      GST_TIME_ARGS (GST_BUFFER_PTS (buf)), GST_TIME_ARGS (GST_BUFFER_DURATION (buf)), from,
      to - from);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), (guint64) (from * GST_SECOND + 0.5));
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (buf), (guint64) ((to - from) * GST_SECOND + 0.5));
  gint64 frames = 0;
  gsize a = (gsize) (from * RATE + 0.5), b = (gsize) (to * RATE + 0.5);
  gint32 *want = core_encode (x + a, b - a, 1, &frames);
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  fail_unless_equals_int ((gint64) map.size, frames * (gint64) sizeof (gint32));
  fail_unless (memcmp (map.data, want, map.size) == 0, "codes differ from the core's");
  gst_buffer_unmap (buf, &map);
  g_free (want);
  gst_buffer_unref (buf);
}

static gfloat *
loud_signal (gsize * n)
{
  *n = (gsize) (SECONDS * RATE);
  gfloat *x = make_speech (*n, RATE, 150, 11);
  /* a quiet first 0.3 s, so the energy VAD's floor starts low and it hears speech after it */
  for (gsize i = 0; i < (gsize) (0.3 * RATE); i++)
    x[i] *= 0.01f;
  return x;
}

GST_START_TEST (test_meta_on_changes)
{
  gsize n;
  gfloat *x = loud_signal (&n);
  GstHarness *h = harness_for ("speechtokenize", "cpu", "segment", SEGMENT_META, NULL);
  push_signal (h, x, n, 1);
  /* both ended by 600 ms of unvoiced buffers before the end of the signal */
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  check_utterance (h, x, 0.5, 1.3);
  check_utterance (h, x, 2.3, 3.1);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_meta_every_buffer)
{
  gsize n;
  gfloat *x = loud_signal (&n);
  GstHarness *h = harness_for ("speechtokenize", "cpu", "segment", SEGMENT_META, NULL);
  push_signal (h, x, n, 2);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  check_utterance (h, x, 0.5, 1.3);
  check_utterance (h, x, 2.3, 3.1);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* no meta: never voice (a detector upstream that never spoke), nothing at EOS either */
GST_START_TEST (test_no_meta)
{
  gsize n;
  gfloat *x = loud_signal (&n);
  GstHarness *h = harness_for ("speechtokenize", "cpu", "segment", SEGMENT_META, NULL);
  push_signal (h, x, n, 0);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* the energy VAD on the same audio: one utterance over everything (ended at EOS) */
GST_START_TEST (test_vad_differs)
{
  gsize n;
  gfloat *x = loud_signal (&n);
  GstHarness *h = harness_for ("speechtokenize", "cpu", "segment", SEGMENT_VAD, NULL);
  push_signal (h, x, n, 1);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless (GST_BUFFER_DURATION (b) > 4 * GST_SECOND);
  gst_buffer_unref (b);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* a flush inside an utterance drops it and the voice state: the next stream starts silent */
GST_START_TEST (test_meta_flush)
{
  gsize n;
  gfloat *x = loud_signal (&n);
  GstHarness *h = harness_for ("speechtokenize", "cpu", "segment", SEGMENT_META, NULL);
  gst_harness_set_src_caps (h, audio_caps ("F32LE", RATE, 1));
  GstBuffer *b = audio_buffer (x, RATE / 2, 0, RATE);
  gst_buffer_add_audio_level_meta (b, 30, TRUE);
  fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, RATE, GST_SECOND, RATE)),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

static Suite *
speechtokenize_meta_suite (void)
{
  Suite *s = suite_create ("speechtokenize-meta");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_meta_on_changes);
  tcase_add_test (tc, test_meta_every_buffer);
  tcase_add_test (tc, test_no_meta);
  tcase_add_test (tc, test_vad_differs);
  tcase_add_test (tc, test_meta_flush);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  parse_args (argc, argv);
  return gst_check_run_suite (speechtokenize_meta_suite (), "speechtokenize-meta", __FILE__);
}
