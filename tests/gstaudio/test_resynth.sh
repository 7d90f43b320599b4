#!/usr/bin/env bash
# pipelines/speech-resynth.sh on the tiny SpeechTokenizer GGUF: a 1 s 44.1 kHz stereo tone goes
# through decodebin/resample/tokens/decode and must come out as a 16 kHz mono WAV of a whole
# number of 320-sample frames, ~1 s long and not silent. Also the scripts' --help and refusals
# (no model; music-resynth given a speech model).
# usage: test_resynth.sh SRCDIR BUILDDIR SPEECHTOKENIZER.gguf PYTHON
set -uo pipefail
src=$1 build=$2 model=$3 py=$4
export GST_PLUGIN_PATH="$build/gst"  # system plugins too: decodebin, audioresample, wavenc
export GST_REGISTRY_1_0="$build/tests/gstaudio/registry-resynth.bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# the input: 1 s, 44.1 kHz, stereo, S16 (the script must convert all of that)
gst-launch-1.0 -q audiotestsrc num-buffers=10 samplesperbuffer=4410 freq=220 volume=0.5 ! \
  audio/x-raw,rate=44100,channels=2,format=S16LE ! wavenc ! filesink location="$tmp/in.wav" || exit 1

check "speech-resynth.sh --help" bash -c "'$src/pipelines/speech-resynth.sh' --help | grep -q ANYGPT_SPEECHTOKENIZER"
check "music-resynth.sh --help" bash -c "'$src/pipelines/music-resynth.sh' --help | grep -q ANYGPT_ENCODEC"
check "speech-resynth.sh without a model exits 2" bash -c \
  "env -u ANYGPT_SPEECHTOKENIZER '$src/pipelines/speech-resynth.sh' '$tmp/in.wav' '$tmp/x.wav'; [ \$? = 2 ]"
check "music-resynth.sh refuses a speech model" bash -c \
  "! '$src/pipelines/music-resynth.sh' -m '$model' -d cpu '$tmp/in.wav' '$tmp/m.wav' 2>'$tmp/err' && grep -q '16000 Hz' '$tmp/err'"

check "speech-resynth.sh runs" env ANYGPT_SPEECHTOKENIZER="$model" \
  "$src/pipelines/speech-resynth.sh" -d cpu "$tmp/in.wav" "$tmp/out.wav"
check "output WAV: 16 kHz mono S16, whole frames, ~1 s, not silent" "$py" - "$tmp/out.wav" <<'PY'
import array, sys, wave
w = wave.open(sys.argv[1])
rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
x = array.array('h', w.readframes(n))
peak = max(abs(v) for v in x) if x else 0
print(f"# out.wav: {rate} Hz, {ch} ch, {8 * width} bit, {n} samples, peak {peak}")
sys.exit(0 if (rate, ch, width) == (16000, 1, 2) and n % 320 == 0 and abs(n - 16000) <= 320 and peak > 100 else 1)
PY
exit $fail
