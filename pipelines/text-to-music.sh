#!/usr/bin/env bash
# Text to music with AnyGPT: text -> anygptllm task=text-to-music (the prompt opens a music
# span, constrained to music codes) -> Encodec 32 kHz decoder (encodecdecode, music mode by the
# model file) -> 32 kHz mono WAV.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] -o OUTPUT.wav TEXT
Composes music for TEXT with the AnyGPT LLM and the Encodec 32 kHz decoder.
  -o, --output FILE.wav      the music, 32 kHz mono 16-bit (required)
      --llm FILE.gguf        AnyGPT LLM (default: \$ANYGPT_LLM)
      --encodec FILE.gguf    Encodec 32 kHz GGUF (default: \$ANYGPT_ENCODEC)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV           auto | cpu | vulkan (default auto)
  -n, --max-new-tokens N     music tokens at most (4 per 20 ms frame; default: the spec's 2000)
  -t, --temperature T        sampling temperature (0: greedy)
  -s, --seed N               sampling seed
  -h, --help                 this text
example: $(basename "$0") --models ~/anygpt-models -o calm.wav "a calm piano piece"
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; extra=(); output=""; text=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) output=$2; shift 2 ;;
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --encodec) ANYGPT_ENCODEC=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -n|--max-new-tokens) extra+=("max-new-tokens=$2"); shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) text=$1; shift ;;
  esac
done
ag_default_models
ag_need_setting "${ANYGPT_LLM:-}" LLM --llm ANYGPT_LLM
ag_need_setting "${ANYGPT_ENCODEC:-}" Encodec --encodec ANYGPT_ENCODEC
[ -n "$text" ] || { echo "error: no text" >&2; usage >&2; exit 2; }
[ -n "$output" ] || { echo "error: no output file (-o FILE.wav)" >&2; exit 2; }
ag_use_build_tree
ag_find_run
exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -- anygptllm name=llm model-path="$ANYGPT_LLM" device="$device" \
    task=text-to-music prompt="$text" constrain-spans=true "${extra[@]}" \
  llm.music_src ! encodecdecode model-path="$ANYGPT_ENCODEC" device="$device" ! audioconvert ! \
  audio/x-raw,format=S16LE ! wavenc ! filesink location="$output"
