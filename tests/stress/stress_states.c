/* State-change stress of one element: CYCLES times
 *   NULL -> PLAYING -> input pushed, work in flight for a random 0..T ms (mid-token, mid-pass,
 *   mid-utterance, mid-denoising step) -> NULL, READY or a flushing seek (chosen at random)
 *   -> PLAYING -> the whole input + EOS: its output must equal the output of a first run without
 *   interruption (byte for byte: the elements are deterministic for a fixed seed and thread count)
 *   -> NULL,
 * in appsrc ! ELEMENT ! appsink, on the tiny test models. T is 1.5 times the uninterrupted run,
 * so some interruptions land mid-work and some after it; the random numbers come from --seed.
 * A watchdog aborts when nothing progresses for --watchdog seconds (a deadlock); an error on
 * the bus fails the run. After every cycle the heap in use (glibc mallinfo2) and VmRSS are
 * sampled: the heap's growth after the warm-up (the first tenth of the cycles, at least 3) must
 * stay under --max-growth-kb (default: 256 + 0.5 per cycle), VmRSS's under 16 times that from
 * 200 cycles on (it also moves with malloc's arenas, which take a while to settle); both are
 * printed as kB per cycle. --new-pipeline builds the pipeline anew every cycle
 * (gst_parse_launch, as an application that makes one per conversation).
 * --shared: both pipelines share one compute core (an app-set "anygpt.core" context, as
 * gstanygptshared.h documents): a second, companion pipeline of the same element runs whole
 * runs back to back on its own thread while the first is stopped and restarted under it; every
 * companion output must equal the reference too, and at least one must finish during the cycles.
 *
 * usage: stress_states ELEMENT MODEL CYCLES [--seed N] [--new-pipeline] [--watchdog S]
 *                      [--max-growth-kb KB] [--action 0|1|2] [--quiet] [--shared]
 *   ELEMENT: anygptllm speechtokenize soundstorm encodecdecode encodectokenize seedtokenize
 *            seeddiffuse (MODEL: the element's model file; encodecdecode: a SpeechTokenizer) */
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How one element is driven: its launch line (model path in %s) and its input. */
typedef struct
{
  const gchar *name;
  const gchar *launch;
  void (*make_input) (GPtrArray * bufs);        /* the input, as the buffers pushed */
} Spec;

static GstBuffer *
timed (GstBuffer * b, GstClockTime pts, GstClockTime dur)
{
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = dur;
  return b;
}

static void
text_input (GPtrArray * bufs)
{
  static const gchar msg[] = "ka lo mi ne";
  g_ptr_array_add (bufs, timed (gst_buffer_new_memdup (msg, sizeof msg - 1), 0, GST_SECOND));
}

/* speech-like audio: utterances of a harmonic tone with pauses, pushed in 20 ms chunks so a stop
 * lands mid-utterance; rate Hz */
static void
audio_input (GPtrArray * bufs, gint rate, gdouble voiced_s, gdouble pause_s, gint utterances)
{
  gint chunk = rate / 50, n = (gint) ((voiced_s + pause_s) * utterances * rate);
  gfloat *x = g_new0 (gfloat, n);
  for (gint u = 0; u < utterances; u++) {
    gint start = (gint) (u * (voiced_s + pause_s) * rate);
    for (gint i = 0; i < (gint) (voiced_s * rate); i++) {
      gdouble t = (gdouble) i / rate, f = 140.0 + 20.0 * u, s = 0;
      for (gint k = 1; k < 8; k++)
        s += sin (2 * G_PI * k * f * t) / k;
      x[start + i] = (gfloat) (0.2 * s * sin (G_PI * t / voiced_s));
    }
  }
  for (gint i = 0; i < n; i += chunk) {
    gint len = MIN (chunk, n - i);
    g_ptr_array_add (bufs, timed (gst_buffer_new_memdup (x + i, len * sizeof (gfloat)),
            gst_util_uint64_scale_int (i, GST_SECOND, rate),
            gst_util_uint64_scale_int (len, GST_SECOND, rate)));
  }
  g_free (x);
}

