#!/usr/bin/env bash
# The voice assistant against a real sound server: a private PulseAudio daemon (tests/liveaudio/
# pulse-daemon.sh) with a "mic" null sink (the test speaks into it with paplay; the assistant
# records its monitor with pulsesrc) and a "speaker" null sink (the assistant plays into it with
# pulsesink; the test records its monitor with parecord). A loopback plays the speaker into the
# mic, as a room does: the assistant hears its own voice. Demo models, cpu.
#  A. half-duplex, energy VAD (--no-dsp): two utterances, each answered once; its own voice comes
#     back through the monitor and is cut as utterances, every one of them dropped (anygptllm-
#     dropped), never answered; the speaker recording holds both replies' audio.
#  B. barge-in with webrtcdsp / webrtcechoprobe (echo cancellation) and speechtokenize
#     segment=meta (skipped, saying so, when gst-plugins-bad's webrtcdsp is not installed): the
#     echo of the reply is not a turn (exactly the two utterances spoken become turns); speaking
#     while the reply plays cuts its audio short on the speaker and the new utterance is answered.
# Skips (exit 77) only when the PulseAudio daemon cannot start (the reason is printed).
# usage: test_live_audio.sh SOURCE_ROOT DEMO_MODELS_DIR PYTHON
set -uo pipefail
root=$1; export ANYGPT_MODELS=$2; py=$3
tmp=$(mktemp -d)
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
count() { grep -c "^$1, " "$2" 2> /dev/null || true; }
# wait_for N NAME FILE SECONDS: until FILE holds N messages NAME (1 when it does in time)
wait_for() {
  local i
  for i in $(seq $((${4} * 10))); do
    [ "$(count "$2" "$3")" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
for p in pulseaudio pactl paplay parecord; do
  command -v $p > /dev/null || { echo "# $p not installed (tools/setup-deps.sh: pulseaudio pulseaudio-utils)"; exit 1; }
done
. "$root/tests/liveaudio/pulse-daemon.sh"
cleanup() {
  [ -n "${VA:-}" ] && kill "$VA" 2> /dev/null
  [ -n "${REC:-}" ] && kill "$REC" 2> /dev/null
  pa_stop
  [ -n "${AG_KEEP_TMP:-}" ] && echo "# kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
if ! pa_start "$tmp/pulse"; then
  echo "# SKIP: the PulseAudio daemon did not start:"
  tail -5 "$tmp/pulse/pulse.log" 2> /dev/null | sed 's/^/#   /'
  exit 77
fi
echo "# pulseaudio $(pactl info | sed -n 's/^Server Version: //p') at $PULSE_SERVER"
# the room: what the speaker plays reaches the microphone 60 ms later
pactl load-module module-loopback source=speaker.monitor sink=mic latency_msec=60 > /dev/null
for k in 1 2; do "$py" "$root/pipelines/lib/make-utterances.py" "$tmp/u$k.wav" 1 "$k" 1.2; done

# session NAME ARGS...: starts the assistant on the mic monitor / speaker sink and the recorder
session() {
  local name=$1; shift
  parecord --device=speaker.monitor --rate=16000 --channels=1 --format=s16le --file-format=wav \
    "$tmp/$name-speaker.wav" &
  REC=$!
  "$root/pipelines/voice-assistant.sh" -d cpu --source "pulsesrc device=mic.monitor" \
    --sink "pulsesink device=speaker slave-method=none" -s 3 --messages "$tmp/$name.msg" "$@" \
    > "$tmp/$name.out" 2> "$tmp/$name.err" &
  VA=$!
  : > "$tmp/$name.msg"
  local i
  for i in $(seq 100); do   # recording: the assistant's pulsesrc is connected
    pactl list short source-outputs | grep -q "	.*	.*" && [ "$(pactl list short source-outputs | wc -l)" -ge 3 ] && break
    sleep 0.1
  done
  sleep 0.5
}
# end_session NAME: EOS (SIGINT to anygpt-run), then the recorder; RC_<NAME> the exit status
end_session() {
  kill -INT "$VA"; wait "$VA"; eval "RC_$1=$?"; VA=""
  sleep 0.3; kill -INT "$REC"; wait "$REC" 2> /dev/null; REC=""
}
# runs NAME: the lengths (s) of the non-silent stretches of the speaker recording, one a line
runs() {
  "$py" - "$tmp/$1-speaker.wav" <<'PY'
import sys, wave
import numpy as np
w = wave.open(sys.argv[1])
x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
f = x[: len(x) // 160 * 160].reshape(-1, 160)          # 10 ms windows
loud = np.sqrt((f ** 2).mean(1)) > 30                   # the null sink is exactly 0 when idle
runs, n = [], 0
for v in list(loud) + [False]:
    if v:
        n += 1
    elif n:
        if n >= 5:
            runs.append(n / 100)
        n = 0
print("\n".join("%.2f" % r for r in runs))
PY
}
samples() { grep "^encodecdecode, " "$1" | grep -o 'samples=(guint64)[0-9]*' | sed 's/.*)//'; }

# ---- A. half-duplex, energy VAD: the assistant's own voice is never a turn ----
session A --no-dsp --duplex half -n 60
paplay --device=mic "$tmp/u1.wav"
wait_for 1 encodecdecode "$tmp/A.msg" 20
sleep 3          # the reply plays, comes back through the monitor, the VAD closes it
paplay --device=mic "$tmp/u2.wav"
wait_for 2 encodecdecode "$tmp/A.msg" 20
sleep 2
end_session A
utt=$(count speechtokenize "$tmp/A.msg"); rep=$(count anygptllm "$tmp/A.msg"); drop=$(count anygptllm-dropped "$tmp/A.msg")
echo "# A: $utt utterances cut, $rep replies, $drop dropped; speaker runs: $(runs A | tr '\n' ' ')"
check "A: the assistant ran and stopped on EOS" '[ "$RC_A" = 0 ] || { tail -20 "$tmp/A.err"; false; }'
check "A: the two spoken utterances answered (2 replies)" '[ "$rep" = 2 ]'
check "A: its own voice came back and was cut as utterances ($((utt - 2)))" '[ "$utt" -gt 2 ]'
check "A: every one of those dropped (half-duplex), none answered" '[ "$drop" = $((utt - 2)) ] && grep -q "reason=(string)playing" "$tmp/A.msg"'
first=$(grep "^speechtokenize, " "$tmp/A.msg" | head -1 | grep -o 'frames=(guint64)[0-9]*' | sed 's/.*)//')
check "A: the first utterance arrived whole through pulsesrc ($first frames for 1.2 s)" '[ "${first:-0}" -ge 50 ] && [ "${first:-0}" -le 75 ]'
check "A: the speaker played both replies whole" \
  '[ "$(runs A | wc -l)" = 2 ] && "$py" -c "import sys; a = [float(v) for v in sys.argv[1].split()]; b = [int(v) / 16000 for v in sys.argv[2].split()]; sys.exit(0 if all(abs(x - y) <= 0.15 for x, y in zip(a, b)) else 1)" "$(runs A | tr "\n" " ")" "$(samples "$tmp/A.msg" | tr "\n" " ")"'

# ---- B. barge-in, webrtcdsp echo cancellation + segment=meta ----
if ! gst-inspect-1.0 webrtcdsp > /dev/null 2>&1 || ! gst-inspect-1.0 webrtcechoprobe > /dev/null 2>&1; then
  echo "# B skipped: webrtcdsp / webrtcechoprobe not installed (gstreamer1.0-plugins-bad)"
  exit $fail
fi
session B --duplex barge-in -n 400
paplay --device=mic "$tmp/u1.wav"
wait_for 1 encodecdecode "$tmp/B.msg" 20
sleep 1          # the reply plays (and echoes) for a second, then the user speaks over it
paplay --device=mic "$tmp/u2.wav"
wait_for 2 encodecdecode "$tmp/B.msg" 20
long=$(samples "$tmp/B.msg" | tail -1)
sleep "$("$py" -c "print(${long:-0} / 16000 + 1.5)")"   # the second reply plays out
end_session B
utt=$(count speechtokenize "$tmp/B.msg"); rep=$(count anygptllm "$tmp/B.msg")
echo "# B: $utt utterances, $rep replies, $(count voice-activity "$tmp/B.msg") voice-activity changes; reply samples $(samples "$tmp/B.msg" | tr '\n' ' '); speaker runs: $(runs B | tr '\n' ' ')"
check "B: the assistant ran with webrtcdsp and stopped on EOS" '[ "$RC_B" = 0 ] && grep -q "^voice-activity, " "$tmp/B.msg" || { tail -20 "$tmp/B.err"; false; }'
check "B: its echo is no turn: exactly the two spoken utterances cut (segment=meta)" '[ "$utt" = 2 ]'
check "B: both answered" '[ "$rep" = 2 ]'
read -r r1 r2 < <(runs B | tr '\n' ' ')
s1=$(samples "$tmp/B.msg" | head -1)
check "B: barge-in cut the first reply's audio short (${r1:-?} s played of $("$py" -c "print(${s1:-0} / 16000)") s)" \
  '"$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) + 1.0 < int(sys.argv[2]) / 16000 else 1)" "${r1:-99}" "${s1:-0}"'
# (the reply after a barge-in is stamped when anygptllm pushes it, ~0.25 s before its audio exists
# on the demo models; encodecdecode moves a late item to now in a live pipeline, so none of it is
# clipped: the same 0.15 s as in A)
check "B: the second reply played whole (${r2:-?} s)" \
  '"$py" -c "import sys; sys.exit(0 if abs(float(sys.argv[1]) - int(sys.argv[2]) / 16000) <= 0.15 else 1)" "${r2:-0}" "${long:-0}"'
exit $fail
