#!/usr/bin/env bash
# Text to image with AnyGPT: text -> anygptllm task=text-to-image (the prompt opens an image span,
# constrained to image codes; 32 codes = one image item) -> seeddiffuse (SEED decode, SD 2.1
# unCLIP with guidance, VAE) -> PNG. A progress bar of the denoising steps on stderr (anygpt-run
# draws it from seeddiffuse's messages).
set -euo pipefail
usage() {
  cat <<USAGE
usage: $(basename "$0") [options] -o OUTPUT.png TEXT
Draws TEXT with the AnyGPT LLM (32 SEED image codes) and the SEED unCLIP decoder.
  -o, --output FILE.png      the image, the decoder's size (768x768 for the published model)
      --llm FILE.gguf        AnyGPT LLM (default: \$ANYGPT_LLM)
      --seed-unclip FILE     SEED unCLIP GGUF (anygpt-convert seed-unclip; \$ANYGPT_SEED_UNCLIP)
      --models DIR           folder with the standard names (\$ANYGPT_MODELS; see README.md);
                             with no model configured: the demo set of the build tree
  -d, --device DEV           auto | cpu | vulkan (default auto)
      --steps N              denoising steps (default 20, AnyGPT's)
      --guidance G           classifier-free guidance scale (default 10, AnyGPT's)
      --image-seed N         seed of the diffusion noise (default: a fresh one, printed)
  -t, --temperature T        LLM sampling temperature (0: greedy)
  -s, --seed N               LLM sampling seed
  -h, --help                 this text
example: $(basename "$0") --models ~/anygpt-models -o cat.png "a cat"
USAGE
}
. "$(dirname "$0")/lib/common.sh"
device=auto; extra=(); diffuse=(); output=""; text=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) output=$2; shift 2 ;;
    --llm) ANYGPT_LLM=$2; shift 2 ;;
    --seed-unclip) ANYGPT_SEED_UNCLIP=$2; shift 2 ;;
    --models) ANYGPT_MODELS=$2; shift 2 ;;
    -d|--device) device=$2; shift 2 ;;
    --steps) diffuse+=("steps=$2"); shift 2 ;;
    --guidance) diffuse+=("guidance-scale=$2"); shift 2 ;;
    --image-seed) diffuse+=("seed=$2"); shift 2 ;;
    -t|--temperature) extra+=("temperature=$2"); shift 2 ;;
    -s|--seed) extra+=("seed=$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) text=$1; shift ;;
  esac
done
ag_demo_fallback ANYGPT_LLM ANYGPT_SEED_UNCLIP
ag_default_models
ag_need_setting "${ANYGPT_LLM:-}" LLM --llm ANYGPT_LLM
ag_need_setting "${ANYGPT_SEED_UNCLIP:-}" "SEED unCLIP" --seed-unclip ANYGPT_SEED_UNCLIP
[ -n "$text" ] || { echo "error: no text" >&2; usage >&2; exit 2; }
[ -n "$output" ] || { echo "error: no output file (-o FILE.png)" >&2; exit 2; }
ag_use_build_tree
ag_find_run
rm -f "$output"
# max-new-tokens=32: the image span holds one item of 32 codes (a model that closes it earlier
# gives a shorter item, which seeddiffuse skips with a warning)
"${AG_RUN_PREFIX[@]}" "$AG_RUN" "${AG_RUN_OPTS[@]}" -q -p -- anygptllm name=llm model-path="$ANYGPT_LLM" \
    device="$device" task=text-to-image prompt="$text" constrain-spans=true max-new-tokens=32 "${extra[@]}" \
  llm.image_src ! seeddiffuse model-path="$ANYGPT_SEED_UNCLIP" device="$device" "${diffuse[@]}" ! \
  pngenc ! filesink location="$output"
if [ ! -s "$output" ]; then
  echo "error: no image was made (the LLM wrote no complete image item: see the warning above)" >&2
  exit 1
fi
echo "image written to $output" >&2
