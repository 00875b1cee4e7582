#!/usr/bin/env bash
# How the CPU threads wait, measured: zoo epochs (attnkit_bench_zoo_epochs) with the pool's spin
# before sleeping set by ATTNKIT_SPIN_CHECKS to each value given, idle and then with N busy
# processes beside, the variants taking turns model by model; three epochs each, the fastest
# counting. With ATTNKIT_OPENMP_BENCH naming attnkit_bench_zoo_epochs of a build from before the
# pool (OpenMP, e.g. commit 742f1d5), that binary runs too, with OpenMP's default wait policy
# and with OMP_WAIT_POLICY=passive. Prints one Markdown table.
#   bench/compare_waiting.sh [--load N] [--spins 0,100,1000,10000] [--models lstm,cnn-lstm]
set -euo pipefail
cd "$(dirname "$0")/.."
load=2 spins=0,100,1000,10000 models=lstm,cnn-lstm,bilstm-attention,textcnn,transformer,mlp
while [ $# -gt 0 ]; do
  case $1 in
    --load) load=$2; shift 2 ;;
    --spins) spins=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "compare_waiting.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
build_dir=${ATTNKIT_BUILD_DIR:-build}
cmake --build "$build_dir" --target attnkit_bench_zoo_epochs >/dev/null
bench=$build_dir/bench/attnkit_bench_zoo_epochs

busy=()
start_load() { for _ in $(seq "$load"); do (while :; do :; done) & busy+=($!); done; }
stop_load() { [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null || true; wait "${busy[@]}" 2>/dev/null || true; busy=(); }
trap stop_load EXIT

# fastest BINARY MODEL [ENV...]: the fastest of three epochs, in seconds.
fastest() {
  local binary=$1 model=$2
  shift 2
  env "$@" "$binary" --benchmark_filter="^epoch/$model/" --benchmark_repetitions=3 --benchmark_format=json 2>/dev/null |
    python3 -c 'import json, sys; print(min(b["real_time"] for b in json.load(sys.stdin)["benchmarks"] if b.get("run_type") == "iteration"))'
}

variants=()
for spin in ${spins//,/ }; do variants+=("pool, spin $spin|$bench|ATTNKIT_SPIN_CHECKS=$spin"); done
if [ -n "${ATTNKIT_OPENMP_BENCH:-}" ]; then
  library_dir=$(dirname "$ATTNKIT_OPENMP_BENCH")/..
  variants+=("OpenMP, default wait|$ATTNKIT_OPENMP_BENCH|LD_LIBRARY_PATH=$library_dir")
  variants+=("OpenMP, passive wait|$ATTNKIT_OPENMP_BENCH|LD_LIBRARY_PATH=$library_dir OMP_WAIT_POLICY=passive")
fi

header="| model | load |"
for v in "${variants[@]}"; do header+=" ${v%%|*} s |"; done
echo "$header"
echo "|---|---|$(for _ in "${variants[@]}"; do printf -- '---|'; done)"
for model in ${models//,/ }; do
  for loaded in 0 "$load"; do
    [ "$loaded" = 0 ] || start_load
    row="| $model | $loaded |"
    for v in "${variants[@]}"; do
      IFS='|' read -r _ binary environment <<<"$v"
      # shellcheck disable=SC2086
      row+=" $(printf '%.3f' "$(fastest "$binary" "$model" $environment)") |"
    done
    [ "$loaded" = 0 ] || stop_load
    echo "$row"
  done
done
