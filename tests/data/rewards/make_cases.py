#!/usr/bin/env python3
"""Writes the table-driven reward cases (tests/data/rewards/*.jsonl) read by tests/rewards/reward_cases_test.cc.

Every case's expected score is written by hand below. For the rewards that follow a published
implementation (open-r1's tag_count / cosine / repetition rewards, TinyZero's countdown score, DAPO's
overlong penalty), this script also recomputes the score with a small Python re-statement of that
implementation (str.count, re, eval, math.cos) and refuses to write a file where the hand value and
the reference disagree — except for the documented deliberate differences marked `differs`.

Run: python3 tests/data/rewards/make_cases.py   (rewrites the .jsonl files next to this script)
"""
import json
import math
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- references (re-statements of the published definitions) -------------------------------
def ref_tag_count(text, **_):
    count = 0.0
    if text.count("<think>\n") == 1: count += 0.25
    if text.count("\n</think>\n") == 1: count += 0.25
    if text.count("\n<answer>\n") == 1: count += 0.25
    if text.count("\n</answer>") == 1: count += 0.25
    return count


def ref_repetition(text, ngram_size=3, max_penalty=-1.0):
    if text == "": return 0.0
    words = text.lower().split()
    if len(words) < ngram_size: return 0.0
    grams = list(zip(*[words[i:] for i in range(ngram_size)]))
    return (1 - len(set(grams)) / len(grams)) * max_penalty


def ref_overlong(length, max_len, cache_len):
    expected = max_len - cache_len
    if length <= expected: return 0.0
    if length > max_len: return -1.0
    return (expected - length) / cache_len


def ref_countdown(text, nums, target, format_score=0.1, score=1.0):
    matches = list(re.finditer(r"<answer>(.*?)</answer>", text, re.DOTALL))
    if not matches: return 0.0
    eq = matches[-1].group(1).strip()
    try:
        used = sorted(int(n) for n in re.findall(r"\d+", eq))
        if used != sorted(nums): return format_score
        if not re.match(r"^[\d+\-*/().\s]+$", eq): return format_score
        result = eval(eq, {"__builtins__": None}, {})
        return score if abs(result - target) < 1e-5 else format_score
    except Exception:
        return format_score


def ref_cosine(gen_len, correct, min_value_wrong=-1.0, max_value_wrong=-0.5, min_value_correct=0.5,
               max_value_correct=1.0, max_len=1000):
    progress = min(gen_len / max_len, 1.0)  # r1kit clamps; open-r1 relies on gen_len <= max_len
    cosine = math.cos(progress * math.pi)
    if correct:
        lo, hi = min_value_correct, max_value_correct
    else:
        lo, hi = max_value_wrong, min_value_wrong
    return lo + 0.5 * (hi - lo) * (1.0 + cosine)


