#!/usr/bin/env bash
# The AnyGPT voice assistant: speak, it answers in text and speech, turn after turn.
#
#   microphone (autoaudiosrc) or --input FILE -> audioconvert ! audioresample -> 16 kHz mono F32
#   [live, when installed: webrtcdsp echo cancellation / noise suppression / voice detection]
#   -> speechtokenize segment=vad, or meta after webrtcdsp (one token buffer per utterance)
#   -> anygptllm task=chat (speech in; text + speech out: speech-reply=always, constrain-spans=true
#      so text holds no bare codes and speech only codes; history of turns)
#   -> soundstorm (7 acoustic RVQ levels; optional voice prompt) -> encodecdecode (16 kHz)
#   -> [webrtcechoprobe] -> autoaudiosink (or --sink), or --output FILE.wav
# The text of every reply is printed on stdout, the per-turn latency (end of speech -> first
# audio sample, by stage) on stderr; both come from the elements' messages (tools/anygpt-run).
# With --images DIR, pictures in the replies ("Can you draw me a picture of ...": an image span
# before the spoken part) go through seeddiffuse into DIR/image-00001.png, ... in reply order
# (anygptllm image_src -> queue -> seeddiffuse -> pngenc -> multifilesink), with a progress bar;
# the speech of the reply does not wait for its picture.
#
# A real room (microphone and speakers): when gst-plugins-bad's webrtcdsp / webrtcechoprobe are
# installed, the live assistant runs the microphone through webrtcdsp (echo cancellation against
# what webrtcechoprobe sees on the way to the speakers, noise suppression, voice detection) and
# speechtokenize cuts utterances on webrtcdsp's voice-activity flag (segment=meta) instead of its
# own energy VAD: its own voice and a noisy room do not become turns. --no-dsp turns this off;
# --segment vad|meta overrides the cutting. Files (--input) never go through it.
#
# Turn taking (anygptllm duplex property):
#   half      (default with the microphone) half-duplex: while the assistant generates a reply
#             and while that reply's audio plays, what the microphone hears is not a new turn:
#             anygptllm drops those utterances and posts an `anygptllm-dropped` message. (Its
#             own voice coming back through the microphone is dropped the same way.)
#   barge-in  speaking while the assistant is busy cancels the reply (its audio already sent
#             is flushed) and the new utterance is the next turn
#   queue     (default with --input) every utterance is a turn, answered in order
# The reply's speech tokens go to SoundStorm through a queue: SoundStorm, the decoder and the
# sink run (and block while the audio plays) in the queue's thread, so the LLM is free as soon
# as the reply is generated, and a barge-in flush cuts the audio being played at once.
# The text reply goes to a fakesink through a bounded queue (2048 pieces, more than a reply
# has): a sink holds its first buffer until the whole pipeline plays, which waits for the first
# reply audio, so the LLM must be able to stream text past it meanwhile.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options]
Voice chat with AnyGPT: microphone (or a file) in, text and speech out.
  -i, --input FILE           audio file (any format GStreamer decodes) instead of the microphone
      --realtime             play the --input file at its own pace, as a microphone hears it
                             (default: as fast as the pipeline takes it; tools/soak.sh uses this)
      --source DESC          live source instead of autoaudiosrc (gst-launch syntax, e.g.
                             'pulsesrc device=NAME')
      --sink DESC            audio sink instead of autoaudiosink (e.g. 'pulsesink device=NAME')
      --no-dsp               no webrtcdsp / webrtcechoprobe on the live paths (default: used
                             when installed, with segment=meta)
      --segment MODE         vad | meta: how utterances are cut (default: meta with webrtcdsp,
                             else vad)
  -o, --output FILE.wav      write the reply audio (16 kHz mono) instead of playing it
  -v, --voice-prompt WAV     a voice to speak with (SoundStorm prompt, 3 s or more of speech)
      --llm FILE.gguf        AnyGPT chat LLM (default: \$ANYGPT_LLM)
      --speechtokenizer FILE SpeechTokenizer GGUF, encoder and decoder (\$ANYGPT_SPEECHTOKENIZER)
      --soundstorm FILE      SoundStorm GGUF (\$ANYGPT_SOUNDSTORM)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md)
      --images DIR           draw the pictures of the replies into DIR (image-NNNNN.png)
      --seed-unclip FILE     SEED unCLIP GGUF for --images (\$ANYGPT_SEED_UNCLIP)
  -d, --device DEV           auto | cpu | vulkan (default auto)
      --duplex MODE          half | barge-in | queue (default: half for the microphone, queue
                             for --input)
      --history N            previous turns kept in the prompt (default 4)
  -n, --max-new-tokens N     tokens per reply, text and speech (default 500)
      --speech-chunk N       streamed speech: SoundStorm and the decoder start on the first N
                             speech tokens (50 a second) while the reply is generated, chunk by
                             chunk; 0 = after the whole reply (default 0)
  -t, --temperature T        sampling temperature for text and speech (default: the spec's)
  -s, --seed N               sampling seed
      --messages FILE        write every element message to FILE (for scripts and tests)
      --no-latency           do not print the per-turn latency
      --verbose              show the shared compute core: backends, model copies, threads, RSS
  -h, --help                 this text
Without real models, pipelines/demo.sh makes tiny random ones: they produce noise.
example: $(basename "$0") --models ~/anygpt-models
USAGE
}
. "$(dirname "$0")/lib/common.sh"
input=""; realtime=0; output=""; voice=""; images=""; device=auto; duplex=""; history=4; max_new=500
live_src="autoaudiosrc"; live_sink="autoaudiosink"; dsp=1; segment=""
extra=(); run_opts=(-r -q); latency=(-l); chunk=0
while [ $# -gt 0 ]; do
  case "$1" in
    -i|--input) input=$2; shift 2 ;;
    --realtime) realtime=1; shift ;;
    -o|--output) output=$2; shift 2 ;;
    --source) live_src=$2; shift 2 ;;
    --sink) live_sink=$2; shift 2 ;;
    --no-dsp) dsp=0; shift ;;
    --segment) segment=$2; shift 2 ;;
    -v|--voice-prompt) voice=$2; shift 2 ;;
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --speechtokenizer) ANYGPT_SPEECHTOKENIZER=$2; shift 2 ;;
    --soundstorm) ANYGPT_SOUNDSTORM=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --seed-unclip) ANYGPT_SEED_UNCLIP=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    --duplex) duplex=$2; shift 2 ;;
    --history) history=$2; shift 2 ;;
    -n|--max-new-tokens) max_new=$2; shift 2 ;;
    --speech-chunk) chunk=$2; shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    --messages) run_opts+=(-m "$2"); shift 2 ;;
    --no-latency) latency=(); shift ;;
    --verbose) run_opts+=(-v); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
