#!/usr/bin/env bash
# The CPU and sim tests under AddressSanitizer and UndefinedBehaviorSanitizer, then every
# libFuzzer target of fuzz/ for a bounded time: a clang build without CUDA in build-sanitize/ (or
# $ATTNKIT_BUILD_DIR). Installs what is missing (clang and its sanitizer runtimes).
#   scripts/sanitize.sh                     tests, then each fuzz target for $ATTNKIT_FUZZ_SECONDS (30)
#   scripts/sanitize.sh --fuzz-only         only the fuzz targets
# A fuzz target's finding (crash, sanitizer report, unexpected exception, leak, timeout) ends
# the script with its input saved in the build folder's fuzz-findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang-14 libclang-rt-14-dev
build_dir=${ATTNKIT_BUILD_DIR:-build-sanitize}
seconds=${ATTNKIT_FUZZ_SECONDS:-30}
CC=clang-14 CXX=clang++-14 ATTNKIT_BUILD_DIR=$build_dir scripts/configure.sh -DATTNKIT_CUDA=OFF -DATTNKIT_SANITIZE=ON \
  -DATTNKIT_FUZZ=ON -DATTNKIT_BUILD_BENCHMARKS=OFF -DATTNKIT_NATIVE_ARCH=OFF -DATTNKIT_PYTHON=OFF >/dev/null
cmake --build "$build_dir"

# The sim's guard pages end a run that reads past a buffer with a message of its own: the
# sanitizer leaves SIGSEGV to it. An allocation too large for memory is an attnkit::Error, not
# a sanitizer report.
export ASAN_OPTIONS=handle_segv=0:allow_user_segv_handler=1:detect_leaks=1:strict_string_checks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1
if [ "${1:-}" != "--fuzz-only" ]; then
  ctest --test-dir "$build_dir" -L 'cpu|sim' --output-on-failure -j "$(nproc)"
fi

findings=$build_dir/fuzz-findings
mkdir -p "$findings"
for target in csv text tokenizer safetensors model_config; do
  # New inputs go to a scratch corpus, so the seed corpus in the repository stays as it is.
  scratch=$(mktemp -d)
  log=$build_dir/fuzz_$target.log
  echo "fuzz_$target: $seconds s over fuzz/corpus/$target"
  if ! "$build_dir/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
         -print_final_stats=1 -artifact_prefix="$findings/$target-" "$scratch" "fuzz/corpus/$target" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz_$target found a failing input: $(ls -t "$findings/$target-"* | head -n 1)" >&2
    rm -rf "$scratch"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
  rm -rf "$scratch"
done
