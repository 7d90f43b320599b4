#!/usr/bin/env bash
# text-to-image-tokens.sh / text-to-music-tokens.sh: a text prompt -> anygptllm (task
# text-to-image or text-to-music) -> the generated items' token ids (int32 little-endian,
# frame-major) written to a file. Usage: text-to-tokens.sh image|music [options] "prompt".
set -euo pipefail
kind=$1; shift
case "$kind" in
  image) task=text-to-image; pad=image_src; what="32 image codes (SEED, 8192 each)" ;;
  music) task=text-to-music; pad=music_src; what="music frames of 4 Encodec codes (2048 each)" ;;
  *) echo "error: kind must be image or music" >&2; exit 2 ;;
esac
name=text-to-$kind-tokens.sh
usage() {
  cat <<USAGE
usage: $name [options] "TEXT"
Generate $kind tokens for TEXT with the AnyGPT LLM: $what, int32 little-endian.
  -m, --model FILE.gguf     AnyGPT LLM GGUF (default: \$ANYGPT_LLM)
      --models DIR          folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -o, --output FILE         token file to write (default $kind.tokens)
  -d, --device DEV          auto | cpu | vulkan (default auto)
  -t, --temperature T       sampling temperature (0: greedy; default: the spec's)
  -n, --max-new-tokens N    tokens at most (default: the spec's for $kind)
  -s, --seed N              sampling seed (default: random)
  -h, --help                this text
USAGE
}
. "$(dirname "$0")/common.sh"
model=""; out=$kind.tokens; device=auto; extra=(); text=""
while [ $# -gt 0 ]; do
  case "$1" in
    -m|--model) model=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -o|--output) out=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -n|--max-new-tokens) extra+=("max-new-tokens=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) text=$1; shift ;;
  esac
done
[ -n "$text" ] || { echo "error: no text given" >&2; usage >&2; exit 2; }
ag_default_models
model=${model:-${ANYGPT_LLM:-}}
ag_need_model "$model"
ag_use_build_tree
# no sink pad: anygptllm answers its prompt property once, then sends EOS
gst-launch-1.0 -q anygptllm name=llm model-path="$model" device="$device" task=$task \
  prompt="$text" "${extra[@]}" llm.$pad ! filesink location="$out"
if [ ! -s "$out" ]; then
  echo "warning: the reply held no $kind tokens ('$out' is empty)" >&2
else
  echo "$(($(stat -c %s "$out") / 4)) token ids written to $out" >&2
fi
