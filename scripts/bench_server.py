"""Server benchmark: `riskserve serve` against MLServer (mlserver-xgboost) on the same XGBoost model.

Trains (or reuses) a 500-tree XGBoost model, deploys it on riskserve through the `riskserve` CLI and on MLServer,
checks that both answer the same probability for the benchmark row, then runs wrk with one-row POST bodies:
riskserve `text/csv`, riskserve `application/json`, MLServer V2 JSON, with the same threads, connections and
duration, alternating the targets round after round and reporting medians. Also measures the time from the API
call that creates an endpoint to its first successful invocation, for a 1,000-tree model. Writes the table to
`<out>/server.md` and the raw figures to `<out>/server.json`. Run through scripts/bench_server.sh, which installs
wrk and the pinned virtual environment and builds riskserve in release.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

NUM_FEATURES = 30
FEATURE_NAMES = [f"f{index}" for index in range(NUM_FEATURES)]
MODEL_NAME = "credit"
PARITY_TOLERANCE = 1e-6

MODELS = {
    # (trees, max depth, seed): the served model, and the larger one whose deployment time is measured.
    "serve": ("xgboost_500x8.json", 500, 8, 2),
    "deploy": ("xgboost_1000x6.json", 1000, 6, 5),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic_data(random: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Credit-like columns (scores, amounts, counts, ratios) and a label that depends on a few of them."""
    rows = np.empty((count, NUM_FEATURES), dtype=np.float64)
    for feature in range(NUM_FEATURES):
        kind = feature % 4
        if kind == 0:
            rows[:, feature] = random.normal(600, 80, count)
        elif kind == 1:
            rows[:, feature] = np.round(random.lognormal(8, 1, count), 2)
        elif kind == 2:
            rows[:, feature] = random.integers(0, 12, count)
        else:
            rows[:, feature] = random.uniform(0, 1, count)
    margin = (
        (rows[:, 0] - 600) / 80 - np.log(rows[:, 1]) / 4 + rows[:, 2] / 6 - 2 * rows[:, 3] + random.normal(0, 1, count)
    )
    labels = (margin > np.median(margin)).astype(np.float64)
    return rows, labels


def train_models(out: Path, retrain: bool) -> dict[str, Path]:
    import xgboost

    paths = {}
    rows, labels = synthetic_data(np.random.default_rng(7), 20_000)
    for key, (file_name, trees, depth, seed) in MODELS.items():
        path = out / file_name
        paths[key] = path
        if path.exists() and not retrain:
            continue
        log(f"training {file_name}: {trees} trees, max depth {depth}")
        params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.05, "tree_method": "hist", "seed": seed}
        matrix = xgboost.DMatrix(rows, label=labels, feature_names=FEATURE_NAMES)
        booster = xgboost.train(params, matrix, num_boost_round=trees)
        booster.save_model(str(path))
    return paths


def reference_probability(model: Path, row: list[float]) -> float:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(model))
    matrix = xgboost.DMatrix(np.array([row]), feature_names=FEATURE_NAMES)
    return float(booster.predict(matrix)[0])


# The administrator's token of the benchmarked server (RISKSERVE_ADMIN_TOKEN); every request carries it, so the
# figures include authentication, authorization and the audit trail. MLServer ignores the header.
TOKEN = "rsk_bench-admin-token-0123456789abcdef"
AUTHORIZATION = f"Bearer {TOKEN}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(
    port: int, method: str, path: str, body: bytes | None = None, content_type: str | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": content_type} if content_type else {}
    headers["Authorization"] = AUTHORIZATION
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    return response.status, answer


