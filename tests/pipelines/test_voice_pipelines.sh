#!/usr/bin/env bash
# The voice assistant and the task scripts end to end on the demo model set (tiny random models
# through the real converters; tools/make-demo-models.sh), on one device:
#  - voice-assistant.sh on a synthesized two-utterance WAV: two turns, each a reply message and
#    a non-empty 16 kHz audio item; the second prompt holds the first turn (user message and
#    reply); the WAV holds exactly the items' samples; the latency of both turns is printed;
#  - the same under valgrind on cpu (definite leaks and invalid accesses fail);
#  - half-duplex: the same file with --duplex half: the second utterance arrives while the first
#    reply is generated / played, so it is dropped (one turn, one anygptllm-dropped message);
#  - asr.sh / music-to-text.sh reply; tts.sh writes 16 kHz speech, text-to-music.sh 32 kHz music,
#    whole frames;
#  - bad input (cpu only): a non-audio file, a missing model, a model of another architecture: a GStreamer
#    error naming the problem, exit status 1, no crash (a signal gives > 128).
# usage: test_voice_pipelines.sh SOURCE_ROOT DEMO_MODELS_DIR PYTHON DEVICE
set -uo pipefail
root=$1; export ANYGPT_MODELS=$2; py=$3; dev=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok - $dev: $1"; else echo "not ok - $dev: $1"; fail=1; fi; }
# wavinfo FILE: "RATE FRAMES"
wavinfo() { "$py" -c 'import sys, wave; w = wave.open(sys.argv[1]); print(w.getframerate(), w.getnframes())' "$1"; }
# field NAME KEY FILE: the values of KEY in the messages named NAME, one per line
field() { grep "^$1, " "$3" | grep -o "$2=([a-z0-9]*)[^,;]*" | sed 's/^[^)]*)//'; }

"$py" "$root/pipelines/lib/make-utterances.py" "$tmp/two.wav" 2
if [ "$dev" = vulkan ] && ! vulkaninfo --summary > /dev/null 2>&1 && [ "${AG_REQUIRE_VULKAN:-0}" != 1 ]; then
  echo "# vulkan: no device, skipped"
  exit 77
fi

# ---- two turns ----
"$root/pipelines/voice-assistant.sh" -d "$dev" -i "$tmp/two.wav" -o "$tmp/reply.wav" -n 80 -s 3 \
  --messages "$tmp/msg" > "$tmp/out" 2> "$tmp/err"
rc=$?
check "voice assistant exits 0" '[ $rc = 0 ] || { cat "$tmp/err"; false; }'
check "two utterances" '[ "$(grep -c "^speechtokenize, " "$tmp/msg")" = 2 ]'
check "two replies" '[ "$(grep -c "^anygptllm, " "$tmp/msg")" = 2 ] && [ "$(wc -l < "$tmp/out")" = 2 ]'
check "two audio items at 16 kHz" '[ "$(field encodecdecode rate "$tmp/msg" | tr "\n" " ")" = "16000 16000 " ]'
check "each audio item has samples" '! field encodecdecode samples "$tmp/msg" | grep -qx 0 && [ "$(field encodecdecode samples "$tmp/msg" | wc -l)" = 2 ]'
total=$(( $(field encodecdecode samples "$tmp/msg" | paste -sd+) + 0 ))
check "the WAV is 16 kHz and holds both items ($total samples)" '[ "$(wavinfo "$tmp/reply.wav")" = "16000 $total" ]'
# the replies and prompts, unescaped from gst_structure_to_string: every reply ends in a speech
# span after "<eot>\n"; the second prompt repeats the first turn (its user message and reply)
cat > "$tmp/turns.py" <<'PY'
import re, sys
def unesc(b):
    return re.sub(rb"\\([0-7]{3}|.)", lambda m: bytes([int(m.group(1), 8)]) if len(m.group(1)) == 3 else m.group(1), b)
def field(line, key):
    m = re.search(rb" " + key.encode() + rb'=\(string\)"((?:[^"\\]|\\.)*)"', line)
    return unesc(m.group(1)).decode("utf-8", "replace") if m else None
lines = [l for l in open(sys.argv[1], "rb").read().split(b"\n") if l.startswith(b"anygptllm, ")]
prompts, replies = [field(l, "prompt") for l in lines], [field(l, "reply") for l in lines]
what = sys.argv[2]
if what == "speech":
    # the span ends at <eosp>, or at max-new-tokens (then without it)
    speech = re.compile("<eot> *\n<sosp>(<\U0001F5E3\uFE0F[0-9]+>)+(<eosp>)?$")
    bad = [r for r in replies if not r or not speech.search(r)]
    for r in bad:
        print("reply:", repr(r))
    sys.exit(1 if bad or len(replies) != 2 else 0)
