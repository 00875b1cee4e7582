#!/usr/bin/env bash
# The attention benchmarks (bench/attention.cpp) and PyTorch's side of them
# (bench/torch_attention.py) in one run, on the CPU (default) or with `cuda` on the GPU; writes
# bench/results/DATE-DEVICE-attention-COMMIT.md (with the plot, on a GPU) and the JSON beside it.
# scripts/gpu_check.sh does the same on a GPU as part of its report. PyTorch: see
# bench/torch_python.sh.
#   bench/compare_attention.sh [cpu|cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
build_dir=${ATTNKIT_BUILD_DIR:-build}
python=$(bench/torch_python.sh)
cmake --build "$build_dir" --target attnkit_bench_attention >/dev/null
commit=$(git rev-parse --short HEAD)
out=bench/results/$(date -u +%Y-%m-%d)-$device-attention-$commit
mkdir -p bench/results
"$build_dir/bench/attnkit_bench_attention" --device="$device" --benchmark_format=json >"$out-attnkit.json"
"$python" bench/torch_attention.py --device "$device" --json "$out-torch.json" >/dev/null
{
  echo "Attention kernels on $device, $(date -u +%Y-%m-%d), commit $commit"
  echo
  python3 bench/attention_table.py "$out-attnkit.json" "$out-torch.json" --plot "$out.png"
} >"$out.md"
cat "$out.md"
