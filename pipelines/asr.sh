#!/usr/bin/env bash
# Speech recognition with AnyGPT: an audio file -> 16 kHz mono -> SpeechTokenizer (one item for
# the whole file; --vad: one per utterance) -> anygptllm task=asr -> the transcript on stdout,
# one line per item.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] INPUT
Transcribes INPUT (any audio format GStreamer decodes) with the AnyGPT LLM.
      --llm FILE.gguf        AnyGPT LLM (default: \$ANYGPT_LLM)
      --speechtokenizer FILE SpeechTokenizer GGUF (default: \$ANYGPT_SPEECHTOKENIZER)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV           auto | cpu | vulkan (default auto)
      --vad                  one transcript per utterance (voice activity) instead of one
  -n, --max-new-tokens N     tokens per transcript at most
  -t, --temperature T        sampling temperature (0: greedy)
  -s, --seed N               sampling seed
  -h, --help                 this text
example: $(basename "$0") --models ~/anygpt-models question.wav
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; segment=none; extra=(); input=""
while [ $# -gt 0 ]; do
  case "$1" in
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --speechtokenizer) ANYGPT_SPEECHTOKENIZER=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    --vad) segment=vad; shift ;;
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
ag_need_setting "${ANYGPT_SPEECHTOKENIZER:-}" SpeechTokenizer --speechtokenizer ANYGPT_SPEECHTOKENIZER
ag_need_input "$input"
ag_use_build_tree
ag_find_run
exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -r -- filesrc location="$input" ! decodebin ! audioconvert ! audioresample ! \
  audio/x-raw,format=F32LE,rate=16000,channels=1 ! \
  speechtokenize model-path="$ANYGPT_SPEECHTOKENIZER" device="$device" segment=$segment ! \
  llm.tokens_sink_0 anygptllm name=llm model-path="$ANYGPT_LLM" device="$device" task=asr "${extra[@]}" \
  llm.text_src ! queue max-size-buffers=2048 max-size-bytes=0 max-size-time=0 ! fakesink sync=false async=false
