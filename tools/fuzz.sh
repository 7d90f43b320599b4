#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader of untrusted bytes (targets: tests/fuzz/fuzz_*.c) with
# libFuzzer, ASan and UBSan, in its own clang build (build-fuzz).
#
#   tools/fuzz.sh build                   configure (once) and build build-fuzz
#   tools/fuzz.sh list                    the targets
#   tools/fuzz.sh seeds [TEST_BUILD]      seed inputs from a test build's fixtures (default: build)
#                                         + hand-made ones -> build-fuzz/fuzz-seeds/TARGET
#   tools/fuzz.sh run TARGET SECONDS      a campaign: corpus build-fuzz/fuzz-work/TARGET (grows),
#                                         crashes build-fuzz/fuzz-crash/TARGET, log build-fuzz/fuzz-logs
#   tools/fuzz.sh merge TARGET            minimise work corpus + committed corpus into
#                                         tests/fuzz/corpus/TARGET (-merge=1; commit the result)
#   tools/fuzz.sh ci [SECONDS]            every target: its committed corpus and regression inputs
#                                         replayed, then SECONDS of fuzzing (default 10); what
#                                         tools/run-tests.sh calls
#
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev; tools/setup-deps.sh --fuzz).
# Run long campaigns niced: nice -n 19 tools/fuzz.sh run gguf 3600.
# Inputs that crash become regression inputs: tests/fuzz/regress/TARGET/NAME (replayed in every
# build by suite 'fuzz', also without clang) once the reader is fixed.
set -uo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."
B=${AG_FUZZ_BUILD:-build-fuzz}

have_libfuzzer() {
  command -v clang >/dev/null || return 1
  echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}' |
    clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null
}

targets() { ls tests/fuzz/fuzz_*.c | sed "s|.*/fuzz_||; s|\.c$||" | grep -v "^util$"; }

# per-target libFuzzer flags: input size limit, and the time one input may take (a finding past it).
# image: a resize whose intermediate is just under AG_IMAGE_MAX_WORK_PIXELS is legitimate and
# takes ~1 s natively (231x10975 -> 5275x1: 0.94 s, PIL 1.65 s) but 26 s under ASan + coverage.
flags() {
  local timeout=20
  [ "$1" = image ] && timeout=120
  case $1 in
    llama|seanet|soundstorm|seed_tokenizer|unclip|vocab) echo "-max_len=65536 -timeout=$timeout" ;;
    torchzip|safetensors|hf_tokenizer|clip_tokens) echo "-max_len=32768 -timeout=$timeout" ;;
    image|gst_tokens|wav|text|gst_elements) echo "-max_len=4096 -timeout=$timeout" ;;
    *) echo "-max_len=65536 -timeout=$timeout" ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Fixtures some targets read (tests' tiny models and vocabulary): from this build, else from a
# test build that made them (run-tests.sh's build-test, or build).
fixture() { # VAR relative-path
  local v=$1 rel=$2 d
  [ -n "${!v:-}" ] && return
  for d in "$B" build-test build; do
    [ -f "$d/$rel" ] && { export "$v=$PWD/$d/$rel"; return; }
  done
  export "$v=$PWD/$B/$rel"
}
FIXTURES="AG_FUZZ_VOCAB:tests/text/spm_vocab.gguf AG_FUZZ_ST:tests/speech/st-tiny-elu.gguf
  AG_FUZZ_SS:tests/soundstorm/ss-tiny.gguf AG_FUZZ_LLM:tests/llm/tiny-f32.gguf AG_FUZZ_SEED:tests/gstimage/seed-micro.gguf"
for f in $FIXTURES; do fixture "${f%%:*}" "${f#*:}"; done
# the fixtures missing everywhere, to be made in this build
missing_fixtures() { for f in $FIXTURES; do v=${f%%:*}; [ -f "${!v}" ] || echo "${f#*:}"; done; }
export TMPDIR=${TMPDIR:-/tmp}

# Resource bounds are part of what is checked: one allocation over 1 GiB or 2 GiB resident is a
# finding (an input of at most max_len bytes must never need that).
LIMITS="-rss_limit_mb=2048 -malloc_limit_mb=1024"

cmd=${1:-}
case $cmd in
build)
  have_libfuzzer || { echo "fuzz: clang's libFuzzer runtime is missing (apt install clang libclang-rt-14-dev)"; exit 2; }
  if [ ! -f "$B/build.ninja" ]; then
    CC=clang meson setup "$B" -Dwerror=true -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Dbuildtype=debugoptimized -Dvulkan=disabled || exit 1
  fi
  ninja -C "$B" -j"$(nproc)" || exit 1
  # the fixtures fuzz_text and fuzz_gst_elements need (made by the reference python)
  m=$(missing_fixtures)
  [ -z "$m" ] || ninja -C "$B" $m >/dev/null 2>&1 || echo "fuzz: could not make $m"
  ;;
