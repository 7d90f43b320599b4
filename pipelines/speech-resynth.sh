#!/usr/bin/env bash
# Speech resynthesis through SpeechTokenizer: any audio file -> 16 kHz mono -> speech tokens
# (speechtokenize, all 8 RVQ layers by default) -> audio (encodecdecode) -> WAV.
# Hearing the result tells how much of a voice the tokens keep (layers=1: the semantic layer only).
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [options] INPUT OUTPUT.wav

Tokenizes INPUT (any format GStreamer decodes) with SpeechTokenizer and decodes the tokens back
to a 16 kHz mono 16-bit WAV.

options:
  -m, --model FILE      SpeechTokenizer GGUF (anygpt-convert speechtokenizer ...);
                        default: \$ANYGPT_SPEECHTOKENIZER
      --models DIR      folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV      auto | cpu | vulkan (default: auto)
  -l, --layers N        RVQ layers kept, 1..8 (default: 8)
  -s, --segment MODE    none | vad: cut utterances by voice activity (default: none)
  -h, --help            this text

environment:
  ANYGPT_SPEECHTOKENIZER  default model file
  ANYGPT_MODELS           models folder: speechtokenizer.gguf there when no file is named
  GST_PLUGIN_PATH         where the anygpt plugin is; default: this checkout's build/gst if built
USAGE
}

. "$(dirname "$0")/lib/common.sh"
model=""
device=auto
layers=8
segment=none
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -m|--model) model=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -l|--layers) layers=$2; shift 2 ;;
    -s|--segment) segment=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ${#args[@]} -ne 2 ]; then
  usage >&2
  exit 2
fi
ag_default_models
model=${model:-${ANYGPT_SPEECHTOKENIZER:-}}
ag_need_setting "$model" SpeechTokenizer --model ANYGPT_SPEECHTOKENIZER
if [ ! -f "${args[0]}" ]; then
  echo "input '${args[0]}' not found" >&2
  exit 2
fi
ag_use_build_tree

exec gst-launch-1.0 -q filesrc location="${args[0]}" ! decodebin ! audioconvert ! audioresample ! \
  audio/x-raw,format=F32LE,rate=16000,channels=1 ! \
  speechtokenize model-path="$model" device="$device" layers="$layers" segment="$segment" ! \
  encodecdecode model-path="$model" device="$device" ! \
  audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location="${args[1]}"
