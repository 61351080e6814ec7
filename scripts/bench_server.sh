#!/usr/bin/env bash
# Server benchmark: `riskserve serve` against MLServer on the same 500-tree XGBoost model, one-row invocations
# through wrk on loopback, plus the time from `endpoint create` to the first answer for a 1,000-tree model.
#
# Usage: bash scripts/bench_server.sh [bench_server.py options: --seconds S --rounds N --threads T --connections C
#        --deploys N --retrain]
#
# Installs wrk (Debian package) when missing and uses (or creates) the pinned virtual environment
# ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-bench-server; builds riskserve in release; writes models, logs and
# the table (bench-out/server.md, raw figures in bench-out/server.json) under bench-out/ (git-ignored).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-bench-server"
python="${PYTHON:-python3}"
mlserver_xgboost="mlserver-xgboost==1.7.1"
check="import mlserver, mlserver_xgboost, xgboost, sklearn; assert mlserver.__version__ == '1.7.1' and xgboost.__version__ == '3.2.0'"

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq wrk >&2
fi

if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; }; then
    echo "creating $venv" >&2
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-bench-server.txt"
    "$venv/bin/python" -m pip install --quiet --no-deps "$mlserver_xgboost"
    "$venv/bin/python" -c "$check"
fi

cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
cargo build --release -p riskserve-cli
exec "$venv/bin/python" scripts/bench_server.py --riskserve "$CARGO_TARGET_DIR/release/riskserve" --out bench-out "$@"
