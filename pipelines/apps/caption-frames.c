/* anygpt-caption-frames: captions frames an application pushes through appsrc and pulls the
 * timed captions from appsink, the way a media app embeds the anygpt elements:
 *
 *   appsrc (RGB frames, PTS = i * interval) ! seedtokenize ! anygptllm task=caption
 *     text_src ! appsink
 *
 * The frames here come from binary PPM files (P6, 8-bit: what `convert x.png x.ppm` or PIL
 * write); an app would push its own. Each caption is printed as "START END TEXT" (seconds, the
 * caption's PTS and PTS + duration: the frame it describes until the next one), in the order the
 * frames were pushed.
 *
 * usage: anygpt-caption-frames [options] IMAGE.ppm...
 *   --llm FILE, --seed-tokenizer FILE, --models DIR (standard names; also $ANYGPT_LLM,
 *   $ANYGPT_SEED_TOKENIZER, $ANYGPT_MODELS), --device DEV, --interval SECONDS (default 2),
 *   --temperature T, --seed N, --max-new-tokens N */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a binary PPM (P6, maxval 255) into a new RGB buffer; NULL with a message otherwise. */
static GstBuffer *
read_ppm (const gchar * path, gint * width, gint * height, GError ** error)
{
  gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  /* header: "P6" then width, height, maxval as decimal words, comments after '#', one space */
  gsize pos = 2;
  gint64 v[3];
  gboolean ok = len > 2 && data[0] == 'P' && data[1] == '6';
  for (int i = 0; ok && i < 3; i++) {
    while (pos < len && (g_ascii_isspace (data[pos]) || data[pos] == '#')) {
      if (data[pos] == '#')
        while (pos < len && data[pos] != '\n')
          pos++;
      else
        pos++;
    }
    gchar *end = NULL;
    v[i] = pos < len && g_ascii_isdigit (data[pos]) ? g_ascii_strtoll (data + pos, &end, 10) : -1;
    ok = v[i] > 0 && v[i] <= (i < 2 ? 16384 : 255);
    if (ok)
      pos = (gsize) (end - data);
  }
  ok = ok && v[2] == 255 && pos < len && g_ascii_isspace (data[pos]);
  gsize need = ok ? (gsize) v[0] * (gsize) v[1] * 3 : 0;
  if (!ok || len - pos - 1 < need) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s: not a binary 8-bit PPM (P6, maxval 255) or truncated", path);
    g_free (data);
    return NULL;
  }
  *width = (gint) v[0];
  *height = (gint) v[1];
  GstBuffer *buf = gst_buffer_new_memdup (data + pos + 1, need);
  g_free (data);
  return buf;
}

/* The models folder's standard name unless a file or variable names the model. */
static gchar *
model_path (const gchar * opt, const gchar * env, const gchar * models, const gchar * name)
{
  if (opt)
    return g_strdup (opt);
  if (g_getenv (env) && *g_getenv (env))
    return g_strdup (g_getenv (env));
  if (models && *models)
    return g_build_filename (models, name, NULL);
  return NULL;
}

/* Posts the first error on the bus, if any; TRUE when there was one. */
static gboolean
report_error (GstElement * pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gst_object_unref (bus);
  if (!msg)
    return FALSE;
  GError *err = NULL;
  gchar *dbg = NULL;
  gst_message_parse_error (msg, &err, &dbg);
  g_printerr ("error: %s: %s\n", GST_OBJECT_NAME (msg->src), err->message);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (msg);
  return TRUE;
}

