#!/usr/bin/env bash
# Text chat with AnyGPT: every message read from stdin (a line typed at a terminal; a file or
# pipe is read in blocks of up to 64 KiB, each one message) goes through anygptllm task=chat and
# the reply is streamed to stdout as it is generated. The element keeps the last turns (history).
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] [FILE]
Chat with the AnyGPT LLM. Messages come from FILE (the whole file is one message) or stdin.
  -m, --model FILE.gguf     AnyGPT LLM GGUF (default: \$ANYGPT_LLM)
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
model=${ANYGPT_LLM:-}; device=auto; extra=(); file=""
while [ $# -gt 0 ]; do
  case "$1" in
    -m|--model) model=$2; shift 2 ;;
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
ag_need_model "$model"
ag_use_build_tree
if [ -n "$file" ]; then
  [ -f "$file" ] || { echo "error: '$file' not found" >&2; exit 2; }
  src=(filesrc location="$file" blocksize=65536)
else
  src=(fdsrc fd=0 blocksize=65536)
fi
# fdsrc/filesrc say ANY: the capsfilter declares the bytes UTF-8 text
gst-launch-1.0 -q "${src[@]}" ! text/x-raw,format=utf8 ! \
  anygptllm model-path="$model" device="$device" task=chat "${extra[@]}" ! \
  fdsink fd=1 sync=false
echo
