/* anygptllm on the tiny random AnyGPT model (tests/llm's tiny-f32.gguf, path in argv[1]):
 * prompts per task against the spec's templates, streamed text with MARKER, routing of
 * generated items to their source pads, stopping mid-reply, bad model files, refused caps,
 * turn taking (duplex), and the timing of every output (PTS / duration / GAP, see the element's
 * Timing section): streamed and whole text, caption-duration, untimed input, live captions.
 * argv[2] = "vulkan" adds the Vulkan cases (lavapipe in CI; AG_REQUIRE_VULKAN=1 makes a missing
 * device a failure instead of a skip). */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <valgrind/valgrind.h>

#include "reply_text.h"

#define SYS "You are an AI assistant named MMGPT who can understand and generate multimodal " \
  "content, including text, speech, images and audio."
#define SPEECH_CAPS "application/x-anygpt-tokens, modality=speech, codebooks=1, " \
  "codebook-size=1024, rate=50/1"
#define IMAGE_CAPS "application/x-anygpt-tokens, modality=image, codebooks=1, " \
  "codebook-size=8192, rate=0/1"
#define CAPTION_INSTRUCTION " Please describe the picture briefly.<eoh>\n[MMGPT]:"

static const gchar *model_path;
static gboolean with_vulkan;

typedef struct
{
  GString *text;
  guint n_buffers, n_markers;
  gboolean marker_last;
} Reply;

static GstElement *
make_llm (const gchar * task, const gchar * device, gint max_new_tokens)
{
  GstElement *e = gst_element_factory_make ("anygptllm", NULL);
  g_assert_nonnull (e);         /* also used outside tests: no check.h macros */
  g_object_set (e, "model-path", model_path, "threads", 1, "temperature", 0.0,
      "max-new-tokens", max_new_tokens, "seed", (gint64) 1, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", device);
  gst_util_set_object_arg (G_OBJECT (e), "task", task);
  return e;
}

static GstBus *
attach_bus (GstElement * e)
{
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  return bus;
}

/* The next `anygptllm` element message (fails on an error message). */
static GstStructure *
pop_reply_message (GstBus * bus)
{
  for (;;) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, 50 * GST_SECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR);
    fail_unless (m != NULL, "no reply message");
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *err;
      gchar *dbg;
      gst_message_parse_error (m, &err, &dbg);
      fail ("error: %s (%s)", err->message, dbg);
    }
    if (gst_message_has_name (m, "anygptllm")) {
      GstStructure *s = gst_structure_copy (gst_message_get_structure (m));
      gst_message_unref (m);
      return s;
    }
    gst_message_unref (m);
  }
}

/* Text buffers up to the one flagged MARKER. */
static void
pull_reply (GstHarness * h, Reply * r)
{
  r->text = g_string_new (NULL);
  r->n_buffers = r->n_markers = 0;
  for (;;) {
    GstBuffer *b = gst_harness_pull (h);
    fail_unless (b != NULL, "no text buffer");
    GstMapInfo map;
    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    g_string_append_len (r->text, (const gchar *) map.data, (gssize) map.size);
    gst_buffer_unmap (b, &map);
    r->n_buffers++;
    gboolean marker = GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER);
    fail_unless (!GST_BUFFER_PTS_IS_VALID (b));
    gst_buffer_unref (b);
    if (marker) {
      r->n_markers++;
      return;
    }
  }
}

static void
push_text (GstHarness * h, const gchar * s)
{
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (s, strlen (s))),
      GST_FLOW_OK);
}

/* chat with history: exact prompts, streamed text, message fields */
static void
check_chat (const gchar * device)
{
  GstElement *e = make_llm ("chat", device, 8);
  g_object_set (e, "history", 1, NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);

  gchar *replies[3];
  const gchar *msgs[3] = { "Hi", "Name?", "ka lo mi" };
  for (guint i = 0; i < 3; i++) {
    push_text (h, msgs[i]);
    Reply r;
    pull_reply (h, &r);
    GstStructure *s = pop_reply_message (bus);
    const gchar *prompt = gst_structure_get_string (s, "prompt");
    const gchar *reply = gst_structure_get_string (s, "reply");
    fail_unless (prompt && reply);
    replies[i] = g_strdup (reply);
    gchar *want = i == 0 ? g_strdup (SYS "\n[Human]: Hi<eoh>\n[MMGPT]:") :
        g_strdup_printf (SYS "\n[Human]: %s<eoh>\n[MMGPT]: %s<eos>\n[Human]: %s<eoh>\n[MMGPT]:",
        msgs[i - 1], replies[i - 1], msgs[i]);
    fail_unless_equals_string (prompt, want);
    g_free (want);
    gchar *text = reply_text_only (reply);
    fail_unless_equals_string (r.text->str, text);
    g_free (text);
    fail_unless_equals_int (r.n_markers, 1);
    fail_unless_equals_string (gst_structure_get_string (s, "task"), "chat");
    gint n_prompt, n_gen, n_reused;
    gboolean cancelled;
    gdouble tps;
    fail_unless (gst_structure_get (s, "prompt-tokens", G_TYPE_INT, &n_prompt,
            "generated-tokens", G_TYPE_INT, &n_gen, "reused-tokens", G_TYPE_INT, &n_reused,
            "decode-tokens-per-second", G_TYPE_DOUBLE, &tps, "cancelled", G_TYPE_BOOLEAN,
            &cancelled, NULL));
    fail_unless (n_prompt > 10 && n_gen >= 1 && n_gen <= 8 && !cancelled);
    fail_unless (n_reused >= 0 && n_reused < n_prompt);
    fail_unless (gst_structure_has_field_typed (s, "prefill-tokens-per-second", G_TYPE_DOUBLE));
    /* the second prompt begins with the first one: the KV cache is reused */
    if (i == 1)
      fail_unless (n_reused > 10, "reused %d", n_reused);
    if (i == 0 && r.text->len > 0 && n_gen > 2)
      fail_unless (r.n_buffers >= 2, "text not streamed: %u buffers", r.n_buffers);
    gst_structure_free (s);
    g_string_free (r.text, TRUE);
  }
  for (guint i = 0; i < 3; i++)
    g_free (replies[i]);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}

GST_START_TEST (test_chat_history_cpu)
{
  check_chat ("cpu");
}
GST_END_TEST;

GST_START_TEST (test_chat_vulkan)
{
  check_chat ("vulkan");
}
GST_END_TEST;

