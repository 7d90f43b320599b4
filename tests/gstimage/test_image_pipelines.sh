#!/usr/bin/env bash
# The image generation scripts end to end on the demo model set (tools/make-demo-models.sh:
# seed-unclip.gguf makes 64x64 images), on one device:
#  - text-to-image.sh "a cat": exit 0, a 64x64 RGB PNG (the model's size) that is not flat, the
#    LLM's image item and the seeddiffuse message (seed, 21 evaluations for 20 steps), the
#    progress lines on stderr; the same LLM seed and image seed again: the same PNG (cpu; on
#    vulkan one image of 2 steps: lavapipe is slow);
#  - cpu only from here:
#  - the fresh-clone path: no model configured at all -> the build tree's demo set, with the
#    DEMO MODELS banner (a build dir of links to this one's plugin, tools and demo models);
#  - image-resynth.sh on a PNG: a 64x64 PNG, the seedtokenize codes went through (messages);
#    on a video file: one PNG of its first frame (pngenc snapshot=true ends the stream);
#  - chat.sh --images DIR: replies as usual, one PNG per complete image item of the replies
#    (the demo LLM rarely writes any in a chat: the count may be 0);
#  - --help; bad input: a file that is no image, a missing decoder model, an LLM file as the
#    decoder: "ERROR from element ...", exit status 1, no crash.
# usage: test_image_pipelines.sh SOURCE_ROOT DEMO_MODELS_DIR PYTHON DEVICE
set -uo pipefail
root=$1; export ANYGPT_MODELS=$2; py=$3; dev=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok - $dev: $1"; else echo "not ok - $dev: $1"; fail=1; fi; }
if [ "$dev" = vulkan ] && ! vulkaninfo --summary > /dev/null 2>&1 && [ "${AG_REQUIRE_VULKAN:-0}" != 1 ]; then
  echo "# vulkan: no device, skipped"
  exit 77
