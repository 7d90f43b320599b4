/* anygpt-run --srt on a captioning pipeline of the tiny random model (argv[1]; argv[2] is the
 * anygpt-run program): five image items from a file of int32 codes, timestamped 0, 2, 4, 6, 8 s
 * by identity datarate (128-byte items at 64 bytes/s), captioned by anygptllm task=caption.
 * The SubRip file must hold five cues 0-2, 2-4, 4-6, 6-8 s and 8-10 s (the last as long as the
 * one before), in order, each with the text of its reply message, and each caption's latency is
 * printed. Under valgrind anygpt-run itself runs under valgrind too (argv[3]: the suppressions
 * of the system libraries' leaks, tests/pipelines/system.supp). argv[4]: the system's
 * GStreamer plugin folder, where the core elements are. */
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <valgrind/valgrind.h>

#include "reply_text.h"

static const gchar *model_path, *run_path, *system_supp, *system_plugins;

#define N_ITEMS 5

typedef struct
{
  gchar *dir, *codes, *messages, *srt, *plugins, *core_link, *registry;
} Files;

static void
files_make (Files * f)
{
  GError *err = NULL;
  f->dir = g_dir_make_tmp ("anygpt-srt-XXXXXX", &err);
  fail_unless (f->dir != NULL, "%s", err ? err->message : "");
  f->codes = g_build_filename (f->dir, "codes.bin", NULL);
  f->messages = g_build_filename (f->dir, "messages.txt", NULL);
  f->srt = g_build_filename (f->dir, "captions.srt", NULL);
  /* the system's core elements only (filesrc, identity, fakesink): loading every installed
   * plugin would bring their own leaks into the sanitizer and valgrind runs */
  f->plugins = g_build_filename (f->dir, "plugins", NULL);
  f->core_link = g_build_filename (f->plugins, "libgstcoreelements.so", NULL);
  f->registry = g_build_filename (f->dir, "registry.bin", NULL);
  gchar *core = g_build_filename (system_plugins, "libgstcoreelements.so", NULL);
  fail_unless (g_mkdir (f->plugins, 0700) == 0);
  fail_unless (symlink (core, f->core_link) == 0, "cannot link %s", core);
  g_free (core);
  gint32 codes[N_ITEMS * 32];
  for (guint i = 0; i < N_ITEMS * 32; i++)
    codes[i] = GINT32_TO_LE ((gint32) (((i / 32) * 977 + (i % 32) * 131) % 8192));
  fail_unless (g_file_set_contents (f->codes, (const gchar *) codes, sizeof codes, NULL));
}

static void
files_clear (Files * f)
{
  g_unlink (f->codes);
  g_unlink (f->messages);
  g_unlink (f->srt);
  g_unlink (f->core_link);
  g_unlink (f->registry);
  g_rmdir (f->plugins);
  g_rmdir (f->dir);
  g_free (f->plugins);
  g_free (f->core_link);
  g_free (f->registry);
  g_free (f->codes);
  g_free (f->messages);
  g_free (f->srt);
  g_free (f->dir);
}

/* Runs anygpt-run with its options and the captioning pipeline; the exit status, stderr in
 * *err_out. */
