#!/usr/bin/env bash
# Prints the Python that runs the Keras side of the comparisons (bench/keras_zoo.py):
# $ATTNKIT_KERAS_PYTHON when set, else .venv-keras/'s, into which TensorFlow's CPU build from
# PyPI (with Keras 3) is installed the first time: the stack of the blog post the zoo follows.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ATTNKIT_KERAS_PYTHON:-}" ]; then
  echo "$ATTNKIT_KERAS_PYTHON"
  exit 0
fi
[ -x .venv-keras/bin/python ] || python3 -m venv .venv-keras >&2
.venv-keras/bin/python -c "import tensorflow" 2>/dev/null ||
  .venv-keras/bin/pip install --quiet tensorflow-cpu==2.21.0 numpy >&2
echo "$PWD/.venv-keras/bin/python"
