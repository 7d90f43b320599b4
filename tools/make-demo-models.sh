#!/usr/bin/env bash
# make-demo-models.sh OUTDIR: a coherent set of tiny RANDOM-WEIGHT AnyGPT models, written as the
# published checkpoint layouts by the independent PyTorch generators of tests/reference/ and
# converted by the real converter (anygpt-convert), so the whole voice pipeline runs end to end
# without a download. They are DEMO MODELS: they make noise and write gibberish text; they show
# that the pipelines run, not what AnyGPT says.
#
#   OUTDIR/anygpt-llm.gguf        LLaMA (2 layers, width 64) with AnyGPT's full added-token set
#                                 (role strings, 8192 image, 1024 speech, 8192 music codes)
#   OUTDIR/speechtokenizer.gguf   SpeechTokenizer, 8 RVQ layers, codebook 1024 (16 kHz, 50 Hz)
#   OUTDIR/soundstorm.gguf        SoundStorm, K 1024, 7 acoustic levels
#   OUTDIR/encodec.gguf           Encodec 32 kHz, 4 codebooks of 2048
#   OUTDIR/seed-tokenizer.gguf    SEED image tokenizer (ViT width 176, Q-Former 2 layers; 32 codes
#                                 of 8192), from BLIP-2's and SEED's published file layout
#   OUTDIR/seed-unclip.gguf       SEED decode MLP (32 codes of 8192) + SD 2.1 unCLIP (UNet widths
#                                 32/64/64 at a 96x96 latent, 4-level VAE: 768x768 images as the
#                                 published model's, ~8 s on a cpu; PNDM), from
#                                 seed_quantizer.pt and the diffusers folder as published
#   OUTDIR/DEMO-MODELS.txt        the label: what these files are
# The file names are the ones the pipeline scripts look for in a models folder (ANYGPT_MODELS).
#
# Options: --python PY (needs torch, numpy, sentencepiece; default /usr/bin/python3),
#          --convert PATH (anygpt-convert; default: the build tree's, then PATH).
set -euo pipefail
usage() { sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
convert=
out=
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --python) py=$2; shift 2 ;;
    --convert) convert=$2; shift 2 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
if [ -z "$convert" ]; then
  if [ -x "${AG_BUILD_DIR:-$root/build}/tools/anygpt-convert" ]; then
    convert=${AG_BUILD_DIR:-$root/build}/tools/anygpt-convert
  else
    convert=$(command -v anygpt-convert || true)
  fi
fi
[ -x "$convert" ] || { echo "error: anygpt-convert not found (build first, or pass --convert)" >&2; exit 2; }
if ! "$py" -c 'import torch, numpy, sentencepiece' 2> /dev/null; then
  echo "error: $py lacks torch, numpy or sentencepiece (tools/setup-deps.sh installs them)" >&2
  exit 2
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/anygpt-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
ref=$root/tests/reference
# one generator at a time: each is small, and this machine may be shared
"$py" "$ref/make_tiny_llama.py" --demo "$work/llm"
"$py" "$ref/speechtokenizer_ref.py" --demo "$work/speechtokenizer"
"$py" "$ref/soundstorm_ref.py" demo "$work/soundstorm/speechtokenizer_soundstorm_mls.pt"
"$py" "$ref/encodec_ref.py" --demo "$work/encodec"
"$py" "$ref/seed_tokenizer_ref.py" --demo "$work/seed"
"$py" "$ref/make_unclip_demo.py" "$work/unclip" > /dev/null

conv() { # the converters' chatter only when they fail
  "$convert" "$@" 2> "$work/convert.log" || { cat "$work/convert.log" >&2; exit 1; }
}
conv llm "$work/llm/AnyGPT-chat-demo" "$work/anygpt-llm.gguf" --dtype f32 --quiet
conv speechtokenizer "$work/speechtokenizer" "$work/speechtokenizer.gguf" --dtype f32 --quiet
conv soundstorm "$work/soundstorm/speechtokenizer_soundstorm_mls.pt" "$work/soundstorm.gguf" --quiet
conv encodec "$work/encodec" "$work/encodec.gguf" --dtype f32 --quiet
conv seed-tokenizer "$work/seed" "$work/seed-tokenizer.gguf" --dtype f32 --quiet
conv seed-unclip "$work/unclip" "$work/seed-unclip.gguf" --dtype f32 --quiet
cat > "$work/DEMO-MODELS.txt" <<'EOF'
DEMO MODELS - RANDOM WEIGHTS - THEY MAKE NOISE
These GGUF files were written by tools/make-demo-models.sh from tiny random-weight checkpoints
(tests/reference/ generators) through anygpt-convert. They have the published architectures and
AnyGPT's full vocabulary, so every pipeline runs end to end, but the LLM writes gibberish, the
audio is noise, image codes say nothing about the image and generated images are noise. For the real thing convert the published checkpoints (see README.md).
EOF
for f in anygpt-llm.gguf speechtokenizer.gguf soundstorm.gguf encodec.gguf seed-tokenizer.gguf seed-unclip.gguf \
  DEMO-MODELS.txt; do
  mv -f "$work/$f" "$out/$f"
done
echo "demo models (random weights: noise) in $out"
