#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, builds attnkit, and trains the
# demonstration model on the CPU, printing its progress and result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/configure.sh
build_dir=${ATTNKIT_BUILD_DIR:-build}
cmake --build "$build_dir" --target attnkit_demo
"$build_dir"/examples/attnkit_demo
