#!/usr/bin/env bash
# meson install into a staging folder (--destdir), then use the prefix the way a user or an app
# would, with nothing of the build tree on any path:
#  (a) gst-inspect-1.0 anygpt, GST_PLUGIN_PATH at the prefix's plugin folder, lists every element
#      the sources register, from the installed file;
#  (b) every public header is installed and compiles on its own; a small C program built with
#      `pkg-config --cflags --libs anygpt` loads a GGUF (tests/llm's tiny model) and tokenizes a
#      text: the ids equal SentencePiece's on the model's tokenizer.model (Debian's python), the
#      decode gives the text back, and the program runs on the installed libanygpt.so.N;
#  (c) anygpt-convert --help runs from the prefix's bindir, the other tools are there;
#  (d) the installed pipeline scripts run from DATADIR/gst-anygpt/pipelines: chat.sh --models DIR
#      answers on the tiny model through the prefix's anygpt-run and plugin.
# usage: test_install.sh SOURCE_ROOT BUILD_ROOT PREFIX BINDIR LIBDIR INCLUDEDIR DATADIR CC TINY_GGUF HF_DIR PYTHON
set -uo pipefail
src=$1 build=$2 prefix=$3 bindir=$4 libdir=$5 includedir=$6 datadir=$7 cc=$8 gguf=$9 hf=${10} py=${11}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
stage=$tmp/stage
B=$stage$(abs "$bindir"); L=$stage$(abs "$libdir"); I=$stage$(abs "$includedir"); D=$stage$(abs "$datadir")

meson install -C "$build" --no-rebuild --quiet --destdir "$stage" > "$tmp/install.log" 2>&1
rc=$?
check "meson install --destdir exits 0" '[ $rc = 0 ] || { tail -20 "$tmp/install.log"; false; }'
[ $rc = 0 ] || exit 1
# nothing of the build tree: a clean environment for what follows
unset GST_PLUGIN_PATH GST_PLUGIN_PATH_1_0 AG_BUILD_DIR LD_LIBRARY_PATH PKG_CONFIG_PATH
export GST_REGISTRY_1_0=$tmp/registry.bin GST_REGISTRY_FORK=no
export PATH=$B:/usr/bin:/bin

# ---- (a) the plugin ----
plugdir=$L/gstreamer-1.0
check "plugin installed in LIBDIR/gstreamer-1.0" '[ -f "$plugdir/libgstanygpt.so" ]'
GST_PLUGIN_PATH=$plugdir gst-inspect-1.0 anygpt > "$tmp/inspect" 2>&1
rc=$?
check "gst-inspect-1.0 anygpt finds the installed plugin" \
  '[ $rc = 0 ] && grep -q "Filename *$plugdir/libgstanygpt.so" "$tmp/inspect" || { cat "$tmp/inspect"; false; }'
