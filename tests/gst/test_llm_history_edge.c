/* anygptllm's chat history at the edge of the context (what a long conversation, and the soak of
 * tools/soak.sh, relies on): the prompt never holds more than `history` earlier turns, and when
 * the prompt with all of them does not fit, the OLDEST turns are left out first, one at a time.
 * Four messages on the tiny model (greedy: replies are a function of the prompt):
 *   A: history 3, the model's context          -> prompt 4 with turns 1-3, N tokens
 *   B: history 2, the model's context          -> prompt 4 with turns 2-3
 *   C: history 3, context-length N (just short) -> prompt 4 equals B's; prompts 1-3 equal A's
 *   D: history 3, context-length N + 1          -> prompt 4 equals A's (n < context fits)
 * and in every run a reply never runs past the context (prompt + generated tokens but the last,
 * which is sampled and never fed back, <= context).
 * A fifth message on A checks that history 3 keeps 3 turns, not 4.
 * usage: test_llm_history_edge TINY.gguf */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#define N_MSG 5
#define MAX_NEW 4

static const gchar *model_path;
static const gchar *const messages[N_MSG] = { "ka lo", "mi", "ne ka", "lo mi", "ka" };

typedef struct
{
  gchar *prompt[N_MSG];
  gint tokens[N_MSG], generated[N_MSG];
} Conversation;

/* n messages to a new element; every reply message's prompt and token counts */
static void
converse (guint history, gint context, guint n, Conversation * c)
{
  GstElement *e = gst_element_factory_make ("anygptllm", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model-path", model_path, "threads", 1, "temperature", 0.0,
      "max-new-tokens", MAX_NEW, "seed", (gint64) 1, "history", history, "context-length",
      context, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "device", "cpu");
  gst_util_set_object_arg (G_OBJECT (e), "task", "chat");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  GstHarness *h = gst_harness_new_with_element (e, "text_sink_%u", "text_src");
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  gst_harness_play (h);
  for (guint i = 0; i < n; i++) {
    const gchar *m = messages[i];
    fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (m, strlen (m))),
        GST_FLOW_OK);
    GstStructure *s = NULL;
    while (!s) {
      GstMessage *msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
          GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
      fail_unless (msg != NULL, "no reply to message %u", i + 1);
      fail_if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT, "message %u: error or warning "
          "(the request was dropped)", i + 1);
      if (gst_message_has_name (msg, "anygptllm"))
        s = gst_structure_copy (gst_message_get_structure (msg));
      gst_message_unref (msg);
    }
    c->prompt[i] = g_strdup (gst_structure_get_string (s, "prompt"));
    fail_unless (gst_structure_get_int (s, "prompt-tokens", &c->tokens[i]));
    fail_unless (gst_structure_get_int (s, "generated-tokens", &c->generated[i]));
    gst_structure_free (s);
    /* the KV cache holds the prompt and every generated token but the last (sampled, never
     * fed back) */
    if (context > 0)
      fail_unless (c->tokens[i] + c->generated[i] - 1 <= context, "message %u: %d prompt + %d "
          "generated tokens in a context of %d", i + 1, c->tokens[i], c->generated[i], context);
  }
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);
}

static void
conversation_clear (Conversation * c)
{
  for (guint i = 0; i < N_MSG; i++)
    g_free (c->prompt[i]);
}

static guint
count (const gchar * s, const gchar * what)
{
  guint n = 0;
  for (const gchar * p = strstr (s, what); p; p = strstr (p + 1, what))
    n++;
  return n;
}

GST_START_TEST (test_oldest_turn_dropped_at_the_edge)
{
  Conversation a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
  converse (3, 0, 5, &a);
  converse (2, 0, 4, &b);
  /* history bounds the turns: 4 [Human] blocks at most (3 turns + the new message) */
  fail_unless_equals_int (count (a.prompt[3], "[Human]: "), 4);
  fail_unless_equals_int (count (a.prompt[4], "[Human]: "), 4);
  fail_unless_equals_int (count (b.prompt[3], "[Human]: "), 3);
  gint n = a.tokens[3];
  /* the edge lies where the first three prompts and replies still fit */
  fail_unless (a.tokens[2] + MAX_NEW < n && b.tokens[3] < n, "no edge: %d %d %d", a.tokens[2],
      b.tokens[3], n);
  converse (3, n, 4, &c);
  converse (3, n + 1, 4, &d);
  for (guint i = 0; i < 3; i++) {
    fail_unless_equals_string (c.prompt[i], a.prompt[i]);
    fail_unless_equals_string (d.prompt[i], a.prompt[i]);
  }
  /* context N: N tokens do not fit (a reply needs a position): turn 1 left out, 2 and 3 kept */
  fail_unless_equals_string (c.prompt[3], b.prompt[3]);
  fail_unless_equals_int (c.tokens[3], b.tokens[3]);
  fail_unless (strstr (c.prompt[3], messages[1]) && strstr (c.prompt[3], messages[2]));
  /* context N + 1: all three turns fit */
  fail_unless_equals_string (d.prompt[3], a.prompt[3]);
  fail_unless_equals_int (d.tokens[3], n);
  g_print ("# prompt of 3 turns: %d tokens; of 2: %d\n", n, b.tokens[3]);
  conversation_clear (&a);
  conversation_clear (&b);
  conversation_clear (&c);
  conversation_clear (&d);
}
GST_END_TEST;

static Suite *
suite (void)
{
  Suite *s = suite_create ("anygptllm-history");
  TCase *tc = tcase_create ("edge");
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_oldest_turn_dropped_at_the_edge);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    g_printerr ("usage: %s TINY.gguf\n", argv[0]);
    return 2;
  }
  model_path = argv[1];
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (suite (), "anygptllm-history", __FILE__);
}
