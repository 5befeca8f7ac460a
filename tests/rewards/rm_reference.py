#!/usr/bin/env python3
"""Tiny random reward models and their scores from Hugging Face transformers, for
tests/rewards/model_reward_test.cc.

  rm_reference.py JOBS_JSON
Each job {"arch": "qwen2" | "llama", "num_labels": N, "tokenizer": DIR, "out_dir": DIR,
"texts": [...], "out": FILE}: builds a random Qwen2ForSequenceClassification /
LlamaForSequenceClassification (hidden 64, 2 layers, GQA, the tokenizer's vocabulary, pad_token_id
= the tokenizer's pad or EOS id, score head drawn from N(0, 1) so scores are O(1)), saves it with
the tokenizer into out_dir, and writes {"logits": [[N floats] per text]} computed the way
transformers scores a batch: tokenizer(texts, padding=True) right-padded, last non-pad token.

Exit code 77 when torch or transformers is missing (the C++ test then skips).
"""
import json
import sys

try:
    import torch
    from transformers import (AutoTokenizer, LlamaConfig, LlamaForSequenceClassification, Qwen2Config,
                              Qwen2ForSequenceClassification)
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (needs torch and transformers in {sys.executable})")
    sys.exit(77)


def main():
    for job in json.load(open(sys.argv[1])):
        tok = AutoTokenizer.from_pretrained(job["tokenizer"])
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        common = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      num_labels=job["num_labels"], pad_token_id=pad, tie_word_embeddings=False)
        torch.manual_seed(0)
        if job["arch"] == "qwen2":
            model = Qwen2ForSequenceClassification(Qwen2Config(**common))
        else:
            model = LlamaForSequenceClassification(LlamaConfig(**common))
        with torch.no_grad():
            model.score.weight.normal_(0.0, 1.0)
        model = model.float().eval()
        model.config.architectures = [type(model).__name__]
        model.save_pretrained(job["out_dir"], safe_serialization=True)
        tok.padding_side = "right"
        tok.save_pretrained(job["out_dir"])
        batch = tok(job["texts"], padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits
        json.dump({"logits": logits.tolist(), "pad_token_id": pad}, open(job["out"], "w"))


if __name__ == "__main__":
    main()
