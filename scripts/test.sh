#!/usr/bin/env bash
# Runs every check and test of the repository: formatting, lints, unit, parity and CLI tests, then the real-client
# tests (boto3, the AWS CLI, tritonclient) in their own virtual environment, the web console in Chromium
# (Playwright, axe-core), the Python package (wheel, pytest, the executed notebook), and three replicas sharing
# PostgreSQL and S3 behind haproxy.
set -euo pipefail
cd "$(dirname "$0")/.."
# Keep build output outside the clone so that repeated runs (and CI) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== module layering (scripts/check_layers.py)"
python3 scripts/check_layers.py --self-test
python3 scripts/check_layers.py
bash scripts/validate_deploy.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The operations test scrapes riskserve with a real Prometheus server (Debian's package); without one it skips loudly
# on a developer's machine and fails in CI (CI=true).
if ! command -v prometheus > /dev/null; then
    echo "== installing prometheus (apt-get)"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus; } > /dev/null 2>&1 \
        || echo "!! cannot install prometheus: the Prometheus scrape test will skip (fail under CI=true)"
fi
echo "== cargo test (the store's PostgreSQL tests against a temporary server: scripts/with_postgres.sh)"
bash scripts/with_postgres.sh cargo test --workspace --all-targets --locked
echo "== real clients (scripts/client_tests.sh)"
bash scripts/client_tests.sh
echo "== the web console in Chromium (scripts/console_tests.sh)"
bash scripts/console_tests.sh
echo "== the Python package: wheel, pytest, the notebook (scripts/python_tests.sh)"
bash scripts/python_tests.sh
echo "== replicas on PostgreSQL and S3 behind haproxy (scripts/replica_tests.sh)"
bash scripts/replica_tests.sh
