# Shared by the pipeline scripts: find the anygpt plugin (installed, or the build tree of this
# checkout when there is one) and the LLM model file.

# An installed copy (meson install: DATADIR/gst-anygpt/pipelines) has lib/installed.sh, written
# at configure time: AG_INSTALLED_BINDIR and AG_INSTALLED_PLUGINDIR of that prefix, so the
# scripts use the prefix's anygpt-run and plugin even when it is not on PATH / GST_PLUGIN_PATH.
if [ -f "$(dirname "${BASH_SOURCE[0]}")/installed.sh" ]; then
  . "$(dirname "${BASH_SOURCE[0]}")/installed.sh"
fi

# Prepend this checkout's build tree to GST_PLUGIN_PATH when it holds the plugin, so the scripts
# work straight after `ninja -C build` (AG_BUILD_DIR picks another build dir).
ag_use_build_tree() {
  local root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  build=${AG_BUILD_DIR:-$root/build}
  if [ -f "$build/gst/libgstanygpt.so" ]; then
    export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  elif [ -n "${AG_INSTALLED_PLUGINDIR:-}" ] && [ -f "$AG_INSTALLED_PLUGINDIR/libgstanygpt.so" ]; then
    export GST_PLUGIN_PATH="$AG_INSTALLED_PLUGINDIR${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  fi
}

# ag_need_model PATH: exits with a clear message when the model file is missing.
ag_need_model() {
  if [ -z "$1" ]; then
    echo "error: no model: pass --model FILE.gguf, set ANYGPT_LLM, or set ANYGPT_MODELS (--models) to a models folder" >&2
    exit 2
  fi
  if [ ! -f "$1" ]; then
    echo "error: model file '$1' not found" >&2
    exit 2
  fi
}

# Model files of the multi-model scripts, in this order: the script's options, the variables
# ANYGPT_LLM / ANYGPT_SPEECHTOKENIZER / ANYGPT_SOUNDSTORM / ANYGPT_ENCODEC /
# ANYGPT_SEED_TOKENIZER / ANYGPT_SEED_UNCLIP, then the standard names in the folder $ANYGPT_MODELS
# (what tools/make-demo-models.sh writes and README.md tells to convert into): anygpt-llm.gguf,
# speechtokenizer.gguf, soundstorm.gguf, encodec.gguf, seed-tokenizer.gguf, seed-unclip.gguf.
ag_default_models() {
  local d=${ANYGPT_MODELS:-}
  [ -n "$d" ] || return 0
  : "${ANYGPT_LLM:=$d/anygpt-llm.gguf}"
  : "${ANYGPT_SPEECHTOKENIZER:=$d/speechtokenizer.gguf}"
  : "${ANYGPT_SOUNDSTORM:=$d/soundstorm.gguf}"
  : "${ANYGPT_ENCODEC:=$d/encodec.gguf}"
  : "${ANYGPT_SEED_TOKENIZER:=$d/seed-tokenizer.gguf}"
  : "${ANYGPT_SEED_UNCLIP:=$d/seed-unclip.gguf}"
}

# ag_demo_fallback VAR...: when no model is configured at all (no ANYGPT_MODELS and none of the
# named variables set, by an option or the environment), use the DEMO model set of the build tree
# ($AG_BUILD_DIR or build/, folder demo-models, as pipelines/demo.sh does), making it first when
# it is missing or incomplete (tools/make-demo-models.sh: ~15 s, needs /usr/bin/python3 with
# torch), and say so loudly: a fresh clone's first command then works, on models that make noise.
ag_demo_fallback() {
  [ -z "${ANYGPT_MODELS:-}" ] || return 0
  local v
  for v in "$@"; do
    [ -z "${!v:-}" ] || return 0
  done
  local root build f
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  build=${AG_BUILD_DIR:-$root/build}
  if [ ! -x "$root/tools/make-demo-models.sh" ]; then
    # an installed copy: the demo set is made from a source checkout (its PyTorch generators)
    echo "error: no models configured: pass --models DIR or set ANYGPT_MODELS (see README.md)" >&2
    exit 2
  fi
  export ANYGPT_MODELS=$build/demo-models
  for f in DEMO-MODELS.txt anygpt-llm.gguf speechtokenizer.gguf soundstorm.gguf encodec.gguf \
    seed-tokenizer.gguf seed-unclip.gguf; do
    if [ ! -f "$ANYGPT_MODELS/$f" ]; then
      echo "no models configured: making the demo model set in $ANYGPT_MODELS" >&2
      "$root/tools/make-demo-models.sh" "$ANYGPT_MODELS" >&2 || exit 2
      break
    fi
  done
  cat >&2 <<BANNER
=== No models configured: using the DEMO MODELS in $ANYGPT_MODELS (tiny, random weights:
=== the output is noise). For the real thing convert the published checkpoints (README.md,
=== "Real models: download and convert") and pass --models DIR or set ANYGPT_MODELS.
BANNER
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
# message to FILE (prompts, replies, timings: for scripts and tests), ANYGPT_VERBOSE=1 shows
# the shared compute core (backends, model copies, threads, RSS); AG_RUN_PREFIX to the
# words of AG_RUN_WRAP (a wrapper command such as valgrind, for the tests).
ag_find_run() {
  AG_RUN_OPTS=()
  if [ -n "${ANYGPT_MESSAGES:-}" ]; then
    AG_RUN_OPTS=(-m "$ANYGPT_MESSAGES")
  fi
  if [ "${ANYGPT_VERBOSE:-0}" = 1 ]; then
    AG_RUN_OPTS+=(-v)
  fi
  # AG_RUN_WRAP: a command the run goes through, e.g. valgrind with its options (tests)
  read -r -a AG_RUN_PREFIX <<< "${AG_RUN_WRAP:-}"
  local root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  build=${AG_BUILD_DIR:-$root/build}
  if [ -x "$build/tools/run/anygpt-run" ]; then
    AG_RUN=$build/tools/run/anygpt-run
  elif [ -n "${AG_INSTALLED_BINDIR:-}" ] && [ -x "$AG_INSTALLED_BINDIR/anygpt-run" ]; then
    AG_RUN=$AG_INSTALLED_BINDIR/anygpt-run
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
