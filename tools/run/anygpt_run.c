/* anygpt-run: runs a gst-launch-1.0 pipeline description and reports what the anygpt elements
 * say on the bus.
 *
 *   anygpt-run [-r] [-l] [-p] [-v] [-m FILE] [--srt FILE] [-c] [-q] [--] DESCRIPTION...
 *
 *   -r, --replies        print the text of every anygptllm reply on stdout, one line per reply
 *                        (modality spans and <eot> removed; the full reply is in the message)
 *   -l, --latency        print every turn's latency on stderr as it completes and a table at
 *                        the end (see below)
 *   -m, --messages FILE  write every element message of the pipeline to FILE, one per line
 *                        (gst_structure_to_string), for scripts and tests
 *   --srt FILE           write the timed replies (captions, transcripts) as SubRip subtitles
 *                        to FILE at the end, and print each one's latency on stderr (below)
 *   -c, --captions       print each timed reply's latency as --srt does, without the file
 *   -p, --progress       image generation progress on stderr from seeddiffuse's messages: a bar
 *                        redrawn at every denoising step on a terminal (lines at the first step
 *                        and at each quarter otherwise), then one line per image (size, seed,
 *                        UNet evaluations, seconds)
 *   -q, --quiet          no state / end-of-stream chatter on stderr
 *   -v, --verbose        the shared compute core on stderr: a line per element as it loads
 *                        its model (device, backends open in the process and the elements on
 *                        this one, model files loaded and the users of this one; from the
 *                        `anygpt-core` messages), and at the end the totals with the process's
 *                        thread count and peak RSS
 *
 * Exit status: 0 at end of stream, 1 when the pipeline posts an error (printed on stderr as
 * "ERROR from element NAME: MESSAGE" plus the debug detail), 2 for a bad description or
 * usage. Ctrl-C sends end-of-stream (as gst-launch-1.0 -e), so the sinks finish their files;
 * a second Ctrl-C stops at once.
 *
 * Turns and latency. A turn starts with an utterance (the `speechtokenize` message) and ends
 * with the first audio of its reply (the `encodecdecode` message); the stages are taken from the
 * messages of the elements in pipeline order, first in first out per stage:
 *   tokenize    speechtokenize encode-time (the utterance through SpeechTokenizer)
 *   prefill     anygptllm (prompt-tokens - reused-tokens) / prefill-tokens-per-second
 *   generate    anygptllm generated-tokens / decode-tokens-per-second (text and speech tokens)
 *   soundstorm  soundstorm seconds
 *   decode      encodecdecode decode-time
 *   total       end of speech (the speechtokenize message time minus its encode time: the
 *               moment the utterance's end was seen; with segment=vad that is silence-ms,
 *               600 ms by default, after the last voiced frame, which a speaker also waits)
 *               -> first audio sample (the encodecdecode message, posted when the audio is
 *               pushed to the sink)
 *   wait        total minus the stages: queueing between the elements and time spent on an
 *               earlier turn
 * With streamed speech (voice-assistant.sh --speech-chunk) soundstorm and decode are the
 * first chunk's; generate still counts the whole reply, which overlaps the audio, so wait is
 * negative then.
 * An utterance the LLM drops (half-duplex, `anygptllm-dropped` message) is listed as dropped, a
 * reply cut short (barge-in: its message says cancelled) as interrupted.
 *
 * Subtitles (--srt). Every `anygptllm` message with a pts (the time of the item or message it
 * answers, see the element's Timing) and not cancelled is a cue: its text is the reply's text
 * (as for -r; blank lines removed), it starts at pts and ends at pts + the message's duration
 * when it has one (caption-duration, or the item's own: an utterance), else at the next cue's
 * start; the last one at the end of the stream (the pipeline's duration) when later, else
 * after as long as the cue before it, else after 3 s. Cues are numbered in time order; replies
 * without text or without a pts are not cues. As each timed reply arrives, a line on stderr
 * gives its time and its latency: item -> first text (from the reply's arrival at the LLM to
 * its first text piece, queueing included: the message's latency field) and, when the pipeline
 * is live (its latency query says so), frame -> first text (running time of the first text
 * minus the item's time: the delay from the media to its caption, tokenizer included). When a
 * `seedtokenize` message has the item's time, its latency-ms (the frame's arrival at the
 * tokenizer -> its codes) is printed as "tokenize", and on a pipeline that is not live (a file
 * does not run at its clock's pace) frame -> first text is that plus item -> first text. */
