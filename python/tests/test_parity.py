"""Local scoring equals the training libraries' own predictions (expected values computed here, by the libraries)."""

import json
import threading
import time

import numpy as np
import pandas as pd
import pytest

import riskserve

# The Rust parity test's tolerance on probabilities (crates/riskserve-model/tests/parity.rs).
PROBABILITY_TOLERANCE = 1e-6


def report(name, expected, actual):
    difference = float(np.max(np.abs(np.asarray(expected, dtype=np.float64) - np.asarray(actual, dtype=np.float64))))
    print(f"\n{name}: max abs difference {difference:.3e} over {np.size(expected)} values")
    return difference


def test_xgboost_booster_file_and_sklearn_api(binary_data, xgb_booster, tmp_path):
    import xgboost as xgb

    X, y = binary_data
    expected = xgb_booster.inplace_predict(X)
    model = riskserve.load_model(xgb_booster)
    assert model.kind == "xgboost" and model.feature_names == [f"x{i}" for i in range(8)]
    assert report("xgboost Booster", expected, model.predict(X)["probability"]) <= PROBABILITY_TOLERANCE
    for suffix in ("json", "ubj"):
        path = tmp_path / f"model.{suffix}"
        xgb_booster.save_model(path)
        from_file = riskserve.load_model(path).predict(X)["probability"]
        assert report(f"xgboost {suffix} file", expected, from_file) <= PROBABILITY_TOLERANCE
    classifier = xgb.XGBClassifier(n_estimators=30, max_depth=4, n_jobs=1).fit(X, y)
    expected = classifier.predict_proba(X)[:, 1]
    actual = riskserve.load_model(classifier).predict(X)["probability"]
    assert report("xgboost XGBClassifier", expected, actual) <= PROBABILITY_TOLERANCE


def test_xgboost_multiclass_and_regression(binary_data):
    import xgboost as xgb

    X, y = binary_data
    classes = (np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 1]) > 0.5).astype(int)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 4, "nthread": 1},
                        xgb.DMatrix(X, label=classes), 20)
    actual = riskserve.load_model(booster).predict(X)
    assert list(actual.columns) == ["probability_0", "probability_1", "probability_2"]
    assert report("xgboost multi:softprob", booster.inplace_predict(X), actual.to_numpy()) <= PROBABILITY_TOLERANCE
    regression = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "nthread": 1},
                           xgb.DMatrix(X, label=np.nan_to_num(X[:, 2]) * 3.0), 20)
    expected = regression.inplace_predict(X)
    actual = riskserve.load_model(regression).predict(X).iloc[:, 0].to_numpy()
    assert np.all(np.abs(expected - actual) <= 1e-5 * np.maximum(np.abs(expected), 1.0))


def test_lightgbm_booster_file_and_categories(binary_data, tmp_path):
    import lightgbm as lgb

    X, y = binary_data
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(X, label=y), 50)
    expected = booster.predict(X)
    assert report("lightgbm Booster", expected, riskserve.load_model(booster).predict(X)["probability"]) == 0.0
    path = tmp_path / "model.txt"
    booster.save_model(path)
    assert report("lightgbm file", expected, riskserve.load_model(path).predict(X)["probability"]) == 0.0

    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    frame["colour"] = pd.Categorical(np.where(np.nan_to_num(X[:, 4]) > 0, "red",
                                              np.where(np.nan_to_num(X[:, 5]) > 0, "green", "blue")))
    classifier = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, n_jobs=1).fit(frame, y)
    expected = classifier.predict_proba(frame)[:, 1]
    model = riskserve.load_model(classifier)
    assert [field.kind for field in model.fields][-1] == "categorical"
    actual = model.predict(frame)["probability"]
    assert report("lightgbm LGBMClassifier with a pandas category", expected, actual) <= 1e-12


