#!/usr/bin/env bash
# Text to speech with AnyGPT: text -> anygptllm task=tts (the prompt opens a speech span; the
# span is constrained to speech codes) -> SoundStorm (optional voice prompt) -> SpeechTokenizer
# decoder -> 16 kHz mono WAV.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] -o OUTPUT.wav TEXT
Speaks TEXT with the AnyGPT LLM, SoundStorm and the SpeechTokenizer decoder.
  -o, --output FILE.wav      the speech, 16 kHz mono 16-bit (required)
  -v, --voice-prompt WAV     a voice to speak with (3 s or more of speech)
      --llm FILE.gguf        AnyGPT LLM (default: \$ANYGPT_LLM)
      --speechtokenizer FILE SpeechTokenizer GGUF (default: \$ANYGPT_SPEECHTOKENIZER)
      --soundstorm FILE      SoundStorm GGUF (default: \$ANYGPT_SOUNDSTORM)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md)
  -d, --device DEV           auto | cpu | vulkan (default auto)
  -n, --max-new-tokens N     speech tokens at most (50 a second; default: the spec's 1500)
  -t, --temperature T        sampling temperature (0: greedy)
  -s, --seed N               sampling seed
  -h, --help                 this text
example: $(basename "$0") --models ~/anygpt-models -o hello.wav "Hello there."
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; extra=(); output=""; voice=""; text=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) output=$2; shift 2 ;;
    -v|--voice-prompt) voice=$2; shift 2 ;;
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --speechtokenizer) ANYGPT_SPEECHTOKENIZER=$2; shift 2 ;;
    --soundstorm) ANYGPT_SOUNDSTORM=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    -n|--max-new-tokens) extra+=("max-new-tokens=$2"); shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) text=$1; shift ;;
  esac
done
ag_default_models
st=${ANYGPT_SPEECHTOKENIZER:-}
ag_need_setting "${ANYGPT_LLM:-}" LLM --llm ANYGPT_LLM
ag_need_setting "$st" SpeechTokenizer --speechtokenizer ANYGPT_SPEECHTOKENIZER
ag_need_setting "${ANYGPT_SOUNDSTORM:-}" SoundStorm --soundstorm ANYGPT_SOUNDSTORM
[ -n "$text" ] || { echo "error: no text to speak" >&2; usage >&2; exit 2; }
[ -n "$output" ] || { echo "error: no output file (-o FILE.wav)" >&2; exit 2; }
voice_opts=()
if [ -n "$voice" ]; then
  ag_need_input "$voice"
  voice_opts=(voice-prompt="$voice" voice-prompt-tokenizer="$st")
fi
ag_use_build_tree
ag_find_run
exec "${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -- anygptllm name=llm model-path="$ANYGPT_LLM" device="$device" task=tts \
    prompt="$text" constrain-spans=true "${extra[@]}" \
  llm.speech_src ! soundstorm model-path="$ANYGPT_SOUNDSTORM" device="$device" "${voice_opts[@]}" ! \
  encodecdecode model-path="$st" device="$device" ! audioconvert ! audio/x-raw,format=S16LE ! \
  wavenc ! filesink location="$output"