/* source pads get stream-start, caps and a segment before data */
static void
check_sticky (GstHarness * h, const gchar * caps_str)
{
  GstEvent *ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_STREAM_START);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_CAPS);
  GstCaps *caps, *want = gst_caps_from_string (caps_str);
  gst_event_parse_caps (ev, &caps);
  fail_unless (gst_caps_is_equal (caps, want));
  gst_caps_unref (want);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (ev), GST_EVENT_SEGMENT);
  gst_event_unref (ev);
}

/* asr: a speech item becomes the spec's ASR prompt */
GST_START_TEST (test_asr_prompt)
{
  GstElement *e = make_llm ("asr", "cpu", 4);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, SPEECH_CAPS);
  gst_harness_play (h);
  /* the model load was reported: START, CONTINUE with percent, COMPLETE, code "load" */
  guint seen = 0;
  GstMessage *m;
  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_PROGRESS))) {
    GstProgressType type;
    gchar *code, *text;
    gst_message_parse_progress (m, &type, &code, &text);
    fail_unless_equals_string (code, "load");
    seen |= 1u << type;
    g_free (code);
    g_free (text);
    gst_message_unref (m);
  }
  fail_unless_equals_int (seen, (1u << GST_PROGRESS_TYPE_START) |
      (1u << GST_PROGRESS_TYPE_CONTINUE) | (1u << GST_PROGRESS_TYPE_COMPLETE));
  gint32 codes[3] = { GINT32_TO_LE (5), GINT32_TO_LE (0), GINT32_TO_LE (3) };
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (codes, sizeof codes)),
      GST_FLOW_OK);
  GstStructure *s = pop_reply_message (bus);
  fail_unless_equals_string (gst_structure_get_string (s, "prompt"),
      SYS "\n[Human]: <sosp>" SP "5>" SP "0>" SP "3><eosp> Please transcribe the given speech."
      "<eoh>\n[MMGPT]:");
  fail_unless_equals_string (gst_structure_get_string (s, "task"), "asr");
  gst_structure_free (s);
  check_sticky (h, "text/x-raw, format=utf8");
  Reply r;
  pull_reply (h, &r);
  g_string_free (r.text, TRUE);
  /* text is not what asr takes: dropped with a warning, no reply */
  GstHarness *ht = gst_harness_new_with_element (e, "text_sink_%u", NULL);
  gst_harness_set_src_caps_str (ht, "text/x-raw, format=utf8");
  push_text (ht, "hello");
  m = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_WARNING);
  fail_unless (m != NULL);
  gst_message_unref (m);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (ht);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* Speech items of a reply read from its text (the spec's parsing, written here independently):
 * the codes of <🗣️N> tokens between <sosp> and <eosp> (or the end), empty items left out. */
static GPtrArray *
speech_items_of (const gchar * reply)
{
  GPtrArray *items = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  GArray *open = NULL;
  for (const gchar * p = reply; *p;) {
    if (!open && g_str_has_prefix (p, "<sosp>")) {
      open = g_array_new (FALSE, FALSE, sizeof (gint32));
      p += 6;
    } else if (open && g_str_has_prefix (p, "<eosp>")) {
      g_ptr_array_add (items, open);
      open = NULL;
      p += 6;
    } else if (open && g_str_has_prefix (p, SP) && g_ascii_isdigit (p[strlen (SP)])) {
      gchar *end;
      gint32 code = (gint32) g_ascii_strtoll (p + strlen (SP), &end, 10);
      if (*end == '>')
        g_array_append_val (open, code);
      p = end;
    } else {
      p++;
    }
  }
  if (open)
    g_ptr_array_add (items, open);
  for (guint i = items->len; i > 0; i--)
    if (((GArray *) g_ptr_array_index (items, i - 1))->len == 0)
      g_ptr_array_remove_index (items, i - 1);
  return items;
}

/* chat with a speech item of 8 RVQ layers: layer 1 in the spec's voice-chat template */
GST_START_TEST (test_voice_chat_prompt)
{
  GstElement *e = make_llm ("chat", "cpu", 2);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, "application/x-anygpt-tokens, modality=speech, "
      "codebooks=8, codebook-size=1024, rate=50/1");
  gst_harness_play (h);
  gint32 frames[16];
  for (guint i = 0; i < 16; i++)
    frames[i] = GINT32_TO_LE (i < 8 ? (i ? 900 : 1) : (i > 8 ? 901 : 4));
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (frames, sizeof frames)),
      GST_FLOW_OK);
  GstStructure *s = pop_reply_message (bus);
  fail_unless_equals_string (gst_structure_get_string (s, "prompt"),
      SYS "\n[Human]: <sosp>" SP "1>" SP "4><eosp> Please interpret the user's voice commands, "
      "provide text responses, and generate corresponding voice replies<eoh>\n[MMGPT]:");
  gst_structure_free (s);
  /* EOS on the only sink pad: EOS follows the reply on the source pads */
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  GstEvent *ev;
  gboolean eos = FALSE;
  while (!eos && (ev = gst_harness_pull_event (h))) {
    eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (eos);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* tts: the prompt forces a speech span; the greedy reply's speech codes come out on speech_src,
 * one buffer per item (text_src stays unlinked and must not stop generation) */
GST_START_TEST (test_tts_routes_speech)
{
  GstElement *e = make_llm ("tts", "cpu", 24);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "speech_src");
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  /* texts whose greedy reply on the tiny model holds speech codes or not: both are checked */
  const gchar *texts[] = { "hello", "ka", "Good morning.", "Good morning." };
  guint n_items = 0;
  for (guint t = 0; t < G_N_ELEMENTS (texts); t++) {
    /* last: spans constrained to speech codes, so this reply surely has some */
    if (t == 3)
      g_object_set (e, "constrain-spans", TRUE, NULL);
    gchar *padded = g_strdup_printf ("  %s\n", texts[t]);
    push_text (h, padded);
    g_free (padded);
    GstStructure *s = pop_reply_message (bus);
    gchar *want = g_strdup_printf (SYS "\n[Human]: %s Please read the given text.<eoh>\n"
        "[MMGPT]: <sosp>", texts[t]);
    fail_unless_equals_string (gst_structure_get_string (s, "prompt"), want);
    g_free (want);
    const gchar *reply = gst_structure_get_string (s, "reply");
    if (t == 0)
      check_sticky (h, SPEECH_CAPS);
    GPtrArray *items = speech_items_of (reply);
    fail_unless_equals_int (gst_harness_buffers_in_queue (h), items->len);
    for (guint i = 0; i < items->len; i++) {
      GArray *want_codes = g_ptr_array_index (items, i);
      GstBuffer *b = gst_harness_pull (h);
      GstMapInfo map;
      fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
      fail_unless_equals_int (map.size, want_codes->len * 4);
      for (guint k = 0; k < want_codes->len; k++)
        fail_unless_equals_int (GINT32_FROM_LE (((const gint32 *) map.data)[k]),
            g_array_index (want_codes, gint32, k));
      gst_buffer_unmap (b, &map);
      gst_buffer_unref (b);
    }
    n_items += items->len;
    if (t == 3)
      fail_unless (items->len == 1, "constrained reply %s", reply);
    g_ptr_array_unref (items);
    gst_structure_free (s);
  }
  fail_unless (n_items > 0, "no reply had speech codes: nothing was routed");
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* The speech_src buffers of one spoken chat reply (speech-reply=always: at least 10 codes):
 * their codes concatenated into *codes, their sizes in frames into *sizes; checks the MARKER
 * (last buffer only) and that the times run on. */
static void
spoken_reply_buffers (guint speech_chunk, GArray * codes, GArray * sizes)
{
  GstElement *e = make_llm ("chat", "cpu", 40);
  gst_util_set_object_arg (G_OBJECT (e), "speech-reply", "always");
  g_object_set (e, "speech-chunk", speech_chunk, NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "speech_src");
  gst_harness_set_src_caps_str (h, SPEECH_CAPS);
  gst_harness_play (h);
  const gint32 in[4] = { GINT32_TO_LE (1), GINT32_TO_LE (4), GINT32_TO_LE (2),
    GINT32_TO_LE (5)
  };
  GstBuffer *inbuf = gst_buffer_new_memdup (in, sizeof in);
  GST_BUFFER_PTS (inbuf) = 3 * GST_SECOND;      /* the spoken reply starts at its time */
  fail_unless_equals_int (gst_harness_push (h, inbuf), GST_FLOW_OK);
  gst_structure_free (pop_reply_message (bus));
  GstClockTime next = 3 * GST_SECOND;
  guint n = gst_harness_buffers_in_queue (h);
  for (guint i = 0; i < n; i++) {
    GstBuffer *b = gst_harness_pull (h);
    GstMapInfo map;
    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    guint frames = map.size / 4;
    g_array_append_val (sizes, frames);
    for (guint k = 0; k < frames; k++) {
      gint32 c = GINT32_FROM_LE (((const gint32 *) map.data)[k]);
      g_array_append_val (codes, c);
    }
    gst_buffer_unmap (b, &map);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER), i + 1 == n);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), frames * 20 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), next);
    next += GST_BUFFER_DURATION (b);
    gst_buffer_unref (b);
  }
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}

