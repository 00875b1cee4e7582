#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU: builds attnkit with CUDA for the present GPU,
# runs the gpu and sim tests, runs compute-sanitizer (memcheck, racecheck) over the gpu tests of
# the ops (the zoo's training test aside: it is long, and its ops are those tests'), runs the
# benchmarks (bench/attention.cpp against the ceilings it measures, and every zoo model's epoch;
# each beside PyTorch when the machine's python3 has it with CUDA), and writes the report
# bench/results/DATE-GPU.md with the JSON beside it (all copied to $OUT when that is set).
#
# It installs nothing from the network. nvcc, CMake and ninja are looked for on PATH, in
# /usr/local/cuda and in Python's packages. The libraries the build needs (GoogleTest,
# nlohmann-json, CLI11, Google Benchmark) come from the system, or from the Debian packages in
# .deps/, unpacked into a private prefix: `scripts/gpu_check.sh --fetch` downloads them there on
# a machine with Debian's package network (.deps/ is ignored by git; a run elsewhere carries it).
set -euo pipefail
cd "$(dirname "$0")/.."

deps_packages=(libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian nlohmann-json3-dev libcli11-dev)
if [ "${1:-}" = "--fetch" ]; then
  mkdir -p .deps
  (cd .deps && apt-get download "${deps_packages[@]}")
  echo "downloaded into .deps/: $(ls .deps | wc -l) packages"
  exit 0
fi

say() { echo "gpu_check: $*"; }
started=$(date +%s)

# ---------------------------------------------------------------- tools
find_tool() {  # name, then candidate paths
  local name=$1
  shift
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for candidate in "$@"; do [ -x "$candidate" ] && { echo "$candidate"; return; }; done
  return 1
}
python_prefix=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
nvcc=$(find_tool nvcc /usr/local/cuda/bin/nvcc "$python_prefix"/nvidia/cuda_nvcc/bin/nvcc) ||
  { say "no nvcc found (PATH, /usr/local/cuda/bin, Python's nvidia packages)"; exit 1; }
cmake=$(find_tool cmake "$python_prefix"/cmake/data/bin/cmake) || { say "no cmake found"; exit 1; }
ninja=$(find_tool ninja "$python_prefix"/ninja/data/bin/ninja) || ninja=""
command -v nvidia-smi >/dev/null || { say "nvidia-smi is missing: is there a GPU?"; exit 1; }
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
say "$gpu_name (sm_$capability), driver $driver; nvcc $nvcc; cmake $cmake"

# ---------------------------------------------------------------- libraries from .deps/
prefix_args=()
if compgen -G ".deps/*.deb" >/dev/null; then
  deps_root=/tmp/attnkit-deps
  rm -rf "$deps_root" && mkdir -p "$deps_root"
  for package in .deps/*.deb; do dpkg -x "$package" "$deps_root"; done
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  export LD_LIBRARY_PATH="$deps_root/usr/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  prefix_args=(-DCMAKE_PREFIX_PATH="$deps_root/usr")
  say "libraries from .deps/ unpacked into $deps_root"
fi

# ---------------------------------------------------------------- cuBLAS
# The toolkit beside nvcc may lack cuBLAS while Python's nvidia-cublas wheel holds it (often as
# libcublas.so.N only): name that file to CMake's FindCUDAToolkit.
nvcc_root=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
if ! compgen -G "$nvcc_root/lib*/libcublas.so*" >/dev/null && ! compgen -G "$nvcc_root/targets/*/lib/libcublas.so*" >/dev/null; then
  cublas=$(ls "$python_prefix"/nvidia/cublas/lib/libcublas.so* "$python_prefix"/nvidia/cu*/lib/libcublas.so* 2>/dev/null | head -1 || true)
  if [ -n "$cublas" ]; then
    prefix_args+=(-DCUDA_cublas_LIBRARY="$cublas")
    export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "cuBLAS from $cublas"
  fi
fi

# ---------------------------------------------------------------- cuDNN
# Likewise cuDNN (the recurrent layers): beside nvcc, in the system, or in the nvidia-cudnn wheel.
if ! compgen -G "$nvcc_root/include/cudnn.h" >/dev/null && ! compgen -G "$nvcc_root/targets/*/include/cudnn.h" >/dev/null &&
  [ ! -f /usr/include/cudnn.h ] && [ ! -f /usr/local/include/cudnn.h ]; then
  cudnn_root="$python_prefix/nvidia/cudnn"
  if [ -f "$cudnn_root/include/cudnn.h" ]; then
    prefix_args+=(-DATTNKIT_CUDNN_ROOT="$cudnn_root")
    export LD_LIBRARY_PATH="$cudnn_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "cuDNN from $cudnn_root"
  fi
fi

# ---------------------------------------------------------------- build
build_dir=${ATTNKIT_BUILD_DIR:-build-gpu}
generator=()
[ -n "$ninja" ] && [ ! -f "$build_dir/CMakeCache.txt" ] && generator=(-G Ninja -DCMAKE_MAKE_PROGRAM="$ninja")
"$cmake" -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DATTNKIT_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$capability" -DATTNKIT_BUILD_EXAMPLES=OFF \
  "${prefix_args[@]}" >"$build_dir.configure.log" 2>&1 || { tail -30 "$build_dir.configure.log"; exit 1; }