#include <gst/gst.h>
#include <glib-unix.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TURNS 256

typedef struct
{
  gboolean have_utt, have_llm, have_ss, have_dec, dropped, interrupted, printed;
  GstClockTime t_end_speech, t_audio;
  double tokenize, prefill, generate, soundstorm, decode;
  gchar *text;
} Turn;

/* A timed reply, for --srt. */
typedef struct
{
  GstClockTime pts, duration;
  gchar *text;
} Cue;

typedef struct
{
  GMainLoop *loop;
  GstElement *pipeline;
  gboolean replies, latency, quiet, progress, verbose;
  guint core_elements, core_backends, core_files;       /* --verbose: as the last message said */
  gboolean tty;                 /* stderr is a terminal: the progress bar is redrawn in place */
  gboolean bar_open;            /* a progress bar line without its newline yet */
  FILE *messages;
  GArray *cues;                 /* Cue, as they come; NULL without --srt / --captions */
  GHashTable *frame_latency;    /* seedtokenize: frame pts -> arrival -> codes, ms */
  gint n_timed;                 /* timed replies seen (for the latency lines) */
  gint live;                    /* the pipeline is live (latency query): 1, 0; -1 not asked yet */
  int rc;
  int n_signals;
  Turn turns[MAX_TURNS];         /* the latest turns; turns[0] is turn number first_turn + 1 */
  int n_turns;
  int first_turn;               /* turns retired from the front (long runs: see turn_for) */
} App;

/* The reply text as text_src streams it: without modality spans, stray modality code tokens and
 * AnyGPT's role / control strings. */
static gchar *
reply_text (const gchar * reply)
{
  static const char *const spans[][2] = { {"<sosp>", "<eosp>"}, {"<soim>",
          "<eoim>"}, {"<somu>", "<eomu>"}
  };
  static const char *const tags[] = { "<eot>", "<eoh>", "<eos>", "<eom>", "<-Ins->",
    "<-Res->", "[Human]", "[MMGPT]", "<eosp>", "<eoim>", "<eomu>"
  };
  static const char *const codes[] = { "<\xf0\x9f\x97\xa3\xef\xb8\x8f", "<\xf0\x9f\x91\x80",
    "<\xf0\x9f\x8e\xb6"
  };                            /* <🗣️N>, <👀N>, <🎶N> */
  GString *out = g_string_new (NULL);
  const gchar *p = reply;
  while (*p) {
    gboolean skipped = FALSE;
    for (guint i = 0; i < G_N_ELEMENTS (spans) && !skipped; i++) {
      if (g_str_has_prefix (p, spans[i][0])) {
        const gchar *e = strstr (p, spans[i][1]);
        p = e ? e + strlen (spans[i][1]) : p + strlen (p);
        skipped = TRUE;
      }
    }
    for (guint i = 0; i < G_N_ELEMENTS (tags) && !skipped; i++) {
      if (g_str_has_prefix (p, tags[i])) {
        p += strlen (tags[i]);
        skipped = TRUE;
      }
    }
    for (guint i = 0; i < G_N_ELEMENTS (codes) && !skipped; i++) {
      if (g_str_has_prefix (p, codes[i])) {
        const gchar *d = p + strlen (codes[i]);
        while (g_ascii_isdigit (*d))
          d++;
        if (d > p + strlen (codes[i]) && *d == '>') {
          p = d + 1;
          skipped = TRUE;
        }
      }
    }
    if (!skipped)
      g_string_append_c (out, *p++);
  }
  return g_strstrip (g_string_free (out, FALSE));
}

