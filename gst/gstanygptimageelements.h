/* Registration of the image elements (seedtokenize, seeddiffuse). */
#ifndef GST_ANYGPT_IMAGE_ELEMENTS_H
#define GST_ANYGPT_IMAGE_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (seedtokenize);
GST_ELEMENT_REGISTER_DECLARE (seeddiffuse);

G_END_DECLS

#endif
