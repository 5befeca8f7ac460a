#!/usr/bin/env python3
"""pass@k and maj@k of `r1kit eval score` against an independent float64 computation.

Writes a synthetic per-sample file (seeded): problems with n in {1, 3, 4, 8, 16} samples, c = 0 and
c = n cases, vote ties, samples without an answer, and answers that are equal but written
differently ("0.5", "\\frac{1}{2}", "\\frac12", "2/4", "1/2"). The reference knows each written form's
value by construction (no checker involved), computes pass@k = 1 - C(n-c,k)/C(n,k) with exact
integers and maj@k as a majority over the first k samples' values (ties: the value whose first
sample comes first; the vote is right when that value equals the gold value), and standard errors
over problems (ddof 1). Every per-problem and summary number must agree within 1e-12.

Usage: eval_metrics_reference.py /path/to/r1kit-full
Exit 77 (ctest: skipped) when the r1kit binary is missing.
"""
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from fractions import Fraction

if len(sys.argv) < 2 or not os.path.exists(sys.argv[1]):
    print("SKIP: r1kit binary not given or missing")
    sys.exit(77)
R1KIT = sys.argv[1]

# Written forms per value; the checker must put each row in one class.
FORMS = {
    Fraction(1, 2): ["0.5", "\\frac{1}{2}", "\\frac12", "2/4", "1/2"],
    Fraction(3): ["3", "3.0", "\\frac{6}{2}"],
    Fraction(1, 4): ["0.25", "\\frac{1}{4}"],
    Fraction(-7): ["-7", "-7.00"],
    Fraction(12): ["12", "\\frac{24}{2}"],
}
VALUES = list(FORMS)


def completion(form):
    if form is None:
        return "I could not finish this one."
    return f"Some reasoning.\n</think>\nThe answer is $\\boxed{{{form}}}$."


def synth(rng):
    problems = []
    # Hand-made edge cases first.
    half, three = Fraction(1, 2), Fraction(3)
    problems.append(("tie-first-wrong", "1/2", [three, half, three, half]))           # 2-2 tie, 3 first -> wrong
    problems.append(("tie-first-right", "0.5", [half, three, half, three]))          # tie, gold first -> right
    problems.append(("all-wrong", "12", [three] * 8))                               # c = 0
    problems.append(("all-right", "-7", [Fraction(-7)] * 4))                        # c = n
    problems.append(("no-answers", "3", [None] * 4))
    problems.append(("one-sample", "\\frac{1}{4}", [Fraction(1, 4)]))
    problems.append(("minority-right", "3", [half, half, None, three, half, three, Fraction(12), three]))
    for i in range(40):
        n = rng.choice([1, 3, 4, 8, 16])
        gold = rng.choice(VALUES)
        vals = [rng.choice(VALUES + [None]) for _ in range(n)]
        problems.append((f"rand-{i}", rng.choice(FORMS[gold]), vals))
    return problems


def gold_value(text):
    for v, forms in FORMS.items():
        if text in forms:
            return v
    raise ValueError(text)


def pass_at_k(n, c, k):
    return 1.0 - math.comb(n - c, k) / math.comb(n, k) if n - c >= k else 1.0


def maj_at_k(vals, gold, k):
    counts, first = {}, {}
    for i, v in enumerate(vals[:k]):
        if v is None:
            continue
        counts[v] = counts.get(v, 0) + 1
        first.setdefault(v, i)
    if not counts:
        return 0.0
    best = min(counts, key=lambda v: (-counts[v], first[v]))
    return 1.0 if best == gold else 0.0


def main():
    rng = random.Random(7)
    problems = synth(rng)
    tmp = tempfile.mkdtemp(prefix="eval_ref_")
    path = os.path.join(tmp, "synthetic.jsonl")
    with open(path, "w") as f:
        for pid, gold, vals in problems:
            for i, v in enumerate(vals):
                form = None if v is None else rng.choice(FORMS[v])
                f.write(json.dumps({"problem_id": pid, "sample": i, "completion": completion(form), "answer": gold}) + "\n")
    out = os.path.join(tmp, "out")
    subprocess.run([R1KIT, "eval", "score", "--in", path, "--out", out], check=True, stdout=subprocess.DEVNULL)
    got = {}
    with open(os.path.join(out, "synthetic", "problems.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            got[r["problem_id"]] = r
    summary = json.load(open(os.path.join(out, "synthetic", "summary.json")))["metrics"]

    max_diff, per_metric = 0.0, {}
    for pid, gold, vals in problems:
        g = gold_value(gold)
        n, c = len(vals), sum(v == g for v in vals)
        r = got[pid]
        assert r["n"] == n and r["correct"] == c, (pid, r, n, c)
        k = 1
        while k <= n:
            for name, ref in ((f"pass@{k}", pass_at_k(n, c, k)), (f"maj@{k}", maj_at_k(vals, g, k))):
                d = abs(r[name] - ref)
                if d > 1e-12:
                    sys.exit(f"FAIL {pid} {name}: r1kit {r[name]!r} reference {ref!r}")
                max_diff = max(max_diff, d)
                per_metric.setdefault(name, []).append(ref)
            k *= 2
    for name, vs in per_metric.items():
        mean = math.fsum(vs) / len(vs)
        se = math.sqrt(math.fsum((v - mean) ** 2 for v in vs) / (len(vs) - 1)) / math.sqrt(len(vs)) if len(vs) > 1 else 0.0
        s = summary[name]
        for what, a, b in (("mean", s["mean"], mean), ("stderr", s["stderr"], se)):
            d = abs(a - b)
            if d > 1e-12:
                sys.exit(f"FAIL summary {name} {what}: r1kit {a!r} reference {b!r}")
            max_diff = max(max_diff, d)
        assert s["problems"] == len(vs), (name, s, len(vs))
    print(f"OK: {len(problems)} problems, {sum(len(p[2]) for p in problems)} samples, "
          f"{len(per_metric)} metrics; max |r1kit - float64 reference| = {max_diff:.3g}")


if __name__ == "__main__":
    main()
