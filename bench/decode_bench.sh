#!/usr/bin/env bash
# Decode tok/s of r1kit against the PyTorch-eager peer (../shared/peers/eager_decode.py), same
# checkpoint, same run, both single-threaded and pinned to the same core (they alternate), at
# batch 1/16/64: on the default 39M shape and on a Qwen2.5-0.5B-shaped random checkpoint.
#
#   bench/decode_bench.sh [WORK_DIR]      R1_BENCH_CORE=0, R1_BENCH_THREADS=1
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_core.sh
work=${1:-bench-work}
core=${R1_BENCH_CORE:-0}
threads=${R1_BENCH_THREADS:-1}
mkdir -p "$work"
taskset -c "$core" ./build/bench/decode_bench --shape default --work "$work" --threads "$threads" \
  --batch 1,16,64 --prompt-len 64 --new-tokens 64 --reps 3 --json "$work/decode_default.json"
# 0.5B: fewer steps and one rep per side (a single-threaded eager batch-64 step takes seconds).
taskset -c "$core" ./build/bench/decode_bench --shape qwen2.5-0.5b --work "$work" --threads "$threads" \
  --batch 1,16,64 --prompt-len 32 --new-tokens 16 --reps 1 --json "$work/decode_qwen05b.json"
