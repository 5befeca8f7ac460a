#!/usr/bin/env bash
# Wall time of the tiny R1-Zero GRPO stage, synchronous vs asynchronous rollout, from the same SFT
# model (the sync run's sft + eval_sft stages are copied into the async run, so only GRPO differs).
# Usage: scripts/bench-async.sh [OUT_DIR] [extra r1kit run overrides...]
#   quick look: scripts/bench-async.sh /tmp/ab sft.steps=30 grpo.steps=8 data.tiny_chain.n_heldout=40
# Prints the grpo stage seconds, the ratio and the held-out accuracy of both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bench-async}
shift || true
r1kit=./build/r1kit
recipe=recipes/tiny-r1-zero.yaml
rm -rf "$out"
mkdir -p "$out"
"$r1kit" run "$recipe" --out "$out/sync" "$@" >"$out/sync.log" 2>&1
mkdir -p "$out/async"
cp -r "$out/sync/base_model" "$out/sync/sft" "$out/sync/eval_sft" "$out/async/"
"$r1kit" run "$recipe" --out "$out/async" "$@" grpo.async_rollout=true grpo.max_staleness=1 \
  grpo.off_policy_correction=tis >"$out/async.log" 2>&1
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
