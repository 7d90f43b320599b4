#!/usr/bin/env bash
# soak.sh: the voice assistant (pipelines/voice-assistant.sh) for a long time on looped input,
# watched for memory growth, lost utterances, an unbounded history and drifting latency.
#
#   tools/soak.sh [--duration SECONDS] [--modes queue,half] [--out DIR] [--models DIR] [--check]
#
# The input is a multi-utterance recording (pipelines/lib/make-utterances.py, 4 utterances in
# ~11 s) repeated to fill the duration and played at its own pace (voice-assistant.sh --realtime,
# so it arrives as a microphone would hear it). Every mode (duplex queue: every utterance is a
# turn; half: utterances heard while the assistant is busy are dropped) runs in its own process,
# side by side, on the demo models (tools/make-demo-models.sh) unless --models names real ones.
# Every INTERVAL seconds the VmRSS of each process is sampled. At the end (the input's end of
# stream) tools/soak-report.py prints the RSS and latency series per minute and a summary:
#   RSS start / end after the warm-up (median of the first / last 3 samples; within 5%),
#   utterances = answered + dropped (by the half-duplex rule or a warning), every answer with
#   its audio, queue mode: every utterance answered; the history bounded (at most HISTORY
#   earlier turns in a prompt, prompt + reply within the context),
#   per-turn latency (end of speech -> first audio) p50 / p95, first vs last 10 minutes
#   (a third of the run when shorter);
# and draws soak.png (gnuplot). With --check the exit status says whether the criteria held
# (the meson test of suite 'soak' runs 2 minutes so).
#
# Options:
#   --duration S     seconds of input (default 3600; whole loops of the recording)
#   --modes LIST     comma-separated duplex modes (default queue,half)
#   --out DIR        logs, series, plot (default: a new folder under /tmp)
#   --models DIR     models folder with the standard names (default: the build tree's demo
#                    models, made when missing)
#   --device DEV     cpu | vulkan | auto (default cpu)
#   --history N      turns kept in the prompt (default 4)
#   -n N             max new tokens per reply (default 150: ~3 s of speech, so half-duplex drops some)
#   --interval S     RSS sampling period (default 10)
#   --warmup S       RSS warm-up excluded from the start figure (default: a third of the
#                    duration, at most 300)
#   --check          exit 1 when a criterion fails
# Environment: AG_BUILD_DIR (default build/), AG_PYTHON (default /usr/bin/python3).
set -euo pipefail
usage() { sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=${AG_BUILD_DIR:-$root/build}
py=${AG_PYTHON:-/usr/bin/python3}
duration=3600; modes=queue,half; out=""; models=""; device=cpu; history=4; max_new=150
interval=10; warmup=""; check=0
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --history) history=$2; shift 2 ;;
    -n) max_new=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$warmup" ] || warmup=$(( duration / 3 < 300 ? duration / 3 : 300 ))
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/anygpt-soak.XXXXXX")
mkdir -p "$out"
rm -f "$out/HANG"
if [ -z "$models" ]; then
  models=$build/demo-models
  [ -f "$models/soundstorm.gguf" ] || AG_BUILD_DIR=$build "$root/tools/make-demo-models.sh" "$models" >&2
fi
export ANYGPT_MODELS=$models AG_BUILD_DIR=$build

# the input: 4 utterances repeated to fill the duration
"$py" "$root/pipelines/lib/make-utterances.py" "$out/utterances.wav" 4
loops=$("$py" "$root/tools/soak-report.py" loop "$out/utterances.wav" "$out/input.wav" "$duration")
echo "soak: $((loops * 4)) utterances in $duration s ($loops loops of 4), modes $modes, out $out" >&2

# one run per mode, stderr lines stamped with the seconds since the start
start=${EPOCHREALTIME/[.,]/}
stamp() {
  local now
  while IFS= read -r l; do
    now=${EPOCHREALTIME/[.,]/}
    printf '%d.%d\t%s\n' $(( (now - start) / 1000000 )) $(( (now - start) / 100000 % 10 )) "$l"
  done
}
declare -A pid
IFS=, read -r -a mode_list <<< "$modes"
for m in "${mode_list[@]}"; do
  : > "$out/$m.rss"
  "$root/pipelines/voice-assistant.sh" -d "$device" -i "$out/input.wav" --realtime -o /dev/null \
    -n "$max_new" -s 1 --duplex "$m" --history "$history" --messages "$out/$m.msg" \
    > "$out/$m.out" 2> >(stamp > "$out/$m.err") &
  pid[$m]=$!
done

# sample every interval until every run ended; a run past twice the duration (+2 min) is stuck
limit=$(( 2 * duration + 120 ))
t=0
while :; do
  alive=0
  for m in "${mode_list[@]}"; do
    p=${pid[$m]}
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2> /dev/null || true)
    if [ -n "$rss" ]; then
      alive=1
      printf '%s\t%s\n' "$t" "$rss" >> "$out/$m.rss"
    fi
  done
  [ $alive = 1 ] || break
  if [ $t -ge $limit ]; then
    echo "soak: still running after $t s: stopped (a hang)" >&2
    for m in "${mode_list[@]}"; do kill "${pid[$m]}" 2> /dev/null || true; done
    echo hang > "$out/HANG"
    break
  fi
  sleep "$interval"
  t=$(( t + interval ))
done
for m in "${mode_list[@]}"; do
  rc=0; wait "${pid[$m]}" || rc=$?
  echo "$rc" > "$out/$m.rc"
done
sleep 1 # the stamping of the last stderr lines

report=("$py" "$root/tools/soak-report.py" report --out "$out" --modes "$modes" --warmup "$warmup"
  --interval "$interval" --history "$history" --utterances $((loops * 4)) --llm "$models/anygpt-llm.gguf"
  --gguf-info "$build/tools/anygpt-gguf-info")
[ $check = 1 ] && report+=(--check)
"${report[@]}"
