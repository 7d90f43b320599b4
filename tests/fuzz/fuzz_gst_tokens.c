/* The token caps and buffer helpers every anygpt element uses (gst/gstanygptcore.c). The input
 * builds the caps an upstream peer could send (media type, modality, codebooks, codebook-size,
 * rate, each field present or not, of the right GType or another, any value; fixed or a list)
 * and a token buffer (the rest of the input, at an aligned or unaligned offset). Caps read as
 * token caps must survive gst_anygpt_tokens_caps_new and read back the same; a buffer must map
 * to whole frames or be refused. (GStreamer's own caps-string parser is not ours to fuzz.) */
#include "fuzz_util.h"

#include "gstanygptcore.h"

#include <stdlib.h>
#include <string.h>

static void
set_field (GstStructure * s, const gchar * name, fz_reader * r, gboolean fraction)
{
  switch (fz_u8 (r) % 6) {
    case 0:                    /* absent */
      break;
    case 1:
      gst_structure_set (s, name, G_TYPE_INT, (gint) fz_u32 (r), NULL);
      break;
    case 2:
      if (fraction) {           /* GStreamer refuses a zero denominator itself */
        gint num = (gint) fz_range (r, -2, 100), den = (gint) fz_range (r, -1, 2);
        gst_structure_set (s, name, GST_TYPE_FRACTION, num, den ? den : 3, NULL);
      }
      else
        gst_structure_set (s, name, G_TYPE_INT, (gint) fz_range (r, -2, 70), NULL);
      break;
    case 3:
      gst_structure_set (s, name, G_TYPE_STRING, "8", NULL);
      break;
    case 4:
      gst_structure_set (s, name, GST_TYPE_INT_RANGE, 1, 64, NULL);
      break;
    default:
      gst_structure_set (s, name, G_TYPE_DOUBLE, 50.0, NULL);
      break;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  static gboolean inited;
  if (!inited) {
    gst_init (NULL, NULL);
    /* a GLib critical (a g_return_if_fail tripped) is a finding */
    g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    inited = TRUE;
  }
  fz_reader r = { data, size };
  static const gchar *const types[] = { GST_ANYGPT_TOKENS_MEDIA_TYPE, "audio/x-raw", "application/x-anygpt" };
  static const gchar *const mods[] = { "speech", "image", "music", "text", "", "Speech" };
  guint8 sel = fz_u8 (&r);
  GstStructure *s = gst_structure_new_empty (types[sel % 3]);
  guint8 m = fz_u8 (&r);
  if (m % 8 < 6)
    gst_structure_set (s, "modality", G_TYPE_STRING, mods[m % 8], NULL);
  else if (m % 8 == 6)
    gst_structure_set (s, "modality", G_TYPE_INT, 1, NULL);
  set_field (s, "codebooks", &r, FALSE);
  set_field (s, "codebook-size", &r, FALSE);
  set_field (s, "rate", &r, TRUE);
  GstCaps *caps = gst_caps_new_full (s, NULL);
  if (sel & 0x80)               /* two structures: not fixed */
    gst_caps_append_structure (caps, gst_structure_new_empty (GST_ANYGPT_TOKENS_MEDIA_TYPE));
  GstAnygptTokensInfo info;
  if (gst_anygpt_tokens_info_from_caps (&info, caps)) {
    if (info.codebooks < 1 || info.codebooks > 64 || info.codebook_size < 1 || info.rate_d <= 0)
      abort ();
    GstCaps *again = gst_anygpt_tokens_caps_new (&info);
    GstAnygptTokensInfo info2;
    if (!again || !gst_anygpt_tokens_info_from_caps (&info2, again) || memcmp (&info, &info2, sizeof info))
      abort ();
    GstCaps *any = gst_anygpt_tokens_caps_any (gst_anygpt_modality_name (info.modality));
    if (!gst_caps_can_intersect (any, again))
      abort ();                 /* what the elements' templates accept */
    gst_caps_unref (any);
    gst_caps_unref (again);
    gsize skew = sel & 0x40 ? 1 : 0;    /* unaligned memory: must be refused, not read */
    gsize n = r.n;
    guint8 *mem = g_malloc (n + skew + 1);
    memcpy (mem + skew, r.p, n);
    GstBuffer *buf = gst_buffer_new_wrapped_full (0, mem, n + skew, skew, n, mem, g_free);
    GstMapInfo map;
    const gint32 *ids;
    gsize frames;
    if (gst_anygpt_tokens_map (buf, &info, &map, &ids, &frames)) {
      if (skew || frames * 4 * (gsize) info.codebooks != map.size)
        abort ();
      GstBuffer *copy = gst_anygpt_tokens_buffer_new (ids, frames, info.codebooks);
      if (gst_buffer_get_size (copy) != map.size ||
          (map.size && gst_buffer_memcmp (copy, 0, map.data, map.size)))
        abort ();
      gst_buffer_unref (copy);
      gst_buffer_unmap (buf, &map);
    } else if (!skew && n % (4 * (gsize) info.codebooks) == 0) {
      abort ();                 /* whole, aligned frames refused */
    }
    gst_buffer_unref (buf);
  }
  gst_caps_unref (caps);
  return 0;
}
