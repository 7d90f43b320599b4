#!/usr/bin/env bash
# Every benchmark on one device, one table: the backend's kernels, the 7B LLM (prefill/decode,
# Q4_0 and Q8_0), SpeechTokenizer, SoundStorm, the SEED tokenizer and the unCLIP UNet/VAE, all at
# the real shapes with random weights (the references write them; nothing is downloaded).
#
#   tools/device-bench.sh [--device vulkan|cpu] [--build DIR] [--work DIR] [--threads N]
#                         [--python PY] [--only a,b,...] [--quick] [--timeout S] [--total S]
#                         [--bw GB/s] [--peer PACK]
#
# Sections: kernels matvec-sweep llm-q4_0 soundstorm seed unet codec llm-q8_0 (default: all, in that
# order; matvec-sweep on vulkan only).
# Each runs under its own time limit (--timeout, default 300 s; never past --total seconds from
# the start, after which the remaining sections are skipped) and writes WORK/SECTION.log; the
# table at the end (also WORK/table.md) has one row per figure. --quick runs 2-layer LLMs and skips
# the sections that need real-size references (for lavapipe or a smoke run). --bw is the device's
# memory bandwidth in GB/s for the decode share (default: from nvidia-smi's name where known, else
# the plain read pass the LLM bench measures on the cpu). The PyTorch references need torch and
# numpy: --python defaults to /usr/bin/python3 when it has them, else python3.
# --peer PACK (from tools/llamacpp-peer.sh pack, made where npm works): llama.cpp's Vulkan build
# times the same LLM files first (prefill of a text prompt, greedy decode); ours then runs with
# that prompt's token count, and the table gets llama.cpp's figures and ours / theirs.
set -uo pipefail
cd "$(dirname "$0")/.."
here=$PWD/tools
dev=vulkan; B=build; W=${TMPDIR:-/tmp}/anygpt-device-bench; threads=0; py=""; only=""; quick=0
limit=300; total=0; bw=""; peer=""
while [ $# -gt 0 ]; do
  case $1 in
    --device) dev=$2; shift ;;
    --build) B=$2; shift ;;
    --work) W=$2; shift ;;
    --threads) threads=$2; shift ;;
    --python) py=$2; shift ;;
    --only) only=$2; shift ;;
    --quick) quick=1 ;;
    --timeout) limit=$2; shift ;;
    --total) total=$2; shift ;;
    --bw) bw=$2; shift ;;
    --peer) peer=$(realpath -m "$2"); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "device-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
T=$B/tools
for t in tools/anygpt-bench tools/anygpt-bench-llm tools/anygpt-make-random-llama tools/anygpt-convert \
    tools/anygpt-quantize tools/anygpt-bench-codec tools/anygpt-bench-soundstorm tools/anygpt-bench-seed \
    tools/anygpt-bench-unet tests/unclip/unclip_convert; do
  [ -x "$B/$t" ] || { echo "device-bench: $B/$t missing (build first: ninja -C $B)" >&2; exit 2; }
done
[ -z "$peer" ] || [ -f "$peer" ] || { echo "device-bench: no peer pack at $peer" >&2; exit 2; }
[ -z "$peer" ] || [ "$dev" = vulkan ] || { echo "device-bench: --peer is llama.cpp's Vulkan build: --device vulkan" >&2; exit 2; }
if [ -z "$py" ]; then
  py=python3
  /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null && py=/usr/bin/python3
fi
mkdir -p "$W"
[ "$threads" = 0 ] && threads=$(nproc)
if [ -z "$bw" ] && command -v nvidia-smi >/dev/null; then
  case $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) in
    *H200*) bw=4800 ;;
    *H100*SXM*|*H100\ 80GB\ HBM3*) bw=3350 ;;
    *H100*) bw=2000 ;;
    *A100*80GB*) bw=2039 ;;
    *A100*) bw=1555 ;;
  esac
fi
table=$W/table.md
printf '| section | figure | value |\n| --- | --- | --- |\n' >"$table"
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3" >>"$table"; }
want() {
  [ -z "$only" ] || [[ ",$only," == *",$1,"* ]] || return 1
  if [ "$total" -gt 0 ] && [ $((total - SECONDS)) -lt 20 ]; then
    row "$1" skipped "no time left (--total $total)"; return 1
  fi
}
# run SECTION CMD...: the command under the time limit, its output in WORK/SECTION.log and here
run() {
  local s=$1; shift
  echo "## $s: $*" | tee -a "$W/$s.log"
  local t0=$SECONDS lim=$limit
  [ "$total" -gt 0 ] && [ $((total - SECONDS)) -lt "$lim" ] && lim=$((total - SECONDS))
  [ "$lim" -lt 1 ] && lim=1
  timeout --kill-after=10 "$lim" "$@" 2>&1 | tee -a "$W/$s.log"
  local rc=${PIPESTATUS[0]}
  echo "## $s: rc $rc after $((SECONDS - t0)) s" | tee -a "$W/$s.log"
  [ "$rc" = 124 ] && row "$s" "stopped" "at its ${lim} s limit"
  return "$rc"
}

