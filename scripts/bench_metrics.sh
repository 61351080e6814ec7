#!/usr/bin/env bash
# Operations benchmarks: what recording metrics costs (criterion: the recording function alone and under contention,
# side by side with a whole one-row invocation), and the autoscaler's reaction time from a load step to the new
# capacity (scripts/bench_metrics.py), with fast settings and with the defaults. Figures go to bench-out/metrics.*.
#   bash scripts/bench_metrics.sh [--skip-criterion] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
rounds=3
criterion=1
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-criterion) criterion=0 ;;
        --rounds) rounds="$2"; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p bench-out
if [ "$criterion" = 1 ]; then
    echo "== criterion: recording metrics vs a one-row invocation"
    cargo bench -p riskserve-service --bench metrics 2>&1 | tee bench-out/metrics-criterion.txt | grep -E "^metrics/|time:"
fi
cargo build --release -p riskserve-cli
binary="$CARGO_TARGET_DIR/release/riskserve"
echo "== autoscaler reaction time (load step of 100 requests/s, target 600 a minute per instance)"
echo "| tick | window | step | first scale-out (median) | full capacity (median) | failed requests |" | tee bench-out/metrics.md
echo "| --- | --- | --- | ---: | ---: | ---: |" | tee -a bench-out/metrics.md
python3 scripts/bench_metrics.py --riskserve "$binary" --interval 1 --window 10 --rounds "$rounds" \
    --json bench-out/metrics-fast.json | tail -1 | tee -a bench-out/metrics.md
python3 scripts/bench_metrics.py --riskserve "$binary" --interval 10 --window 60 --rounds 1 \
    --json bench-out/metrics-default.json | tail -1 | tee -a bench-out/metrics.md
