#!/usr/bin/env bash
# The Python package as a user installs it: a fresh venv, `pip install .`, then the pytest suites
# against the installed package (not the build tree's). The CUDA backend is left out unless
# ATTNKIT_PACKAGE_CUDA=1: the kernels' CUDA build is the slow part, and scripts/test.sh builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debian's Python, its pytest and PyTorch visible for the tests.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" -m venv --system-site-packages "$work/venv"
cuda=OFF
[ "${ATTNKIT_PACKAGE_CUDA:-0}" = 1 ] && cuda=AUTO
CMAKE_ARGS="-DATTNKIT_CUDA=$cuda" "$work/venv/bin/pip" install -q --disable-pip-version-check \
  --config-settings=build-dir="$work/build" .
cd "$work"
"$work/venv/bin/python" -c "import attnkit, sys; print('attnkit imported from', attnkit.__file__)"
"$work/venv/bin/python" -m pytest -q "$root/python/tests"