int
main (int argc, char **argv)
{
  gchar *llm_opt = NULL, *seed_tok_opt = NULL, *models = NULL, *device = NULL;
  gchar **images = NULL;
  gdouble interval = 2.0, temperature = -1;
  gint64 seed = -1;
  gint max_new = 0;
  GOptionEntry entries[] = {
    {"llm", 0, 0, G_OPTION_ARG_FILENAME, &llm_opt, "AnyGPT LLM GGUF", "FILE"},
    {"seed-tokenizer", 0, 0, G_OPTION_ARG_FILENAME, &seed_tok_opt, "SEED tokenizer GGUF", "FILE"},
    {"models", 0, 0, G_OPTION_ARG_FILENAME, &models, "models folder (standard names)", "DIR"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device, "auto | cpu | vulkan", "DEV"},
    {"interval", 0, 0, G_OPTION_ARG_DOUBLE, &interval, "seconds between frames (default 2)", "S"},
    {"temperature", 't', 0, G_OPTION_ARG_DOUBLE, &temperature, "sampling temperature", "T"},
    {"seed", 's', 0, G_OPTION_ARG_INT64, &seed, "sampling seed", "N"},
    {"max-new-tokens", 'n', 0, G_OPTION_ARG_INT, &max_new, "tokens per caption at most", "N"},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images, NULL, "IMAGE.ppm..."},
    {NULL}
  };
  GOptionContext *ctx = g_option_context_new ("IMAGE.ppm... - caption frames pushed through appsrc");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  GError *error = NULL;
  int status = 1;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !images || !images[0] || interval <= 0) {
    g_printerr ("error: %s\n", error ? error->message : "no images, or an interval <= 0 (see --help)");
    g_clear_error (&error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);
  if (!models)
    models = g_strdup (g_getenv ("ANYGPT_MODELS"));
  gchar *llm = model_path (llm_opt, "ANYGPT_LLM", models, "anygpt-llm.gguf");
  gchar *seed_tok = model_path (seed_tok_opt, "ANYGPT_SEED_TOKENIZER", models, "seed-tokenizer.gguf");
  GstElement *pipeline = NULL;
  if (!llm || !seed_tok) {
    g_printerr ("error: no models: pass --models DIR or set ANYGPT_MODELS (see README.md)\n");
    status = 2;
    goto out;
  }

  /* the elements, by name in a description: what an app would write */
  pipeline = gst_parse_launch ("appsrc name=src format=time ! seedtokenize name=tok ! "
      "llm.tokens_sink_0 anygptllm name=llm task=caption llm.text_src ! appsink name=sink sync=false",
      &error);
  if (!pipeline) {
    g_printerr ("error: %s\n", error->message);
    g_clear_error (&error);
    goto out;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *tok = gst_bin_get_by_name (GST_BIN (pipeline), "tok");
  GstElement *llm_el = gst_bin_get_by_name (GST_BIN (pipeline), "llm");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_object_set (tok, "model-path", seed_tok, NULL);
  g_object_set (llm_el, "model-path", llm, NULL);
  if (device) {
    gst_util_set_object_arg (G_OBJECT (tok), "device", device);
    gst_util_set_object_arg (G_OBJECT (llm_el), "device", device);
  }
  if (temperature >= 0)
    g_object_set (llm_el, "temperature", temperature, NULL);
  if (seed >= 0)
    g_object_set (llm_el, "seed", seed, NULL);
  if (max_new > 0)
    g_object_set (llm_el, "max-new-tokens", max_new, NULL);
  gst_object_unref (tok);
  gst_object_unref (llm_el);

  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    report_error (pipeline);
    gst_object_unref (src);
    gst_object_unref (sink);
    goto out;
  }
  /* push every frame with its caps (sizes may differ), then end the stream */
  gboolean pushed = TRUE;
  for (guint i = 0; images[i] && pushed; i++) {
    gint w = 0, h = 0;
    GstBuffer *buf = read_ppm (images[i], &w, &h, &error);
    if (!buf) {
      g_printerr ("error: %s\n", error->message);
      g_clear_error (&error);
      pushed = FALSE;
      break;
    }
    GST_BUFFER_PTS (buf) = (GstClockTime) (i * interval * GST_SECOND);
    GST_BUFFER_DURATION (buf) = (GstClockTime) (interval * GST_SECOND);
    GstCaps *caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "RGB",
        "width", G_TYPE_INT, w, "height", G_TYPE_INT, h, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
    GstSample *sample = gst_sample_new (buf, caps, NULL, NULL);
    pushed = gst_app_src_push_sample (GST_APP_SRC (src), sample) == GST_FLOW_OK;
    gst_sample_unref (sample);
    gst_caps_unref (caps);
    gst_buffer_unref (buf);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  /* pull the captions until EOS (NULL), printing each with its time span */
  guint n = 0;
  GstSample *sample;
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstMapInfo map;
    if (buf && gst_buffer_map (buf, &map, GST_MAP_READ)) {
      GstClockTime pts = GST_BUFFER_PTS (buf), dur = GST_BUFFER_DURATION (buf);
      gchar *text = g_strndup (map.size ? (const gchar *) map.data : "", map.size);
      g_strstrip (g_strdelimit (text, "\r\n", ' '));
      printf ("%.3f %.3f %s\n", GST_CLOCK_TIME_IS_VALID (pts) ? (double) pts / GST_SECOND : -1.0,
          GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (dur) ?
          (double) (pts + dur) / GST_SECOND : -1.0, text);
      fflush (stdout);
      g_free (text);
      gst_buffer_unmap (buf, &map);
      n++;
    }
    gst_sample_unref (sample);
  }
  status = report_error (pipeline) || !pushed ? 1 : 0;
  g_printerr ("%u captions\n", n);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
out:
  if (pipeline)
    gst_object_unref (pipeline);
  g_free (llm);
  g_free (seed_tok);
  g_free (llm_opt);
  g_free (seed_tok_opt);
  g_free (models);
  g_free (device);
  g_strfreev (images);
  return status;
}
