/* One compute core per process (gst/gstanygptshared.h), on the tiny models:
 * - the elements of a pipeline share one backend and each model file is loaded once (counted by
 *   the "anygpt-core" messages: backends, backend-users, weight-files, model-users), the
 *   context is negotiated (one HAVE_CONTEXT, the others get it from their peers), and all of it
 *   is released at NULL;
 * - pipelines share a core through an app-set "anygpt.core" context (its threads), the app may
 *   answer NEED_CONTEXT instead, and pipelines without it use the default core's own backend;
 * - an element asking for other threads than the shared backend runs gets a warning;
 * - fairness: an LLM reply and a stream of SoundStorm jobs on one backend at once both progress
 *   (SoundStorm items finish while the reply is being generated, the reply finishes while
 *   SoundStorm is kept busy);
 * - latency queries of speechtokenize, soundstorm, encodecdecode and anygptllm on a live
 *   upstream: what each adds (the measured processing time after an item).
 * argv: SPEECHTOKENIZER.gguf SOUNDSTORM.gguf LLM.gguf */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <math.h>
#include <unistd.h>

static const gchar *st_path, *ss_path, *llm_path;

#define SEMANTIC_CAPS "application/x-anygpt-tokens, modality=speech, codebooks=1, " \
  "codebook-size=1024, rate=50/1"

/* ---- helpers ---- */

static GstElement *
launch (const gchar * fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  gchar *desc = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  GError *err = NULL;
  GstElement *e = gst_parse_launch (desc, &err);
  fail_unless (e != NULL && err == NULL, "%s: %s", desc, err ? err->message : "?");
  g_free (desc);
  if (GST_IS_PIPELINE (e))
    return e;
  GstElement *p = gst_pipeline_new (NULL);
  gst_bin_add (GST_BIN (p), e);
  return p;
}

typedef struct
{
  GPtrArray *core;              /* GstStructure copies of the anygpt-core messages, in order */
  guint need, have, warnings;
  gchar *warning;
} Seen;

static void
seen_clear (Seen * s)
{
  if (s->core)
    g_ptr_array_unref (s->core);
  g_free (s->warning);
  memset (s, 0, sizeof *s);
}

/* Pops what the state change posted. */
static void
collect (GstElement * pipeline, Seen * s)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *m;
  if (!s->core)
    s->core = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  while ((m = gst_bus_pop (bus))) {
    const GstStructure *st = gst_message_get_structure (m);
    switch (GST_MESSAGE_TYPE (m)) {
      case GST_MESSAGE_ELEMENT:
        if (gst_structure_has_name (st, "anygpt-core"))
          g_ptr_array_add (s->core, gst_structure_copy (st));
        break;
      case GST_MESSAGE_NEED_CONTEXT:
        s->need++;
        break;
      case GST_MESSAGE_HAVE_CONTEXT:
        s->have++;
        break;
      case GST_MESSAGE_WARNING:{
        GError *e = NULL;
        gst_message_parse_warning (m, &e, NULL);
        s->warnings++;
        g_free (s->warning);
        s->warning = g_strdup (e->message);
        g_error_free (e);
        break;
      }
      case GST_MESSAGE_ERROR:{
        GError *e = NULL;
        gchar *dbg = NULL;
        gst_message_parse_error (m, &e, &dbg);
        fail ("error: %s (%s)", e->message, dbg);
        break;
      }
      default:
        break;
    }
    gst_message_unref (m);
  }
  gst_object_unref (bus);
}

static void
to_ready (GstElement * pipeline, Seen * s)
{
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  collect (pipeline, s);
}

static guint
field_uint (const GstStructure * st, const gchar * name)
{
  guint v = G_MAXUINT;
  fail_unless (gst_structure_get_uint (st, name, &v), "no %s in %" GST_PTR_FORMAT, name, st);
  return v;
}

static const GstStructure *
last_core (Seen * s)
{
  fail_unless (s->core && s->core->len > 0, "no anygpt-core message");
  return g_ptr_array_index (s->core, s->core->len - 1);
}

