#!/usr/bin/env bash
# Side-by-side scoring benchmark: riskserve against xgboost, lightgbm, tl2cgen and lleaves, one thread each.
#
# Usage: bash scripts/bench_peers.sh [bench_peers.py options: --rounds N --seconds S --models a,b,c --retrain --no-tl2cgen
#        --no-lleaves]
#
# Uses (or creates) the pinned virtual environment ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-fixtures,
# and venv-lleaves for lleaves (scripts/requirements-lleaves.txt: llvmlite wheels from PyPI; without them lleaves is
# skipped with a message), builds riskserve in release (under $CARGO_TARGET_DIR when set), and writes models,
# compiled libraries, rows and the table (bench-out/peers.md) under bench-out/ (git-ignored). Exits non-zero when
# riskserve's predictions differ from the library's by more than 1e-6.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-fixtures"
python="${PYTHON:-python3}"
check="import xgboost, lightgbm, treelite, tl2cgen, numpy; assert xgboost.__version__ == '3.2.0'"

if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; }; then
    echo "creating $venv" >&2
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-fixtures.txt"
    "$venv/bin/python" -c "$check"
fi
# lleaves (LightGBM model (c) only) compiles with LLVM through llvmlite, which comes as binary wheels from PyPI; it
# needs an llvmlite older than numba's (venv-fixtures has numba for shap), so it gets a virtual environment of its own.
lleaves_venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-lleaves"
lleaves_args=()
if ! { [ -x "$lleaves_venv/bin/python" ] && "$lleaves_venv/bin/python" -c "import lleaves" >/dev/null 2>&1; }; then
    echo "creating $lleaves_venv" >&2
    "$python" -m venv "$lleaves_venv" \
        && "$lleaves_venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-lleaves.txt" \
        || echo "warning: lleaves (and its llvmlite wheel) could not be installed from PyPI; it will be skipped" >&2
fi
if "$lleaves_venv/bin/python" -c "import lleaves" >/dev/null 2>&1; then
    lleaves_args=(--lleaves-python "$lleaves_venv/bin/python")
fi
# tl2cgen compiles the models with gcc.
command -v gcc >/dev/null || echo "warning: gcc not found; tl2cgen will be skipped" >&2

cd "$repo"
cargo build --release -p riskserve-cli
exec "$venv/bin/python" scripts/bench_peers.py --riskserve "${CARGO_TARGET_DIR:-$repo/target}/release/riskserve" \
    --out bench-out "${lleaves_args[@]}" "$@"
