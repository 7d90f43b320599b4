#!/usr/bin/env bash
# Installs everything gst-anygpt needs to build and test on Debian 12. Run it as yourself: it
# asks sudo only when packages are missing and you are not root (as root, no sudo is needed).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

PKGS=(
  # build
  gcc libc6-dev meson ninja-build pkg-config
  # GStreamer plugin and its tests
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  # the captioning pipelines: textoverlay (pango); VP8 / Matroska / PNG are in plugins-good
  gstreamer1.0-x
  # the Python app (pipelines/apps/voice-chat.py): PyGObject and GStreamer's introspection data
  python3-gi gir1.2-gstreamer-1.0
  # live-audio test: a PulseAudio daemon with null sinks (pulsesrc/pulsesink are in plugins-good);
  # webrtcdsp / webrtcechoprobe (echo cancellation, voice activity) are in plugins-bad
  pulseaudio pulseaudio-utils gstreamer1.0-plugins-bad
  # Vulkan backend: headers + loader, shader compiler, Mesa's lavapipe CPU driver for tests
  libvulkan-dev glslang-tools mesa-vulkan-drivers vulkan-tools
  # cpu backend
  libopenblas-dev
  # independent references for the tests (Debian's python, not a venv)
  python3 python3-numpy python3-torch python3-torchvision python3-sentencepiece python3-pil
  # leak checking of the element tests
  valgrind
  # tools/soak.sh draws its RSS / latency plot (PNG) with gnuplot
  gnuplot-nox
  # coverage-guided fuzzing of the readers (tools/fuzz.sh; run-tests.sh skips it without them)
  clang libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  if [ -n "$SUDO" ] && ! command -v sudo > /dev/null; then
    echo "setup-deps: not root and no sudo: run this script as root to install them" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-deps: all ${#PKGS[@]} packages present"
fi
