#!/usr/bin/env python3
"""Renders tests/data/chat/goldens.json: the chat templates' own Jinja output, rendered the way
Hugging Face transformers' apply_chat_template does it (jinja2 sandbox, trim_blocks, lstrip_blocks,
loopcontrols, transformers' tojson, raise_exception, strftime_now pinned to 2024-07-26), for a set of
conversations. The C++ chat templates must reproduce each "expected" string exactly.

Templates: the tokenizer_config.json files in ../shared/tokenizers (qwen3, llama3, DeepSeek-R1
distill, DeepSeek-V3) and tests/reference/chat_templates/*.jinja (Qwen2.5-Instruct, Llama 3 / 3.1
Instruct, DeepSeek-R1 with the "<think>\\n" generation prompt of newer revisions).
Usage: python3 tests/reference/gen_chat_goldens.py   (needs jinja2)"""
import datetime
import json
import os

import jinja2
import jinja2.ext
import jinja2.sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared")


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def render(template, messages, bos, eos, **kwargs):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime(2024, 7, 26).strftime(fmt)
    return env.from_string(template).render(messages=messages, bos_token=bos, eos_token=eos, **kwargs)


def token_text(t):
    if isinstance(t, dict):
        return t.get("content")
    return t


THINK = "<think>\nThe user wants 2+2.\nThat is 4.\n</think>\n\nThe answer is 4."
CONVERSATIONS = {
    "user": [{"role": "user", "content": "What is 2+2?"}],
    "system_user": [{"role": "system", "content": "You are a careful math tutor."},
                    {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "Hi!"},
                   {"role": "assistant", "content": "Hello. How can I help?"},
                   {"role": "user", "content": "Add 3 and 5."}],
    "think_history": [{"role": "user", "content": "What is 2+2?"},
                      {"role": "assistant", "content": THINK},
                      {"role": "user", "content": "And 3+3?"}],
    "think_last": [{"role": "user", "content": "What is 2+2?"},
                   {"role": "assistant", "content": THINK}],
    "think_two_answers": [{"role": "user", "content": "Q1"},
                          {"role": "assistant", "content": "<think>a</think>A1"},
                          {"role": "user", "content": "Q2"},
                          {"role": "assistant", "content": "\n\n<think>\nb\n\n</think>\n\nA2 </think> tail"}],
    "whitespace": [{"role": "system", "content": "  padded system \n"},
                   {"role": "user", "content": "\n  Solve: x^2 = 4.\t\n"},
                   {"role": "assistant", "content": " x = \\pm 2 \n"}],
    "two_systems": [{"role": "system", "content": "First system."},
                    {"role": "user", "content": "Question?"},
                    {"role": "system", "content": "Second system."},
                    {"role": "user", "content": "Again?"}],
    "tools": [{"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": "Let me check."},
              {"role": "tool", "content": "{\"temp\": 21}"},
              {"role": "tool", "content": "sunny"},
              {"role": "assistant", "content": "21 degrees and sunny."},
              {"role": "user", "content": "<tool_response>late</tool_response>"}],
    "unicode": [{"role": "user", "content": "Résous: ∫₀¹ x² dx = ? 数学 🙂 <|im_start|>"}],
}

# (name used by ChatTemplate::by_name, source, conversations, extra render kwargs variants)
ALL = list(CONVERSATIONS)
TEMPLATES = [
    ("qwen3", "shared:tokenizers/qwen3/tokenizer_config.json", ALL, [{}, {"enable_thinking": False}]),
    ("llama3", "shared:tokenizers/llama3/tokenizer_config.json", ALL, [{}]),
    ("deepseek-r1", "shared:tokenizers/deepseek_r1_distill_qwen/tokenizer_config.json", ALL, [{}]),
    ("deepseek-v3", "shared:tokenizers/deepseek_v3/tokenizer_config.json", ALL, [{}]),
    ("qwen2.5", "repo:tests/reference/chat_templates/qwen2.5.jinja", ALL, [{}]),
    ("llama3", "repo:tests/reference/chat_templates/llama3_instruct.jinja", ALL, [{}]),
    ("llama3.1", "repo:tests/reference/chat_templates/llama3.1.jinja", ALL, [{}, {"date_string": "22 Nov 2026"}]),
    ("deepseek-r1", "repo:tests/reference/chat_templates/deepseek_r1_think.jinja", ALL, [{}]),
]
BOS = {"llama3": "<|begin_of_text|>", "llama3.1": "<|begin_of_text|>",
       "deepseek-r1": "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "deepseek-v3": "<\uff5cbegin\u2581of\u2581sentence\uff5c>"}


def load_template(source):
    kind, rel = source.split(":", 1)
    if kind == "shared":
        cfg = json.load(open(os.path.join(SHARED, rel), encoding="utf-8"))
        return cfg["chat_template"], token_text(cfg.get("bos_token")), token_text(cfg.get("eos_token"))
    return open(os.path.join(REPO, rel), encoding="utf-8").read(), None, None


def main():
    goldens = []
    for name, source, convs, variants in TEMPLATES:
        template, bos, eos = load_template(source)
        if bos is None:
            bos = BOS.get(name, "")
        for conv in convs:
            for extra in variants:
                for gen in (False, True):
                    text = render(template, CONVERSATIONS[conv], bos, eos or "", add_generation_prompt=gen, **extra)
                    goldens.append({"template": name, "source": source, "conversation": conv,
                                    "messages": CONVERSATIONS[conv], "add_generation_prompt": gen,
                                    "options": extra, "expected": text})
    out = os.path.join(REPO, "tests", "data", "chat", "goldens.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(goldens)} goldens to {out}")


if __name__ == "__main__":
    main()