static void
stop (GstElement * pipeline)
{
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

static GstContext *
app_context (const gchar * id, gint threads)
{
  GstContext *c = gst_context_new ("anygpt.core", TRUE);
  gst_structure_set (gst_context_writable_structure (c), "core-id", G_TYPE_STRING, id,
      "threads", G_TYPE_INT, threads, NULL);
  return c;
}

/* ---- sharing in one pipeline ---- */

GST_START_TEST (test_one_pipeline_one_backend)
{
  /* the voice assistant's audio elements: two SpeechTokenizer users, one SoundStorm */
  GstElement *p = launch ("speechtokenize model-path=%s device=cpu ! soundstorm model-path=%s "
      "device=cpu ! encodecdecode model-path=%s device=cpu", st_path, ss_path, st_path);
  Seen s = { 0 };
  to_ready (p, &s);
  fail_unless_equals_int (s.core->len, 3);
  guint st_users = 0;
  for (guint i = 0; i < s.core->len; i++) {
    const GstStructure *c = g_ptr_array_index (s.core, i);
    fail_unless_equals_string (gst_structure_get_string (c, "core-id"), "default");
    fail_unless_equals_int (field_uint (c, "backends"), 1);
    /* the i-th element to load is the i-th user of the one backend */
    fail_unless_equals_int (field_uint (c, "backend-users"), i + 1);
    st_users = MAX (st_users, field_uint (c, "model-users"));
  }
  /* two files for three elements: the SpeechTokenizer mapped once, used twice */
  fail_unless_equals_int (field_uint (last_core (&s), "weight-files"), 2);
  fail_unless_equals_int (st_users, 2);
  /* the first element chose the default core and said so; the others got it from their
   * peers (context query) without asking the app */
  fail_unless_equals_int (s.have, 1);
  fail_unless_equals_int (s.need, 1);
  stop (p);
  seen_clear (&s);

  /* everything was released at NULL: a new pipeline starts from nothing */
  p = launch ("encodecdecode model-path=%s device=cpu", st_path);
  to_ready (p, &s);
  const GstStructure *c = last_core (&s);
  fail_unless_equals_int (field_uint (c, "backends"), 1);
  fail_unless_equals_int (field_uint (c, "backend-users"), 1);
  fail_unless_equals_int (field_uint (c, "weight-files"), 1);
  fail_unless_equals_int (field_uint (c, "model-users"), 1);
  stop (p);
  seen_clear (&s);
}

GST_END_TEST;

/* ---- sharing across pipelines ---- */

static GstBusSyncReply
answer_need_context (GstBus * bus, GstMessage * m, gpointer ctx)
{
  const gchar *type;
  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_NEED_CONTEXT &&
      gst_message_parse_context_type (m, &type) && g_str_equal (type, "anygpt.core"))
    gst_element_set_context (GST_ELEMENT (GST_MESSAGE_SRC (m)), ctx);
  return GST_BUS_PASS;
}

