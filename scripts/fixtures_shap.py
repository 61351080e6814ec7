#!/usr/bin/env python3
"""Writes the TreeSHAP parity fixtures: for fixture models of fixtures/manifest.json, the SHAP
values and expected values of `shap.TreeExplainer(model)` (feature_perturbation=
"tree_path_dependent", model_output="raw", no background data) on rows of the case's input file,
into fixtures/shap/<case>.json and fixtures/shap/manifest.json.

For XGBoost and LightGBM models with no background data, shap.TreeExplainer.shap_values hands the
rows to the library's own TreeSHAP (xgboost `pred_contribs=True`, lightgbm `pred_contrib=True`),
which also explain categorical splits; the manifest records which one answered. The values are in
margin space (log-odds for binary classifiers, raw scores otherwise).

    python scripts/fixtures_shap.py           # writes fixtures/shap/
    python scripts/fixtures_shap.py --check   # recomputes and compares with what is written

Run it through scripts/fixtures_shap.sh, which installs the pinned shap into the fixtures venv.
"""

import argparse
import csv
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
OUT = FIXTURES / "shap"
sys.path.insert(0, str(ROOT / "scripts"))

# Data rows of an input file taken per case: the first HEAD held-out rows, then every row from
# TAIL_START on (extreme values, all-missing rows, values on split thresholds), at most MAX_ROWS.
HEAD = 60
TAIL_START = 200
MAX_ROWS = 160

# (case of fixtures/manifest.json, rows cap or None); the cap keeps wide or large cases small.
CASES = [
    ("xgb3_binary_logistic_json", None),
    ("xgb3_binary_logistic_ubj", 40),
    ("xgb3_multi_softprob_json", None),
    ("xgb3_multi_softmax_json", 60),
    ("xgb3_reg_squarederror_json", None),
    ("xgb3_reg_logistic_json", 60),
    ("xgb3_binary_logitraw_json", 60),
    ("xgb3_base_score_user_json", 60),
    ("xgb3_no_feature_names_json", 60),
    ("xgb3_depth12_ubj", None),
    ("xgb3_1000_trees_ubj", 80),
    ("xgb3_categorical_json", None),
    ("xgb3_categorical_onehot_json", None),
    ("xgb17_binary_logistic_json", 60),
    ("xgb21_reg_squarederror_ubj", 60),
    ("lgbm_binary_nan", None),
    ("lgbm_binary_zero", None),
    ("lgbm_binary_none", None),
    ("lgbm_multiclass", None),
    ("lgbm_regression", None),
    ("lgbm_poisson", 60),
    ("lgbm_categorical_pandas", None),
    ("lgbm_categorical_codes", None),
    ("lgbm_300_trees_63_leaves", 80),
]


def manifest_cases():
    with open(FIXTURES / "manifest.json", encoding="utf-8") as handle:
        return {case["name"]: case for case in json.load(handle)["cases"]}


