#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU: builds attnkit with CUDA for the present GPU,
# runs the gpu tests, compute-sanitizer (memcheck, racecheck) over the gpu tests of the ops (the
# zoo's training test aside: it is long, and its ops are those tests'), and the benchmarks
# (bench/attention.cpp against the ceilings it measures, every zoo model's epoch; each beside
# PyTorch when the machine's python3 has it with CUDA), and writes the report
# bench/results/DATE-GPU.md with the JSON beside it.
#
# It keeps to a time budget, ATTNKIT_GPU_CHECK_SECONDS (default 540): each step runs under a
# timeout of what is left (and at most its own share), a step cut short says so in the report,
# and the report is rewritten after every step. With $OUT set, the report and one archive of
# the results and logs (gpu_check.tar.gz) are copied there after every step, so a run stopped
# from outside still leaves what it had measured. ATTNKIT_GPU_CHECK_STEPS picks the steps and
# their order (default "tests attention memcheck racecheck zoo torch python"). The sim tests are
# not among them: they need no GPU, and CI runs them on every change. The python step builds the
# Python module (nanobind from the machine's Python or from .deps/) and runs
# bench/python_ops.py on cuda: a call's cost beside C++'s, attnkit.torch beside PyTorch.
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
  # nanobind, for the python step's module, installed from here where PyPI cannot be reached.
  python3 -m pip download -q --no-deps -d .deps "nanobind>=3,<4"
  echo "downloaded into .deps/: $(ls .deps | wc -l) packages"
  exit 0
fi

say() { echo "gpu_check: $*"; }
started=$(date +%s)
deadline=$((started + ${ATTNKIT_GPU_CHECK_SECONDS:-540}))

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
  # The wheel's folder is nvidia/cudnn, or nvidia/cuN with the other CUDA 13 libraries.
  cudnn_header=$(find "$python_prefix/nvidia" -maxdepth 4 -path '*/include/cudnn.h' 2>/dev/null | head -1 || true)
  cudnn_root=$(dirname "$(dirname "${cudnn_header:-/none/include/cudnn.h}")")
  if [ -n "$cudnn_header" ]; then
    prefix_args+=(-DATTNKIT_CUDNN_ROOT="$cudnn_root")
    export LD_LIBRARY_PATH="$cudnn_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "cuDNN from $cudnn_root"
  fi
fi

