/* soundstorm element in GstHarness on the tiny SoundStorm GGUF: outputs equal the PyTorch
 * reference's generations (tests/reference/soundstorm_ref.py fixtures: plain, and with an
 * 8-layer voice prompt on the request pad), a voice prompt from a WAV file equals the core's
 * encode + generate, caps refusal, timestamps, bad models, PLAYING->NULL with a waiting prompt.
 * argv: SOUNDSTORM.gguf SPEECHTOKENIZER.gguf OTHER-ARCH.gguf FIXTURE-DIR */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"
#include "anygpt/soundstorm.h"
#include "anygpt/wav.h"

static const gchar *ss_path, *st_path, *wrong_path, *fixdir;

static gint32 *
read_i32 (const gchar * name, gsize * n)
{
  gchar *p = g_build_filename (fixdir, name, NULL), *data;
  gsize len;
  fail_unless (g_file_get_contents (p, &data, &len, NULL), "cannot read %s", p);
  g_free (p);
  *n = len / 4;
  return (gint32 *) data;
}

/* "T P steps seed greedy" */
static void
read_args (const gchar * name, gint * t, gint * p, gint * steps, guint64 * seed, gint * greedy)
{
  gchar *path = g_build_filename (fixdir, name, NULL), *data;
  fail_unless (g_file_get_contents (path, &data, NULL, NULL));
  fail_unless (sscanf (data, "%d %d %d %" G_GUINT64_FORMAT " %d", t, p, steps, seed,
          greedy) == 5);
  g_free (data);
  g_free (path);
}

static GstCaps *
speech_caps (gint codebooks, gint size)
{
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING,
      "speech", "codebooks", G_TYPE_INT, codebooks, "codebook-size", G_TYPE_INT, size,
      "rate", GST_TYPE_FRACTION, 50, 1, NULL);
}

