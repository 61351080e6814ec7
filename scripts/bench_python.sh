#!/usr/bin/env bash
# Benchmarks the Python package against the libraries' own predict (scripts/bench_python.py): builds and installs the
# wheel into the pinned venv of scripts/requirements-python.txt as scripts/python_tests.sh does, then runs the
# benchmark. Arguments go to the benchmark (--rounds N --seconds S).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${RISKSERVE_PY_TARGET_DIR:-$HOME/.cache/riskserve/target-py}"
venv="${RISKSERVE_PYTHON_VENV:-$HOME/.cache/riskserve/venv-python}"
source scripts/venv.sh
ensure_venv "$venv" scripts/requirements-python.txt python
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/maturin" build --release --locked --quiet --manifest-path python/Cargo.toml --out "$wheels"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/riskserve-*.whl
cd /tmp
"$venv/bin/python" "$OLDPWD/scripts/bench_python.py" "$@"