def read_input(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    return header, rows


def pick_rows(count, cap):
    rows = list(range(min(HEAD, count))) + list(range(max(HEAD, TAIL_START), count))
    limit = MAX_ROWS if cap is None else cap
    if len(rows) > limit:
        # Keep the head and an even spread of the tail.
        head = rows[: min(HEAD, limit // 2)]
        tail = rows[len(head):]
        step = len(tail) / (limit - len(head))
        rows = head + [tail[int(k * step)] for k in range(limit - len(head))]
    return rows


def number(cell):
    return math.nan if cell == "" else float(cell)


def xgboost_matrix(xgb, case, header, rows):
    """The rows as xgboost reads them: floats, or (categorical case) a DataFrame of pandas
    categories with the training levels, exactly as scripts/fixtures.py built them."""
    if "categorical" not in case["name"]:
        return xgb.DMatrix(np.array([[number(c) for c in row] for row in rows], dtype=np.float64))
    import pandas as pd
    from fixtures import Credit, UNKNOWN_CATEGORY

    credit = Credit()
    frame = {}
    for position, name in enumerate(header):
        cells = [row[position] for row in rows]
        if name in credit.categorical:
            values = [None if cell == "" else cell for cell in cells]
            frame[name] = pd.Categorical(values, categories=credit.levels[name] + [UNKNOWN_CATEGORY])
        else:
            frame[name] = np.array([number(cell) for cell in cells], dtype=np.float64)
    return xgb.DMatrix(pd.DataFrame(frame), enable_categorical=True)


def lightgbm_matrix(booster, case, header, rows):
    """The rows as lightgbm reads them; with pandas_categorical, string columns become pandas
    categories that lightgbm re-codes by the model's own lists (an unknown string is missing)."""
    if case["name"] != "lgbm_categorical_pandas":
        return np.array([[number(c) for c in row] for row in rows], dtype=np.float64)
    import pandas as pd
    from fixtures import Credit

    credit = Credit()
    frame = {}
    for position, name in enumerate(header):
        cells = [row[position] for row in rows]
        if name in credit.categorical:
            frame[name] = pd.Series([None if cell == "" else cell for cell in cells], dtype=object)
        else:
            frame[name] = np.array([number(cell) for cell in cells], dtype=np.float64)
    frame = pd.DataFrame(frame)
    return frame.astype({name: "category" for name in credit.categorical})


def explain(case, cap):
    import shap

    model_path = FIXTURES / case["model"]
    header, all_rows = read_input(FIXTURES / case["input"])
    picked = pick_rows(len(all_rows), cap)
    rows = [all_rows[index] for index in picked]
    if case["format"].startswith("xgboost"):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(model_path))
        data = xgboost_matrix(xgb, case, header, rows)
        library = f"xgboost {xgb.__version__} pred_contribs"
    else:
        import lightgbm as lgb

        booster = lgb.Booster(model_file=str(model_path))
        data = lightgbm_matrix(booster, case, header, rows)
        library = f"lightgbm {lgb.__version__} pred_contrib"
    explainer = shap.TreeExplainer(booster, feature_perturbation="tree_path_dependent", model_output="raw")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(explainer.shap_values(data, check_additivity=True), dtype=np.float64)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    if values.ndim == 2:
        values = values[:, :, None]
    # shap's layout is (rows, features, groups); the fixture stores rows, then groups, then features.
    values = np.transpose(values, (0, 2, 1))
    if values.shape[1] != len(expected):
        raise SystemExit(f"{case['name']}: {values.shape[1]} groups but {len(expected)} expected values")
    return {
        "case": case["name"],
        "model": case["model"],
        "format": case["format"],
        "input": case["input"],
        "explainer": f"shap {shap.__version__} TreeExplainer(tree_path_dependent, raw) via {library}",
        "rows": picked,
        "num_features": int(values.shape[2]),
        "num_groups": int(values.shape[1]),
        "expected_value": [float(v) for v in expected],
        "shap_values": [[[float(v) for v in group] for group in row] for row in values],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files already written")
    args = parser.parse_args()
    cases = manifest_cases()
    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    total = 0
    for name, cap in CASES:
        case = cases.get(name)
        if case is None:
            raise SystemExit(f"{name} is not a case of fixtures/manifest.json")
        result = explain(case, cap)
        text = json.dumps(result, separators=(",", ":")) + "\n"
        path = OUT / f"{name}.json"
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                raise SystemExit(f"{path} differs from what the script computes now")
        else:
            path.write_text(text, encoding="utf-8")
        total += len(text)
        entries.append({"case": name, "file": f"shap/{name}.json", "rows": len(result["rows"]),
                        "groups": result["num_groups"], "features": result["num_features"],
                        "explainer": result["explainer"]})
        print(f"{name:<36} {len(result['rows']):>4} rows  {len(text) / 1024:7.1f} KiB", file=sys.stderr)
    manifest = json.dumps({"cases": entries}, indent=1) + "\n"
    manifest_path = OUT / "manifest.json"
    if args.check:
        if manifest_path.read_text(encoding="utf-8") != manifest:
            raise SystemExit(f"{manifest_path} differs from what the script computes now")
    else:
        manifest_path.write_text(manifest, encoding="utf-8")
    print(f"{len(entries)} cases, {total / 1024 / 1024:.2f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
