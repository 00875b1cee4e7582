#!/usr/bin/env bash
# The Python environment of the bindings' build and tests: .venv-python (kept out of git), made
# once from Debian's Python with its packages visible (NumPy, pytest and PyTorch, which
# scripts/deps.sh installs), plus nanobind from PyPI for the module's build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-python
python=/usr/bin/python3
[ -x "$python" ] || python=python3
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c "import nanobind" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check "nanobind>=3,<4"
fi
