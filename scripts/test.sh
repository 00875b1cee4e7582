#!/usr/bin/env bash
# The tests, from a fresh machine: installs what is missing, builds attnkit and its tests, and
# runs them all (the gpu ones skip, saying why, where no GPU is present), then the Python
# package's with pytest. Extra arguments go to ctest, e.g. scripts/test.sh -L cpu or
# scripts/test.sh -R Gradient.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/python_env.sh
scripts/configure.sh
build_dir=${ATTNKIT_BUILD_DIR:-build}
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
# The Python package, as the build tree holds it.
PYTHONPATH="$PWD/$build_dir/python" .venv-python/bin/python -m pytest -q python/tests
