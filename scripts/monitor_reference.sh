#!/usr/bin/env bash
# Writes fixtures/monitor/reference.json: the monitoring statistics computed by scikit-learn, scipy, fairlearn and
# numpy (pinned in scripts/requirements-monitor.txt), which crates/riskserve-monitor/tests/reference.rs compares.
#
# Usage: bash scripts/monitor_reference.sh    (uses or creates ${RISKSERVE_VENVS:-~/.cache/riskserve}/venv-monitor)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/venv.sh
source "$repo/scripts/venv.sh"
venv="${RISKSERVE_VENVS:-$HOME/.cache/riskserve}/venv-monitor"
ensure_venv "$venv" "$repo/scripts/requirements-monitor.txt" monitor
mkdir -p "$repo/fixtures/monitor"
exec "$venv/bin/python" "$repo/scripts/monitor_reference.py" "$repo/fixtures/monitor/reference.json"
