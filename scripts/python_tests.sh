#!/usr/bin/env bash
# Tests the Python package (python/): creates or updates the pinned virtual environment of
# scripts/requirements-python.txt, builds the abi3 wheel with maturin (release, in its own target folder), installs
# it with one pip command, runs pytest over python/tests (which start real servers with riskserve.Server.start on
# free loopback ports), executes examples/notebooks/credit-risk.ipynb with nbclient, and checks that the committed
# notebook holds no outputs; also rustfmt and clippy on the native crate. Fails on anything missing: nothing here
# skips.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${RISKSERVE_PY_TARGET_DIR:-$HOME/.cache/riskserve/target-py}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
venv="${RISKSERVE_PYTHON_VENV:-$HOME/.cache/riskserve/venv-python}"
notebook=examples/notebooks/credit-risk.ipynb
started=$SECONDS

source scripts/venv.sh
ensure_venv "$venv" scripts/requirements-python.txt python

echo "== the committed notebook has no outputs"
"$venv/bin/python" - "$notebook" <<'PY'
import sys, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
dirty = [i for i, cell in enumerate(notebook.cells)
         if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
if dirty:
    sys.exit(f"{sys.argv[1]}: cells {dirty} hold outputs; strip them (python/README.md says how)")
PY

echo "== cargo fmt --check and clippy of the native module (python/, outside the workspace)"
cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --quiet --locked --manifest-path python/Cargo.toml --all-targets -- -D warnings

echo "== maturin build --release (python/; target $CARGO_TARGET_DIR)"
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/maturin" build --release --locked --quiet --manifest-path python/Cargo.toml --out "$wheels"
wheel=("$wheels"/riskserve-*.whl)
echo "   ${wheel[0]##*/}"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "${wheel[0]}"

echo "== pytest python/tests"
cd python/tests
# Run from the tests' folder so that `import riskserve` is the installed wheel, not python/riskserve.
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider . "$@"
cd ../..

echo "== executing $notebook (nbclient, against a real server)"
PATH="$venv/bin:$PATH" "$venv/bin/python" - "$notebook" <<'PY'
import sys, time, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
started = time.monotonic()
NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": "/tmp"}}).execute()
errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
images = sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
if errors or images < 1:
    sys.exit(f"the notebook ran with {len(errors)} errors and {images} images")
print(f"   {len(notebook.cells)} cells executed in {time.monotonic() - started:.1f} s, {images} plot")
PY
echo "== python tests passed in $((SECONDS - started)) s"
