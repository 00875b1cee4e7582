#!/usr/bin/env bash
# The attention benchmarks (bench/attention.cpp) and PyTorch's side of them
# (bench/torch_attention.py) in one run, on the CPU (default) or with `cuda` on the GPU; writes
# bench/results/DATE-DEVICE-attention.md (with the plot, on a GPU) and the JSON beside it.
# scripts/gpu_check.sh does the same on a GPU as part of its report. PyTorch as in
# bench/compare_zoo.sh.
#   bench/compare_attention.sh [cpu|cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
build_dir=${ATTNKIT_BUILD_DIR:-build}
python=${ATTNKIT_TORCH_PYTHON:-}
if [ -z "$python" ]; then
  [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
  .venv-bench/bin/python -c "import torch" 2>/dev/null || .venv-bench/bin/pip install --quiet torch==2.5.1 numpy
  python=.venv-bench/bin/python
fi
cmake --build "$build_dir" --target attnkit_bench_attention >/dev/null
out=bench/results/$(date -u +%Y-%m-%d)-$device-attention
mkdir -p bench/results
"$build_dir/bench/attnkit_bench_attention" --device="$device" --benchmark_format=json >"$out-attnkit.json"
"$python" bench/torch_attention.py --device "$device" --json "$out-torch.json" >/dev/null
{
  echo "Attention kernels on $device, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
  echo
  python3 bench/attention_table.py "$out-attnkit.json" "$out-torch.json" --plot "$out.png"
} >"$out.md"
cat "$out.md"
