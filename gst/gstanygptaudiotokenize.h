/* GstAnygptAudioTokenize: abstract base of the utterance-level audio tokenizers
 * (speechtokenize, encodectokenize).
 *
 * Why a plain GstElement with explicit pads and not GstAudioEncoder: the SEANet encoders are
 * bidirectional or need whole clips, so output is one buffer per utterance whose length is only
 * known when the utterance ends (EOS, an event, a VAD cut, a full clip), and silence between
 * utterances is dropped. GstAudioEncoder's frame bookkeeping (one output per handle_frame of a
 * fixed sample count, timestamps from its own sample counter, latency) fights that; here the
 * element keeps the pending samples and maps sample indices to input timestamps itself.
 *
 * The base owns the pads, the model properties and loading (NULL->READY), caps checking, the
 * pending audio, timestamps, flushing and the "anygpt-end-utterance" event; subclasses decide
 * what to keep and when an utterance ends (process vfunc) and how many codebooks to emit. */
#ifndef GST_ANYGPT_AUDIO_TOKENIZE_H
#define GST_ANYGPT_AUDIO_TOKENIZE_H

#include <gst/gst.h>

#include "anygpt/seanet.h"
#include "gstanygptcore.h"

G_BEGIN_DECLS

/* Name of the custom downstream (serialized) event that ends the current utterance: pending
 * audio is encoded and pushed, then the event is forwarded. Make it with
 * gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
 *     gst_structure_new_empty (GST_ANYGPT_END_UTTERANCE_EVENT)). */
#define GST_ANYGPT_END_UTTERANCE_EVENT "anygpt-end-utterance"

#define GST_TYPE_ANYGPT_AUDIO_TOKENIZE (gst_anygpt_audio_tokenize_get_type ())
G_DECLARE_DERIVABLE_TYPE (GstAnygptAudioTokenize, gst_anygpt_audio_tokenize, GST,
    ANYGPT_AUDIO_TOKENIZE, GstElement)

struct _GstAnygptAudioTokenizeClass
{
  GstElementClass parent_class;

  /* set in class_init */
  gint sample_rate;             /* the only input rate (also required of the model) */
  GstAnygptModality modality;
  const gchar *model_kind;      /* for messages, e.g. "SpeechTokenizer" */

  /* codebooks per output frame; called after the model loaded (1..n_q checked by the base) */
  gint (*get_codebooks) (GstAnygptAudioTokenize * self);
  /* new samples, already appended to the pending audio at absolute index pos; the subclass
   * may emit (gst_anygpt_audio_tokenize_emit) or drop pending samples. Default: keep. */
  GstFlowReturn (*process) (GstAnygptAudioTokenize * self, guint64 pos, gsize n);
  /* EOS or the end-utterance event: end the pending utterance. Default: emit all pending. */
  GstFlowReturn (*drain) (GstAnygptAudioTokenize * self);
  /* READY->PAUSED (after the base's own start) and flush / PAUSED->READY: subclass state */
  gboolean (*start) (GstAnygptAudioTokenize * self);
  void (*reset) (GstAnygptAudioTokenize * self);
};

/* The loaded model's info (valid from READY on). */
const ag_seanet_info *gst_anygpt_audio_tokenize_info (GstAnygptAudioTokenize * self);
/* Pending audio: samples [start, start + n) by absolute index since the stream start. */
guint64 gst_anygpt_audio_tokenize_pending_start (GstAnygptAudioTokenize * self);
gsize gst_anygpt_audio_tokenize_pending (GstAnygptAudioTokenize * self);
const gfloat *gst_anygpt_audio_tokenize_pending_data (GstAnygptAudioTokenize * self);
/* Discard the first n pending samples (silence before an utterance). */
void gst_anygpt_audio_tokenize_drop (GstAnygptAudioTokenize * self, gsize n);
/* Encode the first n pending samples as one utterance, push it (MARKER set, PTS of its first
 * sample, duration of n samples), post the element message, drop them. Shorter than one frame:
 * just dropped. */
GstFlowReturn gst_anygpt_audio_tokenize_emit (GstAnygptAudioTokenize * self, gsize n);

/* The sink/src pad templates for a subclass taking F32LE mono at rate. */
void gst_anygpt_audio_tokenize_class_add_templates (GstElementClass * klass, gint rate,
    const gchar * modality);

G_END_DECLS

#endif
