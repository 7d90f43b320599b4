/* The elements on arbitrary input, in GstHarness on the tests' tiny models: the first byte picks
 * the element (encodecdecode, soundstorm, anygptllm on a token pad or its text pad, seedtokenize),
 * the next bytes its caps (codebooks, codebook size, modality / frame size and format) and
 * settings, the rest is the data, pushed as one or two buffers, then EOS. Whatever comes in, the
 * element must produce output, drop it, or post an error or warning, within a bounded time; a
 * crash, a sanitizer report, a GLib critical or a hang is a finding.
 * Models: AG_FUZZ_ST (SpeechTokenizer), AG_FUZZ_SS (SoundStorm), AG_FUZZ_LLM (LLaMA),
 * AG_FUZZ_SEED (SEED tokenizer) -- tests/speech, tests/soundstorm, tests/llm, tests/gstimage.
 * The plugin is the one built in this build tree (AG_FUZZ_PLUGIN_DIR). */
#include "fuzz_util.h"

#include <gst/check/gstharness.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gchar *
model (const gchar * var)
{
  const gchar *p = g_getenv (var);
  if (!p || !*p) {
    fprintf (stderr, "fuzz_gst_elements: set %s (see the header of fuzz_gst_elements.c)\n", var);
    abort ();
  }
  return p;
}

static void
init_once (void)
{
  static gboolean done;
  if (done)
    return;
  g_setenv ("GST_PLUGIN_PATH_1_0", AG_FUZZ_PLUGIN_DIR, TRUE);
  g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  if (!g_getenv ("GST_REGISTRY_1_0"))
    g_setenv ("GST_REGISTRY_1_0", AG_FUZZ_PLUGIN_DIR "/../tests/fuzz/registry.bin", TRUE);
  gst_init (NULL, NULL);
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL);
  done = TRUE;
}

static GstCaps *
token_caps (fz_reader * r)
{
  static const gchar *const mods[] = { "speech", "image", "music" };
  static const gint sizes[] = { 64, 1024, 2048, 8192, 1, 100000 };
  guint8 m = fz_u8 (r), c = fz_u8 (r), k = fz_u8 (r);
  return gst_caps_new_simple ("application/x-anygpt-tokens", "modality", G_TYPE_STRING, mods[m % 3],
      "codebooks", G_TYPE_INT, 1 + c % 8, "codebook-size", G_TYPE_INT, sizes[k % 6], "rate",
      GST_TYPE_FRACTION, m % 3 == 1 ? 0 : 50, 1, NULL);
}

static GstCaps *
video_caps (fz_reader * r)
{
  static const gchar *const fmts[] = { "RGB", "BGR", "RGBx", "BGRA", "xRGB", "ABGR" };
  guint8 f = fz_u8 (r);
  gint w = 1 + fz_u8 (r) % 64, h = 1 + fz_u8 (r) % 64;
  return gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, fmts[f % 6], "width", G_TYPE_INT,
      w, "height", G_TYPE_INT, h, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
}

/* Waits (at most a few seconds) for EOS downstream or an error on the bus. */
static void
drain (GstHarness * h, GstBus * bus)
{
  for (gint i = 0; i < 5000; i++) {
    GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (m) {
      gst_message_unref (m);
      return;
    }
    GstEvent *e;
    gboolean eos = FALSE;
    while ((e = gst_harness_try_pull_event (h))) {
      eos |= GST_EVENT_TYPE (e) == GST_EVENT_EOS;
      gst_event_unref (e);
    }
    GstBuffer *b;
    while ((b = gst_harness_try_pull (h)))
      gst_buffer_unref (b);
    if (eos)
      return;
    g_usleep (1000);
  }
  fprintf (stderr, "fuzz_gst_elements: no EOS and no error after 5 s\n");
  abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  init_once ();
  fz_reader r = { data, size };
  guint8 which = fz_u8 (&r) % 5, opt = fz_u8 (&r), split = fz_u8 (&r);
  const gchar *factory, *sink = "sink", *src = "src", *path;
  GstCaps *caps;
  switch (which) {
    case 0:
      factory = "encodecdecode", path = model ("AG_FUZZ_ST"), caps = token_caps (&r);
      break;
    case 1:
      factory = "soundstorm", path = model ("AG_FUZZ_SS"), caps = token_caps (&r);
      break;
    case 2:
      factory = "anygptllm", path = model ("AG_FUZZ_LLM"), caps = token_caps (&r);
      sink = "tokens_sink_%u", src = "text_src";
      break;
    case 3:
      factory = "anygptllm", path = model ("AG_FUZZ_LLM");
      caps = gst_caps_from_string ("text/x-raw, format=utf8");
      sink = "text_sink_%u", src = "text_src";
      break;
    default:
      factory = "seedtokenize", path = model ("AG_FUZZ_SEED"), caps = video_caps (&r);
      break;
  }
  GstElement *e = gst_element_factory_make (factory, NULL);
  if (!e)
    abort ();
  g_object_set (e, "model-path", path, "threads", 1, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  if (which == 1)                 /* and streamed items every other time: chunks of 1..4 */
    g_object_set (e, "steps", 1 + opt % 2, "chunk", (opt >> 1) % 2 ? 1 + (opt >> 2) % 4 : 0,
        NULL);
  if (which == 0)
    g_object_set (e, "stream-context", (opt % 3) * 2, NULL);
  if (which == 2 || which == 3)
    g_object_set (e, "speech-chunk", (opt >> 6) % 2 ? 2 : 0, NULL);
  if (which == 2 || which == 3) {
    static const gchar *const tasks[] = { "chat", "asr", "tts", "caption", "text-to-image", "text-to-music",
      "music-caption", "raw"
    };
    gst_util_set_object_arg (G_OBJECT (e), "task", tasks[opt % 8]);
    g_object_set (e, "max-new-tokens", 1 + (opt >> 3) % 6, "temperature", 0.0, NULL);
  }
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  GstHarness *h = gst_harness_new_with_element (e, sink, src);
  gst_object_unref (e);
  gst_harness_set_src_caps (h, caps);
  gst_harness_play (h);
  gsize n = r.n, cut = n ? split % (n + 1) : 0;
  /* the first piece ends an item (MARKER) or not: streamed items span buffers */
  if (cut) {
    GstBuffer *b = gst_buffer_new_memdup (r.p, cut);
    if (opt & 0x80)
      GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_MARKER);
    gst_harness_push (h, b);
  }
  if (n > cut)
    gst_harness_push (h, gst_buffer_new_memdup (r.p + cut, n - cut));
  gst_harness_push_event (h, gst_event_new_eos ());
  drain (h, bus);
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  return 0;
}
