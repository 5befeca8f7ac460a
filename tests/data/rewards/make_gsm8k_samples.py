#!/usr/bin/env python3
"""Builds a scoring demo for `r1kit reward` from GSM8K test (../shared/data/gsm8k/test.jsonl).

For each problem it writes two samples whose right scores are known without any checker:
  correct: "<think>{the reference solution}</think>The answer is $\\boxed{final}$."
  wrong:   the same with final + 1 in the box
so the accuracy reward must average exactly 0.5 and the format reward exactly 1.0.

Usage: make_gsm8k_samples.py ../shared/data/gsm8k/test.jsonl samples.jsonl
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
n = 0
with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
    for line in f:
        rec = json.loads(line)
        solution = rec["answer"].split("####")[0].strip()
        final = rec["final"].replace(",", "")
        wrong = str(int(final) + 1) if final.lstrip("-").isdigit() else final + "1"
        for box, correct in ((final, True), (wrong, False)):
            out.write(json.dumps({
                "prompt": rec["question"],
                "completion": "<think>" + solution + "</think>The answer is $\\boxed{" + box + "}$.",
                "fields": {"answer": rec["final"], "id": rec["id"], "expected_correct": correct},
            }, ensure_ascii=False) + "\n")
            n += 1
print("wrote", n, "samples to", dst)
