#!/usr/bin/env python3
"""Writes tests/data/tokenizer/fuzz_strings.jsonl: random strings that stress the pre-tokenizer
regexes, Unicode classes, NFC and added-token matching. The expected ids in
tests/data/tokenizer/fuzz_<tokenizer>.jsonl were produced from these strings with Hugging Face
tokenizers 0.22.2 (npm @anush008/tokenizers 0.6.0, see docs/tokenizer.md), then shortened with
`gen_tokenizer_fuzz.py slim HF_OUTPUT.jsonl tests/data/tokenizer/fuzz_<name>.jsonl`.
Deterministic (seeded)."""
import json
import os
import random
import sys

rng = random.Random(20250101)

POOLS = {
    "ascii": list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "digit": list("0123456789") + ["\uff10", "\u0663", "\u0967", "\u00b2", "\u00bd", "\u2167"],
    "punct": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["\u2019", "\u201c", "\u2014", "\u00bf", "\u3002", "\uff01"],
    "space": [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b",
              "\u2009", "\u000b", "\u000c", "\u1680", "\u202f"],
    "mark": ["\u0301", "\u0308", "\u0327", "\u0323", "\u20dd", "\u093f", "\u0e31", "\u05b7"],
    "cjk": list("\u4e00\u4e8c\u4e09\u4eba\u5927\u5b66\u751f\u6570\u5b66\u9fa5\u9fa6\u3042\u30a2\u30fc\u3063\u3400"),
    "hangul": ["\ud55c", "\uad6d", "\uc5b4", "\u1112\u1161\u11ab", "\u1100\u1161"],
    "emoji": ["\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1fa\U0001f1f8",
              "1\ufe0f\u20e3", "\u2764\ufe0f"],
    "script": list("\u0645\u0631\u062d\u0628\u0627\u05e9\u05dc\u05d5\u05dd\u0928\u092e\u0938\u094d\u0924\u0e2a\u0e27\u0e31\u03b1\u03b2\u0436\u0416"),
    "astral": ["\U0001d400", "\U0001d7d8", "\U00020000", "\U000e0041", "\U0010fffd", "\ufeff", "\ufffe"],
    "special": ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|eot_id|>",
                "<|begin_of_text|>", "<|start_header_id|>", "<\uff5cUser\uff5c>", "<\uff5cAssistant\uff5c>",
                "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<|im_", "<think",
                "<|EOT|>", "<\uff5cfim\u2581hole\uff5c>", "<tool_call>", "<|reserved_special_token_3|>"],
    "contraction": ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re", "\u2019s", "n't"],
    # NFC: reordering/composition, with marks newer than HF's Unicode 9.0 normalization tables.
    "nfc": ["x\u0301\u0323", "a\u0301\u0323", "\U0001183a\u0301", "x\u0301\U0001183a", "\u0899\u0898",
            "\u1dfa\u0301", "\u0301\u0897", "e\u0327\u0301", "\u1100\u1161\u11a8", "\u0ec8\u0e48",
            "\U00011f42\u0301", "\u0338=", "\u2126\u212b\u00c5"],
    "word": ["the", " the", "The", " answer", " is", " boxed", "\\frac", "{", "}", "$", "  ", "def", " return",
             "    ", "\u00e9t\u00e9", "e\u0301", "A\u030a", "\u212b", "\u2126", "stra\u00dfe", "\u0130stanbul"],
}
NAMES = list(POOLS)


def piece():
    pool = POOLS[rng.choice(NAMES)]
    return rng.choice(pool) * (1 if rng.random() < 0.8 else rng.randint(2, 6))


def random_codepoint_string():
    out = []
    for _ in range(rng.randint(1, 30)):
        while True:
            cp = rng.randint(0x20, 0x2FFFF) if rng.random() < 0.9 else rng.randint(0, 0x10FFFF)
            if not 0xD800 <= cp <= 0xDFFF:
                break
        out.append(chr(cp))
        if rng.random() < 0.2:
            out.append(rng.choice(POOLS["space"]))
    return "".join(out)


def slim(full_path, out_path):
    """Keeps HF's output minus fields equal to simpler ones (ids_with_special == ids,
    decoded == text, decoded_skip_special == decoded); the test restores them."""
    with open(full_path, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
        for line in f:
            r = json.loads(line)
            o = {"id": r["id"], "ids": r["ids"]}
            if r["ids_with_special"] != r["ids"]:
                o["ids_with_special"] = r["ids_with_special"]
            if r["decoded"] != r["text"]:
                o["decoded"] = r["decoded"]
            if r["decoded_skip_special"] != r["decoded"]:
                o["decoded_skip_special"] = r["decoded_skip_special"]
            out.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "slim":
        slim(sys.argv[2], sys.argv[3])
        return
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "data", "tokenizer", "fuzz_strings.jsonl")
    rows = []
    for i in range(400):
        text = "".join(piece() for _ in range(rng.randint(1, 25)))
        rows.append({"id": f"mix-{i:03d}", "text": text})
    for i in range(60):
        text = "".join(rng.choice(POOLS["nfc"] + POOLS["mark"] + POOLS["ascii"]) for _ in range(rng.randint(1, 12)))
        rows.append({"id": f"nfc-{i:03d}", "text": text})
    for i in range(150):
        rows.append({"id": f"codepoints-{i:03d}", "text": random_codepoint_string()})
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
