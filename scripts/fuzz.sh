#!/usr/bin/env bash
# Runs every fuzz target in tests/fuzz.rs for a bounded time (default 60 s
# each) and prints what each did: inputs, rate, and the seed that replays
# the run (FUZZ_SEED=...). A panic names its input; make it a regression
# test. Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
FUZZ_SECONDS="$seconds" cargo test --release --test fuzz -- --nocapture --test-threads=2 2>&1 |
    grep -E '^fuzz |test result|panicked'
