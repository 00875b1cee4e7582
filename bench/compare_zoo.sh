#!/usr/bin/env bash
# One training epoch of every zoo model in attnkit and in its peers: PyTorch (bench/torch_zoo.py)
# and Keras 3 on TensorFlow (bench/keras_zoo.py, the blog's own stack), with the same models,
# data, batch and optimizer, on the CPU (default) or with `cuda` on the GPU (PyTorch only). Model
# by model the sides take turns, so that all meet the same load; three epochs each, the fastest
# counting. With --load N, each model is then timed again on every side while N busy processes
# (one shell loop each) run beside it: a machine that is also doing other work.
# On the CPU each epoch's matrix products are also set beside attnkit's best product rate
# (peak/gemm): the epoch's floor. Writes bench/results/DATE-DEVICE-zoo[-loadN]-COMMIT.md and the
# runs' JSON in the folder of the same name.
#   bench/compare_zoo.sh [--peers torch,keras] [--load N] [--models a,b] [cpu|cuda]
# The peers' Pythons: bench/torch_python.sh, bench/keras_python.sh. ATTNKIT_ZOO_BENCH names
# another build's attnkit_bench_zoo_epochs to time instead of this build's.
set -euo pipefail
cd "$(dirname "$0")/.."
device=cpu peers=torch,keras load=0 models=
while [ $# -gt 0 ]; do
  case $1 in
    --peers) peers=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    cpu|cuda) device=$1; shift ;;
    *) echo "compare_zoo.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $load =~ ^[0-9]+$ ]] || { echo "compare_zoo.sh: --load takes a whole number, got '$load'" >&2; exit 2; }
[ "$device" = cpu ] || peers=torch  # the Keras peer is the CPU build of TensorFlow
build_dir=${ATTNKIT_BUILD_DIR:-build}
bench=${ATTNKIT_ZOO_BENCH:-$build_dir/bench/attnkit_bench_zoo_epochs}
[ -n "${ATTNKIT_ZOO_BENCH:-}" ] || cmake --build "$build_dir" --target attnkit_bench_zoo_epochs >/dev/null
declare -A python
for peer in ${peers//,/ }; do
  case $peer in
    torch|keras) python[$peer]=$(bench/${peer}_python.sh) ;;
    *) echo "compare_zoo.sh: unknown peer '$peer' (torch, keras)" >&2; exit 2 ;;
  esac
done
stamp=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short HEAD)
out=bench/results/$stamp-$device-zoo$([ "$load" = 0 ] || echo "-load$load")-$commit
rm -rf "$out" && mkdir -p "$out"
threads=$(nproc)
[ -n "$models" ] || models=$("$bench" --benchmark_list_tests | grep '^epoch/' | cut -d/ -f2 | paste -sd, -)
# attnkit's best product rate, which sets each epoch's floor in the table (CPU only).
[ "$device" != cpu ] || "$bench" --benchmark_filter='^peak/' --benchmark_repetitions=3 --benchmark_format=json >"$out/peak.json"

busy=()
start_load() { for _ in $(seq "$load"); do (while :; do :; done) & busy+=($!); done; }
stop_load() { [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null || true; wait "${busy[@]}" 2>/dev/null || true; busy=(); }
trap stop_load EXIT

# time_sides MODEL SUFFIX: every side's three epochs of MODEL, in turn.
time_sides() {
  "$bench" --device="$device" --benchmark_filter="^epoch/$1/" --benchmark_repetitions=3 \
    --benchmark_format=json >"$out/attnkit-$1$2.json"
  for peer in ${peers//,/ }; do
    if [ "$peer" = torch ]; then
      "${python[torch]}" bench/torch_zoo.py --device "$device" --threads "$threads" --models "$1" --repeats 3 \
        --json "$out/torch-$1$2.json" >/dev/null
    else
      "${python[keras]}" bench/keras_zoo.py --threads "$threads" --models "$1" --repeats 3 \
        --json "$out/keras-$1$2.json" >/dev/null
    fi
  done
}

for model in ${models//,/ }; do
  time_sides "$model" ""
  if [ "$load" != 0 ]; then
    start_load
    time_sides "$model" "-loaded"
    stop_load
  fi
done
machine=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
[ "$device" = cpu ] || machine=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
python3 bench/zoo_table.py "$out" \
  "Zoo epochs on $device ($machine, $threads threads$([ "$load" = 0 ] || echo ", then with $load busy processes beside")), $stamp, commit $commit" \
  >"$out.md"
cat "$out.md"
