#!/usr/bin/env bash
# Image captioning with AnyGPT: an image file -> decoded, converted to RGB -> SEED tokenizer (32
# image codes, seedtokenize) -> anygptllm task=caption -> the caption on stdout.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] IMAGE
Describes IMAGE (PNG, JPEG, ... anything GStreamer decodes to video) with the AnyGPT LLM.
      --llm FILE.gguf            AnyGPT LLM (default: \$ANYGPT_LLM)
      --seed-tokenizer FILE.gguf SEED image tokenizer GGUF (default: \$ANYGPT_SEED_TOKENIZER)
      --models DIR               folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV               auto | cpu | vulkan (default auto)
  -n, --max-new-tokens N         tokens of the caption at most
  -t, --temperature T            sampling temperature (0: greedy)
  -s, --seed N                   sampling seed
      --constrain-spans          no bare image/speech/music codes in a caption, only text (the
                                 demo models write mostly codes; a real model writes text)
  -h, --help                     this text
example: $(basename "$0") --models ~/anygpt-models photo.jpg
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; extra=(); input=""
while [ $# -gt 0 ]; do
  case "$1" in
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --seed-tokenizer) ANYGPT_SEED_TOKENIZER=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -n|--max-new-tokens) extra+=("max-new-tokens=$2"); shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    --constrain-spans) extra+=("constrain-spans=true"); shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) input=$1; shift ;;
  esac
done
ag_default_models
ag_need_setting "${ANYGPT_LLM:-}" LLM --llm ANYGPT_LLM
ag_need_setting "${ANYGPT_SEED_TOKENIZER:-}" "SEED tokenizer" --seed-tokenizer ANYGPT_SEED_TOKENIZER
ag_need_input "$input"
ag_use_build_tree
ag_find_run
# one frame: decodebin gives it (a still image is one buffer, then EOS)
exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -r -- filesrc location="$input" ! decodebin ! \
  videoconvert ! seedtokenize model-path="$ANYGPT_SEED_TOKENIZER" device="$device" ! \
  llm.tokens_sink_0 anygptllm name=llm model-path="$ANYGPT_LLM" device="$device" task=caption "${extra[@]}" \
  llm.text_src ! queue ! fakesink sync=false async=false
