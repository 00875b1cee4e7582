#!/usr/bin/env bash
# One training epoch of every zoo model in attnkit and in PyTorch (bench/torch_zoo.py: the same
# models, data, batch and optimizer), on the CPU (default) or with `cuda` on the GPU, model by
# model, the two taking turns so that both meet the same load; three epochs each, the fastest
# counting. Writes bench/results/DATE-DEVICE-zoo-COMMIT.md and the runs' JSON in
# DATE-DEVICE-zoo-COMMIT/.
#   bench/compare_zoo.sh [cpu|cuda]
# PyTorch: see bench/torch_python.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
build_dir=${ATTNKIT_BUILD_DIR:-build}
python=$(bench/torch_python.sh)
cmake --build "$build_dir" --target attnkit_bench_zoo_epochs >/dev/null
stamp=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short HEAD)
out=bench/results/$stamp-$device-zoo-$commit
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
  "Zoo epochs on $device ($machine, $threads threads), $stamp, commit $commit" >"$out.md"
cat "$out.md"
