#!/usr/bin/env python3
"""Like-for-like accuracy of the two math checkers on Math-Verify's own test suite, in one run.

Both checkers, both modes, on ../shared/data/math_verify_cases.jsonl (270 gold/pred pairs with the verdict each
upstream test expects):
  * per-case: each pair with the settings its upstream test used (match types, boxed priority, float rounding,
    strict, set-relation), for Math-Verify exactly as tests/test_all.py's compare_strings() does it;
  * default:  each checker with its own default settings (Math-Verify: parse() + verify(); r1kit: a plain
    `r1kit math-check --in FILE`).
r1kit is run as a user runs it, through the `r1kit math-check` command (one call per settings group).

    python3 bench/math_verify_compare.py [--r1kit build/r1kit] [--cases ../shared/data/math_verify_cases.jsonl]
                                         [--json out.json] [--show-disagreements]

Prints a Markdown table. Needs PyPI `math-verify` in this python3 (exits with a message when absent).
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_cases(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def math_verify_runner():
    try:
        import math_verify
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    except ImportError:
        sys.exit("math_verify_compare: Python package 'math-verify' is not installed (pip install math-verify)")
    try:
        from importlib.metadata import version
        ver = version("math-verify")
    except Exception:  # noqa: BLE001 - only for the label
        ver = getattr(math_verify, "__version__", "?")

    def per_case(gold, pred, cfg):
        if cfg.get("kind") == "defaults":
            return bool(verify(parse(gold), parse(pred)))
        targets = []
        for m in cfg["match_types"]:
            targets.append(LatexExtractionConfig(boxed_match_priority=cfg.get("boxed_match_priority", 0))
                           if m == "latex" else ExprExtractionConfig())
        return bool(verify(parse(gold, targets), parse(pred, targets), float_rounding=cfg["float_rounding"],
                           strict=cfg["strict"], allow_set_relation_comp=cfg["allow_set_relation_comp"]))

    def default(gold, pred):
        return bool(verify(parse(gold), parse(pred)))

    return ver, per_case, default


def r1kit_flags(cfg):
    """math-check flags for one upstream configuration."""
    if cfg.get("kind") == "defaults":  # Math-Verify's defaults: boxed priority 50, verify(float_rounding=6)
        return ["--phrase-first", "--float-rounding", "6"]
    flags = ["--match", ",".join(cfg["match_types"]), "--float-rounding", str(cfg["float_rounding"])]
    if cfg.get("boxed_match_priority", 0) != 0:
        flags.append("--phrase-first")
    if not cfg["strict"]:
        flags.append("--lenient-vars")
    if cfg["allow_set_relation_comp"]:
        flags.append("--set-relation")
    return flags


def run_r1kit(binary, cases, flags_of):
    """Verdicts of `r1kit math-check`, one call per distinct flag set, in the order of `cases`."""
    groups = collections.OrderedDict()
    for i, c in enumerate(cases):
        groups.setdefault(tuple(flags_of(c)), []).append(i)
    verdicts = [None] * len(cases)
    with tempfile.TemporaryDirectory() as tmp:
        for flags, idx in groups.items():
            path = os.path.join(tmp, "in.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for i in idx:
                    f.write(json.dumps({"gold": cases[i]["gold"], "pred": cases[i]["pred"]}, ensure_ascii=False) + "\n")
            out = subprocess.run([binary, "math-check", "--in", path, *flags], check=True, capture_output=True,
                                 text=True).stdout.splitlines()
            if len(out) != len(idx):
                sys.exit(f"math_verify_compare: {binary} returned {len(out)} lines for {len(idx)} pairs")
            for i, line in zip(idx, out):
                verdicts[i] = bool(json.loads(line)["correct"])
    return verdicts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--r1kit", default=os.path.join(HERE, "..", "build", "r1kit"))
    ap.add_argument("--cases", default=os.path.join(HERE, "..", "..", "shared", "data", "math_verify_cases.jsonl"))
    ap.add_argument("--json", help="also write the counts and every disagreement here")
    ap.add_argument("--show-disagreements", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.cases):
        sys.exit(f"math_verify_compare: {args.cases} not found (../shared/data)")
    if not os.access(args.r1kit, os.X_OK):
        sys.exit(f"math_verify_compare: {args.r1kit} is not an executable (build it: cmake --build build --target r1kit)")
    cases = load_cases(args.cases)
    mv_version, mv_per_case, mv_default = math_verify_runner()

    t0 = time.time()
    results = {
        ("r1kit", "per-case"): run_r1kit(args.r1kit, cases, lambda c: r1kit_flags(c["mv_config"])),
        ("r1kit", "default"): run_r1kit(args.r1kit, cases, lambda c: []),
        (f"Math-Verify {mv_version}", "per-case"): [mv_per_case(c["gold"], c["pred"], c["mv_config"]) for c in cases],
        (f"Math-Verify {mv_version}", "default"): [mv_default(c["gold"], c["pred"]) for c in cases],
    }
    elapsed = time.time() - t0
    expected = [bool(c["expected"]) for c in cases]
    stored_mv = [bool(c["mv"]) for c in cases]

    report = {"cases": len(cases), "file": os.path.abspath(args.cases), "rows": []}
    print(f"Math-Verify's test suite: {len(cases)} pairs ({os.path.basename(args.cases)}); one run, {elapsed:.1f} s\n")
    print("| checker | per-case settings | default settings |")
    print("|---|---:|---:|")
    for name in ("r1kit", f"Math-Verify {mv_version}"):
        cells = []
        for mode in ("per-case", "default"):
            v = results[(name, mode)]
            agree = sum(a == e for a, e in zip(v, expected))
            wrong = [i + 1 for i, (a, e) in enumerate(zip(v, expected)) if a != e]
            report["rows"].append({"checker": name, "mode": mode, "agree": agree, "wrong_lines": wrong})
            cells.append(f"{agree} / {len(cases)}")
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    same = sum(a == b for a, b in zip(results[(f"Math-Verify {mv_version}", "default")], stored_mv))
    print(f"\nMath-Verify default verdicts equal to the file's stored Math-Verify 0.8.0 verdicts: {same}/{len(cases)}")
    for row in report["rows"]:
        print(f"{row['checker']}, {row['mode']}: wrong on lines {row['wrong_lines']}")
        if args.show_disagreements:
            for line in row["wrong_lines"]:
                c = cases[line - 1]
                print(f"    {line}: expected {c['expected']}  gold {c['gold'][:70]!r}  pred {c['pred'][:70]!r}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
