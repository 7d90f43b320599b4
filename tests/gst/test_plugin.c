/* The anygpt plugin loads from the build tree and describes itself. */
#include <gst/check/gstcheck.h>

GST_START_TEST (test_plugin_loads)
{
  GstPlugin *plugin = gst_registry_find_plugin (gst_registry_get (), "anygpt");
  fail_unless (plugin != NULL, "plugin 'anygpt' not found (GST_PLUGIN_PATH=%s)", g_getenv ("GST_PLUGIN_PATH"));
  fail_unless (g_str_has_suffix (gst_plugin_get_filename (plugin), "libgstanygpt.so"));
  fail_unless_equals_string (gst_plugin_get_license (plugin), "MIT");
  fail_unless (strstr (gst_plugin_get_description (plugin), "AnyGPT") != NULL);
  gst_object_unref (plugin);
}
GST_END_TEST;

static Suite *
anygpt_plugin_suite (void)
{
  Suite *s = suite_create ("anygpt-plugin");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_plugin_loads);
  return s;
}

GST_CHECK_MAIN (anygpt_plugin);
