"""The autoscaler's reaction time: from a load step on an idle endpoint to its first scale-out and to the capacity
the step needs, for given controller settings. Prints a Markdown table and writes the raw figures as JSON.

Usage: python3 scripts/bench_metrics.py --riskserve target/release/riskserve [--rate 100] [--target 600] [--max 4]
       [--interval 1] [--window 10] [--rounds 3] [--json out.json]
"""
import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import tempfile
import threading
import time

TOKEN = "bench-metrics-admin-token-0123456789"
HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "fixtures", "xgb3", "xgb3_binary_logistic.json")
ROWS = os.path.join(HERE, "..", "fixtures", "xgb3", "xgb3_binary_logistic.input.csv")


class Server:
    def __init__(self, binary, data_dir, interval, window):
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
             "--autoscaling-interval", str(interval), "--autoscaling-window", str(window)],
            env={**os.environ, "RISKSERVE_ADMIN_TOKEN": TOKEN}, stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            if "riskserve listening on http://" in line:
                self.host, port = line.split("http://")[1].strip().split(":")
                self.port = int(port)
                break
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()

    def request(self, method, path, body=None, content_type="application/json"):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if body is not None:
            headers["Content-Type"] = content_type
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        connection.close()
        return answer.status, data

    def json(self, method, path, value=None):
        status, data = self.request(method, path, None if value is None else json.dumps(value).encode())
        if status >= 300:
            raise SystemExit(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data.strip() else None

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def instances(server, name):
    return server.json("GET", f"/api/v1/endpoints/{name}")["variants"][0]["instances"]


def load(server, name, rate, stop, failures):
    """Sends `rate` one-row requests a second over 4 connections until `stop` is set."""
    with open(ROWS) as rows:
        row = rows.read().splitlines()[1] + "\n"

    def client(share):
        connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
        pause = 1.0 / share
        next_at = time.monotonic()
        while not stop.is_set():
            connection.request("POST", f"/endpoints/{name}/invocations", body=row,
                               headers={"Content-Type": "text/csv", "Authorization": f"Bearer {TOKEN}"})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                failures.append(answer.status)
            next_at += pause
            time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=client, args=(rate / 4,), daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    return threads


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--riskserve", required=True)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second of the load step")
    parser.add_argument("--target", type=float, default=600.0, help="invocations per instance per minute")
    parser.add_argument("--max", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    needed = min(args.max, math.ceil(args.rate * 60 / args.target))
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(args.riskserve, data_dir, args.interval, args.window)
        with open(MODEL, "rb") as model:
            status, data = server.request("PUT", "/api/v1/artifacts", model.read(), "application/octet-stream")
        digest = json.loads(data)["digest"]
        server.json("POST", "/api/v1/models", {"name": "step", "artifacts": [{"name": "m.json", "digest": digest}]})
        server.json("POST", "/api/v1/endpoint-configs",
                    {"name": "step", "variants": [{"name": "main", "model": "step", "instances": 1}]})
        server.json("POST", "/api/v1/endpoints", {"name": "step", "config": "step"})
        while server.json("GET", "/api/v1/endpoints/step")["status"] != "InService":
            time.sleep(0.05)
        server.json("PUT", "/api/v1/endpoints/step/variants/main/scaling-policy",
                    {"min_instances": 1, "max_instances": args.max, "target": args.target,
                     "scale_out_cooldown": 0, "scale_in_cooldown": 0})
        rounds = []
        for round_number in range(args.rounds):
            # Idle for a whole window first, so every round starts from the same measured rate.
            time.sleep(args.window + 2 * args.interval)
            while instances(server, "step") != 1:
                time.sleep(0.1)
            stop, failures = threading.Event(), []
            start = time.monotonic()
            threads = load(server, "step", args.rate, stop, failures)
            first = full = None
            while full is None and time.monotonic() - start < 30 * args.window + 60:
                count = instances(server, "step")
                now = time.monotonic() - start
                if first is None and count > 1:
                    first = now
                if count >= needed:
                    full = now
                time.sleep(0.05)
            stop.set()
            for thread in threads:
                thread.join()
            rounds.append({"first_scale_out_s": first, "full_capacity_s": full, "failed_requests": len(failures)})
            print(f"round {round_number + 1}: first scale-out {first} s, {needed} instances at {full} s, "
                  f"{len(failures)} failed requests", flush=True)
        server.stop()
    done = [r for r in rounds if r["full_capacity_s"] is not None]
    summary = {
        "settings": {"interval_s": args.interval, "window_s": args.window, "rate_per_s": args.rate,
                     "target_per_instance_per_min": args.target, "needed_instances": needed},
        "rounds": rounds,
        "median_first_scale_out_s": statistics.median([r["first_scale_out_s"] for r in done]) if done else None,
        "median_full_capacity_s": statistics.median([r["full_capacity_s"] for r in done]) if done else None,
    }
    print(f"| {args.interval:g} s | {args.window:g} s | {args.rate:g}/s → {needed} instances | "
          f"{summary['median_first_scale_out_s']:.2f} s | {summary['median_full_capacity_s']:.2f} s | "
          f"{sum(r['failed_requests'] for r in rounds)} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main()
