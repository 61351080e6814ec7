#!/usr/bin/env bash
# Tests riskserve with the clients people already use: boto3 (sagemaker, sagemaker-runtime), the AWS CLI and
# tritonclient (Open Inference Protocol). Creates or updates the virtual environment of the pinned
# scripts/requirements-clients.txt, starts the debug `riskserve` binary on a free loopback port with a temporary data
# folder and test credentials, runs tests/clients with pytest, and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
venv="${RISKSERVE_CLIENTS_VENV:-$HOME/.cache/riskserve/venv-clients}"
requirements=scripts/requirements-clients.txt

source scripts/venv.sh
ensure_venv "$venv" "$requirements" client

echo "== cargo build -p riskserve-cli (debug)"
cargo build --quiet --locked -p riskserve-cli --bin riskserve
binary="$CARGO_TARGET_DIR/debug/riskserve"

data_dir="$(mktemp -d)"
log="$data_dir/server.log"
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export RISKSERVE_ADMIN_ACCESS_KEY_ID="AKIARISKSERVETEST01"
export RISKSERVE_ADMIN_SECRET_ACCESS_KEY="riskserve-client-tests-secret-key-0123456789"
export RISKSERVE_ADMIN_TOKEN="riskserve-client-tests-token"
export RISKSERVE_ACCOUNT_ID="123456789012"
export RISKSERVE_REGION="eu-west-1"
# The tests read what the server writes there (data capture files).
export RISKSERVE_TEST_DATA_DIR="$data_dir/data"
RISKSERVE_LISTEN="127.0.0.1:$port" RISKSERVE_DATA_DIR="$data_dir/data" "$binary" serve >"$log" 2>&1 &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data_dir"
}
trap stop EXIT
for _ in $(seq 1 200); do
    grep -q "riskserve listening" "$log" && break
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$log"
        echo "the server stopped before listening" >&2
        exit 1
    fi
    sleep 0.1
done
grep -q "riskserve listening" "$log" || { cat "$log"; echo "the server did not start" >&2; exit 1; }

echo "== pytest tests/clients (server on 127.0.0.1:$port)"
export RISKSERVE_URL="http://127.0.0.1:$port"
export RISKSERVE_SERVER_PID="$server"
export AWS_ACCESS_KEY_ID="$RISKSERVE_ADMIN_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$RISKSERVE_ADMIN_SECRET_ACCESS_KEY"
export AWS_DEFAULT_REGION="$RISKSERVE_REGION"
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
status=0
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/clients "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "== server log (last 60 lines)"
    tail -n 60 "$log"
fi
exit $status
