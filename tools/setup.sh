#!/bin/bash
# Installs what building and testing libhtnn needs on Debian 12 (as root, or
# with sudo), then configures the build directory `build` if it is not yet.
# Usage: bash tools/setup.sh [extra meson options...]
set -euo pipefail
packages=(meson ninja-build pkg-config gcc libopenblas-dev libcmocka-dev zlib1g-dev
          libglpk-dev dataset-fashion-mnist python3 python3-numpy python3-pytest
          python3-matplotlib clang binutils valgrind abigail-tools
          libopenmpi-dev openmpi-bin python3-mpi4py)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
    meson setup build "$@"
fi
