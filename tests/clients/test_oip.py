"""tritonclient.http against riskserve's Open Inference Protocol: health, metadata, binary (numpy) and JSON tensors,
named outputs, versions (variants), and bad tensors."""

import json

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from conftest import TOKEN, URL, deploy, raw_request, still_serves

def auth():
    """A fresh header dict each call: tritonclient adds its own headers to the dict it is given."""
    return {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}


@pytest.fixture(scope="module")
def client():
    return triton.InferenceServerClient(url=URL.removeprefix("http://"))


@pytest.fixture(scope="module")
def model(sagemaker, binary_model):
    deploy(sagemaker, "oip", binary_model.archive)
    return "oip"


@pytest.fixture(scope="module")
def pipeline(sagemaker, german_credit):
    deploy(sagemaker, "oip-german", german_credit["archive"], image="riskserve")
    return "oip-german"


def test_health_and_metadata(client, model):
    assert client.is_server_live(headers=auth())
    assert client.is_server_ready(headers=auth())
    assert "binary_tensor_data" in client.get_server_metadata(headers=auth())["extensions"]
    assert client.is_model_ready(model, headers=auth())
    assert client.is_model_ready(model, model_version="AllTraffic", headers=auth())
    assert not client.is_model_ready(model, model_version="nobody", headers=auth())
    metadata = client.get_model_metadata(model, headers=auth())
    assert metadata["versions"] == ["AllTraffic"]
    assert metadata["inputs"][0]["shape"] == [-1, 6]


@pytest.mark.parametrize("binary", [True, False])
def test_numpy_inputs_give_the_library_values(client, model, binary_model, binary):
    tensor = triton.InferInput("input", list(binary_model.rows.shape), "FP64")
    tensor.set_data_from_numpy(binary_model.rows.astype(np.float64), binary_data=binary)
    output = triton.InferRequestedOutput("probabilities", binary_data=binary)
    result = client.infer(model, [tensor], outputs=[output], headers=auth(), request_id="r-1")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(binary_model.rows), 1)
    np.testing.assert_allclose(probabilities[:, 0], binary_model.expected, rtol=0, atol=1e-6)
    assert result.get_response()["id"] == "r-1"
    # FP32 inputs too (the version named explicitly).
    tensor = triton.InferInput("input", list(binary_model.rows.shape), "FP32")
    tensor.set_data_from_numpy(binary_model.rows.astype(np.float32), binary_data=binary)
    result = client.infer(model, [tensor], model_version="AllTraffic", headers=auth())
    np.testing.assert_allclose(result.as_numpy("probabilities")[:, 0], binary_model.expected, rtol=0, atol=1e-6)


def test_named_outputs_of_a_pipeline(client, pipeline, german_credit):
    header = german_credit["header"].split(",")
    import csv

    rows = list(csv.reader(german_credit["rows"][:4]))
    inputs = []
    for column, name in enumerate(header):
        values = np.array([[row[column].encode()] for row in rows], dtype=np.object_)
        tensor = triton.InferInput(name, [len(rows), 1], "BYTES")
        tensor.set_data_from_numpy(values, binary_data=True)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(name, binary_data=name != "reasons")
               for name in ["probabilities", "score", "grade", "decision", "reasons"]]
    result = client.infer(pipeline, inputs, outputs=outputs, headers=auth())
    expected = german_credit["expected"][:4]
    np.testing.assert_allclose(result.as_numpy("probabilities")[:, 0], [row["probability"] for row in expected], atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("score"), [row["score"] for row in expected], atol=1e-6)
    assert [grade.decode() for grade in result.as_numpy("grade")] == [row["grade"] for row in expected]
    assert [decision.decode() for decision in result.as_numpy("decision")] == [row["decision"] for row in expected]
    reasons = [json.loads(text) for text in result.as_numpy("reasons")]
    assert [[reason["code"] for reason in row] for row in reasons] == [[r["code"] for r in row["reasons"]] for row in expected]


def test_bad_tensors_are_named_and_the_server_still_serves(client, model, runtime, binary_model):
    cases = [
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 5], "data": [1, 2, 3, 4, 5]}]}, "[batch, 6]"),
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 6], "data": [1, 2, 3]}]}, "holds 12 elements"),
        ({"inputs": [{"name": "input", "datatype": "INT32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 0.5]}]}, "INT32"),
        ({"inputs": [{"name": "input", "datatype": "FP16", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}, "FP16"),
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}],
          "outputs": [{"name": "nothing"}]}, "nothing"),
        ({"inputs": []}, "empty"),
    ]
    for body, named in cases:
        status, _, answer = raw_request("POST", f"/v2/models/{model}/infer", json.dumps(body).encode(),
                                        {"Content-Type": "application/json"})
        assert status == 400, (body, answer)
        assert named in json.loads(answer)["error"], (named, answer)
    status, _, answer = raw_request("POST", f"/v2/models/{model}/infer", b"{\"inputs\": [", {})
    assert status == 400 and "malformed" in json.loads(answer)["error"]
    status, _, answer = raw_request("POST", f"/v2/models/{model}/infer", b"{\"inputs\": []}xx",
                                    {"Inference-Header-Content-Length": "999"})
    assert status == 400
    status, _, answer = raw_request("POST", "/v2/models/nobody/infer", b"{\"inputs\": [{\"name\": \"input\", "
                                    b"\"datatype\": \"FP64\", \"shape\": [1, 1], \"data\": [1]}]}", {})
    assert status == 404 and "error" in json.loads(answer)
    with pytest.raises(InferenceServerException):
        tensor = triton.InferInput("input", [1, 3], "FP64")
        tensor.set_data_from_numpy(np.zeros((1, 3)), binary_data=True)
        client.infer(model, [tensor], headers=auth())
    status, _, _ = raw_request("GET", "/v2/health/live")
    assert status == 200
    still_serves(runtime, model, binary_model)
