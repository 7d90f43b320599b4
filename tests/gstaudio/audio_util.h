/* Helpers for the audio element tests: the model paths from argv, synthesized signals, an
 * element in a GstHarness with a bus to read its messages, and the core's own results. */
#ifndef AG_GSTAUDIO_UTIL_H
#define AG_GSTAUDIO_UTIL_H

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <math.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"

/* argv: model (tiny SpeechTokenizer GGUF), wrong (a GGUF of another architecture) */
static const gchar *model_path, *wrong_path;

static G_GNUC_UNUSED void
parse_args (int argc, char **argv)
{
  if (argc < 3) {
    g_printerr ("usage: %s SPEECHTOKENIZER.gguf OTHER-ARCH.gguf\n", argv[0]);
    exit (2);
  }
  model_path = argv[1];
  wrong_path = argv[2];
}

/* speech-like: 3 harmonics of f0 under a 4 Hz envelope that never reaches zero, + low noise */
static G_GNUC_UNUSED gfloat *
make_speech (gsize n, gint rate, gdouble f0, guint32 seed)
{
  gfloat *x = g_new (gfloat, n);
  for (gsize i = 0; i < n; i++) {
    gdouble t = (gdouble) i / rate;
    gdouble env = 0.6 + 0.4 * sin (2 * G_PI * 4 * t);
    seed = seed * 1664525u + 1013904223u;
    x[i] = (gfloat) (0.2 * env * (sin (2 * G_PI * f0 * t) + 0.5 * sin (4 * G_PI * f0 * t) +
            0.25 * sin (6 * G_PI * f0 * t)) + 0.003 * ((seed >> 8) / 8388608.0 - 1.0));
  }
  return x;
}

static G_GNUC_UNUSED GstBuffer *
audio_buffer (const gfloat * x, gsize n, GstClockTime pts, gint rate)
{
  GstBuffer *b = n ? gst_buffer_new_memdup (x, n * sizeof (gfloat)) : gst_buffer_new ();
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = pts == GST_CLOCK_TIME_NONE ? GST_CLOCK_TIME_NONE :
      gst_util_uint64_scale (n, GST_SECOND, rate);
  return b;
}

static G_GNUC_UNUSED GstCaps *
audio_caps (const gchar * format, gint rate, gint channels)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, format,
      "rate", G_TYPE_INT, rate, "channels", G_TYPE_INT, channels,
      "layout", G_TYPE_STRING, "interleaved", NULL);
}

/* an element with model-path set, in a harness, playing, with a bus */
static G_GNUC_UNUSED GstHarness *
harness_for (const gchar * factory, const gchar * device, const gchar * first_prop, ...)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  fail_unless (e != NULL, "no element %s", factory);
  g_object_set (e, "model-path", model_path, "threads", 1, NULL);
  if (device)
    gst_util_set_object_arg (G_OBJECT (e), "device", device);
  if (first_prop) {
    va_list ap;
    va_start (ap, first_prop);
    g_object_set_valist (G_OBJECT (e), first_prop, ap);
    va_end (ap);
  }
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  gst_object_unref (bus);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_play (h);
  return h;
}

static G_GNUC_UNUSED GstBus *
harness_bus (GstHarness * h)
{
  return GST_ELEMENT_BUS (h->element);
}

/* Queued bus messages hold the element: detach the bus first or they keep each other alive. */
static G_GNUC_UNUSED void
harness_teardown (GstHarness * h)
{
  gst_element_set_state (h->element, GST_STATE_NULL);
  gst_element_set_bus (h->element, NULL);
  gst_harness_teardown (h);
}

/* Vulkan runs lavapipe's JIT and dlopen()s its ICD: far too slow under valgrind, and ld.so's
 * strncmp over-reads there are reported as errors. The vulkan cases run in the plain and ASan
 * builds only. */
static G_GNUC_UNUSED gboolean
under_valgrind (void)
{
  const gchar *pre = g_getenv ("LD_PRELOAD");
  return pre && strstr (pre, "vgpreload") != NULL;
}

/* the core's codes for x on a cpu backend (threads 1) */
static G_GNUC_UNUSED gint32 *
core_encode (const gfloat * x, gsize n, gint n_q, gint64 * frames)
{
  ag_backend *be = ag_backend_cpu_new (1);
  ag_seanet *m = ag_seanet_load (be, model_path, NULL, NULL);
  fail_unless (m != NULL, "%s", ag_last_error ());
  *frames = ag_seanet_n_frames (m, (gint64) n);
  gint32 *codes = g_new (gint32, *frames * n_q);
  fail_unless (ag_seanet_encode (m, x, (gint64) n, n_q, codes) == 0, "%s", ag_last_error ());
  ag_seanet_free (m);
  ag_backend_free (be);
  return codes;
}

static G_GNUC_UNUSED gboolean
vulkan_present (void)
{
  return ag_vulkan_device_count () > 0;
}

#endif
