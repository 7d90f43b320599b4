/* Registration of the audio codec elements (speechtokenize, encodectokenize, encodecdecode,
 * soundstorm). */
#ifndef GST_ANYGPT_AUDIO_ELEMENTS_H
#define GST_ANYGPT_AUDIO_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (speechtokenize);
GST_ELEMENT_REGISTER_DECLARE (encodectokenize);
GST_ELEMENT_REGISTER_DECLARE (encodecdecode);
GST_ELEMENT_REGISTER_DECLARE (soundstorm);

G_END_DECLS

#endif
