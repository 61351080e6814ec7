"""boto3's sagemaker-runtime client in every content type, its headers, explanations and error shapes."""

import json

import botocore.exceptions
import numpy as np
import pytest

from conftest import csv_line, deploy, signed_request, still_serves


@pytest.fixture(scope="module")
def endpoint(sagemaker, binary_model):
    deploy(sagemaker, "runtime", binary_model.archive, instances=2)
    return "runtime"


@pytest.fixture(scope="module")
def selected_endpoint(sagemaker, binary_model):
    deploy(sagemaker, "selected", binary_model.archive,
           environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label, probability,probabilities"})
    return "selected"


@pytest.fixture(scope="module")
def pipeline_endpoint(sagemaker, german_credit):
    deploy(sagemaker, "german", german_credit["archive"], image="riskserve/pipeline")
    return "german"


def invoke(runtime, endpoint, body, content_type, accept=None, **extra):
    arguments = {"EndpointName": endpoint, "ContentType": content_type, "Body": body, **extra}
    if accept:
        arguments["Accept"] = accept
    answer = runtime.invoke_endpoint(**arguments)
    return answer, answer["Body"].read().decode()


def libsvm_line(values):
    return "0 " + " ".join(f"{index}:{float(value)!r}" for index, value in enumerate(values) if not np.isnan(value))


def json_row(values):
    return [None if np.isnan(value) else float(value) for value in values]


def test_every_content_type_gives_the_library_values(runtime, endpoint, binary_model):
    expected = binary_model.expected
    rows = binary_model.rows
    _, text = invoke(runtime, endpoint, "\n".join(csv_line(row) for row in rows), "text/csv")
    np.testing.assert_allclose([float(value) for value in text.split(",")], expected, rtol=0, atol=1e-6)

    answer, text = invoke(runtime, endpoint, "\n".join(libsvm_line(row) for row in rows), "text/libsvm")
    assert answer["ContentType"] == "text/csv"
    np.testing.assert_allclose([float(value) for value in text.split(",")], expected, rtol=0, atol=1e-6)

    body = json.dumps({"instances": [{"features": json_row(row)} for row in rows]})
    answer, text = invoke(runtime, endpoint, body, "application/json")
    assert answer["ContentType"] == "application/json"
    scores = [prediction["score"] for prediction in json.loads(text)["predictions"]]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)

    body = "\n".join(json.dumps(json_row(row)) for row in rows)
    answer, text = invoke(runtime, endpoint, body, "application/jsonlines")
    assert answer["ContentType"] == "application/jsonlines"
    scores = [json.loads(line)["score"] for line in text.splitlines()]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)

    # CSV in, JSON out.
    _, text = invoke(runtime, endpoint, csv_line(rows[0]), "text/csv", accept="application/json")
    assert abs(json.loads(text)["predictions"][0]["score"] - expected[0]) <= 1e-6


def test_headers_are_echoed(runtime, endpoint, binary_model):
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=csv_line(binary_model.rows[0]),
        CustomAttributes="trace=abc", InferenceId="request-17", TargetVariant="AllTraffic",
    )
    assert answer["CustomAttributes"] == "trace=abc"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-sagemaker-inference-id"] == "request-17"


def test_selected_outputs_as_the_xgboost_container(runtime, selected_endpoint, binary_model):
    rows = binary_model.rows[:4]
    expected = binary_model.expected[:4]
    _, text = invoke(runtime, selected_endpoint, "\n".join(csv_line(row) for row in rows), "text/csv",
                     accept="application/json")
    predictions = json.loads(text)["predictions"]
    for prediction, probability in zip(predictions, expected):
        assert prediction["predicted_label"] == int(probability > 0.5)
        assert abs(prediction["probability"] - probability) <= 1e-6
        np.testing.assert_allclose(prediction["probabilities"], [1 - probability, probability], atol=1e-6)
    _, text = invoke(runtime, selected_endpoint, csv_line(rows[0]), "text/csv")
    label, probability, _ = text.split(",", 2)
    assert int(label) == int(expected[0] > 0.5) and abs(float(probability) - expected[0]) <= 1e-6


def test_pipeline_outcomes_and_explanations(runtime, pipeline_endpoint, german_credit):
    rows = german_credit["rows"][:5]
    expected = german_credit["expected"][:5]
    answer, text = invoke(runtime, pipeline_endpoint, "\n".join(rows), "text/csv", accept="application/jsonlines",
                          EnableExplanations="`true`")
    outcomes = [json.loads(line) for line in text.splitlines()]
    for outcome, want in zip(outcomes, expected):
        assert abs(outcome["probability"] - want["probability"]) <= 1e-6
        assert outcome["grade"] == want["grade"] and outcome["decision"] == want["decision"]
        assert [reason["code"] for reason in outcome["reasons"]] == [reason["code"] for reason in want["reasons"]]
    _, text = invoke(runtime, pipeline_endpoint, "\n".join(rows), "text/csv")
    first = text.splitlines()[0].split(",")
    assert abs(float(first[0]) - expected[0]["probability"]) <= 1e-6 and first[2] == expected[0]["grade"]


def test_errors_take_sagemaker_shapes(runtime, endpoint, binary_model):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="nowhere", ContentType="text/csv", Body="1,2")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body="1,2,3")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "expected 6 fields" in raised.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body="1,2,3,4,5,abc")
    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/png", Body=b"\x89PNG")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/libsvm", Body="0 99:1")
    assert "index 99" in raised.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body="1", TargetVariant="nobody")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    status, headers, body = signed_request(f"/endpoints/{endpoint}/invocations", b"{\"instances\": [",
                                           {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["ErrorCode"] == "ValidationError"
    still_serves(runtime, endpoint, binary_model)


def test_explanations_of_a_bare_model_match_xgboost(runtime, endpoint, binary_model):
    import xgboost as xgb

    rows = binary_model.rows[:3]
    body = "\n".join(csv_line(row) for row in rows)
    _, text = invoke(runtime, endpoint, body, "text/csv", accept="application/json", EnableExplanations="`true`")
    predictions = json.loads(text)["predictions"]
    expected = binary_model.booster.predict(xgb.DMatrix(rows), pred_contribs=True)
    for prediction, contributions in zip(predictions, expected):
        got = prediction["contributions"]
        np.testing.assert_allclose([got[f"f{index}"] for index in range(len(contributions) - 1)] + [got["bias"]],
                                   contributions, rtol=0, atol=1e-5)