# ---------------------------------------------------------------- build
build_dir=${ATTNKIT_BUILD_DIR:-build-gpu}
date=$(date +%F)
slug=$(echo "$gpu_name" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
results=bench/results/$date-$slug
report=$results.md
mkdir -p bench/results

# What each step did, for the report: "not run" until it runs.
declare -A outcome
read -ra steps <<<"${ATTNKIT_GPU_CHECK_STEPS:-tests attention memcheck racecheck zoo torch python}"
for step in build "${steps[@]}"; do outcome[$step]="not run"; done
torch_note="PyTorch with CUDA not found: no PyTorch figures"

# Runs `command...` (a program or a function of this script) as step NAME, stopped when it runs
# past the time left (at most SHARE seconds; 15 s stay for the report); its output goes to
# $build_dir.NAME.log. It runs in a process group of its own, so that stopping it stops the
# programs it started too. Returns its exit status.
run_step() {
  local name=$1 share=$2
  shift 2
  local left=$((deadline - $(date +%s) - 15))
  local limit=$((left < share ? left : share))
  if [ "$limit" -lt 10 ]; then
    outcome[$name]="skipped: the time budget was spent"
    return 124
  fi
  say "$name (at most $limit s)"
  local begun=$(date +%s) status=0 pid watchdog
  set -m
  ("$@") >"$build_dir.$name.log" 2>&1 &
  pid=$!
  (sleep "$limit"; kill -TERM -- "-$pid"; sleep 5; kill -KILL -- "-$pid") >/dev/null 2>&1 &
  watchdog=$!
  set +m
  wait "$pid" || status=$?
  kill -- "-$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  local took=$(($(date +%s) - begun))
  if [ "$status" -eq 0 ]; then
    outcome[$name]="done in $took s"
  elif [ "$took" -ge "$limit" ]; then
    outcome[$name]="cut short after $took s (its limit: $limit s)"
  else
    outcome[$name]="exit $status after $took s"
  fi
  return "$status"
}

gtest_summary() {  # the pass and fail lines of a gtest log
  grep -E '^\[  (PASSED|FAILED)|tests? ran' "$1" 2>/dev/null | tr '\n' ' '
}

write_report() {
  {
    echo "# GPU check, $date"
    echo
    echo "- device: $gpu_name (sm_$capability), driver $driver"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- nvcc: $("$nvcc" --version | tail -1)"
    echo "- build: ${outcome[build]}"
    for step in "${steps[@]}"; do
      case $step in
        tests) echo "- gpu tests: ${outcome[tests]}; $(gtest_summary "$build_dir.tests.log")" ;;
        memcheck | racecheck) echo "- compute-sanitizer $step over the gpu tests: ${outcome[$step]}" ;;
        attention) echo "- attention benchmarks: ${outcome[attention]}" ;;
        zoo) echo "- zoo epochs: ${outcome[zoo]}" ;;
        torch) echo "- PyTorch: ${outcome[torch]}; $torch_note" ;;
        python) echo "- Python bindings: ${outcome[python]}" ;;
      esac
    done
    echo "- time so far: $(($(date +%s) - started)) s of ${ATTNKIT_GPU_CHECK_SECONDS:-540}"
    if [ -s "$results-attention.json" ]; then
      local torch_json=()
      [ -s "$results-attention-torch.json" ] && torch_json=("$results-attention-torch.json")
      echo
      echo '## Attention kernels'
      echo
      python3 bench/attention_table.py "$results-attention.json" "${torch_json[@]}" --plot "$results-attention.png" \
        2>"$build_dir.attention_table.log" || echo "(no table: see $build_dir.attention_table.log)"
    fi
    if [ -s "$results-zoo/attnkit-all.json" ]; then
      echo
      echo '## Zoo epochs'
      echo
      python3 bench/zoo_table.py "$results-zoo" "Zoo epochs on $gpu_name" 2>/dev/null || echo "(no table)"
    fi
    if [ -s "$results-python.md" ]; then
      echo
      echo '## Python bindings'
      echo
      cat "$results-python.md"
    fi
    if [ -s "$build_dir.tests.log" ] && grep -q '\[  FAILED  \]' "$build_dir.tests.log"; then
      echo
      echo '## Failed gpu tests'
      echo
      echo '```'
      grep -E -A8 '\[  FAILED  \]|Failure' "$build_dir.tests.log" | head -80
      echo '```'
    fi
  } >"$report"
  if [ -n "${OUT:-}" ]; then  # two files, whatever the number of results and logs
    cp "$report" "$OUT/gpu_check.md"
    tar -czf "$OUT/gpu_check.tar.gz" "$report" "$results"-* "$build_dir".*.log 2>/dev/null || true
  fi
}

generator=()
[ -n "$ninja" ] && [ ! -f "$build_dir/CMakeCache.txt" ] && generator=(-G Ninja -DCMAKE_MAKE_PROGRAM="$ninja")
build() {
  "$cmake" -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DATTNKIT_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$capability" -DATTNKIT_BUILD_EXAMPLES=OFF \
    "${prefix_args[@]}" &&
    "$cmake" --build "$build_dir" -j "$(nproc)" --target attnkit_gpu_tests attnkit_bench_attention attnkit_bench_zoo_epochs
}
if ! run_step build 100000 build; then
  tail -40 "$build_dir.build.log"
  write_report
  exit 1
fi

