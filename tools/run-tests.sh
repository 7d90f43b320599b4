#!/usr/bin/env bash
# Builds gst-anygpt with warnings as errors and runs every test: the normal build (cpu + vulkan on
# whatever device Vulkan finds; lavapipe in CI) and an ASan/UBSan build of the same tests.
# Usage: tools/run-tests.sh [--no-asan]
set -uo pipefail
cd "$(dirname "$0")/.."
asan=1
[ "${1:-}" = "--no-asan" ] && asan=0
jobs=$(nproc 2>/dev/null || echo 2)

# Vulkan must really run in CI: the op tests fail instead of skipping when no device is found.
export AG_REQUIRE_VULKAN=${AG_REQUIRE_VULKAN:-1}

passed=0; failed=0; skipped=0
run_suite() { # name builddir meson-args...
  local name=$1 dir=$2; shift 2
  echo "=== $name: configure ($*)"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Dwerror=true "$@" || { failed=$((failed + 1)); return; }
  fi
  echo "=== $name: build"
  ninja -C "$dir" -j"$jobs" || { failed=$((failed + 1)); return; }
  echo "=== $name: test"
  meson test -C "$dir" --print-errorlogs --num-processes 1 --timeout-multiplier "${AG_TIMEOUT_MULT:-3}"
  local log="$dir/meson-logs/testlog.json"
  if [ -f "$log" ]; then
    local p f s
    p=$(grep -c '"result": "OK"' "$log"); f=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
    s=$(grep -c '"result": "SKIP"' "$log")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  else
    failed=$((failed + 1))
  fi
}

run_suite "release" build-test

# Element tests under valgrind: definite leaks and invalid accesses fail the run.
if command -v valgrind >/dev/null && [ -f build-test/build.ninja ]; then
  echo "=== valgrind: element tests"
  supp=/usr/share/glib-2.0/valgrind/glib.supp
  wrap="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
  [ -f "$supp" ] && wrap="$wrap --suppressions=$supp"
  if meson test -C build-test --suite gst --print-errorlogs --num-processes 1 --timeout-multiplier 10 \
      --wrap="$wrap" --logbase valgrind; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi
if [ $asan = 1 ]; then
  ASAN_OPTIONS=detect_leaks=1 run_suite "asan+ubsan" build-test-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
