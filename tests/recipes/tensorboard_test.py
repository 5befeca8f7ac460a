#!/usr/bin/env python3
"""TensorBoard event files of r1kit, read back by the `tensorboard` package's own reader.

Runs a tiny recipe (SFT then GRPO) with `r1kit run`, kills it with SIGKILL in the middle of GRPO,
re-runs it (the GRPO stage resumes from its checkpoint), then, for each stage, checks with
tensorboard's EventAccumulator that every numeric field of every metrics.jsonl record is a scalar
at the record's step with the record's value (as float32), that no other steps exist (the killed
process's later events are purged by the SessionLog START the resumed writer records), that the
GRPO sample logs are text entries, and that every TFRecord frame has valid masked CRC32C checksums.

Usage: tensorboard_test.py /path/to/r1kit /path/to/recipes/tiny-r1-zero.yaml
Exit code 77 (ctest: skipped) when the tensorboard package is not installed.
"""
import json
import math
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    from tensorboard.backend.event_processing import event_accumulator, plugin_event_accumulator
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
except ImportError as e:  # pragma: no cover
    print(f"SKIP: the tensorboard package is not installed for {sys.executable} ({e})")
    sys.exit(77)

R1KIT, RECIPE = sys.argv[1], sys.argv[2]
OVERRIDES = [
    "model.create.hidden_size=32", "model.create.num_hidden_layers=1", "model.create.intermediate_size=64",
    "model.create.num_attention_heads=2", "model.create.num_key_value_heads=2",
    "data.tiny_chain.n_heldout=16",
    "sft.steps=6", "sft.batch_size=8", "sft.checkpoint_every=3", "sft.warmup_steps=2", "sft.log_every=3",
    # 40 steps: a step of this model takes milliseconds, and with 8 the kill (after step 5) could land
    # after the last one, leaving the resumed run nothing to do.
    "grpo.steps=40", "grpo.prompts_per_step=2", "grpo.group_size=4", "grpo.save_every=2",
    "grpo.log_samples_every=2", "grpo.micro_batch_size=8",
]


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if not prefix and k == "step":
                continue
            flatten(f"{prefix}/{k}" if prefix else k, v, out)
    elif isinstance(value, bool):
        out[prefix] = 1.0 if value else 0.0
    elif isinstance(value, (int, float)):
        out[prefix] = float(value)


def check_frames(path):
    data = open(path, "rb").read()
    pos, n = 0, 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert hcrc == masked_crc32c(header), f"{path}: bad length crc at byte {pos}"
        payload = data[pos + 12:pos + 12 + length]
        (pcrc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert pcrc == masked_crc32c(payload), f"{path}: bad payload crc at byte {pos}"
        pos += 16 + length
        n += 1
    assert pos == len(data), f"{path}: trailing bytes"
    return n


def check_stage(stage_dir, expect_text):
    records = metrics(os.path.join(stage_dir, "metrics.jsonl"))
    assert records, f"{stage_dir}: empty metrics.jsonl"
    tb_dir = os.path.join(stage_dir, "tensorboard")
    files = sorted(f for f in os.listdir(tb_dir) if f.startswith("events.out.tfevents."))
    assert files, f"{tb_dir}: no event files"
    frames = sum(check_frames(os.path.join(tb_dir, f)) for f in files)
    acc = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.SCALARS: 0,
                                                                     event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {}
    for rec in records:
        values = {}
        flatten("", rec, values)
        for tag, v in values.items():
            expected.setdefault(tag, {})[rec["step"]] = v
    n_checked, max_diff = 0, 0.0
    for tag, by_step in expected.items():
        assert tag in tags, f"{tb_dir}: scalar '{tag}' missing (have {sorted(tags)})"
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        assert steps == sorted(by_step), f"{tb_dir}: '{tag}' steps {steps} != metrics.jsonl steps {sorted(by_step)}"
        for e in events:
            want = np.float32(by_step[e.step])
            got = np.float32(e.value)
            if math.isnan(want):
                assert math.isnan(got), f"{tag} step {e.step}: {got} != nan"
                continue
            assert got == want, f"{tb_dir}: '{tag}' step {e.step}: {got!r} != {want!r}"
            max_diff = max(max_diff, abs(float(got) - by_step[e.step]))
            n_checked += 1
    extra = tags - set(expected)
    assert not extra, f"{tb_dir}: scalars not in metrics.jsonl: {sorted(extra)}"
    n_text = 0
    if expect_text:
        samples = metrics(os.path.join(stage_dir, "samples.jsonl"))
        want_steps = sorted({s["step"] for s in samples})
        # Text entries are read the way TensorBoard's server reads them: the plugin accumulator purges
        # tensors on SessionLog START; the legacy accumulator above never purges tensors at all.
        tacc = plugin_event_accumulator.EventAccumulator(tb_dir, size_guidance={plugin_event_accumulator.TENSORS: 0})
        tacc.Reload()
        text_tags = tacc.Tags()["tensors"]
        assert "samples" in text_tags, f"{tb_dir}: no 'samples' text (tensors: {text_tags})"
        texts = tacc.Tensors("samples")
        assert [t.step for t in texts] == want_steps, f"text steps {[t.step for t in texts]} != {want_steps}"
        for t in texts:
            md = t.tensor_proto.string_val[0].decode()
            first = next(s for s in samples if s["step"] == t.step)
            assert first["completion"][:50] in md, f"step {t.step}: the completion is not in the text entry"
            n_text += 1
    print(f"{stage_dir}: {len(records)} steps, {len(expected)} tags, {n_checked} scalars equal to metrics.jsonl "
          f"(max |float32 - float64| {max_diff:.3g}), {n_text} text entries, {len(files)} event files, "
          f"{frames} records with valid CRCs")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        cmd = [R1KIT, "run", RECIPE, "--out", run_dir] + OVERRIDES
        env = dict(os.environ, R1_THREADS="1")
        # First run: killed with SIGKILL once GRPO has logged step 5 (checkpoint at step 4); the kill may land
        # a step or two later, after the text entry of step 6 and before or after the checkpoint of step 6.
        # R1_TB_KILL_AFTER=N moves the kill (to check the later cases by hand).
        kill_after = int(os.environ.get("R1_TB_KILL_AFTER", "5"))
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        grpo_metrics = os.path.join(run_dir, "grpo", "metrics.jsonl")
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(grpo_metrics) and len(metrics(grpo_metrics)) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait()
        killed = proc.returncode == -signal.SIGKILL
        print(f"first run: {'killed during grpo' if killed else 'finished before the kill'} "
              f"({len(metrics(grpo_metrics)) if os.path.exists(grpo_metrics) else 0} grpo steps logged)")
        # Second run: resumes GRPO from its checkpoint and finishes.
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print(r.stderr[-4000:])
            sys.exit(f"r1kit run failed with exit code {r.returncode}")
        check_stage(os.path.join(run_dir, "sft"), expect_text=False)
        check_stage(os.path.join(run_dir, "grpo"), expect_text=True)
        if killed:
            n_files = len(os.listdir(os.path.join(run_dir, "grpo", "tensorboard")))
            assert n_files >= 2, "the resumed GRPO run should have opened a second event file"
    print("OK")


if __name__ == "__main__":
    main()
