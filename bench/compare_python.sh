#!/usr/bin/env bash
# The Python bindings measured: the cost of a call beyond C++'s, and attnkit's attention beside
# PyTorch's in one process (bench/python_ops.py). Runs the build folder's module in the Python of
# the PyTorch comparisons (bench/torch_python.sh: PyTorch from PyPI); [cpu|cuda].
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
build_dir=${ATTNKIT_BUILD_DIR:-build}
scripts/python_env.sh
cmake --build "$build_dir" --target _attnkit attnkit_bench_call_overhead >/dev/null
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$build_dir"/bench/attnkit_bench_call_overhead --benchmark_format=json --benchmark_min_time=0.5 >"$json"
python=$(bench/torch_python.sh)
PYTHONPATH="$PWD/$build_dir/python" "$python" bench/python_ops.py --cpp "$json" --device "$device"