/* The oldest turn that has no value for a stage yet (a new one when all have). */
static Turn *
turn_for (App * app, gsize field_offset)
{
  for (int i = 0; i < app->n_turns; i++) {
    Turn *t = &app->turns[i];
    if (t->dropped || t->interrupted)
      continue;
    if (!G_STRUCT_MEMBER (gboolean, t, field_offset))
      return t;
  }
  if (app->n_turns == MAX_TURNS) {
    /* a long run (hours of conversation): the oldest turn, long printed, makes room, so memory
     * stays bounded and every turn still gets its latency line */
    g_free (app->turns[0].text);
    memmove (app->turns, app->turns + 1, (MAX_TURNS - 1) * sizeof app->turns[0]);
    app->n_turns--;
    app->first_turn++;
  }
  Turn *t = &app->turns[app->n_turns++];
  memset (t, 0, sizeof *t);
  return t;
}

static double
turn_total (const Turn * t)
{
  return (double) GST_CLOCK_DIFF (t->t_end_speech, t->t_audio) / GST_SECOND;
}

static void
print_turn (App * app, int i)
{
  Turn *t = &app->turns[i];
  /* complete once both the audio and the reply's message came (the audio usually first: it
   * is pushed while the reply is still being finished) */
  if (!app->latency || t->printed || (!t->dropped && !t->interrupted && !(t->have_llm &&
              t->have_dec)))
    return;
  t->printed = TRUE;
  if (t->dropped) {
    g_printerr ("turn %d: utterance dropped (the assistant was busy)\n", app->first_turn + i + 1);
    return;
  }
  if (t->interrupted) {
    g_printerr ("turn %d: reply interrupted (barge-in)\n", app->first_turn + i + 1);
    return;
  }
  double stages = t->tokenize + t->prefill + t->generate + t->soundstorm + t->decode;
  if (t->have_utt && t->have_dec)
    g_printerr ("turn %d: end of speech -> first audio %.3f s (tokenize %.3f, prefill %.3f, "
        "generate %.3f, soundstorm %.3f, decode %.3f, wait %.3f)\n", app->first_turn + i + 1,
        turn_total (t),
        t->tokenize, t->prefill, t->generate, t->soundstorm, t->decode, turn_total (t) - stages);
}

static void
print_table (App * app)
{
  if (!app->latency || app->n_turns == 0)
    return;
  g_printerr ("\nper-turn latency, seconds (end of speech -> first audio sample):\n");
  if (app->first_turn)
    g_printerr ("(turns 1-%d: see their lines above)\n", app->first_turn);
  g_printerr ("%-5s %9s %9s %9s %10s %9s %9s %9s\n", "turn", "tokenize", "prefill", "generate",
      "soundstorm", "decode", "wait", "total");
  for (int i = 0; i < app->n_turns; i++) {
    Turn *t = &app->turns[i];
    if (t->dropped) {
      g_printerr ("%-5d dropped (the assistant was busy)\n", app->first_turn + i + 1);
      continue;
    }
    if (t->interrupted) {
      g_printerr ("%-5d interrupted (barge-in)\n", app->first_turn + i + 1);
      continue;
    }
    double stages = t->tokenize + t->prefill + t->generate + t->soundstorm + t->decode;
    if (t->have_utt && t->have_dec)
      g_printerr ("%-5d %9.3f %9.3f %9.3f %10.3f %9.3f %9.3f %9.3f\n", app->first_turn + i + 1, t->tokenize,
          t->prefill, t->generate, t->soundstorm, t->decode, turn_total (t) - stages,
          turn_total (t));
    else
      g_printerr ("%-5d %9.3f %9.3f %9.3f %10.3f %9.3f %9s %9s\n", app->first_turn + i + 1, t->tokenize,
          t->prefill, t->generate, t->soundstorm, t->decode, "-", "-");
  }
}

static double
get_double (const GstStructure * s, const gchar * f)
{
  gdouble d = 0;
  return gst_structure_get_double (s, f, &d) ? d : 0.0;
}

static gint
get_int (const GstStructure * s, const gchar * f)
{
  gint v = 0;
  return gst_structure_get_int (s, f, &v) ? v : 0;
}

