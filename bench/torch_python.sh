#!/usr/bin/env bash
# Prints the Python that runs the PyTorch side of the comparisons: $ATTNKIT_TORCH_PYTHON when set
# (a GPU machine's own PyTorch), else .venv-bench/'s, into which PyTorch's build from PyPI (MKL
# and oneDNN inside) is installed the first time. Debian's python3-torch links the reference BLAS
# and is no fair peer.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ATTNKIT_TORCH_PYTHON:-}" ]; then
  echo "$ATTNKIT_TORCH_PYTHON"
  exit 0
fi
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench >&2
.venv-bench/bin/python -c "import torch" 2>/dev/null || .venv-bench/bin/pip install --quiet torch==2.5.1 numpy >&2
echo "$PWD/.venv-bench/bin/python"