if what == "history":
    user1 = prompts[0].rsplit("[Human]: ", 1)[1].split("<eoh>")[0]
    want = "[Human]: " + user1 + "<eoh>\n[MMGPT]: " + replies[0] + "<eos>\n[Human]: "
    ok = want in prompts[1] and prompts[1].count("[Human]: ") == 2
    if not ok:
        print("prompt 2:", repr(prompts[1][:600]), "\nwanted:", repr(want[:600]))
    sys.exit(0 if ok else 1)
PY
check "every reply ends in a speech span after <eot>" '"$py" "$tmp/turns.py" "$tmp/msg" speech'
check "the second prompt holds the first turn (user message and reply)" '"$py" "$tmp/turns.py" "$tmp/msg" history'
check "latency printed for both turns" '[ "$(grep -c "^turn [12]: end of speech -> first audio" "$tmp/err")" = 2 ]'

# ---- the same under valgrind (cpu): no invalid access, no definite leak of ours ----
if [ "$dev" = cpu ] && command -v valgrind > /dev/null; then
  supp="--suppressions=$root/tests/pipelines/system.supp"
  [ -f /usr/share/glib-2.0/valgrind/glib.supp ] && supp="$supp --suppressions=/usr/share/glib-2.0/valgrind/glib.supp"
  # OpenBLAS's SSE3 kernels: 2.4x faster than its AVX2 ones under valgrind (tools/stress.sh)
  OPENBLAS_CORETYPE=Prescott \
  AG_RUN_WRAP="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite $supp" \
    "$root/pipelines/voice-assistant.sh" -d cpu -i "$tmp/two.wav" -o "$tmp/vg.wav" -n 30 -s 3 \
    --messages "$tmp/msg-vg" > /dev/null 2> "$tmp/err-vg"
  rc=$?
  check "valgrind: two turns, no invalid access, no definite leak" \
    '[ $rc = 0 ] && [ "$(grep -c "^encodecdecode, " "$tmp/msg-vg")" = 2 ] || { grep -A20 "==[0-9]*== [A-Z0-9]" "$tmp/err-vg" | head -60; false; }'
fi

# ---- streamed speech: the same two turns with --speech-chunk 5 ----
# same seed, same replies: the same speech tokens reach SoundStorm in chunks, so the audio has the
# same length; each turn's latency comes from its first chunk
"$root/pipelines/voice-assistant.sh" -d "$dev" -i "$tmp/two.wav" -o "$tmp/stream.wav" -n 80 -s 3 \
  --speech-chunk 5 --messages "$tmp/msgs" > "$tmp/outs" 2> "$tmp/errs"
rc=$?
check "--speech-chunk 5 exits 0 with the same two replies" \
  '[ $rc = 0 ] && cmp -s "$tmp/out" "$tmp/outs" || { cat "$tmp/errs"; false; }'
check "--speech-chunk 5: soundstorm and the decoder worked in chunks" \
  '[ "$(grep -c "^soundstorm, " "$tmp/msgs")" -gt 2 ] && [ "$(grep -c "^encodecdecode, " "$tmp/msgs")" -gt 2 ]'
check "--speech-chunk 5: the WAV as long as the whole-item one" \
  '[ "$(wavinfo "$tmp/stream.wav")" = "16000 $total" ]'
check "--speech-chunk 5: latency printed for both turns" \
  '[ "$(grep -c "^turn [12]: end of speech -> first audio" "$tmp/errs")" = 2 ]'

# ---- half-duplex: the second utterance comes while the first reply is busy ----
"$root/pipelines/voice-assistant.sh" -d "$dev" -i "$tmp/two.wav" -o "$tmp/half.wav" -n 80 -s 3 \
  --duplex half --messages "$tmp/msg2" > "$tmp/out2" 2> "$tmp/err2"
rc=$?
check "half-duplex exits 0" '[ $rc = 0 ] || { cat "$tmp/err2"; false; }'
check "half-duplex: one reply, one dropped utterance" \
  '[ "$(grep -c "^anygptllm, " "$tmp/msg2")" = 1 ] && [ "$(grep -c "^anygptllm-dropped, " "$tmp/msg2")" = 1 ] && grep -q "dropped" "$tmp/err2"'