static double
get_ns_seconds (const GstStructure * s, const gchar * f)
{
  guint64 v = 0;
  return gst_structure_get_uint64 (s, f, &v) ? (double) v / GST_SECOND : 0.0;
}

static GstClockTime
get_time (const GstStructure * s, const gchar * f)
{
  guint64 v = GST_CLOCK_TIME_NONE;
  return gst_structure_get_uint64 (s, f, &v) ? v : GST_CLOCK_TIME_NONE;
}

/* One timed reply: a cue for the SRT file, and its latency on stderr. */
static void
add_cue (App * app, const GstStructure * s, const gchar * text)
{
  GstClockTime pts = get_time (s, "pts");
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return;
  app->n_timed++;
  GstClockTime latency = get_time (s, "latency"), rt = get_time (s, "running-time");
  GString *line = g_string_new (NULL);
  g_string_append_printf (line, "caption %d at %" GST_TIME_FORMAT ":", app->n_timed,
      GST_TIME_ARGS (pts));
  if (GST_CLOCK_TIME_IS_VALID (latency))
    g_string_append_printf (line, " item -> first text %.3f s", (double) latency / GST_SECOND);
  else
    g_string_append (line, " no text");
  /* a pipeline that is not live (a file) does not run at its clock's pace: no frame delay */
  if (app->live < 0) {
    GstQuery *q = gst_query_new_latency ();
    gboolean live = FALSE;
    if (gst_element_query (app->pipeline, q))
      gst_query_parse_latency (q, &live, NULL, NULL);
    gst_query_unref (q);
    app->live = live;
  }
  /* the tokenizer's part: its frame's arrival -> codes (seedtokenize's message of that time) */
  const gdouble *tok = app->frame_latency ? g_hash_table_lookup (app->frame_latency, &pts) : NULL;
  if (app->live && GST_CLOCK_TIME_IS_VALID (latency) && GST_CLOCK_TIME_IS_VALID (rt) && rt >= pts)
    g_string_append_printf (line, ", frame -> first text %.3f s", (double) (rt - pts) / GST_SECOND);
  else if (tok && GST_CLOCK_TIME_IS_VALID (latency))
    g_string_append_printf (line, ", frame -> first text %.3f s",
        *tok / 1e3 + (double) latency / GST_SECOND);
  if (tok)
    g_string_append_printf (line, " (tokenize %.3f s)", *tok / 1e3);
  g_printerr ("%s\n", line->str);
  g_string_free (line, TRUE);

  /* SubRip: a blank line ends a cue, so the text has none */
  gchar **lines = g_strsplit_set (text, "\r\n", -1);
  GString *cue_text = g_string_new (NULL);
  for (gchar ** l = lines; *l; l++) {
    g_strstrip (*l);
    if (**l)
      g_string_append_printf (cue_text, "%s%s", cue_text->len ? "\n" : "", *l);
  }
  g_strfreev (lines);
  if (!cue_text->len) {
    g_string_free (cue_text, TRUE);
    return;
  }
  Cue c = { pts, get_time (s, "duration"), g_string_free (cue_text, FALSE) };
  g_array_append_val (app->cues, c);
}

static gint
cue_cmp (gconstpointer a, gconstpointer b)
{
  const Cue *x = a, *y = b;
  return x->pts < y->pts ? -1 : x->pts > y->pts;
}

static void
srt_time (FILE * f, GstClockTime t)
{
  guint64 ms = t / GST_MSECOND;
  fprintf (f, "%02" G_GUINT64_FORMAT ":%02u:%02u,%03u", ms / 3600000,
      (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60), (guint) (ms % 1000));
}

/* The cues in time order, each ending as the header comment says; end_of_stream: the pipeline's
 * duration (NONE when unknown). FALSE when the file cannot be written. */
