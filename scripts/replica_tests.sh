#!/usr/bin/env bash
# Scale-out tests: three riskserve replicas sharing a real PostgreSQL (Debian's package, a temporary cluster started by
# scripts/with_postgres.sh) and an S3-compatible store (moto's server from PyPI: the only S3 server the registries
# offer here, a test server rather than a production object store), behind a real haproxy (Debian's package). Installs
# what is missing, builds the debug binary, runs tests/replicas with pytest, and stops everything it started.
# Every part is required: a missing PostgreSQL, haproxy or moto fails the run, never skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
venv="${RISKSERVE_REPLICAS_VENV:-$HOME/.cache/riskserve/venv-replicas}"
requirements=scripts/requirements-replicas.txt

if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi
if ! command -v haproxy > /dev/null && [ ! -x /usr/sbin/haproxy ]; then
    echo "== installing haproxy (apt-get)"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq haproxy; } > /dev/null
fi
export HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"

source scripts/venv.sh
ensure_venv "$venv" "$requirements" replica

echo "== cargo build -p riskserve-cli (debug)"
cargo build --quiet --locked -p riskserve-cli --bin riskserve
export RISKSERVE_BINARY="$CARGO_TARGET_DIR/debug/riskserve"

scratch="$(mktemp -d)"
s3_port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "$scratch/moto.log" 2>&1 &
moto=$!
stop() {
    kill "$moto" 2>/dev/null || true
    wait "$moto" 2>/dev/null || true
    rm -rf "$scratch"
}
trap stop EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$s3_port/" > /dev/null 2>&1 && break
    sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
export AWS_ACCESS_KEY_ID=riskserve-test AWS_SECRET_ACCESS_KEY=riskserve-test-secret AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null

echo "== pytest tests/replicas (PostgreSQL, moto S3 on $AWS_ENDPOINT_URL, haproxy)"
bash scripts/with_postgres.sh "$venv/bin/python" -m pytest -q -s -p no:cacheprovider tests/replicas "$@"
