#!/usr/bin/env python3
"""`r1kit distill generate` survives kill -9: the resumed record set equals an uninterrupted run's.

1. Trains a small teacher on the tiny task (`r1kit run`, a 60-step SFT) so its samples vary in
   length, correctness and format.
2. Writes 120 prompt records (ids, answers) and a job config whose filters stay on (format,
   repetition, length bounds) but do not demand correctness, so a mix of kept and rejected samples.
3. Runs the job once without interruption (the reference).
4. For several seeds: starts the same job in a fresh directory, SIGKILLs it at a random moment
   (several times, each time resuming), then lets it finish; data.jsonl must hold exactly the
   reference's records (no duplicate, none lost) and stats.json the same counts.
5. Bad input: a missing teacher, a malformed prompt line (the error names file:line).

Usage: generate_resume_test.py /path/to/r1kit
Only the Python standard library is used. Prints the kill points and the record counts.
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

R1KIT = sys.argv[1]

RECIPE = """
name: teacher
seed: 3
device: cpu
threads: 1
model:
  create: {hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2,
           intermediate_size: 128, max_position_embeddings: 128, init_std: 0.02}
data:
  kind: tiny_chain
  tiny_chain: {n_ops: 6, bug_probability: 0.6, n_heldout: 16}
stages:
  - {name: sft, kind: sft, steps: 60, batch_size: 32, lr: 3.0e-3, warmup_steps: 5, checkpoint_every: 0, log_every: 30}
"""

JOB = """
filters:
  correctness: false
  format: {options: {answer_tags: true}, min_score: 0.5}
  language: false
  repetition: {max_fraction: 0.6}
  length: {min_tokens: 2, max_tokens: 30, reject_truncated: false}
dedup: {exact: true, near: true, near_scope: dataset, threshold: 0.9}
"""


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def tiny_prompt(rng):
    x = rng.randrange(10)
    text, value = str(x), x
    for _ in range(6):
        op, d = rng.choice("+-"), rng.randrange(10)
        text += op + str(d)
        value = (value + d) % 10 if op == "+" else (value - d) % 10
    return "Q:" + text + "=<think>", str(value)


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def key(rec):
    return (rec["prompt_id"], rec["sample_index"])


def main():
    tmp = tempfile.mkdtemp(prefix="distill_resume_")
    recipe = os.path.join(tmp, "teacher.yaml")
    with open(recipe, "w") as f:
        f.write(RECIPE)
    r = run([R1KIT, "run", recipe, "--out", os.path.join(tmp, "teacher")])
    assert r.returncode == 0, r.stderr[-3000:]
    teacher = os.path.join(tmp, "teacher", "sft", "model")

    rng = random.Random(11)
    prompts = os.path.join(tmp, "prompts.jsonl")
    with open(prompts, "w") as f:
        for i in range(120):
            p, a = tiny_prompt(rng)
            f.write(json.dumps({"id": "p%03d" % i, "prompt": p, "answer": a}) + "\n")
    job = os.path.join(tmp, "job.yaml")
    with open(job, "w") as f:
        f.write(JOB)

    def cmd(out):
        return [R1KIT, "distill", "generate", "--teacher", teacher, "--prompts", prompts, "-n", "4",
                "--max-new-tokens", "30", "--temperature", "1.0", "--chunk", "8", "--config", job,
                "--no-progress", "--out", out]

    # 3. The reference.
    ref_out = os.path.join(tmp, "ref")
    t0 = time.time()
    r = run(cmd(ref_out))
    ref_seconds = time.time() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    ref = records(os.path.join(ref_out, "data.jsonl"))
    ref_stats = json.load(open(os.path.join(ref_out, "stats.json")))
    assert len(ref) > 20, f"reference kept only {len(ref)} records"
    assert len({key(x) for x in ref}) == len(ref), "reference has duplicated keys"
    assert ref_stats["rejected"] and sum(ref_stats["rejected"].values()) > 0, "no sample was rejected: filters untested"
    print(f"reference: {len(ref)} records of {ref_stats['samples']} samples in {ref_seconds:.1f} s; "
          f"rejected {ref_stats['rejected']}")
    ref_set = {json.dumps(x, sort_keys=True) for x in ref}

    # 4. Killed at random points, resumed.
    for trial in range(3):
        out = os.path.join(tmp, "killed%d" % trial)
        kills = []
        krng = random.Random(100 + trial)
        for _ in range(3):
            p = subprocess.Popen(cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            delay = krng.uniform(0.15, 0.9) * ref_seconds
            try:
                p.wait(timeout=delay)
                kills.append("finished before %.2f s" % delay)
                break
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                shards = len([n for n in os.listdir(os.path.join(out, "shards"))
                              if n.endswith(".jsonl")]) if os.path.isdir(os.path.join(out, "shards")) else 0
                kills.append("kill -9 at %.2f s (%d shards on disk)" % (delay, shards))
        r = run(cmd(out))
        assert r.returncode == 0, r.stderr[-3000:]
        got = records(os.path.join(out, "data.jsonl"))
        stats = json.load(open(os.path.join(out, "stats.json")))
        got_set = {json.dumps(x, sort_keys=True) for x in got}
        assert len(got) == len(got_set) == len({key(x) for x in got}), f"trial {trial}: duplicated records"
        missing, extra = ref_set - got_set, got_set - ref_set
        assert not missing and not extra, f"trial {trial}: {len(missing)} missing, {len(extra)} extra records"
        assert [key(x) for x in got] == [key(x) for x in ref], f"trial {trial}: record order differs"
        for field in ("prompts", "samples", "accepted", "kept", "rejected", "dropped"):
            assert stats[field] == ref_stats[field], f"trial {trial}: stats {field} {stats[field]} != {ref_stats[field]}"
        print(f"trial {trial}: {'; '.join(kills)}; resumed -> {len(got)} records, equal to the reference")

    # 5. Bad input: clear errors naming the file (and line).
    r = run([R1KIT, "distill", "generate", "--teacher", os.path.join(tmp, "nope"), "--prompts", prompts,
             "--out", os.path.join(tmp, "bad1")])
    assert r.returncode != 0 and "nope/config.json does not exist" in r.stderr, r.stderr[-2000:]
    bad = os.path.join(tmp, "bad.jsonl")
    with open(bad, "w") as f:
        f.write('{"id": "a", "prompt": "Q:1+1-1+1-1+1-1=<think>", "answer": "1"}\n\n{"id": "b", "prompt": \n')
    r = run([R1KIT, "distill", "generate", "--teacher", teacher, "--prompts", bad, "--out", os.path.join(tmp, "bad2")])
    assert r.returncode != 0 and (bad + ":3") in r.stderr, r.stderr[-2000:]
    print("errors: missing teacher and malformed JSONL (file:line) reported")
    print("OK")


if __name__ == "__main__":
    main()
