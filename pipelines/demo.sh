#!/usr/bin/env bash
# The first command a new user runs. It
#   1. installs what is missing (tools/setup-deps.sh, through sudo when not root),
#   2. builds gst-anygpt (build/, release),
#   3. finds the models: --models DIR, ANYGPT_MODELS, or ANYGPT_LLM + ANYGPT_SPEECHTOKENIZER +
#      ANYGPT_SOUNDSTORM; when none are configured it makes the DEMO model set (tiny random
#      models through the real converters, tools/make-demo-models.sh): they make NOISE,
#   4. takes --input WAV, or synthesizes a two-utterance recording,
#   5. runs the voice assistant on it (pipelines/voice-assistant.sh) and writes the reply audio,
#      the reply texts, every element message and the per-turn latency into the output folder.
# The same command with real converted models (README.md, "Real models") does the real thing.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options]
  -o, --out DIR        output folder (default: ./anygpt-demo)
  -i, --input FILE     audio to answer (default: a synthesized two-utterance WAV)
      --models DIR     converted models with the standard names (see README.md)
  -d, --device DEV     auto | cpu | vulkan (default auto)
      --no-deps        do not run tools/setup-deps.sh
  -h, --help           this text
USAGE
}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$PWD/anygpt-demo; input=""; device=auto; deps=1
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) out=$2; shift 2 ;;
    -i|--input) input=$2; shift 2 ;;
    --models) export ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    --no-deps) deps=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ $deps = 1 ]; then
  echo "== dependencies"
  "$root/tools/setup-deps.sh" # asks sudo only when packages are missing and we are not root
fi

echo "== build"
build=${AG_BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" -Dbuildtype=release > /dev/null
fi
ninja -C "$build" -j "$(nproc 2> /dev/null | awk '{ print ($1 > 2) ? 2 : $1 }')" > /dev/null
export AG_BUILD_DIR=$build

echo "== models"
demo=0
if [ -z "${ANYGPT_MODELS:-}" ] &&
  { [ -z "${ANYGPT_LLM:-}" ] || [ -z "${ANYGPT_SPEECHTOKENIZER:-}" ] || [ -z "${ANYGPT_SOUNDSTORM:-}" ]; }; then
  demo=1
  export ANYGPT_MODELS=$build/demo-models
  unset ANYGPT_LLM ANYGPT_SPEECHTOKENIZER ANYGPT_SOUNDSTORM ANYGPT_ENCODEC
  if [ ! -f "$ANYGPT_MODELS/DEMO-MODELS.txt" ]; then
    "$root/tools/make-demo-models.sh" "$ANYGPT_MODELS" > /dev/null
  fi
  cat <<'BANNER'
  ==========================================================================================
   No real models configured: using the DEMO MODELS (tiny, random weights).
   Everything runs for real, but the LLM writes gibberish and the reply audio is NOISE.
   For the real assistant convert the published checkpoints (README.md, "Real models: download
   and convert") and run:  pipelines/demo.sh --models DIR
  ==========================================================================================
BANNER
fi
echo "models: ${ANYGPT_MODELS:-$ANYGPT_LLM}"

mkdir -p "$out"
if [ -z "$input" ]; then
  input=$out/input.wav
  python3 "$root/pipelines/lib/make-utterances.py" "$input" 2
  echo "input: $input (synthesized: two speech-like utterances)"
fi

echo "== voice assistant"
extra=()
if [ $demo = 1 ]; then
  extra=(-n 120) # short replies: the demo model never stops by itself
fi
set +e
"$root/pipelines/voice-assistant.sh" -d "$device" -i "$input" -o "$out/reply.wav" \
  --messages "$out/messages.txt" "${extra[@]}" > "$out/replies.txt" 2> >(tee "$out/log.txt" >&2)
rc=$?
set -e
if [ $rc != 0 ]; then
  echo "the voice assistant failed (exit $rc): see $out/log.txt" >&2
  exit $rc
fi
echo
echo "== results in $out"
echo "  reply audio:  $out/reply.wav (16 kHz)"
echo "  reply texts:  $out/replies.txt (one line per turn)"
echo "  latency:      $out/log.txt"
echo "  all messages: $out/messages.txt"
if [ $demo = 1 ]; then
  echo "  (DEMO MODELS: the texts are gibberish and the audio is noise)"
fi
