#!/usr/bin/env bash
# r1kit on a GPU machine in one prepared run (docs/gpu.md). Three verbs:
#
#   scripts/gpu-check.sh prepare    here (Debian 12 with apt, ../shared beside the repo): fills .gpucheck/
#                                   (ignored by git) with what the GPU machine lacks -- the Debian -dev
#                                   packages r1kit builds against (~35 MB of .deb) and the decoder fixtures --
#                                   and prints the device call.
#   scripts/gpu-check.sh run        there: unpacks the packages into /opt/r1deps (not /), builds gpu_check
#                                   and the precision tests against that machine's PyTorch (its LibTorch 2.x
#                                   and CUDA), runs them, and leaves gpu-check.txt / gpu-check.json in $OUT.
#                                   Arguments after `run` go to gpu_check (e.g. --skip-decode --skip-grpo).
#   scripts/gpu-check.sh rehearse   here, without a GPU: gpu_check on the CPU with the local torch wheel and
#                                   small sizes (R1_REHEARSE_DEBS=1: also built from the unpacked packages,
#                                   into build-gpucheck/, as `run` builds), to check the script itself.
#
# The device call (one run, ~4-6 min of a 15-minute lease; timeout leaves room for a rerun):
#   run(command="bash scripts/gpu-check.sh run", carry=[".gpucheck"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
verb=${1:-}
DEBS=(libre2-dev libre2-9 nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libyaml-cpp-dev
  libyaml-cpp0.7 libginac-dev libginac11 libcln-dev libcln6 libgmp-dev libgmp10 libgmpxx4ldbl libseccomp-dev
  libseccomp2 libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libboost1.74-dev
  libicu-dev libicu72)

prepare() {
  local shared=${R1_SHARED_DIR:-../shared}
  [ -f "$shared/fixtures/tiny-qwen2/expected.json" ] || { echo "gpu-check: no fixtures in $shared/fixtures" >&2; exit 1; }
  grep -qx '/.gpucheck/' .git/info/exclude 2>/dev/null || echo '/.gpucheck/' >> "$(git rev-parse --git-path info/exclude)"
  rm -rf .gpucheck && mkdir -p .gpucheck/debs .gpucheck/shared
  (cd .gpucheck/debs && apt-get download "${DEBS[@]}" >/dev/null)
  cp -r "$shared/fixtures" .gpucheck/shared/fixtures
  git rev-parse HEAD > .gpucheck/commit
  echo "gpu-check: .gpucheck/ holds $(ls .gpucheck/debs | wc -l) packages and the fixtures ($(du -sh .gpucheck | cut -f1))"
  echo 'device call: run(command="bash scripts/gpu-check.sh run", carry=[".gpucheck"], timeout_s=600)'
}

# Unpacks the carried packages into $1 and points pkg-config and CMake at them.
use_debs() {
  local root=$1
  mkdir -p "$root"
  for f in .gpucheck/debs/*.deb; do dpkg-deb -x "$f" "$root" 2>/dev/null || (cd "$root" && ar p "$OLDPWD/$f" data.tar.xz | tar -xJ); done
  local lib=$root/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$root/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
  export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  DEPS_PREFIX=$root/usr
  DEPS_FLAGS=(-DCMAKE_CXX_FLAGS="-isystem $root/usr/include -isystem $root/usr/include/x86_64-linux-gnu" -DCMAKE_EXE_LINKER_FLAGS="-L$lib -Wl,-rpath,$lib")
}

# Builds gpu_check + model_precision_test in $1 against the torch of the first python that has it.
build() {
  local dir=$1 jobs=$2 py torch_dir
  for py in ${R1_PYTHON:-} python3 /opt/torch/.venv/bin/python3; do
    [ -n "$py" ] && "$py" -c 'import torch' 2>/dev/null && break
  done
  torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  echo "gpu-check: $("$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)') ($py)"
  command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
  mkdir -p "$dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_dir;$DEPS_PREFIX" \
    -DR1_SHARED_DIR="$PWD/.gpucheck/shared" "${DEPS_FLAGS[@]}" > "$dir/gpucheck-cmake.log" 2>&1 ||
    { tail -40 "$dir/gpucheck-cmake.log"; exit 1; }
  grep -E "r1kit:|CUDA detected" "$dir/gpucheck-cmake.log" || true
  local t0=$SECONDS
  ninja -C "$dir" -j"$jobs" gpu_check model_precision_test > "$dir/gpucheck-build.log" 2>&1 ||
    { grep -B2 -A12 -m3 "error" "$dir/gpucheck-build.log"; tail -5 "$dir/gpucheck-build.log"; exit 1; }
  echo "gpu-check: built in $((SECONDS - t0)) s"
}

case "$verb" in
  prepare) prepare ;;
  run)
    [ -d .gpucheck/debs ] || { echo "gpu-check: run 'scripts/gpu-check.sh prepare' here first and carry .gpucheck" >&2; exit 1; }
    out=${OUT:-$PWD/.gpucheck/out}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$out/nvidia-smi.txt" || true
    use_debs /opt/r1deps
    build build-gpu "$(nproc)"
    cp build-gpu/gpucheck-build.log "$out/" 2>/dev/null || true
    set +e
    ./build-gpu/bench/gpu_check --device cuda --fixtures .gpucheck/shared/fixtures --json "$out/gpu-check.json" \
      "${@:2}" 2>&1 | tee "$out/gpu-check.txt"
    rc=${PIPESTATUS[0]}
    ./build-gpu/tests/model/model_precision_test --gtest_brief=1 2>&1 | tail -3 | tee -a "$out/gpu-check.txt"
    exit "$rc"
    ;;
  rehearse)
    # R1_REHEARSE_DEBS=1: build like `run` does, from the unpacked packages, into build-gpucheck/;
    # otherwise reuse build-torch2/ (scripts/setup.sh --torch pip) with the system packages.
    [ -d .gpucheck/debs ] || prepare
    dir=build-torch2
    if [ "${R1_REHEARSE_DEBS:-0}" = 1 ]; then
      use_debs "${TMPDIR:-/tmp}/r1deps-rehearse"
      dir=build-gpucheck
      build "$dir" "${R1_JOBS:-2}"
    else
      [ -f build-torch2/build.ninja ] || scripts/setup.sh --torch pip
      ninja -C build-torch2 -j"${R1_JOBS:-2}" gpu_check model_precision_test
    fi
    "./$dir/bench/gpu_check" --device cpu --fixtures .gpucheck/shared/fixtures --tiny --batches 1,4 \
      --new-tokens 16 --grpo-steps 1 --prompts 2 --group 2 --micro-batch 2 --max-completion 8 \
      --json "$dir/gpu-check.json"
    ;;
  *) echo "usage: scripts/gpu-check.sh prepare|run|rehearse" >&2; exit 2 ;;
esac
