#!/usr/bin/env bash
# Installs the Debian packages that building and testing attnkit need, when any is missing,
# and the packages named as arguments (scripts/sanitize.sh asks for clang's). The CUDA toolkit
# is not among them: the CUDA backend is built when nvcc is found, and the library builds
# without it.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config   # the build
  libgtest-dev libbenchmark-dev      # tests and benchmarks
  nlohmann-json3-dev libcli11-dev    # JSON (model configs, safetensors headers); the command line
  libcpp-httplib-dev                 # attnkit serve
  python3-numpy                      # a test reads saved weights with numpy; the Python tests
  python3-dev python3-venv python3-pytest  # the Python module's build (nanobind from PyPI) and tests
  python3-torch                      # attnkit.torch's tests (autograd.gradcheck)
  python3-sklearn                    # the split test compares with train_test_split
  python3-jieba                      # jieba's dictionary and HMM tables; the segmentation test
  python3-matplotlib fonts-wqy-zenhei  # report plots, with a font for Chinese tokens
  "$@"
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "attnkit: installing ${missing[*]}"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "attnkit: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
