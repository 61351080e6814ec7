"""Side-by-side scoring benchmark: riskserve against XGBoost, LightGBM, tl2cgen-compiled code and lleaves.

Trains three models on synthetic credit-like data (with missing values), compiles them with
treelite + tl2cgen (and the LightGBM model with lleaves, LLVM through llvmlite, in a venv of its own),
checks that riskserve's predictions equal the library's (1e-6), then measures
rows per second on batches of 1,000 rows and the latency of one-row calls, one thread each,
alternating the peers round by round and reporting medians. Run through scripts/bench_peers.sh,
which prepares the virtual environment and builds riskserve.

The models are (a) XGBoost 100 trees of depth 6 (JSON), (b) XGBoost 500 trees of max depth 8
(UBJSON), (c) LightGBM 1,000 trees of 63 leaves (text). Everything is written under --out
(bench-out/ by default, git-ignored); models and compiled libraries are reused between runs
unless --retrain is given.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

NUM_FEATURES = 30
FEATURE_NAMES = [f"f{index}" for index in range(NUM_FEATURES)]
BATCH_ROWS = 1000
PARITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ModelSpec:
    key: str
    title: str
    library: str  # "xgboost" or "lightgbm"
    file_name: str
    params: dict
    num_rounds: int


MODELS = [
    ModelSpec(
        "a",
        "(a) XGBoost 100 trees, depth 6",
        "xgboost",
        "a_xgboost_100x6.json",
        {"objective": "binary:logistic", "max_depth": 6, "eta": 0.3, "tree_method": "hist", "seed": 1},
        100,
    ),
    ModelSpec(
        "b",
        "(b) XGBoost 500 trees, max depth 8",
        "xgboost",
        "b_xgboost_500x8.ubj",
        {"objective": "binary:logistic", "max_depth": 8, "eta": 0.1, "tree_method": "hist", "seed": 2},
        500,
    ),
    ModelSpec(
        "c",
        "(c) LightGBM 1,000 trees, 63 leaves",
        "lightgbm",
        "c_lightgbm_1000x63.txt",
        {"objective": "binary", "num_leaves": 63, "learning_rate": 0.05, "seed": 3, "verbose": -1},
        1000,
    ),
]


def synthetic_rows(random: np.random.Generator, count: int) -> np.ndarray:
    """Credit-like columns: scores (normal), amounts (log-normal), counts, flags and ratios; five
    of the thirty columns have 5-9 % missing values (the same columns as the criterion bench)."""
    rows = np.empty((count, NUM_FEATURES), dtype=np.float64)
    for feature in range(NUM_FEATURES):
        kind = feature % 5
        if kind == 0:
            column = 600.0 + 80.0 * random.standard_normal(count)
        elif kind == 1:
            column = np.exp(8.0 + 1.2 * random.standard_normal(count))
        elif kind == 2:
            column = random.integers(0, 12, count).astype(np.float64)
        elif kind == 3:
            column = (random.random(count) < 0.3).astype(np.float64)
        else:
            column = random.random(count)
        if feature % 6 == 1:
            missing_rate = 0.05 + 0.01 * (feature % 5)
            column[random.random(count) < missing_rate] = np.nan
        rows[:, feature] = column
    return rows


def synthetic_labels(random: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """A default flag driven by a nonlinear score with interactions, so the trees have structure
    to find at every depth."""
    filled = np.nan_to_num(rows, nan=0.0)
    standardized = (filled - filled.mean(axis=0)) / (filled.std(axis=0) + 1e-9)
    score = np.zeros(len(rows))
    for feature in range(NUM_FEATURES):
        weight = np.sin(feature + 1.0)
        score += weight * np.tanh(standardized[:, feature])
        partner = (feature * 7 + 3) % NUM_FEATURES
        score += 0.3 * weight * standardized[:, feature] * (standardized[:, partner] > 0.5)
    score += 0.8 * np.isnan(rows[:, 1])
    probability = 1.0 / (1.0 + np.exp(-(score - 1.0)))
    return (random.random(len(rows)) < probability).astype(np.float64)


def write_rows_csv(path: Path, rows: np.ndarray) -> None:
    """Header of feature names; an empty cell is a missing value; repr round-trips every float."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FEATURE_NAMES)
        for row in rows:
            writer.writerow(["" if np.isnan(value) else repr(float(value)) for value in row])