static gboolean
write_srt (GArray * cues, const gchar * path, GstClockTime end_of_stream)
{
  FILE *f = fopen (path, "w");
  if (!f)
    return FALSE;
  g_array_sort (cues, cue_cmp);
  GstClockTime last_len = GST_CLOCK_TIME_NONE;
  for (guint i = 0; i < cues->len; i++) {
    const Cue *c = &g_array_index (cues, Cue, i);
    GstClockTime end = GST_CLOCK_TIME_NONE;
    if (GST_CLOCK_TIME_IS_VALID (c->duration) && c->duration > 0)
      end = c->pts + c->duration;
    else if (i + 1 < cues->len && g_array_index (cues, Cue, i + 1).pts > c->pts)
      end = g_array_index (cues, Cue, i + 1).pts;
    else if (i + 1 == cues->len && GST_CLOCK_TIME_IS_VALID (end_of_stream) &&
        end_of_stream > c->pts)
      end = end_of_stream;
    else
      end = c->pts + (GST_CLOCK_TIME_IS_VALID (last_len) ? last_len : 3 * GST_SECOND);
    last_len = end - c->pts;
    fprintf (f, "%u\n", i + 1);
    srt_time (f, c->pts);
    fputs (" --> ", f);
    srt_time (f, end);
    fprintf (f, "\n%s\n\n", c->text);
  }
  return fclose (f) == 0;
}

/* seeddiffuse-progress: the bar (terminal) or a line at the first step and each quarter. */
static void
show_progress (App * app, const GstStructure * s)
{
  guint64 item = 0;
  gst_structure_get_uint64 (s, "item", &item);
  gint step = get_int (s, "step"), of = get_int (s, "of");
  double elapsed = get_double (s, "elapsed"), eta = get_double (s, "eta");
  if (of < 1 || step < 1)
    return;
  if (app->tty) {
    enum { WIDTH = 30 };
    gchar bar[WIDTH + 1];
    gint full = (gint) ((gint64) step * WIDTH / of);
    memset (bar, '#', full);
    memset (bar + full, '.', WIDTH - full);
    bar[WIDTH] = 0;
    g_printerr ("\rimage %" G_GUINT64_FORMAT " [%s] %d/%d  %.1f s, %.1f s left\033[K", item, bar,
        step, of, elapsed, eta);
    app->bar_open = TRUE;
  } else if (step == 1 || step == of || step * 4 / of != (step - 1) * 4 / of) {
    g_printerr ("image %" G_GUINT64_FORMAT ": step %d/%d, %.1f s, %.1f s left\n", item, step, of,
        elapsed, eta);
  }
}

/* seeddiffuse: one line per image. */
static void
show_image_done (App * app, const GstStructure * s)
{
  guint64 item = 0, seed = 0;
  gboolean aborted = FALSE;
  gst_structure_get_uint64 (s, "item", &item);
  gst_structure_get_uint64 (s, "seed", &seed);
  gst_structure_get_boolean (s, "aborted", &aborted);
  GstClockTime pts = get_time (s, "pts");
  if (app->bar_open)
    g_printerr ("\n");
  app->bar_open = FALSE;
  GString *line = g_string_new (NULL);
  g_string_append_printf (line, "image %" G_GUINT64_FORMAT, item);
  if (GST_CLOCK_TIME_IS_VALID (pts))
    g_string_append_printf (line, " at %" GST_TIME_FORMAT, GST_TIME_ARGS (pts));
  if (aborted)
    g_string_append_printf (line, ": stopped after %.2f s", get_double (s, "seconds"));
  else
    g_string_append_printf (line, ": %dx%d, seed %" G_GUINT64_FORMAT ", %d UNet evaluations, "
        "%.2f s (VAE decode %.2f s)", get_int (s, "width"), get_int (s, "height"), seed,
        get_int (s, "evaluations"), get_double (s, "seconds"), get_double (s, "decode-seconds"));
  g_printerr ("%s\n", line->str);
  g_string_free (line, TRUE);
}

