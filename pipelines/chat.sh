#!/usr/bin/env bash
# Text chat with AnyGPT: every message read from stdin (a line typed at a terminal; a file or
# pipe is read in blocks of up to 64 KiB, each one message) goes through anygptllm task=chat and
# the reply is streamed to stdout as it is generated. The element keeps the last turns (history).
# With --images DIR, pictures in the replies (image spans: 32 SEED codes each) are drawn by
# seeddiffuse and written as DIR/image-00001.png, image-00002.png ... in reply order, with a
# progress bar on stderr; text and pictures come from one anygptllm (its text_src and image_src).
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] [FILE]
Chat with the AnyGPT LLM. Messages come from FILE (the whole file is one message) or stdin.
  -m, --model FILE.gguf     AnyGPT LLM GGUF (default: \$ANYGPT_LLM)
      --images DIR          draw the pictures of the replies into DIR (image-NNNNN.png)
      --seed-unclip FILE    SEED unCLIP GGUF for --images (default: \$ANYGPT_SEED_UNCLIP)
      --models DIR          folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV          auto | cpu | vulkan (default auto)
  -t, --temperature T       sampling temperature (0: greedy; default: the spec's)
  -n, --max-new-tokens N    tokens per reply at most (default: the spec's 100)
  -s, --seed N              sampling seed (default: random)
      --history N           previous turns kept in the prompt (default 4)
  -h, --help                this text
example: echo "Hello, who are you?" | $(basename "$0") -m anygpt-chat-q4_0.gguf
USAGE
}
. "$(dirname "$0")/lib/common.sh"
model=""; device=auto; extra=(); file=""; images=""
while [ $# -gt 0 ]; do
  case "$1" in
    -m|--model) model=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --seed-unclip) ANYGPT_SEED_UNCLIP=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -n|--max-new-tokens) extra+=("max-new-tokens=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    --history) extra+=("history=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) file=$1; shift ;;
  esac
done
ag_default_models
model=${model:-${ANYGPT_LLM:-}}
ag_need_model "$model"
ag_use_build_tree
ag_find_run
if [ -n "$file" ]; then
  [ -f "$file" ] || { echo "error: '$file' not found" >&2; exit 2; }
  src=(filesrc location="$file" blocksize=65536)
else
  src=(fdsrc fd=0 blocksize=65536)
fi
pictures=()
if [ -n "$images" ]; then
  ag_need_setting "${ANYGPT_SEED_UNCLIP:-}" "SEED unCLIP" --seed-unclip ANYGPT_SEED_UNCLIP
  mkdir -p "$images"
  # one PNG per image item; async=false: a reply without pictures must not hold the pipeline
  pictures=(llm.image_src ! seeddiffuse model-path="$ANYGPT_SEED_UNCLIP" device="$device" ! pngenc ! \
    multifilesink location="$images/image-%05d.png" index=1 sync=false async=false)
fi
# fdsrc/filesrc say ANY: the capsfilter declares the bytes UTF-8 text
set +e
"${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -p -- "${src[@]}" ! text/x-raw,format=utf8 ! \
  anygptllm name=llm model-path="$model" device="$device" task=chat "${extra[@]}" ! \
  fdsink fd=1 sync=false "${pictures[@]}"
rc=$?
echo
exit $rc
