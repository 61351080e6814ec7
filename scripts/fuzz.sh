#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/, one at a time, seeding each corpus from fixtures/ and
# fuzz/seeds/, and prints per target the executions, run time, crashes and corpus size.
#
#   bash scripts/fuzz.sh [TARGET|all] [SECONDS]      # default: every target, 60 s each
#   FUZZ_ARGS="-only_ascii=1" bash scripts/fuzz.sh pmml 600
#
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_SANITIZER (default none: the code under test
# has no unsafe, so ASan only slows the search; use address to check dependencies), FUZZ_MAX_SEED_BYTES
# (fixtures larger than this are not copied into corpora, default 524288), FUZZ_ARGS (extra libFuzzer
# flags). Exits 1 when a target crashed; reproducers are in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

all_targets=(xgboost_json xgboost_ubj lightgbm onnx pmml detect rows)
target=${1:-all}
seconds=${2:-60}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
sanitizer=${FUZZ_SANITIZER:-none}
max_seed_bytes=${FUZZ_MAX_SEED_BYTES:-524288}
# The fuzz crate is its own workspace; keep its build beside it (git-ignored), never in the
# main build's target dir, whose flags differ.
export CARGO_TARGET_DIR="$root/fuzz/target"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if [[ $target == all ]]; then
    targets=("${all_targets[@]}")
elif [[ " ${all_targets[*]} " == *" $target "* ]]; then
    targets=("$target")
else
    echo "unknown target $target; targets: ${all_targets[*]}" >&2
    exit 2
fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "SECONDS must be a positive whole number, got $seconds" >&2
    exit 2
fi

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "the $toolchain toolchain is missing: rustup toolchain install $toolchain" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Which fixture files seed a target, by extension and content.
seeds_of() {
    local name=$1
    find fixtures -type f -size -"$((max_seed_bytes + 1))"c 2>/dev/null | sort | while read -r file; do
        case $name:$file in
            xgboost_json:*.json | detect:*.json)
                # Manifests are JSON too, but not models.
                [[ $file == */manifest* ]] || echo "$file" ;;
            xgboost_ubj:*.ubj | detect:*.ubj) echo "$file" ;;
            onnx:*.onnx | detect:*.onnx) echo "$file" ;;
            pmml:*.pmml | pmml:*.xml | detect:*.pmml | detect:*.xml) echo "$file" ;;
            lightgbm:*.txt | detect:*.txt)
                [[ $(head -c 5 "$file") == tree ]] && echo "$file" ;;
            rows:*.input.csv) echo "$file" ;;
        esac
    done
    local seed_target
    for seed_target in $([[ $name == detect ]] && echo xgboost_json xgboost_ubj lightgbm onnx pmml || echo "$name"); do
        find "fuzz/seeds/$seed_target" -type f 2>/dev/null | sort
    done
}

echo "== building fuzz targets ($toolchain, sanitizer $sanitizer)"
# Built once, then each binary runs directly: every target fuzzes the same code, and the times
# below are fuzzing only. One target builds alone; `all` builds every target in one cargo call.
# shellcheck disable=SC2046 # no target name means all of them
cargo "+$toolchain" fuzz build -O -a -s "$sanitizer" --fuzz-dir fuzz $([[ $target == all ]] || echo "$target")
host=$(rustup run "$toolchain" rustc -vV | sed -n 's/^host: //p')
binaries=$CARGO_TARGET_DIR/$host/release

mkdir -p fuzz/target/logs
summary=()
failed=0
for name in "${targets[@]}"; do
    corpus=fuzz/corpus/$name
    mkdir -p "$corpus" "fuzz/artifacts/$name"
    copied=0
    while read -r file; do
        [[ -n $file ]] || continue
        # Row files keep their header and a few rows: short inputs mutate faster.
        if [[ $name == rows ]]; then
            head -n 12 "$file" >"$corpus/seed-$(echo "$file" | tr '/' '_')"
        else
            cp -f "$file" "$corpus/seed-$(echo "$file" | tr '/' '_')"
        fi
        copied=$((copied + 1))
    done < <(seeds_of "$name")

    dict=fuzz/dict/$name.dict
    if [[ $name == detect ]]; then
        dict=fuzz/target/detect.dict
        cat fuzz/dict/{xgboost_json,xgboost_ubj,lightgbm,onnx,pmml}.dict >"$dict"
    fi
    log=fuzz/target/logs/$name.log
    crashes_before=$(find "fuzz/artifacts/$name" -type f | wc -l)
    echo "== fuzzing $name for ${seconds}s ($copied seed files, corpus $corpus, log $log)"
    started=$(date +%s)
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$binaries/$name" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -dict="$dict" -artifact_prefix="fuzz/artifacts/$name/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - started))
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    crashes=$(($(find "fuzz/artifacts/$name" -type f | wc -l) - crashes_before))
    corpus_size=$(find "$corpus" -type f | wc -l)
    line="$name: ${executions:-?} executions in ${elapsed}s, $crashes new crash files, corpus $corpus_size files, exit $status"
    echo "$line"
    if ((status != 0)); then
        failed=1
        grep -m1 -A30 -E "panicked at|ERROR: libFuzzer|==ERROR" "$log" || tail -30 "$log"
        # shellcheck disable=SC2012 # newest first; the names are libFuzzer's own
        ls -t "fuzz/artifacts/$name" | head -3 | sed "s|^|    fuzz/artifacts/$name/|"
    fi
    summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