@pytest.mark.parametrize("kind", ["gradient_boosting", "random_forest", "logistic_regression", "scaled_pipeline"])
def test_sklearn_through_onnx(binary_data, kind):
    import onnxruntime
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = binary_data
    X = np.nan_to_num(X)  # scikit-learn's estimators here take no NaN
    estimator = {
        "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0),
        "random_forest": lambda: RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
        "logistic_regression": lambda: LogisticRegression(max_iter=500),
        "scaled_pipeline": lambda: make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)),
    }[kind]().fit(X, y)
    model = riskserve.load_model(estimator)
    assert model.kind == "sklearn"
    actual = model.predict(X)["probability"].to_numpy()
    # The converted graph as onnxruntime scores it (float32 inputs, as skl2onnx converts them).
    session = onnxruntime.InferenceSession(model._files["model.onnx"], providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = session.run(None, {name: X.astype(np.float32)})
    onnx_probability = np.asarray(outputs[1])[:, 1]
    assert report(f"sklearn {kind} vs onnxruntime", onnx_probability, actual) <= PROBABILITY_TOLERANCE
    # scikit-learn itself works in float64; the converted model reads float32 inputs, hence a looser bound.
    assert report(f"sklearn {kind} vs predict_proba", estimator.predict_proba(X)[:, 1], actual) <= 1e-4
    # An onnx.ModelProto goes in as it is.
    import onnx

    proto = onnx.load_from_string(model._files["model.onnx"])
    assert np.array_equal(riskserve.load_model(proto).predict(X)["probability"].to_numpy(), actual)


def test_pmml_scorecard_equals_jpmml(root):
    model = riskserve.load_model(root / "fixtures/pmml/germancredit_points_above.pmml")
    assert model.kind == "pmml"
    rows = pd.read_csv(root / "fixtures/pmml/germancredit.input.csv", dtype=str, keep_default_na=False)
    rows = rows.replace({"": None})
    expected = pd.read_csv(root / "fixtures/pmml/germancredit_points_above.expected.csv", keep_default_na=False)
    actual = model.predict(rows)
    assert np.allclose(actual["score"].to_numpy(dtype=float), expected["score"].to_numpy(dtype=float), rtol=1e-5)


@pytest.mark.parametrize("example", ["xgboost", "scorecard"])
def test_pipelines_equal_the_examples_expected_values(root, example):
    folder = root / "examples/german-credit" / example
    pipeline = riskserve.load_pipeline(folder / "pipeline.json")
    assert pipeline.is_pipeline and pipeline.kind == "pipeline"
    rows = pd.read_csv(folder / "input.csv", dtype=str, keep_default_na=False).replace({"": None})
    expected = [json.loads(line) for line in (folder / "expected.jsonl").read_text().splitlines()]
    actual = pipeline.predict(rows)
    assert set(actual.columns) == {"probability", "score", "grade", "decision"}
    assert report(f"pipeline {example}", [e["probability"] for e in expected], actual["probability"]) <= PROBABILITY_TOLERANCE
    assert list(actual["grade"]) == [e["grade"] for e in expected]
    assert list(actual["decision"]) == [e["decision"] for e in expected]
    explanation = pipeline.explain(rows)
    assert explanation.reasons.groupby("row").size().max() <= 4
    if example == "xgboost":
        margins = explanation.contributions.sum(axis=1).to_numpy()
        assert report("pipeline contributions sum", [e["margin"] for e in expected], margins) <= 1e-5
        for name, value in expected[0]["contributions"].items():
            assert abs(explanation.contributions.iloc[0][name] - value) <= 1e-6, name
        assert [r["code"] for r in expected[0]["reasons"]] == list(explanation.reasons_of(0)["code"])


def test_treeshap_equals_xgboost_pred_contribs(binary_data, xgb_booster):
    import xgboost as xgb

    X, _ = binary_data
    rows = X[:300]
    names = [f"x{i}" for i in range(X.shape[1])]
    expected = xgb_booster.predict(xgb.DMatrix(rows, feature_names=names), pred_contribs=True)
    explanation = riskserve.load_model(xgb_booster).explain(pd.DataFrame(rows, columns=names))
    assert list(explanation.contributions.columns) == names + ["bias"]
    assert report("TreeSHAP vs pred_contribs", expected, explanation.contributions.to_numpy()) <= 1e-5


def test_arrays_go_in_as_they_are(binary_data, xgb_booster):
    X, _ = binary_data
    model = riskserve.load_model(xgb_booster)
    expected = model.predict(X)["probability"].to_numpy()
    read_only = np.ascontiguousarray(X)
    read_only.flags.writeable = False   # read in place: no copy is needed, and none is written
    assert np.array_equal(model.predict(read_only)["probability"].to_numpy(), expected)
    assert np.array_equal(model.predict(np.asfortranarray(X))["probability"].to_numpy(), expected)
    assert np.array_equal(model.predict(X.astype(np.float32))["probability"].to_numpy(), expected)
    assert np.array_equal(model.predict(X, threads=2)["probability"].to_numpy(), expected)
    frame = pd.DataFrame(X, columns=model.feature_names)
    assert np.array_equal(model.predict(frame[model.feature_names[::-1]])["probability"].to_numpy(), expected)
    assert np.array_equal(model.predict(frame.to_dict("records"))["probability"].to_numpy(), expected)


def test_the_gil_is_released_while_scoring(binary_data, xgb_booster):
    X, _ = binary_data
    model = riskserve.load_model(xgb_booster)
    rows = np.ascontiguousarray(np.tile(X, (100, 1)))   # 300,000 rows: long enough to look inside the call
    stamps = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    model.predict(rows)
    end = time.perf_counter()
    stop.set()
    counter.join()
    # Python hands the GIL over only between bytecodes: had the call held it, the counting thread could not have
    # run in the middle of the call at all.
    margin = (end - start) / 4
    inside = [stamp for stamp in stamps if start + margin < stamp < end - margin]
    assert end - start > 0.02, "the call was too short to look inside"
    assert len(inside) > 100, (len(inside), end - start)