# ---- task scripts (asr and music-to-text run the same elements as above: cpu only) ----
if [ "$dev" = cpu ]; then
ANYGPT_MESSAGES=$tmp/asr.msg "$root/pipelines/asr.sh" -d "$dev" -n 12 "$tmp/two.wav" > "$tmp/asr" 2> "$tmp/err"
rc=$?
check "asr.sh answers" '[ $rc = 0 ] && grep -q "task=(string)asr" "$tmp/asr.msg" && [ "$(wc -l < "$tmp/asr")" = 1 ] || { cat "$tmp/err"; false; }'
ANYGPT_MESSAGES=$tmp/m2t.msg "$root/pipelines/music-to-text.sh" -d "$dev" -n 12 "$tmp/two.wav" > "$tmp/m2t" 2> "$tmp/err"
rc=$?
check "music-to-text.sh answers" '[ $rc = 0 ] && grep -q "task=(string)music-caption" "$tmp/m2t.msg" || { cat "$tmp/err"; false; }'
fi
"$root/pipelines/tts.sh" -d "$dev" -n 40 -s 1 -o "$tmp/tts.wav" "ka lo mi ne" 2> "$tmp/err"
rc=$?
read -r rate frames < <(wavinfo "$tmp/tts.wav" 2> /dev/null || echo "0 0")
check "tts.sh writes 16 kHz speech of whole 20 ms frames ($frames samples)" \
  '[ $rc = 0 ] && [ "$rate" = 16000 ] && [ "$frames" -gt 0 ] && [ $((frames % 320)) = 0 ] || { cat "$tmp/err"; false; }'
[ "$dev" = cpu ] &&
  "$root/pipelines/tts.sh" -d "$dev" -n 40 -s 1 -v "$tmp/two.wav" -o "$tmp/tts-voice.wav" "ka lo mi ne" 2> "$tmp/err"
rc=$?
[ "$dev" = cpu ] && check "tts.sh with a voice prompt" '[ $rc = 0 ] && [ "$(wavinfo "$tmp/tts-voice.wav" | cut -d" " -f1)" = 16000 ] || { cat "$tmp/err"; false; }'
"$root/pipelines/text-to-music.sh" -d "$dev" -n 64 -s 1 -o "$tmp/music.wav" "a calm piano" 2> "$tmp/err"
rc=$?
read -r rate frames < <(wavinfo "$tmp/music.wav" 2> /dev/null || echo "0 0")
check "text-to-music.sh writes 32 kHz music of whole frames ($frames samples)" \
  '[ $rc = 0 ] && [ "$rate" = 32000 ] && [ "$frames" -gt 0 ] && [ $((frames % 640)) = 0 ] || { cat "$tmp/err"; false; }'
# --help and bad input do not depend on the device: cpu only (lavapipe is slow)
[ "$dev" = cpu ] || exit $fail
for s in voice-assistant asr tts text-to-music music-to-text; do
  check "$s.sh --help" '"$root/pipelines/$s.sh" --help | grep -q "^usage:"'
done

# ---- bad input ----
echo "this is not audio" > "$tmp/notes.txt"
"$root/pipelines/asr.sh" -d "$dev" "$tmp/notes.txt" > /dev/null 2> "$tmp/err"
rc=$?
check "a non-audio file: GStreamer error, exit 1" '[ $rc = 1 ] && grep -q "^ERROR from element" "$tmp/err" || { cat "$tmp/err"; false; }'
"$root/pipelines/voice-assistant.sh" -d "$dev" -i "$tmp/two.wav" -o "$tmp/x.wav" --llm "$tmp/missing.gguf" > /dev/null 2> "$tmp/err"
rc=$?
check "a missing model: GStreamer error naming it, exit 1" '[ $rc = 1 ] && grep -q "^ERROR from element" "$tmp/err" && grep -q "missing.gguf" "$tmp/err" || { cat "$tmp/err"; false; }'
"$root/pipelines/voice-assistant.sh" -d "$dev" -i "$tmp/two.wav" -o "$tmp/x.wav" --soundstorm "$ANYGPT_MODELS/anygpt-llm.gguf" > /dev/null 2> "$tmp/err"
rc=$?
check "an LLM file as SoundStorm: GStreamer error, exit 1" '[ $rc = 1 ] && grep -q "^ERROR from element" "$tmp/err" || { cat "$tmp/err"; false; }'
"$root/pipelines/text-to-music.sh" -d "$dev" -o "$tmp/x.wav" --encodec "$ANYGPT_MODELS/speechtokenizer.gguf" "x" > /dev/null 2> "$tmp/err"
rc=$?
check "a SpeechTokenizer file as Encodec for music: error, exit 1" '[ $rc = 1 ] && grep -q "^ERROR from element" "$tmp/err" || { cat "$tmp/err"; false; }'
exit $fail