# ---------------------------------------------------------------- steps
gpu_tests=("$build_dir"/tests/attnkit_gpu_tests --gtest_brief=1)
sanitizer=$(find_tool compute-sanitizer /usr/local/cuda/bin/compute-sanitizer "$nvcc_root"/bin/compute-sanitizer) || sanitizer=""
bench_attention() {  # in parts, so that a part cut short leaves the others' JSON
  local part index=0
  rm -f "$results"-attention-part*.json
  for part in 'sdpa_train|additive|gating' 'sdpa_fwd' 'sdpa_bwd' 'sdpa_variant|sdpa_varlen|sdpa_decode'; do
    index=$((index + 1))
    "$build_dir"/bench/attnkit_bench_attention --device=cuda --benchmark_filter="^($part)/" \
      --benchmark_min_time=0.2 --benchmark_format=json >"$results-attention-part$index.json" || return
    python3 -c '
import json, sys
parts = [json.load(open(path)) for path in sys.argv[2:]]
parts[0]["benchmarks"] = [b for part in parts for b in part["benchmarks"]]
json.dump(parts[0], open(sys.argv[1], "w"), indent=1)' "$results-attention.json" "$results"-attention-part*.json
  done
  rm -f "$results"-attention-part*.json
}
bench_zoo() {
  mkdir -p "$results-zoo"
  "$build_dir"/bench/attnkit_bench_zoo_epochs --device=cuda --benchmark_format=json >"$results-zoo/attnkit-all.json"
}
torch_benchmarks() {
  python3 bench/torch_attention.py --device cuda --json "$results-attention-torch.json" &&
    { mkdir -p "$results-zoo"; python3 bench/torch_zoo.py --device cuda --json "$results-zoo/torch-all.json"; }
}
python_bindings() {  # the module in a venv that sees the machine's PyTorch; nanobind offline
  local venv="$build_dir.venv"
  [ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
  "$venv/bin/python" -c "import nanobind" 2>/dev/null ||
    "$venv/bin/pip" install -q --no-index --find-links .deps "nanobind>=3,<4" || return
  "$cmake" -S . -B "$build_dir" -DATTNKIT_PYTHON=ON -DPython_EXECUTABLE="$venv/bin/python" &&
    "$cmake" --build "$build_dir" -j "$(nproc)" --target _attnkit attnkit_bench_call_overhead || return
  "$build_dir"/bench/attnkit_bench_call_overhead --benchmark_format=json >"$results-call-overhead.json" &&
    PYTHONPATH="$PWD/$build_dir/python" "$venv/bin/python" bench/python_ops.py --cpp "$results-call-overhead.json" \
      --device cuda >"$results-python.md"
}
tests_status=0
for step in "${steps[@]}"; do
  case $step in
    tests) run_step tests 240 "${gpu_tests[@]}" || tests_status=$? ;;
    memcheck | racecheck)
      if [ -z "$sanitizer" ]; then
        outcome[$step]="compute-sanitizer not found"
      elif run_step "$step" 90 "$sanitizer" --tool "$step" --error-exitcode 3 "${gpu_tests[@]}" \
        --gtest_filter=-*ZooModelsTrainLikeOnTheCpu*; then
        outcome[$step]="clean (${outcome[$step]})"
      else
        first=$(grep -m1 -E '=========.*(Invalid|Race|ERROR|Error)' "$build_dir.$step.log" || true)
        outcome[$step]="${outcome[$step]}${first:+: $first}"
      fi ;;
    attention) run_step attention 150 bench_attention || true ;;
    zoo) run_step zoo 60 bench_zoo || true ;;
    torch)
      if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        torch_note="PyTorch $(python3 -c 'import torch; print(torch.__version__)')"
        run_step torch 120 torch_benchmarks || true
      else
        outcome[torch]="skipped"
      fi ;;
    python) run_step python 90 python_bindings || true ;;
    *) say "unknown step '$step' (steps: tests attention memcheck racecheck zoo torch python)"; exit 2 ;;
  esac
  write_report
done

cat "$report"
[ "$tests_status" -eq 0 ]
