"""Fixtures of the real-client tests: the server scripts/client_tests.sh started, boto3 clients pointed at it, and
models trained here by the pinned xgboost (so expected values come from the library itself)."""

import io
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import numpy as np
import pytest
import xgboost as xgb

REPO = Path(__file__).resolve().parents[2]
URL = os.environ.get("RISKSERVE_URL", "http://127.0.0.1:8080")
REGION = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
ACCOUNT = os.environ.get("RISKSERVE_ACCOUNT_ID", "123456789012")
TOKEN = os.environ.get("RISKSERVE_ADMIN_TOKEN", "")
FEATURES = 6
WAIT = {"Delay": 1, "MaxAttempts": 120}


def client(name):
    return boto3.client(
        name,
        endpoint_url=URL,
        region_name=REGION,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def sagemaker():
    return client("sagemaker")


@pytest.fixture(scope="session")
def runtime():
    return client("sagemaker-runtime")


def signed_request(path, body, headers):
    """A raw request, SigV4-signed as botocore signs (service sagemaker), for bodies botocore would refuse to send."""
    credentials = botocore.credentials.Credentials(
        os.environ.get("AWS_ACCESS_KEY_ID", "x"), os.environ.get("AWS_SECRET_ACCESS_KEY", "x")
    )
    request = botocore.awsrequest.AWSRequest(method="POST", url=URL + path, data=body, headers=headers)
    botocore.auth.SigV4Auth(credentials, "sagemaker", REGION).add_auth(request)
    prepared = urllib.request.Request(URL + path, data=body, method="POST", headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def raw_request(method, path, body=None, headers=None):
    """An unsigned request with the admin bearer token (the Open Inference Protocol's clients send headers so)."""
    headers = dict(headers or {})
    if TOKEN:
        headers.setdefault("Authorization", f"Bearer {TOKEN}")
    request = urllib.request.Request(URL + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def rows(seed, count):
    """Rows with about 10% missing values, and the labels of a simple rule with noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(count, FEATURES))
    features[rng.random(features.shape) < 0.1] = np.nan
    signal = np.nan_to_num(features[:, 0]) + 0.5 * np.nan_to_num(features[:, 1]) - 0.3 * np.nan_to_num(features[:, 2])
    labels = (signal + rng.normal(scale=0.5, size=count) > 0).astype(int)
    return features, labels


def tar_gz(path, files):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


class Trained:
    """A booster, its files, and rows to score with the booster's own predictions."""

    def __init__(self, directory, objective, rounds, extension, num_class=None):
        features, labels = rows(11 if num_class is None else 12, 400)
        parameters = {"objective": objective, "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 0}
        if num_class:
            parameters["num_class"] = num_class
            labels = (np.nan_to_num(features[:, 0]) > 0).astype(int) + (np.nan_to_num(features[:, 1]) > 0.5)
        self.booster = xgb.train(parameters, xgb.DMatrix(features, label=labels), num_boost_round=rounds)
        saved = directory / f"model.{extension}"
        self.booster.save_model(str(saved))
        self.model_bytes = saved.read_bytes()
        self.archive = tar_gz(directory / "model.tar.gz", {"xgboost-model": self.model_bytes})
        self.rows, _ = rows(99, 25)
        self.expected = self.booster.predict(xgb.DMatrix(self.rows))


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("clients")


@pytest.fixture(scope="session")
def binary_model(work):
    directory = work / "binary"
    directory.mkdir()
    return Trained(directory, "binary:logistic", 20, "json")


@pytest.fixture(scope="session")
def binary_model_v2(work):
    directory = work / "binary-v2"
    directory.mkdir()
    return Trained(directory, "binary:logistic", 35, "ubj")


@pytest.fixture(scope="session")
def german_credit(work):
    """The German Credit pipeline example (XGBoost + calibration + score + grade + decision), with the values the
    real libraries wrote in examples/german-credit/xgboost/expected.jsonl."""
    source = REPO / "examples" / "german-credit" / "xgboost"
    spec = (source / "pipeline.json").read_bytes()
    model = (source / "model.json").read_bytes()
    archive = tar_gz(work / "german.tar.gz", {"pipeline.json": spec, "model.json": model})
    lines = (source / "input.csv").read_text().splitlines()
    expected = [json.loads(line) for line in (source / "expected.jsonl").read_text().splitlines()]
    return {"archive": archive, "header": lines[0], "rows": lines[1:], "expected": expected}


def csv_line(values):
    return ",".join("" if np.isnan(value) else repr(float(value)) for value in values)


def wait_in_service(sagemaker, name):
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)


def deploy(sagemaker, name, archive, image="sagemaker-xgboost:1.7-1", environment=None, instances=1):
    """Model, config and endpoint of one variant named AllTraffic, in service."""
    container = {"Image": image, "ModelDataUrl": f"file://{archive}"}
    if environment:
        container["Environment"] = environment
    sagemaker.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn="arn:aws:iam::1:role/x")
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": instances, "InstanceType": "ml.m5.large"}
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sagemaker, name)


def still_serves(runtime, endpoint, trained):
    """After bad input, the endpoint still answers with the library's values."""
    body = "\n".join(csv_line(row) for row in trained.rows[:3])
    answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
    values = [float(value) for value in answer["Body"].read().decode().split(",")]
    np.testing.assert_allclose(values, trained.expected[:3], rtol=0, atol=1e-6)


def eventually(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def aws_cli():
    return shutil.which("aws")