list) targets ;;
seeds)
  src=${2:-build}
  rm -rf "$B/fuzz-seeds"
  /usr/bin/python3 tests/fuzz/make_seeds.py "$src" "$B/fuzz-seeds"
  ;;
run)
  t=${2:?target}; secs=${3:?seconds}
  exe=$B/tests/fuzz/fuzz_$t
  [ -x "$exe" ] || { echo "fuzz: $exe not built (tools/fuzz.sh build)"; exit 2; }
  mkdir -p "$B/fuzz-work/$t" "$B/fuzz-crash/$t" "$B/fuzz-logs"
  dirs=("$B/fuzz-work/$t")
  for d in "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t" "$B/fuzz-seeds/$t"; do [ -d "$d" ] && dirs+=("$d"); done
  log=$B/fuzz-logs/$t.log
  start=$(date +%s)
  # shellcheck disable=SC2046
  "$exe" $(flags "$t") $LIMITS -max_total_time="$secs" -print_final_stats=1 -close_fd_mask=${AG_FUZZ_CLOSE_FD:-0} \
    -artifact_prefix="$B/fuzz-crash/$t/" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  end=$(date +%s)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  # CPU time of the target (bash's `times`: this shell's children, i.e. the target): with more
  # campaigns than cores, the wall-clock length alone overstates how long a target was fuzzed
  times > "$log.times" # (not in a subshell: there it would count that subshell's children)
  cpu=$(tail -1 "$log.times" | awk '{print $1 "+" $2}')
  printf '%-15s rc=%d %5ds cpu=%s execs=%s %s corpus=%s files\n' "$t" "$rc" $((end - start)) "$cpu" "${execs:-?}" \
    "$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+')" "$(ls "$B/fuzz-work/$t" | wc -l)"
  [ $rc = 0 ] || { grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5; exit $rc; }
  ;;
merge)
  t=${2:?target}
  exe=$B/tests/fuzz/fuzz_$t
  new=$(mktemp -d)
  dirs=("$B/fuzz-work/$t")
  [ -d "tests/fuzz/corpus/$t" ] && dirs+=("tests/fuzz/corpus/$t")
  # shellcheck disable=SC2046
  "$exe" $(flags "$t") $LIMITS -merge=1 "$new" "${dirs[@]}" >"$B/fuzz-logs/$t.merge.log" 2>&1 || {
    tail -5 "$B/fuzz-logs/$t.merge.log"; rm -rf "$new"; exit 1; }
  rm -rf "tests/fuzz/corpus/$t"
  mkdir -p tests/fuzz/corpus
  mv "$new" "tests/fuzz/corpus/$t"
  chmod 755 "tests/fuzz/corpus/$t"
  echo "$t: $(ls "tests/fuzz/corpus/$t" | wc -l) inputs, $(du -sk "tests/fuzz/corpus/$t" | cut -f1) KiB"
  ;;
ci)
  secs=${2:-10}
  have_libfuzzer || { echo "fuzz: clang's libFuzzer runtime is missing (apt install clang libclang-rt-14-dev)"; exit 2; }
  if [ ! -f "$B/build.ninja" ]; then
    CC=clang meson setup "$B" -Dwerror=true -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Dbuildtype=debugoptimized -Dvulkan=disabled || exit 1
  fi
  # only what the fuzz targets need: the core, the converter readers, the plugin, and the test
  # fixtures no other build has made
  ninja -C "$B" -j"$(nproc)" $(targets | sed 's|^|tests/fuzz/fuzz_|') gst/libgstanygpt.so $(missing_fixtures) || exit 1
  # each run first executes its committed corpus and regression inputs (the replay), then fuzzes;
  # a libFuzzer run is one thread, so as many run at once as there are cores
  targets | xargs -P "$(nproc)" -I{} "$self" run {} "$secs" || exit 1
  ;;
*)
  sed -n '2,22p' "$0"
  exit 2
  ;;
esac