echo "# device-bench: device $dev, threads $threads, python $py, work $W, $(date -u +%FT%TZ)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
[ -n "$bw" ] && echo "# memory bandwidth for the decode share: $bw GB/s"

if want kernels; then
  q=""; [ $quick = 1 ] && q=--quick
  : >"$W/kernels.log"
  run kernels "$T/anygpt-bench" --device "$dev" --threads "$threads" $q
  grep -E '^## backend' "$W/kernels.log" | head -1 | sed 's/^## backend //' | while read -r l; do row kernels device "$l"; done
  grep -E '^matvec ' "$W/kernels.log" | awk '{print $2, $4, $6}' | while read -r t ms g; do row kernels "matvec $t 4096x11008" "$g GB/s ($ms ms)"; done
  grep -E '^gemm ' "$W/kernels.log" | sed -E 's/.* ([0-9.]+) GFLOP\/s.*/\1/' | head -1 | while read -r g; do row kernels "gemm f32" "$g GFLOP/s"; done
  grep -E '^attention ' "$W/kernels.log" | sed -E 's/ +\(.*//; s/ +/ /g' | while read -r l; do row kernels attention "${l#attention }"; done
fi

# The decode matvec's shape on this device: rows per workgroup x threads (AG_VK_MATVEC_ROWS /
# AG_VK_MATVEC_WG, quantized weights; defaults 2 x 32), every pair timed by anygpt-bench; the
# grid goes to matvec-sweep.log, the best pair per type and the default's figure to the table.
if [ "$dev" = vulkan ] && want matvec-sweep; then
  : >"$W/matvec-sweep.log"
  q=""; [ $quick = 1 ] && q=--quick
  grid="1 2 4 8"; wgs="32 64 128 256"; [ $quick = 1 ] && { grid="2 8"; wgs="16 32"; }
  for r in $grid; do
    for w in $wgs; do
      echo "# shape $r x $w" >>"$W/matvec-sweep.log"
      AG_VK_MATVEC_ROWS=$r AG_VK_MATVEC_WG=$w run matvec-sweep "$T/anygpt-bench" --device vulkan --only matvec $q \
        >/dev/null || continue
    done
  done
  for ty in q4_0 q8_0; do
    awk -v ty="$ty" '/^# shape/ {r = $3; w = $5} $1 == "matvec" && $2 == ty {print $6, r, w}' "$W/matvec-sweep.log" |
      sort -g | tail -1 | while read -r g r w; do row matvec-sweep "best $ty" "$g GB/s at $r rows x $w threads"; done
    awk -v ty="$ty" '/^# shape/ {r = $3; w = $5} $1 == "matvec" && $2 == ty && r == 2 && w == 32 {print $6}' \
      "$W/matvec-sweep.log" | head -1 | while read -r g; do row matvec-sweep "default $ty (2 x 32)" "$g GB/s"; done
  done
fi

llm_section() { # q4_0|q8_0
  local ty=$1 s=llm-$1 layers m p g pre dec mb gbs wmb kmb
  want "llm-$ty" || return
  : >"$W/$s.log"
  layers=32; [ $quick = 1 ] && layers=2
  m=$W/llm-$ty-$layers.gguf
  [ -f "$m" ] || run "$s" "$T/anygpt-make-random-llama" "$m" --type "$ty" --layers "$layers" || return
  p=512; g=128; [ $quick = 1 ] && { p=16; g=4; }
  local ppre="" pdec=""
  if [ -n "$peer" ]; then
    # the random model's tokenizer splits a word into ~7 tokens: 74 words make ~512
    local words=74 pf=$W/peer-prompt.txt; [ $quick = 1 ] && words=2
    awk -v n="$words" 'BEGIN { k = split("the quick brown fox jumps over the lazy dog and then some more", w, " ")
      for (i = 0; i < n; i++) printf "%s ", w[i % k + 1] }' >"$pf"
    if run "$s" "$here/llamacpp-peer.sh" run "$peer" "$m" "$pf" "$g" "$threads"; then
      p=$(sed -nE 's/^llama.cpp prefill ([0-9]+) tokens.*/\1/p' "$W/$s.log" | tail -1)
      ppre=$(sed -nE 's/^llama.cpp prefill .*: ([0-9.]+) tok\/s.*/\1/p' "$W/$s.log" | tail -1)
      pdec=$(sed -nE 's/^llama.cpp decode .*: ([0-9.]+) tok\/s.*/\1/p' "$W/$s.log" | tail -1)
    fi
  fi
  run "$s" "$T/anygpt-bench-llm" "$m" --device "$dev" --threads "$threads" --prompt "$p" --gen "$g" || return
  pre=$(sed -nE 's/^prefill .* = ([0-9.]+) tok\/s.*/\1/p' "$W/$s.log")
  dec=$(sed -nE 's/^decode .* = ([0-9.]+) tok\/s.*/\1/p' "$W/$s.log")
  mb=$(sed -nE 's/^bytes\/token ([0-9.]+) MB weights \+ ([0-9.]+) MB KV.*/\1 \2/p' "$W/$s.log")
  row "$s" "model" "7B shape, $layers layers, $ty"
  row "$s" "prefill ($p tokens)" "$pre tok/s"
  row "$s" "decode ($g tokens)" "$dec tok/s"
  if [ -n "$ppre" ] && [ -n "$pdec" ] && [ -n "$pre" ] && [ -n "$dec" ]; then
    row "$s" "llama.cpp Vulkan prefill / decode" "$ppre / $pdec tok/s (node-llama-cpp $(sed -nE 's/^version=//p' "$here/llamacpp-peer.sh"))"
    row "$s" "ours / llama.cpp" "$(awk -v a="$pre" -v b="$ppre" -v c="$dec" -v d="$pdec" 'BEGIN{printf "prefill %.2fx, decode %.2fx", a / b, c / d}')"
  elif [ -n "$peer" ]; then
    row "$s" "llama.cpp Vulkan" "failed (see $s.log)"
  fi
  if [ -n "$mb" ] && [ -n "$dec" ]; then
    read -r wmb kmb <<<"$mb"
    gbs=$(awk -v w="$wmb" -v k="$kmb" -v d="$dec" 'BEGIN{printf "%.1f", (w + k) * d / 1000}')
    row "$s" "decode read rate" "$gbs GB/s ($(awk -v w="$wmb" -v k="$kmb" 'BEGIN{printf "%.1f", w + k}') MB per token)"
    [ -n "$bw" ] && row "$s" "decode share of $bw GB/s" "$(awk -v g="$gbs" -v b="$bw" 'BEGIN{printf "%.1f%%", 100 * g / b}')"
  fi
  rm -f "$m"   # 4-7 GB each: keep the disk for the next sections
}


