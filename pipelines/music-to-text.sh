#!/usr/bin/env bash
# Music captioning with AnyGPT: an audio file -> 32 kHz mono -> Encodec tokens (encodectokenize,
# the first 20 s as the reference) -> anygptllm task=music-caption -> the description on stdout.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] INPUT
Describes the music in INPUT (any audio format GStreamer decodes) with the AnyGPT LLM.
      --llm FILE.gguf        AnyGPT LLM (default: \$ANYGPT_LLM)
      --encodec FILE.gguf    Encodec 32 kHz GGUF (default: \$ANYGPT_ENCODEC)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV           auto | cpu | vulkan (default auto)
  -n, --max-new-tokens N     tokens of the description at most
  -t, --temperature T        sampling temperature (0: greedy)
  -s, --seed N               sampling seed
  -h, --help                 this text
example: $(basename "$0") --models ~/anygpt-models song.ogg
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; extra=(); input=""
while [ $# -gt 0 ]; do
  case "$1" in
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --encodec) ANYGPT_ENCODEC=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -n|--max-new-tokens) extra+=("max-new-tokens=$2"); shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) input=$1; shift ;;
  esac
done
ag_default_models
ag_need_setting "${ANYGPT_LLM:-}" LLM --llm ANYGPT_LLM
ag_need_setting "${ANYGPT_ENCODEC:-}" Encodec --encodec ANYGPT_ENCODEC
ag_need_input "$input"
ag_use_build_tree
ag_find_run
exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -r -- filesrc location="$input" ! decodebin ! audioconvert ! audioresample ! \
  audio/x-raw,format=F32LE,rate=32000,channels=1 ! \
  encodectokenize model-path="$ANYGPT_ENCODEC" device="$device" ! \
  llm.tokens_sink_0 anygptllm name=llm model-path="$ANYGPT_LLM" device="$device" \
    task=music-caption "${extra[@]}" \
  llm.text_src ! queue max-size-buffers=2048 max-size-bytes=0 max-size-time=0 ! fakesink sync=false async=false
