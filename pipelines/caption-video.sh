#!/usr/bin/env bash
# Video captioning with AnyGPT: a video file or a live camera, one caption per interval burned
# into the picture by textoverlay, shown or written to a file, optionally as SubRip subtitles.
#
#   source ! videoconvert ! tee
#     tee ! queue ! textoverlay.video_sink
#     tee ! queue ! videoconvert ! seedtokenize interval=I ! anygptllm task=caption
#         ! queue ! textoverlay.text_sink
#   textoverlay ! videoconvert ! autovideosink | vp8enc ! matroskamux ! filesink
#
# Each caption carries the time of the frame it describes (the first frame at or after each
# multiple of the interval). A file (not live): every interval's frame is captioned, nothing is
# dropped, a caption lasts exactly one interval and textoverlay waits for it (wait-text=true),
# so every frame shows the caption of its interval whatever the model's speed (the video stops
# while a caption is written). A camera or another live source: the video never waits
# (wait-text=false); a caption shows from its arrival until its frame's time + the caption
# duration (default two intervals: one interval plus up to one interval of latency), and while
# the tokenizer or the LLM is busy newer frames replace the waiting one (counted). Each
# caption's latency is printed on stderr as it arrives (frame -> first text: for a file from
# the frame's arrival at the tokenizer, for a live source from the frame's capture time).
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] FILE | --camera [DEVICE] | --source 'DESCRIPTION'
Captions a video with the AnyGPT LLM, one caption per interval, burned into the picture.
      FILE                       a video file (any format GStreamer decodes; the audio is left out)
      --camera [DEVICE]          a V4L2 camera (default /dev/video0), live
      --source 'DESCRIPTION'     any live video source as a gst-launch description, e.g.
                                 'videotestsrc is-live=true ! video/x-raw,width=640,height=480'
  -i, --interval S               seconds between captions (default 2; decimals allowed)
  -o, --output FILE.mkv          write the captioned video (VP8 in Matroska) instead of showing it
      --srt FILE.srt             also write the captions as SubRip subtitles (timed cues)
      --caption-duration S       how long a caption shows (file: the interval; live: 2 intervals)
      --font 'DESC'              caption font (Pango description, default 'Sans 16')
      --llm FILE.gguf            AnyGPT LLM (default: \$ANYGPT_LLM)
      --seed-tokenizer FILE.gguf SEED image tokenizer GGUF (default: \$ANYGPT_SEED_TOKENIZER)
      --models DIR               folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV               auto | cpu | vulkan (default auto)
  -n, --max-new-tokens N         tokens per caption at most
  -t, --temperature T            sampling temperature (0: greedy)
  -s, --seed N                   sampling seed
      --constrain-spans          no bare image/speech/music codes in a caption, only text (the
                                 demo models write mostly codes; a real model writes text)
  -h, --help                     this text
Live sources run until Ctrl-C (the output file is then finished properly).
examples:
  $(basename "$0") --models ~/anygpt-models --srt clip.srt -o captioned.mkv clip.mp4
  $(basename "$0") --models ~/anygpt-models --camera --interval 3
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; extra=(); input=""; camera=""; source=""; interval=2; output=""; srt=""
duration=""; font="Sans 16"
while [ $# -gt 0 ]; do
  case "$1" in
    --camera)
      camera=/dev/video0
      if [ $# -gt 1 ] && [ "${2#/dev/}" != "$2" ]; then camera=$2; shift; fi
      shift ;;
    --source) source=$2; shift 2 ;;
    -i|--interval) interval=$2; shift 2 ;;
    -o|--output) output=$2; shift 2 ;;
    --srt) srt=$2; shift 2 ;;
    --caption-duration) duration=$2; shift 2 ;;
    --font) font=$2; shift 2 ;;
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
n_sources=0
for s in "$input" "$camera" "$source"; do [ -n "$s" ] && n_sources=$((n_sources + 1)); done
if [ $n_sources != 1 ]; then
  echo "error: give one of FILE, --camera, --source (see --help)" >&2
  exit 2
fi
[ -z "$input" ] || ag_need_input "$input"
# seconds (decimals allowed) -> integer milliseconds / nanoseconds
to_ms() {
  awk -v s="$1" 'BEGIN { if (s !~ /^[0-9]*\.?[0-9]+$/ || s + 0 <= 0) exit 1; printf "%d", s * 1000 + 0.5 }'
}
interval_ms=$(to_ms "$interval") || { echo "error: --interval wants seconds > 0, got '$interval'" >&2; exit 2; }
if [ -n "$duration" ]; then
  duration_ms=$(to_ms "$duration") || { echo "error: --caption-duration wants seconds > 0" >&2; exit 2; }
elif [ -n "$input" ]; then
  duration_ms=$interval_ms # a file: exactly one interval per caption
else
  duration_ms=$((2 * interval_ms)) # live: one interval plus up to one of latency
fi
ag_use_build_tree
ag_find_run

# the source, and how the overlay and the sink treat time
src=()
if [ -n "$input" ]; then
  src=(filesrc location="$input" ! decodebin)
  wait_text=true
  sink_sync=true
else
  if [ -n "$camera" ]; then
    src=(v4l2src device="$camera")
  else
    read -r -a src <<< "$source"
  fi
  wait_text=false
  sink_sync=false
fi
if [ -n "$output" ]; then
  sink=(videoconvert ! vp8enc deadline=1 target-bitrate=4000000 ! matroskamux ! filesink location="$output")
else
  sink=(videoconvert ! autovideosink sync=$sink_sync)
fi
# live: the tokenizer branch never holds the camera back (seedtokenize drops while busy; the
# leaky queue covers the conversion in front of it)
tok_queue=(queue)
[ -n "$input" ] || tok_queue=(queue leaky=downstream max-size-buffers=2)
run_opts=(-q -c)
[ -z "$srt" ] || run_opts=(-q --srt "$srt")

exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" "${run_opts[@]}" -- "${src[@]}" ! videoconvert ! tee name=t \
  t. ! queue ! ov.video_sink \
  t. ! "${tok_queue[@]}" ! videoconvert ! \
    seedtokenize model-path="$ANYGPT_SEED_TOKENIZER" device="$device" interval="$interval_ms" ! \
    llm.tokens_sink_0 \
  anygptllm name=llm model-path="$ANYGPT_LLM" device="$device" task=caption \
    caption-duration=$((duration_ms * 1000000)) "${extra[@]}" \
  llm.text_src ! queue ! ov.text_sink \
  textoverlay name=ov wait-text=$wait_text valignment=bottom halignment=center \
    shaded-background=true wrap-mode=wordchar font-desc="$font" ! "${sink[@]}"
