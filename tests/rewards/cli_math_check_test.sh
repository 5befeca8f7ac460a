#!/bin/sh
# End-to-end check of `r1kit math-check` as users run it, and of the fast start (cli/fast_start.h):
# build/r1kit does not load LibTorch, answers math-check itself and hands every other command to
# r1kit-full; errors name the file and line. Usage: cli_math_check_test.sh /path/to/build/r1kit
set -eu
R1KIT=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. No LibTorch (nor anything it drags in) among the launcher's libraries.
if command -v readelf > /dev/null; then
  readelf -d "$R1KIT" | grep NEEDED > "$TMP/needed.txt"
  if grep -Ei "torch|c10|opencv|dnnl" "$TMP/needed.txt"; then fail "build/r1kit links LibTorch"; fi
fi

# 2. One pair, and a file (with --timing and the Math-Verify-style options).
"$R1KIT" math-check --gold '2\sqrt{2}' --pred '\sqrt{8}' > "$TMP/one.json"
grep -q '"correct":true' "$TMP/one.json" || fail "2sqrt2 vs sqrt8: $(cat "$TMP/one.json")"
cat > "$TMP/pairs.jsonl" <<'JSONL'
{"gold": "\\frac{1}{2}", "pred": "so the answer is \\boxed{0.5}."}
{"gold": "\\frac{1}{3^{100}}", "pred": "\\frac{1}{3^{99}}"}
{"gold": 72, "pred": "The final answer is 72."}
JSONL
"$R1KIT" math-check --in "$TMP/pairs.jsonl" --out "$TMP/out.jsonl" --timing 2> "$TMP/err.txt"
grep -q "math-check: 2/3 correct" "$TMP/err.txt" || fail "summary: $(cat "$TMP/err.txt")"
grep -Eq "math-check: timing: 3 checks, sum [0-9.]+ ms, median [0-9.]+ us" "$TMP/err.txt" || fail "timing: $(cat "$TMP/err.txt")"
python3 - "$TMP/out.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["correct"] for r in rows] == [True, False, True], rows
assert rows[2]["gold"] == 72
PY
"$R1KIT" math-check --in "$TMP/pairs.jsonl" --match expr --phrase-first > /dev/null 2> "$TMP/err2.txt"
grep -q "correct" "$TMP/err2.txt" || fail "--match expr: $(cat "$TMP/err2.txt")"
if "$R1KIT" math-check --in "$TMP/pairs.jsonl" --match words 2> "$TMP/err3.txt"; then fail "--match words accepted"; fi
grep -q "expected latex, expr" "$TMP/err3.txt" || fail "bad --match message: $(cat "$TMP/err3.txt")"

# 3. Bad input names the file and line.
printf '{"gold": "1", "pred": "1"}\n{"gold": "1"}\n' > "$TMP/bad.jsonl"
if "$R1KIT" math-check --in "$TMP/bad.jsonl" > /dev/null 2> "$TMP/bad.txt"; then fail "missing pred accepted"; fi
grep -q "bad.jsonl:2: missing field 'pred'" "$TMP/bad.txt" || fail "error message: $(cat "$TMP/bad.txt")"

# 4. Other commands and the top-level help go to r1kit-full, with the same arguments.
"$R1KIT" --help > "$TMP/help.txt"
for c in generate math-check reward run sandbox tokenize; do
  grep -q "^  $c " "$TMP/help.txt" || fail "--help lacks $c"
done
"$R1KIT" tokenize --help | grep -q -- "--tokenizer" || fail "tokenize --help not delegated"
"$R1KIT" --log-level warn math-check --gold 1 --pred 1.0 | grep -q '"correct":true' || fail "--log-level before the command"

# 5. Without r1kit-full next to it, math-check still works and other commands fail clearly.
cp "$R1KIT" "$TMP/r1kit"
"$TMP/r1kit" math-check --gold 1 --pred 1 > /dev/null || fail "math-check needs r1kit-full"
if "$TMP/r1kit" tokenize --text hi 2> "$TMP/missing.txt"; then fail "tokenize without r1kit-full"; fi
grep -q "cannot start $TMP/r1kit-full (needed for 'tokenize')" "$TMP/missing.txt" || fail "message: $(cat "$TMP/missing.txt")"
echo "cli_math_check_test: ok"
