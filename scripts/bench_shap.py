"""Side-by-side TreeSHAP benchmark: riskserve's exact explainer against shap.TreeExplainer.

For the two XGBoost models of scripts/bench_peers.py ((a) 100 trees of depth 6, (b) 500 trees of
max depth 8, trained on synthetic credit-like data with missing values; reused from
bench-out/models/ when present), on the same synthetic rows:

1. checks that riskserve's contributions and bias equal shap's to 1e-6 (margin space), on every
   row (riskserve writes them with the hidden `riskserve bench --explain --explain-out`);
2. times, alternating round by round and reporting medians, one thread each:
   - shap.TreeExplainer(model).shap_values on batches of rows (its best case per row: the Python
     call and the DMatrix are shared by the batch), and on one row per call;
   - riskserve's `Explainer::explain_row`, one row per call, in process (`riskserve bench
     --explain`, which reports ns_per_row).

Writes bench-out/shap.md (the table) and bench-out/shap.json. Run through scripts/bench_shap.sh,
which prepares the environment, pins every library to one thread and builds riskserve.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_peers  # noqa: E402  (the models and synthetic data of the scoring benchmark)

TOLERANCE = 1e-6
ROWS = 1000
SEED = 20261128


def time_per_row(call, rows_per_call: int, seconds: float, cycle: int) -> float:
    """Calls `call(i)` for i = 0, 1, ... (mod `cycle`) for at least `seconds` (and at least twice);
    answers microseconds per row."""
    call(0)
    calls = 0
    started = time.perf_counter()
    while True:
        call(calls % cycle)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and calls >= 2:
            return elapsed / (calls * rows_per_call) * 1e6


def riskserve_explain(riskserve: Path, model: Path, rows: Path, seconds: float, out: Path | None = None) -> dict:
    command = [str(riskserve), "bench", "--model", str(model), "--input", str(rows), "--explain",
               "--threads", "1", "--seconds", str(seconds)]
    if out is not None:
        command += ["--explain-out", str(out)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--riskserve", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--batch", type=int, default=100, help="rows per shap_values call in batch mode")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()

    import shap
    import xgboost

    out = args.out
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    specs = [spec for spec in bench_peers.MODELS if spec.library == "xgboost"]
    random = np.random.default_rng(SEED)
    for spec in specs:
        path = models_dir / spec.file_name
        if args.retrain or not path.exists():
            # The training data of scripts/bench_peers.py (its seed and row count), so the models
            # are the same.
            train_random = np.random.default_rng(20_260_101)
            train_rows = bench_peers.synthetic_rows(train_random, 20_000)
            bench_peers.train(spec, path, train_rows, bench_peers.synthetic_labels(train_random, train_rows))
    rows = bench_peers.synthetic_rows(random, ROWS)
    rows_path = out / "shap_rows.csv"
    bench_peers.write_rows_csv(rows_path, rows)

    results = []
    for spec in specs:
        model_path = models_dir / spec.file_name
        booster = xgboost.Booster(model_file=str(model_path))
        booster.set_param({"nthread": 1})
        explainer = shap.TreeExplainer(booster, feature_perturbation="tree_path_dependent", model_output="raw")

        # Parity on every row.
        expected = np.asarray(explainer.shap_values(rows), dtype=np.float64)
        bias = float(np.asarray(explainer.expected_value).reshape(-1)[0])
        written = out / f"shap_riskserve_{spec.key}.csv"
        riskserve_explain(args.riskserve, model_path, rows_path, 0.1, written)
        actual = np.loadtxt(written, delimiter=",", skiprows=1, ndmin=2)
        difference = max(float(np.max(np.abs(actual[:, :-1] - expected))),
                         float(np.max(np.abs(actual[:, -1] - bias))))
        parity = "ok" if difference <= TOLERANCE else "MISMATCH"
        print(f"{spec.title}: largest |riskserve - shap| {difference:.2e} ({parity})", file=sys.stderr)

        batches = [rows[start:start + args.batch] for start in range(0, ROWS, args.batch)]
        singles = [rows[index:index + 1] for index in range(ROWS)]
        timings = {"shap batch": [], "shap one row": [], "riskserve": []}
        for round_index in range(args.rounds):
            timings["shap batch"].append(time_per_row(
                lambda i: explainer.shap_values(batches[i], check_additivity=False), args.batch,
                args.seconds, len(batches)))
            timings["shap one row"].append(time_per_row(
                lambda i: explainer.shap_values(singles[i], check_additivity=False), 1, args.seconds, ROWS))
            report = riskserve_explain(args.riskserve, model_path, rows_path, args.seconds)
            timings["riskserve"].append(report["ns_per_row"] / 1000.0)
            print(f"  round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.1f} µs/row" for k, v in timings.items()),
                  file=sys.stderr)
        medians = {name: statistics.median(values) for name, values in timings.items()}
        # Ratios within each round (the peers measured back to back), then their median: steadier
        # than a ratio of medians on a machine whose load changes between rounds.
        def ratio(peer):
            return statistics.median(a / b for a, b in zip(timings[peer], timings["riskserve"]))
        results.append({
            "model": spec.title,
            "file": spec.file_name,
            "largest_difference": difference,
            "parity": parity,
            "us_per_row": medians,
            "rounds": timings,
            "speedup_vs_shap_batch": ratio("shap batch"),
            "speedup_vs_shap_one_row": ratio("shap one row"),
        })

    lines = [
        "# TreeSHAP: riskserve against shap.TreeExplainer",
        "",
        f"Exact path-dependent TreeSHAP in margin space, one thread each, {ROWS} synthetic rows (30 features,"
        f" 5 with missing values), medians of {args.rounds} alternating rounds of {args.seconds:g} s"
        " (speed-ups: the median of the rounds' ratios).",
        f"shap {shap.__version__} hands XGBoost models to xgboost {xgboost.__version__}'s own TreeSHAP"
        " (`pred_contribs`); its batch figure shares one Python call and one DMatrix among"
        f" {args.batch} rows. riskserve explains one row per call (`Explainer::explain_row`).",
        "",
        "| model | shap, batches (µs/row) | shap, one row per call (µs/row) | riskserve (µs/row) |"
        " speed-up vs shap batches | vs shap one row | largest difference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        medians = result["us_per_row"]
        lines.append(
            f"| {result['model']} | {medians['shap batch']:.1f} | {medians['shap one row']:.1f} |"
            f" {medians['riskserve']:.1f} | {result['speedup_vs_shap_batch']:.2f}× |"
            f" {result['speedup_vs_shap_one_row']:.2f}× | {result['largest_difference']:.1e} ({result['parity']}) |"
        )
    lines += ["", f"Machine: {platform.machine()}, {platform.processor() or platform.platform()};"
              f" Python {platform.python_version()}.", ""]
    (out / "shap.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "shap.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if all(result["parity"] == "ok" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
