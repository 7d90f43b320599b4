/* speechtokenize in a GstHarness on the tiny SpeechTokenizer model: caps accepted and refused,
 * codes equal to the core's for the same audio (cpu, and vulkan when a device exists), output
 * timestamps, VAD segmentation of synthesized bursts, EOS / flush / end-utterance event
 * mid-utterance, forced cuts, empty input, bad and wrong model files, encodectokenize's caps
 * and its refusal of a speech model.
 *
 * usage: test_speechtokenize SPEECHTOKENIZER.gguf OTHER-ARCH.gguf */
#include "audio_util.h"

#define RATE 16000

static void
start_stream (GstHarness * h)
{
  gst_harness_set_src_caps (h, audio_caps ("F32LE", RATE, 1));
}

static gint
count_messages (GstBus * bus, const gchar * name, guint64 * frames_sum)
{
  gint n = 0;
  GstMessage *m;
  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (m);
    guint64 f = 0;
    if (gst_structure_has_name (s, name) && gst_structure_get_uint64 (s, "frames", &f)) {
      n++;
      *frames_sum += f;
      fail_unless (gst_structure_has_field (s, "encode-time"));
    }
    gst_message_unref (m);
  }
  return n;
}

GST_START_TEST (test_caps)
{
  GstHarness *h = harness_for ("speechtokenize", "cpu", "layers", 8, NULL);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  GstCaps *good = audio_caps ("F32LE", RATE, 1);
  GstCaps *bad_rate = audio_caps ("F32LE", 8000, 1);
  GstCaps *bad_fmt = audio_caps ("S16LE", RATE, 1);
  GstCaps *stereo = audio_caps ("F32LE", RATE, 2);
  fail_unless (gst_pad_query_accept_caps (sink, good));
  fail_if (gst_pad_query_accept_caps (sink, bad_rate), "8 kHz accepted");
  fail_if (gst_pad_query_accept_caps (sink, bad_fmt), "S16LE accepted");
  fail_if (gst_pad_query_accept_caps (sink, stereo), "stereo accepted");

  /* a caps event with the wrong rate is refused at caps time */
  fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("s")));
  fail_if (gst_pad_send_event (sink, gst_event_new_caps (bad_rate)));

  /* the source caps follow the model and the layers property */
  GstCaps *src = gst_pad_peer_query_caps (h->sinkpad, NULL);
  GstStructure *s = gst_caps_get_structure (src, 0);
  gint cb = 0, k = 0, rn = 0, rd = 0;
  fail_unless (gst_caps_is_fixed (src));
  fail_unless_equals_string (gst_structure_get_string (s, "modality"), "speech");
  fail_unless (gst_structure_get_int (s, "codebooks", &cb) && cb == 8);
  fail_unless (gst_structure_get_int (s, "codebook-size", &k) && k == 64);
  fail_unless (gst_structure_get_fraction (s, "rate", &rn, &rd) && rn == 50 && rd == 1);
  gst_caps_unref (src);

  gst_harness_set_src_caps (h, gst_caps_ref (good));
  GstCaps *out = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (out != NULL);
  fail_unless_equals_int (gst_caps_get_size (out), 1);
  gst_caps_unref (out);

  gst_caps_unref (good);
  gst_caps_unref (bad_rate);
  gst_caps_unref (bad_fmt);
  gst_caps_unref (stereo);
  gst_object_unref (sink);
  harness_teardown (h);
}

GST_END_TEST;