static void
on_element_message (App * app, GstMessage * msg)
{
  const GstStructure *s = gst_message_get_structure (msg);
  if (!s)
    return;
  const gchar *name = gst_structure_get_name (s);
  GstClockTime now = GST_MESSAGE_TIMESTAMP (msg);
  if (!GST_CLOCK_TIME_IS_VALID (now))
    now = gst_util_get_timestamp ();
  if (app->messages) {
    gchar *str = gst_structure_to_string (s);
    fprintf (app->messages, "%s\n", str);
    fflush (app->messages);
    g_free (str);
  }
  Turn *t = NULL;
  if (!strcmp (name, "speechtokenize")) {
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_utt)))) {
      t->have_utt = TRUE;
      t->tokenize = get_ns_seconds (s, "encode-time");
      t->t_end_speech = now - MIN (now, (GstClockTime) (t->tokenize * GST_SECOND));
    }
  } else if (!strcmp (name, "anygptllm-dropped")) {
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_llm)))) {
      t->dropped = TRUE;
      print_turn (app, (int) (t - app->turns));
    }
  } else if (!strcmp (name, "seedtokenize")) {
    GstClockTime pts = get_time (s, "pts");
    gboolean aborted = FALSE;
    gdouble ms = get_double (s, "latency-ms");
    if (app->frame_latency && GST_CLOCK_TIME_IS_VALID (pts) &&
        !(gst_structure_get_boolean (s, "aborted", &aborted) && aborted))
      g_hash_table_insert (app->frame_latency, g_memdup2 (&pts, sizeof pts),
          g_memdup2 (&ms, sizeof ms));
  } else if (!strcmp (name, "anygptllm")) {
    const gchar *reply = gst_structure_get_string (s, "reply");
    gchar *text = reply_text (reply ? reply : "");
    gboolean cancelled = FALSE;
    gst_structure_get_boolean (s, "cancelled", &cancelled);
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_llm)))) {
      t->have_llm = TRUE;
      double pre_tps = get_double (s, "prefill-tokens-per-second");
      double dec_tps = get_double (s, "decode-tokens-per-second");
      int prefilled = get_int (s, "prompt-tokens") - get_int (s, "reused-tokens");
      t->prefill = pre_tps > 0 ? prefilled / pre_tps : 0;
      t->generate = dec_tps > 0 ? get_int (s, "generated-tokens") / dec_tps : 0;
      t->text = g_strdup (text);
      t->interrupted = cancelled;
      print_turn (app, (int) (t - app->turns));
    }
    if (app->cues && !cancelled)
      add_cue (app, s, text);
    if (app->replies) {         /* UTF-8 as is (g_print would convert to the locale) */
      fputs (text, stdout);
      fputc ('\n', stdout);
      fflush (stdout);
    }
    g_free (text);
  } else if (!strcmp (name, "anygpt-core")) {
    guint backends = 0, users = 0, files = 0, model_users = 0;
    gst_structure_get_uint (s, "backends", &backends);
    gst_structure_get_uint (s, "backend-users", &users);
    gst_structure_get_uint (s, "weight-files", &files);
    gst_structure_get_uint (s, "model-users", &model_users);
    app->core_elements++;
    app->core_backends = backends;
    app->core_files = files;
    if (app->verbose)
      g_printerr ("core %s: %s on %s: %u backend(s) in the process, this one used by %u "
          "element(s); %u model file(s) loaded, this one by %u element(s)\n",
          gst_structure_get_string (s, "core-id"), GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          gst_structure_get_string (s, "device"), backends, users, files, model_users);
  } else if (!strcmp (name, "seeddiffuse-progress")) {
    if (app->progress)
      show_progress (app, s);
  } else if (!strcmp (name, "seeddiffuse")) {
    if (app->progress)
      show_image_done (app, s);
  } else if (!strcmp (name, "soundstorm")) {
    guint64 chunk = 0;
    /* streamed speech: the first chunk is what comes before the first audio */
    if (gst_structure_get_uint64 (s, "chunk", &chunk) && chunk > 0)
      return;
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_ss)))) {
      t->have_ss = TRUE;
      t->soundstorm = get_double (s, "seconds");
    }
  } else if (!strcmp (name, "encodecdecode")) {
    gboolean first = TRUE;
    if (gst_structure_get_boolean (s, "first", &first) && !first)
      return;                   /* a later part of a streamed item */
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_dec)))) {
      t->have_dec = TRUE;
      t->decode = get_ns_seconds (s, "decode-time");
      t->t_audio = now;
      print_turn (app, (int) (t - app->turns));
    }
  }
}