static void
speech_audio_input (GPtrArray * bufs)
{
  audio_input (bufs, 16000, 0.8, 0.9, 2);
}

static void
music_audio_input (GPtrArray * bufs)
{
  audio_input (bufs, 32000, 0.5, 0.1, 1);
}

static void
codes_input (GPtrArray * bufs, gint n, gint k, gint mul, GstClockTime dur)
{
  gint32 *c = g_new (gint32, n);
  for (gint i = 0; i < n; i++)
    c[i] = GINT32_TO_LE ((i * mul + 3) % k);
  g_ptr_array_add (bufs, timed (gst_buffer_new_memdup (c, n * sizeof *c), 0, dur));
  g_free (c);
}

static void
semantic_input (GPtrArray * bufs)
{
  codes_input (bufs, 50, 1024, 37, GST_SECOND);
}

static void
codec_input (GPtrArray * bufs)
{
  codes_input (bufs, 50, 64, 7, GST_SECOND);
}

static void
image_codes_input (GPtrArray * bufs)
{
  codes_input (bufs, 32, 8192, 389, GST_CLOCK_TIME_NONE);
}

static void
image_input (GPtrArray * bufs)
{
  enum { W = 64, H = 64 };
  guint8 *px = g_new (guint8, W * H * 3);
  for (gint y = 0; y < H; y++)
    for (gint x = 0; x < W; x++) {
      px[(y * W + x) * 3] = (guint8) (x * 4);
      px[(y * W + x) * 3 + 1] = (guint8) (y * 4);
      px[(y * W + x) * 3 + 2] = (guint8) ((x ^ y) * 4);
    }
  g_ptr_array_add (bufs, timed (gst_buffer_new_wrapped (px, W * H * 3), 0, GST_SECOND));
}

#define SRC "appsrc name=src format=time stream-type=seekable caps="
#define SINK " ! appsink name=sink sync=false"
static const Spec specs[] = {
  {"anygptllm", SRC "text/x-raw,format=utf8 ! anygptllm name=el model-path=%s device=cpu "
        "threads=1 task=chat history=0 temperature=0 max-new-tokens=40 el.text_src" SINK,
      text_input},
  {"speechtokenize", SRC "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved "
        "! speechtokenize name=el model-path=%s device=cpu threads=1 segment=vad silence-ms=300"
        SINK, speech_audio_input},
  {"soundstorm", SRC "application/x-anygpt-tokens,modality=speech,codebooks=1,"
        "codebook-size=1024,rate=50/1 ! soundstorm name=el model-path=%s device=cpu threads=1 "
        "steps=4 seed=7" SINK, semantic_input},
  {"encodecdecode", SRC "application/x-anygpt-tokens,modality=speech,codebooks=1,"
        "codebook-size=64,rate=50/1 ! encodecdecode name=el model-path=%s device=cpu threads=1"
        SINK, codec_input},
  {"encodectokenize", SRC "audio/x-raw,format=F32LE,rate=32000,channels=1,layout=interleaved "
        "! encodectokenize name=el model-path=%s device=cpu threads=1" SINK,
      music_audio_input},
  {"seedtokenize", SRC "video/x-raw,format=RGB,width=64,height=64,framerate=0/1 ! "
        "seedtokenize name=el model-path=%s device=cpu threads=1" SINK, image_input},
  {"seeddiffuse", SRC "application/x-anygpt-tokens,modality=image,codebooks=1,"
        "codebook-size=8192,rate=0/1 ! seeddiffuse name=el model-path=%s device=cpu threads=1 "
        "steps=6 seed=5" SINK, image_codes_input},
};

/* progress for the watchdog: the time of the last step and what it was */
static volatile gint64 last_progress;
static const gchar *volatile phase = "start";
static volatile gint cycle_no;
static gint watchdog_s = 60;

