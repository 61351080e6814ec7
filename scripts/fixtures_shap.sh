#!/usr/bin/env bash
# Regenerates the TreeSHAP parity fixtures: fixtures/shap/<case>.json and fixtures/shap/manifest.json,
# the SHAP values shap.TreeExplainer gives on fixture models of fixtures/manifest.json.
#
# Usage: bash scripts/fixtures_shap.sh [--check]
#   --check recomputes everything and fails if a written file differs.
#
# Uses ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-fixtures (scripts/requirements-fixtures.txt,
# which pins shap), installing the pinned libraries there when shap is missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-fixtures"
python="${PYTHON:-python3}"
check="import shap, xgboost, lightgbm, pandas; assert shap.__version__ == '0.51.0' and xgboost.__version__ == '3.2.0'"

if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; }; then
    echo "preparing $venv" >&2
    mkdir -p "$(dirname "$venv")"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-fixtures.txt"
    "$venv/bin/python" -c "$check"
fi

exec "$venv/bin/python" "$repo/scripts/fixtures_shap.py" "$@"