static gboolean
on_bus (GstBus * bus, GstMessage * msg, gpointer data)
{
  App *app = data;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      GError *err = NULL;
      gchar *dbg = NULL;
      if (app->bar_open)
        g_printerr ("\n");
      app->bar_open = FALSE;
      gst_message_parse_error (msg, &err, &dbg);
      g_printerr ("ERROR from element %s: %s\n", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err ? err->message : "unknown error");
      if (dbg)
        g_printerr ("Additional debug info:\n%s\n", dbg);
      g_clear_error (&err);
      g_free (dbg);
      app->rc = 1;
      g_main_loop_quit (app->loop);
      break;
    }
    case GST_MESSAGE_WARNING:{
      GError *err = NULL;
      gchar *dbg = NULL;
      if (app->bar_open)
        g_printerr ("\n");
      app->bar_open = FALSE;
      gst_message_parse_warning (msg, &err, &dbg);
      g_printerr ("WARNING from element %s: %s%s%s\n", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err ? err->message : "unknown warning", dbg ? ": " : "", dbg ? dbg : "");
      g_clear_error (&err);
      g_free (dbg);
      break;
    }
    case GST_MESSAGE_EOS:
      if (!app->quiet)
        g_printerr ("end of stream\n");
      g_main_loop_quit (app->loop);
      break;
    case GST_MESSAGE_ELEMENT:
      on_element_message (app, msg);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* --verbose: the totals, with the thread count and peak RSS of the process (Linux) */
static void
print_core_summary (App * app)
{
  gchar *status = NULL;
  gint threads = -1;
  gint64 hwm_kb = -1;
  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL)) {
    const gchar *t = strstr (status, "\nThreads:"), *h = strstr (status, "\nVmHWM:");
    if (t)
      threads = atoi (t + 9);
    if (h)
      hwm_kb = g_ascii_strtoll (h + 7, NULL, 10);
    g_free (status);
  }
  g_printerr ("core: %u element(s) on %u backend(s), %u model file(s) loaded; process: %d "
      "threads, peak RSS %.1f MiB\n", app->core_elements, app->core_backends, app->core_files,
      threads, hwm_kb >= 0 ? hwm_kb / 1024.0 : -1.0);
}

