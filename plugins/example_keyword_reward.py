#!/usr/bin/env python3
"""Example r1kit reward plugin: the share of keywords that occur in the completion.

Speaks the r1kit reward plugin protocol, version 1 (docs/reward_plugins.md): JSON lines on
stdin/stdout, one handshake line each way, then one response line per request line. Standard
library only. Logs go to stderr (r1kit passes it through).

Config (sent by r1kit in the handshake, from the reward's `config` option):
  keywords:        list of strings to look for (default ["verify", "check"])
  case_sensitive:  bool (default false)
A sample's own "keywords" field, when present, replaces the configured list.
"""
import json
import sys

PROTOCOL = "r1kit.reward_plugin"
VERSION = 1


def score(sample, keywords, case_sensitive):
    text = sample.get("completion", "")
    if not isinstance(text, str):
        return {"error": "completion is not a string"}
    fields = sample.get("fields") or {}
    words = fields.get("keywords", keywords)
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        return {"error": "keywords must be a list of strings"}
    if not words:
        return {"score": 0.0, "components": {}, "diagnostics": {"found": []}}
    hay = text if case_sensitive else text.lower()
    found = [w for w in words if (w if case_sensitive else w.lower()) in hay]
    return {
        "score": len(found) / len(words),
        "components": {w: (1.0 if w in found else 0.0) for w in words},
        "diagnostics": {"found": found},
    }


def main():
    hello = json.loads(sys.stdin.readline())
    if hello.get("protocol") != PROTOCOL or hello.get("version") != VERSION:
        print(json.dumps({"protocol": PROTOCOL, "version": VERSION, "error": "unsupported protocol"}), flush=True)
        return 1
    config = hello.get("config") or {}
    keywords = config.get("keywords", ["verify", "check"])
    case_sensitive = bool(config.get("case_sensitive", False))
    print(json.dumps({"protocol": PROTOCOL, "version": VERSION, "name": "keyword"}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        results = [score(s, keywords, case_sensitive) for s in request["batch"]]
        sys.stdout.write(json.dumps({"id": request["id"], "results": results}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
