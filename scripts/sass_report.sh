#!/usr/bin/env bash
# The static gate of the attention kernels, without a GPU: builds each attention kernel file for
# sm_90 (an H100) with the flags of the library's build, disassembles it with cuobjdump (from the
# nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm packages on PyPI, installed into .venv-cuda-tools/
# when the toolkit has no cuobjdump), and prints a table per kernel: registers, local memory, spill
# instructions, shared memory, occupancy on an H100, HMMA count, SASS instructions per HMMA in
# the whole function and in the main loop, and the TFLOP/s that the issue-bound model of
# bench/NOTES.md predicts. Fails (exit 1) when an attention kernel uses local memory.
#
# Output also in $ATTNKIT_SASS_DIR (default build-sass/): sass_report.md, sass_report.json, the
# cubins and their SASS.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${ATTNKIT_SASS_DIR:-build-sass}
mkdir -p "$out"

nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || [ ! -x /usr/local/cuda/bin/nvcc ] || nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then
  echo "sass_report: no nvcc (on PATH or in /usr/local/cuda): the CUDA toolkit builds the kernels it reads" >&2
  exit 1
fi

cuobjdump=$(command -v cuobjdump || true)
toolkit_bin=$(dirname "$nvcc")
[ -n "$cuobjdump" ] || [ ! -x "$toolkit_bin/cuobjdump" ] || cuobjdump=$toolkit_bin/cuobjdump
have_tools=true
[ -n "$cuobjdump" ] || have_tools=false
command -v nvdisasm >/dev/null || [ -x "$toolkit_bin/nvdisasm" ] || have_tools=false
if ! $have_tools; then
  venv=.venv-cuda-tools
  if [ ! -x "$venv/bin/pip" ]; then
    scripts/deps.sh python3-venv
    python3 -m venv "$venv"
  fi
  tools=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu*/bin 2>/dev/null | head -n 1 || true)
  if [ -z "$tools" ] || [ ! -x "$tools/cuobjdump" ] || [ ! -x "$tools/nvdisasm" ]; then
    "$venv/bin/pip" install --quiet nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm
    tools=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu*/bin | head -n 1)
  fi
  cuobjdump=$tools/cuobjdump
  export PATH="$tools:$PATH"  # cuobjdump runs nvdisasm for sm_90
else
  export PATH="$toolkit_bin:$PATH"
fi

# The attention kernels: the fused scaled dot-product attention (float32 and tensor cores), the
# masked softmax of the unfused path, decoding against a cache, additive pooling and both gatings.
sources=(flash_attention_mma flash_attention masked_softmax decode_attention additive_attention gating_attention)
pairs=()
for name in "${sources[@]}"; do
  "$nvcc" -O3 -DNDEBUG -std=c++17 -arch=sm_90 -cubin -I. -Iinclude -Isrc "kernels/$name.cu" -o "$out/$name.cubin"
  "$cuobjdump" -sass "$out/$name.cubin" >"$out/$name.sass"
  pairs+=("kernels/$name.cu=$out/$name.cubin")
done
"${CXX:-g++}" -std=c++17 -I. scripts/attention_launch_table.cpp -o "$out/attention_launch_table"
"$out/attention_launch_table" >"$out/launch_table.jsonl"

status=0
python3 scripts/sass_report.py --cuobjdump "$cuobjdump" --launch-table "$out/launch_table.jsonl" \
  --json "$out/sass_report.json" "${pairs[@]}" >"$out/sass_report.md" || status=$?
cat "$out/sass_report.md"
exit "$status"
