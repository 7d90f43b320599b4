#include "gstanygptcore.h"

#include "anygpt/error.h"

GST_DEBUG_CATEGORY (anygpt_core_debug);
#define GST_CAT_DEFAULT anygpt_core_debug

void
anygpt_core_debug_init (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (anygpt_core_debug, "anygpt", 0, "anygpt compute core bridge");
    g_once_init_leave (&done, 1);
  }
}

GType
gst_anygpt_device_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ANYGPT_DEVICE_AUTO, "First Vulkan GPU, else CPU", "auto"},
    {GST_ANYGPT_DEVICE_CPU, "CPU (thread pool, SIMD kernels)", "cpu"},
    {GST_ANYGPT_DEVICE_VULKAN, "Vulkan device (device-index; -1: first GPU, else any)", "vulkan"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstAnygptDevice", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

G_DEFINE_QUARK (gst-anygpt-error-quark, gst_anygpt_error);

void
gst_anygpt_post_progress (GstElement * element, GstProgressType type, const gchar * code,
    const gchar * text)
{
  gst_element_post_message (element,
      gst_message_new_progress (GST_OBJECT (element), type, code, text));
}

bool
gst_anygpt_load_progress_cb (void *user, uint64_t done, uint64_t total)
{
  GstAnygptLoadProgress *p = user;
  gint percent = total ? (gint) (done * 100 / total) : 100;
  if (percent > p->last_percent) {
    GstMessage *m = gst_message_new_progress (GST_OBJECT (p->element),
        GST_PROGRESS_TYPE_CONTINUE, "load", "loading model");
    /* progress messages carry a "percent" field; the constructor sets 0 for CONTINUE */
    gst_structure_set (gst_message_writable_structure (m), "percent", G_TYPE_INT, percent,
        NULL);
    gst_element_post_message (p->element, m);
    p->last_percent = percent;
  }
  return true;
}

/* ---- token caps ---- */

const gchar *
gst_anygpt_modality_name (GstAnygptModality m)
{
  switch (m) {
    case GST_ANYGPT_MODALITY_SPEECH:
      return "speech";
    case GST_ANYGPT_MODALITY_IMAGE:
      return "image";
    case GST_ANYGPT_MODALITY_MUSIC:
      return "music";
  }
  return NULL;
}

GstCaps *
gst_anygpt_tokens_caps_new (const GstAnygptTokensInfo * info)
{
  g_return_val_if_fail (gst_anygpt_modality_name (info->modality) != NULL, NULL);
  return gst_caps_new_simple (GST_ANYGPT_TOKENS_MEDIA_TYPE,
      "modality", G_TYPE_STRING, gst_anygpt_modality_name (info->modality),
      "codebooks", G_TYPE_INT, info->codebooks,
      "codebook-size", G_TYPE_INT, info->codebook_size,
      "rate", GST_TYPE_FRACTION, info->rate_n, info->rate_d, NULL);
}

gboolean
gst_anygpt_tokens_info_from_caps (GstAnygptTokensInfo * info, const GstCaps * caps)
{
  if (!caps || !gst_caps_is_fixed (caps) || gst_caps_get_size (caps) != 1)
    return FALSE;
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  if (!gst_structure_has_name (s, GST_ANYGPT_TOKENS_MEDIA_TYPE))
    return FALSE;
  const gchar *mod = gst_structure_get_string (s, "modality");
  GstAnygptTokensInfo r = { 0 };
  if (!mod)
    return FALSE;
  if (g_str_equal (mod, "speech"))
    r.modality = GST_ANYGPT_MODALITY_SPEECH;
  else if (g_str_equal (mod, "image"))
    r.modality = GST_ANYGPT_MODALITY_IMAGE;
  else if (g_str_equal (mod, "music"))
    r.modality = GST_ANYGPT_MODALITY_MUSIC;
  else
    return FALSE;
  if (!gst_structure_get_int (s, "codebooks", &r.codebooks) || r.codebooks < 1 ||
      r.codebooks > 64 ||
      !gst_structure_get_int (s, "codebook-size", &r.codebook_size) || r.codebook_size < 1 ||
      !gst_structure_get_fraction (s, "rate", &r.rate_n, &r.rate_d) || r.rate_n < 0 ||
      r.rate_d <= 0)
    return FALSE;
  *info = r;
  return TRUE;
}

GstCaps *
gst_anygpt_tokens_caps_any (const gchar * modality)
{
  GstCaps *c = gst_caps_new_simple (GST_ANYGPT_TOKENS_MEDIA_TYPE,
      "codebooks", GST_TYPE_INT_RANGE, 1, 64,
      "codebook-size", GST_TYPE_INT_RANGE, 1, G_MAXINT,
      "rate", GST_TYPE_FRACTION_RANGE, 0, 1, G_MAXINT, 1, NULL);
  if (modality)
    gst_caps_set_simple (c, "modality", G_TYPE_STRING, modality, NULL);
  return c;
}

gboolean
gst_anygpt_tokens_map (GstBuffer * buf, const GstAnygptTokensInfo * info, GstMapInfo * map,
    const gint32 ** ids, gsize * n_frames)
{
  if (!gst_buffer_map (buf, map, GST_MAP_READ))
    return FALSE;
  gsize frame = 4 * (gsize) info->codebooks;
  if (map->size % frame != 0 || ((guintptr) map->data & 3) != 0) {
    gst_buffer_unmap (buf, map);
    return FALSE;
  }
  *ids = (const gint32 *) map->data;
  *n_frames = map->size / frame;
  return TRUE;
}

GstBuffer *
gst_anygpt_tokens_buffer_new (const gint32 * ids, gsize n_frames, gint codebooks)
{
  gsize n = n_frames * (gsize) codebooks;
  GstBuffer *b = gst_buffer_new_allocate (NULL, n * 4, NULL);
  if (n)
    gst_buffer_fill (b, 0, ids, n * 4);
  return b;
}
