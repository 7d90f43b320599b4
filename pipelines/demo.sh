#!/usr/bin/env bash
# The first command a new user runs. It
#   1. installs what is missing (tools/setup-deps.sh, through sudo when not root),
#   2. builds gst-anygpt (build/, release),
#   3. finds the models: --models DIR, ANYGPT_MODELS, or ANYGPT_LLM + ANYGPT_SPEECHTOKENIZER +
#      ANYGPT_SOUNDSTORM; when none are configured it makes the DEMO model set (tiny random
#      models through the real converters, tools/make-demo-models.sh): they make NOISE,
#   4. takes --input WAV, or synthesizes a two-utterance recording,
#   5. runs the voice assistant on it (pipelines/voice-assistant.sh) and writes the reply audio,
#      the reply texts, every element message and the per-turn latency into the output folder,
#   6. captions a generated image (pipelines/caption-image.sh) and a generated 4 s video
#      (pipelines/caption-video.sh: captions burned in, SubRip subtitles, per-caption latency)
#      when a SEED image tokenizer is configured (the demo set has one),
#   7. draws "a cat" (pipelines/text-to-image.sh: LLM -> 32 image codes -> seeddiffuse -> PNG)
#      when a SEED unCLIP decoder is configured (the demo set has one: 768x768, ~8 s on a cpu).
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
  unset ANYGPT_LLM ANYGPT_SPEECHTOKENIZER ANYGPT_SOUNDSTORM ANYGPT_ENCODEC ANYGPT_SEED_TOKENIZER \
    ANYGPT_SEED_UNCLIP
  # (a set made before the image models lacks the SEED tokenizer or decoder: made again)
  if [ ! -f "$ANYGPT_MODELS/DEMO-MODELS.txt" ] || [ ! -f "$ANYGPT_MODELS/seed-tokenizer.gguf" ] ||
    [ ! -f "$ANYGPT_MODELS/seed-unclip.gguf" ]; then
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

# ---- image and video captioning ----
seed_tok=${ANYGPT_SEED_TOKENIZER:-${ANYGPT_MODELS:+$ANYGPT_MODELS/seed-tokenizer.gguf}}
captions=0
if [ -n "$seed_tok" ] && [ -f "$seed_tok" ]; then
  captions=1
  cap_extra=()
  if [ $demo = 1 ]; then
    cap_extra=(-n 24 --constrain-spans) # the demo LLM writes mostly image/speech codes
  fi
  echo "== image captioning"
  gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=320,height=240 ! \
    pngenc ! filesink location="$out/image.png"
  "$root/pipelines/caption-image.sh" -d "$device" --seed-tokenizer "$seed_tok" "${cap_extra[@]}" \
    "$out/image.png" | tee "$out/image-caption.txt"
  echo "== video captioning (one caption per second, burned in)"
  gst-launch-1.0 -q videotestsrc num-buffers=120 pattern=ball ! \
    video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 ! matroskamux ! \
    filesink location="$out/video.mkv"
  "$root/pipelines/caption-video.sh" -d "$device" --seed-tokenizer "$seed_tok" "${cap_extra[@]}" \
    --interval 1 --srt "$out/captions.srt" -o "$out/captioned.mkv" "$out/video.mkv"
else
  echo "== captioning skipped: no SEED image tokenizer (ANYGPT_SEED_TOKENIZER or seed-tokenizer.gguf in the models folder)"
fi

# ---- image generation ----
seed_unclip=${ANYGPT_SEED_UNCLIP:-${ANYGPT_MODELS:+$ANYGPT_MODELS/seed-unclip.gguf}}
drawn=0
if [ -n "$seed_unclip" ] && [ -f "$seed_unclip" ]; then
  echo "== text to image (\"a cat\")"
  t2i_extra=()
  [ $demo = 1 ] && t2i_extra=(-s 1) # the demo LLM: a seed known to write a whole image item
  "$root/pipelines/text-to-image.sh" -d "$device" --seed-unclip "$seed_unclip" "${t2i_extra[@]}" \
    -o "$out/cat.png" "a cat"
  drawn=1
else
  echo "== text to image skipped: no SEED unCLIP decoder (ANYGPT_SEED_UNCLIP or seed-unclip.gguf in the models folder)"
fi

echo
echo "== results in $out"
echo "  reply audio:  $out/reply.wav (16 kHz)"
echo "  reply texts:  $out/replies.txt (one line per turn)"
echo "  latency:      $out/log.txt"
echo "  all messages: $out/messages.txt"
if [ $captions = 1 ]; then
  echo "  image caption: $out/image-caption.txt (of $out/image.png)"
  echo "  video:        $out/captioned.mkv (captions burned in), $out/captions.srt"
fi
if [ $drawn = 1 ]; then
  echo "  generated image: $out/cat.png (\"a cat\")"
fi
if [ $demo = 1 ]; then
  echo "  (DEMO MODELS: the texts are gibberish, the audio and the image are noise)"
fi
