"""boto3's sagemaker client through the whole deploy flow, both waiters, updates, tags, pagination and the errors
that SageMaker's clients rely on."""

import json
import os
import time
from pathlib import Path

import botocore.exceptions
import numpy as np
import pytest

from conftest import ACCOUNT, REGION, WAIT, csv_line, deploy, signed_request, still_serves, tar_gz, wait_in_service


def error_of(call, **arguments):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**arguments)
    return raised.value.response


def test_deploy_update_tag_and_delete(sagemaker, runtime, binary_model, binary_model_v2):
    name = "flow"
    archive = binary_model.archive
    arn = sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": "683313688378.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                          "ModelDataUrl": f"file://{archive}"},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        Tags=[{"Key": "team", "Value": "cards"}],
    )["ModelArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{name}"
    described = sagemaker.describe_model(ModelName=name)
    assert described["PrimaryContainer"]["ModelDataUrl"] == f"file://{archive}"
    assert described["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/sm"
    assert described["CreationTime"].year >= 2024

    sagemaker.create_endpoint_config(
        EndpointConfigName="flow-v1",
        ProductionVariants=[{"VariantName": "blue", "ModelName": name, "InitialInstanceCount": 2,
                             "InstanceType": "ml.c5.xlarge", "InitialVariantWeight": 1.0}],
    )
    config = sagemaker.describe_endpoint_config(EndpointConfigName="flow-v1")
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2

    endpoint_arn = sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="flow-v1",
                                             Tags=[{"Key": "stage", "Value": "test"}])["EndpointArn"]
    assert endpoint_arn.endswith(f":endpoint/{name}")
    wait_in_service(sagemaker, name)
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 2

    body = "\n".join(csv_line(row) for row in binary_model.rows)
    answer = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)
    assert answer["InvokedProductionVariant"] == "blue"
    values = [float(value) for value in answer["Body"].read().decode().split(",")]
    np.testing.assert_allclose(values, binary_model.expected, rtol=0, atol=1e-6)

    # Blue/green to a config of two variants (a second model in UBJSON).
    sagemaker.create_model(ModelName="flow-v2", PrimaryContainer={"Image": "xgboost",
                           "ModelDataUrl": f"file://{binary_model_v2.archive}"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="flow-v2",
        ProductionVariants=[
            {"VariantName": "blue", "ModelName": name, "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},
            {"VariantName": "green", "ModelName": "flow-v2", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},
        ],
    )
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName="flow-v2")
    wait_in_service(sagemaker, name)
    assert sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"] == "flow-v2"
    green = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body, TargetVariant="green")
    assert green["InvokedProductionVariant"] == "green"
    values = [float(value) for value in green["Body"].read().decode().split(",")]
    np.testing.assert_allclose(values, binary_model_v2.expected, rtol=0, atol=1e-6)

    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=name,
        DesiredWeightsAndCapacities=[{"VariantName": "green", "DesiredWeight": 0.0, "DesiredInstanceCount": 3}],
    )
    variants = {variant["VariantName"]: variant for variant in sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"]}
    assert variants["green"]["CurrentWeight"] == 0.0 and variants["green"]["CurrentInstanceCount"] == 3
    for _ in range(10):
        answer = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=csv_line(binary_model.rows[0]))
        assert answer["InvokedProductionVariant"] == "blue"

    # Tags on every kind of resource.
    sagemaker.add_tags(ResourceArn=endpoint_arn, Tags=[{"Key": "owner", "Value": "risk"}, {"Key": "stage", "Value": "prod"}])
    tags = {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=endpoint_arn)["Tags"]}
    assert tags == {"owner": "risk", "stage": "prod"}
    sagemaker.delete_tags(ResourceArn=endpoint_arn, TagKeys=["stage"])
    assert sagemaker.list_tags(ResourceArn=endpoint_arn)["Tags"] == [{"Key": "owner", "Value": "risk"}]
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "cards"}]
    config_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/flow-v2"
    sagemaker.add_tags(ResourceArn=config_arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    page = sagemaker.list_tags(ResourceArn=config_arn, MaxResults=50)
    assert page["Tags"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}] and "NextToken" not in page
    missing_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/nowhere"
    assert error_of(sagemaker.list_tags, ResourceArn=missing_arn)["Error"]["Code"] == "ValidationException"

    # In use: neither the model nor the config may go while the endpoint serves them.
    assert error_of(sagemaker.delete_model, ModelName=name)["Error"]["Code"] == "ResourceInUse"
    assert error_of(sagemaker.delete_endpoint_config, EndpointConfigName="flow-v2")["Error"]["Code"] == "ResourceInUse"

    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=WAIT)
    missing = error_of(sagemaker.describe_endpoint, EndpointName=name)
    assert missing["Error"]["Code"] == "ValidationException"
    assert missing["ResponseMetadata"]["HTTPStatusCode"] == 400
    for config_name in ["flow-v1", "flow-v2"]:
        sagemaker.delete_endpoint_config(EndpointConfigName=config_name)
    for model in [name, "flow-v2"]:
        sagemaker.delete_model(ModelName=model)
    assert error_of(sagemaker.describe_model, ModelName=name)["Error"]["Code"] == "ValidationException"


