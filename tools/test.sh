#!/usr/bin/env bash
# Sets up (tools/setup.sh) and runs the whole test suite with ctest.
# Shared data is read from ../shared/data unless REWARDC_DATA points elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh "$@"
build=${REWARDC_BUILD:-build}
cd "$build"
ctest --output-on-failure -j2 --timeout 900
