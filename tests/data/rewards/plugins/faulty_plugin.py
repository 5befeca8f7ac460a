#!/usr/bin/env python3
"""A reward plugin that misbehaves on purpose, for tests/rewards/plugin_test.cc.

Usage: faulty_plugin.py MODE STATE_DIR [SLOW_START_SECONDS]
It scores every sample len(completion) until it has answered the number of requests recorded in
STATE_DIR/count (shared across restarts), then misbehaves once according to MODE, so that the
next process (after r1kit restarts it) behaves again:
  crash        exit(3) instead of answering the 2nd request
  hang         sleep forever instead of answering the 2nd request
  garbage      print a non-JSON line as the 2nd response
  wrong_count  answer the 2nd request with one result too few
  wrong_id     answer the 2nd request with another id
  slow_start   sleep SLOW_START_SECONDS (default 3) before the handshake of the first process only
  bad_version  announce protocol version 99 (every process)
  sample_error report an error for samples whose completion is "bad" (no restart needed)
  batch_error  answer every request with {"id": .., "error": ".."}
"""
import json
import os
import sys
import time

mode, state = sys.argv[1], sys.argv[2]
slow_start_s = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
count_path = os.path.join(state, "count")
starts_path = os.path.join(state, "starts")


def bump(path):
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return n + 1


starts = bump(starts_path)
hello = json.loads(sys.stdin.readline())
if mode == "slow_start" and starts == 1:
    time.sleep(slow_start_s)
version = 99 if mode == "bad_version" else 1
print(json.dumps({"protocol": "r1kit.reward_plugin", "version": version}), flush=True)

for line in sys.stdin:
    req = json.loads(line)
    n = bump(count_path)
    if n == 2:
        if mode == "crash":
            sys.exit(3)
        if mode == "hang":
            time.sleep(3600)
        if mode == "garbage":
            print("this is not json", flush=True)
            continue
        if mode == "wrong_count":
            print(json.dumps({"id": req["id"], "results": [{"score": 1.0}] * (len(req["batch"]) - 1)}), flush=True)
            continue
        if mode == "wrong_id":
            print(json.dumps({"id": req["id"] + 1000, "results": [{"score": 1.0}] * len(req["batch"])}), flush=True)
            continue
    if mode == "batch_error":
        print(json.dumps({"id": req["id"], "error": "cannot score this batch"}), flush=True)
        continue
    results = []
    for s in req["batch"]:
        if mode == "sample_error" and s["completion"] == "bad":
            results.append({"error": "bad sample"})
        else:
            results.append({"score": float(len(s["completion"])), "components": {"len": float(len(s["completion"]))},
                            "diagnostics": {"pid": os.getpid()}})
    print(json.dumps({"id": req["id"], "results": results}), flush=True)
