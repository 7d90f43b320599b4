#!/usr/bin/env bash
# Installs everything gst-anygpt needs to build and test on Debian 12 (run as root or with sudo).
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
  # Vulkan backend: headers + loader, shader compiler, Mesa's lavapipe CPU driver for tests
  libvulkan-dev glslang-tools mesa-vulkan-drivers vulkan-tools
  # cpu backend
  libopenblas-dev
  # independent references for the tests (Debian's python, not a venv)
  python3 python3-numpy python3-torch python3-sentencepiece
  # leak checking of the element tests
  valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-deps: all ${#PKGS[@]} packages present"
fi
