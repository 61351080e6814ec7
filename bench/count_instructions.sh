#!/usr/bin/env bash
# Instructions per row and per split passed: the reference walk, the quantised walk with the portable kernel, and the
# evaluator the compile step chooses, on the criterion bench's models (a), (b), (c): one callgrind run per model,
# inclusive counts of the bench's `reference_*` / `portable_*` / `auto_*` wrappers (each scores the 1,000 bench rows
# once, as one batch or row by row). Valgrind does not run AVX-512, and hides it from the CPU-feature check, so under
# callgrind "auto" is the AVX2 kernel on a CPU that has AVX2.
#
# Usage: bash bench/count_instructions.sh [a b c]   (needs valgrind; builds the bench binary)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="$(cargo bench -p riskserve-model --bench scoring --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "scoring" and m.get("executable"):
        print(m["executable"])')"
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
