# Shared by the pipeline scripts: find the anygpt plugin (installed, or the build tree of this
# checkout when there is one) and the LLM model file.

# Prepend this checkout's build tree to GST_PLUGIN_PATH when it holds the plugin, so the scripts
# work straight after `ninja -C build` (AG_BUILD_DIR picks another build dir).
ag_use_build_tree() {
  local root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  build=${AG_BUILD_DIR:-$root/build}
  if [ -f "$build/gst/libgstanygpt.so" ]; then
    export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  fi
}

# ag_need_model PATH: exits with a clear message when the model file is missing.
ag_need_model() {
  if [ -z "$1" ]; then
    echo "error: no model: pass --model FILE.gguf or set ANYGPT_LLM" >&2
    exit 2
  fi
  if [ ! -f "$1" ]; then
    echo "error: model file '$1' not found" >&2
    exit 2
  fi
}
