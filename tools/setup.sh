#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages rewardc builds with (when missing) and
# builds it into build/ (or $REWARDC_BUILD). Extra arguments go to cmake.
# Usage: tools/setup.sh [-DRC_OPENCL=ON ...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libcjson-dev libpcre2-dev libopenblas-dev
          libopenblas-openmp-dev libmicrohttpd-dev libopenmpi-dev openmpi-bin curl)
if [[ " $* " == *"RC_OPENCL=ON"* ]]; then
    packages+=(ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libclblast-dev)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build=${REWARDC_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/rewardc"
