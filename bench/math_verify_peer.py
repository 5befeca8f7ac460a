#!/usr/bin/env python3
"""Math-Verify (PyPI `math-verify`) over a JSONL file of {"gold", "pred"} lines, the way r1kit math-check reads
it: the peer for whole-command timings (bench/math_command_bench.sh). Default settings: parse() both sides with
Math-Verify's default extraction (LaTeX + expressions), verify() with its defaults. Prints "N/M correct" on stderr.

    python3 bench/math_verify_peer.py pairs.jsonl [--out checked.jsonl] [--timing]

--timing adds the time spent in parse() + verify() (sum, median, p99), like `r1kit math-check --timing`.
"""
import argparse
import json
import sys
import time

try:
    from math_verify import parse, verify
except ImportError:
    sys.exit("math_verify_peer: Python package 'math-verify' is not installed (pip install math-verify)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--out", default=None)
    ap.add_argument("--timing", action="store_true")
    args = ap.parse_args()
    lines, correct, micros = [], 0, []
    with open(args.path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            t0 = time.perf_counter()
            ok = bool(verify(parse(str(rec["gold"])), parse(str(rec["pred"]))))
            micros.append((time.perf_counter() - t0) * 1e6)
            correct += ok
            rec["correct"] = ok
            lines.append(json.dumps(rec, ensure_ascii=False))
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    out.write("\n".join(lines) + "\n")
    print(f"math_verify_peer: {correct}/{len(lines)} correct", file=sys.stderr)
    if args.timing and micros:
        micros.sort()
        at = lambda q: micros[int(q * (len(micros) - 1) + 0.5)]  # noqa: E731
        print(f"math_verify_peer: timing: {len(micros)} checks, sum {sum(micros) / 1000:.3f} ms, median {at(0.5):.1f} us, "
              f"p99 {at(0.99):.1f} us", file=sys.stderr)


if __name__ == "__main__":
    main()
