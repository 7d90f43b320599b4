#!/usr/bin/env bash
# The AnyGPT voice assistant: speak, it answers in text and speech, turn after turn.
#
#   microphone (autoaudiosrc) or --input FILE -> audioconvert ! audioresample -> 16 kHz mono F32
#   -> speechtokenize segment=vad (one token buffer per utterance)
#   -> anygptllm task=chat (speech in; text + speech out: speech-reply=always, constrain-spans=true
#      so text holds no bare codes and speech only codes; history of turns)
#   -> soundstorm (7 acoustic RVQ levels; optional voice prompt) -> encodecdecode (16 kHz)
#   -> autoaudiosink, or --output FILE.wav
# The text of every reply is printed on stdout, the per-turn latency (end of speech -> first
# audio sample, by stage) on stderr; both come from the elements' messages (tools/anygpt-run).
#
# Turn taking (anygptllm duplex property):
#   half      (default with the microphone) half-duplex: while the assistant generates a reply
#             and while that reply's audio plays, what the microphone hears is not a new turn:
#             anygptllm drops those utterances and posts an `anygptllm-dropped` message. (Its
#             own voice coming back through the microphone is dropped the same way.)
#   barge-in  speaking while the assistant is busy cancels the reply (its audio already sent
#             is flushed) and the new utterance is the next turn
#   queue     (default with --input) every utterance is a turn, answered in order
# The text reply goes to a fakesink through a bounded queue (2048 pieces, more than a reply
# has): a sink holds its first buffer until the whole pipeline plays, which waits for the first
# reply audio, so the LLM must be able to stream text past it meanwhile.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options]
Voice chat with AnyGPT: microphone (or a file) in, text and speech out.
  -i, --input FILE           audio file (any format GStreamer decodes) instead of the microphone
  -o, --output FILE.wav      write the reply audio (16 kHz mono) instead of playing it
  -v, --voice-prompt WAV     a voice to speak with (SoundStorm prompt, 3 s or more of speech)
      --llm FILE.gguf        AnyGPT chat LLM (default: \$ANYGPT_LLM)
      --speechtokenizer FILE SpeechTokenizer GGUF, encoder and decoder (\$ANYGPT_SPEECHTOKENIZER)
      --soundstorm FILE      SoundStorm GGUF (\$ANYGPT_SOUNDSTORM)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV           auto | cpu | vulkan (default auto)
      --duplex MODE          half | barge-in | queue (default: half for the microphone, queue
                             for --input)
      --history N            previous turns kept in the prompt (default 4)
  -n, --max-new-tokens N     tokens per reply, text and speech (default 500)
  -t, --temperature T        sampling temperature for text and speech (default: the spec's)
  -s, --seed N               sampling seed
      --messages FILE        write every element message to FILE (for scripts and tests)
      --no-latency           do not print the per-turn latency
  -h, --help                 this text
Without real models, pipelines/demo.sh makes tiny random ones: they produce noise.
example: $(basename "$0") --models ~/anygpt-models
USAGE
}
. "$(dirname "$0")/lib/common.sh"
input=""; output=""; voice=""; device=auto; duplex=""; history=4; max_new=500
extra=(); run_opts=(-r -q); latency=(-l)
while [ $# -gt 0 ]; do
  case "$1" in
    -i|--input) input=$2; shift 2 ;;
    -o|--output) output=$2; shift 2 ;;
    -v|--voice-prompt) voice=$2; shift 2 ;;
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --speechtokenizer) ANYGPT_SPEECHTOKENIZER=$2; shift 2 ;;
    --soundstorm) ANYGPT_SOUNDSTORM=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    --duplex) duplex=$2; shift 2 ;;
    --history) history=$2; shift 2 ;;
    -n|--max-new-tokens) max_new=$2; shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    --messages) run_opts+=(-m "$2"); shift 2 ;;
    --no-latency) latency=(); shift ;;
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

if [ -n "$input" ]; then
  ag_need_input "$input"
  src=(filesrc location="$input" ! decodebin)
  : "${duplex:=queue}"
else
  src=(autoaudiosrc)
  : "${duplex:=half}"
fi
if [ -n "$output" ]; then
  sink=(audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location="$output")
else
  # the reply audio is played as it arrives (its timestamps start at the reply, not the clock)
  sink=(audioconvert ! audioresample ! autoaudiosink sync=false)
fi
voice_opts=()
if [ -n "$voice" ]; then
  ag_need_input "$voice"
  voice_opts=(voice-prompt="$voice" voice-prompt-tokenizer="$st")
fi

exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" "${run_opts[@]}" "${latency[@]}" -- \
  "${src[@]}" ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! \
  speechtokenize model-path="$st" device="$device" segment=vad ! llm.tokens_sink_0 \
  anygptllm name=llm model-path="$llm" device="$device" task=chat history="$history" \
    speech-reply=always constrain-spans=true duplex="$duplex" max-new-tokens="$max_new" "${extra[@]}" \
  llm.text_src ! queue max-size-buffers=2048 max-size-bytes=0 max-size-time=0 ! \
    fakesink sync=false async=false \
  llm.speech_src ! soundstorm model-path="$ss" device="$device" "${voice_opts[@]}" ! \
  encodecdecode model-path="$st" device="$device" ! "${sink[@]}"