/* 0.5 s in 4 buffers from PTS 2 s, EOS: one buffer, codes as the core gives them */
static void
check_codes (const gchar * device)
{
  const gsize n = RATE / 2;
  gfloat *x = make_speech (n, RATE, 150, 1);
  GstHarness *h = harness_for ("speechtokenize", device, "layers", 8, NULL);
  start_stream (h);
  for (gsize i = 0; i < 4; i++)
    fail_unless_equals_int (gst_harness_push (h, audio_buffer (x + i * n / 4, n / 4,
                2 * GST_SECOND + gst_util_uint64_scale (i * n / 4, GST_SECOND, RATE), RATE)),
        GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 2 * GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), GST_SECOND / 2);
  fail_unless (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER));

  gint64 frames;
  gint32 *want = core_encode (x, n, 8, &frames);
  fail_unless_equals_int (frames, 25);
  fail_unless_equals_int (gst_buffer_get_size (b), frames * 8 * 4);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  gint differ = 0;
  for (gint64 i = 0; i < frames * 8; i++)
    differ += ((const gint32 *) map.data)[i] != want[i];
  gst_buffer_unmap (b, &map);
  /* vulkan may flip a rare near tie; cpu is the same code path as the core call */
  if (g_str_equal (device, "cpu")) {
    fail_unless_equals_int (differ, 0);
  } else {
    fail_unless (differ <= 2, "%d of %d codes differ on vulkan", differ, (gint) frames * 8);
  }
  g_print ("# device %s: %d of %d codes differ from the core (cpu)\n", device, differ,
      (gint) frames * 8);

  guint64 fsum = 0;
  fail_unless_equals_int (count_messages (harness_bus (h), "speechtokenize", &fsum), 1);
  fail_unless_equals_uint64 (fsum, 25);

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

/* 0.5 s noise, then 3 x (0.8 s burst, 1 s noise): 3 utterances starting within one VAD frame
 * (10 ms) of each burst, pushed in 100 ms buffers */
GST_START_TEST (test_vad)
{
  const gdouble lead = 0.5, len = 0.8, gap = 1.0;
  const gsize n = (gsize) ((lead + 3 * (len + gap)) * RATE);
  gfloat *x = g_new0 (gfloat, n);
  gfloat *burst = make_speech ((gsize) (len * RATE), RATE, 140, 7);
  guint32 seed = 3;
  for (gsize i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (gfloat) (0.003 * ((seed >> 8) / 8388608.0 - 1.0));
  }
  for (gint b = 0; b < 3; b++)
    for (gsize i = 0; i < (gsize) (len * RATE); i++)
      x[(gsize) ((lead + b * (len + gap)) * RATE) + i] += burst[i];

  GstHarness *h = harness_for ("speechtokenize", "cpu", "segment", 1, NULL);
  start_stream (h);
  const gsize chunk = RATE / 10;
  for (gsize off = 0; off < n; off += chunk)
    fail_unless_equals_int (gst_harness_push (h, audio_buffer (x + off, MIN (chunk, n - off),
                gst_util_uint64_scale (off, GST_SECOND, RATE), RATE)), GST_FLOW_OK);
  /* all three ended by silence before EOS */
  fail_unless_equals_int (gst_harness_buffers_received (h), 3);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 3);
  for (gint b = 0; b < 3; b++) {
    GstBuffer *buf = gst_harness_pull (h);
    GstClockTime want = (GstClockTime) ((lead + b * (len + gap)) * GST_SECOND);
    GstClockTimeDiff d = GST_CLOCK_DIFF (want, GST_BUFFER_PTS (buf));
    g_print ("# utterance %d: start %" GST_TIME_FORMAT " (want %" GST_TIME_FORMAT "), "
        "duration %" GST_TIME_FORMAT "\n", b, GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
        GST_TIME_ARGS (want), GST_TIME_ARGS (GST_BUFFER_DURATION (buf)));
    fail_unless (ABS (d) <= 10 * GST_MSECOND, "utterance %d starts %" G_GINT64_FORMAT " ns off",
        b, d);
    GstClockTimeDiff dd = GST_CLOCK_DIFF ((GstClockTime) (len * GST_SECOND),
        GST_BUFFER_DURATION (buf));
    fail_unless (ABS (dd) <= 20 * GST_MSECOND, "utterance %d lasts %" GST_TIME_FORMAT, b,
        GST_TIME_ARGS (GST_BUFFER_DURATION (buf)));
    gst_buffer_unref (buf);
  }
  g_free (burst);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* a flush drops pending audio; EOS then encodes only what came after it */