GST_START_TEST (test_app_context_across_pipelines)
{
  GstContext *ctx = app_context ("app", 1);
  Seen s1 = { 0 }, s2 = { 0 }, s3 = { 0 }, s4 = { 0 };
  GstElement *p1 = launch ("encodecdecode model-path=%s device=cpu",
      st_path);
  GstElement *p2 = launch ("encodecdecode model-path=%s device=cpu",
      st_path);
  gst_element_set_context (p1, ctx);
  gst_element_set_context (p2, ctx);
  to_ready (p1, &s1);
  to_ready (p2, &s2);
  const GstStructure *c = last_core (&s2);
  fail_unless_equals_string (gst_structure_get_string (c, "core-id"), "app");
  fail_unless_equals_int (field_uint (c, "backends"), 1);
  fail_unless_equals_int (field_uint (c, "backend-users"), 2);
  fail_unless_equals_int (field_uint (c, "model-users"), 2);
  fail_unless_equals_int (field_uint (c, "weight-files"), 1);
  gint threads = -1;
  fail_unless (gst_structure_get_int (c, "threads", &threads));
  fail_unless_equals_int (threads, 1);  /* the context's, not all processors */
  /* given a context, nobody asked */
  fail_unless_equals_int (s1.need + s2.need + s1.have + s2.have, 0);

  /* without the context: the default core, its own backend and its own copy of the file */
  GstElement *p3 = launch ("encodecdecode model-path=%s device=cpu",
      st_path);
  to_ready (p3, &s3);
  c = last_core (&s3);
  fail_unless_equals_string (gst_structure_get_string (c, "core-id"), "default");
  fail_unless_equals_int (field_uint (c, "backends"), 2);
  fail_unless_equals_int (field_uint (c, "backend-users"), 1);
  fail_unless_equals_int (field_uint (c, "model-users"), 1);
  fail_unless_equals_int (field_uint (c, "weight-files"), 2);

  /* the app answers NEED_CONTEXT from a sync handler: joins the app's core */
  GstElement *p4 = launch ("encodecdecode model-path=%s device=cpu",
      st_path);
  GstBus *bus = gst_element_get_bus (p4);
  gst_bus_set_sync_handler (bus, answer_need_context, ctx, NULL);
  to_ready (p4, &s4);
  c = last_core (&s4);
  fail_unless_equals_string (gst_structure_get_string (c, "core-id"), "app");
  fail_unless_equals_int (field_uint (c, "backend-users"), 3);
  fail_unless_equals_int (field_uint (c, "model-users"), 3);
  fail_unless_equals_int (s4.need, 1);
  fail_unless_equals_int (s4.have, 0);
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  gst_object_unref (bus);

  /* threads=1 on the default core, whose backend runs all processors: warned */
  if (sysconf (_SC_NPROCESSORS_ONLN) > 1) {
    Seen s5 = { 0 };
    GstElement *p5 = launch ("encodecdecode model-path=%s device=cpu threads=1", st_path);
    to_ready (p5, &s5);
    fail_unless_equals_int (s5.warnings, 1);
    fail_unless (strstr (s5.warning, "threads=1 ignored") != NULL, "%s", s5.warning);
    fail_unless_equals_int (field_uint (last_core (&s5), "backend-users"), 2);
    stop (p5);
    seen_clear (&s5);
  }
  stop (p1);
  stop (p2);
  stop (p3);
  stop (p4);
  gst_context_unref (ctx);
  seen_clear (&s1);
  seen_clear (&s2);
  seen_clear (&s3);
  seen_clear (&s4);
}

GST_END_TEST;

/* ---- fairness ---- */

typedef struct
{
  GMutex lock;
  GstClockTime llm_done;        /* when the reply message was posted */
  gint generated;
  GArray *ss_done;              /* GstClockTime per finished SoundStorm item */
} Progress;

static GstBusSyncReply
on_llm_message (GstBus * bus, GstMessage * m, gpointer user)
{
  Progress *pr = user;
  const GstStructure *st = gst_message_get_structure (m);
  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT && gst_structure_has_name (st, "anygptllm")) {
    g_mutex_lock (&pr->lock);
    pr->llm_done = gst_util_get_timestamp ();
    gst_structure_get_int (st, "generated-tokens", &pr->generated);
    g_mutex_unlock (&pr->lock);
  }
  return GST_BUS_PASS;
}

static GstBusSyncReply
on_ss_message (GstBus * bus, GstMessage * m, gpointer user)
{
  Progress *pr = user;
  const GstStructure *st = gst_message_get_structure (m);
  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT && gst_structure_has_name (st, "soundstorm")) {
    GstClockTime now = gst_util_get_timestamp ();
    g_mutex_lock (&pr->lock);
    g_array_append_val (pr->ss_done, now);
    g_mutex_unlock (&pr->lock);
  }
  return GST_BUS_PASS;
}

