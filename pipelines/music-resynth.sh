#!/usr/bin/env bash
# Music resynthesis through Encodec 32 kHz, as AnyGPT hears music: any audio file -> 32 kHz mono
# -> the first clip-length seconds as music tokens (encodectokenize, 4 codebooks) -> audio
# (encodecdecode) -> WAV.
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [options] INPUT OUTPUT.wav

Tokenizes the start of INPUT (any format GStreamer decodes) with Encodec 32 kHz and decodes the
tokens back to a 32 kHz mono 16-bit WAV.

options:
  -m, --model FILE      Encodec 32 kHz GGUF (anygpt-convert encodec ...); default: \$ANYGPT_ENCODEC
      --models DIR      folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV      auto | cpu | vulkan (default: auto)
  -c, --clip-length S   seconds from the start, 0 = all (default: 20, like AnyGPT)
  -h, --help            this text

environment:
  ANYGPT_ENCODEC   default model file
  ANYGPT_MODELS    models folder: encodec.gguf there when no file is named
  GST_PLUGIN_PATH  where the anygpt plugin is; default: this checkout's build/gst if built
USAGE
}

. "$(dirname "$0")/lib/common.sh"
model=""
device=auto
clip=20
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -m|--model) model=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -c|--clip-length) clip=$2; shift 2 ;;
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
model=${model:-${ANYGPT_ENCODEC:-}}
ag_need_setting "$model" Encodec --model ANYGPT_ENCODEC
if [ ! -f "${args[0]}" ]; then
  echo "input '${args[0]}' not found" >&2
  exit 2
fi
ag_use_build_tree

exec gst-launch-1.0 -q filesrc location="${args[0]}" ! decodebin ! audioconvert ! audioresample ! \
  audio/x-raw,format=F32LE,rate=32000,channels=1 ! \
  encodectokenize model-path="$model" device="$device" clip-length="$clip" ! \
  encodecdecode model-path="$model" device="$device" ! \
  audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location="${args[1]}"
