#!/usr/bin/env bash
# Runs every check and test of the repository: formatting, lints, unit, parity and CLI tests, then the real-client
# tests (boto3, the AWS CLI, tritonclient) in their own virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
# Keep build output outside the clone so that repeated runs (and CI) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
echo "== real clients (scripts/client_tests.sh)"
bash scripts/client_tests.sh
