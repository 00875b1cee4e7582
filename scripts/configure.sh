#!/usr/bin/env bash
# Configures the build folder (default: build/, or $ATTNKIT_BUILD_DIR) in Release mode; extra
# arguments go to CMake. Ninja is used for a new build folder when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ATTNKIT_BUILD_DIR:-build}
generator=()
if [ ! -f "$build_dir/CMakeCache.txt" ] && command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi
# The Python module builds against .venv-python's Python (scripts/python_env.sh) where it exists.
python=()
[ -x .venv-python/bin/python ] && python=(-DPython_EXECUTABLE="$PWD/.venv-python/bin/python")
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${python[@]}" "$@"
