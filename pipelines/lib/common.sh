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

# Model files of the multi-model scripts, in this order: the script's options, the variables
# ANYGPT_LLM / ANYGPT_SPEECHTOKENIZER / ANYGPT_SOUNDSTORM / ANYGPT_ENCODEC, then the standard
# names in the folder $ANYGPT_MODELS (what tools/make-demo-models.sh writes and README.md tells
# to convert into): anygpt-llm.gguf, speechtokenizer.gguf, soundstorm.gguf, encodec.gguf.
ag_default_models() {
  local d=${ANYGPT_MODELS:-}
  [ -n "$d" ] || return 0
  : "${ANYGPT_LLM:=$d/anygpt-llm.gguf}"
  : "${ANYGPT_SPEECHTOKENIZER:=$d/speechtokenizer.gguf}"
  : "${ANYGPT_SOUNDSTORM:=$d/soundstorm.gguf}"
  : "${ANYGPT_ENCODEC:=$d/encodec.gguf}"
}

# ag_need_setting VALUE WHAT OPTION VAR: exits when a model is not configured at all. Whether
# the file exists and is the right model is the element's to say (a GStreamer error naming the
# path), so the scripts do not second-guess it.
ag_need_setting() {
  if [ -z "$1" ]; then
    echo "error: no $2 model: pass $3 FILE.gguf, set $4, or set ANYGPT_MODELS to a models folder" >&2
    exit 2
  fi
}

# ag_find_run: sets AG_RUN to anygpt-run (this checkout's build tree first, then PATH) and
# AG_RUN_OPTS to its options from the environment: ANYGPT_MESSAGES=FILE writes every element
# message to FILE (prompts, replies, timings: for scripts and tests); AG_RUN_PREFIX to the
# words of AG_RUN_WRAP (a wrapper command such as valgrind, for the tests).
ag_find_run() {
  AG_RUN_OPTS=()
  if [ -n "${ANYGPT_MESSAGES:-}" ]; then
    AG_RUN_OPTS=(-m "$ANYGPT_MESSAGES")
  fi
  # AG_RUN_WRAP: a command the run goes through, e.g. valgrind with its options (tests)
  read -r -a AG_RUN_PREFIX <<< "${AG_RUN_WRAP:-}"
  local root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  build=${AG_BUILD_DIR:-$root/build}
  if [ -x "$build/tools/run/anygpt-run" ]; then
    AG_RUN=$build/tools/run/anygpt-run
  elif command -v anygpt-run > /dev/null; then
    AG_RUN=$(command -v anygpt-run)
  else
    echo "error: anygpt-run not found: build the project (ninja -C build) or install it" >&2
    exit 2
  fi
}

# ag_need_input FILE: the input file must exist (what is in it is GStreamer's to judge).
ag_need_input() {
  if [ -z "$1" ] || [ ! -f "$1" ]; then
    echo "error: input file '${1:-}' not found" >&2
    exit 2
  fi
}