/* speech-chunk: the item streams in chunks of N frames (the last at most N, MARKER on it
 * only), the same codes as the whole item (speech-chunk 0: one buffer, MARKER set) */
GST_START_TEST (test_speech_chunks)
{
  GArray *whole = g_array_new (FALSE, FALSE, 4), *whole_sizes = g_array_new (FALSE, FALSE, 4);
  spoken_reply_buffers (0, whole, whole_sizes);
  fail_unless_equals_int (whole_sizes->len, 1);
  fail_unless (whole->len > 5, "the reply has %u speech codes", whole->len);
  const guint chunks[] = { 5, 1, 1000 };
  for (guint c = 0; c < G_N_ELEMENTS (chunks); c++) {
    GArray *got = g_array_new (FALSE, FALSE, 4), *sizes = g_array_new (FALSE, FALSE, 4);
    spoken_reply_buffers (chunks[c], got, sizes);
    fail_unless_equals_int (got->len, whole->len);
    fail_unless (memcmp (got->data, whole->data, whole->len * 4) == 0, "chunk %u: codes differ",
        chunks[c]);
    guint want_n = (whole->len + chunks[c] - 1) / chunks[c];
    fail_unless_equals_int (sizes->len, want_n);
    for (guint i = 0; i + 1 < sizes->len; i++)
      fail_unless_equals_int (g_array_index (sizes, guint, i), chunks[c]);
    guint last = g_array_index (sizes, guint, sizes->len - 1);
    fail_unless (last >= 1 && last <= chunks[c]);
    g_array_unref (got);
    g_array_unref (sizes);
  }
  g_array_unref (whole);
  g_array_unref (whole_sizes);
}
GST_END_TEST;