static void
progress (const gchar * what)
{
  phase = what;
  last_progress = g_get_monotonic_time ();
}

static gpointer
watchdog (gpointer data)
{
  const gchar *name = data;
  for (;;) {
    g_usleep (G_USEC_PER_SEC / 2);
    gint64 idle = g_get_monotonic_time () - last_progress;
    if (idle > (gint64) watchdog_s * G_USEC_PER_SEC) {
      fprintf (stderr, "not ok - %s: watchdog: no progress for %d s in cycle %d (%s): a deadlock\n",
          name, watchdog_s, cycle_no, phase);
      fflush (stderr);
      abort ();
    }
  }
  return NULL;
}

static glong
rss_kb (void)
{
  glong kb = -1;
  FILE *f = fopen ("/proc/self/status", "r");
  gchar line[256];
  while (f && fgets (line, sizeof line, f))
    if (sscanf (line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f)
    fclose (f);
  return kb;
}

/* Heap bytes in use (malloc'd and not freed: small chunks + mmapped ones), kB; 0 where the
 * allocator is not glibc's (ASan). Unlike VmRSS it does not move with fragmentation or arenas. */
static glong
heap_kb (void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi = mallinfo2 ();
  return (glong) ((mi.uordblks + mi.hblkhd) / 1024);
#else
  return 0;
#endif
}

typedef struct
{
  GstElement *pipe;
  GstAppSrc *src;
  GstAppSink *sink;
  GstBus *bus;
} Pipe;

static gboolean
seek_data (GstAppSrc * src, guint64 offset, gpointer user)
{
  (void) src;
  (void) offset;
  (void) user;
  return TRUE;                  /* the test pushes the input again after the seek */
}

static gboolean
pipe_new (Pipe * p, const Spec * s, const gchar * model)
{
  gchar *desc = g_strdup_printf (s->launch, model);
  GError *err = NULL;
  p->pipe = gst_parse_launch (desc, &err);
  g_free (desc);
  if (!p->pipe) {
    fprintf (stderr, "not ok - %s: pipeline: %s\n", s->name, err ? err->message : "?");
    g_clear_error (&err);
    return FALSE;
  }
  p->src = GST_APP_SRC (gst_bin_get_by_name (GST_BIN (p->pipe), "src"));
  p->sink = GST_APP_SINK (gst_bin_get_by_name (GST_BIN (p->pipe), "sink"));
  GstAppSrcCallbacks cb = {.seek_data = seek_data };
  gst_app_src_set_callbacks (p->src, &cb, NULL, NULL);
  p->bus = gst_element_get_bus (p->pipe);
  return TRUE;
}

static void
pipe_free (Pipe * p)
{
  gst_element_set_state (p->pipe, GST_STATE_NULL);
  gst_object_unref (p->src);
  gst_object_unref (p->sink);
  gst_object_unref (p->bus);
  gst_object_unref (p->pipe);
  memset (p, 0, sizeof *p);
}

/* An error on the bus since the last look: printed, FALSE. Warnings are counted. */
static gint n_warnings;
static gboolean
bus_ok (Pipe * p, const gchar * name)
{
  GstMessage *m;
  gboolean ok = TRUE;
  while ((m = gst_bus_pop_filtered (p->bus, GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
    GError *err = NULL;
    gchar *dbg = NULL;
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      gst_message_parse_error (m, &err, &dbg);
      fprintf (stderr, "not ok - %s: cycle %d: error from %s: %s (%s)\n", name, cycle_no,
          GST_OBJECT_NAME (GST_MESSAGE_SRC (m)), err->message, dbg ? dbg : "");
      ok = FALSE;
    } else {
      gst_message_parse_warning (m, &err, &dbg);
      if (g_atomic_int_add (&n_warnings, 1) < 5)
        fprintf (stderr, "# %s: cycle %d: warning: %s (%s)\n", name, cycle_no, err->message,
            dbg ? dbg : "");
    }
    g_clear_error (&err);
    g_free (dbg);
    gst_message_unref (m);
  }
  return ok;
}

static gboolean
set_state (Pipe * p, GstState st, const gchar * what)
{
  progress (what);
  /* to PLAYING: asynchronous (the sink prerolls on the first output); down: synchronous */
  return gst_element_set_state (p->pipe, st) != GST_STATE_CHANGE_FAILURE;
}

static void
push_all (Pipe * p, GPtrArray * in, guint n)
{
  for (guint i = 0; i < n; i++)
    gst_app_src_push_buffer (p->src, gst_buffer_ref (g_ptr_array_index (in, i)));
}

/* The whole input + EOS, and all the output until EOS (its bytes, and the number of buffers
 * appended as 4 bytes: a split reply differs). NULL when no EOS comes. */
static GByteArray *
run_whole (Pipe * p, GPtrArray * in)
{
  progress ("whole run: push");
  push_all (p, in, in->len);
  gst_app_src_end_of_stream (p->src);
  progress ("whole run: pull");
  GByteArray *out = g_byte_array_new ();
  guint32 n = 0;
  while (!gst_app_sink_is_eos (p->sink)) {
    GstSample *s = gst_app_sink_try_pull_sample (p->sink, 100 * GST_MSECOND);
    if (!s) {
      GstMessage *m = gst_bus_pop_filtered (p->bus, GST_MESSAGE_ERROR);
      if (m) {
        gst_bus_post (p->bus, m);       /* bus_ok reports it */
        g_byte_array_unref (out);
        return NULL;
      }
      continue;
    }
    GstMapInfo map;
    GstBuffer *b = gst_sample_get_buffer (s);
    if (gst_buffer_map (b, &map, GST_MAP_READ)) {
      g_byte_array_append (out, map.data, map.size);
      gst_buffer_unmap (b, &map);
    }
    n++;
    gst_sample_unref (s);
    progress ("whole run: pull");
  }
  g_byte_array_append (out, (const guint8 *) &n, sizeof n);
  return out;
}

/* --shared: the companion pipeline's loop */
typedef struct
{
  Pipe p;
  GPtrArray *in;
  GByteArray *ref;
  const gchar *name;
  gint stop, runs, failures;
  GMutex lock;                  /* hold: the companion waits between runs (idle) while it is set, */
  GCond cond;                   /* so the heap is sampled with no companion run in flight */
  gboolean hold, idle;
} Companion;

/* the companion between runs (its pipeline in NULL) while the heap is sampled */
static void
companion_hold (Companion * c, gboolean hold)
{
  if (!c->in)
    return;
  g_mutex_lock (&c->lock);
  c->hold = hold;
  g_cond_broadcast (&c->cond);
  while (hold && !c->idle)
    g_cond_wait (&c->cond, &c->lock);
  g_mutex_unlock (&c->lock);
}

static gpointer
companion_loop (gpointer data)
{
  Companion *c = data;
  gchar *name = g_strdup_printf ("%s (companion)", c->name);
  for (;;) {
    g_mutex_lock (&c->lock);
    c->idle = TRUE;
    g_cond_broadcast (&c->cond);
    while (c->hold)
      g_cond_wait (&c->cond, &c->lock);
    c->idle = FALSE;
    g_mutex_unlock (&c->lock);
    if (g_atomic_int_get (&c->stop) || g_atomic_int_get (&c->failures))
      break;
    GByteArray *out = NULL;
    if (set_state (&c->p, GST_STATE_PLAYING, "companion: play"))
      out = run_whole (&c->p, c->in);
    if (!out || out->len != c->ref->len || memcmp (out->data, c->ref->data, c->ref->len)) {
      fprintf (stderr, "not ok - %s: run %d differs from the reference (%u bytes, reference %u)\n",
          name, c->runs + 1, out ? out->len - 4 : 0, c->ref->len - 4);
      g_atomic_int_inc (&c->failures);
    }
    if (out)
      g_byte_array_unref (out);
    if (!set_state (&c->p, GST_STATE_NULL, "companion: stop") || !bus_ok (&c->p, name))
      g_atomic_int_inc (&c->failures);
    g_atomic_int_inc (&c->runs);
  }
  g_free (name);
  return NULL;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);   /* progress lines reach a log file as they come */
  gst_init (&argc, &argv);
  if (argc < 4) {
    fprintf (stderr, "usage: stress_states ELEMENT MODEL CYCLES [--seed N] [--new-pipeline] "
        "[--watchdog S] [--max-growth-kb KB] [--action 0|1|2] [--quiet] [--shared]\n");
    return 2;
  }
  const gchar *name = argv[1], *model = argv[2];
  gint cycles = atoi (argv[3]);
  guint32 seed = 1;
  gboolean new_pipe = FALSE, quiet = FALSE, shared = FALSE;
  glong max_growth_kb = -1;
  gint only_action = -1;        /* --action 0/1/2: NULL / READY / flush-seek only */
  for (gint i = 4; i < argc; i++) {
    if (!strcmp (argv[i], "--seed") && i + 1 < argc)
      seed = (guint32) atol (argv[++i]);
    else if (!strcmp (argv[i], "--new-pipeline"))
      new_pipe = TRUE;
    else if (!strcmp (argv[i], "--watchdog") && i + 1 < argc)
      watchdog_s = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--max-growth-kb") && i + 1 < argc)
      max_growth_kb = atol (argv[++i]);
    else if (!strcmp (argv[i], "--action") && i + 1 < argc)
      only_action = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--quiet"))
      quiet = TRUE;
    else if (!strcmp (argv[i], "--shared"))
      shared = TRUE;
    else {
      fprintf (stderr, "stress_states: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  const Spec *spec = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    if (!strcmp (specs[i].name, name))
      spec = &specs[i];
  if (!spec || cycles < 1) {
    fprintf (stderr, "stress_states: unknown element %s or bad cycle count\n", name);
    return 2;
  }
  if (max_growth_kb < 0)
    max_growth_kb = 256 + cycles / 2;
  GPtrArray *in = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_buffer_unref);
  spec->make_input (in);
  progress ("start");
  g_thread_unref (g_thread_new ("watchdog", watchdog, (gpointer) name));

  /* the reference: one run without interruption */
  Pipe p;
  if (!pipe_new (&p, spec, model))
    return 1;
  gint64 t0 = g_get_monotonic_time ();
  GByteArray *ref = NULL;
  if (set_state (&p, GST_STATE_PLAYING, "reference: play"))
    ref = run_whole (&p, in);
  gdouble ref_ms = (g_get_monotonic_time () - t0) / 1e3;
  if (!ref || !bus_ok (&p, name) || ref->len <= 4) {
    bus_ok (&p, name);
    fprintf (stderr, "not ok - %s: the reference run gave no output\n", name);
    return 1;
  }
  set_state (&p, GST_STATE_NULL, "reference: stop");
  printf ("# %s: reference run %.1f ms, %u output bytes\n", name, ref_ms, ref->len - 4);

  /* --shared: from here both pipelines use one core, and the companion runs */
  GstContext *core = NULL;
  Companion comp = {.name = name };
  GThread *comp_thread = NULL;
  if (shared) {
    comp.in = in;
    comp.ref = ref;
    g_mutex_init (&comp.lock);
    g_cond_init (&comp.cond);
    core = gst_context_new ("anygpt.core", TRUE);
    gst_structure_set (gst_context_writable_structure (core), "core-id", G_TYPE_STRING, "stress",
        "threads", G_TYPE_INT, 1, NULL);
    gst_element_set_context (p.pipe, core);
    if (!pipe_new (&comp.p, spec, model))
      return 1;
    gst_element_set_context (comp.p.pipe, core);
    comp_thread = g_thread_new ("companion", companion_loop, &comp);
  }

  GRand *rng = g_rand_new_with_seed (seed);
  static const char *const actions[] = { "NULL", "READY", "flush-seek" };
  gint n_action[3] = { 0 }, n_mid = 0, n_seek_refused = 0, failures = 0;
  gint warm = MAX (3, cycles / 10);
  glong rss_warm = -1, rss = -1, rss_first = rss_kb (), heap_warm = -1, heap = 0;
  gint64 start = g_get_monotonic_time ();
  for (cycle_no = 1; cycle_no <= cycles && failures == 0 && !g_atomic_int_get (&comp.failures);
      cycle_no++) {
    if (new_pipe && cycle_no > 1) {
      if (!pipe_new (&p, spec, model))
        return 1;
      if (core)
        gst_element_set_context (p.pipe, core);
    }
    if (!set_state (&p, GST_STATE_PLAYING, "NULL -> PLAYING"))
      failures++;
    /* work in flight: a random part of the input (streamed inputs) or all of it, then a random
     * wait of up to 1.5 times the uninterrupted run */
    guint n_push = in->len > 1 ? (guint) g_rand_int_range (rng, 1, (gint) in->len + 1) : in->len;
    progress ("interrupted run: push");
    push_all (&p, in, n_push);
    gint wait_us = g_rand_int_range (rng, 0, (gint) (ref_ms * 1500) + 1);
    g_usleep (wait_us);
    if (wait_us < ref_ms * 1000)
      n_mid++;
    gint a = g_rand_int_range (rng, 0, 3);
    if (only_action >= 0)
      a = only_action;
    n_action[a]++;
    if (a == 0 || a == 1) {
      if (!set_state (&p, a == 0 ? GST_STATE_NULL : GST_STATE_READY, "-> NULL / READY"))
        failures++;
      /* appsink (GStreamer 1.22) keeps the samples it queued through PAUSED -> READY -> PAUSED
       * (its queue is cleared at READY -> NULL only): what the element sent before the stop
       * is the sink's, not the element's, so the sink alone goes through NULL */
      if (a == 1 && (gst_element_set_state (GST_ELEMENT (p.sink), GST_STATE_NULL) ==
              GST_STATE_CHANGE_FAILURE || gst_element_set_state (GST_ELEMENT (p.sink),
                  GST_STATE_READY) == GST_STATE_CHANGE_FAILURE))
        failures++;
      if (!set_state (&p, GST_STATE_PLAYING, "restart: -> PLAYING"))
        failures++;
    } else {
      progress ("flush-seek");
      if (!gst_element_seek_simple (p.pipe, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, 0)) {
        /* the seek travels upstream from the sink: an element that does not pass it on */
        if (n_seek_refused++ == 0)
          fprintf (stderr, "# %s: the flushing seek was refused\n", name);
        failures++;
      }
    }
    if (!bus_ok (&p, name))
      failures++;
    /* the first reply after the restart */
    GByteArray *out = failures ? NULL : run_whole (&p, in);
    if (!failures && (!out || out->len != ref->len || memcmp (out->data, ref->data, ref->len))) {
      fprintf (stderr, "not ok - %s: cycle %d (after %s, %d us): the reply after the restart "
          "differs from the reference (%u bytes, reference %u)\n", name, cycle_no, actions[a],
          wait_us, out ? out->len - 4 : 0, ref->len - 4);
      if (out) {
        gchar *a_raw = g_strndup ((const gchar *) out->data, MIN (out->len, 240));
        gchar *r_raw = g_strndup ((const gchar *) ref->data, MIN (ref->len, 240));
        gchar *a_s = g_strescape (a_raw, NULL), *r_s = g_strescape (r_raw, NULL);
        g_free (a_raw);
        g_free (r_raw);
        fprintf (stderr, "#   got  \"%s\"\n#   want \"%s\"\n", a_s, r_s);
        g_free (a_s);
        g_free (r_s);
      }
      bus_ok (&p, name);
      failures++;
    }
    if (out)
      g_byte_array_unref (out);
    if (!set_state (&p, GST_STATE_NULL, "-> NULL") || !bus_ok (&p, name))
      failures++;
    if (new_pipe)
      pipe_free (&p);
    companion_hold (&comp, TRUE);
    rss = rss_kb ();
    heap = heap_kb ();
    companion_hold (&comp, FALSE);
    if (cycle_no == warm) {
      rss_warm = rss;
      heap_warm = heap;
    }
    if (!quiet && (cycle_no % 100 == 0 || cycle_no == warm))
      printf ("# %s: cycle %d: VmRSS %ld kB, heap in use %ld kB\n", name, cycle_no, rss, heap);
  }
  gint done = cycle_no - 1;
  gdouble secs = (g_get_monotonic_time () - start) / 1e6;
  if (comp_thread) {
    gint during = g_atomic_int_get (&comp.runs);
    g_atomic_int_set (&comp.stop, 1);
    g_thread_join (comp_thread);
    g_mutex_clear (&comp.lock);
    g_cond_clear (&comp.cond);
    pipe_free (&comp.p);
    gst_context_unref (core);
    printf ("# %s: shared core: the companion pipeline finished %d runs during the cycles "
        "(%d in all), %d differing or failed\n", name, during, comp.runs, comp.failures);
    if (comp.failures)
      failures++;
    if (during < 1) {
      fprintf (stderr, "not ok - %s: the companion pipeline finished no run during the cycles\n",
          name);
      failures++;
    }
  }
  if (!new_pipe)
    pipe_free (&p);
  glong growth = rss_warm >= 0 ? rss - rss_warm : 0;
  glong heap_growth = heap_warm > 0 ? heap - heap_warm : 0;
  gint measured = MAX (done - warm, 1);
  printf ("# %s: %d cycles in %.1f s (%d NULL, %d READY, %d flush-seek; %d interrupted before the "
      "reply was complete), %d warnings\n", name, done, secs, n_action[0], n_action[1],
      n_action[2], n_mid, n_warnings);
  printf ("# %s: VmRSS %ld kB at start, %ld kB after %d cycles (warm-up), %ld kB at the end: "
      "%+ld kB, %.2f kB per cycle; heap in use %ld -> %ld kB: %+ld kB, %.3f kB per cycle\n",
      name, rss_first, rss_warm, warm, rss, growth, (gdouble) growth / measured, heap_warm, heap,
      heap_growth, (gdouble) heap_growth / measured);
  /* a leak shows in the heap in use; VmRSS also moves with malloc's arenas and fragmentation
   * (steps of MBs now and then), so its bound is loose: a gross leak, or a sanitizer build */
  if (heap_warm > 0 && heap_growth > max_growth_kb) {
    fprintf (stderr, "not ok - %s: heap in use grew %ld kB after the warm-up (%ld allowed)\n",
        name, heap_growth, max_growth_kb);
    failures++;
  }
  if (rss_warm >= 0 && done >= 200 && growth > 16 * max_growth_kb) {
    fprintf (stderr, "not ok - %s: VmRSS grew %ld kB after the warm-up (%ld allowed)\n", name,
        growth, 16 * max_growth_kb);
    failures++;
  }
  g_rand_free (rng);
  g_byte_array_unref (ref);
  g_ptr_array_unref (in);
  if (!failures)
    printf ("ok - %s: %d state-change cycles mid-work, every reply after a restart equal to the "
        "reference%s\n", name, done, shared ? "; a companion pipeline on the same core meanwhile" : "");
  gst_deinit ();
  return failures ? 1 : 0;
}
