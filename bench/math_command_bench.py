#!/usr/bin/env python3
"""Whole-command speed of `r1kit math-check` against Math-Verify over the same file, in one run.

The file: 1500 pairs from MATH-500 (each gold answer against itself, against a completion ending in
"\\boxed{gold}", and against "(gold)+1"; the same workloads as bench/math_bench.cc). Both commands read the
file, check every pair and write one JSON line per pair to stdout:
    r1kit math-check --in pairs.jsonl                       (build/r1kit, default settings)
    python3 bench/math_verify_peer.py pairs.jsonl           (PyPI math-verify, default settings)
hyperfine times both whole commands (interleaved is not possible with hyperfine, so the two are run back to
back, r1kit first and last to see drift); `--timing` runs of each report the sum of the per-check times (time
inside math_verify / parse+verify only), so start-up and I/O show as whole minus sum.

    python3 bench/math_command_bench.py [--r1kit build/r1kit] [--runs 20] [--mv-runs 3] [--json out.json]

When build/r1kit-full (the executable that links LibTorch) sits next to build/r1kit, the same command is also
timed there, to show what loading LibTorch costs a command that does not use it.

Prints the figures the README quotes: whole-command times, Math-Verify / r1kit, whole / per-check sum.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_pairs(math500, path):
    n = 0
    with open(math500, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            g = json.loads(line)["final"]
            completion = "Let me think step by step. Combining the two cases, the answer is $\\boxed{" + g + "}$."
            for pred in (g, completion, "(" + g + ")+1"):
                out.write(json.dumps({"gold": g, "pred": pred}, ensure_ascii=False) + "\n")
                n += 1
    return n


def hyperfine(cmd, runs, warmup, json_path):
    p = subprocess.run(["hyperfine", "--shell=none", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
                        "--export-json", json_path, cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"math_command_bench: hyperfine failed on {cmd}:\n{p.stderr}")
    with open(json_path) as f:
        r = json.load(f)["results"][0]
    return {"mean": r["mean"], "median": r["median"], "min": r["min"], "stddev": r["stddev"], "runs": len(r["times"])}


def timing_sums(cmd, runs, pattern):
    """Median over `runs` of the per-check sum (ms) a --timing run prints on stderr."""
    sums, medians = [], []
    for _ in range(runs):
        err = subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
        m = re.search(pattern + r": timing: (\d+) checks, sum ([0-9.]+) ms, median ([0-9.]+) us", err)
        if not m:
            sys.exit(f"math_command_bench: no timing line in: {err}")
        sums.append(float(m.group(2)))
        medians.append(float(m.group(3)))
    return {"sum_ms": statistics.median(sums), "median_us": statistics.median(medians), "runs": runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--r1kit", default=os.path.join(ROOT, "build", "r1kit"))
    ap.add_argument("--math500", default=os.path.join(ROOT, "..", "shared", "data", "math500", "test.jsonl"))
    ap.add_argument("--runs", type=int, default=20, help="hyperfine runs of r1kit")
    ap.add_argument("--mv-runs", type=int, default=3, help="hyperfine runs of Math-Verify (~5-10 s each)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if not shutil.which("hyperfine"):
        sys.exit("math_command_bench: hyperfine is not installed (apt-get install hyperfine)")
    for p in (args.r1kit, args.math500):
        if not os.path.exists(p):
            sys.exit(f"math_command_bench: {p} not found")
    try:
        import math_verify  # noqa: F401
    except ImportError:
        sys.exit("math_command_bench: Python package 'math-verify' is not installed (pip install math-verify)")

    with tempfile.TemporaryDirectory() as tmp:
        pairs = os.path.join(tmp, "math500_pairs.jsonl")
        n = make_pairs(args.math500, pairs)
        r1 = f"{args.r1kit} math-check --in {pairs}"
        mv = f"{sys.executable} {os.path.join(HERE, 'math_verify_peer.py')} {pairs}"
        res = {"pairs": n, "load_before": os.getloadavg()}
        res["r1kit_whole"] = hyperfine(r1, args.runs, 3, os.path.join(tmp, "r1.json"))
        res["r1kit_checks"] = timing_sums([args.r1kit, "math-check", "--in", pairs, "--timing"], 5, "math-check")
        res["mv_whole"] = hyperfine(mv, args.mv_runs, 1, os.path.join(tmp, "mv.json"))
        res["mv_checks"] = timing_sums([sys.executable, os.path.join(HERE, "math_verify_peer.py"), pairs, "--timing"], 1,
                                       "math_verify_peer")
        res["r1kit_whole_after"] = hyperfine(r1, args.runs, 3, os.path.join(tmp, "r1b.json"))
        # The same command in the executable that links LibTorch (every command; how math-check ran before
        # the torch-free build/r1kit): what start-up cost without the split.
        full = os.path.join(os.path.dirname(args.r1kit), "r1kit-full")
        if os.access(full, os.X_OK):
            res["r1kit_full_whole"] = hyperfine(f"{full} math-check --in {pairs}", 5, 1, os.path.join(tmp, "full.json"))
        res["load_after"] = os.getloadavg()

    r1_whole = statistics.median([res["r1kit_whole"]["median"], res["r1kit_whole_after"]["median"]])
    r1_sum = res["r1kit_checks"]["sum_ms"] / 1000
    mv_whole = res["mv_whole"]["median"]
    res["ratio_mv_over_r1kit_whole"] = mv_whole / r1_whole
    res["ratio_r1kit_whole_over_check_sum"] = r1_whole / r1_sum
    print(f"{n} MATH-500 pairs; load average {res['load_before'][0]:.2f} before, {res['load_after'][0]:.2f} after")
    print("| command | whole command (median) | per-check sum | per-check median | whole / sum |")
    print("|---|---:|---:|---:|---:|")
    print(f"| r1kit math-check | {r1_whole * 1000:.1f} ms (runs: {res['r1kit_whole']['median'] * 1000:.1f}, "
          f"{res['r1kit_whole_after']['median'] * 1000:.1f}) | {r1_sum * 1000:.1f} ms | "
          f"{res['r1kit_checks']['median_us']:.1f} us | {res['ratio_r1kit_whole_over_check_sum']:.2f} |")
    print(f"| Math-Verify (python3 bench/math_verify_peer.py) | {mv_whole:.2f} s | {res['mv_checks']['sum_ms'] / 1000:.2f} s | "
          f"{res['mv_checks']['median_us']:.0f} us | {mv_whole / (res['mv_checks']['sum_ms'] / 1000):.2f} |")
    if "r1kit_full_whole" in res:
        print(f"| r1kit-full math-check (links LibTorch) | {res['r1kit_full_whole']['median'] * 1000:.1f} ms | | | "
              f"{res['r1kit_full_whole']['median'] / r1_sum:.1f} |")
    print(f"Math-Verify / r1kit, whole commands: {res['ratio_mv_over_r1kit_whole']:.0f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
