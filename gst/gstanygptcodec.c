#include "gstanygptcodec.h"

#include "anygpt/error.h"
#include "gstanygptshared.h"

#define GST_CAT_DEFAULT anygpt_core_debug

static gpointer
load_seanet (ag_backend * be, const gchar * path, ag_progress_fn progress, void *progress_user,
    gpointer user)
{
  (void) user;
  return ag_seanet_load (be, path, progress, progress_user);
}

ag_seanet *
gst_anygpt_codec_load (GstElement * element, const gchar * kind, gint want_rate)
{
  gchar *what = g_strdup_printf ("a %s GGUF", kind);
  ag_seanet *m = gst_anygpt_shared_load (element, what, load_seanet, NULL);
  g_free (what);
  if (!m)
    return NULL;
  const ag_seanet_info *i = ag_seanet_info_of (m);
  if (want_rate > 0 && i->sample_rate != want_rate) {
    gchar *reason = g_strdup_printf ("a %d Hz codec, not a %d Hz %s model", i->sample_rate,
        want_rate, kind);
    gst_anygpt_shared_load_failed (element, reason);
    g_free (reason);
    ag_seanet_free (m);
    gst_anygpt_shared_close (element);
    return NULL;
  }
  GST_INFO_OBJECT (element, "loaded %s: %d Hz, hop %d, %d x %d codebooks, on %s",
      gst_anygpt_shared_model_path (element), i->sample_rate, i->hop, i->n_q, i->codebook_size,
      ag_backend_device_name (gst_anygpt_shared_backend (element)));
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
