#!/usr/bin/env bash
# Tiny R1-Zero, r1kit against the PyTorch-eager reference (../shared/peers/tiny_r1zero.py), in the
# same run: both programs run the whole recipe (SFT warm-up, greedy held-out eval, GRPO, eval) at
# the same time, single-threaded, each pinned to its own core, on the same design (',' marker bug,
# d_model 192, 4 layers, SwiGLU 512, SFT 500 x 64 at 2e-3, GRPO 16 x 8 at 5e-5 for 40 steps).
# Prints per-step SFT and GRPO times (GRPO: generation + rewards + update, evaluation excluded on
# both sides), their ratios, held-out greedy accuracy before/after, and the wall and CPU time of
# each whole run (CPU time is what a busy machine does not inflate).
#
#   bench/tiny_step_bench.sh [WORK_DIR] [extra r1kit overrides, e.g. seed=2]
#   R1_BENCH_CORES="0 1" (r1kit's core, the peer's core), R1_BENCH_PYTHON=/usr/bin/python3
#   R1_BENCH_SFT_STEPS=500 R1_BENCH_GRPO_STEPS=40: fewer for a quick step-time ratio (e.g. 20 and
#   10: an untrained policy then samples to the length limit on both sides, 22 tokens; the accuracy
#   line is meaningless then)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_core.sh
work=${1:-bench-work/tiny}; shift || true
read -r core_r1 core_peer <<<"${R1_BENCH_CORES:-0 1}"
python=${R1_BENCH_PYTHON:-/usr/bin/python3}   # Debian python3-torch: the same LibTorch/OpenBLAS as r1kit
peer=${R1_PEER:-../shared/peers/tiny_r1zero.py}
sft_steps=${R1_BENCH_SFT_STEPS:-500}
grpo_steps=${R1_BENCH_GRPO_STEPS:-40}
rm -rf "$work/r1kit" "$work/ref"*
mkdir -p "$work"

( start=$(date +%s.%N)
  # max_completion_length 22 = the peer's max_new (its completion length 18 + 4)
  /usr/bin/time -f %U+%S -o "$work/r1kit.cpu" taskset -c "$core_r1" ./build/r1kit run recipes/tiny-r1-zero.yaml \
    --out "$work/r1kit" threads=1 sft.steps="$sft_steps" sft.batch_size=64 grpo.steps="$grpo_steps" grpo.max_completion_length=22 "$@" \
    >"$work/r1kit.log" 2>&1
  echo "$(date +%s.%N) - $start" | bc >"$work/r1kit.wall" ) &
r1_pid=$!
( start=$(date +%s.%N)
  # --curve_eval 1: the peer's SFT timer also runs a greedy eval every 100 steps (200 problems by
  # default, ~2% of its SFT time); one problem keeps its SFT step time a step time.
  /usr/bin/time -f %U+%S -o "$work/ref.cpu" taskset -c "$core_peer" "$python" "$peer" --design bug --fmt marker \
    --d 192 --ff 512 --sft_steps "$sft_steps" --sft_lr 2e-3 --grpo_steps "$grpo_steps" --lr 5e-5 --eval_every 10 --curve_eval 1 \
    --seed 1 --threads 1 --time_budget 100000 --out "$work/ref" >"$work/ref.stdout" 2>&1
  echo "$(date +%s.%N) - $start" | bc >"$work/ref.wall" ) &
peer_pid=$!
wait "$r1_pid" || { echo "r1kit failed, see $work/r1kit.log"; tail -20 "$work/r1kit.log"; exit 1; }
wait "$peer_pid" || { echo "the peer failed, see $work/ref.stdout"; tail -20 "$work/ref.stdout"; exit 1; }

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def jsonl(p):
    return [json.loads(l) for l in open(p) if l.strip()]
sft = jsonl(f"{w}/r1kit/sft/metrics.jsonl")
grpo = jsonl(f"{w}/r1kit/grpo/metrics.jsonl")
ev0 = json.load(open(f"{w}/r1kit/eval_sft/eval.json"))["accuracy"]
ev1 = json.load(open(f"{w}/r1kit/eval_grpo/eval.json"))["accuracy"]
ref = json.load(open(f"{w}/ref.json"))
t = ref["timing"]
r_sft = 1000 * sum(r["seconds"] for r in sft) / len(sft)
r_grpo = 1000 * sum(r["time/step"] for r in grpo) / len(grpo)
r_gen = 1000 * sum(r["time/generate"] for r in grpo) / len(grpo)
r_tok = sum(r["tokens_per_s"] for r in grpo) / len(grpo)
p_grpo = t["gen_ms_per_step"] + t["train_ms_per_step"]
wall_r, wall_p = (float(open(f"{w}/{n}.wall").read()) for n in ("r1kit", "ref"))
cpu_r, cpu_p = (eval(open(f"{w}/{n}.cpu").read().strip().splitlines()[-1]) for n in ("r1kit", "ref"))
print("| | r1kit | PyTorch eager | r1kit / eager |\n|---|---:|---:|---:|")
print(f"| SFT step (batch 64), ms | {r_sft:.0f} | {t['sft_ms_per_step']:.0f} | {r_sft / t['sft_ms_per_step']:.2f}x |")
print(f"| GRPO step (16 x 8), ms | {r_grpo:.0f} | {p_grpo:.0f} | {r_grpo / p_grpo:.2f}x |")
print(f"| GRPO generation, ms/step | {r_gen:.0f} | {t['gen_ms_per_step']:.0f} | {r_gen / t['gen_ms_per_step']:.2f}x |")
print(f"| generation tok/s | {r_tok:.0f} | {t['gen_tok_per_s']:.0f} | {r_tok / t['gen_tok_per_s']:.2f}x |")
print(f"| held-out greedy, SFT -> GRPO | {100*ev0:.1f}% -> {100*ev1:.1f}% ({100*(ev1-ev0):+.1f}) | "
      f"{100*ref['sft']['greedy']['acc']:.1f}% -> {100*ref['final']['greedy']['acc']:.1f}% | |")
print(f"| whole run wall, s | {wall_r:.1f} | {wall_p:.1f} | {wall_r / wall_p:.2f}x |")
print(f"| whole run CPU (user+sys), s | {cpu_r:.1f} | {cpu_p:.1f} | {cpu_r / cpu_p:.2f}x |")
PY
