/* Shared plumbing for the anygpt elements: debug category and the compute core's version. */
#ifndef GST_ANYGPT_CORE_H
#define GST_ANYGPT_CORE_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (anygpt_core_debug);

void anygpt_core_debug_init (void);

G_END_DECLS

#endif