static gint
run_captions (const Files * f, const gchar * srt_path, gchar ** err_out)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  if (RUNNING_ON_VALGRIND) {
    g_ptr_array_add (argv, g_strdup ("valgrind"));
    g_ptr_array_add (argv, g_strdup ("--error-exitcode=99"));
    g_ptr_array_add (argv, g_strdup ("--leak-check=full"));
    g_ptr_array_add (argv, g_strdup ("--errors-for-leak-kinds=definite"));
    g_ptr_array_add (argv, g_strdup ("--show-leak-kinds=definite"));
    if (g_file_test ("/usr/share/glib-2.0/valgrind/glib.supp", G_FILE_TEST_EXISTS))
      g_ptr_array_add (argv,
          g_strdup ("--suppressions=/usr/share/glib-2.0/valgrind/glib.supp"));
    /* what every GStreamer program shows (see that file); not ours */
    g_ptr_array_add (argv, g_strdup_printf ("--suppressions=%s", system_supp));
  }
  const gchar *args[] = { run_path, "-q", "-m", f->messages, "--srt", srt_path,
    "filesrc", NULL, "blocksize=128", "!",
    "application/x-anygpt-tokens,modality=image,codebooks=1,codebook-size=8192,rate=0/1", "!",
    "identity", "datarate=64", "!",
    "anygptllm", NULL, "task=caption", "device=cpu", "threads=1", "temperature=0",
    "max-new-tokens=12", "seed=1", "!", "fakesink", NULL
  };
  for (guint i = 0; i < G_N_ELEMENTS (args) - 1; i++) {
    if (i == 7)
      g_ptr_array_add (argv, g_strdup_printf ("location=%s", f->codes));
    else if (i == 16)
      g_ptr_array_add (argv, g_strdup_printf ("model-path=%s", model_path));
    else
      g_ptr_array_add (argv, g_strdup (args[i]));
  }
  g_ptr_array_add (argv, NULL);
  gchar **env = g_get_environ ();
  gchar *plugin_path = g_strdup_printf ("%s:%s", g_getenv ("GST_PLUGIN_PATH_1_0"), f->plugins);
  env = g_environ_setenv (env, "GST_PLUGIN_PATH_1_0", plugin_path, TRUE);
  env = g_environ_setenv (env, "GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  env = g_environ_setenv (env, "GST_REGISTRY_1_0", f->registry, TRUE);
  g_free (plugin_path);
  gint status = -1;
  GError *err = NULL;
  gboolean ok = g_spawn_sync (NULL, (gchar **) argv->pdata, env, G_SPAWN_SEARCH_PATH, NULL,
      NULL, NULL, err_out, &status, &err);
  fail_unless (ok, "cannot run %s: %s", run_path, err ? err->message : "");
  g_strfreev (env);
  g_ptr_array_unref (argv);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* The reply texts of the `anygptllm` messages in the messages file (one structure a line), in
 * order, as a SubRip cue holds them: lines stripped, empty lines left out. */
static GPtrArray *
caption_texts (const gchar * path)
{
  gchar *contents;
  fail_unless (g_file_get_contents (path, &contents, NULL, NULL));
  GPtrArray *texts = g_ptr_array_new_with_free_func (g_free);
  gchar **lines = g_strsplit (contents, "\n", -1);
  for (gchar ** l = lines; *l; l++) {
    if (!g_str_has_prefix (*l, "anygptllm, "))
      continue;
    GstStructure *s = gst_structure_from_string (*l, NULL);
    fail_unless (s != NULL, "unreadable message %s", *l);
    guint64 pts = 0;
    fail_unless (gst_structure_get_uint64 (s, "pts", &pts));
    fail_unless_equals_uint64 (pts, texts->len * 2 * GST_SECOND);
    gchar *text = reply_text_only (gst_structure_get_string (s, "reply"));
    gchar **parts = g_strsplit_set (text, "\r\n", -1);
    GString *cue = g_string_new (NULL);
    for (gchar ** p = parts; *p; p++) {
      g_strstrip (*p);
      if (**p)
        g_string_append_printf (cue, "%s%s", cue->len ? "\n" : "", *p);
    }
    g_strfreev (parts);
    g_free (text);
    g_ptr_array_add (texts, g_string_free (cue, FALSE));
    gst_structure_free (s);
  }
  g_strfreev (lines);
  g_free (contents);
  return texts;
}

GST_START_TEST (test_srt_of_five_captions)
{
  Files f;
  files_make (&f);
  gchar *err = NULL;
  gint rc = run_captions (&f, f.srt, &err);
  fail_unless (rc == 0, "anygpt-run: exit status %d:\n%s", rc, err);
  /* a latency line per caption */
  for (guint i = 0; i < N_ITEMS; i++) {
    gchar *want = g_strdup_printf ("caption %u at 0:00:%02u.000000000: item -> first text ",
        i + 1, 2 * i);
    fail_unless (strstr (err, want) != NULL, "no '%s' in:\n%s", want, err);
    g_free (want);
  }
  GPtrArray *texts = caption_texts (f.messages);
  fail_unless_equals_int (texts->len, N_ITEMS);
  GString *want = g_string_new (NULL);
  for (guint i = 0; i < N_ITEMS; i++) {
    const gchar *text = g_ptr_array_index (texts, i);
    fail_unless (text[0], "caption %u has no text: the cue count would not be the caption "
        "count", i + 1);
    g_string_append_printf (want, "%u\n00:00:%02u,000 --> 00:00:%02u,000\n%s\n\n", i + 1,
        2 * i, 2 * i + 2, text);
  }
  gchar *srt;
  fail_unless (g_file_get_contents (f.srt, &srt, NULL, NULL));
  fail_unless_equals_string (srt, want->str);
  g_free (srt);
  g_string_free (want, TRUE);
  g_ptr_array_unref (texts);
  g_free (err);

  /* an SRT file that cannot be written: exit status 1, the path named */
  gchar *bad = g_build_filename (f.dir, "no-such-dir", "x.srt", NULL);
  rc = run_captions (&f, bad, &err);
  fail_unless_equals_int (rc, 1);
  fail_unless (strstr (err, bad) != NULL, "%s", err);
  g_free (err);
  g_free (bad);
  files_clear (&f);
}
GST_END_TEST;

static Suite *
srt_suite (void)
{
  Suite *s = suite_create ("anygpt-run-srt");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  /* anygpt-run under valgrind (when the test is) takes minutes */
  tcase_set_timeout (tc, RUNNING_ON_VALGRIND ? 900 : 60);
  tcase_add_test (tc, test_srt_of_five_captions);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  if (argc < 5) {
    g_printerr ("usage: %s TINY-MODEL.gguf ANYGPT-RUN SYSTEM.supp GST-PLUGINS-DIR\n", argv[0]);
    return 2;
  }
  system_plugins = argv[4];
  model_path = argv[1];
  run_path = argv[2];
  system_supp = argv[3];
  g_print ("# device: cpu\n");
  return gst_check_run_suite (srt_suite (), "anygpt-run-srt", __FILE__);
}
