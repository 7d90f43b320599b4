#!/usr/bin/env bash
# The two embedding apps of pipelines/apps on the demo model set (cpu):
#  voice-chat.py (PyGObject, Debian's python3-gi):
#   - three synthesized utterances in queue mode: three replies with text lines, three latencies;
#   - --after-turn 1:history=0 lands before turn 2: prompts 2 and 3 hold no earlier turn, while
#     without it prompt 2 repeats turn 1 and prompt 3 both earlier turns; the element reads back
#     the new duplex (--after-turn 2:duplex=half);
#   - half-duplex on two utterances: one reply, "dropped 2";
#   - a missing model: exit 1, the error names the file;
#  anygpt-caption-frames (C, appsrc -> appsink):
#   - three frames 2 s apart: three captions timed [0,2) [2,4) [4,6), each equal to what
#     caption-image.sh says about the same picture (same seed: the elements get the frames whole);
#   - a truncated PPM: exit 1 with an error naming the file.
# usage: test_apps.sh SOURCE_ROOT DEMO_MODELS_DIR CAPTION_APP PYTHON
set -uo pipefail
root=$1 models=$2 capapp=$3 py=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
# prompt_turns MSGFILE: for each anygptllm message, how many user turns its prompt holds (escaped
# by gst_structure_to_string: \[Human\]:)
prompt_turns() { grep '^anygptllm, ' "$1" | awk '{ print gsub(/\\\[Human\\\]:/, "") }' | tr '\n' ' '; }
app=$root/pipelines/apps/voice-chat.py
export ANYGPT_MODELS=$models
if ! "$py" -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' 2> /dev/null; then
  echo "# $py has no PyGObject with GStreamer (python3-gi, gir1.2-gstreamer-1.0: tools/setup-deps.sh)"
  exit 1
fi

"$py" "$root/pipelines/lib/make-utterances.py" "$tmp/three.wav" 3
"$py" "$root/pipelines/lib/make-utterances.py" "$tmp/two.wav" 2

# ---- voice-chat.py ----
"$py" "$app" -d cpu -i "$tmp/three.wav" -o "$tmp/r0.wav" -n 40 -s 3 --messages "$tmp/m0" > "$tmp/o0" 2> "$tmp/e0"
rc=$?
check "voice-chat.py: three turns, exit 0" '[ $rc = 0 ] && [ "$(grep -c "^reply [123]: " "$tmp/o0")" = 3 ] || { cat "$tmp/o0" "$tmp/e0"; false; }'
check "voice-chat.py: a latency for each turn" '[ "$(grep -cE "^latency [123]: [0-9]+\.[0-9]{3} s$" "$tmp/o0")" = 3 ]'
check "voice-chat.py: the reply WAV holds the decoded audio" '[ "$(stat -c %s "$tmp/r0.wav")" -gt 1000 ]'
check "default history: prompts hold 1, 2, 3 user turns ($(prompt_turns "$tmp/m0"))" '[ "$(prompt_turns "$tmp/m0")" = "1 2 3 " ]'
"$py" "$app" -d cpu -i "$tmp/three.wav" -o "$tmp/r1.wav" -n 40 -s 3 --messages "$tmp/m1" \
  --after-turn 1:history=0 --after-turn 2:duplex=half > "$tmp/o1" 2> "$tmp/e1"
rc=$?
check "voice-chat.py --after-turn: exit 0, three replies" '[ $rc = 0 ] && [ "$(grep -c "^reply [123]: " "$tmp/o1")" = 3 ] || { cat "$tmp/o1" "$tmp/e1"; false; }'
check "history=0 after reply 1: prompts hold 1, 1, 1 user turns ($(prompt_turns "$tmp/m1"))" '[ "$(prompt_turns "$tmp/m1")" = "1 1 1 " ]'
check "the element reads back the changes" 'grep -qx "set 1: history=0" "$tmp/o1" && grep -qx "set 2: duplex=half" "$tmp/o1"'
check "turn 1 is the same reply either way" '[ "$(grep "^reply 1: " "$tmp/o0")" = "$(grep "^reply 1: " "$tmp/o1")" ]'
"$py" "$app" -d cpu -i "$tmp/two.wav" -o "$tmp/r2.wav" -n 80 -s 3 --duplex half > "$tmp/o2" 2> "$tmp/e2"
rc=$?
check "voice-chat.py --duplex half: one reply, the second utterance dropped" \
  '[ $rc = 0 ] && [ "$(grep -c "^reply " "$tmp/o2")" = 1 ] && grep -qx "dropped 2" "$tmp/o2" || { cat "$tmp/o2" "$tmp/e2"; false; }'
"$py" "$app" -d cpu -i "$tmp/two.wav" -o "$tmp/r3.wav" --llm "$tmp/missing.gguf" > "$tmp/o3" 2> "$tmp/e3"
rc=$?
check "voice-chat.py with a missing model: exit 1 naming it" '[ $rc = 1 ] && grep -q "^error: .*missing.gguf" "$tmp/e3" || { cat "$tmp/e3"; false; }'

# ---- anygpt-caption-frames ----
"$py" - "$tmp" <<'PY'
import sys
import numpy as np
from PIL import Image
for i in range(3):
    a = (np.random.RandomState(i).rand(48 + 8 * i, 64, 3) * 255).astype("uint8")
    Image.fromarray(a).save("%s/f%d.ppm" % (sys.argv[1], i))
    Image.fromarray(a).save("%s/f%d.png" % (sys.argv[1], i))
PY
"$capapp" -d cpu -s 2 -n 40 "$tmp/f0.ppm" "$tmp/f1.ppm" "$tmp/f2.ppm" > "$tmp/cap" 2> "$tmp/cap.err"
rc=$?
check "caption app: three captions, exit 0" '[ $rc = 0 ] && [ "$(wc -l < "$tmp/cap")" = 3 ] || { cat "$tmp/cap" "$tmp/cap.err"; false; }'
check "caption app: timed at the frames, each until the next ($(cut -d" " -f1-2 "$tmp/cap" | tr "\n" ","))" \
  '[ "$(cut -d" " -f1-2 "$tmp/cap" | tr "\n" ",")" = "0.000 2.000,2.000 4.000,4.000 6.000," ]'
same=1; nonempty=0
for i in 0 1 2; do
  want=$("$root/pipelines/caption-image.sh" -d cpu -s 2 -n 40 "$tmp/f$i.png" 2> /dev/null | tr '\r\n' '  ' | sed 's/^ *//; s/ *$//')
  got=$(sed -n "$((i + 1))p" "$tmp/cap" | cut -d" " -f3-)
  [ "$got" = "$want" ] || { echo "# frame $i: app '$got', caption-image.sh '$want'"; same=0; }
  [ -n "$got" ] && nonempty=$((nonempty + 1))
done
check "caption app: each caption is caption-image.sh's for that picture ($nonempty not empty)" '[ $same = 1 ] && [ $nonempty -ge 1 ]'
head -c 40 "$tmp/f1.ppm" > "$tmp/cut.ppm"
"$capapp" -d cpu "$tmp/f0.ppm" "$tmp/cut.ppm" > /dev/null 2> "$tmp/cut.err"
rc=$?
check "caption app: a truncated PPM: exit 1 naming it" '[ $rc = 1 ] && grep -q "cut.ppm" "$tmp/cut.err" || { cat "$tmp/cut.err"; false; }'
exit $fail
