#!/usr/bin/env bash
# Instructions per row and per split passed: the reference walk, the quantised walk with the portable kernel, and the
# evaluator the compile step chooses, on the criterion bench's models (a), (b), (c): one callgrind run per model,
# inclusive counts of the bench's `reference_*` / `portable_*` / `auto_*` wrappers (each scores the 1,000 bench rows
# once, as one batch or row by row). Valgrind does not run AVX-512, and hides it from the CPU-feature check, so under
# callgrind "auto" is the AVX2 kernel on a CPU that has AVX2.
#
# Usage: bash bench/count_instructions.sh [a b c]   (needs valgrind; builds the bench binary)
#
# With --step, the AVX-512 kernels are counted too, on the real CPU: the bench binary single-steps a child copy of
# itself under ptrace through each marked pass (`RISKSERVE_STEP_INSTRUCTIONS`, see benches/scoring.rs), one trap
# per instruction retired; exact and repeatable, about 40,000 instructions a second, so 10 rows a pass. With
# --trained, the models scripts/bench_peers.sh trained (bench-out/models) and its rows are counted instead of the
# synthetic ones.
#
# Usage: bash bench/count_instructions.sh --step [--trained] [a b c]   (Linux; no valgrind needed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step=false
trained=false
while [[ "${1:-}" == --* ]]; do
    case "$1" in
        --step) step=true ;;
        --trained) trained=true ;;
        *) echo "count_instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
binary="$(cargo bench -p riskserve-model --bench scoring --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "scoring" and m.get("executable"):
        print(m["executable"])')"
if [[ "$step" == true ]]; then
    for m in ${@:-a b c}; do
        if [[ "$trained" == true ]]; then
            model=""
            for file in bench-out/models/"$m"_*.json bench-out/models/"$m"_*.ubj bench-out/models/"$m"_*.txt; do
                if [[ -f "$file" ]]; then model="$file"; break; fi
            done
            if [[ -z "$model" || ! -f bench-out/rows.csv ]]; then
                echo "count_instructions.sh: no trained model $m in bench-out/models: run scripts/bench_peers.sh" >&2
                exit 1
            fi
            echo "$m: $model"
            RISKSERVE_STEP_INSTRUCTIONS="$m" RISKSERVE_STEP_MODEL="$model" RISKSERVE_STEP_CSV=bench-out/rows.csv \
                "$binary" 2>/dev/null
        else
            RISKSERVE_STEP_INSTRUCTIONS="$m" "$binary" 2>/dev/null
        fi
    done
    exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
printf '| model | path | evaluator | instructions per row | splits passed per row | instructions per split |\n'
printf '| --- | --- | --- | ---: | ---: | ---: |\n'
for model in "${@:-a b c}"; do
    for m in $model; do
        RISKSERVE_COUNT_INSTRUCTIONS="$m" valgrind --tool=callgrind --callgrind-out-file="$out/$m.out" "$binary" \
            2>"$out/$m.log" >/dev/null
        splits="$(grep -oE 'pass [0-9.]+ splits per tree' "$out/$m.log" | grep -oE '[0-9.]+')"
        trees="$(grep -oE '^[abc]_[a-z0-9_]+: [0-9]+ trees' "$out/$m.log" | grep -oE '[0-9]+ trees' | grep -oE '[0-9]+')"
        evaluator="$(grep -E '^auto: ' "$out/$m.log" | awk '{print $2 " (" $3 ")"}')"
        portable="$(grep -E '^portable: ' "$out/$m.log" | awk '{print $2 " (" $3 ")"}')"
        callgrind_annotate --inclusive=yes --threshold=100 "$out/$m.out" 2>/dev/null | python3 -c "
import re, sys
splits, trees, model = float('$splits'), int('$trees'), '$m'
names = {'reference': 'reference', 'portable': '$portable', 'auto': '$evaluator'}
counts = {}
for line in sys.stdin:
    match = re.match(r'\s*([\d,]+) .*scoring::(reference|portable|auto)_(batch|one_row)\b', line)
    if match:
        counts[(match.group(2), match.group(3))] = int(match.group(1).replace(',', ''))
for path in ('batch', 'one_row'):
    for who in ('reference', 'portable', 'auto'):
        per_row = counts[(who, path)] / 1000
        print(f'| ({model}) | {path} | {names[who]} | {per_row:,.0f} | {splits * trees:,.0f} | {per_row / (splits * trees):.1f} |')
"
    done
done
