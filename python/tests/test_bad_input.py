"""Bad input to local scoring raises clear, typed Python exceptions naming the column."""

import numpy as np
import pandas as pd
import pytest

import riskserve


@pytest.fixture(scope="module")
def model(xgb_booster):
    return riskserve.load_model(xgb_booster)


@pytest.fixture(scope="module")
def pipeline(root):
    return riskserve.load_pipeline(root / "examples/german-credit/xgboost/pipeline.json")


@pytest.fixture(scope="module")
def rows(root):
    return pd.read_csv(root / "examples/german-credit/xgboost/input.csv", dtype=str, keep_default_na=False)


def test_missing_columns_are_named(model, binary_data):
    X, _ = binary_data
    frame = pd.DataFrame(X, columns=model.feature_names).drop(columns=["x3", "x5"])
    with pytest.raises(riskserve.InvalidInput, match="missing columns 'x3', 'x5'") as caught:
        model.predict(frame)
    assert caught.value.columns == ["x3", "x5"]
    assert isinstance(caught.value, ValueError) and caught.value.code == "invalid_input"


def test_wrong_width_of_an_array(model):
    with pytest.raises(riskserve.InvalidInput, match="the array has 3 columns; the model takes 8"):
        model.predict(np.zeros((2, 3)))


def test_text_in_a_numeric_column_names_row_and_field(model, binary_data):
    X, _ = binary_data
    frame = pd.DataFrame(X[:3], columns=model.feature_names).astype(object)
    frame.loc[1, "x2"] = "lots"
    with pytest.raises(riskserve.InvalidInput, match=r"row 1, field `x2`: \"lots\" is not a number") as caught:
        model.predict(frame)
    assert caught.value.errors == [(1, "x2", '"lots" is not a number')]


def test_nan_and_none_are_missing_values_as_in_xgboost(model, xgb_booster, binary_data):
    X, _ = binary_data
    frame = pd.DataFrame(X[:5], columns=model.feature_names).astype(object)
    frame.loc[0, "x0"] = None
    expected_rows = X[:5].copy()
    expected_rows[0, 0] = np.nan
    expected = xgb_booster.inplace_predict(expected_rows)
    assert np.max(np.abs(model.predict(frame)["probability"].to_numpy() - expected)) <= 1e-6


def test_pipeline_errors_name_the_field(pipeline, rows):
    bad = rows.head(3).copy()
    bad.loc[2, "duration_in_month"] = "long"
    bad.loc[0, "credit_amount"] = "much"
    with pytest.raises(riskserve.InvalidInput, match=r"row 0, field `credit_amount`: \"much\" is not a number "
                                                     r"\(and 1 more\)") as caught:
        pipeline.predict(bad)
    assert caught.value.errors == [(0, "credit_amount", '"much" is not a number'),
                                   (2, "duration_in_month", '"long" is not a number')]
    # This pipeline reads an unknown category as missing (`out_of_range: missing`), as it declares.
    unknown = rows.head(1).copy()
    unknown.loc[0, "purpose"] = "a yacht"
    assert pipeline.predict(unknown)["grade"].iloc[0] in "ABCDE"
    with pytest.raises(riskserve.InvalidInput, match="missing column 'purpose'"):
        pipeline.predict(rows.drop(columns=["purpose"]))


def test_unsupported_objects_and_cells(model, binary_data):
    X, _ = binary_data
    with pytest.raises(TypeError, match="expected a DataFrame"):
        model.predict("x0,x1")
    frame = pd.DataFrame(X[:2], columns=model.feature_names).astype(object)
    frame.loc[0, "x1"] = object()
    with pytest.raises(riskserve.InvalidInput, match=r"row 0, field `x1`: \"<object object at .*\" is not a number"):
        model.predict(frame)


def test_bad_model_files(tmp_path):
    with pytest.raises(riskserve.InvalidArtifact, match="not XGBoost JSON or UBJSON"):
        riskserve.load_model(b"hello")
    with pytest.raises(riskserve.InvalidArtifact):
        riskserve.load_model(b'{"learner": 1}', format="xgboost-json")
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        riskserve.load_model(b"x", format="csv")
    with pytest.raises(TypeError, match="load_model takes a path"):
        riskserve.load_model(3.5)
    spec = tmp_path / "pipeline.json"
    spec.write_text('{"model": {"file": "absent.json"}}')
    with pytest.raises(riskserve.InvalidArtifact):
        riskserve.load_pipeline(spec)


def test_reprs(model, pipeline, rows):
    assert "xgboost model" in repr(model) and "<table>" in model._repr_html_()
    assert "pipeline" in repr(pipeline)
    explanation = pipeline.explain(rows.head(3))
    html = explanation._repr_html_()
    assert "top reason" in html and "riskserve.Explanation" in html