/* no sink pad: the prompt property is answered once, then EOS (gst-launch one-liners) */
GST_START_TEST (test_prompt_property_t2m)
{
  GstElement *e = make_llm ("text-to-music", "cpu", 8);
  g_object_set (e, "prompt", "calm piano", NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, NULL, "text_src");
  gst_harness_play (h);
  GstStructure *s = pop_reply_message (bus);
  fail_unless_equals_string (gst_structure_get_string (s, "prompt"),
      SYS "\n[Human]: calm piano Please compose a piece of music from the given text.<eoh>\n"
      "[MMGPT]: <somu>");
  fail_unless_equals_string (gst_structure_get_string (s, "task"), "text-to-music");
  gst_structure_free (s);
  Reply r;
  pull_reply (h, &r);
  g_string_free (r.text, TRUE);
  /* stream-start, caps, segment, then EOS */
  GstEvent *ev;
  gboolean eos = FALSE;
  while (!eos && (ev = gst_harness_pull_event (h))) {
    eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (eos);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* ---- stopping mid-reply ---- */

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean generating;
} StopProbe;

/* first text buffer: tell the test, then hold generation until the pad is flushing, so the
 * stop surely happens mid-reply */
static GstPadProbeReturn
hold_until_flushing (GstPad * pad, GstPadProbeInfo * info, gpointer user)
{
  StopProbe *p = user;
  g_mutex_lock (&p->lock);
  p->generating = TRUE;
  g_cond_signal (&p->cond);
  g_mutex_unlock (&p->lock);
  for (gint i = 0; i < 20000 && !GST_PAD_IS_FLUSHING (pad); i++)
    g_usleep (1000);
  return GST_PAD_PROBE_REMOVE;
}

static void
wait_generating (StopProbe * p)
{
  gint64 end = g_get_monotonic_time () + 50 * G_TIME_SPAN_SECOND;
  g_mutex_lock (&p->lock);
  while (!p->generating)
    fail_unless (g_cond_wait_until (&p->cond, &p->lock, end), "generation never started");
  g_mutex_unlock (&p->lock);
}

GST_START_TEST (test_stop_mid_generation)
{
  /* sampling (not greedy) over the whole vocabulary: a long reply of many pieces */
  GstElement *e = make_llm ("raw", "cpu", 100000);
  g_object_set (e, "temperature", 1.0, NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  StopProbe p = { 0 };
  g_mutex_init (&p.lock);
  g_cond_init (&p.cond);
  GstPad *src = gst_element_get_static_pad (e, "text_src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, hold_until_flushing, &p, NULL);
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  push_text (h, "ka lo mi ne ru ta shi po ve an el is or um the ing");
  wait_generating (&p);
  gint64 t0 = g_get_monotonic_time ();
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gint64 took = g_get_monotonic_time () - t0;
  fail_unless (took < 20 * G_TIME_SPAN_SECOND, "stopping took %" G_GINT64_FORMAT " us", took);
  GstStructure *s = pop_reply_message (bus);
  gboolean cancelled = FALSE;
  gint n_gen = 0;
  gst_structure_get (s, "cancelled", G_TYPE_BOOLEAN, &cancelled, "generated-tokens", G_TYPE_INT,
      &n_gen, NULL);
  fail_unless (cancelled);
  fail_unless (n_gen < 400, "%d tokens generated", n_gen);
  gst_structure_free (s);
  gst_object_unref (src);
  g_mutex_clear (&p.lock);
  g_cond_clear (&p.cond);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* a flush from upstream stops the reply too, and the element answers again afterwards */
GST_START_TEST (test_flush_mid_generation)
{
  GstElement *e = make_llm ("raw", "cpu", 100000);
  g_object_set (e, "temperature", 1.0, NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  StopProbe p = { 0 };
  g_mutex_init (&p.lock);
  g_cond_init (&p.cond);
  GstPad *src = gst_element_get_static_pad (e, "text_src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, hold_until_flushing, &p, NULL);
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  push_text (h, "ka lo mi ne ru ta shi po ve an el is or um the ing");
  wait_generating (&p);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  GstStructure *s = pop_reply_message (bus);
  gboolean cancelled = FALSE;
  gst_structure_get (s, "cancelled", G_TYPE_BOOLEAN, &cancelled, NULL);
  fail_unless (cancelled);
  gst_structure_free (s);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  g_object_set (e, "max-new-tokens", 3, NULL);
  push_text (h, "ka");
  s = pop_reply_message (bus);
  gst_structure_get (s, "cancelled", G_TYPE_BOOLEAN, &cancelled, NULL);
  fail_unless (!cancelled);
  gst_structure_free (s);
  gst_object_unref (src);
  g_mutex_clear (&p.lock);
  g_cond_clear (&p.cond);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* ---- bad input ---- */

static void
check_bad_model (const gchar * path, gint code, const gchar * in_debug)
{
  GstElement *e = gst_element_factory_make ("anygptllm", NULL);
  g_object_set (e, "model-path", path, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  GstBus *bus = attach_bus (e);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  GError *err;
  gchar *dbg;
  gst_message_parse_error (m, &err, &dbg);
  fail_unless (err->domain == GST_RESOURCE_ERROR && err->code == code, "%s", err->message);
  fail_unless (strstr (err->message, path) != NULL, "%s", err->message);
  fail_unless (dbg && strstr (dbg, in_debug) != NULL, "%s", dbg);
  g_error_free (err);
  g_free (dbg);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_START_TEST (test_bad_model_path)
{
  check_bad_model ("/nonexistent/anygpt.gguf", GST_RESOURCE_ERROR_NOT_FOUND, "not a regular");
  gchar *junk;
  gint fd = g_file_open_tmp ("anygptllm-XXXXXX.gguf", &junk, NULL);
  fail_unless (fd >= 0);
  fail_unless (write (fd, "GGUF but not really a model file", 32) == 32);
  close (fd);
  /* the core's message names the file */
  check_bad_model (junk, GST_RESOURCE_ERROR_OPEN_READ, junk);
  g_unlink (junk);
  g_free (junk);
}
GST_END_TEST;

GST_START_TEST (test_wrong_caps_refused)
{
  GstElement *e = make_llm ("chat", "cpu", 2);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_play (h);
  /* not AnyGPT's speech codebook */
  gst_harness_set_src_caps_str (h, "application/x-anygpt-tokens, modality=speech, "
      "codebooks=1, codebook-size=512, rate=50/1");
  gint32 code = 1;
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (&code, 4)),
      GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
  gst_object_unref (e);

  e = make_llm ("chat", "cpu", 2);
  h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, "text/x-raw, format=pango-markup");
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup ("hi", 2)),
      GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* invalid UTF-8, out-of-range codes, a message longer than the context: warnings, the stream
 * goes on; chat history is shortened to fit the context */
GST_START_TEST (test_hostile_requests_dropped)
{
  GstElement *e = make_llm ("chat", "cpu", 2);
  /* the tiny model's chat prompt of "ka" is 127 tokens: one turn of history does not fit */
  g_object_set (e, "context-length", 135, NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, SPEECH_CAPS);
  gst_harness_play (h);
  gint32 bad[2] = { 1, 5000 };
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (bad, sizeof bad)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (bad, 3)), GST_FLOW_OK);
  GstHarness *ht = gst_harness_new_with_element (e, "text_sink_%u", NULL);
  gst_harness_set_src_caps_str (ht, "text/x-raw, format=utf8");
  fail_unless_equals_int (gst_harness_push (ht, gst_buffer_new_memdup ("a\xff\xfe", 3)),
      GST_FLOW_OK);
  /* longer than the context */
  GString *lng = g_string_new (NULL);
  for (guint i = 0; i < 100; i++)
    g_string_append (lng, "ka lo mi ");
  fail_unless_equals_int (gst_harness_push (ht, gst_buffer_new_memdup (lng->str, lng->len)),
      GST_FLOW_OK);
  g_string_free (lng, TRUE);
  for (guint i = 0; i < 4; i++) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_WARNING);
    fail_unless (m != NULL, "warning %u missing", i);
    gst_message_unref (m);
  }
  /* a good request still gets its reply; the next one leaves the turn out to fit */
  push_text (ht, "ka");
  GstStructure *s = pop_reply_message (bus);
  gchar *first_prompt = g_strdup (gst_structure_get_string (s, "prompt"));
  gst_structure_free (s);
  push_text (ht, "ka");
  s = pop_reply_message (bus);
  fail_unless_equals_string (gst_structure_get_string (s, "prompt"), first_prompt);
  gst_structure_free (s);
  g_free (first_prompt);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (ht);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}
GST_END_TEST;

/* speech-reply=always: the chat reply to a speech item ends in "<eot>\n<sosp>" + a speech span
 * (the tiny random model never writes it itself); that span's codes come out on speech_src */
GST_START_TEST (test_speech_reply_always)
{
  GstElement *e = make_llm ("chat", "cpu", 40);
  gst_util_set_object_arg (G_OBJECT (e), "speech-reply", "always");
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "speech_src");
  gst_harness_set_src_caps_str (h, SPEECH_CAPS);
  gst_harness_play (h);
  const gint32 codes[4] = { GINT32_TO_LE (1), GINT32_TO_LE (4), GINT32_TO_LE (2),
    GINT32_TO_LE (5)
  };
  /* the utterance at 3 s: the spoken reply starts at its time */
  GstBuffer *in = gst_buffer_new_memdup (codes, sizeof codes);
  GST_BUFFER_PTS (in) = 3 * GST_SECOND;
  GST_BUFFER_DURATION (in) = 80 * GST_MSECOND;
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  GstStructure *s = pop_reply_message (bus);
  const gchar *reply = gst_structure_get_string (s, "reply");
  /* "<eot>\n<sosp>" as the ids it tokenizes to decode (LLaMA's dummy prefix may add a space) */
  const gchar *lead = strstr (reply, "<eot>");
  fail_unless (lead != NULL, "reply %s", reply);
  const gchar *p = lead + 5;
  while (*p == ' ')
    p++;
  fail_unless (g_str_has_prefix (p, "\n<sosp>"), "reply %s", reply);
  fail_unless (g_str_has_suffix (reply, "<eosp>"), "reply %s", reply);
  GPtrArray *items = speech_items_of (reply);
  fail_unless_equals_int (items->len, 1);
  GArray *want = g_ptr_array_index (items, 0);
  fail_unless (want->len >= 10, "%u codes: speech min_new_tokens is 10", want->len);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 3 * GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), want->len * 20 * GST_MSECOND);
  GstMapInfo map;
  fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
  fail_unless_equals_int (map.size, want->len * 4);
  for (guint k = 0; k < want->len; k++)
    fail_unless_equals_int (GINT32_FROM_LE (((const gint32 *) map.data)[k]),
        g_array_index (want, gint32, k));
  gst_buffer_unmap (b, &map);
  gst_buffer_unref (b);
  g_ptr_array_unref (items);
  gst_structure_free (s);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}
