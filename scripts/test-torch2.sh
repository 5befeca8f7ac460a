#!/usr/bin/env bash
# The whole test suite against LibTorch 2.x from the PyPI torch wheel, on the CPU: builds build-torch2/
# (scripts/setup.sh --torch pip) and runs ctest there. CI (.ci/run) keeps the Debian LibTorch 1.13 build;
# this is its own script so a CI run stays inside its time limit. Extra arguments go to ctest
# (e.g. -R model_ or -L parity). R1_JOBS: build jobs; R1_TEST_JOBS: test jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
scripts/setup.sh --torch pip
t1=$SECONDS
ctest --test-dir build-torch2 --output-on-failure -j"${R1_TEST_JOBS:-2}" "$@"
echo "test-torch2: build $((t1 - t0)) s, tests $((SECONDS - t1)) s"
