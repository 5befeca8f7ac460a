#!/bin/sh
# End-to-end check of `r1kit reward`: --list, scoring a small JSONL file (fields top-level and
# under "fields"), the summary table, and errors that name the config file and key.
# Usage: cli_reward_test.sh /path/to/r1kit
set -eu
R1KIT=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$R1KIT" reward --list > "$TMP/list.txt"
for name in accuracy code format tag_count language cosine overlong repetition countdown plugin; do
  grep -q "^$name" "$TMP/list.txt" || { echo "--list lacks $name"; exit 1; }
done

cat > "$TMP/rewards.yaml" <<'YAML'
rewards:
  - {name: countdown, weight: 1.0}
  - {name: format, weight: 0.5, options: {think_prefilled: false}}
YAML
cat > "$TMP/in.jsonl" <<'JSONL'
{"prompt": "Use 3 5 7 to make 22", "completion": "<think>3*5=15</think><answer>3*5+7</answer>", "nums": [3, 5, 7], "target": 22}
{"prompt": "p", "completion": "<answer>7*5+3</answer>", "fields": {"nums": [3, 5, 7], "target": 22}}
JSONL
"$R1KIT" reward --config "$TMP/rewards.yaml" --in "$TMP/in.jsonl" --out "$TMP/out.jsonl" > "$TMP/summary.txt"
grep -q "^countdown" "$TMP/summary.txt" || { cat "$TMP/summary.txt"; echo "no summary row"; exit 1; }
grep -q "^total" "$TMP/summary.txt" || { echo "no total row"; exit 1; }
python3 - "$TMP/out.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
assert rows[0]["reward"] == 1.5 and rows[0]["rewards"] == {"countdown": 1.0, "format": 1.0}, rows[0]
assert abs(rows[1]["reward"] - 0.1) < 1e-12 and rows[1]["rewards"]["format"] == 0.0, rows[1]
assert rows[0]["nums"] == [3, 5, 7] and rows[1]["fields"]["target"] == 22
assert rows[1]["reward_components"]["countdown"]["numbers"] == 1.0
PY

printf 'rewards:\n  - {name: format}\n  - {name: nope}\n' > "$TMP/bad.yaml"
if "$R1KIT" reward --config "$TMP/bad.yaml" --in "$TMP/in.jsonl" --out "$TMP/bad_out.jsonl" 2> "$TMP/err.txt"; then
  echo "unknown reward accepted"; exit 1
fi
grep -q "bad.yaml: key 'rewards\[1\].name': unknown reward 'nope'" "$TMP/err.txt" || { cat "$TMP/err.txt"; exit 1; }
[ ! -e "$TMP/bad_out.jsonl" ] || { echo "output written on error"; exit 1; }
echo "cli_reward_test: ok"
