#!/usr/bin/env bash
# Image resynthesis: what AnyGPT's 32 image tokens keep of a picture. An image file -> decoded,
# converted to RGB -> seedtokenize (SEED: 32 codes) -> seeddiffuse (SEED decode, SD 2.1 unCLIP,
# VAE) -> PNG. Of a video, the first frame.
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] INPUT OUTPUT.png
Tokenizes INPUT (PNG, JPEG, ... anything GStreamer decodes to video; a video's first frame) into
32 SEED codes and draws them again.
      --seed-tokenizer FILE.gguf SEED image tokenizer (default: \$ANYGPT_SEED_TOKENIZER)
      --seed-unclip FILE.gguf    SEED unCLIP decoder (default: \$ANYGPT_SEED_UNCLIP)
      --models DIR               folder with the standard names (\$ANYGPT_MODELS; see README.md);
                                 with no model configured: the demo set of the build tree
  -d, --device DEV               auto | cpu | vulkan (default auto)
      --steps N                  denoising steps (default 20)
      --guidance G               classifier-free guidance scale (default 10)
      --noise-level N            noise added to the image embedding, 0..999 (default 0;
                                 more gives looser variations)
  -s, --seed N                   seed of the diffusion noise (default: a fresh one, printed)
  -h, --help                     this text
example: $(basename "$0") --models ~/anygpt-models photo.jpg photo-resynth.png
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; diffuse=(); files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed-tokenizer) ANYGPT_SEED_TOKENIZER=$2; shift 2 ;;
    --seed-unclip) ANYGPT_SEED_UNCLIP=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    --steps) diffuse+=("steps=$2"); shift 2 ;;
    --guidance) diffuse+=("guidance-scale=$2"); shift 2 ;;
    --noise-level) diffuse+=("noise-level=$2"); shift 2 ;;
    -s|--seed) diffuse+=("seed=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
[ ${#files[@]} = 2 ] || { echo "error: give INPUT and OUTPUT.png" >&2; usage >&2; exit 2; }
input=${files[0]}; output=${files[1]}
ag_demo_fallback ANYGPT_SEED_TOKENIZER ANYGPT_SEED_UNCLIP
ag_default_models
ag_need_setting "${ANYGPT_SEED_TOKENIZER:-}" "SEED tokenizer" --seed-tokenizer ANYGPT_SEED_TOKENIZER
ag_need_setting "${ANYGPT_SEED_UNCLIP:-}" "SEED unCLIP" --seed-unclip ANYGPT_SEED_UNCLIP
ag_need_input "$input"
ag_use_build_tree
ag_find_run
rm -f "$output"
# pngenc snapshot=true: the first picture only, then end of stream
"${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -p -- filesrc location="$input" ! decodebin ! \
  videoconvert ! seedtokenize model-path="$ANYGPT_SEED_TOKENIZER" device="$device" ! \
  seeddiffuse model-path="$ANYGPT_SEED_UNCLIP" device="$device" "${diffuse[@]}" ! \
  pngenc snapshot=true ! filesink location="$output"
[ -s "$output" ] || { echo "error: no image was made" >&2; exit 1; }
echo "image written to $output" >&2
