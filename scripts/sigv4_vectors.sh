#!/usr/bin/env bash
# Writes fixtures/sigv4/vectors.json: requests signed by botocore itself (pinned in
# scripts/requirements-sigv4.txt), which riskserve's SigV4 verifier must accept or refuse as recorded.
#
# Usage: bash scripts/sigv4_vectors.sh    (uses or creates ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-sigv4)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-sigv4"
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import botocore; assert botocore.__version__ == '1.44.8'" 2>/dev/null; }; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements-sigv4.txt"
fi
exec "$venv/bin/python" "$repo/scripts/sigv4_vectors.py" "$repo/fixtures/sigv4/vectors.json"