ag_default_models
llm=${ANYGPT_LLM:-}; st=${ANYGPT_SPEECHTOKENIZER:-}; ss=${ANYGPT_SOUNDSTORM:-}
ag_need_setting "$llm" LLM --llm ANYGPT_LLM
ag_need_setting "$st" SpeechTokenizer --speechtokenizer ANYGPT_SPEECHTOKENIZER
ag_need_setting "$ss" SoundStorm --soundstorm ANYGPT_SOUNDSTORM
ag_use_build_tree
ag_find_run

# webrtcdsp on the live microphone (and its echo probe before the speakers) when installed
use_dsp=0
if [ -z "$input" ] && [ $dsp = 1 ] && gst-inspect-1.0 webrtcdsp > /dev/null 2>&1 &&
  gst-inspect-1.0 webrtcechoprobe > /dev/null 2>&1; then
  use_dsp=1
fi
: "${segment:=$([ $use_dsp = 1 ] && echo meta || echo vad)}"
# the word lists of --source / --sink (gst-launch syntax: split on blanks)
read -r -a live_src_words <<< "$live_src"
read -r -a live_sink_words <<< "$live_sink"
if [ -n "$input" ]; then
  ag_need_input "$input"
  src=(filesrc location="$input" ! decodebin)
  # clocksync holds each buffer until its time on the clock (and makes the pipeline live)
  [ $realtime = 0 ] || src+=(! clocksync)
  : "${duplex:=queue}"
