"""The AWS CLI against riskserve's SageMaker control plane."""

import json
import os
import subprocess

from conftest import URL, aws_cli, deploy


def test_list_endpoints(sagemaker, binary_model):
    deploy(sagemaker, "cli", binary_model.archive)
    command = [aws_cli(), "sagemaker", "list-endpoints", "--endpoint-url", URL, "--output", "json"]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
    assert answer.returncode == 0, answer.stderr
    endpoints = {endpoint["EndpointName"]: endpoint for endpoint in json.loads(answer.stdout)["Endpoints"]}
    assert endpoints["cli"]["EndpointStatus"] == "InService"
    command = [aws_cli(), "sagemaker", "describe-endpoint", "--endpoint-name", "no-such-endpoint",
               "--endpoint-url", URL]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
    assert answer.returncode != 0 and "ValidationException" in answer.stderr
