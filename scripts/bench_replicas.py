"""Replica benchmark (run by scripts/bench_replicas.sh inside scripts/with_postgres.sh, with moto's S3 server up):
one-row invocations with wrk against one replica directly and through haproxy with 1, 2 and 3 replicas, alternating
rounds, medians; and the latency of a control-plane write (create an endpoint config) on PostgreSQL against SQLite."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "replicas"))
import test_replicas as harness  # noqa: E402  (the replica and haproxy helpers of the tests)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WRITES = int(os.environ.get("BENCH_WRITES", "200"))


def wrk(base, script):
    output = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{SECONDS}s", "--latency", "-s", script, f"{base}/endpoints/credit/invocations"],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(next(line for line in output.splitlines() if line.startswith("Requests/sec")).split()[1])
    p50 = next(line for line in output.splitlines() if line.strip().startswith("50%")).split()[1]
    return rps, p50


def milliseconds(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def write_latency(base):
    timings = []
    for index in range(WRITES):
        body = {"name": f"bench-{os.getpid()}-{index}", "variants": [{"name": "main", "model": "credit-v1-model"}]}
        started = time.perf_counter()
        status, answer = harness.call(base, "POST", "/api/v1/endpoint-configs", body)
        timings.append((time.perf_counter() - started) * 1000)
        assert status == 201, answer
    return statistics.median(timings)


def main():
    bucket = f"riskserve-bench-{os.getpid()}"
    import boto3

    boto3.client("s3", endpoint_url=harness.S3_ENDPOINT).create_bucket(Bucket=bucket)
    replicas = [harness.Replica(index, bucket).start() for index in (1, 2, 3)]
    balancers = {}
    script = os.path.join(tempfile.mkdtemp(), "row.lua")
    row = harness.one_row().decode().strip()
    with open(script, "w") as file:
        file.write(
            'wrk.method = "POST"\n'
            f'wrk.headers["Authorization"] = "Bearer {harness.TOKEN}"\n'
            'wrk.headers["Content-Type"] = "text/csv"\n'
            f"wrk.body = {json.dumps(row + chr(10))}\n"
        )
    try:
        harness.deploy(replicas[0].base, "credit", "credit-v1")
        harness.wait_in_service(replicas[0].base, "credit")
        time.sleep(harness.PROPAGATION_SECONDS)
        for count in (1, 2, 3):
            balancers[count] = harness.Balancer(replicas[:count])
        results = {name: [] for name in ("direct", "1", "2", "3")}
        for _ in range(ROUNDS):
            results["direct"].append(wrk(replicas[0].base, script))
            for count in (1, 2, 3):
                results[str(count)].append(wrk(balancers[count].base, script))
        postgres_write = write_latency(replicas[0].base)
    finally:
        for balancer in balancers.values():
            balancer.stop()
        for replica in replicas:
            replica.stop()
    embedded = harness.Replica(9, bucket)
    embedded_start(embedded)
    try:
        harness.deploy(embedded.base, None, "credit-v1")
        sqlite_write = write_latency(embedded.base)
    finally:
        embedded.stop()
    print(f"| target | requests/s (median of {ROUNDS} rounds of {SECONDS} s) | p50 (ms) |")
    print("| --- | ---: | ---: |")
    for name, label in (("direct", "one replica, no balancer"), ("1", "haproxy → 1 replica"),
                        ("2", "haproxy → 2 replicas"), ("3", "haproxy → 3 replicas")):
        rps = statistics.median(value for value, _ in results[name])
        p50 = statistics.median(milliseconds(latency) for _, latency in results[name])
        print(f"| {label} | {rps:,.0f} | {p50:.3f} |")
    print()
    print(f"control-plane write (create an endpoint config, median of {WRITES}): "
          f"PostgreSQL {postgres_write:.2f} ms, SQLite {sqlite_write:.2f} ms")


def embedded_start(replica):
    """A replica on the embedded store (SQLite and a folder in its data directory)."""
    environment = dict(os.environ, RISKSERVE_LISTEN=f"127.0.0.1:{replica.port}", RISKSERVE_DATA_DIR=replica.data_dir,
                       RISKSERVE_ADMIN_TOKEN=harness.TOKEN, RISKSERVE_MASTER_KEY=harness.MASTER_KEY)
    environment.pop("RISKSERVE_STORE", None)
    environment.pop("RISKSERVE_ARTIFACTS", None)
    replica.log = open(replica.log_path, "ab")
    replica.process = subprocess.Popen([harness.BINARY, "serve"], env=environment, stdout=replica.log,
                                       stderr=replica.log)
    deadline = time.time() + 30
    while time.time() < deadline and harness.call(replica.base, "GET", "/ping")[0] != 200:
        time.sleep(0.1)


if __name__ == "__main__":
    main()