static GstBuffer *
semantic_item (guint n, guint salt)
{
  gint32 *ids = g_new (gint32, n);
  for (guint i = 0; i < n; i++)
    ids[i] = (gint32) ((i * 37 + salt * 11) % 1024);
  return gst_buffer_new_wrapped (ids, n * 4);
}

static guint
n_ss_done (Progress * pr)
{
  g_mutex_lock (&pr->lock);
  guint n = pr->ss_done->len;
  g_mutex_unlock (&pr->lock);
  return n;
}

GST_START_TEST (test_fair_llm_and_soundstorm)
{
  Progress pr = { 0 };
  g_mutex_init (&pr.lock);
  pr.ss_done = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  pr.llm_done = GST_CLOCK_TIME_NONE;
  /* one backend (cpu, one thread: the LLM's sampling is then reproducible) for both */
  GstElement *ss = gst_element_factory_make ("soundstorm", NULL);
  g_object_set (ss, "model-path", ss_path, "threads", 1, "steps", 1, NULL);
  gst_util_set_object_arg (G_OBJECT (ss), "device", "cpu");
  /* a spoken reply that runs until the context is full (seed 5 on the tiny model) */
  GstElement *llm = gst_element_factory_make ("anygptllm", NULL);
  g_object_set (llm, "model-path", llm_path, "threads", 1, "prompt", "hello there",
      "constrain-spans", TRUE, "max-new-tokens", 600, "seed", (gint64) 5, NULL);
  gst_util_set_object_arg (G_OBJECT (llm), "device", "cpu");
  gst_util_set_object_arg (G_OBJECT (llm), "task", "tts");
  GstBus *ssbus = gst_bus_new (), *llmbus = gst_bus_new ();
  gst_element_set_bus (ss, ssbus);
  gst_element_set_bus (llm, llmbus);
  gst_bus_set_sync_handler (ssbus, on_ss_message, &pr, NULL);
  gst_bus_set_sync_handler (llmbus, on_llm_message, &pr, NULL);
  GstHarness *hs = gst_harness_new_with_element (ss, "sink", "src");
  gst_harness_set_src_caps_str (hs, SEMANTIC_CAPS);

  /* SoundStorm loaded and warm: one item through */
  guint pushed = 0;
  GstClockTime t_alone = gst_util_get_timestamp ();
  fail_unless_equals_int (gst_harness_push (hs, semantic_item (10, pushed++)), GST_FLOW_OK);
  t_alone = gst_util_get_timestamp () - t_alone;
  fail_unless_equals_int (n_ss_done (&pr), 1);

  /* the reply starts (source mode); SoundStorm is kept busy until it ends */
  GstClockTime t_start = gst_util_get_timestamp ();
  GstHarness *hl = gst_harness_new_with_element (llm, NULL, "speech_src");
  gst_harness_play (hl);
  for (;;) {
    g_mutex_lock (&pr.lock);
    gboolean done = GST_CLOCK_TIME_IS_VALID (pr.llm_done);
    g_mutex_unlock (&pr.lock);
    if (done)
      break;
    fail_unless_equals_int (gst_harness_push (hs, semantic_item (10, pushed++)), GST_FLOW_OK);
  }
  guint during = 0;
  g_mutex_lock (&pr.lock);
  for (guint i = 0; i < pr.ss_done->len; i++) {
    GstClockTime t = g_array_index (pr.ss_done, GstClockTime, i);
    during += t > t_start && t < pr.llm_done;
  }
  gint generated = pr.generated;
  g_mutex_unlock (&pr.lock);
  g_print ("# reply of %d tokens in %.3f s; %u SoundStorm items finished meanwhile (of %u; one alone %.3f s)\n", generated,
      (double) (pr.llm_done - t_start) / GST_SECOND, during, pushed, (double) t_alone / GST_SECOND);
  /* the reply was long (so "meanwhile" means something) and finished although SoundStorm never
   * stopped asking for the backend; SoundStorm went on while the reply was generated */
  fail_unless (generated >= 200, "the reply has only %d tokens", generated);
  /* With fair turns SoundStorm gets about half the backend, so an item takes about twice as
   * long as alone: ask for 2 items when the reply lasted 4 such items (natively ~12), else for 1.
   * Valgrind runs one thread at a time: with its FIFO scheduling (--fair-sched=yes, as
   * tools/run-tests.sh runs this test) a reply lasts ~22 items; with its default scheduling one
   * thread may keep the only CPU for seconds, and SoundStorm got 7-50% of it from run to run: a
   * check of valgrind's scheduler, not of the turns. */
  GstClockTime reply = pr.llm_done - t_start;
  guint need = reply >= 8 * t_alone ? 2 : 1;
  fail_unless (during >= need, "%u SoundStorm items finished during the reply of %.3f s (one "
      "alone: %.3f s)", during, (double) reply / GST_SECOND, (double) t_alone / GST_SECOND);

  gst_bus_set_flushing (ssbus, TRUE);
  gst_bus_set_flushing (llmbus, TRUE);
  gst_harness_teardown (hl);
  gst_harness_teardown (hs);
  gst_bus_set_sync_handler (ssbus, NULL, NULL, NULL);
  gst_bus_set_sync_handler (llmbus, NULL, NULL, NULL);
  gst_object_unref (ssbus);
  gst_object_unref (llmbus);
  gst_object_unref (ss);
  gst_object_unref (llm);
  g_array_unref (pr.ss_done);
  g_mutex_clear (&pr.lock);
}

