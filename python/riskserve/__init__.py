"""riskserve from Python: exact local scoring of XGBoost, LightGBM, scikit-learn (ONNX), ONNX and PMML models and of
pipelines (probability, score, grade, decision, reason codes); the embedded server; a client SDK over the native REST
API.

    import riskserve
    model = riskserve.load_model(booster)            # or a path, a LightGBM Booster, a scikit-learn estimator
    model.predict(df)                                # a DataFrame, the library's own numbers
    server = riskserve.Server.start(data_dir="data") # the same server as `riskserve serve`
    endpoint = server.session().deploy(model, name="credit")
    endpoint.predict(df)
"""

from riskserve.errors import (
    AccessDenied,
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    InUse,
    InvalidArtifact,
    InvalidInput,
    InvalidState,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RiskserveError,
    ServerError,
    Unavailable,
    UnsupportedMediaType,
    ValidationError,
)
from riskserve.local import Explanation, Field, Model, load_model, load_pipeline
from riskserve.client import Endpoint, Session, Variant
from riskserve.server import Server

__version__ = "0.0.0"

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "AuthenticationFailed",
    "Conflict",
    "Endpoint",
    "Explanation",
    "Field",
    "InUse",
    "InvalidArtifact",
    "InvalidInput",
    "InvalidState",
    "Model",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RiskserveError",
    "Server",
    "ServerError",
    "Session",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationError",
    "Variant",
    "load_model",
    "load_pipeline",
]