"$cmake" --build "$build_dir" -j "$(nproc)" --target attnkit_gpu_tests attnkit_sim_tests attnkit_bench_attention \
  attnkit_bench_zoo_epochs >"$build_dir.build.log" 2>&1 || { tail -40 "$build_dir.build.log"; exit 1; }
built=$(date +%s)

# ---------------------------------------------------------------- tests and sanitizers
tests_status=0
"$build_dir"/tests/attnkit_gpu_tests --gtest_brief=1 >"$build_dir.gpu_tests.log" 2>&1 || tests_status=$?
sim_status=0
"$build_dir"/tests/attnkit_sim_tests --gtest_brief=1 >"$build_dir.sim_tests.log" 2>&1 || sim_status=$?
sanitizer=$(find_tool compute-sanitizer /usr/local/cuda/bin/compute-sanitizer) || sanitizer=""
declare -A sanitizer_summary
for tool in memcheck racecheck; do
  if [ -z "$sanitizer" ]; then sanitizer_summary[$tool]="compute-sanitizer not found"; continue; fi
  "$sanitizer" --tool "$tool" --error-exitcode 3 "$build_dir"/tests/attnkit_gpu_tests --gtest_brief=1 \
    --gtest_filter=-*ZooModelsTrainLikeOnTheCpu* >"$build_dir.$tool.log" 2>&1 && sanitizer_summary[$tool]="clean" ||
    sanitizer_summary[$tool]="errors (exit $?): $(grep -m1 -E '=========.*(Invalid|Race|ERROR)' "$build_dir.$tool.log" || true)"
done

# ---------------------------------------------------------------- benchmarks
date=$(date +%F)
slug=$(echo "$gpu_name" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
report=bench/results/$date-$slug.md
mkdir -p bench/results
results=bench/results/$date-$slug
bench_status=0
"$build_dir"/bench/attnkit_bench_attention --device=cuda --benchmark_format=json >"$results-attention.json" \
  2>"$build_dir.bench_attention.log" || bench_status=$?
mkdir -p "$results-zoo"
"$build_dir"/bench/attnkit_bench_zoo_epochs --device=cuda --benchmark_format=json >"$results-zoo/attnkit-all.json" \
  2>"$build_dir.bench_zoo.log" || bench_status=$?
torch_note="PyTorch with CUDA not found: no PyTorch figures"
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  torch_note="PyTorch $(python3 -c 'import torch; print(torch.__version__)')"
  python3 bench/torch_attention.py --device cuda --json "$results-attention-torch.json" >"$build_dir.torch_attention.log" 2>&1 ||
    torch_note="$torch_note: bench/torch_attention.py failed (see its log)"
  python3 bench/torch_zoo.py --device cuda --json "$results-zoo/torch-all.json" >"$build_dir.torch_zoo.log" 2>&1 ||
    torch_note="$torch_note: bench/torch_zoo.py failed (see its log)"
fi
attention_torch=()
[ -s "$results-attention-torch.json" ] && attention_torch=("$results-attention-torch.json")
python3 bench/attention_table.py "$results-attention.json" "${attention_torch[@]}" --plot "$results-attention.png" \
  >"$results-attention.md" 2>"$build_dir.attention_table.log" || echo "(no attention table: see $build_dir.attention_table.log)" >"$results-attention.md"
if [ -s "$results-zoo/torch-all.json" ]; then
  python3 bench/zoo_table.py "$results-zoo" "Zoo epochs on $gpu_name" >"$results-zoo.md" 2>/dev/null || true
fi

# ---------------------------------------------------------------- report
{
  echo "# GPU check, $date"
  echo
  echo "- device: $gpu_name (sm_$capability), driver $driver"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- nvcc: $("$nvcc" --version | tail -1)"
  echo "- build: $((built - started)) s"
  echo "- gpu tests (exit $tests_status): $(grep -E '^\[  (PASSED|FAILED)|tests? ran' "$build_dir.gpu_tests.log" | tr '\n' ' ')"
  echo "- sim tests (exit $sim_status): $(grep -E '^\[  (PASSED|FAILED)|tests? ran' "$build_dir.sim_tests.log" | tr '\n' ' ')"
  echo "- compute-sanitizer memcheck: ${sanitizer_summary[memcheck]}"
  echo "- compute-sanitizer racecheck: ${sanitizer_summary[racecheck]}"
  echo "- benchmarks (exit $bench_status); $torch_note"
  echo "- total: $(($(date +%s) - started)) s"
  echo
  echo '## Attention kernels'
  echo
  cat "$results-attention.md"
  if [ -s "$results-zoo.md" ]; then
    echo
    echo '## Zoo epochs'
    echo
    cat "$results-zoo.md"
  fi
  if [ "$tests_status" -ne 0 ]; then
    echo
    echo '## Failed gpu tests'
    echo
    echo '```'
    grep -E -A8 '\[  FAILED  \]|Failure' "$build_dir.gpu_tests.log" | head -80
    echo '```'
  fi
} >"$report"
cat "$report"
[ -n "${OUT:-}" ] && cp -r "$report" "$results"-* "$build_dir".*.log "$OUT"/ 2>/dev/null || true
[ "$tests_status" -eq 0 ] && [ "$sim_status" -eq 0 ]