GST_END_TEST;

/* A time field of a message (guint64 ns). */
static GstClockTime
get_time (const GstStructure * s, const gchar * field)
{
  guint64 v = 0;
  fail_unless (gst_structure_get_uint64 (s, field, &v), "no %s in %" GST_PTR_FORMAT, field, s);
  return v;
}

/* Holds the first buffer on a pad until the test opens it, so a reply surely is in progress
 * (or its end is being pushed) while the test sends more requests. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean reached, open;
} Gate;

static GstPadProbeReturn
gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user)
{
  Gate *g = user;
  g_mutex_lock (&g->lock);
  g->reached = TRUE;
  g_cond_broadcast (&g->cond);
  while (!g->open)
    g_cond_wait (&g->cond, &g->lock);
  g_mutex_unlock (&g->lock);
  return GST_PAD_PROBE_REMOVE;
}

static void
gate_init (Gate * g, GstElement * e, const gchar * pad_name)
{
  memset (g, 0, sizeof *g);
  g_mutex_init (&g->lock);
  g_cond_init (&g->cond);
  GstPad *pad = gst_element_get_static_pad (e, pad_name);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, gate_probe, g, NULL);
  gst_object_unref (pad);
}

static void
gate_wait_reached (Gate * g)
{
  gint64 end = g_get_monotonic_time () + 50 * G_TIME_SPAN_SECOND;
  g_mutex_lock (&g->lock);
  while (!g->reached)
    fail_unless (g_cond_wait_until (&g->cond, &g->lock, end), "no buffer reached the gate");
  g_mutex_unlock (&g->lock);
}

static void
gate_open (Gate * g)
{
  g_mutex_lock (&g->lock);
  g->open = TRUE;
  g_cond_broadcast (&g->cond);
  g_mutex_unlock (&g->lock);
}

static void
gate_clear (Gate * g)
{
  g_mutex_clear (&g->lock);
  g_cond_clear (&g->cond);
}

/* The next element message named name (NULL: timeout). */
static GstStructure *
pop_named (GstBus * bus, const gchar * name, GstClockTime timeout)
{
  for (;;) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, timeout, GST_MESSAGE_ELEMENT);
    if (!m)
      return NULL;
    if (gst_message_has_name (m, name)) {
      GstStructure *s = gst_structure_copy (gst_message_get_structure (m));
      gst_message_unref (m);
      return s;
    }
    gst_message_unref (m);
  }
}

/* duplex=half: a message arriving while the first one is answered is dropped (with an
 * anygptllm-dropped message); once the reply is done, the next one is answered again */
GST_START_TEST (test_duplex_half)
{
  GstElement *e = make_llm ("chat", "cpu", 8);
  gst_util_set_object_arg (G_OBJECT (e), "duplex", "half");
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  Gate gate;
  gate_init (&gate, e, "text_src");     /* the reply to "Hi" waits at its first piece */
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  push_text (h, "Hi");
  gate_wait_reached (&gate);
  push_text (h, "Are you there?");
  GstStructure *d = pop_named (bus, "anygptllm-dropped", 50 * GST_SECOND);
  fail_unless (d != NULL, "nothing dropped");
  fail_unless_equals_string (gst_structure_get_string (d, "reason"), "generating");
  fail_unless_equals_uint64 (get_time (d, "pts"), GST_CLOCK_TIME_NONE);
  gst_structure_free (d);
  gate_open (&gate);
  Reply r;
  pull_reply (h, &r);
  g_string_free (r.text, TRUE);
  GstStructure *s = pop_reply_message (bus);
  fail_unless (g_str_has_suffix (gst_structure_get_string (s, "prompt"),
          "[Human]: Hi<eoh>\n[MMGPT]:"));
  gst_structure_free (s);
  /* a text reply has no audio: the element is free again once it is pushed */
  push_text (h, "ka lo");
  pull_reply (h, &r);
  g_string_free (r.text, TRUE);
  s = pop_reply_message (bus);
  const gchar *prompt = gst_structure_get_string (s, "prompt");
  fail_unless (g_str_has_suffix (prompt, "[Human]: ka lo<eoh>\n[MMGPT]:"), "%s", prompt);
  fail_if (strstr (prompt, "Are you there?"), "the dropped message is in the history");
  gst_structure_free (s);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
  gate_clear (&gate);
}
GST_END_TEST;

/* duplex=half on a live stream, one spoken reply, then speech that began once the reply's own
 * length had passed: TRUE when that request was dropped as "playing". The sinks play the reply
 * at its timestamps plus the latency they were given (LATENCY event on speech_src), so with a
 * latency that speech began while the reply still played (its echo); with none, it is a turn. */
