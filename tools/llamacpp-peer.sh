#!/usr/bin/env bash
# llama.cpp's Vulkan build as a speed peer on machines that cannot reach the npm registry, such as
# the lent GPU machines: pack it here, carry the file, run it there. The binaries are the prebuilt
# ones of the npm package @node-llama-cpp/linux-x64-vulkan, the same version as the CPU peer of
# ../shared/bench; tools/llamacpp-peer.c, compiled here against the headers of the llama.cpp
# release those binaries came from (the git bundle inside node-llama-cpp), times them.
#
#   tools/llamacpp-peer.sh pack OUT.tar.xz      here: fetch (once), compile, pack (~10 MB)
#   tools/llamacpp-peer.sh run PACK MODEL.gguf PROMPT.txt [N_GEN] [THREADS]
#                                               there: unpack (once per pack), time prefill of the
#                                               prompt's tokens and greedy decode of N_GEN (64)
#
# Nothing of it enters the project: the downloads stay in ${LLAMACPP_PEER_CACHE:-~/.cache/anygpt-llamacpp-peer},
# the unpacked copy in ${TMPDIR:-/tmp}/anygpt-llamacpp-peer. llama.cpp skips CPU Vulkan devices
# (lavapipe) unless GGML_VK_VISIBLE_DEVICES names them; the run fails rather than time the CPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=3.21.1
usage() { sed -n '8,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage

case $1 in
  pack)
    [ $# -eq 2 ] || usage
    out=$(realpath -m "$2")
    for c in npm git cc xz; do
      command -v $c >/dev/null || { echo "llamacpp-peer: pack needs $c" >&2; exit 1; }
    done
    cache=${LLAMACPP_PEER_CACHE:-$HOME/.cache/anygpt-llamacpp-peer}
    mkdir -p "$cache"
    main=$cache/node-llama-cpp-$version.tgz vk=$cache/node-llama-cpp-linux-x64-vulkan-$version.tgz
    [ -f "$main" ] && [ -f "$vk" ] ||
      (cd "$cache" && npm pack -q "node-llama-cpp@$version" "@node-llama-cpp/linux-x64-vulkan@$version" >/dev/null)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/src" "$work/peer"
    tar -C "$work/src" -xzf "$main" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
    git clone -q "$work/src/package/llama/gitRelease.bundle" "$work/src/llama.cpp" 2>/dev/null
    tar -C "$work/src" -xzf "$vk" package/bins
    bins=$(dirname "$(find "$work/src/package/bins" -name 'libllama.*.so' | head -1)")
    # the libraries the driver links and the backends ggml loads at run time (Vulkan, and the
    # CPU variants it chooses from by the host's instruction set)
    cp "$bins"/libggml-base.so "$bins"/libggml.*.so "$bins"/libllama.*.so "$bins"/libggml-vulkan.so \
       "$bins"/libggml-cpu-*.so "$work/peer/"
    cc -std=c17 -O2 -Wall -Wextra -Werror -I"$work/src/llama.cpp/include" -I"$work/src/llama.cpp/ggml/include" \
       "$here/llamacpp-peer.c" -o "$work/peer/llamacpp-peer" -L"$work/peer" \
       -l:"$(basename "$bins"/libllama.*.so)" -l:"$(basename "$bins"/libggml.*.so)" -l:libggml-base.so \
       -Wl,-rpath,'$ORIGIN'
    echo "node-llama-cpp $version, llama.cpp $(sed -nE 's/.*"tag": "([^"]*)".*/\1/p' \
      "$work/src/package/llama/llama.cpp.info.json") (node-llama-cpp's tag), linux-x64-vulkan" >"$work/peer/VERSION"
    tar -C "$work" -cf - peer | xz -T0 -9 >"$out.part"
    mv "$out.part" "$out"
    echo "llamacpp-peer: packed $(cat "$work/peer/VERSION") into $out ($(du -h "$out" | cut -f1))"
    ;;
  run)
    [ $# -ge 4 ] && [ $# -le 6 ] || usage
    pack=$2 model=$3 prompt=$4 ngen=${5:-64} threads=${6:-$(nproc)}
    [ -f "$pack" ] || { echo "llamacpp-peer: no pack at $pack (make one with: $0 pack FILE)" >&2; exit 1; }
    dir=${TMPDIR:-/tmp}/anygpt-llamacpp-peer
    stamp="$(realpath "$pack") $(stat -c '%s %Y' "$pack")"
    if [ "$(cat "$dir/.pack" 2>/dev/null)" != "$stamp" ]; then
      rm -rf "$dir" && mkdir -p "$dir"
      xz -dc "$pack" | tar -C "$dir" -xf -
      echo "$stamp" >"$dir/.pack"
    fi
    echo "llama.cpp peer: $(cat "$dir/peer/VERSION")"
    exec "$dir/peer/llamacpp-peer" "$dir/peer" "$model" "$prompt" "$ngen" "$threads"
    ;;
  *) usage ;;
esac
