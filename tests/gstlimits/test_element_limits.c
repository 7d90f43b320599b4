/* Over-long inputs at the elements (anygpt/limits.h, "element inputs"), in GstHarness on the tiny
 * test models: each is refused with an error naming the limit before anything of its size is
 * allocated or computed, or cut as the element documents. Small and fast: the inputs claim or
 * carry just past each limit.
 *   anygptllm      a 10k-word text message for a short context; a message over
 *                  AG_MAX_MESSAGE_BYTES
 *   soundstorm     an item of AG_SOUNDSTORM_MAX_FRAMES + 1 frames
 *   encodecdecode  a token item of more than AG_CODEC_MAX_SECONDS of audio
 *   seedtokenize   caps of 50000 x 50000 (refused at caps time, nothing allocated)
 * (speechtokenize's max-utterance-s cut: tests/gstaudio/test_speechtokenize.c test_max_utterance;
 * soundstorm's voice-prompt file: tests/gstaudio/test_soundstorm.c test_bad_models)
 * usage: test_element_limits LLM.gguf SOUNDSTORM.gguf SPEECHTOKENIZER.gguf [SEED.gguf] */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "anygpt/limits.h"
#include "anygpt/soundstorm.h"

static const gchar *llm_path, *ss_path, *st_path, *seed_path;

static GstHarness *
harness (const gchar * factory, const gchar * model, const gchar * sink, const gchar * src)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  fail_unless (e != NULL, "no element %s", factory);
  g_object_set (e, "model-path", model, "threads", 1, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  gst_object_unref (bus);
  GstHarness *h = gst_harness_new_with_element (e, sink, src);
  gst_object_unref (e);
  return h;
}

/* Messages left on the element's own bus hold references to the element, which holds the bus:
 * flushing it first lets teardown free both (valgrind counts them lost otherwise). */
static void
teardown (GstHarness * h)
{
  gst_bus_set_flushing (GST_ELEMENT_BUS (h->element), TRUE);
  gst_harness_teardown (h);
}

/* The first error (or warning: a request dropped, the element going on) on the element's bus:
 * its text and debug text contain all of want (NULL-ended). */
static void
expect_error (GstHarness * h, const gchar * first, ...)
{
  GstMessage *m = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (h->element), 30 * GST_SECOND,
      GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
  fail_unless (m != NULL, "no error posted");
  GError *err = NULL;
  gchar *dbg = NULL;
  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR)
    gst_message_parse_error (m, &err, &dbg);
  else
    gst_message_parse_warning (m, &err, &dbg);
  gchar *all = g_strdup_printf ("%s | %s", err->message, dbg ? dbg : "");
  va_list ap;
  va_start (ap, first);
  for (const gchar * w = first; w; w = va_arg (ap, const gchar *))
    fail_unless (strstr (all, w) != NULL, "error lacks '%s': %s", w, all);
  va_end (ap);
  g_print ("# %s\n", all);
  g_free (all);
  g_free (dbg);
  g_error_free (err);
  gst_message_unref (m);
}

static GstCaps *
speech_caps (gint codebooks, gint size)
{
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING,
      "speech", "codebooks", G_TYPE_INT, codebooks, "codebook-size", G_TYPE_INT, size, "rate",
      GST_TYPE_FRACTION, 50, 1, NULL);
}

GST_START_TEST (test_llm_message_longer_than_context)
{
  GstHarness *h = harness ("anygptllm", llm_path, "text_sink_%u", "text_src");
  g_object_set (h->element, "context-length", 256, "max-new-tokens", 4, NULL);
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  GString *msg = g_string_new (NULL);
  for (gint i = 0; i < 10000; i++)      /* 10k words: more than 10k tokens */
    g_string_append (msg, " hello");
  gsize len = msg->len;
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_wrapped (g_string_free (msg, FALSE), len)),
      GST_FLOW_OK);
  /* the request is dropped with the reason (a warning: the element serves the next one) */
  expect_error (h, "prompt has", "context holds", "context-length", NULL);
  /* a message over AG_MAX_MESSAGE_BYTES: refused before its prompt is built or tokenized */
  gsize big = (gsize) AG_MAX_MESSAGE_BYTES + 1;
  gchar *m = g_malloc (big);
  memset (m, 'a', big);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_wrapped (m, big)), GST_FLOW_OK);
  expect_error (h, "message of 1048577 bytes", "accepted", NULL);
  teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_soundstorm_item_too_long)
{
  GstHarness *h = harness ("soundstorm", ss_path, "sink", "src");
  gst_harness_set_src_caps (h, speech_caps (1, 1024));
  gst_harness_play (h);
  gsize n = AG_SOUNDSTORM_MAX_FRAMES + 1;
  gint32 *sem = g_new0 (gint32, n);
  gst_harness_push (h, gst_buffer_new_wrapped (sem, n * 4));
  gchar *want = g_strdup_printf ("exceed %d", AG_SOUNDSTORM_MAX_FRAMES);
  expect_error (h, "Item too long", want, NULL);
  g_free (want);
  teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_codec_item_too_long)
{
  GstHarness *h = harness ("encodecdecode", st_path, "sink", "src");
  gst_harness_set_src_caps (h, speech_caps (1, 64));     /* the tiny model's codebooks */
  gst_harness_play (h);
  /* one frame more than AG_CODEC_MAX_SECONDS at 50 frames/s (the output would be 230 MB) */
  gsize n = (gsize) AG_CODEC_MAX_SECONDS * 50 + 1;
  gint32 *codes = g_new0 (gint32, n);
  gst_harness_push (h, gst_buffer_new_wrapped (codes, n * 4));
  gchar *want = g_strdup_printf ("more than %d s", AG_CODEC_MAX_SECONDS);
  expect_error (h, "too long", want, NULL);
  g_free (want);
  teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_seedtokenize_huge_caps)
{
  if (!seed_path)
    return;
  GstHarness *h = harness ("seedtokenize", seed_path, "sink", "src");
  gst_harness_play (h);
  GstCaps *c = gst_caps_from_string ("video/x-raw, format=RGB, width=50000, height=50000, "
      "framerate=0/1");
  gst_harness_set_src_caps (h, c);
  /* the frames are never asked for: a buffer of the claimed size would be 7.5 GB */
  expect_error (h, "50000x50000", "1..32768", NULL);
  teardown (h);
}

GST_END_TEST;

static Suite *
limits_suite (void)
{
  Suite *s = suite_create ("element-limits");
  TCase *tc = tcase_create ("limits");
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_llm_message_longer_than_context);
  tcase_add_test (tc, test_soundstorm_item_too_long);
  tcase_add_test (tc, test_codec_item_too_long);
  tcase_add_test (tc, test_seedtokenize_huge_caps);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 4) {
    g_printerr ("usage: %s LLM.gguf SOUNDSTORM.gguf SPEECHTOKENIZER.gguf [SEED.gguf]\n", argv[0]);
    return 2;
  }
  llm_path = argv[1];
  ss_path = argv[2];
  st_path = argv[3];
  seed_path = argc > 4 ? argv[4] : NULL;
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (limits_suite (), "element-limits", __FILE__);
}