elif [ $use_dsp = 1 ]; then
  # echo cancellation needs the probe on the playback path: none when writing a file
  aec=true
  [ -z "$output" ] || aec=false
  # delay-agnostic: the canceller finds the echo delay itself (the sound server's and the room's
  # are not in the timestamps); no gain control and the least eager voice detector: the residual echo while
  # the canceller adapts stays a blip shorter than min-speech-ms, not a turn
  src=("${live_src_words[@]}" ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
    webrtcdsp probe=agechoprobe echo-cancel=$aec delay-agnostic=true noise-suppression=true gain-control=false \
      voice-detection=true voice-detection-likelihood=very-low)
  : "${duplex:=half}"
else
  src=("${live_src_words[@]}")
  : "${duplex:=half}"
fi
if [ -n "$output" ]; then
  sink=(audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location="$output")
elif [ $use_dsp = 1 ]; then
  # webrtcechoprobe hands what goes to the speakers to webrtcdsp (10 ms S16 chunks)
  sink=(audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
    webrtcechoprobe name=agechoprobe ! audioconvert ! audioresample ! "${live_sink_words[@]}")
else
  # from a live source anygptllm stamps the reply audio at the running time it is pushed at, so
  # the sink plays it at once and in time (a sink without sync loses replies after it ran dry)
  sink=(audioconvert ! audioresample ! "${live_sink_words[@]}")
fi
pictures=()
if [ -n "$images" ]; then
  ag_need_setting "${ANYGPT_SEED_UNCLIP:-}" "SEED unCLIP" --seed-unclip ANYGPT_SEED_UNCLIP
  mkdir -p "$images"
  run_opts+=(-p)
  # the queue lets the LLM go on while pictures are drawn (two items more); async=false: a
  # reply without pictures must not hold the pipeline
  pictures=(llm.image_src ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! \
    seeddiffuse model-path="$ANYGPT_SEED_UNCLIP" device="$device" ! pngenc ! \
    multifilesink location="$images/image-%05d.png" index=1 sync=false async=false)
fi
# streamed speech: the chunks queue up (64 at most) for SoundStorm, which then runs next to the
# LLM instead of pausing it; the decoder joins the chunks of an item with 16 frames of context
case $chunk in ''|*[!0-9]*) echo "error: --speech-chunk wants a number of frames" >&2; exit 2 ;; esac
# SoundStorm behind a queue: the LLM thread never blocks on playback, so barge-in cuts at once
speech_path=(queue max-size-buffers=8 max-size-bytes=0 max-size-time=0 ! soundstorm)
decode_opts=()
if [ "$chunk" -gt 0 ]; then
  speech_path=(queue max-size-buffers=64 max-size-bytes=0 max-size-time=0 ! soundstorm chunk="$chunk")
  decode_opts=(stream-context=16)
fi
voice_opts=()
if [ -n "$voice" ]; then
  ag_need_input "$voice"
  voice_opts=(voice-prompt="$voice" voice-prompt-tokenizer="$st")
fi

exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" "${run_opts[@]}" "${latency[@]}" -- \
  "${src[@]}" ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! \
  speechtokenize model-path="$st" device="$device" segment="$segment" ! llm.tokens_sink_0 \
  anygptllm name=llm model-path="$llm" device="$device" task=chat history="$history" \
    speech-reply=always constrain-spans=true duplex="$duplex" max-new-tokens="$max_new" \
    speech-chunk="$chunk" "${extra[@]}" \
  llm.text_src ! queue max-size-buffers=2048 max-size-bytes=0 max-size-time=0 ! \
    fakesink sync=false async=false \
  llm.speech_src ! "${speech_path[@]}" model-path="$ss" device="$device" "${voice_opts[@]}" ! \
  encodecdecode model-path="$st" device="$device" "${decode_opts[@]}" ! "${sink[@]}" "${pictures[@]}"
