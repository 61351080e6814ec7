"""Every format deployed the SageMaker way answers as the library that wrote it (the committed fixtures of
scripts/fixtures.sh: LightGBM, scikit-learn through ONNX, XGBoost multi-class, a PMML scorecard)."""

import csv
import json

import numpy as np
import pytest

from conftest import REPO, deploy, raw_request, tar_gz

FIXTURES = REPO / "fixtures"
CASES = {
    "lgbm_binary_nan": "lightgbm-inference",
    "lgbm_multiclass": "lightgbm-inference",
    "onnx_gradient_boosting_binary": "sagemaker-scikit-learn:1.2-1",
    "onnx_lightgbm_classifier": "onnx-runtime",
    "xgb3_multi_softprob_json": "sagemaker-xgboost:1.7-1",
    "pmml_dmg_sample_scorecard": "pmml-scorecard",
}


def manifest_case(name):
    cases = json.loads((FIXTURES / "manifest.json").read_text())["cases"]
    return next(case for case in cases if case["name"] == name)


def read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def close(column, expected, actual):
    expected = float(expected)
    if column.startswith("probability"):
        return abs(expected - actual) <= 1e-6
    return abs(expected - actual) <= 1e-5 * max(abs(expected), 1.0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_formats_answer_as_their_library(sagemaker, runtime, work, name):
    case = manifest_case(name)
    model_path = FIXTURES / case["model"]
    file_name = "xgboost-model" if case["format"].startswith("xgboost") else model_path.name
    archive = tar_gz(work / f"{name}.tar.gz", {file_name: model_path.read_bytes()})
    endpoint = name.replace("_", "-")
    deploy(sagemaker, endpoint, archive, image=CASES[name])
    status, _, body = raw_request("GET", f"/api/v1/models/{endpoint}")
    assert status == 200, body
    inputs = json.loads(body)["inputs"]
    header, rows = read_csv(FIXTURES / case["input"])
    expected_header, expected_rows = read_csv(FIXTURES / case["expected"])
    rows, expected_rows = rows[:40], expected_rows[:40]
    if set(inputs) <= set(header):
        positions = [header.index(field) for field in inputs]
        rows = [[row[position] for position in positions] for row in rows]
    lines = "\n".join(",".join(f'"{cell}"' if "," in cell else cell for cell in row) for row in rows)
    answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=lines)
    predictions = json.loads(answer["Body"].read())["predictions"]
    assert len(predictions) == len(expected_rows)
    for index, (prediction, expected) in enumerate(zip(predictions, expected_rows)):
        values = np.atleast_1d(prediction["score"]).tolist()
        for column, (header_name, want) in enumerate(zip(expected_header, expected)):
            if column >= len(values):
                break
            assert close(header_name, want, values[column]), (name, index, header_name, want, values[column])
    sagemaker.delete_endpoint(EndpointName=endpoint)
