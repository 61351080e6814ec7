"""Local, in-process scoring: models and pipelines loaded into riskserve's native scorer (the same code the server
runs), scored without the GIL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from riskserve import _native
from riskserve._html import table_html
from riskserve.errors import InvalidArtifact, InvalidInput

_FORMATS = ("xgboost-json", "xgboost-ubj", "lightgbm", "onnx", "pmml")


@dataclass(frozen=True)
class Field:
    """An input field: its name, kind (numeric, categorical, boolean), whether it is required, its categories."""

    name: str
    kind: str
    required: bool
    categories: tuple
    description: Optional[str] = None


def _rows_error(error: Exception) -> InvalidInput:
    message, details = error.args[0], error.args[1] if len(error.args) > 1 else []
    return InvalidInput(str(message), errors=[tuple(detail) for detail in details])


class Model:
    """A loaded model or pipeline. Immutable and thread-safe; `predict` and `explain` release the GIL."""

    def __init__(self, scorer, files: Dict[str, bytes], spec: Optional[bytes], name: str, kind: str):
        self._scorer = scorer
        self._files = files
        self._spec = spec
        self.name = name
        #: "xgboost", "lightgbm", "sklearn", "onnx", "pmml", or "pipeline".
        self.kind = kind
        self.fields: List[Field] = [Field(n, k, r, tuple(c), d) for (n, k, r, c, d) in scorer.fields]
        #: The columns of `predict`'s answer.
        self.output_columns: List[str] = list(scorer.output_columns)

    @property
    def is_pipeline(self) -> bool:
        return not self._scorer.bare

    @property
    def feature_names(self) -> List[str]:
        return [field.name for field in self.fields]

    # -- scoring ---------------------------------------------------------------------------------------------------

    def predict(self, data, *, threads: int = 1, as_frame: bool = True):
        """Scores rows: a DataFrame (columns by name; others ignored), a 2-D numpy array (columns by position; a
        C-contiguous float64 array is read in place), a dict of columns or a list of dicts. NaN or None is a missing
        value. Answers a DataFrame with the model's value columns (`probability` for a binary classifier), or a
        pipeline's probability, score, grade and decision. `as_frame=False` answers a bare model's values as a numpy
        array (rows × values) without building a DataFrame; `threads` splits large batches over threads."""
        if isinstance(data, np.ndarray) and self._scorer.takes_arrays and data.ndim == 2 and data.dtype.kind in "fiub":
            array = np.ascontiguousarray(data, dtype=np.float64)
            self._check_width(array.shape[1])
            try:
                values = self._scorer.predict_array(array, threads)
            except _native.RowsError as error:
                raise _rows_error(error) from None
            return pd.DataFrame(values, columns=self.output_columns) if as_frame else values
        frame = self._frame(data)
        if self._scorer.takes_arrays and all(_is_numeric(frame[name]) for name in self.feature_names):
            array = np.ascontiguousarray(frame[self.feature_names].to_numpy(dtype=np.float64))
            try:
                values = self._scorer.predict_array(array, threads)
            except _native.RowsError as error:
                raise _rows_error(error) from None
            return pd.DataFrame(values, columns=self.output_columns, index=frame.index) if as_frame else values
        answer = self._score(frame, explain=False, top_reasons=0)
        if not as_frame and not self.is_pipeline:
            return answer["values"]
        return self._outcomes(answer, frame.index)

    def explain(self, data, *, top_reasons: int = 4) -> "Explanation":
        """Scores and explains rows: exact TreeSHAP contributions in margin space per input field (plus `bias`; they
        sum to the margin) and the principal reasons, most adverse first (pipelines with reason codes)."""
        frame = self._frame(data)
        answer = self._score(frame, explain=True, top_reasons=top_reasons)
        predictions = self._outcomes(answer, frame.index)
        contributions = pd.DataFrame(answer["contributions"], columns=answer["contribution_names"], index=frame.index)
        records = []
        for position, (row, reasons) in enumerate(zip(frame.index, answer["reasons"])):
            for rank, (code, feature, text, contribution) in enumerate(reasons, start=1):
                records.append({"row": row, "rank": rank, "code": code, "feature": feature, "text": text,
                                "contribution": contribution})
        reasons = pd.DataFrame(records, columns=["row", "rank", "code", "feature", "text", "contribution"])
        return Explanation(predictions, contributions, reasons)

    # -- internals -------------------------------------------------------------------------------------------------

    def _check_width(self, width: int) -> None:
        if width != len(self.fields):
            raise InvalidInput(f"the array has {width} columns; the model takes {len(self.fields)}: "
                               f"{', '.join(self.feature_names)}")

    def _frame(self, data) -> pd.DataFrame:
        if isinstance(data, pd.DataFrame):
            frame = data
        elif isinstance(data, pd.Series):
            frame = data.to_frame().T
        elif isinstance(data, np.ndarray):
            if data.ndim == 1:
                data = data.reshape(1, -1)
            if data.ndim != 2:
                raise InvalidInput(f"expected a 2-D array of rows, got {data.ndim} dimensions")
            self._check_width(data.shape[1])
            frame = pd.DataFrame(data, columns=self.feature_names)
        elif isinstance(data, dict):
            frame = pd.DataFrame(data if any(np.ndim(v) for v in data.values()) else [data])
        elif isinstance(data, list):
            frame = pd.DataFrame(data)
        else:
            raise TypeError(f"expected a DataFrame, a numpy array, a dict of columns or a list of rows, "
                            f"not {type(data).__name__}")
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            required = [field.name for field in self.fields if field.name in missing and field.required]
            present = [str(column) for column in frame.columns]
            raise InvalidInput(
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}"
                f" (the model takes {', '.join(self.feature_names)}; got {', '.join(present) or 'none'})",
                errors=[(None, name, "missing column" + (" (required)" if name in required else ""))
                        for name in missing])
        return frame

    def _score(self, frame: pd.DataFrame, *, explain: bool, top_reasons: int) -> dict:
        columns = [_column(frame[field.name], field) for field in self.fields]
        try:
            return self._scorer.score_columns(columns, len(frame), explain, top_reasons)
        except _native.RowsError as error:
            raise _rows_error(error) from None
        except TypeError as error:
            raise InvalidInput(str(error)) from None

    def _outcomes(self, answer: dict, index) -> pd.DataFrame:
        if not self.is_pipeline:
            return pd.DataFrame(answer["values"], columns=self.output_columns[: answer["values"].shape[1]], index=index)
        frame = pd.DataFrame(index=index)
        for name in ("probability", "score", "grade", "decision"):
            if name in answer:
                frame[name] = answer[name]
        return frame

    def __repr__(self) -> str:
        what = "pipeline" if self.is_pipeline else f"{self.kind} model"
        return f"<riskserve.Model {self.name!r}: {what}, {len(self.fields)} inputs → {', '.join(self.output_columns)}>"

    def _repr_html_(self) -> str:
        rows = [[f.name, f.kind, "yes" if f.required else "", ", ".join(f.categories[:8]) +
                 (" …" if len(f.categories) > 8 else "")] for f in self.fields]
        title = (f"riskserve.Model <b>{self.name}</b> ({'pipeline' if self.is_pipeline else self.kind}) → "
                 f"{', '.join(self.output_columns)}")
        return table_html(title, ["input", "kind", "required", "categories"], rows)


class Explanation:
    """What `explain` answers: `predictions` (as `predict`), `contributions` (rows × fields + bias, margin space)
    and `reasons` (one line per row and rank: code, feature, text, contribution)."""

    def __init__(self, predictions: pd.DataFrame, contributions: pd.DataFrame, reasons: pd.DataFrame):
        self.predictions = predictions
        self.contributions = contributions
        self.reasons = reasons

    def reasons_of(self, row) -> pd.DataFrame:
        """The reasons of one row (by its index label)."""
        return self.reasons[self.reasons["row"] == row].reset_index(drop=True)

    def plot(self, row, ax=None, top: int = 10):
        """A horizontal bar chart of one row's largest contributions (matplotlib), reasons' codes in the labels."""
        import matplotlib.pyplot as plt

        values = self.contributions.loc[row].drop("bias")
        values = values.reindex(values.abs().sort_values(ascending=False).index)[:top][::-1]
        codes = {r.feature: r.code for r in self.reasons_of(row).itertuples()}
        labels = [f"{codes[name]} {name}" if name in codes else name for name in values.index]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.35 * len(values) + 1))
        ax.barh(labels, values.to_numpy(), color=["#c0392b" if v > 0 else "#2e86c1" for v in values])
        ax.set_xlabel("contribution (margin space; > 0 raises the risk)")
        ax.set_title(f"row {row}")
        return ax

    def __repr__(self) -> str:
        return (f"<riskserve.Explanation: {len(self.predictions)} rows, {self.contributions.shape[1] - 1} fields, "
                f"{len(self.reasons)} reasons>")

    def _repr_html_(self) -> str:
        head = self.predictions.head(10).copy()
        if len(self.reasons):
            top = self.reasons[self.reasons["rank"] == 1].set_index("row")
            head["top reason"] = [f"{top.loc[i, 'code']} {top.loc[i, 'text']}" if i in top.index else ""
                                  for i in head.index]
        return ("<div><b>riskserve.Explanation</b> " + f"({len(self.predictions)} rows; "
                "<code>.contributions</code>, <code>.reasons</code>, <code>.plot(row)</code>)" + head.to_html() +
                "</div>")


def _is_numeric(series: pd.Series) -> bool:
    return series.dtype.kind in "fiub" and not isinstance(series.dtype, pd.CategoricalDtype)


def _column(series: pd.Series, field: Field):
    """A column as the native scorer takes it: a float64 array for numbers, else a list of cells."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return [None if pd.isna(value) else (value if isinstance(value, str) else _scalar(value))
                for value in series.astype(object)]
    if dtype.kind in "fiu" and field.kind != "boolean":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if dtype.kind == "b":
        return [bool(value) for value in series.to_numpy()]
    return [_scalar(value) for value in series.astype(object)]


