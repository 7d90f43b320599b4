#!/usr/bin/env bash
# stress.sh: the state-change stress of every element (tests/stress/stress_states.c) at full
# length: CYCLES cycles each (default 1000: NULL -> PLAYING -> work in flight -> NULL / READY /
# flush-seek -> the reply after the restart compared with an uninterrupted run; 0: none), then
# VALGRIND_CYCLES (default 100) of each under valgrind (memcheck: invalid accesses and definite
# leaks fail). Prints one line per element and run; logs in OUT (default a new folder in /tmp).
#
#   tools/stress.sh [--cycles N] [--valgrind-cycles N] [--seed N] [--new-pipeline] [--shared]
#                   [--jobs N] [--out DIR] [ELEMENT...]
# --jobs N: N elements side by side (default 1; the elements run on one thread each, and
# valgrind runs a program's threads one at a time, so up to one per core).
# --shared: a second pipeline of the element runs on the same compute core meanwhile (its
# outputs must equal the reference too).
# Uses the build tree (AG_BUILD_DIR, default build/): its plugin, tests/stress/stress_states and
# the tiny test models (ninja -C build && meson test -C build --suite stress makes them).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${AG_BUILD_DIR:-$root/build}
cycles=1000; vg_cycles=100; seed=14; extra=(); out=""; elements=(); jobs=1
while [ $# -gt 0 ]; do
  case $1 in
    --cycles) cycles=$2; shift 2 ;;
    --valgrind-cycles) vg_cycles=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --new-pipeline) extra+=(--new-pipeline); shift ;;
    --shared) extra+=(--shared); shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) elements+=("$1"); shift ;;
  esac
done
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/anygpt-stress.XXXXXX")
mkdir -p "$out"
declare -A model=(
  [anygptllm]=tests/llm/tiny-f32.gguf [speechtokenize]=tests/speech/st-tiny-elu.gguf
  [soundstorm]=tests/soundstorm/ss-tiny.gguf [encodecdecode]=tests/speech/st-tiny-elu.gguf
  [encodectokenize]=tests/music/encodec-tiny.gguf [seedtokenize]=tests/gstimage/seed-micro.gguf
  [seeddiffuse]=tests/gstimage/seed-unclip-micro.gguf)
[ ${#elements[@]} -gt 0 ] || elements=(anygptllm speechtokenize soundstorm encodecdecode
  encodectokenize seedtokenize seeddiffuse)
export GST_PLUGIN_PATH_1_0=$build/gst GST_REGISTRY_1_0=$out/registry.bin GST_REGISTRY_FORK=no
bin=$build/tests/stress/stress_states
supp=()
[ -f /usr/share/glib-2.0/valgrind/glib.supp ] && supp+=(--suppressions=/usr/share/glib-2.0/valgrind/glib.supp)
[ -f "$root/tests/pipelines/system.supp" ] && supp+=(--suppressions="$root/tests/pipelines/system.supp")
# One element: its cycles, then its valgrind cycles; the summary on stdout, exit 1 on a failure.
one() {
  local e=$1 m=$build/${model[$1]:-} rc fail=0
  if [ -z "${model[$e]:-}" ]; then echo "$e: not an element stress_states drives (${!model[*]})"; return 1; fi
  if [ ! -f "$m" ]; then echo "$e: no model $m (build the tests first)"; return 1; fi
  if [ "$cycles" -gt 0 ]; then
    "$bin" "$e" "$m" "$cycles" --seed "$seed" "${extra[@]}" > "$out/$e.log" 2>&1
    rc=$?
    echo "$e: $cycles cycles: exit $rc"; grep -E "cycles in|VmRSS .* at start|shared core|^not ok" "$out/$e.log" | sed 's/^/  /'
    [ $rc = 0 ] || fail=1
  fi
  if [ "$vg_cycles" -gt 0 ] && command -v valgrind > /dev/null; then
    local t0=$SECONDS
    # OpenBLAS's AVX2 kernels run 2.4x slower under valgrind than its SSE3 ones (one seeddiffuse
    # reference run 36 s -> 14 s): its kernels are not what valgrind is here to check.
    OPENBLAS_CORETYPE=Prescott valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --show-leak-kinds=definite "${supp[@]}" "$bin" "$e" "$m" "$vg_cycles" --seed "$seed" \
      --watchdog 600 --max-growth-kb 100000 "${extra[@]}" > "$out/$e.valgrind.log" 2>&1
    rc=$?
    echo "$e: valgrind, $vg_cycles cycles in $((SECONDS - t0)) s: exit $rc ($(grep -E "ERROR SUMMARY" "$out/$e.valgrind.log" | tail -1 | sed 's/^==[0-9]*== //'))"
    grep -E "definitely lost:|^not ok" "$out/$e.valgrind.log" | sed 's/^==[0-9]*== /  /'
    [ $rc = 0 ] || fail=1
  fi
  return $fail
}
# The plugin registry is written once here, before the jobs start and outside valgrind: scanning
# the system's plugins under valgrind stops at an instruction it cannot run (libhwy's timer
# probe), which a valgrind-only run (--cycles 0) would otherwise do.
gst-inspect-1.0 anygptllm > /dev/null 2>&1 || true
fail=0
if [ "$jobs" -le 1 ]; then
  for e in "${elements[@]}"; do one "$e" || fail=1; done
  echo "logs: $out"
  exit $fail
fi
running=0
for e in "${elements[@]}"; do
  if [ "$running" -ge "$jobs" ]; then wait -n || fail=1; running=$((running - 1)); fi
  ( one "$e" > "$out/$e.summary" ) &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || fail=1; running=$((running - 1)); done
for e in "${elements[@]}"; do cat "$out/$e.summary"; done
echo "logs: $out"
exit $fail