class Riskserve:
    """`riskserve serve` in a fresh data folder, deployed through the CLI."""

    def __init__(self, binary: Path, out: Path):
        self.binary = binary
        self.data = out / "riskserve-data"
        shutil.rmtree(self.data, ignore_errors=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = out / "riskserve.log"
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data)],
            env=dict(os.environ, RISKSERVE_ADMIN_TOKEN=TOKEN),
            stdout=self.log_file,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()

        def copy_log() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log_file.write(line)
                self.log_file.flush()
                if "riskserve listening on" in line:
                    ready.set()

        threading.Thread(target=copy_log, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise SystemExit(f"riskserve did not start; see {self.log_path}")

    def cli(self, *arguments: str) -> str:
        environment = dict(os.environ, RISKSERVE_URL=self.url, RISKSERVE_TOKEN=TOKEN)
        result = subprocess.run(
            [str(self.binary), *arguments], env=environment, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise SystemExit(f"riskserve {' '.join(arguments)} failed: {result.stderr.strip()}")
        return result.stdout

    def deploy(self, name: str, model: Path) -> None:
        self.cli("model", "create", "--name", name, "--artifact", str(model))
        self.cli("endpoint-config", "create", "--name", name, "--variant", f"name=main,model={name}")
        self.cli("endpoint", "create", "--name", name, "--config", name, "--wait")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class MLServer:
    """MLServer with mlserver-xgboost serving the same model file."""

    def __init__(self, venv_bin: Path, model: Path, out: Path, omp_threads: int):
        self.root = out / "mlserver"
        shutil.rmtree(self.root, ignore_errors=True)
        model_dir = self.root / MODEL_NAME
        model_dir.mkdir(parents=True)
        shutil.copy(model, model_dir / "model.json")
        self.port = free_port()
        settings = {
            "http_port": self.port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            # MLServer 1.7.1 cannot load models in its default worker pool on this Python (DEPENDENCIES.md).
            "parallel_workers": 0,
            "debug": False,
        }
        (self.root / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": MODEL_NAME,
            "implementation": "mlserver_xgboost.XGBoostModel",
            "parameters": {"uri": "./model.json", "version": "v1"},
        }
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
        self.log_path = out / "mlserver.log"
        environment = dict(os.environ)
        if omp_threads:
            # One-row predictions gain nothing from OpenMP threads, and on a busy machine their spin-waiting
            # costs MLServer several times its throughput; one thread is its best setting for this load.
            environment["OMP_NUM_THREADS"] = str(omp_threads)
        self.process = subprocess.Popen(
            [str(venv_bin / "mlserver"), "start", str(self.root)],
            stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"MLServer exited; see {self.log_path}")
            try:
                status, _ = request(self.port, "GET", f"/v2/models/{MODEL_NAME}/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise SystemExit(f"MLServer did not become ready; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def v2_body(row: list[float]) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input-0", "shape": [1, NUM_FEATURES], "datatype": "FP64", "data": row}]}
    ).encode()


WRK_SCRIPT = """-- One fixed POST body; done() prints the figures this benchmark reads.
wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
wrk.headers["Authorization"] = "{authorization}"
local body_file = io.open("{body_path}", "rb")
wrk.body = body_file:read("*a")
body_file:close()

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors.status,
        errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def write_target(out: Path, key: str, content_type: str, body: bytes) -> Path:
    body_path = out / f"body_{key}"
    body_path.write_bytes(body)
    script = out / f"wrk_{key}.lua"
    script.write_text(WRK_SCRIPT.format(content_type=content_type, body_path=body_path, authorization=AUTHORIZATION))
    return script


def run_wrk(script: Path, url: str, threads: int, connections: int, seconds: int) -> dict:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    match = re.search(r"RESULT (.*)", result.stdout)
    if result.returncode != 0 or not match:
        raise SystemExit(f"wrk failed: {result.stdout}\n{result.stderr}")
    figures = {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    return {
        "requests_per_second": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "non2xx": figures["non2xx"],
        "socket_errors": figures["socket_errors"],
    }


def time_to_first_answer(server: Riskserve, model_file: Path, body: bytes, index: int, cold: bool) -> float:
    """Seconds to the first 200 invocation of a new endpoint, from the POST that creates it (`cold` False: the model
    was registered, and so loaded, before the clock starts) or from the POST that registers the model (`cold`)."""
    name = f"deploy-{'cold' if cold else 'warm'}-{index}"
    # Trailing spaces make every copy a new artifact, so no earlier load of the same bytes can be reused.
    artifact = model_file.read_bytes() + b" " * (index + 1 + (1000 if cold else 0))
    status, answer = request(server.port, "PUT", "/api/v1/artifacts", artifact, "application/octet-stream")
    if status != 201:
        raise SystemExit(f"cannot upload {model_file}: {status} {answer!r}")
    digest = json.loads(answer)["digest"]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def post(path: str, document: dict) -> None:
        headers = {"Content-Type": "application/json", "Authorization": AUTHORIZATION}
        connection.request("POST", path, body=json.dumps(document).encode(), headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 201:
            raise SystemExit(f"POST {path} for {name}: {response.status} {answer!r}")

    model = {"name": name, "artifacts": [{"name": "model.json", "digest": digest}]}
    config = {"name": name, "variants": [{"name": "main", "model": name}]}
    if cold:
        start = time.perf_counter()
    post("/api/v1/models", model)
    post("/api/v1/endpoint-configs", config)
    if not cold:
        start = time.perf_counter()
    post("/api/v1/endpoints", {"name": name, "config": name})
    while True:
        headers = {"Content-Type": "text/csv", "Authorization": AUTHORIZATION}
        connection.request("POST", f"/endpoints/{name}/invocations", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            elapsed = time.perf_counter() - start
            break
        if time.perf_counter() - start > 60:
            raise SystemExit(f"endpoint {name} did not answer within 60 s (last status {response.status})")
    connection.close()
    server.cli("endpoint", "delete", name, "--wait")
    server.cli("endpoint-config", "delete", name)
    server.cli("model", "delete", name)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--riskserve", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration of one measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each target, alternated")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--deploys", type=int, default=5, help="endpoint creations timed for the 1,000-tree model")
    parser.add_argument("--retrain", action="store_true", help="train the models again")
    parser.add_argument("--mlserver-omp-threads", type=int, default=1,
                        help="OMP_NUM_THREADS for MLServer's XGBoost (0: leave unset)")
    args = parser.parse_args()

    work = args.out / "server"
    work.mkdir(parents=True, exist_ok=True)
    models = train_models(work, args.retrain)
    row = [float(value) for value in synthetic_data(np.random.default_rng(11), 1)[0][0]]
    expected = reference_probability(models["serve"], row)
    csv_body = (",".join(repr(value) for value in row) + "\n").encode()
    json_body = json.dumps({"instances": [row]}).encode()
    mlserver_body = v2_body(row)

    venv_bin = Path(sys.executable).parent
    riskserve = Riskserve(args.riskserve.resolve(), work)
    mlserver = None
    try:
        riskserve.deploy(MODEL_NAME, models["serve"])
        mlserver = MLServer(venv_bin, models["serve"], work, args.mlserver_omp_threads)

        # Both servers must answer the reference probability before anything is timed.
        invocation = f"/endpoints/{MODEL_NAME}/invocations"
        status, answer = request(riskserve.port, "POST", invocation, csv_body, "text/csv")
        riskserve_csv = float(answer.decode().strip().split(",")[0]) if status == 200 else None
        status_json, answer_json = request(riskserve.port, "POST", invocation, json_body, "application/json")
        riskserve_json = json.loads(answer_json)["predictions"][0]["values"][0] if status_json == 200 else None
        status_v2, answer_v2 = request(mlserver.port, "POST", f"/v2/models/{MODEL_NAME}/infer", mlserver_body,
                                       "application/json")
        mlserver_value = json.loads(answer_v2)["outputs"][0]["data"][0] if status_v2 == 200 else None
        for label, value in [("riskserve CSV", riskserve_csv), ("riskserve JSON", riskserve_json),
                             ("MLServer", mlserver_value)]:
            if value is None or abs(value - expected) > PARITY_TOLERANCE:
                raise SystemExit(f"{label} answered {value}, xgboost says {expected}")
        log(f"parity: xgboost {expected}, riskserve CSV {riskserve_csv}, JSON {riskserve_json}, MLServer {mlserver_value}")

        targets = {
            "riskserve CSV": (write_target(work, "csv", "text/csv", csv_body), riskserve.url + invocation),
            "riskserve JSON": (write_target(work, "json", "application/json", json_body), riskserve.url + invocation),
            "MLServer V2 JSON": (
                write_target(work, "v2", "application/json", mlserver_body),
                f"http://127.0.0.1:{mlserver.port}/v2/models/{MODEL_NAME}/infer",
            ),
        }
        results: dict[str, list[dict]] = {name: [] for name in targets}
        names = list(targets)
        for round_index in range(args.rounds):
            # Rotating the order spreads any drift of the machine over every target.
            order = names[round_index % len(names):] + names[: round_index % len(names)]
            for name in order:
                script, url = targets[name]
                figures = run_wrk(script, url, args.threads, args.connections, args.seconds)
                if figures["non2xx"] or figures["socket_errors"]:
                    raise SystemExit(f"{name}: {figures['non2xx']} non-2xx answers, {figures['socket_errors']} errors")
                log(f"round {round_index + 1} {name}: {figures['requests_per_second']:.0f} req/s, "
                    f"p50 {figures['p50_ms']:.3f} ms, p99 {figures['p99_ms']:.3f} ms")
                results[name].append(figures)

        deploy_csv = (",".join("1" for _ in FEATURE_NAMES) + "\n").encode()
        deploy_seconds = {
            cold: [time_to_first_answer(riskserve, models["deploy"], deploy_csv, index, cold) for index in range(args.deploys)]
            for cold in (False, True)
        }
        for cold, seconds in deploy_seconds.items():
            label = "model create + endpoint create" if cold else "endpoint create"
            log(f"{label} → first answer (1,000 trees): " + ", ".join(f"{s * 1000:.1f} ms" for s in seconds))
    finally:
        if mlserver is not None:
            mlserver.stop()
        riskserve.stop()

    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in ("requests_per_second", "p50_ms", "p99_ms")}
        for name, runs in results.items()
    }
    baseline = medians["MLServer V2 JSON"]
    lines = [
        f"One-row invocations of a 500-tree XGBoost model (max depth 8, 30 features) on loopback: wrk "
        f"-t{args.threads} -c{args.connections}, {args.seconds:g} s a run, {args.rounds} runs of each target "
        f"alternated, medians. {platform.processor() or platform.machine()}, {os.cpu_count()} cores.",
        "",
        "| target | requests/s | p50 (ms) | p99 (ms) | requests/s ÷ MLServer | p99 ÷ MLServer |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in medians.items():
        lines.append(
            f"| {name} | {figures['requests_per_second']:,.0f} | {figures['p50_ms']:.3f} | {figures['p99_ms']:.3f} "
            f"| {figures['requests_per_second'] / baseline['requests_per_second']:.1f}× "
            f"| {figures['p99_ms'] / baseline['p99_ms']:.2f}× |"
        )
    deploy_ms = {cold: sorted(seconds * 1000 for seconds in runs) for cold, runs in deploy_seconds.items()}
    warm, cold = deploy_ms[False], deploy_ms[True]
    mlserver_threads = f"OMP_NUM_THREADS={args.mlserver_omp_threads}" if args.mlserver_omp_threads else "default threads"
    lines += [
        "",
        f"MLServer 1.7.1 + mlserver-xgboost (xgboost 3.2.0), parallel_workers 0, {mlserver_threads}.",
        "",
        "Time to the first successful invocation of a new endpoint, 1,000-tree XGBoost model (max depth 6, "
        f"{args.deploys} endpoints each; target ≤ 100 ms):",
        "",
        f"- from `POST /api/v1/endpoints`, the model registered (and so loaded and checked) before: median "
        f"{statistics.median(warm):.1f} ms (min {warm[0]:.1f}, max {warm[-1]:.1f})",
        f"- from `POST /api/v1/models` (artifact uploaded, never loaded), then endpoint config and endpoint: median "
        f"{statistics.median(cold):.1f} ms (min {cold[0]:.1f}, max {cold[-1]:.1f})",
    ]
    table = "\n".join(lines) + "\n"
    (args.out / "server.md").write_text(table)
    (args.out / "server.json").write_text(
        json.dumps({"runs": results, "medians": medians, "deploy_ms": {"warm": warm, "cold": cold}}, indent=2) + "\n"
    )
    print(table)


if __name__ == "__main__":
    main()
