/* The text a reply message's reply field stands for on text_src, read independently of the
 * element (AnyGPT's tags and the spec's code token forms), for the element tests. */
#ifndef ANYGPT_TEST_REPLY_TEXT_H
#define ANYGPT_TEST_REPLY_TEXT_H

#include <glib.h>
#include <string.h>

#define SP "<\xF0\x9F\x97\xA3\xEF\xB8\x8F"

/* What text_src carries of a reply: the text outside <so..>..<eo..> spans without the added
 * tokens (role strings, tags, stray modality tokens), as the core's streaming decoder gives it. */
static inline gchar *
reply_text_only (const gchar * reply)
{
  static const gchar *const fixed[] = { "[Human]", "[MMGPT]", "<eoh>", "<eos>", "<eom>",
    "<-Ins->", "<-Res->", "<eot>", "<soim>", "<eoim>", "<sosp>", "<eosp>", "<somu>", "<eomu>"
  };
  static const gchar *const codes[] = { "<\xF0\x9F\x91\x80", SP, "<\xF0\x9F\x8E\xB6" };
  GString *out = g_string_new (NULL);
  const gchar *close = NULL;    /* end tag of the open span */
  for (const gchar * p = reply; *p;) {
    gsize skip = 0;
    for (guint i = 0; i < G_N_ELEMENTS (fixed) && !skip; i++)
      if (g_str_has_prefix (p, fixed[i]))
        skip = strlen (fixed[i]);
    for (guint i = 0; i < G_N_ELEMENTS (codes) && !skip; i++)
      if (g_str_has_prefix (p, codes[i])) {
        const gchar *d = p + strlen (codes[i]);
        while (g_ascii_isdigit (*d))
          d++;
        if (*d == '>' && d > p + strlen (codes[i]))
          skip = (gsize) (d + 1 - p);
      }
    if (skip) {
      if (close && g_str_has_prefix (p, close))
        close = NULL;
      else if (!close && g_str_has_prefix (p, "<so"))
        close = g_str_has_prefix (p, "<sosp>") ? "<eosp>" :
            g_str_has_prefix (p, "<soim>") ? "<eoim>" : "<eomu>";
      p += skip;
      continue;
    }
    if (!close)
      g_string_append_c (out, *p);
    p++;
  }
  return g_string_free (out, FALSE);
}

#endif
