/* Loading a SEANet codec model (SpeechTokenizer, Encodec) for the audio elements through the
 * shared core (gstanygptshared.h), and checking it fits the element. */
#ifndef GST_ANYGPT_CODEC_H
#define GST_ANYGPT_CODEC_H

#include <gst/gst.h>

#include "anygpt/seanet.h"
#include "gstanygptcore.h"

G_BEGIN_DECLS

/* gst_anygpt_shared_load of the element's model-path; want_rate > 0 also requires that sample
 * rate (kind names the expected model in messages). On failure posts GST_ELEMENT_ERROR naming
 * the path and the reason, releases the backend and returns NULL. Free the model, then
 * gst_anygpt_shared_close, on READY->NULL. */
ag_seanet *gst_anygpt_codec_load (GstElement * element, const gchar * kind, gint want_rate);

/* The frame rate of a model's tokens: sample_rate / hop, reduced. */
void gst_anygpt_codec_frame_rate (const ag_seanet_info * info, gint * num, gint * den);

G_END_DECLS

#endif