want=$(grep -ho 'GST_ELEMENT_REGISTER_DEFINE[A-Z_]* *([a-z0-9_]*, *"[a-z0-9]*"' "$src"/gst/*.c | sed 's/.*"\(.*\)"/\1/' | sort)
got=$(awk '/^ +[a-z0-9]+: /{sub(":", "", $1); print $1}' "$tmp/inspect" | sort)
check "every element the sources register is listed ($(echo $want | wc -w): $(echo $want))" \
  '[ "$(echo $want | wc -w)" -ge 7 ] && [ "$want" = "$got" ] || { echo "listed: $got"; false; }'

# ---- (b) the core library for apps ----
check "versioned libanygpt.so.N installed" 'ls "$L"/libanygpt.so.[0-9]* > /dev/null 2>&1 && [ -L "$L/libanygpt.so" ]'
missing=""
for h in "$src"/core/include/anygpt/*.h; do
  [ -f "$I/anygpt/$(basename "$h")" ] || missing="$missing $(basename "$h")"
done
check "every public header installed${missing:+ (missing:$missing)}" '[ -z "$missing" ]'
export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs anygpt 2>&1)
rc=$?
check "pkg-config anygpt: $flags" '[ $rc = 0 ] && [[ "$flags" == *-lanygpt* ]]'
bad=""
for h in "$I"/anygpt/*.h; do
  printf '#include <anygpt/%s>\nint ag_header_alone(void);\nint ag_header_alone(void) { return 0; }\n' "$(basename "$h")" > "$tmp/h.c"
  # shellcheck disable=SC2086
  $cc -std=c17 -Wall -Werror -c "$tmp/h.c" -o "$tmp/h.o" $(pkg-config --cflags anygpt) 2> "$tmp/h.err" || bad="$bad $(basename "$h")"
done
check "each installed header compiles on its own${bad:+ (not:$bad)}" '[ -z "$bad" ] || { head -20 "$tmp/h.err"; false; }'
# shellcheck disable=SC2086
$cc -std=c17 -Wall -Werror "$src/tests/install/tokenize_app.c" -o "$tmp/tokenize_app" $flags 2> "$tmp/cc.err"
rc=$?
check "an app builds with pkg-config --cflags --libs anygpt" '[ $rc = 0 ] || { cat "$tmp/cc.err"; false; }'
text="Hello world, how are you today?"
LD_LIBRARY_PATH=$L "$tmp/tokenize_app" "$gguf" "$text" > "$tmp/ids" 2> "$tmp/app.err"
rc=$?
check "the app runs on the installed libanygpt" \
  '[ $rc = 0 ] && LD_LIBRARY_PATH=$L ldd "$tmp/tokenize_app" | grep -q "libanygpt.so.[0-9]* => $L/" || { cat "$tmp/app.err"; false; }'
ref=$("$py" -c 'import sys, sentencepiece as s; p = s.SentencePieceProcessor(model_file=sys.argv[1]); print(" ".join(map(str, p.encode(sys.argv[2]))))' "$hf/tokenizer.model" "$text" 2>&1)
check "its ids are SentencePiece's ($(head -1 "$tmp/ids"))" '[ -n "$ref" ] && [ "$(head -1 "$tmp/ids")" = "$ref" ] || { echo "sentencepiece: $ref"; false; }'
check "its decode gives the text back" '[ "$(sed -n 2p "$tmp/ids")" = "$text" ]'
LD_LIBRARY_PATH=$L "$tmp/tokenize_app" "$tmp/ids" "x" > /dev/null 2> "$tmp/app.err"
rc=$?
check "a file that is not GGUF: exit 1 with an error" '[ $rc = 1 ] && grep -q "^error: " "$tmp/app.err"'

# ---- (c) the tools on PATH ----
anygpt-convert --help > "$tmp/help" 2>&1
rc=$?
check "anygpt-convert --help runs from the prefix ($(command -v anygpt-convert))" \
  '[ $rc = 0 ] && [ "$(command -v anygpt-convert)" = "$B/anygpt-convert" ] && grep -qi "usage" "$tmp/help" || { cat "$tmp/help"; false; }'
for t in anygpt-run anygpt-gguf-info anygpt-quantize anygpt-bench; do
  check "$t installed" '[ -x "$B/$t" ]'
done

# ---- (d) the pipeline scripts in share/ ----
P=$D/gst-anygpt/pipelines
check "pipeline scripts and their helpers installed" '[ -x "$P/voice-assistant.sh" ] && [ -f "$P/lib/common.sh" ] && [ -f "$P/lib/installed.sh" ]'
check "voice-assistant.sh --help from share/" '"$P/voice-assistant.sh" --help | grep -q "^usage:"'
mkdir -p "$tmp/models" && ln -s "$gguf" "$tmp/models/anygpt-llm.gguf"
echo "Hello" | PATH=/usr/bin:/bin "$P/chat.sh" --models "$tmp/models" -d cpu -n 6 -s 1 -t 0 > "$tmp/chat" 2> "$tmp/chat.err"
rc=$?
check "installed chat.sh --models DIR answers through the prefix's anygpt-run and plugin" \
  '[ $rc = 0 ] && [ -s "$tmp/chat" ] || { cat "$tmp/chat.err"; false; }'
echo "Hello" | PATH=/usr/bin:/bin ANYGPT_MODELS=$tmp/models "$P/chat.sh" -d cpu -n 6 -s 1 -t 0 > "$tmp/chat2" 2> "$tmp/chat2.err"
rc=$?
check "installed chat.sh with ANYGPT_MODELS gives the same reply" '[ $rc = 0 ] && cmp -s "$tmp/chat" "$tmp/chat2" || { cat "$tmp/chat2.err"; false; }'
PATH=/usr/bin:/bin ANYGPT_MODELS= ANYGPT_LLM= "$P/chat.sh" < /dev/null > /dev/null 2> "$tmp/nomodel"
rc=$?
check "installed chat.sh without models: exit 2 naming ANYGPT_MODELS" '[ $rc = 2 ] && grep -q ANYGPT_MODELS "$tmp/nomodel" || { cat "$tmp/nomodel"; false; }'
exit $fail
