#!/usr/bin/env bash
# Installs r1kit's Debian dependencies when missing, then configures and builds.
# Usage: scripts/setup.sh               Debian's LibTorch 1.13 (CPU) into ./build (what CI uses)
#        scripts/setup.sh --torch pip   LibTorch 2.x with CUDA from the PyPI torch wheel of $R1_PYTHON
#                                       (default python3; pip-installed when missing) into ./build-torch2
# Idempotent; a no-op rebuild takes seconds. R1_JOBS overrides the job count (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

torch_flavour=debian
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) torch_flavour="${2:-}"; shift 2 ;;
    --torch=*) torch_flavour="${1#--torch=}"; shift ;;
    *) echo "setup: unknown argument '$1' (usage: scripts/setup.sh [--torch debian|pip])" >&2; exit 2 ;;
  esac
done
case "$torch_flavour" in debian|pip) ;; *) echo "setup: --torch takes debian or pip, not '$torch_flavour'" >&2; exit 2 ;; esac

PACKAGES=(build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp libre2-dev nlohmann-json3-dev libboost-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libyaml-cpp-dev libginac-dev libgmp-dev
  libseccomp-dev bubblewrap python3 libicu-dev libgloo-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=${R1_JOBS:-$(nproc)}
# ccache keyed on paths relative to the checkout, so a fresh clone reuses earlier objects.
export CCACHE_BASEDIR="$PWD" CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
if [ "$torch_flavour" = debian ]; then
  if [ ! -f build/build.ninja ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build build -j"$jobs"
  exit 0
fi

# LibTorch 2.x from the torch wheel (docs/gpu.md). The prefix is the torch package directory, not
# torch.utils.cmake_prefix_path: with the latter TorchConfig's find_library(c10) picks Debian's
# /usr/lib/x86_64-linux-gnu/libc10.so (1.13) when libtorch-dev is installed, a mixed link.
py=${R1_PYTHON:-python3}
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "setup: installing the torch wheel into $py"
  "$py" -m pip install -q torch
fi
torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
echo "setup: LibTorch $("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)') from $torch_dir"
# A CUDA wheel's TorchConfig enables the CUDA language, so it needs nvcc (any CUDA >= 12.6 toolkit); no .cu
# file is built. A CPU wheel needs none.
if [ "$("$py" -c 'import torch; print(torch.version.cuda or "")')" != "" ]; then
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
  command -v nvcc >/dev/null || { echo "setup: this torch wheel has CUDA, so --torch pip needs nvcc (a CUDA" \
    "toolkit) on PATH; or install a CPU wheel (docs/gpu.md)" >&2; exit 1; }
fi
if [ ! -f build-torch2/build.ninja ]; then
  cmake -S . -B build-torch2 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_dir" >/dev/null
fi
cmake --build build-torch2 -j"$jobs"