static gboolean
half_duplex_drops_after_reply (GstClockTime latency)
{
  GstElement *e = make_llm ("chat", "cpu", 40);
  gst_util_set_object_arg (G_OBJECT (e), "speech-reply", "always");
  gst_util_set_object_arg (G_OBJECT (e), "duplex", "half");
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "speech_src");
  gst_harness_set_live (h, TRUE);
  gst_harness_set_src_caps_str (h, SPEECH_CAPS);
  gst_harness_play (h);
  fail_unless (gst_harness_push_upstream_event (h, gst_event_new_latency (latency)));
  const gint32 codes[4] = { GINT32_TO_LE (1), GINT32_TO_LE (4), GINT32_TO_LE (2),
    GINT32_TO_LE (5)
  };
  GstBuffer *in = gst_buffer_new_memdup (codes, sizeof codes);
  GST_BUFFER_PTS (in) = 0;
  GST_BUFFER_DURATION (in) = 80 * GST_MSECOND;
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  gst_structure_free (pop_reply_message (bus));
  GstBuffer *b = gst_harness_pull (h);
  GstClockTime audio = GST_BUFFER_DURATION (b);
  gst_buffer_unref (b);
  fail_unless (audio >= 200 * GST_MSECOND && audio <= GST_SECOND, "reply audio %" GST_TIME_FORMAT,
      GST_TIME_ARGS (audio));
  /* the reply's length and 300 ms more pass; then 80 ms of speech arrive */
  g_usleep ((gulong) (audio / GST_USECOND) + 300000);
  in = gst_buffer_new_memdup (codes, sizeof codes);
  GST_BUFFER_PTS (in) = 0;
  GST_BUFFER_DURATION (in) = 80 * GST_MSECOND;
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  /* the next of: its reply message, or its anygptllm-dropped */
  gboolean dropped = FALSE, answered = FALSE;
  while (!dropped && !answered) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, 50 * GST_SECOND, GST_MESSAGE_ELEMENT);
    fail_unless (m != NULL, "neither answered nor dropped");
    const GstStructure *st = gst_message_get_structure (m);
    if (gst_message_has_name (m, "anygptllm-dropped")) {
      fail_unless_equals_string (gst_structure_get_string (st, "reason"), "playing");
      dropped = TRUE;
    }
    answered = gst_message_has_name (m, "anygptllm");
    gst_message_unref (m);
  }
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
  return dropped;
}

GST_START_TEST (test_duplex_half_sink_latency)
{
  fail_unless (half_duplex_drops_after_reply (30 * GST_SECOND), "echo within the sinks' latency answered");
  fail_if (half_duplex_drops_after_reply (0), "speech after the reply played was dropped");
}
GST_END_TEST;

/* duplex=barge-in: a message arriving while the first is answered replaces it: the source pads
 * get a flush, the second is answered, the first is cancelled and not in the history */
GST_START_TEST (test_duplex_barge_in)
{
  GstElement *e = make_llm ("chat", "cpu", 16);
  gst_util_set_object_arg (G_OBJECT (e), "duplex", "barge-in");
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  Gate gate;
  gate_init (&gate, e, "text_src");     /* the reply to "Hi" waits at its first piece */
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  push_text (h, "Hi");
  gate_wait_reached (&gate);
  push_text (h, "Stop, ka lo");
  gate_open (&gate);
  GstStructure *s;
  gboolean answered = FALSE;
  while (!answered && (s = pop_reply_message (bus))) {
    const gchar *prompt = gst_structure_get_string (s, "prompt");
    gboolean cancelled = TRUE;
    gst_structure_get_boolean (s, "cancelled", &cancelled);
    if (g_str_has_suffix (prompt, "[Human]: Hi<eoh>\n[MMGPT]:")) {
      fail_unless (cancelled, "the interrupted reply was not cancelled");
    } else {
      fail_unless_equals_string (prompt, SYS "\n[Human]: Stop, ka lo<eoh>\n[MMGPT]:");
      fail_unless (!cancelled);
      answered = TRUE;
    }
    gst_structure_free (s);
  }
  /* the flush came before the answer's data */
  gboolean flushed = FALSE;
  GstEvent *ev;
  while (!flushed && (ev = gst_harness_try_pull_event (h))) {
    flushed = GST_EVENT_TYPE (ev) == GST_EVENT_FLUSH_STOP;
    if (flushed) {
      /* reset-time would restart the pipeline's running time at 0, and the answer, timed on
       * the old timeline, would play late by the request's time (voice-assistant barge-in) */
      gboolean reset_time = TRUE;
      gst_event_parse_flush_stop (ev, &reset_time);
      fail_unless (!reset_time, "barge-in flush-stop resets the running time");
    }
    gst_event_unref (ev);
  }
  fail_unless (flushed, "no flush on text_src");
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
  gate_clear (&gate);
}
GST_END_TEST;

/* ---- timing (see the element's Timing section) ---- */

/* An image item: 32 codes from seed, PTS pts, and a video frame's duration (which must not
 * become the caption's). */
static GstBuffer *
image_item (guint seed, GstClockTime pts)
{
  gint32 codes[32];
  for (guint i = 0; i < 32; i++)
    codes[i] = GINT32_TO_LE ((gint32) ((seed * 977 + i * 131) % 8192));
  GstBuffer *b = gst_buffer_new_memdup (codes, sizeof codes);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = GST_CLOCK_TIME_IS_VALID (pts) ? 33 * GST_MSECOND :
      GST_CLOCK_TIME_NONE;
  return b;
}

static void
push_image (GstHarness * h, guint seed, GstClockTime pts)
{
  fail_unless_equals_int (gst_harness_push (h, image_item (seed, pts)), GST_FLOW_OK);
}

/* A whole reply on text_src: one buffer, MARKER set, the message's reply text stripped, the
 * times given. */
static void
check_whole (GstHarness * h, const gchar * reply, GstClockTime pts, GstClockTime duration)
{
  GstBuffer *b = gst_harness_pull (h);
  fail_unless (b != NULL);
  fail_unless (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER));
  fail_unless_equals_uint64 (GST_BUFFER_PTS (b), pts);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), duration);
  gchar *want = g_strstrip (reply_text_only (reply));
  GstMapInfo map;
  fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
  gchar *got = g_strndup ((const gchar *) map.data, map.size);
  fail_unless_equals_string (got, want);
  g_free (got);
  gst_buffer_unmap (b, &map);
  gst_buffer_unref (b);
  g_free (want);
}

/* The next event on text_src of type t, skipping others (NULL when none is queued). */
static GstEvent *
next_event_of (GstHarness * h, GstEventType t)
{
  GstEvent *ev;
  while ((ev = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (ev) == t)
      return ev;
    gst_event_unref (ev);
  }
  return NULL;
}

/* caption of a file: each caption is one buffer at its frame's PTS lasting until the next
 * frame's (held until that frame arrives), the last one as long as the one before; the
 * message has the prompt, pts and a latency */