def _scalar(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


# -- loading -------------------------------------------------------------------------------------------------------

def load_model(source: Any, *, format: Optional[str] = None, name: Optional[str] = None,
               sample=None) -> Model:
    """Loads a model: a path or bytes (XGBoost JSON/UBJSON, LightGBM text, ONNX, PMML; the format is detected from
    the content unless given), an `xgboost.Booster` or `XGBModel`, a `lightgbm.Booster` or `LGBMModel`, an
    `onnx.ModelProto`, or a fitted scikit-learn estimator or Pipeline (converted with skl2onnx, float32 inputs, as
    onnxruntime scores it; `sample`, a few rows, gives the input width when the estimator does not record it)."""
    if format is not None and format not in _FORMATS:
        raise ValueError(f"unknown format {format!r}: expected one of {', '.join(_FORMATS)}")
    data, kind, file_name = _model_bytes(source, sample)
    try:
        scorer = _native.Scorer.from_model(data, format)
    except _native.ModelLoadError as error:
        raise InvalidArtifact(str(error)) from None
    if kind is None:
        kind = {b"<": "pmml", b"{": "xgboost", b"t": "lightgbm"}.get(data.lstrip()[:1], "onnx")
    return Model(scorer, {file_name: data}, None, name or Path(file_name).stem, kind)


def load_pipeline(path, *, name: Optional[str] = None) -> Model:
    """Loads a pipeline file (`pipeline.json`, docs/pipeline.md); the model files it names are read from its folder."""
    path = Path(path)
    spec = path.read_bytes()
    try:
        names = _artifact_names(spec)
    except ValueError as error:
        raise InvalidArtifact(f"{path}: {error}") from None
    files = {}
    for artifact in names:
        file = path.parent / artifact
        if not file.is_file():
            raise InvalidArtifact(f"{path}: the model file {artifact!r} is not in {path.parent}")
        files[artifact] = file.read_bytes()
    try:
        scorer = _native.Scorer.from_pipeline(spec, files)
    except _native.ModelLoadError as error:
        raise InvalidArtifact(f"{path}: {error}") from None
    return Model(scorer, files, spec, name or path.parent.name or path.stem, "pipeline")


def _artifact_names(spec: bytes) -> List[str]:
    try:
        return list(_native.Scorer.artifact_names(spec))
    except _native.ModelLoadError as error:
        raise ValueError(str(error)) from None


def _model_bytes(source, sample):
    """(bytes, kind or None, file name) of anything load_model takes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None, "model"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return path.read_bytes(), None, path.name
    module = type(source).__module__ or ""
    if module.startswith("xgboost"):
        booster = source.get_booster() if hasattr(source, "get_booster") else source
        return bytes(booster.save_raw(raw_format="json")), "xgboost", "model.json"
    if module.startswith("lightgbm"):
        booster = source.booster_ if hasattr(source, "booster_") else source
        return booster.model_to_string().encode(), "lightgbm", "model.txt"
    if module.startswith("onnx"):
        return source.SerializeToString(), "onnx", "model.onnx"
    if module.startswith("sklearn") or hasattr(source, "predict_proba") or hasattr(source, "steps"):
        return _sklearn_to_onnx(source, sample), "sklearn", "model.onnx"
    raise TypeError(f"load_model takes a path, bytes, an XGBoost or LightGBM booster, an ONNX model or a "
                    f"scikit-learn estimator, not {type(source).__module__}.{type(source).__name__}")


def _sklearn_to_onnx(estimator, sample) -> bytes:
    try:
        from skl2onnx import to_onnx
    except ImportError:
        raise ImportError("converting a scikit-learn estimator needs skl2onnx: pip install skl2onnx") from None
    width = getattr(estimator, "n_features_in_", None)
    if sample is not None:
        sample = np.asarray(sample, dtype=np.float32)[:1]
    elif width is not None:
        sample = np.zeros((1, int(width)), dtype=np.float32)
    else:
        raise ValueError("the estimator does not say its input width: pass sample=X[:1]")
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    with _boolean_attributes_as_ints():
        model = to_onnx(estimator, sample, options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    return model.SerializeToString()


class _boolean_attributes_as_ints:
    """skl2onnx 1.19 passes numpy booleans for tree ensembles' `nodes_missing_value_tracks_true`, which onnx 1.19
    refuses (the attribute is a list of ints); during a conversion, such lists are written as 0/1, as a fixed
    converter writes them (scripts/fixtures.py does the same)."""

    def __enter__(self):
        import onnx.helper

        self.original = original = onnx.helper.make_attribute

        def make_attribute(key, value, *args, **kwargs):
            if isinstance(value, (list, tuple, np.ndarray)) and any(isinstance(v, (bool, np.bool_)) for v in value):
                value = [int(v) for v in value]
            return original(key, value, *args, **kwargs)

        onnx.helper.make_attribute = make_attribute
        return self

    def __exit__(self, *exc):
        import onnx.helper

        onnx.helper.make_attribute = self.original
