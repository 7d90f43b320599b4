#!/usr/bin/env bash
# Builds gst-anygpt with warnings as errors and runs every test: the normal build (cpu + vulkan on
# whatever device Vulkan finds; lavapipe in CI) and an ASan/UBSan build of the same tests.
# Usage: tools/run-tests.sh [--no-asan]   (AG_FUZZ_SECONDS=N: seconds per fuzz target, 0 skips fuzzing; default 10)
set -uo pipefail
cd "$(dirname "$0")/.."
asan=1
[ "${1:-}" = "--no-asan" ] && asan=0
jobs=$(nproc 2>/dev/null || echo 2)
# Tests run side by side, one per core (AG_TEST_JOBS to change); those that time real-time
# behaviour or fill every core are marked is_parallel : false in their meson.build and run alone.
test_jobs=${AG_TEST_JOBS:-$jobs}

# Vulkan must really run in CI: the op tests fail instead of skipping when no device is found.
export AG_REQUIRE_VULKAN=${AG_REQUIRE_VULKAN:-1}

passed=0; failed=0; skipped=0; failures=()
run_suite() { # name builddir meson-args...
  local name=$1 dir=$2; shift 2
  echo "=== $name: configure ($*)"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Dwerror=true "$@" || { failed=$((failed + 1)); failures+=("$name: meson setup"); return; }
  fi
  echo "=== $name: build"
  ninja -C "$dir" -j"$jobs" || { failed=$((failed + 1)); failures+=("$name: build"); return; }
  echo "=== $name: test"
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes "$test_jobs" --timeout-multiplier "${AG_TIMEOUT_MULT:-3}"
  local log="$dir/meson-logs/testlog.json"
  if [ -f "$log" ]; then
    local p f s
    p=$(grep -c '"result": "OK"' "$log"); f=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
    s=$(grep -c '"result": "SKIP"' "$log")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    # the names again at the very end: CI shows only the tail of this output
    while read -r t; do failures+=("$name: $t"); done < <(/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"):
        print(r["name"], r["result"], "%.0f s" % r["duration"])' "$log" 2>/dev/null)
  else
    failed=$((failed + 1)); failures+=("$name: no test log")
  fi
}

run_suite "release" build-test

# Element tests under valgrind: definite leaks and invalid accesses fail the run. Valgrind runs a
# program's threads one at a time, so one test per core costs each test nothing.
if command -v valgrind >/dev/null && [ -f build-test/build.ninja ]; then
  echo "=== valgrind: element tests"
  supp=/usr/share/glib-2.0/valgrind/glib.supp
  wrap="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
  [ -f "$supp" ] && wrap="$wrap --suppressions=$supp"
  # OpenBLAS's SSE3 kernels: 2.4x faster than its AVX2 ones under valgrind (tools/stress.sh).
  # Valgrind runs one thread at a time; by default the running thread often takes its lock back,
  # so one thread can hold the only (emulated) CPU for seconds. The tests of suite 'fairness'
  # measure how threads share the backend, so they run with valgrind's FIFO scheduling
  # (--fair-sched=yes): with the default one, test_shared_core's SoundStorm thread got 7-50% of
  # the CPU from one run to the next and failed 1 run in 6 (CI, stop 23).
  vg_ok=1
  OPENBLAS_CORETYPE=Prescott meson test -C build-test --suite gst --no-suite fairness --print-errorlogs --num-processes "$test_jobs" \
      --timeout-multiplier 10 --wrap="$wrap" --logbase valgrind || vg_ok=0
  OPENBLAS_CORETYPE=Prescott meson test -C build-test --suite fairness --print-errorlogs --timeout-multiplier 10 \
      --wrap="$wrap --fair-sched=yes" --logbase valgrind-fair || vg_ok=0
  if [ $vg_ok = 1 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    # meson names a wrapped run's log LOGBASE-valgrind.json
    while read -r t; do failures+=("valgrind: $t"); done < <(/usr/bin/python3 -c '
import json, os, sys
for path in filter(os.path.exists, sys.argv[1:]):
    for line in open(path):
        r = json.loads(line)
        if r["result"] != "OK":
            print(r["name"], r["result"], "%.0f s" % r["duration"])' \
      build-test/meson-logs/valgrind-valgrind.json build-test/meson-logs/valgrind-fair-valgrind.json 2>/dev/null)
  fi
fi
if [ $asan = 1 ]; then
  ASAN_OPTIONS=detect_leaks=1 run_suite "asan+ubsan" build-test-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
fi
# Fuzz targets (tests/fuzz) with libFuzzer: the committed corpora and regression inputs replayed,
# then every target run briefly (AG_FUZZ_SECONDS each). Needs clang's fuzzer runtime; the
# replay alone also runs in the two builds above (suite fuzz).
if [ $asan = 1 ] && [ "${AG_FUZZ_SECONDS:-10}" != 0 ]; then
  echo "=== fuzz: build-test-fuzz, corpora replayed, ${AG_FUZZ_SECONDS:-10} s per target"
  AG_FUZZ_BUILD=build-test-fuzz tools/fuzz.sh ci "${AG_FUZZ_SECONDS:-10}" >build-test-fuzz.log 2>&1
  rc=$?
  grep -E '^[a-z_0-9]+ +rc=' build-test-fuzz.log
  case $rc in
    0) passed=$((passed + 1)) ;;
    2) echo "=== fuzz: skipped (no clang libFuzzer runtime: tools/setup-deps.sh installs clang, libclang-rt-14-dev)"
       skipped=$((skipped + 1)) ;;
    *) echo "=== fuzz: FAILED (build-test-fuzz.log; crashing inputs in build-test-fuzz/fuzz-crash/)"
       tail -30 build-test-fuzz.log
       failed=$((failed + 1)); failures+=("fuzz: see build-test-fuzz.log") ;;
  esac
fi
for f in "${failures[@]}"; do echo "FAILED $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
