#!/usr/bin/env bash
# Access-control overhead: one-row invocations against two release servers side by side, one with authentication,
# authorization and the audit trail (bearer token, and SigV4 requests signed by botocore), one with them off through
# the benchmark-only setting `[auth] insecure_disable_for_benchmark = true` (refused off loopback). Rounds alternate
# between the servers; the table reports each mode's median latency and its difference from the open server.
#
# Usage: bash scripts/bench_auth.sh [--requests N] [--rounds R]
# Uses (or creates) ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-sigv4 (botocore, pinned in requirements-sigv4.txt);
# writes bench-out/auth.md and bench-out/auth.json (git-ignored).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-sigv4"
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import botocore; assert botocore.__version__ == '1.44.8'" 2>/dev/null; }; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-sigv4.txt"
fi
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
cargo build --release -p riskserve-cli
exec "$venv/bin/python" scripts/bench_auth.py --riskserve "$CARGO_TARGET_DIR/release/riskserve" --out bench-out "$@"
