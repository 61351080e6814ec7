"""Access-control overhead on one-row invocations: a server with authentication, authorization (Cedar) and the
audit trail against the same server with them off (the benchmark-only setting), alternating rounds on one
keep-alive connection each; per-request latency measured at the client, medians compared."""

import argparse
import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TOKEN = "rsk_bench-admin-token-0123456789abcdef"
ACCESS_KEY_ID = "AKIABENCHMARK0000001"
SECRET = "benchmarkbenchmarkbenchmarkbenchmark0000"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, binary: Path, out: Path, name: str, open_access: bool):
        self.data = out / f"auth-{name}-data"
        shutil.rmtree(self.data, ignore_errors=True)
        self.port = free_port()
        arguments = [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data)]
        if open_access:
            config = out / "auth-off.toml"
            config.write_text("[auth]\ninsecure_disable_for_benchmark = true\n")
            arguments += ["--config", str(config)]
        environment = dict(os.environ, RISKSERVE_ADMIN_TOKEN=TOKEN, RISKSERVE_ADMIN_ACCESS_KEY_ID=ACCESS_KEY_ID,
                           RISKSERVE_ADMIN_SECRET_ACCESS_KEY=SECRET)
        self.log = open(out / f"auth-{name}.log", "w")
        self.process = subprocess.Popen(arguments, env=environment, stdout=self.log, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def copy() -> None:
            for line in self.process.stderr:
                self.log.write(line)
                self.log.flush()
                if "riskserve listening on" in line:
                    ready.set()

        threading.Thread(target=copy, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise SystemExit(f"the {name} server did not start; see {self.log.name}")
        self.binary = binary

    def cli(self, *arguments: str) -> None:
        environment = dict(os.environ, RISKSERVE_URL=f"http://127.0.0.1:{self.port}", RISKSERVE_TOKEN=TOKEN)
        result = subprocess.run([str(self.binary), *arguments], env=environment, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"riskserve {' '.join(arguments)}: {result.stderr}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def model_and_row() -> tuple[Path, bytes]:
    manifest = json.loads((REPO / "fixtures/manifest.json").read_text())
    case = next(case for case in manifest["cases"] if case["name"] == "xgb3_binary_logistic_json")
    lines = (REPO / "fixtures" / case["input"]).read_text().splitlines()
    return REPO / "fixtures" / case["model"], (lines[1] + "\n").encode()


def presigned(port: int, path: str, body: bytes, count: int) -> list[dict]:
    """Requests signed by botocore now (valid for 15 minutes), replayed by the timing loop."""
    headers = []
    for _ in range(count):
        request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}{path}", data=body,
                             headers={"Content-Type": "text/csv"})
        botocore.auth.SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET), "sagemaker", "us-east-1").add_auth(request)
        headers.append(dict(request.prepare().headers.items()))
    return headers


def timed(port: int, path: str, body: bytes, headers: list[dict]) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    for request_headers in headers:
        start = time.perf_counter_ns()
        connection.request("POST", path, body=body, headers=request_headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter_ns() - start) / 1000)
        if response.status != 200:
            raise SystemExit(f"invocation answered {response.status}")
    connection.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--riskserve", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--requests", type=int, default=1000, help="requests per mode and round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model, row = model_and_row()
    path = "/endpoints/bench/invocations"
    servers = {"off": Server(args.riskserve, args.out, "off", True), "on": Server(args.riskserve, args.out, "on", False)}
    try:
        for server in servers.values():
            server.cli("model", "create", "--name", "bench", "--artifact", str(model))
            server.cli("endpoint-config", "create", "--name", "bench", "--variant", "name=main,model=bench")
            server.cli("endpoint", "create", "--name", "bench", "--config", "bench", "--wait")
        bearer = [{"Content-Type": "text/csv", "Authorization": f"Bearer {TOKEN}"}] * args.requests
        open_headers = [{"Content-Type": "text/csv"}] * args.requests
        modes = ["off", "bearer", "padded", "sigv4"]
        samples: dict[str, list[float]] = {mode: [] for mode in modes}
        round_medians: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            signed = presigned(servers["on"].port, path, row, args.requests)
            # A bearer request as large as a signed one: what the bigger headers alone cost (client and transport).
            padded = [dict(bearer[0], **{"X-Amz-Date": headers["X-Amz-Date"], "X-Padding": headers["Authorization"]})
                      for headers in signed]
            for mode, port, headers in [("off", servers["off"].port, open_headers),
                                        ("bearer", servers["on"].port, bearer),
                                        ("padded", servers["on"].port, padded),
                                        ("sigv4", servers["on"].port, signed)]:
                timed(port, path, row, headers[: args.requests // 10])  # warm-up
                latencies = timed(port, path, row, headers)
                samples[mode].extend(latencies)
                round_medians[mode].append(statistics.median(latencies))
    finally:
        for server in servers.values():
            server.stop()
    base = statistics.median(round_medians["off"])
    quietest = min(round_medians["off"])
    results = {
        mode: {
            "median_us": statistics.median(round_medians[mode]),
            "overhead_us": statistics.median(round_medians[mode]) - base,
            # Rounds alternate, so a round's difference to the open server's round is paired in time.
            "paired_overhead_us": statistics.median(
                [value - off for value, off in zip(round_medians[mode], round_medians["off"])]
            ),
            # The machine is shared: the quietest round is the best estimate of the cost itself.
            "quietest_round_us": min(round_medians[mode]),
            "quietest_overhead_us": min(round_medians[mode]) - quietest,
            "p99_us": statistics.quantiles(samples[mode], n=100)[98],
            "round_medians_us": round_medians[mode],
        }
        for mode in samples
    }
    document = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "botocore": botocore.__version__,
        "results": results,
    }
    (args.out / "auth.json").write_text(json.dumps(document, indent=1) + "\n")
    lines = [
        f"One-row CSV invocations (XGBoost fixture model), {args.rounds} alternating rounds of {args.requests} "
        "requests per mode on one keep-alive connection each; latency measured at the Python client.",
        "",
        "| mode | median µs | overhead vs off, µs | paired overhead µs | quietest round µs | its overhead µs | p99 µs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode, label in [("off", "access control off (benchmark setting)"), ("bearer", "bearer token + Cedar + audit"),
                        ("padded", "bearer token, headers padded to a signed request's size"),
                        ("sigv4", "SigV4 (botocore) + Cedar + audit")]:
        figures = results[mode]
        lines.append(
            f"| {label} | {figures['median_us']:.1f} | {figures['overhead_us']:+.1f} | "
            f"{figures['paired_overhead_us']:+.1f} | {figures['quietest_round_us']:.1f} | "
            f"{figures['quietest_overhead_us']:+.1f} | {figures['p99_us']:.1f} |"
        )
    table = "\n".join(lines) + "\n"
    (args.out / "auth.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
