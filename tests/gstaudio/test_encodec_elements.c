/* encodectokenize and encodecdecode (music mode) in a GstHarness on the tiny Encodec 32 kHz GGUF
 * of tests/music: caps follow the model, codes equal to the core's (cpu; vulkan when present),
 * clip-length from the stream start (buffer pushed when the clip fills, the rest dropped), EOS
 * before the clip is full, music decode equal to ag_seanet_decode, speech tokens refused.
 *
 * usage: test_encodec_elements ENCODEC.gguf SPEECHTOKENIZER.gguf */
#include "audio_util.h"

#define RATE 32000
#define HOP 640

static GstCaps *
music_caps (const gchar * modality, gint codebooks, gint size)
{
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING,
      modality, "codebooks", G_TYPE_INT, codebooks, "codebook-size", G_TYPE_INT, size,
      "rate", GST_TYPE_FRACTION, 50, 1, NULL);
}

GST_START_TEST (test_tokenize_caps)
{
  GstHarness *h = harness_for ("encodectokenize", "cpu", NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  GstCaps *good = audio_caps ("F32LE", RATE, 1), *bad = audio_caps ("F32LE", 16000, 1);
  fail_unless (gst_pad_query_accept_caps (sink, good));
  fail_if (gst_pad_query_accept_caps (sink, bad), "16 kHz accepted");
  GstCaps *src = gst_pad_peer_query_caps (h->sinkpad, NULL);
  GstStructure *s = gst_caps_get_structure (src, 0);
  gint cb = 0, k = 0, rn = 0, rd = 0;
  fail_unless_equals_string (gst_structure_get_string (s, "modality"), "music");
  fail_unless (gst_structure_get_int (s, "codebooks", &cb) && cb == 4);
  fail_unless (gst_structure_get_int (s, "codebook-size", &k) && k == 64);
  fail_unless (gst_structure_get_fraction (s, "rate", &rn, &rd) && rn == 50 && rd == 1);
  gst_caps_unref (src);
  gst_caps_unref (good);
  gst_caps_unref (bad);
  gst_object_unref (sink);
  harness_teardown (h);
}

GST_END_TEST;

static void
check_codes (const gchar * device)
{
  const gsize n = RATE / 2;
  gfloat *x = make_speech (n, RATE, 330, 9);
  GstHarness *h = harness_for ("encodectokenize", device, NULL);
  gst_harness_set_src_caps (h, audio_caps ("F32LE", RATE, 1));
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, n, GST_SECOND, RATE)),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), GST_SECOND / 2);
  fail_unless (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER));
  gint64 frames;
  gint32 *want = core_encode (x, n, 4, &frames);
  fail_unless_equals_int (frames, 25);
  fail_unless_equals_int (gst_buffer_get_size (b), frames * 4 * 4);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  gint differ = 0;
  for (gint64 i = 0; i < frames * 4; i++)
    differ += ((const gint32 *) map.data)[i] != want[i];
  gst_buffer_unmap (b, &map);
  g_print ("# encodectokenize on %s: %d of %d codes differ from the core (cpu)\n", device,
      differ, (gint) frames * 4);
  if (g_str_equal (device, "cpu")) {
    fail_unless_equals_int (differ, 0);
  } else {
    fail_unless (differ <= 2, "%d codes differ on vulkan", differ);
  }
  gst_buffer_unref (b);
  g_free (want);
  g_free (x);
  harness_teardown (h);
}

GST_START_TEST (test_codes_cpu)
{
  check_codes ("cpu");
}

GST_END_TEST;

GST_START_TEST (test_codes_vulkan)
{
  if (under_valgrind () || !vulkan_present ()) {
    g_print ("# device vulkan: %s, skipped\n", under_valgrind ()? "under valgrind" : "none found");
    return;
  }
  check_codes ("vulkan");
}

GST_END_TEST;

/* clip-length 0.3 s: the clip is pushed as soon as it is full; later audio is dropped */
GST_START_TEST (test_clip_length)
{
  const gsize n = RATE / 10;
  gfloat *x = make_speech (5 * n, RATE, 330, 10);
  GstHarness *h = harness_for ("encodectokenize", "cpu", "clip-length", 0.3, NULL);
  gst_harness_set_src_caps (h, audio_caps ("F32LE", RATE, 1));
  for (gint i = 0; i < 5; i++) {
    fail_unless_equals_int (gst_harness_push (h, audio_buffer (x + i * n, n,
                i * 100 * GST_MSECOND, RATE)), GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_buffers_received (h), i >= 2 ? 1 : 0);
  }
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 0);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 300 * GST_MSECOND);
  fail_unless_equals_int (gst_buffer_get_size (b), 15 * 4 * 4);
  /* the clip's codes are those of its own audio */
  gint64 frames;
  gint32 *want = core_encode (x, 3 * n, 4, &frames);
  fail_unless (gst_buffer_memcmp (b, 0, want, frames * 4 * 4) == 0);
  g_free (want);
  gst_buffer_unref (b);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* music tokens -> 32 kHz audio equal to ag_seanet_decode; speech tokens refused */
GST_START_TEST (test_decode_music)
{
  gint32 ids[6 * 4];
  for (gint i = 0; i < 24; i++)
    ids[i] = (i * 11 + 3) % 64;
  GstHarness *h = harness_for ("encodecdecode", "cpu", NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  GstCaps *music = music_caps ("music", 4, 64), *speech = music_caps ("speech", 4, 64);
  fail_unless (gst_pad_query_accept_caps (sink, music));
  fail_if (gst_pad_query_accept_caps (sink, speech), "speech tokens accepted by Encodec");
  gst_caps_unref (speech);
  gst_harness_set_src_caps (h, music);
  GstBuffer *in = gst_buffer_new_memdup (ids, sizeof ids);
  GST_BUFFER_PTS (in) = 3 * GST_SECOND;
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  fail_unless_equals_int (gst_buffer_get_size (out), 6 * HOP * 4);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 3 * GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), 120 * GST_MSECOND);
  GstCaps *oc = gst_pad_get_current_caps (h->sinkpad);
  gint rate = 0;
  fail_unless (gst_structure_get_int (gst_caps_get_structure (oc, 0), "rate", &rate));
  fail_unless_equals_int (rate, RATE);
  gst_caps_unref (oc);

  ag_backend *be = ag_backend_cpu_new (1);
  ag_seanet *m = ag_seanet_load (be, model_path, NULL, NULL);
  fail_unless (m != NULL, "%s", ag_last_error ());
  gfloat want[6 * HOP];
  fail_unless (ag_seanet_decode (m, ids, 6, 4, want) == 0);
  fail_unless (gst_buffer_memcmp (out, 0, want, sizeof want) == 0, "decode differs from core");
  ag_seanet_free (m);
  ag_backend_free (be);
  gst_buffer_unref (out);
  gst_object_unref (sink);
  harness_teardown (h);
}

GST_END_TEST;

static Suite *
encodec_elements_suite (void)
{
  Suite *s = suite_create ("encodec-elements");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_tokenize_caps);
  tcase_add_test (tc, test_codes_cpu);
  tcase_add_test (tc, test_codes_vulkan);
  tcase_add_test (tc, test_clip_length);
  tcase_add_test (tc, test_decode_music);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  parse_args (argc, argv);
  return gst_check_run_suite (encodec_elements_suite (), "encodec_elements", __FILE__);
}
