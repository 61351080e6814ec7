#!/usr/bin/env bash
# Replica benchmark: requests/s of one-row invocations against one replica directly and through haproxy with 1, 2 and
# 3 replicas (release binary, PostgreSQL from scripts/with_postgres.sh, moto's S3 server), and a control-plane write
# on PostgreSQL against SQLite. All of it shares this machine's cores with wrk and haproxy: read the figures as such.
#   bash scripts/bench_replicas.sh        (BENCH_ROUNDS, BENCH_SECONDS, BENCH_WRITES tune it)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
venv="${RISKSERVE_REPLICAS_VENV:-$HOME/.cache/riskserve/venv-replicas}"
[[ -x "$venv/bin/moto_server" ]] || { echo "run scripts/replica_tests.sh once first (it builds $venv)" >&2; exit 1; }
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --quiet --release --locked -p riskserve-cli --bin riskserve
export RISKSERVE_BINARY="$CARGO_TARGET_DIR/release/riskserve" HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
scratch="$(mktemp -d)"
s3_port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "$scratch/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true; rm -rf "$scratch"' EXIT
sleep 2
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
mkdir -p bench-out
bash scripts/with_postgres.sh "$venv/bin/python" scripts/bench_replicas.py | tee bench-out/replicas.md
