#!/usr/bin/env bash
# Side-by-side TreeSHAP benchmark: riskserve's exact explainer against shap.TreeExplainer, one
# thread each, on XGBoost models of 100 trees of depth 6 and 500 trees of depth 8.
#
# Usage: bash scripts/bench_shap.sh [bench_shap.py options: --rounds N --seconds S --batch B --retrain]
#
# Uses (or creates) the pinned virtual environment ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-fixtures
# (scripts/requirements-fixtures.txt, which pins shap), builds riskserve in release mode, reuses the
# models scripts/bench_peers.sh trained under bench-out/models/ (training them if absent), and
# writes the table to bench-out/shap.md. Exits non-zero when riskserve's values differ from shap's
# by more than 1e-6.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-fixtures"
python="${PYTHON:-python3}"
check="import xgboost, shap, numpy; assert xgboost.__version__ == '3.2.0' and shap.__version__ == '0.51.0'"

if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; }; then
    echo "preparing $venv" >&2
    mkdir -p "$(dirname "$venv")"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-fixtures.txt"
    "$venv/bin/python" -c "$check"
fi

# One thread everywhere: xgboost's OpenMP pool, BLAS, numba.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1

cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release -p riskserve-cli
exec "$venv/bin/python" scripts/bench_shap.py --riskserve "$target/release/riskserve" --out bench-out "$@"
