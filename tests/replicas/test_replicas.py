"""Three riskserve replicas sharing a real PostgreSQL and an S3-compatible store (moto's server), behind a real
haproxy: changes reach every replica, updates under load fail no request, a killed replica or leader is survived,
and the audit trail stays one verifiable chain. Run by scripts/replica_tests.sh, which starts PostgreSQL and moto and
sets the variables read below."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import boto3
import pytest

BINARY = os.environ["RISKSERVE_BINARY"]
POSTGRES = os.environ["RISKSERVE_TEST_POSTGRES_URL"]
S3_ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
HAPROXY = os.environ.get("HAPROXY", "haproxy")
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
TOKEN = "rsk_replica-tests-admin-token-0123456789"
MASTER_KEY = "ab" * 32
# The bound a change takes to reach every replica: the change feed at once, or the reconciliation (5 s) when a
# notification is missed; plus loading the model.
PROPAGATION_SECONDS = 7.0
# Another replica's minutes reach a query within two history exchanges (5 s each) plus a sample (1 s); metered usage
# within a meter flush (10 s).
SUMMED_SECONDS = 15.0
# Leadership moves within the leadership check interval (2 s) once PostgreSQL drops the dead leader's connection.
TAKEOVER_SECONDS = 6.0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base, method, path, body=None, content_type="application/json", timeout=10):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as error:
        return 0, str(error).encode()


class Replica:
    def __init__(self, index, bucket):
        self.index = index
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix=f"riskserve-replica{index}-")
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.bucket = bucket
        self.process = None

    def start(self):
        environment = dict(
            os.environ,
            RISKSERVE_LISTEN=f"127.0.0.1:{self.port}",
            RISKSERVE_DATA_DIR=self.data_dir,
            RISKSERVE_STORE=POSTGRES,
            RISKSERVE_ARTIFACTS=f"s3://{self.bucket}/riskserve",
            RISKSERVE_ADMIN_TOKEN=TOKEN,
            RISKSERVE_MASTER_KEY=MASTER_KEY,
            RISKSERVE_AUTOSCALING_INTERVAL="1",
            RISKSERVE_AUTOSCALING_WINDOW="6",
        )
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([BINARY, "serve"], env=environment, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"replica {self.index} stopped: {self.tail()}")
            if call(self.base, "GET", "/ping")[0] == 200:
                return self
            time.sleep(0.1)
        raise AssertionError(f"replica {self.index} never became ready: {self.tail()}")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def leads(self):
        status, body = call(self.base, "GET", "/metrics")
        return status == 200 and b"riskserve_replica_leader 1" in body

    def tail(self):
        with open(self.log_path, "rb") as log:
            return log.read()[-3000:].decode(errors="replace")


class Balancer:
    def __init__(self, replicas):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.folder = tempfile.mkdtemp(prefix="riskserve-haproxy-")
        servers = "\n".join(
            f"    server r{replica.index} 127.0.0.1:{replica.port} check inter 300ms fall 1 rise 2"
            for replica in replicas
        )
        config = f"""global
    maxconn 256
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout 503
frontend riskserve
    bind 127.0.0.1:{self.port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /ping
    http-check expect status 200
{servers}
"""
        self.config = os.path.join(self.folder, "haproxy.cfg")
        with open(self.config, "w") as file:
            file.write(config)
        self.process = subprocess.Popen([HAPROXY, "-f", self.config, "-db"], stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline and call(self.base, "GET", "/ping")[0] != 200:
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait()


@pytest.fixture(scope="module")
def cluster():
    bucket = f"riskserve-{os.getpid()}"
    boto3.client("s3", endpoint_url=S3_ENDPOINT).create_bucket(Bucket=bucket)
    replicas = [Replica(index, bucket).start() for index in (1, 2, 3)]
    balancer = Balancer(replicas)
    yield replicas, balancer
    balancer.stop()
    for replica in replicas:
        replica.stop()


def model_bytes():
    with open(os.path.join(FIXTURES, "xgb3", "xgb3_binary_logistic.json"), "rb") as file:
        return file.read()


def one_row():
    with open(os.path.join(FIXTURES, "xgb3", "xgb3_binary_logistic.input.csv")) as file:
        lines = file.read().splitlines()
    return (lines[1] + "\n").encode()


def deploy(base, name, config, instances=1):
    status, body = call(base, "PUT", "/api/v1/artifacts", model_bytes(), "application/octet-stream")
    assert status in (200, 201), body
    digest = json.loads(body)["digest"]
    model = {"name": config + "-model", "artifacts": [{"name": "model.json", "digest": digest}]}
    status, body = call(base, "POST", "/api/v1/models", model)
    assert status in (201, 409), body
    variants = [{"name": "main", "model": config + "-model", "instances": instances}]
    status, body = call(base, "POST", "/api/v1/endpoint-configs", {"name": config, "variants": variants})
    assert status == 201, body
    if name is not None:
        status, body = call(base, "POST", "/api/v1/endpoints", {"name": name, "config": config})
        assert status == 201, body


def wait_in_service(base, name, config=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = call(base, "GET", f"/api/v1/endpoints/{name}")
        if status == 200:
            endpoint = json.loads(body)
            if endpoint["status"] == "InService" and (config is None or endpoint["config"] == config):
                return endpoint
        time.sleep(0.05)
    raise AssertionError(f"endpoint {name} not InService on {config}: {body}")


def wait_serving(replicas, name):
    """Until every replica answers an invocation of `name` (a replica serves a change within the propagation bound;
    the stored status says InService on all of them as soon as the deploying replica committed it)."""
    committed = time.time()
    row = one_row()
    for replica in replicas:
        while True:
            status, body = call(replica.base, "POST", f"/endpoints/{name}/invocations", row, "text/csv")
            if status == 200:
                break
            assert time.time() - committed < PROPAGATION_SECONDS, (replica.index, body)
            time.sleep(0.02)


class Load:
    """Invocations through the balancer from two threads, counting every answer that is not 200."""

    def __init__(self, base, endpoint):
        self.base, self.endpoint, self.row = base, endpoint, one_row()
        self.ok, self.failed, self.failures = 0, 0, []
        self.running = True
        self.threads = [threading.Thread(target=self.run) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def run(self):
        while self.running:
            status, body = call(self.base, "POST", f"/endpoints/{self.endpoint}/invocations", self.row, "text/csv")
            if status == 200:
                self.ok += 1
            else:
                self.failed += 1
                self.failures.append((status, body[:200]))

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join()


def test_a_change_on_one_replica_serves_on_every_replica(cluster):
    replicas, balancer = cluster
    deploy(replicas[0].base, "credit", "credit-v1")
    wait_in_service(replicas[0].base, "credit")
    committed = time.time()
    row = one_row()
    answers = {}
    for replica in replicas:
        while time.time() - committed < PROPAGATION_SECONDS:
            status, body = call(replica.base, "POST", "/endpoints/credit/invocations", row, "text/csv")
            if status == 200:
                answers[replica.index] = (body, time.time() - committed)
                break
            time.sleep(0.02)
    assert sorted(answers) == [1, 2, 3], f"replicas answering: {sorted(answers)}; {replicas[1].tail()}"
    assert len({body for body, _ in answers.values()}) == 1, answers
    print("propagation (s):", {index: round(delay, 3) for index, (_, delay) in answers.items()})
    for _ in range(6):
        status, body = call(balancer.base, "POST", "/endpoints/credit/invocations", row, "text/csv")
        assert status == 200, body


def test_updates_under_load_through_the_balancer_fail_no_request(cluster):
    replicas, balancer = cluster
    wait_in_service(balancer.base, "credit")
    load = Load(balancer.base, "credit")
    try:
        for version, instances in (("credit-v2", 2), ("credit-v3", 1)):
            deploy(balancer.base, None, version, instances)
            status, body = call(balancer.base, "PUT", "/api/v1/endpoints/credit", {"config": version})
            assert status == 200, body
            wait_in_service(balancer.base, "credit", version)
            time.sleep(PROPAGATION_SECONDS)
    finally:
        load.stop()
    assert load.failed == 0, load.failures[:5]
    assert load.ok > 100, load.ok


def test_killing_a_replica_under_load_loses_no_acknowledged_write(cluster):
    replicas, balancer = cluster
    load = Load(balancer.base, "credit")
    acknowledged = []
    try:
        victim = replicas[1]
        writer_done = threading.Event()

        def write():
            for index in range(40):
                name = f"written-{index}"
                variants = [{"name": "main", "model": "credit-v1-model"}]
                status, _ = call(balancer.base, "POST", "/api/v1/endpoint-configs", {"name": name, "variants": variants})
                if status == 201:
                    acknowledged.append(name)
            writer_done.set()

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.2)
        victim.kill()
        writer.join()
        time.sleep(1.0)
    finally:
        load.stop()
    assert acknowledged, "no write was acknowledged"
    for name in acknowledged:
        status, body = call(replicas[0].base, "GET", f"/api/v1/endpoint-configs/{name}")
        assert status == 200, (name, body)
    # The balancer retries a request the dead replica never answered; what it could not retry counts here.
    assert load.failed <= 2, load.failures[:5]
    victim.start()
    wait_in_service(victim.base, "credit")


def test_the_leader_dies_and_another_takes_over(cluster):
    replicas, _ = cluster
    deadline = time.time() + TAKEOVER_SECONDS
    leaders = []
    while time.time() < deadline and len(leaders) != 1:
        leaders = [replica for replica in replicas if replica.leads()]
        time.sleep(0.2)
    assert len(leaders) == 1, [replica.index for replica in leaders]
    leader = leaders[0]
    leader.kill()
    killed = time.time()
    others = [replica for replica in replicas if replica is not leader]
    new_leaders = []
    while time.time() - killed < TAKEOVER_SECONDS and not new_leaders:
        new_leaders = [replica for replica in others if replica.leads()]
        time.sleep(0.1)
    assert len(new_leaders) == 1, "no replica took over"
    print(f"takeover after {time.time() - killed:.2f} s by replica {new_leaders[0].index}")
    leader.start()
    time.sleep(2.5)
    assert sum(replica.leads() for replica in replicas) == 1


def invoke(base, endpoint, times):
    row = one_row()
    for _ in range(times):
        status, body = call(base, "POST", f"/endpoints/{endpoint}/invocations", row, "text/csv")
        assert status == 200, body


def test_metric_history_and_metering_add_up_across_replicas(cluster):
    replicas, balancer = cluster
    deploy(replicas[0].base, "summed", "summed-config")
    wait_in_service(replicas[0].base, "summed")
    wait_serving(replicas, "summed")
    # A different number on each replica, so that a replica answering with its own count alone fails.
    sent = {replica.index: 7 * replica.index for replica in replicas}
    for replica in replicas:
        invoke(replica.base, "summed", sent[replica.index])
    total = sum(sent.values()) + len(replicas)  # and wait_serving's one probe per replica
    started = time.time()
    history = "/api/v1/endpoints/summed/metrics?metric=invocations&stat=sum&period=600&start=-20m"
    answers = {}
    while time.time() - started < SUMMED_SECONDS:
        for replica in replicas:
            status, body = call(replica.base, "GET", history)
            assert status == 200, body
            answers[replica.index] = sum(point["value"] for point in json.loads(body)["datapoints"])
        if all(value == total for value in answers.values()):
            break
        time.sleep(0.5)
    assert answers == {replica.index: total for replica in replicas}, answers
    print(f"history summed on every replica after {time.time() - started:.1f} s")
    # Three replicas each run the variant's one instance: the history shows three (the open minute of the others
    # as last written, a few seconds behind).
    started = time.time()
    while time.time() - started < SUMMED_SECONDS:
        status, body = call(balancer.base, "GET", "/api/v1/endpoints/summed/metrics?metric=instances&start=-5m")
        assert status == 200, body
        latest = json.loads(body)["datapoints"][-1]["value"]
        if latest > 2.5:
            break
        time.sleep(0.5)
    assert 2.5 < latest <= 3.0 + 1e-9, body
    started = time.time()
    while time.time() - started < SUMMED_SECONDS:
        costs = {}
        for replica in replicas:
            status, body = call(replica.base, "GET", "/api/v1/cost?by=endpoint&from=-1h")
            assert status == 200, body
            lines = {line["key"]: line for line in json.loads(body)["lines"]}
            costs[replica.index] = lines.get("summed", {}).get("invocations")
        if all(value == total for value in costs.values()):
            break
        time.sleep(0.5)
    assert costs == {replica.index: total for replica in replicas}, costs
    status, body = call(balancer.base, "DELETE", "/api/v1/endpoints/summed")
    assert status == 202, body


def test_the_leader_scales_on_the_load_of_every_replica(cluster):
    replicas, _ = cluster
    deploy(replicas[0].base, "scaled", "scaled-config")
    wait_in_service(replicas[0].base, "scaled")
    wait_serving(replicas, "scaled")
    leaders = [replica for replica in replicas if replica.leads()]
    assert len(leaders) == 1, [replica.index for replica in leaders]
    policy = {"min_instances": 1, "max_instances": 3, "target": 60, "scale_out_cooldown": 0, "scale_in_cooldown": 600}
    status, body = call(replicas[0].base, "PUT", "/api/v1/endpoints/scaled/variants/main/scaling-policy", policy)
    assert status in (200, 201), body
    # Load on the followers only: the leader, measuring its own traffic alone, would see none.
    loads = [Load(replica.base, "scaled") for replica in replicas if replica is not leaders[0]]
    try:
        deadline = time.time() + 20
        instances = {}
        while time.time() < deadline:
            for replica in replicas:
                status, body = call(replica.base, "GET", "/api/v1/endpoints/scaled")
                assert status == 200, body
                instances[replica.index] = json.loads(body)["variants"][0]["instances"]
            if all(count == 3 for count in instances.values()):
                break
            time.sleep(0.5)
    finally:
        for load in loads:
            load.stop()
    assert instances == {replica.index: 3 for replica in replicas}, (instances, leaders[0].tail())
    status, body = call(replicas[0].base, "GET", "/api/v1/endpoints/scaled")
    activities = json.loads(body)["scaling_activities"]
    assert activities and activities[-1]["to"] == 3, activities
    assert sum(load.failed for load in loads) == 0, [load.failures[:3] for load in loads]
    status, body = call(replicas[0].base, "DELETE", "/api/v1/endpoints/scaled")
    assert status == 202, body


def test_losing_postgres_keeps_invocations_serving_and_refuses_changes(cluster):
    replicas, balancer = cluster
    control = os.environ["RISKSERVE_TEST_POSTGRES_CTL"]
    row = one_row()
    for replica in replicas:
        status, body = call(replica.base, "POST", "/endpoints/credit/invocations", row, "text/csv")
        assert status == 200, body
    subprocess.run([control, "stop"], check=True)
    try:
        started = time.time()
        variants = [{"name": "main", "model": "credit-v1-model"}]
        status, body = call(replicas[0].base, "POST", "/api/v1/endpoint-configs", {"name": "during-outage", "variants": variants})
        refused_in = time.time() - started
        assert status == 503, body
        assert json.loads(body)["error"]["code"] == "store_unavailable", body
        assert refused_in < 12, refused_in
        for replica in replicas:
            for _ in range(20):
                status, body = call(replica.base, "POST", "/endpoints/credit/invocations", row, "text/csv")
                assert status == 200, (replica.index, body)
        for _ in range(20):
            status, body = call(balancer.base, "POST", "/endpoints/credit/invocations", row, "text/csv")
            assert status == 200, body
        assert call(balancer.base, "GET", "/ping")[0] == 200
    finally:
        subprocess.run([control, "start"], check=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        status, body = call(replicas[0].base, "POST", "/api/v1/endpoint-configs", {"name": "after-outage", "variants": variants})
        if status == 201:
            break
        time.sleep(0.5)
    assert status == 201, body
    print(f"a change was refused in {refused_in:.2f} s while PostgreSQL was away, and accepted once it was back")


def test_the_audit_trail_is_one_verifiable_chain_across_replicas(cluster):
    replicas, balancer = cluster
    for replica in replicas:
        status, body = call(replica.base, "GET", "/api/v1/endpoints/credit")
        assert status == 200, body
    for replica in replicas:
        status, body = call(replica.base, "GET", "/api/v1/audit/verify")
        assert status == 200, body
        report = json.loads(body)
        assert report["ok"], report
        assert report["events"] > 50, report


def test_s3_artifacts_and_model_data_urls(cluster):
    replicas, _ = cluster
    s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT)
    bucket = replicas[0].bucket
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="riskserve/sha256/")
    assert listed.get("KeyCount", 0) >= 1, listed
    s3.put_object(Bucket=bucket, Key="incoming/model.json", Body=model_bytes())
    model = {"name": "from-s3", "artifact_url": f"s3://{bucket}/incoming/model.json", "format": "xgboost-json"}
    status, body = call(replicas[2].base, "POST", "/api/v1/models", model)
    assert status == 201, body
    missing = {"name": "missing-s3", "artifact_url": f"s3://{bucket}/incoming/none.json", "format": "xgboost-json"}
    status, body = call(replicas[2].base, "POST", "/api/v1/models", missing)
    assert status == 404, body
    assert b"does not exist" in body


def test_data_capture_from_every_replica_lands_in_s3(cluster):
    replicas, balancer = cluster
    status, body = call(replicas[0].base, "PUT", "/api/v1/artifacts", model_bytes(), "application/octet-stream")
    digest = json.loads(body)["digest"]
    call(replicas[0].base, "POST", "/api/v1/models", {"name": "captured-model", "artifacts": [{"name": "m.json", "digest": digest}]})
    config = {
        "name": "captured",
        "variants": [{"name": "main", "model": "captured-model"}],
        "data_capture": {"sampling_percentage": 100, "destination": "capture"},
    }
    status, body = call(replicas[0].base, "POST", "/api/v1/endpoint-configs", config)
    assert status == 201, body
    status, body = call(replicas[0].base, "POST", "/api/v1/endpoints", {"name": "captured", "config": "captured"})
    assert status == 201, body
    wait_in_service(replicas[0].base, "captured")
    wait_serving(replicas, "captured")
    # The probes of wait_serving are captured too: one per replica.
    for replica in replicas:
        invoke(replica.base, "captured", 1)
    s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT)
    prefix = "riskserve/capture/captured/main/"
    deadline = time.time() + 10
    lines = []
    while time.time() < deadline:
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=replicas[0].bucket, Prefix=prefix).get("Contents", [])]
        lines = [
            json.loads(line)
            for key in keys
            for line in s3.get_object(Bucket=replicas[0].bucket, Key=key)["Body"].read().decode().splitlines()
        ]
        if len(lines) >= 6:
            break
        time.sleep(0.3)
    assert len(lines) == 6, lines
    assert len({line["eventMetadata"]["eventId"] for line in lines}) == 6
    # Every replica writes files of its own (their names carry the replica's), so at least three.
    assert len(keys) >= 3, keys
    status, body = call(balancer.base, "DELETE", "/api/v1/endpoints/captured")
    assert status == 202, body