GST_START_TEST (test_flush_and_eos)
{
  gfloat *x = make_speech (RATE, RATE, 160, 2);
  GstHarness *h = harness_for ("speechtokenize", "cpu", NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, RATE * 3 / 10, 0, RATE)),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, RATE * 3 / 10, 5 * GST_SECOND,
              RATE)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 5 * GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 300 * GST_MSECOND);
  fail_unless_equals_int (gst_buffer_get_size (b), 15 * 4);
  gst_buffer_unref (b);
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* anygpt-end-utterance cuts and is forwarded; timestamps without PTS run from 0 */
GST_START_TEST (test_end_utterance_event)
{
  gfloat *x = make_speech (RATE, RATE, 160, 3);
  GstHarness *h = harness_for ("speechtokenize", "cpu", NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, RATE * 4 / 10,
              GST_CLOCK_TIME_NONE, RATE)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
              gst_structure_new_empty ("anygpt-end-utterance"))));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, RATE * 3 / 10,
              GST_CLOCK_TIME_NONE, RATE)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  GstBuffer *a = gst_harness_pull (h), *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (a), 0);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (a), 400 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 400 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 300 * GST_MSECOND);
  gst_buffer_unref (a);
  gst_buffer_unref (b);
  gboolean seen = FALSE;
  GstEvent *ev;
  while ((ev = gst_harness_try_pull_event (h))) {
    seen |= gst_event_has_name (ev, "anygpt-end-utterance");
    gst_event_unref (ev);
  }
  fail_unless (seen, "end-utterance event not forwarded");
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* max-utterance-s forces cuts: 0.5 s with a 0.2 s limit gives 0.2 + 0.2 + 0.1 */
GST_START_TEST (test_max_utterance)
{
  gfloat *x = make_speech (RATE / 2, RATE, 160, 4);
  GstHarness *h = harness_for ("speechtokenize", "cpu", "max-utterance-s", 0.2, NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, RATE / 2, GST_SECOND, RATE)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 3);
  const GstClockTime pts[] = { GST_SECOND, 1200 * GST_MSECOND, 1400 * GST_MSECOND };
  const GstClockTime dur[] = { 200 * GST_MSECOND, 200 * GST_MSECOND, 100 * GST_MSECOND };
  for (gint i = 0; i < 3; i++) {
    GstBuffer *b = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), pts[i]);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), dur[i]);
    gst_buffer_unref (b);
  }
  g_free (x);
  harness_teardown (h);
}

GST_END_TEST;

/* no audio, or less than one frame (320 samples): nothing pushed, no error; partial samples
 * are an error */
GST_START_TEST (test_empty)
{
  gfloat x[300] = { 0 };
  GstHarness *h = harness_for ("speechtokenize", "cpu", NULL);
  start_stream (h);
  fail_unless (gst_harness_push_event (h, gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
              gst_structure_new_empty ("anygpt-end-utterance"))));
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, 0, 0, RATE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, audio_buffer (x, 300, 0, RATE)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  GstMessage *m = gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR);
  fail_unless (m == NULL, "error posted for empty input");
  harness_teardown (h);

  /* a partial sample is malformed input: an error, not a crash */
  h = harness_for ("speechtokenize", "cpu", NULL);
  start_stream (h);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (x, 6)), GST_FLOW_ERROR);
  m = gst_bus_pop_filtered (harness_bus (h), GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error for a 6-byte buffer");
  gst_message_unref (m);
  harness_teardown (h);
}

GST_END_TEST;

