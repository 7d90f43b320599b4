/* The anygpt GStreamer plugin. Elements register here as their issues land; each lives in its
 * own file and holds no math (that is core/). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "gstanygptcore.h"
#include "gstanygptaudioelements.h"
#include "gstanygptimageelements.h"
#include "gstanygptllm.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  anygpt_core_debug_init ();
  ret |= GST_ELEMENT_REGISTER (anygptllm, plugin);
  ret |= GST_ELEMENT_REGISTER (speechtokenize, plugin);
  ret |= GST_ELEMENT_REGISTER (encodectokenize, plugin);
  ret |= GST_ELEMENT_REGISTER (encodecdecode, plugin);
  ret |= GST_ELEMENT_REGISTER (soundstorm, plugin);
  ret |= GST_ELEMENT_REGISTER (seedtokenize, plugin);
  ret |= GST_ELEMENT_REGISTER (seeddiffuse, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, anygpt,
    "AnyGPT any-to-any multimodal LLM (speech, text, images, music) on a shared Vulkan/CPU compute core",
    plugin_init, PACKAGE_VERSION, "MIT", "gst-anygpt", "https://github.com/gst-anygpt/gst-anygpt")