static gboolean
on_sigint (gpointer data)
{
  App *app = data;
  if (++app->n_signals > 1) {
    g_printerr ("interrupted twice: stopping\n");
    g_main_loop_quit (app->loop);
    return G_SOURCE_REMOVE;
  }
  g_printerr ("interrupt: sending end-of-stream (Ctrl-C again to stop at once)\n");
  gst_element_send_event (app->pipeline, gst_event_new_eos ());
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  App app = { 0 };
  app.live = -1;
  app.tty = isatty (fileno (stderr));
  gchar *messages_path = NULL, *srt_path = NULL;
  gchar **rest = NULL;
  gboolean captions = FALSE;
  GOptionEntry entries[] = {
    {"replies", 'r', 0, G_OPTION_ARG_NONE, &app.replies,
        "Print the text of every anygptllm reply on stdout", NULL},
    {"latency", 'l', 0, G_OPTION_ARG_NONE, &app.latency,
        "Print per-turn latency by stage on stderr", NULL},
    {"messages", 'm', 0, G_OPTION_ARG_FILENAME, &messages_path,
        "Write every element message to FILE", "FILE"},
    {"srt", 0, 0, G_OPTION_ARG_FILENAME, &srt_path,
        "Write the timed replies (captions) as SubRip subtitles to FILE, print their latency",
        "FILE"},
    {"captions", 'c', 0, G_OPTION_ARG_NONE, &captions,
        "Print the time and latency of every timed reply (as --srt, without the file)", NULL},
    {"progress", 'p', 0, G_OPTION_ARG_NONE, &app.progress,
        "Show image generation progress (seeddiffuse) on stderr", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &app.quiet, "Less output on stderr", NULL},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &app.verbose,
        "Show the shared compute core (backends, model copies, threads, RSS) on stderr", NULL},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &rest, NULL, "DESCRIPTION..."},
    {NULL}
  };
  GError *err = NULL;
  GOptionContext *ctx = g_option_context_new ("DESCRIPTION... - run a pipeline, report the "
      "anygpt elements' replies and latency");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err) || !rest || !rest[0]) {
    g_printerr ("anygpt-run: %s\nusage: anygpt-run [-r] [-l] [-p] [-m FILE] [--srt FILE] [-c] [-q] "
        "[--] DESCRIPTION...\n", err ? err->message : "no pipeline description");
    g_clear_error (&err);
    g_option_context_free (ctx);
    g_strfreev (rest);
    g_free (messages_path);
    g_free (srt_path);
    return 2;
  }
  g_option_context_free (ctx);

  /* one argument per token, as gst-launch-1.0: values with spaces need no extra quoting */
  app.pipeline = gst_parse_launchv_full ((const gchar **) rest, NULL,
      GST_PARSE_FLAG_FATAL_ERRORS, &err);
  g_strfreev (rest);
  if (!app.pipeline) {
    g_printerr ("ERROR: pipeline could not be constructed: %s\n",
        err ? err->message : "unknown error");
    g_clear_error (&err);
    g_free (messages_path);
    g_free (srt_path);
    gst_deinit ();
    return 2;
  }
  if (messages_path && !(app.messages = fopen (messages_path, "w"))) {
    g_printerr ("anygpt-run: cannot write %s\n", messages_path);
    gst_object_unref (app.pipeline);
    g_free (messages_path);
    g_free (srt_path);
    gst_deinit ();
    return 2;
  }
  g_free (messages_path);
  if (srt_path || captions) {
    app.cues = g_array_new (FALSE, FALSE, sizeof (Cue));
    app.frame_latency = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  }

  app.loop = g_main_loop_new (NULL, FALSE);
  GstBus *bus = gst_element_get_bus (app.pipeline);
  guint watch = gst_bus_add_watch (bus, on_bus, &app);
  gst_object_unref (bus);
  guint sig = g_unix_signal_add (SIGINT, on_sigint, &app);

  if (gst_element_set_state (app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* the element error (posted on the bus) says why: show it */
    bus = gst_element_get_bus (app.pipeline);
    GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (m) {
      on_bus (bus, m, &app);
      gst_message_unref (m);
    } else {
      g_printerr ("ERROR: the pipeline does not want to play\n");
    }
    gst_object_unref (bus);
    app.rc = 1;
  } else {
    g_main_loop_run (app.loop);
  }
  gint64 stream_end = -1;
  if (app.cues && !gst_element_query_duration (app.pipeline, GST_FORMAT_TIME, &stream_end))
    stream_end = -1;
  if (app.verbose)
    print_core_summary (&app);
  gst_element_set_state (app.pipeline, GST_STATE_NULL);
  print_table (&app);
  if (app.cues) {
    if (!srt_path) {
      /* --captions: the lines were the point */
    } else if (!write_srt (app.cues, srt_path, stream_end >= 0 ? (GstClockTime) stream_end :
            GST_CLOCK_TIME_NONE)) {
      g_printerr ("anygpt-run: cannot write %s\n", srt_path);
      app.rc = app.rc ? app.rc : 1;
    } else if (!app.quiet) {
      g_printerr ("%u subtitle cues written to %s\n", app.cues->len, srt_path);
    }
    for (guint i = 0; i < app.cues->len; i++)
      g_free (g_array_index (app.cues, Cue, i).text);
    g_array_free (app.cues, TRUE);
    g_hash_table_unref (app.frame_latency);
  }
  g_free (srt_path);

  g_source_remove (sig);
  g_source_remove (watch);
  for (int i = 0; i < app.n_turns; i++)
    g_free (app.turns[i].text);
  if (app.messages)
    fclose (app.messages);
  gst_object_unref (app.pipeline);
  g_main_loop_unref (app.loop);
  gst_deinit ();
  return app.rc;
}