GST_START_TEST (test_caption_timing)
{
  GstElement *e = make_llm ("caption", "cpu", 6);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_live (h, FALSE);      /* a file: every item is answered (duplex auto) */
  gst_harness_set_src_caps_str (h, IMAGE_CAPS);
  gst_harness_play (h);
  gchar *replies[3];
  for (guint i = 0; i < 3; i++) {
    push_image (h, i, i * 2 * GST_SECOND);
    GstStructure *s = pop_reply_message (bus);
    const gchar *prompt = gst_structure_get_string (s, "prompt");
    fail_unless (g_str_has_suffix (prompt, CAPTION_INSTRUCTION), "%s", prompt);
    fail_unless (strstr (prompt, "[Human]: <soim><\xF0\x9F\x91\x80") != NULL, "%s", prompt);
    fail_unless_equals_string (gst_structure_get_string (s, "task"), "caption");
    fail_unless_equals_uint64 (get_time (s, "pts"), i * 2 * GST_SECOND);
    fail_unless_equals_uint64 (get_time (s, "duration"), GST_CLOCK_TIME_NONE);
    GstClockTime latency = get_time (s, "latency");
    fail_unless (GST_CLOCK_TIME_IS_VALID (latency) && latency > 0 && latency < 50 * GST_SECOND);
    replies[i] = g_strdup (gst_structure_get_string (s, "reply"));
    gst_structure_free (s);
    if (i == 0) {
      /* until the next frame: nothing is sent before that frame is known */
      fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
    } else {
      check_whole (h, replies[i - 1], (i - 1) * 2 * GST_SECOND, 2 * GST_SECOND);
    }
  }
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  check_whole (h, replies[2], 4 * GST_SECOND, 2 * GST_SECOND);
  /* the captions cover the time without holes: no GAP; EOS after the last caption */
  GstEvent *ev;
  gboolean eos = FALSE;
  while (!eos && (ev = gst_harness_pull_event (h))) {
    fail_if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP);
    eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (eos);
  for (guint i = 0; i < 3; i++)
    g_free (replies[i]);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}
GST_END_TEST;

/* caption-duration: each caption goes out as soon as it is complete with that duration; the
 * time before a frame that no caption covers is a GAP, sent before that frame's caption */
GST_START_TEST (test_caption_duration_and_gaps)
{
  GstElement *e = make_llm ("caption", "cpu", 4);
  g_object_set (e, "caption-duration", (guint64) (1500 * GST_MSECOND), NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_live (h, FALSE);
  gst_harness_set_src_caps_str (h, IMAGE_CAPS);
  gst_harness_play (h);
  const GstClockTime at[2] = { 1 * GST_SECOND, 4 * GST_SECOND };
  const GstClockTime gap_start[2] = { 0, 2500 * GST_MSECOND };
  for (guint i = 0; i < 2; i++) {
    push_image (h, 7 + i, at[i]);
    GstStructure *s = pop_reply_message (bus);
    fail_unless_equals_uint64 (get_time (s, "pts"), at[i]);
    fail_unless_equals_uint64 (get_time (s, "duration"), 1500 * GST_MSECOND);
    check_whole (h, gst_structure_get_string (s, "reply"), at[i], 1500 * GST_MSECOND);
    gst_structure_free (s);
    GstEvent *gap = next_event_of (h, GST_EVENT_GAP);
    fail_unless (gap != NULL, "no gap before caption %u", i);
    GstClockTime start, dur;
    gst_event_parse_gap (gap, &start, &dur);
    fail_unless_equals_uint64 (start, gap_start[i]);
    fail_unless_equals_uint64 (start + dur, at[i]);
    gst_event_unref (gap);
  }
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}
GST_END_TEST;

/* chat (text-mode auto = stream): every piece of the reply has the message's time as running
 * time (a segment from 10 s: PTS 11 s is 1 s) and no duration; untimed text gives untimed
 * pieces */
GST_START_TEST (test_chat_text_timing)
{
  GstElement *e = make_llm ("chat", "cpu", 8);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = seg.time = seg.position = 10 * GST_SECOND;
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  for (guint round = 0; round < 2; round++) {
    GstBuffer *in = gst_buffer_new_memdup ("ka lo", 5);
    GstClockTime want = round == 0 ? GST_SECOND : GST_CLOCK_TIME_NONE;
    if (round == 0) {
      GST_BUFFER_PTS (in) = 11 * GST_SECOND;
      GST_BUFFER_DURATION (in) = 500 * GST_MSECOND;
    }
    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
    GstStructure *s = pop_reply_message (bus);
    fail_unless_equals_uint64 (get_time (s, "pts"), want);
    /* text mode stream: the request's duration is what a whole reply would get */
    fail_unless_equals_uint64 (get_time (s, "duration"),
        round == 0 ? 500 * GST_MSECOND : GST_CLOCK_TIME_NONE);
    gchar *text = reply_text_only (gst_structure_get_string (s, "reply"));
    gst_structure_free (s);
    GString *got = g_string_new (NULL);
    gboolean marker = FALSE;
    guint n = 0;
    while (!marker) {
      GstBuffer *b = gst_harness_pull (h);
      fail_unless (b != NULL);
      fail_unless_equals_uint64 (GST_BUFFER_PTS (b), want);
      fail_unless (!GST_BUFFER_DURATION_IS_VALID (b));
      marker = GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_MARKER);
      GstMapInfo map;
      fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
      g_string_append_len (got, (const gchar *) map.data, (gssize) map.size);
      gst_buffer_unmap (b, &map);
      gst_buffer_unref (b);
      n++;
    }
    /* the pieces are the reply's text (an invalid byte sequence at the reply's end, which the
     * message shows as U+FFFD, and what follows it is left out) */
    fail_unless (got->len > 0 && g_str_has_prefix (text, got->str),
        "'%s' is not the start of '%s'", got->str, text);
    g_string_free (got, TRUE);
    g_free (text);
  }
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}
GST_END_TEST;

/* asr (whole): a transcript lasts as long as its utterance and goes out at once; an untimed
 * utterance or image gives an untimed reply, also at once */
