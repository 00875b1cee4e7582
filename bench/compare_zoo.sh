#!/usr/bin/env bash
# One training epoch of every zoo model in attnkit and in PyTorch (bench/torch_zoo.py: the same
# models, data, batch and optimizer), on the CPU (default) or with `cuda` on the GPU, model by
# model, the two taking turns so that both meet the same load; three epochs each, the fastest
# counting. Writes bench/results/DATE-DEVICE-zoo.md and the runs' JSON in DATE-DEVICE-zoo/.
#   bench/compare_zoo.sh [cpu|cuda]
# PyTorch: the Python of $ATTNKIT_TORCH_PYTHON when set (the GPU machine's), else PyPI's build
# (MKL and oneDNN inside) installed here into .venv-bench/. Debian's python3-torch links the
# reference BLAS and is no fair peer.
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
cmake --build "$build_dir" --target attnkit_bench_zoo_epochs >/dev/null
stamp=$(date -u +%Y-%m-%d)
out=bench/results/$stamp-$device-zoo
rm -rf "$out" && mkdir -p "$out"
threads=$(nproc)
for model in $("$build_dir/bench/attnkit_bench_zoo_epochs" --benchmark_list_tests | cut -d/ -f2); do
  "$build_dir/bench/attnkit_bench_zoo_epochs" --device="$device" --benchmark_filter="^epoch/$model/" \
    --benchmark_repetitions=3 --benchmark_format=json >"$out/attnkit-$model.json"
  "$python" bench/torch_zoo.py --device "$device" --threads "$threads" --models "$model" --repeats 3 \
    --json "$out/torch-$model.json" >/dev/null
done
machine=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
[ "$device" = cpu ] || machine=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
python3 bench/zoo_table.py "$out" \
  "Zoo epochs on $device ($machine, $threads threads), $stamp, commit $(git rev-parse --short HEAD)" >"$out.md"
cat "$out.md"
