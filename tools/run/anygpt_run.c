/* anygpt-run: runs a gst-launch-1.0 pipeline description and reports what the anygpt elements
 * say on the bus.
 *
 *   anygpt-run [-r] [-l] [-m FILE] [-q] [--] DESCRIPTION...
 *
 *   -r, --replies        print the text of every anygptllm reply on stdout, one line per reply
 *                        (modality spans and <eot> removed; the full reply is in the message)
 *   -l, --latency        print every turn's latency on stderr as it completes and a table at
 *                        the end (see below)
 *   -m, --messages FILE  write every element message of the pipeline to FILE, one per line
 *                        (gst_structure_to_string), for scripts and tests
 *   -q, --quiet          no state / end-of-stream chatter on stderr
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
 * An utterance the LLM drops (half-duplex, `anygptllm-dropped` message) is listed as dropped, a
 * reply cut short (barge-in: its message says cancelled) as interrupted. */
#include <gst/gst.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

#define MAX_TURNS 256

typedef struct
{
  gboolean have_utt, have_llm, have_ss, have_dec, dropped, interrupted, printed;
  GstClockTime t_end_speech, t_audio;
  double tokenize, prefill, generate, soundstorm, decode;
  gchar *text;
} Turn;

typedef struct
{
  GMainLoop *loop;
  GstElement *pipeline;
  gboolean replies, latency, quiet;
  FILE *messages;
  int rc;
  int n_signals;
  Turn turns[MAX_TURNS];
  int n_turns;
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
  if (app->n_turns == MAX_TURNS)
    return NULL;
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
    g_printerr ("turn %d: utterance dropped (the assistant was busy)\n", i + 1);
    return;
  }
  if (t->interrupted) {
    g_printerr ("turn %d: reply interrupted (barge-in)\n", i + 1);
    return;
  }
  double stages = t->tokenize + t->prefill + t->generate + t->soundstorm + t->decode;
  if (t->have_utt && t->have_dec)
    g_printerr ("turn %d: end of speech -> first audio %.3f s (tokenize %.3f, prefill %.3f, "
        "generate %.3f, soundstorm %.3f, decode %.3f, wait %.3f)\n", i + 1, turn_total (t),
        t->tokenize, t->prefill, t->generate, t->soundstorm, t->decode, turn_total (t) - stages);
}

static void
print_table (App * app)
{
  if (!app->latency || app->n_turns == 0)
    return;
  g_printerr ("\nper-turn latency, seconds (end of speech -> first audio sample):\n");
  g_printerr ("%-5s %9s %9s %9s %10s %9s %9s %9s\n", "turn", "tokenize", "prefill", "generate",
      "soundstorm", "decode", "wait", "total");
  for (int i = 0; i < app->n_turns; i++) {
    Turn *t = &app->turns[i];
    if (t->dropped) {
      g_printerr ("%-5d dropped (the assistant was busy)\n", i + 1);
      continue;
    }
    if (t->interrupted) {
      g_printerr ("%-5d interrupted (barge-in)\n", i + 1);
      continue;
    }
    double stages = t->tokenize + t->prefill + t->generate + t->soundstorm + t->decode;
    if (t->have_utt && t->have_dec)
      g_printerr ("%-5d %9.3f %9.3f %9.3f %10.3f %9.3f %9.3f %9.3f\n", i + 1, t->tokenize,
          t->prefill, t->generate, t->soundstorm, t->decode, turn_total (t) - stages,
          turn_total (t));
    else
      g_printerr ("%-5d %9.3f %9.3f %9.3f %10.3f %9.3f %9s %9s\n", i + 1, t->tokenize,
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
  } else if (!strcmp (name, "anygptllm")) {
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_llm)))) {
      t->have_llm = TRUE;
      double pre_tps = get_double (s, "prefill-tokens-per-second");
      double dec_tps = get_double (s, "decode-tokens-per-second");
      int prefilled = get_int (s, "prompt-tokens") - get_int (s, "reused-tokens");
      t->prefill = pre_tps > 0 ? prefilled / pre_tps : 0;
      t->generate = dec_tps > 0 ? get_int (s, "generated-tokens") / dec_tps : 0;
      const gchar *reply = gst_structure_get_string (s, "reply");
      t->text = reply_text (reply ? reply : "");
      gboolean cancelled = FALSE;
      if (gst_structure_get_boolean (s, "cancelled", &cancelled) && cancelled)
        t->interrupted = TRUE;
      print_turn (app, (int) (t - app->turns));
      if (app->replies) {       /* UTF-8 as is (g_print would convert to the locale) */
        fputs (t->text, stdout);
        fputc ('\n', stdout);
        fflush (stdout);
      }
    }
  } else if (!strcmp (name, "soundstorm")) {
    if ((t = turn_for (app, G_STRUCT_OFFSET (Turn, have_ss)))) {
      t->have_ss = TRUE;
      t->soundstorm = get_double (s, "seconds");
    }
  } else if (!strcmp (name, "encodecdecode")) {
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
  gchar *messages_path = NULL;
  gchar **rest = NULL;
  GOptionEntry entries[] = {
    {"replies", 'r', 0, G_OPTION_ARG_NONE, &app.replies,
        "Print the text of every anygptllm reply on stdout", NULL},
    {"latency", 'l', 0, G_OPTION_ARG_NONE, &app.latency,
        "Print per-turn latency by stage on stderr", NULL},
    {"messages", 'm', 0, G_OPTION_ARG_FILENAME, &messages_path,
        "Write every element message to FILE", "FILE"},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &app.quiet, "Less output on stderr", NULL},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &rest, NULL, "DESCRIPTION..."},
    {NULL}
  };
  GError *err = NULL;
  GOptionContext *ctx = g_option_context_new ("DESCRIPTION... - run a pipeline, report the "
      "anygpt elements' replies and latency");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err) || !rest || !rest[0]) {
    g_printerr ("anygpt-run: %s\nusage: anygpt-run [-r] [-l] [-m FILE] [-q] [--] "
        "DESCRIPTION...\n", err ? err->message : "no pipeline description");
    g_clear_error (&err);
    g_option_context_free (ctx);
    g_strfreev (rest);
    g_free (messages_path);
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
    gst_deinit ();
    return 2;
  }
  if (messages_path && !(app.messages = fopen (messages_path, "w"))) {
    g_printerr ("anygpt-run: cannot write %s\n", messages_path);
    gst_object_unref (app.pipeline);
    g_free (messages_path);
    gst_deinit ();
    return 2;
  }
  g_free (messages_path);

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
  gst_element_set_state (app.pipeline, GST_STATE_NULL);
  print_table (&app);

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