/* NULL->READY fails with an error naming the path and the reason */
static void
check_refused_model (const gchar * factory, const gchar * path, const gchar * reason)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  if (path)
    g_object_set (e, "model-path", path, "device", 1, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "%s: no error message for %s", factory, path);
  GError *err = NULL;
  gchar *dbg = NULL;
  gst_message_parse_error (m, &err, &dbg);
  gchar *all = g_strdup_printf ("%s | %s", err->message, dbg ? dbg : "");
  g_print ("# %s refused %s: %s\n", factory, path ? path : "(none)", all);
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
  check_refused_model ("speechtokenize", "/nonexistent/st.gguf", "/nonexistent/st.gguf");
  check_refused_model ("speechtokenize", wrong_path, "architecture");
  check_refused_model ("speechtokenize", NULL, "model-path");
  check_refused_model ("encodecdecode", "/nonexistent/st.gguf", "/nonexistent/st.gguf");
  check_refused_model ("encodecdecode", wrong_path, "architecture");
  /* the speech model is no Encodec 32 kHz model */
  check_refused_model ("encodectokenize", model_path, "16000 Hz");
}

GST_END_TEST;

/* in READY (model loaded, no stream yet) the source caps are already the model's */
GST_START_TEST (test_caps_in_ready)
{
  GstElement *e = gst_element_factory_make ("speechtokenize", NULL);
  g_object_set (e, "model-path", model_path, "device", 1, "layers", 3, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  GstPad *src = gst_element_get_static_pad (e, "src");
  GstCaps *caps = gst_pad_query_caps (src, NULL);
  gint cb = 0;
  fail_unless (gst_caps_is_fixed (caps));
  fail_unless (gst_structure_get_int (gst_caps_get_structure (caps, 0), "codebooks", &cb));
  fail_unless_equals_int (cb, 3);
  gst_caps_unref (caps);
  gst_object_unref (src);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
}

GST_END_TEST;

/* more layers than the model has: READY->PAUSED fails with an error */
GST_START_TEST (test_too_many_layers)
{
  GstElement *e = gst_element_factory_make ("speechtokenize", NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  g_object_set (e, "model-path", model_path, "device", 1, "layers", 9, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

/* encodectokenize takes 32 kHz F32 mono only (template; no Encodec model needed) */
GST_START_TEST (test_encodec_caps)
{
  GstElement *e = gst_element_factory_make ("encodectokenize", NULL);
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  GstCaps *good = audio_caps ("F32LE", 32000, 1), *bad = audio_caps ("F32LE", RATE, 1);
  fail_unless (gst_pad_query_accept_caps (sink, good));
  fail_if (gst_pad_query_accept_caps (sink, bad), "16 kHz accepted by encodectokenize");
  gdouble clip = 0;
  g_object_get (e, "clip-length", &clip, NULL);
  fail_unless (clip == 20.0);
  GstPad *src = gst_element_get_static_pad (e, "src");
  GstCaps *tmpl = gst_pad_get_pad_template_caps (src);
  fail_unless_equals_string (gst_structure_get_string (gst_caps_get_structure (tmpl, 0),
          "modality"), "music");
  gst_caps_unref (tmpl);
  gst_caps_unref (good);
  gst_caps_unref (bad);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
speechtokenize_suite (void)
{
  Suite *s = suite_create ("speechtokenize");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_codes_cpu);
  tcase_add_test (tc, test_codes_vulkan);
  tcase_add_test (tc, test_vad);
  tcase_add_test (tc, test_flush_and_eos);
  tcase_add_test (tc, test_end_utterance_event);
  tcase_add_test (tc, test_max_utterance);
  tcase_add_test (tc, test_empty);
  tcase_add_test (tc, test_bad_models);
  tcase_add_test (tc, test_caps_in_ready);
  tcase_add_test (tc, test_too_many_layers);
  tcase_add_test (tc, test_encodec_caps);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  parse_args (argc, argv);
  return gst_check_run_suite (speechtokenize_suite (), "speechtokenize", __FILE__);
}
