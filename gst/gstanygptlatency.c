#include "gstanygptlatency.h"

void
gst_anygpt_latency_reset (GstAnygptLatency * l)
{
  atomic_store (&l->longest, 0);
}

void
gst_anygpt_latency_observe (GstAnygptLatency * l, GstClockTime took)
{
  if (!GST_CLOCK_TIME_IS_VALID (took))
    return;
  gint64 t = (gint64) MIN (took, (GstClockTime) G_MAXINT64);
  gint64 old = atomic_load (&l->longest);
  while (t > old && !atomic_compare_exchange_weak (&l->longest, &old, t));
}

gboolean
gst_anygpt_latency_add (GstQuery * query, GstClockTime add, gboolean max_unbounded)
{
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency (query, &live, &min, &max);
  if (!live)
    return FALSE;
  min += add;
  if (max_unbounded)
    max = GST_CLOCK_TIME_NONE;
  else if (GST_CLOCK_TIME_IS_VALID (max))
    max += add;
  gst_query_set_latency (query, live, min, max);
  return TRUE;
}

gboolean
gst_anygpt_latency_query (GstAnygptLatency * l, GstPad * sinkpad, GstQuery * query,
    GstClockTime fixed, gboolean max_unbounded)
{
  if (!gst_pad_peer_query (sinkpad, query))
    return FALSE;
  gst_anygpt_latency_add (query, fixed + (GstClockTime) atomic_load (&l->longest),
      max_unbounded);
  return TRUE;
}

gboolean
gst_anygpt_upstream_is_live (GstPad * sinkpad)
{
  GstQuery *q = gst_query_new_latency ();
  gboolean live = FALSE;
  if (gst_pad_peer_query (sinkpad, q))
    gst_query_parse_latency (q, &live, NULL, NULL);
  gst_query_unref (q);
  return live;
}
