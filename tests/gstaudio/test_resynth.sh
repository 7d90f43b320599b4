#!/usr/bin/env bash
# pipelines/speech-resynth.sh on the tiny SpeechTokenizer GGUF: a 1 s 44.1 kHz stereo tone goes
# through decodebin/resample/tokens/decode and must come out as a 16 kHz mono WAV of a whole
# number of 320-sample frames, ~1 s long and not silent. Also the scripts' --help and refusals
# (no model; music-resynth given a speech model).
# With an Encodec GGUF, pipelines/music-resynth.sh likewise (32 kHz) and with --clip-length 0.5.
# usage: test_resynth.sh SRCDIR BUILDDIR SPEECHTOKENIZER.gguf PYTHON [ENCODEC.gguf]
set -uo pipefail
src=$1 build=$2 model=$3 py=$4 encodec=${5:-}
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
# wav_ok FILE RATE HOP SAMPLES: mono S16 at RATE, whole HOP frames, SAMPLES +- one frame, not silent
wav_ok() {
  "$py" - "$@" <<'PY'
import array, sys, wave
path, want_rate, hop, want_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
w = wave.open(path)
rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
x = array.array('h', w.readframes(n))
peak = max(abs(v) for v in x) if x else 0
print(f"# {path}: {rate} Hz, {ch} ch, {8 * width} bit, {n} samples, peak {peak}")
sys.exit(0 if (rate, ch, width) == (want_rate, 1, 2) and n % hop == 0 and abs(n - want_n) <= hop
         and peak > 100 else 1)
PY
}
check "speech WAV: 16 kHz mono S16, whole frames, ~1 s, not silent" wav_ok "$tmp/out.wav" 16000 320 16000

if [ -n "$encodec" ]; then
  check "music-resynth.sh runs" env ANYGPT_ENCODEC="$encodec" \
    "$src/pipelines/music-resynth.sh" -d cpu "$tmp/in.wav" "$tmp/music.wav"
  check "music WAV: 32 kHz mono S16, whole frames, ~1 s, not silent" wav_ok "$tmp/music.wav" 32000 640 32000
  check "music-resynth.sh --clip-length 0.5" env ANYGPT_ENCODEC="$encodec" \
    "$src/pipelines/music-resynth.sh" -d cpu -c 0.5 "$tmp/in.wav" "$tmp/clip.wav"
  check "clipped WAV: 0.5 s" wav_ok "$tmp/clip.wav" 32000 640 16000
else
  echo "# no Encodec model: music-resynth.sh only checked for --help and refusals"
fi
exit $fail
