#!/usr/bin/env bash
# The barrier mutation check: deletes each __syncthreads() of kernels/ (.cu and .cuh files) in
# turn, rebuilds the sim tests and runs them; every such mutant must make a sim test fail. The
# sources are restored after each mutant (and on interruption). Uses the build folder
# $ATTNKIT_BUILD_DIR (default build-mutation, configured here without CUDA so that only the host
# copy of a kernel rebuilds).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ATTNKIT_BUILD_DIR:-build-mutation}
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  ATTNKIT_BUILD_DIR=$build_dir scripts/configure.sh -DATTNKIT_CUDA=OFF -DATTNKIT_BUILD_EXAMPLES=OFF \
    -DATTNKIT_BUILD_BENCHMARKS=OFF >/dev/null
fi
cmake --build "$build_dir" --target attnkit_sim_tests >/dev/null

backup=$(mktemp)
mutated_file=""
restore() {
  if [ -n "$mutated_file" ]; then cp "$backup" "$mutated_file"; fi
  mutated_file=""
}
trap 'restore; rm -f "$backup"' EXIT INT TERM

mutants=0
survivors=()
for file in kernels/*.cu kernels/*.cuh; do
  count=$({ grep -o '__syncthreads()' "$file" || true; } | wc -l)
  for ((k = 1; k <= count; ++k)); do
    cp "$file" "$backup"
    mutated_file=$file
    line=$(grep -n '__syncthreads()' "$file" | awk -v k="$k" -F: '{n += gsub(/__syncthreads\(\)/, "&"); if (n >= k) {print $1; exit}}')
    # Delete the k-th occurrence (with its semicolon).
    perl -0pi -e 'my $n = 0; s/__syncthreads\(\);/++$n == '"$k"' ? "" : $&/ge' "$file"
    mutants=$((mutants + 1))
    if ! cmake --build "$build_dir" --target attnkit_sim_tests >/dev/null 2>&1; then
      echo "mutant $file:$line does not compile (counted as caught)"
    elif "$build_dir"/tests/attnkit_sim_tests --gtest_brief=1 >/dev/null 2>&1; then
      survivors+=("$file:$line")
      echo "SURVIVED: deleting the __syncthreads() at $file:$line fails no sim test"
    else
      echo "caught: the __syncthreads() at $file:$line"
    fi
    restore
  done
done
cmake --build "$build_dir" --target attnkit_sim_tests >/dev/null
echo "$mutants barrier mutants, ${#survivors[@]} survived"
[ ${#survivors[@]} -eq 0 ]
