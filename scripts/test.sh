#!/usr/bin/env bash
# The whole test suite from a fresh Debian/Ubuntu machine: installs what is
# missing, checks formatting and lints, runs unit and pipeline tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
echo "liveclip: all tests passed"
