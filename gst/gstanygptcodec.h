/* Loading a SEANet codec model (SpeechTokenizer, Encodec) for the audio elements: open the
 * compute device, load the GGUF with progress messages, check it fits the element. */
#ifndef GST_ANYGPT_CODEC_H
#define GST_ANYGPT_CODEC_H

#include <gst/gst.h>

#include "anygpt/seanet.h"
#include "gstanygptcore.h"

G_BEGIN_DECLS

/* Open the device and load path; want_rate > 0 also requires that sample rate (kind names
 * the expected model in messages). On failure posts GST_ELEMENT_ERROR naming the path and the
 * reason, frees what it opened and returns NULL. */
ag_seanet *gst_anygpt_codec_load (GstElement * element, const gchar * path,
    GstAnygptDevice device, gint device_index, gint threads, const gchar * kind,
    gint want_rate, ag_backend ** backend);

/* The frame rate of a model's tokens: sample_rate / hop, reduced. */
void gst_anygpt_codec_frame_rate (const ag_seanet_info * info, gint * num, gint * den);

G_END_DECLS

#endif
