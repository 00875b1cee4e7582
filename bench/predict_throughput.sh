#!/usr/bin/env bash
# End-to-end throughput of `attnkit predict --input` (reading, segmentation, tokenising, the
# forward passes, writing JSON lines) over the waimai reviews, for each model named (default:
# bilstm-attention-trainable and mlp), each trained one epoch first into a scratch run; three
# timed passes a model, the fastest counting. Prints reviews a second and writes
# bench/results/DATE-cpu-predict-COMMIT.md.
#   bench/predict_throughput.sh [model ...]    (the CSV: $ATTNKIT_DATA or ../shared/data/waimai_10k.csv)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ATTNKIT_BUILD_DIR:-build}
data=${ATTNKIT_DATA:-../shared/data/waimai_10k.csv}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(bilstm-attention-trainable mlp)
cmake --build "$build_dir" --target attnkit_cli >/dev/null
attnkit=$build_dir/bin/attnkit
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
reviews=$(($(python3 -c "import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1]))))" "$data") - 1))
stamp=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short HEAD)
machine=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
out=bench/results/$stamp-cpu-predict-$commit.md
{
  echo "# predict --input throughput on the cpu ($machine, $(nproc) threads), $stamp, commit $commit"
  echo
  echo "$reviews reviews of $data, end to end (one process: loading the run and jieba's tables included), the fastest of 3."
  echo
  echo "| model | seconds | reviews/s |"
  echo "|---|---|---|"
} >"$out"
for model in "${models[@]}"; do
  "$attnkit" train --model "$model" --epochs 1 --data "$data" --report "$scratch/$model" >/dev/null
  times=()
  for _ in 1 2 3; do
    TIMEFORMAT=%R
    times+=("$({ time "$attnkit" predict --run "$scratch/$model" --input "$data" \
                  --output "$scratch/$model.jsonl" 2>/dev/null; } 2>&1)")
  done
  printf '%s\n' "${times[@]}" | awk -v model="$model" -v n="$reviews" \
    'NR == 1 || $1 < best { best = $1 } END { printf "| %s | %.3f | %.0f |\n", model, best, n / best }' >>"$out"
done
cat "$out"
