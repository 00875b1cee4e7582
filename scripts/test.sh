#!/usr/bin/env bash
# The tests, from a fresh machine: installs what is missing, builds attnkit and its tests, and
# runs them all (the gpu ones skip, saying why, where no GPU is present). Extra arguments go to
# ctest, e.g. scripts/test.sh -L cpu or scripts/test.sh -R Gradient.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/configure.sh
build_dir=${ATTNKIT_BUILD_DIR:-build}
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