GST_END_TEST;

/* ---- latency ---- */

#define UPSTREAM (10 * GST_MSECOND)

static void
query_latency (GstHarness * h, GstClockTime * min, GstClockTime * max)
{
  GstQuery *q = gst_query_new_latency ();
  gboolean live = FALSE;
  fail_unless (gst_pad_peer_query (h->sinkpad, q));
  gst_query_parse_latency (q, &live, min, max);
  fail_unless (live);
  gst_query_unref (q);
}

/* Queued messages hold their source: flush them, or element and bus keep each other alive. */
static void
drop_bus (GstHarness * h, GstBus * bus)
{
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

static GstHarness *
harness_with_bus (GstElement * e, GstBus ** bus)
{
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  *bus = gst_bus_new ();
  gst_element_set_bus (h->element, *bus);
  gst_harness_set_upstream_latency (h, UPSTREAM);
  return h;
}

static GstHarness *
speechtokenize_harness (const gchar * segment, GstBus ** bus)
{
  GstElement *e = gst_element_factory_make ("speechtokenize", NULL);
  g_object_set (e, "model-path", st_path, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  gst_util_set_object_arg (G_OBJECT (e), "segment", segment);
  GstHarness *h = harness_with_bus (e, bus);
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,"
      "layout=interleaved");
  return h;
}

GST_START_TEST (test_latency_speechtokenize)
{
  GstBus *bus;
  GstClockTime min, max;
  /* before any utterance: upstream's; an utterance is held whole, so no maximum */
  GstHarness *h = speechtokenize_harness ("none", &bus);
  query_latency (h, &min, &max);
  fail_unless_equals_uint64 (min, UPSTREAM);
  fail_unless_equals_uint64 (max, GST_CLOCK_TIME_NONE);
  /* after an utterance (1 s, ended by EOS): its encode time is added */
  gsize n = 16000;
  GstBuffer *b = gst_buffer_new_allocate (NULL, n * 4, NULL);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < n; i++)
    ((gfloat *) map.data)[i] = 0.3f * sinf ((gfloat) i * 0.12f);
  gst_buffer_unmap (b, &map);
  GstClockTime t0 = gst_util_get_timestamp ();
  fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *out = gst_harness_pull (h);
  GstClockTime took = gst_util_get_timestamp () - t0;
  fail_unless (out != NULL);
  gst_buffer_unref (out);
  query_latency (h, &min, &max);
  fail_unless (min > UPSTREAM && min <= UPSTREAM + took, "%" GST_TIME_FORMAT,
      GST_TIME_ARGS (min));
  fail_unless_equals_uint64 (max, GST_CLOCK_TIME_NONE);
  drop_bus (h, bus);
}

