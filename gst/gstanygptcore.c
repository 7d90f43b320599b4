#include "gstanygptcore.h"

GST_DEBUG_CATEGORY (anygpt_core_debug);

void
anygpt_core_debug_init (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (anygpt_core_debug, "anygpt", 0, "anygpt compute core bridge");
    g_once_init_leave (&done, 1);
  }
}
