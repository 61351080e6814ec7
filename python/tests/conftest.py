"""Shared fixtures: the repository's paths, training data, and one real riskserve server (`riskserve.Server.start`:
`python -m riskserve serve` from the installed wheel, on a free loopback port, temporary data folder)."""

import os
from pathlib import Path

import numpy as np
import pytest

import riskserve

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "rsk_python_tests_token_0123456789"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def server():
    with riskserve.Server.start(token=TOKEN) as server:
        yield server
        assert server.running, server.log()[-3000:]


@pytest.fixture(scope="session")
def session(server):
    return server.session()


@pytest.fixture(scope="session")
def binary_data():
    """A binary problem with missing values: 3,000 rows of 8 features."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(3000, 8))
    logit = X[:, 0] + 0.8 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + 0.3 * rng.normal(size=3000)
    y = (logit > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, y


@pytest.fixture(scope="session")
def xgb_booster(binary_data):
    import xgboost as xgb

    X, y = binary_data
    return xgb.train({"objective": "binary:logistic", "max_depth": 5, "eta": 0.2, "nthread": 1},
                     xgb.DMatrix(X, label=y, feature_names=[f"x{i}" for i in range(X.shape[1])]), 60)


def pytest_report_header(config):
    return f"riskserve {riskserve.__version__} from {os.path.dirname(riskserve.__file__)}"
