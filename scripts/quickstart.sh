#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, builds attnkit, and runs seed
# 003's attention-focus experiment on the CPU, printing the models, their training and the
# attention vectors they learn.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/configure.sh
build_dir=${ATTNKIT_BUILD_DIR:-build}
cmake --build "$build_dir" --target attention_focus
"$build_dir"/examples/attention_focus
