#!/usr/bin/env bash
# The web console in a real browser: installs Debian's Chromium (apt-get) and the test's npm packages
# (playwright-core and axe-core, pinned by tests/console/package-lock.json; no browser download), builds the debug
# `riskserve` binary, and runs tests/console/console.test.mjs with node --test: sign-in, pages, roles, CSRF,
# accessibility (axe-core) and the budgets. Screenshots and budgets.json go to $CONSOLE_ARTIFACTS
# (default $CARGO_TARGET_DIR/console-artifacts). Without Chromium or the packages the test fails; it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"

if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    echo "== installing chromium (apt-get)"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } > /dev/null 2>&1 \
        || { echo "!! cannot install Debian's chromium: the console's browser tests cannot run" >&2; exit 1; }
fi
echo "== npm ci (tests/console: playwright-core, axe-core)"
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
echo "== cargo build -p riskserve-cli (debug)"
cargo build --quiet --locked -p riskserve-cli --bin riskserve
export RISKSERVE_BIN="$CARGO_TARGET_DIR/debug/riskserve"
export CONSOLE_ARTIFACTS="${CONSOLE_ARTIFACTS:-$CARGO_TARGET_DIR/console-artifacts}"
mkdir -p "$CONSOLE_ARTIFACTS"
echo "== node --test tests/console/console.test.mjs (screenshots and budgets in $CONSOLE_ARTIFACTS)"
(cd tests/console && node --test --test-concurrency=1 console.test.mjs)
