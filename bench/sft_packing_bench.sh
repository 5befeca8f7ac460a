#!/usr/bin/env bash
# SFT throughput with and without sequence packing (sft/sft_packing.h) on a variable-length chat set:
# GSM8K training problems (../shared/data/gsm8k/train.jsonl) as `messages` records (user: question,
# assistant: worked answer; newlines as spaces, ASCII only, for the tiny byte-level tokenizer), 90 to
# 1000+ tokens each. The same fresh tiny model (tiny-distill's student size) trains the same steps on
# the same data twice, packing off then on; prints target tokens/s (mean over the steps after the
# first), packing efficiency (real / padded tokens), the last loss of both runs and the load average.
# Usage: bench/sft_packing_bench.sh [OUT_DIR] [extra r1kit run overrides, e.g. sft.steps=10]
# R1KIT=path runs another binary. Timings are only comparable between runs under similar load.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bench-packing}
shift || true
r1kit=${R1KIT:-./build/r1kit}
shared=${R1_SHARED_DIR:-../shared}
[ -x "$r1kit" ] || { echo "sft_packing_bench: $r1kit not found (cmake --build build --target r1kit)" >&2; exit 1; }
[ -f "$shared/data/gsm8k/train.jsonl" ] || { echo "sft_packing_bench: no $shared/data/gsm8k/train.jsonl" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
python3 - "$shared/data/gsm8k/train.jsonl" "$out/chat.jsonl" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
def ascii_line(s):
    return "".join(c for c in s.replace("\n", " ") if 32 <= ord(c) < 127)
with open(src) as f, open(dst, "w") as o:
    for i, line in enumerate(f):
        if i == 2048:
            break
        r = json.loads(line)
        o.write(json.dumps({"messages": [{"role": "user", "content": ascii_line(r["question"]) + " "},
                                         {"role": "assistant", "content": ascii_line(r["answer"])}]}) + "\n")
PY
cat > "$out/recipe.yaml" <<YAML
name: sft-packing-bench
seed: 3
threads: 0
model:
  create: {hidden_size: 96, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4,
           intermediate_size: 256, max_position_embeddings: 1024}
data: {kind: tiny_chain}
stages:
  - name: sft
    kind: sft
    dataset: $PWD/$out/chat.jsonl
    format: chat
    chat_template: plain
    max_length: 1024
    steps: 12
    batch_size: 32
    lr: 1.0e-3
    warmup_steps: 2
    checkpoint_every: 0
    log_every: 4
    tensorboard: false
YAML
load() { cut -d' ' -f1-3 /proc/loadavg; }
for mode in unpacked packed; do
  extra=()
  [ "$mode" = packed ] && extra=(sft.packing=true)
  echo "$mode start: load $(load)" | tee -a "$out/load.txt"
  "$r1kit" run "$out/recipe.yaml" --out "$out/$mode" "${extra[@]}" "$@" >"$out/$mode.log" 2>&1
  echo "$mode end:   load $(load)" | tee -a "$out/load.txt"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
res = {}
for mode in ("unpacked", "packed"):
    m = [json.loads(l) for l in open(f"{out}/{mode}/sft/metrics.jsonl")]
    later = m[1:] or m
    tps = sum(r["tokens"] for r in later) / sum(r["seconds"] for r in later)
    eff = sum(r["packing_efficiency"] for r in m) / len(m)
    res[mode] = tps
    print(f"{mode:9s} {len(m)} steps: {tps:8.0f} target tok/s, packing efficiency {eff:.3f}, "
          f"last loss {m[-1]['loss']:.4f}, {sum(r['seconds'] for r in m):.1f} s")
print(f"packed / unpacked tokens/s: {res['packed'] / res['unpacked']:.2f}x")
PY
