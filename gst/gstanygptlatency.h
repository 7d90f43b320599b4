/* Latency of the anygpt elements that work on whole items (an utterance, a token clip): what
 * they add to a live upstream's latency is their processing time, which depends on the device
 * and the item, so it is measured. Each element keeps the longest processing time it has seen
 * (plus a fixed part) and answers GST_QUERY_LATENCY with it. It posts no latency message when an
 * item takes longer: a latency redistributed while replies play moved the live voice
 * assistant's audio against its turn taking (tests/liveaudio); the next query (a state change,
 * an app's gst_bin_recalculate_latency) includes it. */
#ifndef GST_ANYGPT_LATENCY_H
#define GST_ANYGPT_LATENCY_H

#include <gst/gst.h>
#include <stdatomic.h>

G_BEGIN_DECLS

typedef struct
{
  _Atomic gint64 longest;       /* longest processing time seen (ns) */
} GstAnygptLatency;

/* READY->PAUSED: forget what was measured (the device or the model may have changed). */
void gst_anygpt_latency_reset (GstAnygptLatency * l);
/* One item took `took` (ns). */
void gst_anygpt_latency_observe (GstAnygptLatency * l, GstClockTime took);
/* Answer a latency query on a src pad: upstream's answer (through sinkpad's peer) plus, when
 * live, fixed + the longest processing time to min; max: plus the same, or unbounded when
 * max_unbounded (the element holds a whole item of any length). FALSE when upstream does not
 * answer. */
gboolean gst_anygpt_latency_query (GstAnygptLatency * l, GstPad * sinkpad, GstQuery * query,
    GstClockTime fixed, gboolean max_unbounded);

/* The common part of every element's answer: when the answer upstream gave is live, add `add`
 * to the minimum and to the maximum (or make the maximum unbounded). Returns live. */
gboolean gst_anygpt_latency_add (GstQuery * query, GstClockTime add, gboolean max_unbounded);

/* Whether what feeds sinkpad is live (its peer answers a latency query with live = TRUE). */
gboolean gst_anygpt_upstream_is_live (GstPad * sinkpad);

G_END_DECLS

#endif