def write(name, cases):
    with open(os.path.join(HERE, name + ".jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            c.setdefault("reward", name)
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


def case(desc, completion, expected, prompt="Question?", fields=None, options=None, **extra):
    c = {"desc": desc, "prompt": prompt, "completion": completion, "fields": fields or {}, "options": options or {},
         "expected": expected}
    c.update(extra)
    return c


def check(cases, ref):
    for c in cases:
        if c.get("differs") or c.get("error"): continue
        r = ref(c)
        assert abs(r - c["expected"]) < 1e-9, (c["desc"], r, c["expected"])


# ---- format ------------------------------------------------------------------------------------
PRE = "User: 2+2?\nAssistant: <think>\n"
fmt = [
    case("think then answer", "<think>reason</think>The answer is 4.", 1),
    case("leading whitespace and newlines", "  \n<think>\nr\n</think>\n\nans", 1),
    case("no opening tag, prompt does not pre-fill", "reason</think>ans", 0),
    case("pre-filled prompt detected (auto)", "reason</think>ans", 1, prompt=PRE),
    case("pre-filled prompt but think_prefilled false", "reason</think>ans", 0, prompt=PRE,
         options={"think_prefilled": False}),
    case("think_prefilled true forbids <think>", "<think>a</think>b", 0, options={"think_prefilled": True}),
    case("think_prefilled true without prompt hint", "a</think>b", 1, options={"think_prefilled": True}),
    case("pre-filled completion repeating <think>", "<think>a</think>b", 0, prompt=PRE),
    case("no answer after </think>", "<think>a</think>  \n", 0),
    case("no answer allowed when require_answer false", "<think>a</think>", 1, options={"require_answer": False}),
    case("two closing tags", "<think>a</think>b</think>c", 0),
    case("two opening tags", "<think>a<think>b</think>c", 0),
    case("text before <think>", "Hello <think>a</think>b", 0),
    case("tags reversed", "</think><think>a", 0),
    case("unclosed thought", "<think>a", 0),
    case("upper-case tags are not tags", "<THINK>a</THINK>b", 0),
    case("empty completion", "", 0),
    case("empty thought allowed by default", "<think> </think>x", 1),
    case("empty thought rejected with require_thought", "<think> </think>x", 0, options={"require_thought": True}),
    case("answer tags: ok", "<think>a</think>\n<answer>42</answer>\n", 1, options={"answer_tags": True}),
    case("answer tags: text between", "<think>a</think> so <answer>42</answer>", 0, options={"answer_tags": True}),
    case("answer tags: text after", "<think>a</think><answer>42</answer> done", 0, options={"answer_tags": True}),
    case("answer tags: blank answer", "<think>a</think><answer> </answer>", 0, options={"answer_tags": True}),
    case("answer tags: two answers", "<think>a</think><answer>1</answer><answer>2</answer>", 0,
         options={"answer_tags": True}),
    case("answer tags: unclosed", "<think>a</think><answer>42", 0, options={"answer_tags": True}),
    case("answer tags: <answer> inside the thought", "<think><answer>a</think></answer>", 0,
         options={"answer_tags": True}),
    case("answer tags: missing", "<think>a</think>42", 0, options={"answer_tags": True}),
    case("answer tags with pre-filled thought", "a</think><answer>42</answer>", 1, prompt=PRE,
         options={"answer_tags": True}),
]
write("format", fmt)

# ---- tag_count ---------------------------------------------------------------------------------
FULL = "<think>\nx\n</think>\n<answer>\ny\n</answer>"
tc = [
    case("all four tags", FULL, 1.0),
    case("tags without newlines", "<think>x</think><answer>y</answer>", 0.0),
    case("tags without newlines, newlines false", "<think>x</think><answer>y</answer>", 1.0,
         options={"newlines": False}, differs=True),
    case("think tags only", "<think>\nx\n</think>\n", 0.5),
    case("duplicated <think>", "<think>\n" + FULL, 0.75),
    case("duplicated </answer>", FULL + "\n</answer>", 0.75),
    case("empty", "", 0.0),
    case("pre-filled: no <think> expected", FULL[len("<think>\n"):], 1.0, prompt=PRE, differs=True),
    case("pre-filled: <think> repeated", FULL, 0.75, prompt=PRE, differs=True),
    case("pre-filled: empty completion", "", 0.25, prompt=PRE, differs=True),
    case("answer_tags false: think tags", "<think>\nx\n</think>\nfoo", 1.0, options={"answer_tags": False},
         differs=True),
    case("answer_tags false: unclosed", "<think>\nx", 0.5, options={"answer_tags": False}, differs=True),
]
check(tc, lambda c: ref_tag_count(c["completion"]))
write("tag_count", tc)

# ---- language ----------------------------------------------------------------------------------
lang = [
    case("English thought, Chinese answer", "<think>Let me compute this carefully.</think>答案是4", 1.0),
    case("mixed thought, target en: 1 of 6 words", "<think>我们来计算 this</think>x", 1 / 6),
    case("mixed thought, target zh: 5 of 6", "<think>我们来计算 this</think>x", 5 / 6, options={"language": "zh"}),
    case("Hello + two Han characters", "<think>Hello 世界</think>", 1 / 3),
    case("no letters: empty_score 0", "<think>123 + 456 = 579.</think>", 0.0),
    case("no letters: empty_score 1", "<think>123 + 456 = 579.</think>", 1.0, options={"empty_score": 1.0}),
    case("chars unit: 2 of 4 letters", "<think>ab 世界</think>", 0.5, options={"unit": "chars"}),
    case("Cyrillic + Latin, en", "<think>Привет world</think>", 0.5),
    case("Cyrillic + Latin, ru", "<think>Привет мир world</think>", 2 / 3, options={"language": "ru"}),
    case("accented Latin is Latin", "<think>café naïve déjà-vu</think>", 1.0),
    case("combining accent continues the word", "<think>cafe\u0301 ok</think>", 1.0),
    case("pre-filled thought", "English thought 中文</think>answer 中文中文", 0.5, prompt=PRE),
    case("target from a field", "<think>你好</think>", 1.0, fields={"lang": "zh"}, options={"language_field": "lang"}),
    case("field absent: default target", "<think>你好</think>", 0.0, options={"language_field": "lang"}),
    case("scope completion", "<think>abc</think>中文", 1 / 3, options={"scope": "completion"}),
    case("no closing tag: rest is the thought", "<think>only english here", 1.0),
    case("Japanese kana and kanji, ja", "<think>これはテスト漢字</think>", 1.0, options={"language": "ja"}),
    case("Japanese, target en", "<think>これはテスト</think>", 0.0),
    case("Korean word + English word", "<think>안녕하세요 hello</think>", 0.5, options={"language": "ko"}),
    case("Greek counts against en", "<think>alpha βήτα</think>", 0.5),
    case("code identifiers are Latin words", "<think>x_1 = foo(bar) + 2</think>", 1.0),
]
write("language", lang)

# ---- cosine (correctness from the countdown reward: exact and independent of the math checker)
CD = {"nums": [1, 2], "target": 3}
COS = {"correctness": {"name": "countdown"}}
right, wrong = "<answer>1+2</answer>", "<answer>2-1</answer>"
BOXED4, BOXED5 = "So the answer is $\\boxed{4}$.", "So the answer is $\\boxed{5}$."
cos = [
    case("correct, 20 chars", right, ref_cosine(20, True), fields=CD, options=COS),
    case("wrong, 20 chars", wrong, ref_cosine(20, False), fields=CD, options=COS),
    case("correct at max_len", right + " " * 980, 0.5, fields=CD, options=COS),
    case("wrong at max_len", wrong + " " * 980, -0.5, fields=CD, options=COS),
    case("correct past max_len is clamped", right + " " * 5000, 0.5, fields=CD, options=COS, differs=True),
    case("code points, not bytes", right + "é" * 480, ref_cosine(500, True), fields=CD, options=COS),
    case("tokens from completion_tokens: half way, correct", right, 0.75, fields=dict(CD, completion_tokens=500),
         options=dict(COS, length_unit="tokens")),
    case("tokens from completion_tokens: half way, wrong", wrong, -0.75, fields=dict(CD, completion_tokens=500),
         options=dict(COS, length_unit="tokens")),
    case("tokens estimated at 4 chars per token", right + " " * 1980, ref_cosine(500, True), fields=CD,
         options=dict(COS, length_unit="tokens")),
    case("custom values and max_len", right + " " * 30, ref_cosine(50, True, 0, 0, 0.2, 2.0, 100), fields=CD,
         options=dict(COS, min_value_wrong=0, max_value_wrong=0, min_value_correct=0.2, max_value_correct=2.0,
                      max_len=100)),
    case("no answer counts as wrong", "I give up", ref_cosine(9, False), fields=CD, options=COS),
    case("correctness error propagates", right, 0.0, fields={"nums": [1, 2]}, options=COS, error=True),
    # Default correctness: the math accuracy reward ("accuracy").
    case("math: correct boxed answer", BOXED4, ref_cosine(len(BOXED4), True), fields={"answer": "4"}),
    case("math: wrong boxed answer", BOXED5, ref_cosine(len(BOXED5), False), fields={"answer": "4"}),
    case("math: missing gold is an error", "So the answer is $\\boxed{4}$.", 0.0, fields={}, error=True),
]
assert abs(ref_cosine(500, True) - 0.75) < 1e-12
write("cosine", cos)

# ---- overlong ----------------------------------------------------------------------------------
OL = {"max_len": 100, "cache_len": 20}
ov = []
for n in [0, 80, 81, 90, 99, 100, 101, 100000]:
    ov.append(case(f"{n} tokens from the field", "x", ref_overlong(n, 100, 20), fields={"completion_tokens": n},
                   options=OL))
for chars, text in [(320, "a" * 320), (321, "a" * 321), (340, "a" * 340), (400, "a" * 400), (401, "a" * 401)]:
    tokens = math.ceil(chars / 4)
    ov.append(case(f"{chars} chars estimated as {tokens} tokens", text, ref_overlong(tokens, 100, 20), options=OL))
ov.append(case("multi-byte chars count once", "é" * 360, ref_overlong(90, 100, 20), options=OL))
ov.append(case("chars_per_token 2", "a" * 180, ref_overlong(90, 100, 20), options=dict(OL, chars_per_token=2)))
ov.append(case("non-integer completion_tokens ignored", "a" * 360, ref_overlong(90, 100, 20),
               fields={"completion_tokens": "many"}, options=OL))
ov.append(case("DAPO defaults: 16384 tokens is free", "x", 0.0, fields={"completion_tokens": 16384}))
ov.append(case("DAPO defaults: 18432 tokens is -0.5", "x", -0.5, fields={"completion_tokens": 18432}))
write("overlong", ov)

# ---- repetition --------------------------------------------------------------------------------
rp = [
    case("empty", "", 0.0),
    case("fewer words than n", "a b", 0.0),
    case("one trigram", "a b c", 0.0),
    case("repeated trigram", "a b c a b c", -0.25),
    case("case-insensitive, n=2, max_penalty -0.5", "The the THE the", -1 / 3,
         options={"ngram_size": 2, "max_penalty": -0.5}),
    case("any whitespace separates", "a\tb\nc  a b c", -0.25),
    case("no repetition", "one two three four five six", 0.0),
    case("heavy repetition", " ".join(["go"] * 100), -(1 - 1 / 98)),
    case("chars unit for Chinese", "好好好好", -2 / 3, options={"ngram_size": 2, "unit": "chars"}, differs=True),
    case("n=1 counts repeated words", "a a b", -1 / 3, options={"ngram_size": 1}),
]
check(rp, lambda c: ref_repetition(c["completion"], c["options"].get("ngram_size", 3),
                                   c["options"].get("max_penalty", -1.0)))
write("repetition", rp)

# ---- countdown ---------------------------------------------------------------------------------
F = {"nums": [3, 5, 7], "target": 22}
A = lambda eq: "<think>try</think>\n<answer>" + eq + "</answer>"
cd = [
    case("correct", A("3*5+7"), 1.0, fields=F),
    case("correct with spaces and parentheses", A(" (3 * 5) + 7 "), 1.0, fields=F),
    case("unicode × and −", A("3 × 5 + 7"), 1.0, fields=F, differs=True),
    case("unicode minus", A("7 − 5"), 1.0, fields={"nums": [7, 5], "target": 2}, differs=True),
    case("unicode ÷", A("8 ÷ 2"), 1.0, fields={"nums": [8, 2], "target": 4}, differs=True),
    case("wrong value", A("(7+5)*3"), 0.1, fields=F),
    case("extra number", A("3*5+7+1"), 0.1, fields=F),
    case("missing number", A("3*5"), 0.1, fields=F),
    case("number used twice", A("3*5+7+7-7"), 0.1, fields=F),
    case("no answer tag", "3*5+7", 0.0, fields=F),
    case("unclosed answer tag", "<answer>3*5+7", 0.0, fields=F),
    case("'=' is not allowed", A("3*5+7 = 22"), 0.1, fields=F),
    case("'x' is not multiplication", A("3x5+7"), 0.1, fields=F),
    case("last answer wins (right)", "<answer>wrong</answer> then " + A("3*5+7"), 1.0, fields=F),
    case("last answer wins (wrong)", A("3*5+7") + " then <answer>7*5+3</answer>", 0.1, fields=F),
    case("exact rational arithmetic", A("8/(3-8/3)"), 1.0, fields={"nums": [3, 3, 8, 8], "target": 24}),
    case("exact: 1/3*3 is 1", A("1/3*3"), 1.0, fields={"nums": [1, 3, 3], "target": 1}),
    case("division by zero", A("2/(1-1)"), 0.1, fields={"nums": [1, 1, 2], "target": 2}),
    case("field 'numbers'", A("3*5+7"), 1.0, fields={"numbers": [3, 5, 7], "target": 22}, differs=True),
    case("float target equal to an integer", A("3*5+7"), 1.0, fields={"nums": [3, 5, 7], "target": 22.0}),
    case("decimal point", A("2.5*2"), 0.1, fields={"nums": [2, 5, 2], "target": 5}, differs=True),
    case("unary minus allowed", A("-5+10"), 1.0, fields={"nums": [5, 10], "target": 5}),
    case("unary minus refused", A("-5+10"), 0.1, fields={"nums": [5, 10], "target": 5},
         options={"allow_unary": False}, differs=True),
    case("deep parentheses", A("(((3)))*5+7"), 1.0, fields=F),
    case("unbalanced parentheses", A("(3*5+7"), 0.1, fields=F),
    case("empty answer", A(""), 0.1, fields=F),
    case("multi-line answer", "<answer>3*5\n+7</answer>", 1.0, fields=F, differs=True),
    case("custom scores", A("7*5+3"), 0.0, fields=F, options={"format_score": 0.0, "score": 2.0}, differs=True),
    case("custom score, right", A("3*5+7"), 2.0, fields=F, options={"format_score": 0.0, "score": 2.0},
         differs=True),
    case("missing target is an error", A("3*5+7"), 0.0, fields={"nums": [3, 5, 7]}, error=True),
    case("missing numbers is an error", A("3*5+7"), 0.0, fields={"target": 22}, error=True),
    case("non-integer numbers are an error", A("3*5+7"), 0.0, fields={"nums": [3.5, 5, 7], "target": 22}, error=True),
]
check(cd, lambda c: ref_countdown(c["completion"], c["fields"]["nums"], c["fields"]["target"]))
write("countdown", cd)
print("wrote", sum(len(x) for x in [fmt, tc, lang, cos, ov, rp, cd]), "cases")