def test_lists_page_with_next_token(sagemaker, binary_model):
    names = [f"page-{index}" for index in range(5)]
    for name in names:
        sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": "xgboost", "ModelDataUrl": f"file://{binary_model.archive}"})
    first = sagemaker.list_models(MaxResults=2, NameContains="page-")
    assert len(first["Models"]) == 2 and first["NextToken"]
    seen = [model["ModelName"] for page in sagemaker.get_paginator("list_models").paginate(
        NameContains="page-", PaginationConfig={"PageSize": 2}) for model in page["Models"]]
    assert seen == names
    for name in names:
        sagemaker.delete_model(ModelName=name)


def test_limits_and_refusals(sagemaker, runtime, binary_model, work):
    name = "limits"
    deploy(sagemaker, name, binary_model.archive)
    too_many = error_of(
        sagemaker.create_endpoint_config,
        EndpointConfigName="too-many",
        ProductionVariants=[{"VariantName": "a", "ModelName": name, "InitialInstanceCount": 100000, "InstanceType": "ml.m5.large"}],
    )
    assert too_many["Error"]["Code"] == "ResourceLimitExceeded"
    unknown_model = error_of(
        sagemaker.create_endpoint_config,
        EndpointConfigName="no-model",
        ProductionVariants=[{"VariantName": "a", "ModelName": "nobody", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
    )
    assert unknown_model["Error"]["Code"] == "ValidationException" and "nobody" in unknown_model["Error"]["Message"]
    duplicate = error_of(sagemaker.create_model, ModelName=name,
                         PrimaryContainer={"Image": "xgboost", "ModelDataUrl": f"file://{binary_model.archive}"})
    assert duplicate["Error"]["Code"] == "ValidationException"
    legacy = tar_gz(work / "legacy.tar.gz", {"xgboost-model": b"\x00\x00\x00?\x01\x00\x00\x00binf"})
    refused = error_of(sagemaker.create_model, ModelName="legacy",
                       PrimaryContainer={"Image": "xgboost", "ModelDataUrl": f"file://{legacy}"})
    assert refused["Error"]["Code"] == "ValidationException"
    assert "legacy binary format" in refused["Error"]["Message"]
    pickle = tar_gz(work / "pickle.tar.gz", {"model.joblib": b"\x80\x04\x95junk"})
    refused = error_of(sagemaker.create_model, ModelName="pickled",
                       PrimaryContainer={"Image": "sagemaker-scikit-learn:1.2-1", "ModelDataUrl": f"file://{pickle}"})
    assert "pickle" in refused["Error"]["Message"]
    refused = error_of(sagemaker.create_model, ModelName="torch",
                       PrimaryContainer={"Image": "pytorch-inference:2.1", "ModelDataUrl": f"file://{binary_model.archive}"})
    assert "names no framework" in refused["Error"]["Message"]
    refused = error_of(sagemaker.create_model, ModelName="s3",
                       PrimaryContainer={"Image": "xgboost", "ModelDataUrl": "s3://bucket/model.tar.gz"})
    assert "S3 is not configured" in refused["Error"]["Message"]
    two = error_of(sagemaker.create_model, ModelName="two-containers", Containers=[
        {"Image": "xgboost", "ModelDataUrl": f"file://{binary_model.archive}"},
        {"Image": "xgboost", "ModelDataUrl": f"file://{binary_model.archive}"},
    ])
    assert "serial inference pipeline" in two["Error"]["Message"]
    partial = error_of(sagemaker.update_endpoint_weights_and_capacities, EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}, {"VariantName": "nobody", "DesiredWeight": 1.0}])
    assert partial["Error"]["Code"] == "ValidationException" and "nobody" in partial["Error"]["Message"]
    variant = sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 1
    still_serves(runtime, name, binary_model)


