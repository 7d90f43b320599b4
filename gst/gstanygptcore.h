/* Shared plumbing for the anygpt elements (no math here: that is core/):
 * - the debug category,
 * - the `device` property type (auto|cpu|vulkan) (the properties and the shared backend:
 *   gstanygptshared.h),
 * - model-load progress as GST_MESSAGE_PROGRESS,
 * - the token caps family of design.md:
 *     application/x-anygpt-tokens, modality=(string){speech,image,music}, codebooks=(int)N,
 *     codebook-size=(int)K, rate=(fraction)50/1 (0/1 for images)
 *   A buffer holds int32 little-endian ids, frame-major [frames][codebooks], one whole item. */
#ifndef GST_ANYGPT_CORE_H
#define GST_ANYGPT_CORE_H

#include <gst/gst.h>

#include "anygpt/backend.h"

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (anygpt_core_debug);

void anygpt_core_debug_init (void);

/* ---- device property ---- */
typedef enum
{
  GST_ANYGPT_DEVICE_AUTO = 0,
  GST_ANYGPT_DEVICE_CPU = 1,
  GST_ANYGPT_DEVICE_VULKAN = 2,
} GstAnygptDevice;

#define GST_TYPE_ANYGPT_DEVICE (gst_anygpt_device_get_type ())
GType gst_anygpt_device_get_type (void);

#define GST_ANYGPT_ERROR (gst_anygpt_error_quark ())
GQuark gst_anygpt_error_quark (void);

/* Progress callback for core loaders (an ag_progress_fn: pass it with a GstAnygptLoadProgress as
 * user data): posts GST_MESSAGE_PROGRESS (type CONTINUE, code "load", percent) from `element`,
 * at most once per whole percent. Always returns true (continue).
 * Post START before the load and COMPLETE / ERROR after with gst_anygpt_post_progress. */
typedef struct
{
  GstElement *element;
  gint last_percent;
} GstAnygptLoadProgress;

bool gst_anygpt_load_progress_cb (void *user, uint64_t done, uint64_t total);
void gst_anygpt_post_progress (GstElement * element, GstProgressType type, const gchar * code,
    const gchar * text);

/* ---- token caps ---- */
#define GST_ANYGPT_TOKENS_MEDIA_TYPE "application/x-anygpt-tokens"

typedef enum
{
  GST_ANYGPT_MODALITY_SPEECH = 1,
  GST_ANYGPT_MODALITY_IMAGE = 2,
  GST_ANYGPT_MODALITY_MUSIC = 3,
} GstAnygptModality;             /* same values as ag_modality */

typedef struct
{
  GstAnygptModality modality;
  gint codebooks;
  gint codebook_size;
  gint rate_n, rate_d;          /* frames per second; 0/1 for images */
} GstAnygptTokensInfo;

const gchar *gst_anygpt_modality_name (GstAnygptModality m);
/* Fixed caps for info. */
GstCaps *gst_anygpt_tokens_caps_new (const GstAnygptTokensInfo * info);
/* Read fixed token caps; FALSE when they are not complete, valid token caps. */
gboolean gst_anygpt_tokens_info_from_caps (GstAnygptTokensInfo * info, const GstCaps * caps);
/* Template-style caps for a modality: codebooks/codebook-size/rate as ranges (modality NULL:
 * any modality). */
GstCaps *gst_anygpt_tokens_caps_any (const gchar * modality);

/* Map a token buffer: ids points into the mapped memory, n_frames = size / (4 * codebooks).
 * FALSE (and nothing mapped) when the size is not a whole number of frames. Unmap with
 * gst_buffer_unmap (buf, map). */
gboolean gst_anygpt_tokens_map (GstBuffer * buf, const GstAnygptTokensInfo * info, GstMapInfo * map,
    const gint32 ** ids, gsize * n_frames);
/* A new buffer holding n_frames * codebooks ids (copied). */
GstBuffer *gst_anygpt_tokens_buffer_new (const gint32 * ids, gsize n_frames, gint codebooks);

G_END_DECLS

#endif
