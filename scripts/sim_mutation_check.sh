#!/usr/bin/env bash
# The barrier mutation check: deletes each __syncthreads() of kernels/ (.cu and .cuh files) in
# turn, rebuilds the sim tests and runs them; every such mutant must make a sim test fail. The
# sources are restored after each mutant (and on interruption). Uses the build folder
# $ATTNKIT_BUILD_DIR (default build-mutation, configured here without CUDA so that only the host
# copy of a kernel rebuilds).
#
# A mutant first meets the tests of its own family (the suites of tests/sim/*.cpp and the device
# ops' tests that include a launcher header of the mutated file), stopping at the first failure;
# only one that survives them runs the whole sim suite.
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

# The gtest filter of the suites that test `file`: those of the test files that include one of
# the launcher headers (kernels/*.h but the dialect) that `file`, or a .cuh it includes,
# includes. Empty when none do.
family_filter() {
  local file=$1 headers sources
  headers=$(grep -ho '#include "kernels/[a-z_]*\.h"' "$file" $(grep -o 'kernels/[a-z_]*\.cuh' "$file" | sort -u) \
              2>/dev/null | grep -v 'kernels/dialect\.h' | sort -u | sed 's/#include //')
  [ -n "$headers" ] || return 0
  sources=$(grep -lF "$headers" tests/sim/*.cpp tests/test_device_ops.cpp 2>/dev/null || true)
  [ -n "$sources" ] || return 0
  grep -ho '^TEST\(_F\)\?([A-Za-z0-9_]*, *[A-Za-z0-9_]*' $sources | sed 's/.*(\([A-Za-z0-9_]*\), *\([A-Za-z0-9_]*\)/\1.\2/' |
    sort -u | paste -sd: -
}

# Whether the sim tests (those of `filter` first, when there is one) fail.
fails() {
  local tests="$build_dir"/tests/attnkit_sim_tests filter=$1
  if [ -n "$filter" ] && ! "$tests" --gtest_brief=1 --gtest_fail_fast --gtest_filter="$filter" >/dev/null 2>&1; then
    return 0
  fi
  ! "$tests" --gtest_brief=1 --gtest_fail_fast >/dev/null 2>&1
}

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
    elif fails "$(family_filter "$file")"; then
      echo "caught: the __syncthreads() at $file:$line"
    else
      survivors+=("$file:$line")
      echo "SURVIVED: deleting the __syncthreads() at $file:$line fails no sim test"
    fi
    restore
  done
done
cmake --build "$build_dir" --target attnkit_sim_tests >/dev/null
echo "$mutants barrier mutants, ${#survivors[@]} survived"
[ ${#survivors[@]} -eq 0 ]
