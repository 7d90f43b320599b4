#!/usr/bin/env bash
# The LLM pipeline scripts on the tiny random model, against the plugin of the build tree:
# chat.sh answers stdin with non-empty text; the text-to-tokens scripts write whole int32 ids.
# usage: test_llm_pipelines.sh SOURCE_ROOT MODEL.gguf
set -uo pipefail
root=$1; export ANYGPT_LLM=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

echo "ka lo mi" | "$root/pipelines/chat.sh" -d cpu -n 8 -t 0 > "$tmp/reply" 2> "$tmp/err"
rc=$?
check "chat.sh exits 0" '[ $rc = 0 ] || { cat "$tmp/err"; false; }'
check "chat.sh reply is not empty" '[ "$(tr -d "[:space:]" < "$tmp/reply" | wc -c)" -gt 0 ]'
check "chat.sh --help" '"$root/pipelines/chat.sh" --help | grep -q "usage:"'
check "chat.sh without a model fails clearly" \
  '! ANYGPT_LLM= "$root/pipelines/chat.sh" < /dev/null 2> "$tmp/err2" && grep -q "no model" "$tmp/err2"'
for kind in image music; do
  s="$root/pipelines/text-to-$kind-tokens.sh"
  check "text-to-$kind-tokens.sh writes whole ids" \
    '"$s" -d cpu -n 24 -s 2 -o "$tmp/$kind.tokens" "a red car" 2> "$tmp/err" && [ -f "$tmp/$kind.tokens" ] && [ $(( $(stat -c %s "$tmp/$kind.tokens") % 4 )) = 0 ] || { cat "$tmp/err"; false; }'
done
exit $fail