def test_containers_map_onto_a_pipeline(sagemaker, runtime, german_credit, work):
    """Two containers (the pipeline spec, then the XGBoost model) become one riskserve pipeline."""
    import tarfile

    with tarfile.open(german_credit["archive"]) as archive:
        spec = archive.extractfile("pipeline.json").read()
        model = archive.extractfile("model.json").read()
    first = tar_gz(work / "spec.tar.gz", {"pipeline.json": spec})
    second = tar_gz(work / "model-only.tar.gz", {"model.json": model})
    sagemaker.create_model(ModelName="serial", Containers=[
        {"Image": "riskserve/pipeline", "ModelDataUrl": f"file://{first}"},
        {"Image": "riskserve/xgboost", "ModelDataUrl": f"file://{second}"},
    ])
    described = sagemaker.describe_model(ModelName="serial")
    assert len(described["Containers"]) == 2
    sagemaker.create_endpoint_config(EndpointConfigName="serial", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "serial", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName="serial", EndpointConfigName="serial")
    wait_in_service(sagemaker, "serial")
    answer = runtime.invoke_endpoint(EndpointName="serial", ContentType="text/csv", Accept="application/json",
                                     Body="\n".join(german_credit["rows"][:3]))
    outcomes = json.loads(answer["Body"].read())["predictions"]
    for outcome, want in zip(outcomes, german_credit["expected"][:3]):
        assert abs(outcome["probability"] - want["probability"]) <= 1e-6
        assert (outcome["grade"], outcome["decision"]) == (want["grade"], want["decision"])
    sagemaker.delete_endpoint(EndpointName="serial")
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName="serial", WaiterConfig=WAIT)
    sagemaker.delete_endpoint_config(EndpointConfigName="serial")
    sagemaker.delete_model(ModelName="serial")


def test_malformed_requests_get_sagemaker_errors(sagemaker, runtime, binary_model):
    name = "bad-input"
    deploy(sagemaker, name, binary_model.archive)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.DescribeEndpoint"}
    cases = [
        ({**headers, "X-Amz-Target": "SageMaker.CreateTrainingJob"}, b"{}", "UnknownOperationException"),
        ({**headers, "X-Amz-Target": "Nothing.At.All"}, b"{}", "UnknownOperationException"),
        (headers, b"{\"EndpointName\": ", "SerializationException"),
        (headers, b"[1, 2]", "SerializationException"),
        (headers, b"{\"EndpointName\": 7}", "SerializationException"),
        (headers, b"{}", "ValidationException"),
    ]
    for request_headers, body, kind in cases:
        status, answer_headers, answer = signed_request("/", body, request_headers)
        assert status == 400, (body, status, answer)
        lowered = {key.lower(): value for key, value in answer_headers.items()}
        assert lowered["x-amzn-errortype"] == kind, (body, answer)
        assert json.loads(answer)["__type"] == kind
    status, _, answer = signed_request("/", b"{}", headers)
    assert "'EndpointName'" in json.loads(answer)["message"]
    still_serves(runtime, name, binary_model)


def captured(folder):
    """Every captured record in the JSON Lines files under `folder`, with the file's path."""
    records = []
    for path in sorted(Path(folder).rglob("*.jsonl")):
        records.extend((path, json.loads(line)) for line in path.read_text().splitlines())
    return records


def test_data_capture_config_records_invocations_as_sagemaker_does(sagemaker, runtime, binary_model):
    name = "captured"
    container = {"Image": "sagemaker-xgboost:1.7-1", "ModelDataUrl": f"file://{binary_model.archive}"}
    sagemaker.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn="arn:aws:iam::1:role/x")
    variants = [{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://risk-team-bucket/monitoring/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }
    for bad, message in [
        ({**capture, "InitialSamplingPercentage": 150}, "0 to 100"),
        ({**capture, "CaptureOptions": [{"CaptureMode": "Everything"}]}, "is not one of"),
        ({**capture, "DestinationS3Uri": "s3://bucket/../up"}, "destination"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            sagemaker.create_endpoint_config(EndpointConfigName="bad-capture", ProductionVariants=variants,
                                             DataCaptureConfig=bad)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert message in refused.value.response["Error"]["Message"]
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, DataCaptureConfig=capture)
    described = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    assert described["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sagemaker, name)
    sent = {}
    for index, row in enumerate(binary_model.rows[:3]):
        body = csv_line(row)
        answer = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body,
                                         InferenceId=f"application-{index}")
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        sent[f"application-{index}"] = body
    folder = Path(os.environ["RISKSERVE_TEST_DATA_DIR"]) / "artifacts/monitoring/capture" / name / "AllTraffic"
    deadline = time.time() + 10
    while time.time() < deadline and len(captured(folder)) < 3:
        time.sleep(0.2)
    records = captured(folder)
    assert len(records) == 3, records
    for path, record in records:
        metadata = record["eventMetadata"]
        endpoint_input = record["captureData"]["endpointInput"]
        assert endpoint_input == {"observedContentType": "text/csv", "mode": "INPUT",
                                  "data": sent[metadata["inferenceId"]], "encoding": "CSV"}
        assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
        assert record["eventVersion"] == "0"
        time_text = metadata["inferenceTime"]
        assert path.parent.parts[-4:] == (time_text[0:4], time_text[5:7], time_text[8:10], time_text[11:13])
    sagemaker.delete_endpoint(EndpointName=name)
