"""The client SDK against a real server (`riskserve.Server.start`): every call, and the server's errors as typed
exceptions."""

import time

import numpy as np
import pandas as pd
import pytest

import riskserve


@pytest.fixture(scope="module")
def rows(root):
    return pd.read_csv(root / "examples/german-credit/xgboost/input.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def pipeline(root):
    return riskserve.load_pipeline(root / "examples/german-credit/xgboost/pipeline.json")


@pytest.fixture(scope="module")
def credit(session, pipeline):
    endpoint = session.deploy(pipeline, name="credit", instances=2, tags={"team": "cards"})
    yield endpoint
    try:
        endpoint.delete()
    except riskserve.NotFound:
        pass


def test_server_and_session(server, session):
    assert server.running and server.url.startswith("http://127.0.0.1:")
    assert "riskserve.Server" in server._repr_html_()
    assert repr(session) == f"<riskserve.Session {server.url}>"


def test_deploy_predict_equals_local(credit, pipeline, rows):
    assert credit.status == "InService"
    variants = credit.variants
    assert list(variants["name"]) == ["main"] and list(variants["instances"]) == [2]
    remote = credit.predict(rows)
    local = pipeline.predict(rows)
    assert list(remote.columns) == ["probability", "score", "grade", "decision"]
    assert np.max(np.abs(remote["probability"].to_numpy() - local["probability"].to_numpy())) <= 1e-12
    assert list(remote["grade"]) == list(local["grade"]) and list(remote["decision"]) == list(local["decision"])
    html = credit._repr_html_()
    assert "InService" in html and "credit" in html


def test_explain_equals_local(credit, pipeline, rows):
    remote = credit.explain(rows.head(5))
    local = pipeline.explain(rows.head(5))
    columns = list(local.contributions.columns)
    assert np.allclose(remote.contributions[columns].to_numpy(), local.contributions.to_numpy(), atol=1e-12)
    assert list(remote.reasons["code"]) == list(local.reasons["code"])
    assert list(remote.reasons.columns) == ["row", "rank", "code", "feature", "text", "contribution"]


def test_bare_models_deploy_from_objects(session, xgb_booster, binary_data, capsys):
    X, _ = binary_data
    endpoint = session.deploy(xgb_booster, name="bare-xgb", progress=True)
    assert "endpoint bare-xgb: InService" in capsys.readouterr().err
    remote = endpoint.predict(X[:50])
    expected = xgb_booster.inplace_predict(X[:50])
    assert np.max(np.abs(remote["value"].to_numpy() - expected)) <= 1e-6
    frame = pd.DataFrame(X[:5], columns=[f"x{i}" for i in range(8)])
    assert np.max(np.abs(endpoint.predict(frame)["value"].to_numpy() - expected[:5])) <= 1e-6
    assert endpoint.explain(frame).contributions.shape == (5, 9)
    model_name = endpoint.variants["model"].iloc[0]
    with pytest.raises(riskserve.InUse) as caught:
        session.delete_model(model_name)
    assert isinstance(caught.value, riskserve.Conflict) and caught.value.status == 409
    endpoint.delete()
    with pytest.raises(riskserve.NotFound):
        session.endpoint("bare-xgb")
    session.delete_model(model_name)
    assert model_name not in set(session.models()["name"])


def test_blue_green_update_weights_and_scale(session, credit, root, rows):
    scorecard = riskserve.load_pipeline(root / "examples/german-credit/scorecard/pipeline.json")
    credit.update(scorecard, instances=1)
    assert list(credit.variants["name"]) == ["blue"]
    expected = scorecard.predict(pd.read_csv(root / "examples/german-credit/scorecard/input.csv", dtype=str,
                                             keep_default_na=False).replace({"": None}))
    scorecard_rows = pd.read_csv(root / "examples/german-credit/scorecard/input.csv", dtype=str,
                                 keep_default_na=False)
    assert list(credit.predict(scorecard_rows)["score"]) == list(expected["score"])
    xgboost_pipeline = riskserve.load_pipeline(root / "examples/german-credit/xgboost/pipeline.json")
    credit.update(variants=[riskserve.Variant(scorecard, name="blue", weight=0.9),
                            riskserve.Variant(xgboost_pipeline, name="green", weight=0.1)])
    assert sorted(credit.variants["name"]) == ["blue", "green"]
    credit.set_weights({"blue": 0.0, "green": 1.0})
    weights = dict(zip(credit.variants["name"], credit.variants["weight"]))
    assert weights == {"blue": 0.0, "green": 1.0}
    assert "probability" in credit.predict(rows.head(2), variant="green")
    credit.scale("green", 3)
    assert dict(zip(credit.variants["name"], credit.variants["instances"]))["green"] == 3


def test_metrics_audit_cost_and_listings(session, credit, rows):
    for _ in range(3):
        credit.predict(rows.head(2))
    # The history samples every variant once a second: wait for the sample that saw these invocations.
    for _ in range(50):
        metrics = credit.metrics("invocations", stat="sum", start="-10m")
        if metrics["value"].sum() >= 3:
            break
        time.sleep(0.1)
    assert list(metrics.columns) == ["timestamp", "value"] and metrics["value"].sum() >= 3
    assert metrics.attrs["metric"] == "invocations"
    audit = session.audit(resource="Endpoint/credit", action="sagemaker:InvokeEndpoint")
    assert len(audit) >= 3 and set(audit["outcome"]) == {"allowed"}
    assert {"time", "principal", "action", "resource", "outcome", "hash"} <= set(audit.columns)
    assert session.verify_audit()
    cost = session.cost(by="endpoint")
    assert cost["key"].iloc[-1] == "TOTAL" and "credit" in set(cost["key"])
    assert {"instance_hours", "invocations", "cost"} <= set(cost.columns)
    endpoints = session.endpoints()
    assert "credit" in set(endpoints["name"])
    assert len(session.models()) >= 1


def test_server_errors_are_typed(session, credit, rows, server):
    with pytest.raises(riskserve.NotFound) as caught:
        session.deploy("no-such-model", name="orphan")
    with pytest.raises(riskserve.NotFound) as caught:
        session.endpoint("no-such-endpoint")
    assert caught.value.status == 404 and caught.value.code == "not_found"
    with pytest.raises(riskserve.InvalidInput) as caught:
        credit.predict(rows.head(2).assign(credit_amount="much"))
    assert caught.value.status == 400 and "credit_amount" in str(caught.value)
    with pytest.raises(riskserve.ValidationError) as caught:
        session.deploy(credit.variants["model"].iloc[0], name="bad name!")
    assert caught.value.code == "validation_error"
    with pytest.raises(riskserve.AlreadyExists) as caught:
        session.deploy(credit.variants["model"].iloc[0], name="credit")
    assert isinstance(caught.value, riskserve.Conflict) and caught.value.status == 409
    with pytest.raises(riskserve.InvalidArtifact):
        session.register(b"not a model")


def test_authentication_and_authorization_failures(server, session, credit, rows):
    with pytest.raises(riskserve.AuthenticationFailed) as caught:
        riskserve.Session(server.url, "rsk_wrong_token").endpoints()
    assert caught.value.status == 401
    with pytest.raises(riskserve.AuthenticationFailed):
        riskserve.Session(server.url).endpoints()
    session.create_user("cards-app", roles=["invoker"])
    invoker = riskserve.Session(server.url, session.create_token("cards-app"))
    assert "probability" in riskserve.Endpoint(invoker, "credit").predict(rows.head(1))
    with pytest.raises(riskserve.AccessDenied) as caught:
        invoker.deploy("anything", name="not-allowed")
    assert caught.value.status == 403 and caught.value.code == "access_denied"


def test_connection_errors_are_clear():
    with pytest.raises(ConnectionError, match="cannot reach riskserve at http://127.0.0.1:9"):
        riskserve.Session("http://127.0.0.1:9", "token").endpoints()
