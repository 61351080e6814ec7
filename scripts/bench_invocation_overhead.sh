#!/usr/bin/env bash
# One-row invocation cost in-process, before and after a change: builds the `auth_overhead` example (one-row CSV
# invocations through the whole router: authentication, Cedar, audit, façade, service, runtime) at a base revision
# and at the working tree, then runs the two alternately and reports the medians of their per-run medians and the
# ratio after/before, for access control on and off.
#   bash scripts/bench_invocation_overhead.sh [--base REV] [--runs N] [--rounds R] [--requests Q]
#   bash scripts/bench_invocation_overhead.sh --before BIN --after BIN    (binaries built already)
set -euo pipefail
cd "$(dirname "$0")/.."
base=HEAD~1 runs=7 rounds=9 requests=3000 before="" after=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base) base="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --before) before="$2"; shift 2 ;;
        --after) after="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
target="${CARGO_TARGET_DIR:-$HOME/.cache/riskserve/target}"
out=bench-out
mkdir -p "$out"
if [[ -z "$before" ]]; then
    worktree="$(mktemp -d)"
    trap 'git worktree remove --force "$worktree" 2>/dev/null || true' EXIT
    git worktree add --detach --force "$worktree" "$base" > /dev/null
    (cd "$worktree" && CARGO_TARGET_DIR="$target-base" cargo build --quiet --release -p riskserve-server --example auth_overhead)
    before="$out/auth_overhead.before"
    cp "$target-base/release/examples/auth_overhead" "$before"
fi
if [[ -z "$after" ]]; then
    cargo build --quiet --release -p riskserve-server --example auth_overhead
    after="$out/auth_overhead.after"
    cp "$target/release/examples/auth_overhead" "$after"
fi
log="$out/invocation-overhead.txt"
: > "$log"
for run in $(seq 1 "$runs"); do
    for side in before after; do
        binary="$before"; [[ "$side" == after ]] && binary="$after"
        "$binary" "$rounds" "$requests" | sed "s/^/$side run $run: /" >> "$log"
    done
done
python3 - "$log" <<'EOF'
import re, statistics, sys
# Rounds on this 2-core machine fall into two modes (about 9 µs and about 80 µs, when a waiting thread is parked
# and woken across cores), whichever build runs: the quietest round of each run and the lower quartile of all
# rounds compare the builds in the same mode; the median of all rounds is shown too.
rounds = {}
for line in open(sys.argv[1]):
    match = re.match(r"(before|after) run (\d+): +(on|off): .*rounds \[([^\]]*)\]", line)
    if match:
        values = [float(value) for value in match.group(4).split(",")]
        rounds.setdefault((match.group(1), match.group(3)), []).append(values)
def quartile(values):
    return statistics.quantiles(values, n=4)[0]
print("| access control | statistic | before (µs) | after (µs) | after / before |")
print("| --- | --- | ---: | ---: | ---: |")
for mode in ("off", "on"):
    for label, statistic in (
        ("median of each run's quietest round", lambda runs: statistics.median(min(run) for run in runs)),
        ("lower quartile of all rounds", lambda runs: quartile([value for run in runs for value in run])),
        ("median of all rounds", lambda runs: statistics.median(value for run in runs for value in run)),
    ):
        before, after = statistic(rounds[("before", mode)]), statistic(rounds[("after", mode)])
        print(f"| {mode} | {label} | {before:.2f} | {after:.2f} | {after / before:.3f} |")
EOF
