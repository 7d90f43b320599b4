#include "gstanygptcodec.h"

#include "anygpt/error.h"

#define GST_CAT_DEFAULT anygpt_core_debug

ag_seanet *
gst_anygpt_codec_load (GstElement * element, const gchar * path, GstAnygptDevice device,
    gint device_index, gint threads, const gchar * kind, gint want_rate, ag_backend ** backend)
{
  GError *err = NULL;
  *backend = NULL;
  if (!path || !*path) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("No model file given"),
        ("set model-path to a %s GGUF", kind));
    return NULL;
  }
  ag_backend *be = gst_anygpt_backend_open (device, device_index, threads, &err);
  if (!be) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ, ("Cannot open compute device"), ("%s",
            err->message));
    g_clear_error (&err);
    return NULL;
  }
  GstAnygptLoadProgress prog = { element, -1 };
  gst_anygpt_post_progress (element, GST_PROGRESS_TYPE_START, "load", path);
  ag_seanet *m = ag_seanet_load (be, path, gst_anygpt_load_progress_cb, &prog);
  gchar *reason = NULL;
  if (!m)
    reason = g_strdup (ag_last_error ());
  else if (want_rate > 0 && ag_seanet_info_of (m)->sample_rate != want_rate)
    reason = g_strdup_printf ("a %d Hz codec, not a %d Hz %s model",
        ag_seanet_info_of (m)->sample_rate, want_rate, kind);
  if (reason) {
    gst_anygpt_post_progress (element, GST_PROGRESS_TYPE_ERROR, "load", reason);
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ, ("Cannot use model file \"%s\"", path),
        ("%s", reason));
    g_free (reason);
    if (m)
      ag_seanet_free (m);
    ag_backend_free (be);
    return NULL;
  }
  const ag_seanet_info *i = ag_seanet_info_of (m);
  gst_anygpt_post_progress (element, GST_PROGRESS_TYPE_COMPLETE, "load", path);
  GST_INFO_OBJECT (element, "loaded %s: %d Hz, hop %d, %d x %d codebooks, on %s", path,
      i->sample_rate, i->hop, i->n_q, i->codebook_size, ag_backend_device_name (be));
  *backend = be;
  return m;
}

void
gst_anygpt_codec_frame_rate (const ag_seanet_info * info, gint * num, gint * den)
{
  gint a = info->sample_rate, b = info->hop;
  while (b) {
    gint t = a % b;
    a = b;
    b = t;
  }
  *num = info->sample_rate / a;
  *den = info->hop / a;
}
