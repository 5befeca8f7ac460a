#!/usr/bin/env python3
"""Reference LoRA logits from Hugging Face PEFT, for tests/model/lora_test.cc.

  peft_reference.py JOBS_JSON
JOBS_JSON is a list of jobs, run in one process:
  {"mode": "logits", "base": DIR, "adapter": DIR, "ids": [[ids], ...], "out": FILE}
      PeftModel.from_pretrained(AutoModelForCausalLM(base), adapter): logits of every id list, then
      the same after merge_and_unload().
  {"mode": "make", "base": DIR, "adapter": DIR, "config": {LoraConfig kwargs}, "ids": [...], "out": FILE}
      get_peft_model(base, LoraConfig(**config)), every lora_A / lora_B weight redrawn from
      N(0, 0.2) (seed 0) so the adapter changes the logits, save_pretrained(adapter), the logits.
Each job writes {"logits": [...], "merged_logits": [...], "peft": version, "transformers": version}.

Exit code 77 when torch, transformers or peft is missing (the C++ test then skips).
Float32 on CPU, eager attention, eval mode (no dropout).
"""
import json
import sys

try:
    import torch
    import transformers
    import peft
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, PeftModel, get_peft_model
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (needs torch, transformers, peft in {sys.executable})")
    sys.exit(77)


def base_model(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


@torch.no_grad()
def logits(model, id_lists):
    return [model(torch.tensor([ids])).logits[0].tolist() for ids in id_lists]


def write(out_path, model, id_lists):
    model.eval()
    result = {"logits": logits(model, id_lists), "peft": peft.__version__, "transformers": transformers.__version__}
    result["merged_logits"] = logits(model.merge_and_unload(), id_lists)
    with open(out_path, "w") as f:
        json.dump(result, f)


def main():
    for job in json.load(open(sys.argv[1])):
        if job["mode"] == "logits":
            model = PeftModel.from_pretrained(base_model(job["base"]), job["adapter"])
        elif job["mode"] == "make":
            model = get_peft_model(base_model(job["base"]), LoraConfig(task_type="CAUSAL_LM", **job["config"]))
            gen = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if "lora_A" in name or "lora_B" in name:
                        p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            model.save_pretrained(job["adapter"])
        else:
            sys.exit(f"unknown mode {job['mode']}")
        write(job["out"], model, job["ids"])


if __name__ == "__main__":
    main()
