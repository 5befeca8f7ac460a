#!/usr/bin/env bash
# Decode tok/s of r1kit against the PyTorch-eager peer (../shared/peers/eager_decode.py), same
# checkpoint, same run, both single-threaded and pinned to the same core (they alternate), at
# batch 1/16/64: on the default 39M shape and on a Qwen2.5-0.5B-shaped random checkpoint, each
# stored in float32 and in bfloat16 (as HF ships Qwen2.5; r1kit then decodes from bfloat16 copies).
#
#   bench/decode_bench.sh [WORK_DIR]      R1_BENCH_CORE=0, R1_BENCH_THREADS=1,
#                                         R1_BENCH_DTYPES="float32 bfloat16"
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_core.sh
work=${1:-bench-work}
core=${R1_BENCH_CORE:-0}
threads=${R1_BENCH_THREADS:-1}
mkdir -p "$work"
for dtype in ${R1_BENCH_DTYPES:-float32 bfloat16}; do
  taskset -c "$core" ./build/bench/decode_bench --shape default --dtype "$dtype" --work "$work" --threads "$threads" \
    --batch 1,16,64 --prompt-len 64 --new-tokens 64 --reps 3 --json "$work/decode_default_$dtype.json"
  # 0.5B: fewer steps and one rep per side (a single-threaded eager batch-64 step takes seconds).
  taskset -c "$core" ./build/bench/decode_bench --shape qwen2.5-0.5b --dtype "$dtype" --work "$work" \
    --threads "$threads" --batch 1,16,64 --prompt-len 32 --new-tokens 16 --reps 1 --json "$work/decode_qwen05b_$dtype.json"
done
