# Sourced by the bench scripts. `r1kit` starts its full executable with OPENBLAS_CORETYPE set to the
# best OpenBLAS kernel set this CPU supports (cli/fast_start.cc: OpenBLAS falls back to its SSE3
# "Prescott" kernels on CPU models it does not know, e.g. cloud VMs). Exported here for every program
# of a benchmark run, the PyTorch peers included, so both sides use the same BLAS kernels.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { for f in "$@"; do [[ "$cpu_flags" == *" $f "* ]] || return 1; done; }
  if has avx512f avx512bw avx512vl avx512dq avx512cd; then
    export OPENBLAS_CORETYPE=SKYLAKEX
  elif has avx2 fma; then
    export OPENBLAS_CORETYPE=HASWELL
  fi
fi
echo "OpenBLAS core: ${OPENBLAS_CORETYPE:-detected by OpenBLAS}" >&2
