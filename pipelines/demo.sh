#!/usr/bin/env bash
# The first command a new user runs: builds gst-anygpt (if needed) and shows what works today.
# Today that is the compute core on both backends (a self-check of the ops against the numpy
# references, the speed figures of LLM-decode-shaped and diffusion-shaped workloads) and the
# GStreamer plugin's registration. The voice-assistant demo replaces this with issue 6.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${AG_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dbuildtype=release
fi
ninja -C "$build"

echo "== GStreamer plugin"
GST_PLUGIN_PATH="$build/gst" gst-inspect-1.0 anygpt | sed -n '1,12p'

echo "== compute core self-check (every op against its numpy reference, cpu and vulkan)"
AG_REQUIRE_VULKAN=0 meson test -C "$build" --suite ops --print-errorlogs | tail -n 6

echo "== compute core speed (2 threads; vulkan on the first Vulkan device, if any)"
"$build/tools/anygpt-bench" --threads 2 --quick