GST_END_TEST;

/* soundstorm or encodecdecode: upstream's before any item, plus the item's time after one */
static void
check_item_latency (GstElement * e)
{
  GstBus *bus;
  GstHarness *h = harness_with_bus (e, &bus);
  gst_object_unref (e);
  /* the loaded model's token caps (first structure, fixated) */
  GstCaps *caps = gst_caps_fixate (gst_pad_peer_query_caps (h->srcpad, NULL));
  gint codebooks = 0, size = 0;
  const GstStructure *st = gst_caps_get_structure (caps, 0);
  fail_unless (gst_structure_get_int (st, "codebooks", &codebooks) &&
      gst_structure_get_int (st, "codebook-size", &size) && size > 0, "%" GST_PTR_FORMAT, caps);
  gst_harness_set_src_caps (h, caps);
  GstClockTime min, max;
  query_latency (h, &min, &max);
  fail_unless_equals_uint64 (min, UPSTREAM);
  gsize n = 40 * (gsize) codebooks;
  gint32 *ids = g_new (gint32, n);
  for (gsize i = 0; i < n; i++)
    ids[i] = (gint32) ((i * 37) % (gsize) size);
  GstBuffer *in = gst_buffer_new_wrapped (ids, n * 4);
  GST_BUFFER_PTS (in) = 0;
  GstClockTime t0 = gst_util_get_timestamp ();
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  GstClockTime took = gst_util_get_timestamp () - t0;
  fail_unless (out != NULL);
  gst_buffer_unref (out);
  query_latency (h, &min, &max);
  /* the element's own measure of the item: more than nothing, less than the push took */
  fail_unless (min > UPSTREAM && min <= UPSTREAM + took, "%" GST_TIME_FORMAT " (push %"
      GST_TIME_FORMAT ")", GST_TIME_ARGS (min), GST_TIME_ARGS (took));
  drop_bus (h, bus);
}

GST_START_TEST (test_latency_soundstorm_encodecdecode)
{
  GstElement *e = gst_element_factory_make ("soundstorm", NULL);
  g_object_set (e, "model-path", ss_path, "steps", 2, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  check_item_latency (e);
  e = gst_element_factory_make ("encodecdecode", NULL);
  g_object_set (e, "model-path", st_path, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  check_item_latency (e);
}

GST_END_TEST;

GST_START_TEST (test_latency_llm)
{
  GstElement *e = gst_element_factory_make ("anygptllm", NULL);
  g_object_set (e, "model-path", llm_path, "latency", (guint64) (2 * GST_SECOND), NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_upstream_latency (h, UPSTREAM);
  gst_harness_play (h);
  GstClockTime min, max;
  query_latency (h, &min, &max);
  /* not real-time: the configured reply time on top of upstream's */
  fail_unless_equals_uint64 (min, UPSTREAM + 2 * GST_SECOND);
  g_object_set (e, "latency", (guint64) 0, NULL);
  query_latency (h, &min, &max);
  fail_unless_equals_uint64 (min, UPSTREAM);
  gst_harness_teardown (h);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
shared_core_suite (void)
{
  Suite *s = suite_create ("shared-core");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 600);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_one_pipeline_one_backend);
  tcase_add_test (tc, test_app_context_across_pipelines);
  tcase_add_test (tc, test_fair_llm_and_soundstorm);
  tcase_add_test (tc, test_latency_speechtokenize);
  tcase_add_test (tc, test_latency_soundstorm_encodecdecode);
  tcase_add_test (tc, test_latency_llm);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 4) {
    g_printerr ("usage: %s SPEECHTOKENIZER.gguf SOUNDSTORM.gguf LLM.gguf\n", argv[0]);
    return 2;
  }
  st_path = argv[1];
  ss_path = argv[2];
  llm_path = argv[3];
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (shared_core_suite (), "shared-core", __FILE__);
}