llm_section q4_0

if want soundstorm && [ $quick = 0 ]; then
  s=soundstorm; : >"$W/$s.log"
  if run "$s" "$T/anygpt-bench-soundstorm" "$W/ss" --python "$py" --ref tests/reference/soundstorm_ref.py \
       --convert "$T/anygpt-convert" --devices "$dev" --threads "$threads"; then
    grep -E '^pytorch \(' "$W/$s.log" | while read -r l; do row "$s" "PyTorch cpu (reference)" "${l#pytorch }"; done
    grep -E "^$dev \(" "$W/$s.log" | sed -E 's/^[^:]*: //' | while read -r l; do row "$s" "3 s prompt + 5 s, 10 passes" "$l"; done
  fi
fi

if want seed && [ $quick = 0 ]; then
  s=seed; : >"$W/$s.log"
  if run "$s" "$T/anygpt-bench-seed" "$W/seed" --python "$py" --ref tests/reference/seed_tokenizer_ref.py \
       --convert "$T/anygpt-convert" --quantize "$T/anygpt-quantize" --devices "$dev" --dtypes f16 --threads "$threads"; then
    grep -E '^pytorch float32' "$W/$s.log" | while read -r l; do row "$s" "PyTorch cpu (reference)" "${l#pytorch }"; done
    grep -E "^$dev " "$W/$s.log" | grep encode | sed -E 's/^[^:]*: //' | while read -r l; do row "$s" "one 224x224 image" "$l"; done
  fi
fi

if want unet && [ $quick = 0 ]; then
  s=unet; : >"$W/$s.log"
  if run "$s" "$py" tests/reference/unclip_unet_ref.py --bench "$W/unet" &&
     run "$s" "$B/tests/unclip/unclip_convert" --unet "$W/unet/unet" --vae "$W/unet/vae" "$W/unet/unclip-f16.gguf"; then
    us=$(sed -nE 's/^pytorch unet_s ([0-9.]+) .*/\1/p' "$W/$s.log"); vs=$(sed -nE 's/^pytorch vae_s ([0-9.]+) .*/\1/p' "$W/$s.log")
    pt=(); [ -n "$us" ] && [ -n "$vs" ] && pt=(--pytorch "$us" "$vs")
    run "$s" "$T/anygpt-bench-unet" "$W/unet/unclip-f16.gguf" "$W/unet" --device "$dev" --threads "$threads" "${pt[@]}" &&
      grep -E '^(unet|vae): ' "$W/$s.log" | while IFS=: read -r k v; do row "$s" "$k" "${v# }"; done
  fi
fi

if want codec && [ $quick = 0 ]; then
  s=codec; : >"$W/$s.log"
  if run "$s" "$py" tests/reference/speechtokenizer_ref.py --real "$W/st" &&
     run "$s" "$T/anygpt-convert" speechtokenizer "$W/st" "$W/speechtokenizer.gguf" &&
     run "$s" "$T/anygpt-bench-codec" "$W/speechtokenizer.gguf" --device "$dev" --threads "$threads"; then
    grep -E '^ +(encode|decode):' "$W/$s.log" | sed -E 's/^ +//' | while IFS=: read -r k v; do row "$s" "SpeechTokenizer $k (10 s audio)" "${v# }"; done
  fi
fi

llm_section q8_0

echo
echo "# device-bench table ($dev)"
cat "$table"