fi
build=${AG_BUILD_DIR:?}
export GST_PLUGIN_PATH=$build/gst
# png FILE: "WIDTH HEIGHT MODE MIN MAX" of a PNG
png() { "$py" -c 'import sys, numpy as np; from PIL import Image
im = Image.open(sys.argv[1]); a = np.asarray(im)
print(im.width, im.height, im.mode, a.min(), a.max())' "$1" 2> /dev/null; }
# field NAME KEY FILE: the values of KEY in the messages named NAME, one per line
field() { grep "^$1, " "$3" | grep -o " $2=([a-z0-9]*)[^,;]*" | sed 's/^[^)]*)//'; }
steps=()
[ "$dev" = vulkan ] && steps=(--steps 2)
# items.py MESSAGES: the image items of the anygptllm replies that have 32 codes (gst_structure
# strings unescaped), as "N" (with --sizes: every item's code count, one a line)
cat > "$tmp/items.py" <<'PY'
import re, sys
def unesc(b):
    return re.sub(rb"\\([0-7]{3}|.)", lambda m: bytes([int(m.group(1), 8)]) if len(m.group(1)) == 3 else m.group(1), b)
sizes = []
for line in open(sys.argv[1], "rb").read().split(b"\n"):
    m = re.search(rb' reply=\(string\)"((?:[^"\\]|\\.)*)"', line) if line.startswith(b"anygptllm, ") else None
    if not m:
        continue
    reply = unesc(m.group(1)).decode("utf-8", "replace")
    for span in re.finditer(r"<soim>(.*?)(?:<eoim>|$)", reply, re.S):
        sizes.append(len(re.findall("<\U0001F440[0-9]+>", span.group(1))))
if "--sizes" in sys.argv:
    print("\n".join(map(str, sizes)))
else:
    print(sum(1 for n in sizes if n == 32))
PY

# ---- text-to-image.sh ----
ANYGPT_MESSAGES=$tmp/t2i.msg "$root/pipelines/text-to-image.sh" -d "$dev" -s 1 --image-seed 5 "${steps[@]}" \
  -o "$tmp/cat.png" "a cat" > /dev/null 2> "$tmp/err"
rc=$?
check "text-to-image.sh exits 0" '[ $rc = 0 ] || { cat "$tmp/err"; false; }'
info=$(png "$tmp/cat.png")
echo "# cat.png: $info"
check "a 64x64 RGB PNG, not flat" '[ "${info% * *}" = "64 64 RGB" ] && [ "${info##* }" -gt "$(echo "$info" | cut -d" " -f4)" ]'
check "one image item of 32 codes from the LLM" '[ "$("$py" "$tmp/items.py" "$tmp/t2i.msg" --sizes)" = 32 ]'
evals=21
[ "$dev" = vulkan ] && evals=3
check "one seeddiffuse message: seed 5, $evals evaluations" \
  '[ "$(field seeddiffuse seed "$tmp/t2i.msg")" = 5 ] && [ "$(field seeddiffuse evaluations "$tmp/t2i.msg")" = $evals ]'
check "$evals progress messages, progress printed" \
  '[ "$(grep -c "^seeddiffuse-progress, " "$tmp/t2i.msg")" = $evals ] && grep -q "^image 1: step $evals/$evals" "$tmp/err" && grep -q "^image 1: 64x64, seed 5, $evals UNet evaluations" "$tmp/err"'
[ "$dev" = cpu ] || exit $fail
"$root/pipelines/text-to-image.sh" -d cpu -s 1 --image-seed 5 -o "$tmp/cat2.png" "a cat" > /dev/null 2> "$tmp/err"
check "the same seeds again: the same PNG" 'cmp -s "$tmp/cat.png" "$tmp/cat2.png" || { cat "$tmp/err"; false; }'

# ---- the fresh-clone path: no model configured ----
mkdir -p "$tmp/b"
ln -s "$build/gst" "$tmp/b/gst"
ln -s "$build/tools" "$tmp/b/tools"
ln -s "$ANYGPT_MODELS" "$tmp/b/demo-models"
( unset ANYGPT_MODELS ANYGPT_LLM ANYGPT_SEED_UNCLIP
  AG_BUILD_DIR=$tmp/b "$root/pipelines/text-to-image.sh" -s 1 -o "$tmp/fresh.png" "a cat" ) > /dev/null 2> "$tmp/err"
rc=$?
check "no model configured: the demo set, with its banner" \
  '[ $rc = 0 ] && grep -q "DEMO MODELS in $tmp/b/demo-models" "$tmp/err" && [ "$(png "$tmp/fresh.png" | cut -d" " -f1-2)" = "64 64" ] || { cat "$tmp/err"; false; }'

# ---- image-resynth.sh ----
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=200,height=150 ! \
  pngenc ! filesink location="$tmp/in.png"
ANYGPT_MESSAGES=$tmp/rs.msg "$root/pipelines/image-resynth.sh" -d cpu -s 2 "$tmp/in.png" "$tmp/out.png" \
  > /dev/null 2> "$tmp/err"
rc=$?
info=$(png "$tmp/out.png")
echo "# image-resynth out.png: $info"
check "image-resynth.sh: exit 0, a 64x64 RGB PNG" '[ $rc = 0 ] && [ "${info% * *}" = "64 64 RGB" ] || { cat "$tmp/err"; false; }'
check "image-resynth.sh: tokenized once, drawn once" \
  '[ "$(grep -c "^seedtokenize, " "$tmp/rs.msg")" = 1 ] && [ "$(field seeddiffuse seed "$tmp/rs.msg")" = 2 ]'
gst-launch-1.0 -q videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
  vp8enc deadline=1 ! matroskamux ! filesink location="$tmp/in.mkv"
ANYGPT_MESSAGES=$tmp/rsv.msg timeout 60 "$root/pipelines/image-resynth.sh" -d cpu --steps 2 "$tmp/in.mkv" \
  "$tmp/outv.png" > /dev/null 2> "$tmp/err"
rc=$?
check "image-resynth.sh on a video: one PNG (the first frame), the stream ends" \
  '[ $rc = 0 ] && [ "$(png "$tmp/outv.png" | cut -d" " -f1-2)" = "64 64" ] && [ "$(grep -c "^seeddiffuse, " "$tmp/rsv.msg")" = 1 ] || { cat "$tmp/err"; false; }'

# ---- chat.sh --images ----
echo "Draw a picture of a cat." | ANYGPT_MESSAGES=$tmp/chat.msg "$root/pipelines/chat.sh" -d cpu -n 40 -s 3 \
  --images "$tmp/pics" > "$tmp/reply" 2> "$tmp/err"
rc=$?
items=$("$py" "$tmp/items.py" "$tmp/chat.msg")
pngs=$(ls "$tmp/pics" 2> /dev/null | grep -c "^image-[0-9]*\.png$")
echo "# chat.sh --images: $items whole image items in the replies, $pngs PNGs"
# (the random demo LLM's reply may hold no text at all, only modality tokens: which depends on
# the cpu kernels' rounding, so the check is the reply message, not its text)
check "chat.sh --images: a reply, one PNG per image item" \
  '[ $rc = 0 ] && grep -q "^anygptllm, .*reply=" "$tmp/chat.msg" && [ "$pngs" = "$items" ] || { cat "$tmp/err"; false; }'

# ---- --help and bad input ----
for s in text-to-image image-resynth; do
  check "$s.sh --help" '"$root/pipelines/$s.sh" --help | grep -q "^usage:"'
done
echo "this is not a picture" > "$tmp/notes.txt"
"$root/pipelines/image-resynth.sh" -d cpu "$tmp/notes.txt" "$tmp/x.png" > /dev/null 2> "$tmp/err"
rc=$?
check "image-resynth.sh on a file that is no image: GStreamer error, exit 1" \
  '[ $rc = 1 ] && grep -q "^ERROR from element" "$tmp/err" || { cat "$tmp/err"; false; }'
"$root/pipelines/text-to-image.sh" -d cpu --seed-unclip "$tmp/missing.gguf" -o "$tmp/x.png" "a cat" > /dev/null 2> "$tmp/err"
rc=$?
check "a missing decoder model: error naming it, exit 1" \
  '[ $rc = 1 ] && grep -q "^ERROR from element seeddiffuse" "$tmp/err" && grep -q "missing.gguf" "$tmp/err" || { cat "$tmp/err"; false; }'
"$root/pipelines/image-resynth.sh" -d cpu --seed-unclip "$ANYGPT_MODELS/anygpt-llm.gguf" "$tmp/in.png" "$tmp/x.png" \
  > /dev/null 2> "$tmp/err"
rc=$?
check "an LLM file as the decoder: error, exit 1" \
  '[ $rc = 1 ] && grep -q "^ERROR from element seeddiffuse" "$tmp/err" && grep -q "expected .seed-unclip." "$tmp/err" || { cat "$tmp/err"; false; }'
exit $fail