def train(spec: ModelSpec, path: Path, rows: np.ndarray, labels: np.ndarray) -> None:
    threads = os.cpu_count() or 1
    started = time.perf_counter()
    if spec.library == "xgboost":
        import xgboost

        matrix = xgboost.DMatrix(rows, label=labels, feature_names=FEATURE_NAMES, missing=np.nan)
        booster = xgboost.train({**spec.params, "nthread": threads}, matrix, num_boost_round=spec.num_rounds)
        booster.save_model(str(path))
    else:
        import lightgbm

        dataset = lightgbm.Dataset(rows, label=labels, feature_name=FEATURE_NAMES)
        booster = lightgbm.train({**spec.params, "num_threads": threads}, dataset, num_boost_round=spec.num_rounds)
        booster.save_model(str(path))
    print(f"  trained {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


@dataclass
class Peer:
    """One implementation under test: a batch scorer and a one-row scorer, each timed for a
    number of seconds and answering rows per second."""

    name: str
    batch: Callable[[float], float]
    one_row: Callable[[float], float]


@dataclass
class Results:
    batch: dict[str, list[float]] = field(default_factory=dict)
    one_row: dict[str, list[float]] = field(default_factory=dict)


def time_calls(call: Callable[[int], object], rows_per_call: int, seconds: float, cycle: int) -> float:
    """Calls `call(i)` for i = 0, 1, ... (mod `cycle`) for about `seconds`; answers rows/s."""
    call(0)
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(16):
            call(calls % cycle)
            calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls * rows_per_call / (now - started)


def xgboost_peer(path: Path, rows32: np.ndarray) -> tuple[Peer, np.ndarray]:
    import xgboost

    booster = xgboost.Booster(model_file=str(path))
    booster.set_param({"nthread": 1})
    singles = [rows32[index : index + 1] for index in range(len(rows32))]

    def batch(seconds: float) -> float:
        with xgboost.config_context(nthread=1):
            return time_calls(lambda _: booster.inplace_predict(rows32), len(rows32), seconds, 1)

    def one_row(seconds: float) -> float:
        with xgboost.config_context(nthread=1):
            return time_calls(lambda index: booster.inplace_predict(singles[index]), 1, seconds, len(singles))

    return Peer("xgboost inplace_predict", batch, one_row), booster.inplace_predict(rows32)


def lightgbm_peer(path: Path, rows: np.ndarray) -> tuple[Peer, np.ndarray]:
    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    singles = [rows[index : index + 1] for index in range(len(rows))]

    def batch(seconds: float) -> float:
        return time_calls(lambda _: booster.predict(rows, num_threads=1), len(rows), seconds, 1)

    def one_row(seconds: float) -> float:
        return time_calls(lambda index: booster.predict(singles[index], num_threads=1), 1, seconds, len(singles))

    return Peer("lightgbm predict", batch, one_row), booster.predict(rows, num_threads=1)


def compile_tl2cgen(spec: ModelSpec, model_path: Path, library_path: Path) -> None:
    import tl2cgen
    import treelite

    started = time.perf_counter()
    if spec.library == "xgboost":
        model = treelite.frontend.load_xgboost_model(str(model_path))
    else:
        model = treelite.frontend.load_lightgbm_model(str(model_path))
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(library_path), params={"parallel_comp": 8})
    print(f"  compiled {library_path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def tl2cgen_peer(library_path: Path, rows: np.ndarray) -> tuple[Peer, np.ndarray]:
    import tl2cgen

    predictor = tl2cgen.Predictor(str(library_path), nthread=1)
    # The library's own input type (float32 for XGBoost models, float64 for LightGBM ones).
    dtype = "float32" if predictor.threshold_type == "float32" else "float64"
    matrix = tl2cgen.DMatrix(rows.astype(dtype), dtype=dtype, missing=np.nan)
    singles = [tl2cgen.DMatrix(rows[index : index + 1].astype(dtype), dtype=dtype, missing=np.nan) for index in range(len(rows))]

    def batch(seconds: float) -> float:
        return time_calls(lambda _: predictor.predict(matrix), len(rows), seconds, 1)

    def one_row(seconds: float) -> float:
        return time_calls(lambda index: predictor.predict(singles[index]), 1, seconds, len(singles))

    return Peer(f"tl2cgen ({dtype})", batch, one_row), np.asarray(predictor.predict(matrix)).reshape(-1)


def lleaves_peer(python: Path, model_path: Path, cache_path: Path, rows_path: Path) -> tuple[Peer, np.ndarray]:
    """lleaves compiles a LightGBM text model to native code with LLVM (llvmlite). It runs in a virtual environment
    of its own (its llvmlite conflicts with numba's), through scripts/bench_lleaves.py, which times itself exactly as
    `time_calls` does; the compiled object file is cached next to the model (the first compile takes minutes)."""
    helper = Path(__file__).with_name("bench_lleaves.py")

    def run(mode: str, seconds: float = 0.0) -> dict:
        command = [str(python), str(helper), "--model", str(model_path), "--cache", str(cache_path)]
        command += ["--rows", str(rows_path), "--mode", mode, "--seconds", str(seconds)]
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(completed.stdout.strip().splitlines()[-1])

    started = time.perf_counter()
    predictions = np.asarray(run("predict")["predictions"])
    print(f"  lleaves model ready ({cache_path.name}) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    peer = Peer(
        "lleaves",
        lambda seconds: float(run("batch", seconds)["rows_per_second"]),
        lambda seconds: float(run("one_row", seconds)["rows_per_second"]),
    )
    return peer, predictions


def riskserve_has_commands(riskserve: Path) -> bool:
    try:
        completed = subprocess.run([str(riskserve), "--help"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    text = completed.stdout + completed.stderr
    return "bench" in text and "score" in text


def riskserve_score(riskserve: Path, model_path: Path, rows_path: Path, out_path: Path) -> np.ndarray:
    subprocess.run(
        [str(riskserve), "score", "--model", str(model_path), "--input", str(rows_path), "--output", str(out_path)],
        check=True,
    )
    with out_path.open() as handle:
        reader = csv.DictReader(handle)
        return np.array([float(record["probability"]) for record in reader])


def riskserve_bench(riskserve: Path, model_path: Path, rows_path: Path, batch_size: int, seconds: float) -> dict:
    completed = subprocess.run(
        [
            str(riskserve), "bench", "--model", str(model_path), "--input", str(rows_path),
            "--batch-size", str(batch_size), "--threads", "1", "--seconds", str(seconds),
        ],
        capture_output=True, text=True, check=True,
    )
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def riskserve_peer(riskserve: Path, model_path: Path, rows_path: Path) -> Peer:
    def batch(seconds: float) -> float:
        return float(riskserve_bench(riskserve, model_path, rows_path, BATCH_ROWS, seconds)["rows_per_second"])

    def one_row(seconds: float) -> float:
        return float(riskserve_bench(riskserve, model_path, rows_path, 1, seconds)["rows_per_second"])

    return Peer("riskserve", batch, one_row)


def measure(peers: list[Peer], rounds: int, seconds: float) -> Results:
    """Every round runs every peer once per mode; the starting peer rotates so that no peer
    always runs first (or right after the heaviest one)."""
    results = Results()
    for round_index in range(rounds):
        order = peers[round_index % len(peers) :] + peers[: round_index % len(peers)]
        for peer in order:
            results.batch.setdefault(peer.name, []).append(peer.batch(seconds))
            results.one_row.setdefault(peer.name, []).append(peer.one_row(seconds))
        summary = ", ".join(f"{peer.name} {results.batch[peer.name][-1]:,.0f} rows/s" for peer in peers)
        print(f"    round {round_index + 1}/{rounds}: {summary}", file=sys.stderr)
    return results


def spread(values: list[float]) -> str:
    median = statistics.median(values)
    return f"±{50.0 * (max(values) - min(values)) / median:.0f} %" if median > 0 else "-"


def table_rows(title: str, results: Results, parity: dict[str, str]) -> list[str]:
    lines = []
    riskserve_batch = statistics.median(results.batch["riskserve"]) if "riskserve" in results.batch else None
    riskserve_one = statistics.median(results.one_row["riskserve"]) if "riskserve" in results.one_row else None
    for name, values in results.batch.items():
        batch = statistics.median(values)
        one = statistics.median(results.one_row[name])
        if name == "riskserve" or riskserve_batch is None:
            ratio, one_ratio = "-", "-"
        else:
            ratio = f"{riskserve_batch / batch:.2f}x"
            one_ratio = f"{riskserve_one / one:.2f}x"
        lines.append(
            f"| {title} | {name} | {batch:,.0f} | {spread(values)} | {ratio} | {1e6 / one:.2f} | {one_ratio} | {parity.get(name, '-')} |"
        )
    return lines


def versions() -> str:
    import lightgbm
    import tl2cgen
    import treelite
    import xgboost

    return (
        f"xgboost {xgboost.__version__}, lightgbm {lightgbm.__version__}, treelite {treelite.__version__}, "
        f"tl2cgen {tl2cgen.__version__}, lleaves as pinned in scripts/requirements-lleaves.txt, numpy {np.__version__}, Python {platform.python_version()}"
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{model}, {os.cpu_count()} logical CPUs, load average {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--riskserve", type=Path, default=Path("target/release/riskserve"))
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--models", default="a,b,c", help="comma-separated subset of a, b, c")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--retrain", action="store_true", help="train and compile again even if the files exist")
    parser.add_argument("--no-tl2cgen", action="store_true", help="skip compiling and timing tl2cgen")
    parser.add_argument("--no-lleaves", action="store_true", help="skip compiling and timing lleaves (LightGBM model)")
    parser.add_argument("--lleaves-python", type=Path, help="the python of a virtual environment with lleaves")
    arguments = parser.parse_args()

    out: Path = arguments.out
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    random = np.random.default_rng(20_260_101)
    train_rows = synthetic_rows(random, arguments.train_rows)
    train_labels = synthetic_labels(random, train_rows)
    test_rows = synthetic_rows(random, BATCH_ROWS)
    rows_path = out / "rows.csv"
    write_rows_csv(rows_path, test_rows)
    rows32 = test_rows.astype(np.float32)

    use_riskserve = riskserve_has_commands(arguments.riskserve)
    if not use_riskserve:
        print(f"note: {arguments.riskserve} has no `score` and `bench` commands; measuring the peers only", file=sys.stderr)

    started_at = time.strftime("%Y-%m-%d %H:%M %Z")
    machine_before = machine()
    table = [
        "| model | peer | rows/s, batches of 1,000 (median) | spread | riskserve ÷ peer (batch) | µs per one-row call (median) | riskserve ÷ peer (one row) | max abs diff vs library |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    parity_failures = []
    raw = {}
    wanted = {key.strip() for key in arguments.models.split(",")}
    for spec in (spec for spec in MODELS if spec.key in wanted):
        print(f"{spec.title}", file=sys.stderr)
        model_path = models_dir / spec.file_name
        if arguments.retrain or not model_path.exists():
            train(spec, model_path, train_rows, train_labels)

        peers: list[Peer] = []
        parity: dict[str, str] = {}
        if spec.library == "xgboost":
            peer, reference = xgboost_peer(model_path, rows32)
        else:
            peer, reference = lightgbm_peer(model_path, test_rows)
        reference = np.asarray(reference, dtype=np.float64).reshape(-1)
        peers.append(peer)

        if use_riskserve:
            try:
                answer = riskserve_score(arguments.riskserve, model_path, rows_path, out / f"riskserve_{spec.key}.csv")
                difference = float(np.max(np.abs(answer - reference)))
                parity["riskserve"] = f"{difference:.1e}" + ("" if difference <= PARITY_TOLERANCE else " FAIL")
                if difference > PARITY_TOLERANCE:
                    parity_failures.append(f"{spec.title}: riskserve differs from {spec.library} by {difference:.3g}")
                peers.insert(0, riskserve_peer(arguments.riskserve, model_path, rows_path))
            except subprocess.CalledProcessError as error:
                message = (error.stderr or "").strip() if isinstance(error.stderr, str) else ""
                print(f"  riskserve failed on {model_path.name}: {error} {message}", file=sys.stderr)
                parity_failures.append(f"{spec.title}: riskserve failed ({error})")

        if not arguments.no_tl2cgen:
            library_path = models_dir / (model_path.stem + ".so")
            try:
                if arguments.retrain or not library_path.exists():
                    compile_tl2cgen(spec, model_path, library_path)
                peer, compiled = tl2cgen_peer(library_path, test_rows)
                parity[peer.name] = f"{float(np.max(np.abs(compiled - reference))):.1e}"
                peers.append(peer)
            except Exception as error:  # A peer that cannot be built is reported, not fatal.
                print(f"  tl2cgen unavailable for {model_path.name}: {error}", file=sys.stderr)

        if spec.library == "lightgbm" and not arguments.no_lleaves:
            if arguments.lleaves_python is None:
                print(
                    "  lleaves skipped: no --lleaves-python (scripts/bench_peers.sh makes venv-lleaves from "
                    "scripts/requirements-lleaves.txt: lleaves and llvmlite wheels from PyPI)",
                    file=sys.stderr,
                )
            else:
                try:
                    rows_npy = out / "rows.npy"
                    np.save(rows_npy, test_rows)
                    cache = models_dir / (model_path.stem + ".lleaves.o")
                    if arguments.retrain:
                        cache.unlink(missing_ok=True)
                    peer, compiled = lleaves_peer(arguments.lleaves_python, model_path, cache, rows_npy)
                    parity[peer.name] = f"{float(np.max(np.abs(compiled - reference))):.1e}"
                    peers.append(peer)
                except (OSError, subprocess.CalledProcessError, ValueError) as error:
                    detail = getattr(error, "stderr", "") or ""
                    print(f"  lleaves unavailable for {model_path.name}: {error} {detail.strip()[-500:]}", file=sys.stderr)

        results = measure(peers, arguments.rounds, arguments.seconds)
        raw[spec.key] = {"batch": results.batch, "one_row": results.one_row}
        table.extend(table_rows(spec.title, results, parity))

    notes = [
        "",
        f"Run {started_at}: {arguments.rounds} rounds of {arguments.seconds:g} s per peer and mode, peers alternating; "
        f"one thread each; {BATCH_ROWS} test rows of {NUM_FEATURES} features (5 with missing values), models trained on "
        f"{arguments.train_rows:,} synthetic rows. Spread is half the range across rounds relative to the median.",
        f"Machine: {machine_before} at the start; {machine().split(', ', 2)[-1]} at the end.",
        f"Versions: {versions()}.",
        "XGBoost and tl2cgen (XGBoost models) get float32 arrays, LightGBM and riskserve float64. Python peers' one-row "
        "times include the Python call; riskserve's are in-process (`riskserve bench --batch-size 1`).",
    ]
    report = "\n".join(table + notes) + "\n"
    print(report)
    (out / "peers.md").write_text(report)
    (out / "peers.json").write_text(json.dumps(raw, indent=1))
    if parity_failures:
        print("parity failures:\n  " + "\n  ".join(parity_failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