static GstElement *
make (const gchar * device, gint steps, guint64 seed, gboolean greedy)
{
  GstElement *e = gst_element_factory_make ("soundstorm", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model-path", ss_path, "threads", 1, "steps", steps, "seed", seed,
      "greedy", greedy, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", device);
  return e;
}

static GstBuffer *
tokens (const gint32 * ids, gsize n, GstClockTime pts)
{
  GstBuffer *b = gst_buffer_new_memdup (ids, n * 4);
  GST_BUFFER_PTS (b) = pts;
  return b;
}

static void
expect_codes (GstBuffer * out, const gint32 * want, gsize n, const gchar * what)
{
  GstMapInfo m;
  fail_unless (out != NULL, "%s: no output", what);
  gst_buffer_map (out, &m, GST_MAP_READ);
  fail_unless_equals_uint64 (m.size, n * 4);
  gsize diff = 0;
  for (gsize i = 0; i < n; i++)
    diff += ((const gint32 *) m.data)[i] != want[i];
  gst_buffer_unmap (out, &m);
  fail_unless (diff == 0, "%s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " codes differ",
      what, diff, n);
}

static void
run_plain (const gchar * device)
{
  gint t, p, steps, greedy;
  guint64 seed;
  gsize ns, no;
  read_args ("gen_plain.args.txt", &t, &p, &steps, &seed, &greedy);
  gint32 *sem = read_i32 ("gen_plain.sem.i32", &ns), *want = read_i32 ("gen_plain.out.i32", &no);
  fail_unless (ns == (gsize) t && no == (gsize) t * 8);
  GstHarness *h = gst_harness_new_with_element (make (device, steps, seed, greedy), "sink", "src");
  gst_object_unref (h->element);        /* the harness holds its own reference */
  gst_harness_set_src_caps (h, speech_caps (1, 1024));
  GstBuffer *in = tokens (sem, ns, 3 * GST_SECOND);
  GST_BUFFER_FLAG_SET (in, GST_BUFFER_FLAG_MARKER);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  expect_codes (out, want, no, device);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 3 * GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), t * GST_SECOND / 50);
  fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_MARKER));
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstStructure *s = gst_caps_get_structure (caps, 0);
  gint cb;
  fail_unless (gst_structure_get_int (s, "codebooks", &cb) && cb == 8);
  gst_caps_unref (caps);
  gst_buffer_unref (out);
  /* an 8-layer input uses only its first layer: same result */
  gint32 *wide = g_new0 (gint32, ns * 8);
  for (gsize i = 0; i < ns; i++)
    wide[i * 8] = sem[i], wide[i * 8 + 3] = 777;
  gst_harness_set_src_caps (h, speech_caps (8, 1024));
  fail_unless_equals_int (gst_harness_push (h, tokens (wide, ns * 8, 0)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  expect_codes (out, want, no, "8-layer input");
  gst_buffer_unref (out);
  g_free (wide);
  g_free (sem);
  g_free (want);
  gst_harness_teardown (h);
}

GST_START_TEST (test_plain_cpu)
{
  run_plain ("cpu");
}

GST_END_TEST;

GST_START_TEST (test_plain_vulkan)
{
  if (RUNNING_ON_VALGRIND) {   /* lavapipe's shader JIT under valgrind takes minutes */
    g_print ("# vulkan: skipped under valgrind (runs in the plain and ASan builds)\n");
    return;
  }
  if (ag_vulkan_device_count () == 0 && !g_strcmp0 (g_getenv ("AG_REQUIRE_VULKAN"), "0")) {
    g_print ("# vulkan: no device, skipped\n");
    return;
  }
  run_plain ("vulkan");
}

GST_END_TEST;

/* the reference's prompted generation, the prompt through the request pad */
GST_START_TEST (test_prompt_pad)
{
  gint t, p, steps, greedy;
  guint64 seed;
  gsize ns, np, no;
  read_args ("gen_prompt.args.txt", &t, &p, &steps, &seed, &greedy);
  gint32 *sem = read_i32 ("gen_prompt.sem.i32", &ns), *prompt =
      read_i32 ("gen_prompt.prompt.i32", &np), *want = read_i32 ("gen_prompt.out.i32", &no);
  fail_unless (ns == (gsize) t && np == (gsize) p * 8 && no == (gsize) t * 8);
  GstElement *e = make ("cpu", steps, seed, greedy);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  GstHarness *hp = gst_harness_new_with_element (e, "prompt", NULL);
  gst_harness_set_src_caps (h, speech_caps (1, 1024));
  gst_harness_set_src_caps (hp, speech_caps (8, 1024));
  /* the prompt first (the sink would otherwise wait for it) */
  fail_unless_equals_int (gst_harness_push (hp, tokens (prompt, np, 0)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, tokens (sem, ns, 0)), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  expect_codes (out, want, no, "prompted");
  gst_buffer_unref (out);
  /* a 7-layer prompt is refused at caps time */
  GstPad *pp = gst_element_get_static_pad (e, "prompt");
  GstCaps *seven = speech_caps (7, 1024);
  fail_if (gst_pad_query_accept_caps (pp, seven));
  fail_if (gst_pad_send_event (pp, gst_event_new_caps (seven)));
  gst_caps_unref (seven);
  gst_object_unref (pp);
  gst_harness_teardown (hp);
  gst_harness_teardown (h);
  gst_object_unref (e);
  g_free (sem);
  g_free (prompt);
  g_free (want);
}

GST_END_TEST;

/* a sink item waiting for a prompt that never comes: PLAYING->NULL releases it */
static gpointer
push_thread (gpointer data)
{
  GstHarness *h = data;
  gint32 sem[5] = { 1, 2, 3, 4, 5 };
  return GINT_TO_POINTER (gst_harness_push (h, tokens (sem, 5, 0)));
}

GST_START_TEST (test_prompt_wait_stop)
{
  GstElement *e = make ("cpu", 3, 0, TRUE);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  GstHarness *hp = gst_harness_new_with_element (e, "prompt", NULL);
  gst_harness_set_src_caps (h, speech_caps (1, 1024));
  gst_harness_set_src_caps (hp, speech_caps (8, 1024));
  GThread *th = g_thread_new ("push", push_thread, h);
  g_usleep (200 * 1000);
  gint64 t0 = g_get_monotonic_time ();
  gst_element_set_state (e, GST_STATE_NULL);
  GstFlowReturn ret = GPOINTER_TO_INT (g_thread_join (th));
  fail_unless (ret == GST_FLOW_FLUSHING, "waiting item ended with %s", gst_flow_get_name (ret));
  fail_unless (g_get_monotonic_time () - t0 < 2 * G_USEC_PER_SEC);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  gst_object_unref (e);
  gst_harness_teardown (hp);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* voice-prompt from a WAV equals the core's SpeechTokenizer encode + SoundStorm generate */
GST_START_TEST (test_voice_prompt_file)
{
  const gsize n = 16000 * 3 / 10;       /* 0.3 s */
  gfloat *x = g_new (gfloat, n);
  for (gsize i = 0; i < n; i++)
    x[i] = (gfloat) (0.3 * sin (i * 0.05) * (0.6 + 0.4 * sin (i * 0.002)));
  gchar *wav = g_build_filename (g_get_tmp_dir (), "anygpt-test-voice.wav", NULL);
  fail_unless (ag_wav_write_f32 (wav, x, (int64_t) n, 16000) == 0);
  gint32 sem[9] = { 5, 900, 17, 17, 300, 1023, 0, 64, 512 };

  ag_backend *be = ag_backend_cpu_new (1);
  ag_seanet *st = ag_seanet_load (be, st_path, NULL, NULL);
  ag_soundstorm *ss = ag_soundstorm_load (be, ss_path, NULL, NULL);
  fail_unless (st && ss, "%s", ag_last_error ());
  gint64 tp = ag_seanet_n_frames (st, (int64_t) n);
  gint32 *prompt = g_new (gint32, tp * 8), *want = g_new (gint32, 9 * 8);
  fail_unless (ag_seanet_encode (st, x, (int64_t) n, 8, prompt) == 0);
  fail_unless (ag_soundstorm_generate (ss, sem, 9, prompt, tp, 3, 42, TRUE, want) == 0);
  ag_seanet_free (st);
  ag_soundstorm_free (ss);
  ag_backend_free (be);

  GstElement *e = make ("cpu", 3, 42, TRUE);
  g_object_set (e, "voice-prompt", wav, "voice-prompt-tokenizer", st_path, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps (h, speech_caps (1, 1024));
  fail_unless_equals_int (gst_harness_push (h, tokens (sem, 9, 0)), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  expect_codes (out, want, 9 * 8, "voice prompt file");
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_remove (wav);
  g_free (wav);
  g_free (x);
  g_free (prompt);
  g_free (want);
}

GST_END_TEST;

static gboolean
fails_to_start (GstElement * e, const gchar * want_in_debug)
{
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  gboolean failed = gst_element_set_state (e, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE;
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gboolean named = FALSE;
  if (m) {
    GError *err;
    gchar *dbg;
    gst_message_parse_error (m, &err, &dbg);
    named = dbg && strstr (dbg, want_in_debug);
    if (!named)
      g_printerr ("error: %s / %s\n", err->message, dbg);
    g_error_free (err);
    g_free (dbg);
    gst_message_unref (m);
  }
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  return failed && named;
}

/* A 16 kHz mono 16-bit WAV whose data chunk claims claimed samples and holds present ones
 * (zeros; the file is extended sparsely). */
static gboolean
write_pcm16_header (const gchar * path, guint32 rate, guint64 claimed, guint64 present)
{
  guint8 h[44];
  guint32 data = claimed * 2 > 0xFFFFFFF0u ? 0xFFFFFFF0u : (guint32) (claimed * 2);
  memcpy (h, "RIFF", 4);
  GST_WRITE_UINT32_LE (h + 4, 36 + data);
  memcpy (h + 8, "WAVEfmt ", 8);
  GST_WRITE_UINT32_LE (h + 16, 16);
  GST_WRITE_UINT16_LE (h + 20, 1);
  GST_WRITE_UINT16_LE (h + 22, 1);
  GST_WRITE_UINT32_LE (h + 24, rate);
  GST_WRITE_UINT32_LE (h + 28, rate * 2);
  GST_WRITE_UINT16_LE (h + 32, 2);
  GST_WRITE_UINT16_LE (h + 34, 16);
  memcpy (h + 36, "data", 4);
  GST_WRITE_UINT32_LE (h + 40, data);
  FILE *f = fopen (path, "wb");
  gboolean ok = f && fwrite (h, 1, 44, f) == 44 && ftruncate (fileno (f), (off_t) (44 + 2 * present)) == 0;
  if (f)
    ok = fclose (f) == 0 && ok;
  return ok;
}

GST_START_TEST (test_bad_models)
{
  GstElement *e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "model-path", "/nonexistent/ss.gguf", NULL);
  fail_unless (fails_to_start (e, "/nonexistent/ss.gguf"));
  e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "model-path", wrong_path, NULL);
  fail_unless (fails_to_start (e, "soundstorm"));
  e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "voice-prompt", "/nonexistent/voice.wav", "voice-prompt-tokenizer", st_path,
      NULL);
  fail_unless (fails_to_start (e, "/nonexistent/voice.wav"));
  e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "voice-prompt", "/nonexistent/voice.wav", NULL);
  fail_unless (fails_to_start (e, "voice-prompt-tokenizer"));
  /* a 32 kHz prompt for a 16 kHz tokenizer */
  gfloat x[3200] = { 0 };
  gchar *wav = g_build_filename (g_get_tmp_dir (), "anygpt-test-voice32k.wav", NULL);
  fail_unless (ag_wav_write_f32 (wav, x, 3200, 32000) == 0);
  e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "voice-prompt", wav, "voice-prompt-tokenizer", st_path, NULL);
  fail_unless (fails_to_start (e, "32000 Hz"));
  g_remove (wav);
  g_free (wav);
  /* over-long prompts (limits.h): a 16-bit WAV of 200 s (a sparse file: its samples are never
   * decoded) is refused; a header claiming 2 hours over 0.1 s of samples is read as 0.1 s */
  wav = g_build_filename (g_get_tmp_dir (), "anygpt-test-voice-long.wav", NULL);
  fail_unless (write_pcm16_header (wav, 16000, 200 * 16000, 200 * 16000));
  e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "voice-prompt", wav, "voice-prompt-tokenizer", st_path, NULL);
  fail_unless (fails_to_start (e, "accepted"));
  fail_unless (write_pcm16_header (wav, 16000, 2 * 3600 * 16000, 1600));
  e = make ("cpu", 3, 0, TRUE);
  g_object_set (e, "voice-prompt", wav, "voice-prompt-tokenizer", st_path, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
  g_remove (wav);
  g_free (wav);
}

GST_END_TEST;

GST_START_TEST (test_caps_and_input)
{
  GstHarness *h = gst_harness_new_with_element (make ("cpu", 3, 0, TRUE), "sink", "src");
  gst_object_unref (h->element);
  /* speech tokens of another codebook size, or music tokens, are refused */
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  GstCaps *music = gst_caps_new_simple ("application/x-anygpt-tokens", "modality",
      G_TYPE_STRING, "music", "codebooks", G_TYPE_INT, 4, "codebook-size", G_TYPE_INT, 2048,
      "rate", GST_TYPE_FRACTION, 50, 1, NULL);
  fail_if (gst_pad_query_accept_caps (sink, music));
  gst_caps_unref (music);
  fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("s")));
  GstCaps *small = speech_caps (1, 512);
  fail_if (gst_pad_send_event (sink, gst_event_new_caps (small)));
  gst_caps_unref (small);
  gst_object_unref (sink);
  gst_harness_set_src_caps (h, speech_caps (2, 1024));
  /* an empty item gives nothing; a ragged one is a stream error */
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new ()), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_allocate (NULL, 12, NULL)),
      GST_FLOW_ERROR);
  /* an out-of-range semantic id is an error, not a crash */
  gint32 bad[2] = { 4096, 0 };
  fail_unless_equals_int (gst_harness_push (h, tokens (bad, 2, 0)), GST_FLOW_ERROR);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
soundstorm_suite (void)
{
  Suite *s = suite_create ("soundstorm");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_plain_cpu);
  tcase_add_test (tc, test_plain_vulkan);
  tcase_add_test (tc, test_prompt_pad);
  tcase_add_test (tc, test_prompt_wait_stop);
  tcase_add_test (tc, test_voice_prompt_file);
  tcase_add_test (tc, test_bad_models);
  tcase_add_test (tc, test_caps_and_input);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 5) {
    g_printerr ("usage: %s SOUNDSTORM.gguf SPEECHTOKENIZER.gguf OTHER.gguf FIXTURE-DIR\n",
        argv[0]);
    return 2;
  }
  ss_path = argv[1];
  st_path = argv[2];
  wrong_path = argv[3];
  fixdir = argv[4];
  gst_check_init (NULL, NULL);
  return gst_check_run_suite (soundstorm_suite (), "soundstorm", __FILE__);
}
