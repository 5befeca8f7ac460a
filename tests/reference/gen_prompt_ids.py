#!/usr/bin/env python3
"""Writes tests/data/tokenizer/prompt_ids.json: the ids Hugging Face transformers feeds a model for a
prompt, for the tokenizers in ../shared/tokenizers (and llama3 with the post-processor of Meta's
original file, which adds <|begin_of_text|>). model/tokenizer_prompt.h must reproduce every entry.

  plain: tokenizer(text).input_ids                      (base models: BOS where the tokenizer asks)
  chat:  apply_chat_template([system?, user], add_generation_prompt=True, tokenize=True)

Generated with transformers 4.57.1 (tokenizers 0.22.1): its LlamaTokenizerFast rebuilds the
post-processor from tokenizer_config.json's add_bos_token, so DeepSeek-V3 (LlamaTokenizerFast, a
ByteLevel post-processor, add_bos_token true) gets BOS on plain prompts. transformers 5.x loads that
file as a generic TokenizersBackend (class/file mismatch) and drops add_bos_token: it gives no BOS
there; every other entry is the same under 5.25.
Usage: PYTHONPATH=<transformers 4.57 site> python3 tests/reference/gen_prompt_ids.py"""
import json
import os
import shutil
import tempfile

import transformers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "tokenizers")
OUT = os.path.join(REPO, "tests", "data", "tokenizer", "prompt_ids.json")

# Meta-Llama-3's own tokenizer.json post-processor (the shared copy has a plain ByteLevel one).
LLAMA3_ORIGINAL_POST_PROCESSOR = {
    "type": "Sequence",
    "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                  "tokens": ["<|begin_of_text|>"]}}},
    ],
}

PROMPTS = [
    "Hello world",
    "",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.\n"
    "How many clips did Natalia sell altogether in April and May?",
    "  leading spaces and a trailing newline\n",
    "What is $\\frac{1}{2} + \\frac{1}{3}$? Put the answer in \\boxed{}.",
]
SYSTEM = "You are a helpful assistant. Think step by step."


def cases(name, directory):
    tok = AutoTokenizer.from_pretrained(directory)
    out = []
    for p in PROMPTS:
        out.append({"tokenizer": name, "mode": "plain", "prompt": p, "ids": tok(p).input_ids})
        if tok.chat_template:
            for system in ("", SYSTEM):
                msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
                ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                    ids = ids["input_ids"]
                out.append({"tokenizer": name, "mode": "chat", "system": system, "prompt": p, "ids": list(ids)})
    return out


def main():
    records = []
    for name in ("qwen3", "llama3", "deepseek_r1_distill_qwen", "deepseek_v3"):
        records += cases(name, os.path.join(SHARED, name))
    with tempfile.TemporaryDirectory() as tmp:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(SHARED, "llama3", f), tmp)
        with open(os.path.join(tmp, "tokenizer.json")) as f:
            tj = json.load(f)
        tj["post_processor"] = LLAMA3_ORIGINAL_POST_PROCESSOR
        with open(os.path.join(tmp, "tokenizer.json"), "w") as f:
            json.dump(tj, f, ensure_ascii=False)
        records += [dict(r, tokenizer="llama3_original_post_processor") for r in cases("x", tmp) if r["mode"] == "plain"]
    doc = {"generator": "tests/reference/gen_prompt_ids.py", "transformers": transformers.__version__,
           "system_prompt": SYSTEM, "llama3_original_post_processor": LLAMA3_ORIGINAL_POST_PROCESSOR,
           "cases": records}
    with open(OUT, "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{OUT}: {len(records)} cases (transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
