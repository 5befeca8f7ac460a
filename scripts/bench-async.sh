#!/usr/bin/env bash
# Wall time of the tiny R1-Zero GRPO stage, synchronous vs asynchronous rollout, from the same SFT
# model (the sync run's sft + eval_sft stages are copied into the async run, so only GRPO differs).
# Usage: scripts/bench-async.sh [OUT_DIR] [extra r1kit run overrides...]
#   quick look: scripts/bench-async.sh /tmp/ab sft.steps=30 grpo.steps=8 data.tiny_chain.n_heldout=40
# Prints the grpo stage seconds, the ratio, the held-out accuracy of both runs and the load average
# before and after each run (the ratio is only meaningful between runs under similar load).
# R1KIT=path runs another binary (e.g. a copy, so a rebuild during the benchmark does not change it).
# R1_BENCH_SFT_FROM=RUN_DIR reuses that run's base_model, sft and eval_sft stages for both runs (only
# the GRPO stages and the evaluations after them run: a cheap second sample).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bench-async}
shift || true
r1kit=${R1KIT:-./build/r1kit}
recipe=recipes/tiny-r1-zero.yaml
[ -x "$r1kit" ] || { echo "bench-async: $r1kit not found (build it: cmake --build build --target r1kit)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
load() { cut -d' ' -f1-3 /proc/loadavg; }
if [ -n "${R1_BENCH_SFT_FROM:-}" ]; then
  mkdir -p "$out/sync"
  cp -r "$R1_BENCH_SFT_FROM/base_model" "$R1_BENCH_SFT_FROM/sft" "$R1_BENCH_SFT_FROM/eval_sft" "$out/sync/"
fi
echo "sync  start: load $(load)" | tee "$out/load.txt"
"$r1kit" run "$recipe" --out "$out/sync" "$@" >"$out/sync.log" 2>&1
echo "sync  end:   load $(load)" | tee -a "$out/load.txt"
mkdir -p "$out/async"
cp -r "$out/sync/base_model" "$out/sync/sft" "$out/sync/eval_sft" "$out/async/"
echo "async start: load $(load)" | tee -a "$out/load.txt"
"$r1kit" run "$recipe" --out "$out/async" "$@" grpo.async_rollout=true grpo.max_staleness=1 \
  grpo.off_policy_correction=tis >"$out/async.log" 2>&1
echo "async end:   load $(load)" | tee -a "$out/load.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
res = {}
for mode in ("sync", "async"):
    g = json.load(open(f"{out}/{mode}/grpo/DONE"))
    e = json.load(open(f"{out}/{mode}/eval_grpo/DONE")).get("eval", {})
    res[mode] = (g["seconds"], e)
    print(f"{mode:5s}: grpo stage {g['seconds']:.1f} s, eval_grpo {json.dumps(e)}")
print(f"sync / async grpo wall time: {res['sync'][0] / res['async'][0]:.2f}x")
PY