GST_START_TEST (test_untimed_and_utterance_timing)
{
  GstElement *e = make_llm ("asr", "cpu", 4);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, SPEECH_CAPS);
  gst_harness_play (h);
  const gint32 codes[3] = { GINT32_TO_LE (5), GINT32_TO_LE (0), GINT32_TO_LE (3) };
  GstBuffer *in = gst_buffer_new_memdup (codes, sizeof codes);
  GST_BUFFER_PTS (in) = 5 * GST_SECOND;
  GST_BUFFER_DURATION (in) = 1200 * GST_MSECOND;
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  GstStructure *s = pop_reply_message (bus);
  fail_unless_equals_uint64 (get_time (s, "duration"), 1200 * GST_MSECOND);
  check_whole (h, gst_structure_get_string (s, "reply"), 5 * GST_SECOND, 1200 * GST_MSECOND);
  gst_structure_free (s);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (codes, sizeof codes)),
      GST_FLOW_OK);
  s = pop_reply_message (bus);
  fail_unless_equals_uint64 (get_time (s, "pts"), GST_CLOCK_TIME_NONE);
  check_whole (h, gst_structure_get_string (s, "reply"), GST_CLOCK_TIME_NONE,
      GST_CLOCK_TIME_NONE);
  gst_structure_free (s);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);

  e = make_llm ("caption", "cpu", 4);
  bus = attach_bus (e);
  h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, IMAGE_CAPS);
  gst_harness_play (h);
  push_image (h, 3, GST_CLOCK_TIME_NONE);
  s = pop_reply_message (bus);
  check_whole (h, gst_structure_get_string (s, "reply"), GST_CLOCK_TIME_NONE,
      GST_CLOCK_TIME_NONE);
  gst_structure_free (s);
  /* a timed frame then: held for the next one; going to NULL frees it */
  push_image (h, 4, 3 * GST_SECOND);
  gst_structure_free (pop_reply_message (bus));
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}
GST_END_TEST;

/* live captions (duplex auto = newest for a live caption stream): while a caption is being
 * finished, frames replace the one waiting (each replaced frame posts anygptllm-dropped with
 * reason superseded, the count and its time) and the upstream push never blocks; the newest
 * frame is captioned next. On a file (not live) the same frames are all captioned. */
static void
check_live_newest (gboolean live)
{
  GstElement *e = make_llm ("caption", "cpu", 4);
  g_object_set (e, "caption-duration", (guint64) GST_SECOND, NULL);
  GstBus *bus = attach_bus (e);
  GstHarness *h = gst_harness_new_with_element (e, "tokens_sink_%u", "text_src");
  gst_harness_set_live (h, live);
  Gate gate;
  gate_init (&gate, e, "text_src");     /* the first caption's push holds the task */
  gst_harness_set_src_caps_str (h, IMAGE_CAPS);
  gst_harness_play (h);
  push_image (h, 0, 0);
  gate_wait_reached (&gate);
  for (guint i = 1; i < 4; i++)
    push_image (h, i, i * 2 * GST_SECOND);
  if (live) {
    for (guint i = 1; i < 3; i++) {
      GstStructure *d = pop_named (bus, "anygptllm-dropped", 10 * GST_SECOND);
      fail_unless (d != NULL, "frame %u not dropped", i);
      fail_unless_equals_string (gst_structure_get_string (d, "reason"), "superseded");
      guint n = 0;
      fail_unless (gst_structure_get_uint (d, "dropped", &n));
      fail_unless_equals_int (n, i);
      fail_unless_equals_uint64 (get_time (d, "pts"), i * 2 * GST_SECOND);
      gst_structure_free (d);
    }
  }
  gate_open (&gate);
  const GstClockTime live_pts[] = { 0, 6 * GST_SECOND };
  guint n_replies = live ? 2 : 4;
  for (guint i = 0; i < n_replies; i++) {
    GstStructure *s = pop_reply_message (bus);
    GstClockTime want = live ? live_pts[i] : i * 2 * GST_SECOND;
    fail_unless_equals_uint64 (get_time (s, "pts"), want);
    check_whole (h, gst_structure_get_string (s, "reply"), want, GST_SECOND);
    gst_structure_free (s);
  }
  if (!live)
    fail_if (pop_named (bus, "anygptllm-dropped", 0) != NULL, "a file frame was dropped");
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
  gate_clear (&gate);
}

GST_START_TEST (test_live_caption_newest)
{
  check_live_newest (TRUE);
  check_live_newest (FALSE);
}
GST_END_TEST;

static Suite *
anygptllm_suite (void)
{
  Suite *s = suite_create ("anygptllm");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_bad_model_path);
  tcase_add_test (tc, test_wrong_caps_refused);
  tcase_add_test (tc, test_chat_history_cpu);
  tcase_add_test (tc, test_asr_prompt);
  tcase_add_test (tc, test_voice_chat_prompt);
  tcase_add_test (tc, test_tts_routes_speech);
  tcase_add_test (tc, test_speech_chunks);
  tcase_add_test (tc, test_prompt_property_t2m);
  tcase_add_test (tc, test_stop_mid_generation);
  tcase_add_test (tc, test_flush_mid_generation);
  tcase_add_test (tc, test_hostile_requests_dropped);
  tcase_add_test (tc, test_speech_reply_always);
  tcase_add_test (tc, test_duplex_half);
  tcase_add_test (tc, test_duplex_half_sink_latency);
  tcase_add_test (tc, test_duplex_barge_in);
  tcase_add_test (tc, test_caption_timing);
  tcase_add_test (tc, test_caption_duration_and_gaps);
  tcase_add_test (tc, test_chat_text_timing);
  tcase_add_test (tc, test_untimed_and_utterance_timing);
  tcase_add_test (tc, test_live_caption_newest);
  if (with_vulkan)
    tcase_add_test (tc, test_chat_vulkan);
  return s;
}

/* Is a Vulkan device there? (the element test needs one only for the vulkan case) */
static gboolean
vulkan_usable (void)
{
  GstElement *e = make_llm ("chat", "vulkan", 1);
  GstBus *bus = attach_bus (e);
  gboolean ok = gst_element_set_state (e, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS;
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  return ok;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  if (argc < 2) {
    g_printerr ("usage: %s TINY-MODEL.gguf [vulkan]\n", argv[0]);
    return 2;
  }
  model_path = argv[1];
  if (argc > 2 && g_str_equal (argv[2], "vulkan")) {
    /* lavapipe under valgrind takes minutes: the normal and ASan runs cover it */
    if (RUNNING_ON_VALGRIND)
      g_print ("# device: vulkan case skipped under valgrind\n");
    else if (vulkan_usable ())
      with_vulkan = TRUE;
    else if (g_strcmp0 (g_getenv ("AG_REQUIRE_VULKAN"), "1") == 0) {
      g_printerr ("no usable Vulkan device and AG_REQUIRE_VULKAN=1\n");
      return 1;
    } else
      g_print ("# device: no Vulkan device, vulkan case skipped\n");
  }
  g_print ("# device: cpu%s\n", with_vulkan ? " + vulkan" : "");
  Suite *s = anygptllm_suite ();
  return gst_check_run_suite (s, "anygptllm", __FILE__);
}
