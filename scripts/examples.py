#!/usr/bin/env python3
"""Builds the German Credit example pipelines under examples/german-credit/ with the real
libraries, and the values those libraries give for every input row (expected.jsonl), which
crates/riskserve-pipeline/tests/examples.rs compares riskserve's scores with.

    python scripts/examples.py                   # both examples
    python scripts/examples.py xgboost           # only one of: xgboost scorecard
    python scripts/examples.py --out DIR         # write under DIR instead (reruns are compared)
    python scripts/examples.py --check-pmml      # JPMML-Evaluator scores scorecard.pmml (venv-pmml)
    python scripts/examples.py --check-riskserve BINARY   # `riskserve score --pipeline` on both

Everything is seeded and single-threaded: a rerun writes the same bytes.

The XGBoost example: xgboost's margin -> scikit-learn's Platt calibrator (fitted on a held-out
split) -> PDO score scaling -> master scale -> decision rules, with TreeSHAP contributions in margin
space grouped back to the raw features. The scorecard example: scorecardpy's woebin + logistic
regression + scorecard, imported from the tool's points table, with the tool's own scorecard_ply
points as the expected values.
"""

import argparse
import csv
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

try:
    import numpy as np
    import pandas as pd
except ImportError:  # the checks need only the standard library (and jpmml_evaluator)
    np = pd = None

ROOT = Path(__file__).resolve().parent.parent
CREDIT_CSV = ROOT / "fixtures" / "data" / "germancredit.csv"
OUT = ROOT / "examples" / "german-credit"

SEED = 20261128
TARGET = "creditability"
# Rows of the data kept out of every fit; the examples' input rows are the first of them (fewer
# for the scorecard, whose expected values are longer: the example files stay under 1 MB).
TEST_ROWS = 300
XGBOOST_INPUT_ROWS = 250
SCORECARD_INPUT_ROWS = 200
# Rows used only to fit the calibrator of the XGBoost example.
CALIBRATION_ROWS = 200
# Every MISSING_EVERY-th input row gets one or two of its fields blanked, to show missing values.
MISSING_EVERY = 7

# The raw German Credit columns: description (UCI's attribute text), reason-code text (what an
# adverse-action notice says when the feature is among the principal reasons), and for numeric
# columns the declared valid range.
RAW_FEATURES = {
    "status_of_existing_checking_account": (
        "Status of the existing checking account (balance in Deutsche Mark)",
        "Checking account balance or status",
        None,
    ),
    "duration_in_month": ("Duration of the credit in months", "Term of the credit", (1, 120)),
    "credit_history": (
        "Credit history: credits taken and how they were paid back",
        "Past repayment history",
        None,
    ),
    "purpose": ("Purpose of the credit", "Purpose of the credit", None),
    "credit_amount": ("Credit amount in Deutsche Mark", "Amount of credit requested", (1, 100000)),
    "savings_account_and_bonds": (
        "Savings account and bonds (Deutsche Mark)",
        "Savings or bonds held",
        None,
    ),
    "present_employment_since": (
        "Time in present employment",
        "Length of present employment",
        None,
    ),
    "installment_rate_in_percentage_of_disposable_income": (
        "Installment rate in percentage of disposable income (1 lowest to 4 highest)",
        "Installment rate relative to disposable income",
        (1, 4),
    ),
    "personal_status_and_sex": (
        "Personal status and sex (not used by the models: a prohibited basis under Regulation B)",
        "Personal status",
        None,
    ),
    "other_debtors_or_guarantors": (
        "Other debtors or guarantors",
        "Guarantors or co-applicants",
        None,
    ),
    "present_residence_since": (
        "Years at present residence (1 to 4)",
        "Length of residence",
        (1, 4),
    ),
    "property": ("Most valuable property held", "Property held", None),
    "age_in_years": ("Age in years", "Age", (18, 120)),
    "other_installment_plans": (
        "Other installment plans (bank, stores)",
        "Other installment plans",
        None,
    ),
    "housing": ("Housing", "Housing status", None),
    "number_of_existing_credits_at_this_bank": (
        "Number of existing credits at this bank",
        "Number of existing credits",
        (0, 20),
    ),
    "job": ("Job", "Type of employment", None),
    "number_of_people_being_liable_to_provide_maintenance_for": (
        "Number of people the applicant is liable to provide maintenance for",
        "Number of dependants",
        (0, 20),
    ),
    "telephone": ("Telephone registered under the applicant's name", "Telephone registration", None),
    "foreign_worker": (
        "Foreign worker (not used by the models: national origin is a prohibited basis under "
        "Regulation B)",
        "Foreign worker",
        None,
    ),
}

# Principal reasons given per row (Regulation B: more than four are not likely to be helpful).
REASON_RANKS = 4

# Regulation B (ECOA) prohibits sex, marital status and national origin as bases for a credit
# decision: neither model sees these two columns.
EXCLUDED = ["personal_status_and_sex", "foreign_worker"]

# The XGBoost example's derived feature, grouped back to credit_amount for reason codes.
DERIVED = "credit_amount_per_month"

# PDO score scaling: 600 points at odds of 50 good to 1 bad, 20 points to double the odds;
# higher scores are better (less likely to go bad).
PDO = 20.0
REFERENCE_SCORE = 600.0
REFERENCE_ODDS = 50.0

# Master scale: upper bounds (exclusive) of the probability of going bad for each grade.
GRADES = [("A", 0.10), ("B", 0.20), ("C", 0.35), ("D", 0.55), ("E", 1.0)]
# Decisions on the probability of going bad: approve below the first cut-off, refer below the
# second, decline from there on; knocked-out rows are declined whatever their probability.
APPROVE_BELOW = 0.20
REFER_BELOW = 0.45
# Knock-out rule on a raw feature: terms beyond four years are outside the lending policy.
KNOCKOUT_FEATURE = "duration_in_month"
KNOCKOUT_ABOVE = 48

XGB_PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 2,
    "tree_method": "hist",
    "nthread": 1,
    "seed": SEED,
}
XGB_ROUNDS = 100


# ---------------------------------------------------------------------------------------------
# Data


def load_credit():
    frame = pd.read_csv(CREDIT_CSV)
    labels = (frame[TARGET] == "bad").astype(int).to_numpy()
    raw = frame.drop(columns=[TARGET])
    assert list(raw.columns) == list(RAW_FEATURES), "germancredit.csv columns changed"
    return raw, labels


def split(count):
    """Row indices of the training, calibration and test splits (seeded permutation)."""
    order = np.random.RandomState(SEED).permutation(count)
    test = np.sort(order[:TEST_ROWS])
    calibration = np.sort(order[TEST_ROWS : TEST_ROWS + CALIBRATION_ROWS])
    train = np.sort(order[TEST_ROWS + CALIBRATION_ROWS :])
    return train, calibration, test


def numeric_columns(raw):
    return [c for c in raw.columns if pd.api.types.is_numeric_dtype(raw[c])]


def categories_of(raw, column):
    return sorted(raw[column].dropna().unique().tolist())


def with_missing(frame, columns, rng):
    """A copy of the frame in which every MISSING_EVERY-th row loses one or two fields."""
    frame = frame.copy()
    for row in range(3, len(frame), MISSING_EVERY):
        for column in rng.choice(columns, size=1 + row % 2, replace=False):
            frame.iloc[row, frame.columns.get_loc(column)] = np.nan
    return frame


def write_csv(path, frame):
    # Numbers as integers where they are whole (the data's own form); missing as an empty cell.
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.17g")
    path.write_text(text)


def write_jsonl(path, records):
    with open(path, "w") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")


def clean(value):
    """A float as JSON writes it exactly (repr), whole numbers kept as floats."""
    return float(value)



def reason_code_table():
    """Raw feature -> {"code", "text"}: R01, R02, ... in the data's column order."""
    return {
        feature: {"code": f"R{index + 1:02d}", "text": text}
        for index, (feature, (_, text, _)) in enumerate(RAW_FEATURES.items())
    }


def feature_specs(raw, required, numeric_policy, category_policy):
    """The pipeline's feature schema: every raw column, in the data's order."""
    specs = []
    for feature, (description, _, bounds) in RAW_FEATURES.items():
        spec = {"name": feature}
        if pd.api.types.is_numeric_dtype(raw[feature]):
            spec["type"] = "numeric"
            spec["min"], spec["max"] = float(bounds[0]), float(bounds[1])
            spec["out_of_range"] = numeric_policy
        else:
            spec["type"] = "categorical"
            spec["categories"] = categories_of(raw, feature)
            spec["out_of_range"] = category_policy
        spec["required"] = required
        spec["description"] = description
        specs.append(spec)
    return specs


def apply_field_policies(frame, specs):
    """What the pipeline does to a row before any step: numeric values outside [min, max] are
    clipped, unknown categories become missing (the policies the XGBoost example declares)."""
    frame = frame.copy()
    for spec in specs:
        column = spec["name"]
        if spec["type"] == "numeric":
            assert spec["out_of_range"] == "clip"
            frame[column] = frame[column].clip(spec["min"], spec["max"])
        else:
            assert spec["out_of_range"] == "missing"
            frame[column] = frame[column].where(frame[column].isin(spec["categories"]))
    return frame


def top_reasons(contributions, table, count=REASON_RANKS):
    """The most adverse raw features first (largest positive contribution), at most `count`."""
    adverse = [(value, feature) for feature, value in contributions.items() if feature != "bias" and value > 0]
    # A stable sort: ties keep the order of the features (the scorecard's characteristics).
    adverse.sort(key=lambda item: -item[0])
    return [
        {"code": table[feature]["code"], "feature": feature, "contribution": value}
        for value, feature in adverse[:count]
    ]

# ---------------------------------------------------------------------------------------------
# XGBoost example


def one_hot_name(feature, index):
    # Category strings hold characters xgboost refuses in feature names ("<", "[", "]"), so a
    # one-hot column is named after the category's position in the feature's declared list.
    return f"{feature}_{index}"


def xgb_design(raw, features, categories):
    """The model's input matrix, as the pipeline's steps build it: numeric columns and one-hot
    columns (in the order of each categorical feature's declared categories) in the data's column
    order, then the derived ratio. A missing category gives NaN in all of its one-hot columns
    (one_hot with "missing": "missing": xgboost then follows each split's default direction)."""
    columns = {}
    for feature in features:
        if feature in categories:
            values = raw[feature]
            for index, category in enumerate(categories[feature]):
                column = np.where(values.isna(), np.nan, (values == category).astype(float))
                columns[one_hot_name(feature, index)] = column
        else:
            columns[feature] = raw[feature].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = raw["credit_amount"].astype(float).to_numpy() / raw["duration_in_month"].astype(float).to_numpy()
    # derive: a result that is not a finite number is missing.
    columns[DERIVED] = np.where(np.isfinite(ratio), ratio, np.nan)
    return pd.DataFrame(columns)


def score_of(probability_bad):
    """PDO scaling: score = offset + factor * ln(good:bad odds), higher is better."""
    factor = PDO / math.log(2.0)
    offset = REFERENCE_SCORE - factor * math.log(REFERENCE_ODDS)
    return offset + factor * math.log((1.0 - probability_bad) / probability_bad)


def grade_of(probability_bad):
    for grade, upper in GRADES:
        if probability_bad < upper:
            return grade
    return GRADES[-1][0]


def decision_of(probability_bad, raw_row):
    knockout = raw_row[KNOCKOUT_FEATURE]
    # A comparison with a missing value is false: the rule does not fire.
    if not pd.isna(knockout) and knockout > KNOCKOUT_ABOVE:
        return "decline"
    if probability_bad < APPROVE_BELOW:
        return "approve"
    if probability_bad < REFER_BELOW:
        return "refer"
    return "decline"


def group_of(column, categories):
    """The raw feature a model column comes from (the derived ratio is attributed to the amount)."""
    if column == DERIVED:
        return "credit_amount"
    for feature, values in categories.items():
        if column in {one_hot_name(feature, index) for index in range(len(values))}:
            return feature
    return column


def tree_contributions(booster, dmatrix):
    """Path-dependent TreeSHAP values in margin space, last column the expected value: from
    shap.TreeExplainer when shap is installed, else from xgboost's pred_contribs, which is what
    shap.TreeExplainer computes them with for an XGBoost booster."""
    try:
        import shap
    except ImportError:
        return booster.predict(dmatrix, pred_contribs=True).astype(np.float64), "xgboost pred_contribs"
    explainer = shap.TreeExplainer(booster, feature_perturbation="tree_path_dependent")
    values = np.asarray(explainer.shap_values(dmatrix), dtype=np.float64)
    bias = np.full((values.shape[0], 1), float(np.ravel(explainer.expected_value)[0]))
    return np.hstack([values, bias]), f"shap {shap.__version__} TreeExplainer"


def build_xgboost(raw, labels):
    import sklearn
    import xgboost as xgb
    from sklearn.calibration import _SigmoidCalibration

    out = OUT / "xgboost"
    out.mkdir(parents=True, exist_ok=True)
    features = [c for c in raw.columns if c not in EXCLUDED]
    numeric = [c for c in numeric_columns(raw) if c in features]
    categories = {c: categories_of(raw, c) for c in features if c not in numeric}
    specs = feature_specs(raw, required=False, numeric_policy="clip", category_policy="missing")
    train, calibration, test = split(len(raw))

    design = xgb_design(raw, features, categories)
    names = list(design.columns)
    dtrain = xgb.DMatrix(design.iloc[train].to_numpy(), label=labels[train], feature_names=names)
    booster = xgb.train(XGB_PARAMS, dtrain, num_boost_round=XGB_ROUNDS)
    booster.save_model(str(out / "model.json"))
    # Reload what was written so that every expected value comes from the file riskserve reads.
    booster = xgb.Booster(model_file=str(out / "model.json"))

    def margins_of(frame):
        matrix = xgb.DMatrix(frame.to_numpy(), feature_names=names)
        return booster.predict(matrix, output_margin=True).astype(np.float64)

    # Platt scaling of the margin on rows the trees never saw.
    calibrator = _SigmoidCalibration().fit(margins_of(design.iloc[calibration]), labels[calibration])

    rng = np.random.RandomState(SEED + 1)
    test = test[:XGBOOST_INPUT_ROWS]
    inputs = with_missing(raw.iloc[test].reset_index(drop=True), features, rng)
    write_csv(out / "input.csv", inputs)
    # Read the rows back as riskserve will, so that both sides see the same numbers.
    inputs = apply_field_policies(pd.read_csv(out / "input.csv"), specs)
    matrix = xgb.DMatrix(xgb_design(inputs, features, categories).to_numpy(), feature_names=names)
    margins = booster.predict(matrix, output_margin=True).astype(np.float64)
    model_probability = booster.predict(matrix).astype(np.float64)
    probabilities = calibrator.predict(margins).astype(np.float64)
    contributions, shap_source = tree_contributions(booster, matrix)
    table = reason_code_table()

    records = []
    for row in range(len(inputs)):
        probability = float(probabilities[row])
        # Every declared feature is present; those the model does not read contribute 0.
        grouped = {feature: 0.0 for feature in RAW_FEATURES}
        for column, value in zip(names, contributions[row][:-1]):
            grouped[group_of(column, categories)] += float(value)
        grouped["bias"] = float(contributions[row][-1])
        records.append(
            {
                "row": row,
                "margin": float(margins[row]),
                "values": [float(model_probability[row])],
                "probability": probability,
                "score": score_of(probability),
                "grade": grade_of(probability),
                "decision": decision_of(probability, inputs.iloc[row]),
                "contributions": grouped,
                "reasons": top_reasons(grouped, table),
            }
        )
    write_jsonl(out / "expected.jsonl", records)

    steps = [
        {
            "step": "derive",
            "output": DERIVED,
            "op": "ratio",
            "args": ["credit_amount", "duration_in_month"],
            "attribute_to": "credit_amount",
        }
    ]
    for feature, values in categories.items():
        steps.append(
            {
                "step": "one_hot",
                "input": feature,
                "outputs": [one_hot_name(feature, index) for index in range(len(values))],
                "missing": "missing",
            }
        )
    spec = {
        "version": 1,
        "name": "german-credit-xgboost",
        "description": (
            f"German Credit: XGBoost {xgb.__version__} ({XGB_ROUNDS} trees, depth {XGB_PARAMS['max_depth']}) "
            f"on one-hot categories and credit amount per month, Platt calibration fitted by scikit-learn "
            f"{sklearn.__version__} on a held-out split, PDO {PDO:g} with {REFERENCE_SCORE:g} points at "
            f"{REFERENCE_ODDS:g}:1 good:bad (higher is better), grades A-E, approve/refer/decline with a "
            f"knock-out on terms over {KNOCKOUT_ABOVE} months. Written by scripts/examples.py"
        ),
        "features": specs,
        "steps": steps,
        "model": {"artifact": "model.json", "format": "xgboost-json", "inputs": names},
        "positive_class": "bad",
        # scikit-learn's sigmoid calibration: P(bad) = 1 / (1 + exp(a * margin + b)).
        "calibration": [
            {"method": "platt", "a": float(calibrator.a_), "b": float(calibrator.b_), "input": "margin"}
        ],
        "scaling": {
            "pdo": PDO,
            "reference_score": REFERENCE_SCORE,
            "reference_odds": REFERENCE_ODDS,
            "odds": "good_to_bad",
            "higher_is_better": True,
        },
        "master_scale": {"on": "probability", "bands": probability_bands()},
        "decision": {
            "on": "probability",
            "approve": APPROVE_BELOW,
            "decline": REFER_BELOW,
            "knockouts": [
                {"feature": KNOCKOUT_FEATURE, "op": "gt", "value": float(KNOCKOUT_ABOVE), "decision": "decline"}
            ],
        },
        "reason_codes": table,
        "outputs": ["probability", "score", "grade", "decision"],
    }
    write_json(out / "pipeline.json", spec)
    report(
        "xgboost",
        records,
        labels[test],
        [r["probability"] for r in records],
        f"Platt a={calibrator.a_:.6f} b={calibrator.b_:.6f}; {shap_source}",
    )


def probability_bands():
    bands, lower = [], 0.0
    for grade, upper in GRADES:
        bands.append({"grade": grade, "min": lower, "max": upper})
        lower = upper
    return bands


def report(name, records, labels, risk, note):
    """One line on stderr: how well the example ranks its held-out rows, and how its grades and
    decisions spread (a sanity check of the example, not a test)."""
    from sklearn.metrics import roc_auc_score

    grades = pd.Series([r.get("grade") for r in records]).value_counts().sort_index().to_dict()
    decisions = pd.Series([r.get("decision") for r in records]).value_counts().sort_index().to_dict()
    print(
        f"{name}: {len(records)} rows, AUC {roc_auc_score(labels, risk):.4f}, grades {grades}, "
        f"decisions {decisions}; {note}",
        file=sys.stderr,
    )


# ---------------------------------------------------------------------------------------------
# Scorecard example

# scorecardpy's defaults, stated: 600 points at odds of 1 bad to 19 good, 50 points to double.
CARD_POINTS0 = 600.0
CARD_ODDS0 = 1.0 / 19.0
CARD_PDO = 50.0
# Master scale and cut-offs on the scorecard's points (higher is better).
CARD_GRADES = [("E", 380.0), ("D", 440.0), ("C", 500.0), ("B", 570.0), ("A", None)]
CARD_APPROVE_FROM = 520.0
CARD_DECLINE_BELOW = 420.0


def parse_bin(label):
    """A scorecardpy bin label: ("interval", low, high) for "[low,high)" or ("values", [...]) for
    categories (and "missing") joined by "%,%"."""
    if label.startswith("[") and label.endswith(")"):
        low, high = label[1:-1].split(",")
        return ("interval", float(low), float(high))
    return ("values", label.split("%,%"))


def xml_text(text):
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def number_text(value):
    return repr(float(value))


def bin_predicate(variable, label):
    kind = parse_bin(label)
    if kind[0] == "interval":
        _, low, high = kind
        parts = []
        if math.isfinite(low):
            parts.append(f'<SimplePredicate field="{xml_text(variable)}" operator="greaterOrEqual" value="{number_text(low)}"/>')
        if math.isfinite(high):
            parts.append(f'<SimplePredicate field="{xml_text(variable)}" operator="lessThan" value="{number_text(high)}"/>')
        if not parts:
            return "<True/>"
        if len(parts) == 1:
            return parts[0]
        return '<CompoundPredicate booleanOperator="and">' + "".join(parts) + "</CompoundPredicate>"
    values = kind[1]
    missing = "missing" in values
    values = [v for v in values if v != "missing"]
    parts = []
    if missing:
        parts.append(f'<SimplePredicate field="{xml_text(variable)}" operator="isMissing"/>')
    if len(values) == 1:
        parts.append(f'<SimplePredicate field="{xml_text(variable)}" operator="equal" value="{xml_text(values[0])}"/>')
    elif values:
        quoted = " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        parts.append(
            f'<SimpleSetPredicate field="{xml_text(variable)}" booleanOperator="isIn">'
            f'<Array n="{len(values)}" type="string">{xml_text(quoted)}</Array></SimpleSetPredicate>'
        )
    if len(parts) == 1:
        return parts[0]
    return '<CompoundPredicate booleanOperator="or">' + "".join(parts) + "</CompoundPredicate>"


def card_pmml(card_frame, raw, table, versions):
    """scorecardpy's points table as a PMML 4.4 Scorecard: one characteristic per variable, one
    attribute per bin (numeric bins [low, high), categorical bins by their categories, the
    "missing" bin as isMissing), the base points as the initial score; reason codes pointsBelow
    with each characteristic's best points as its baseline."""
    variables = [v for v in card_frame["variable"].unique() if v != "basepoints"]
    base = card_frame.loc[card_frame["variable"] == "basepoints", "points"]
    initial = float(base.iloc[0]) if len(base) else 0.0
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- Written by scripts/examples.py from scorecardpy {versions['scorecardpy']}'s points table (card.csv). -->",
        '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">',
        '  <Header description="German Credit scorecard built with scorecardpy"/>',
        f'  <DataDictionary numberOfFields="{len(variables)}">',
    ]
    for variable in variables:
        if pd.api.types.is_numeric_dtype(raw[variable]):
            lines.append(f'    <DataField name="{xml_text(variable)}" optype="continuous" dataType="double"/>')
        else:
            lines.append(f'    <DataField name="{xml_text(variable)}" optype="categorical" dataType="string">')
            for category in categories_of(raw, variable):
                lines.append(f'      <Value value="{xml_text(category)}"/>')
            lines.append("    </DataField>")
    lines.append("  </DataDictionary>")
    lines.append(
        '  <Scorecard modelName="german_credit_scorecardpy" functionName="regression" useReasonCodes="true" '
        f'reasonCodeAlgorithm="pointsBelow" baselineMethod="max" initialScore="{number_text(initial)}">'
    )
    lines.append("    <MiningSchema>")
    for variable in variables:
        lines.append(f'      <MiningField name="{xml_text(variable)}"/>')
    lines.append("    </MiningSchema>")
    lines.append("    <Output>")
    lines.append('      <OutputField name="score" feature="predictedValue" dataType="double" optype="continuous"/>')
    for rank in range(1, REASON_RANKS + 1):
        lines.append(
            f'      <OutputField name="reason_{rank}" feature="reasonCode" rank="{rank}" dataType="string" '
            'optype="categorical"/>'
        )
    lines.append("    </Output>")
    lines.append("    <Characteristics>")
    for variable in variables:
        rows = card_frame[card_frame["variable"] == variable]
        best = float(rows["points"].max())
        lines.append(
            f'      <Characteristic name="{xml_text(variable)}_points" reasonCode="{table[variable]["code"]}" '
            f'baselineScore="{number_text(best)}">'
        )
        for label, points in zip(rows["bin"], rows["points"]):
            lines.append(f'        <Attribute partialScore="{number_text(points)}">')
            lines.append(f"          {bin_predicate(variable, label)}")
            lines.append("        </Attribute>")
        lines.append("      </Characteristic>")
    lines.append("    </Characteristics>")
    lines.append("  </Scorecard>")
    lines.append("</PMML>")
    return "\n".join(lines) + "\n"


def card_bands():
    bands, lower = [], None
    for grade, upper in CARD_GRADES:
        band = {"grade": grade}
        if lower is not None:
            band["min"] = lower
        if upper is not None:
            band["max"] = upper
        bands.append(band)
        lower = upper
    return bands


def card_grade(score):
    for grade, upper in CARD_GRADES:
        if upper is None or score < upper:
            return grade
    raise AssertionError("the last band is unbounded")


def card_decision(score, raw_row):
    knockout = raw_row[KNOCKOUT_FEATURE]
    if not pd.isna(knockout) and knockout > KNOCKOUT_ABOVE:
        return "decline"
    if score >= CARD_APPROVE_FROM:
        return "approve"
    if score >= CARD_DECLINE_BELOW:
        return "refer"
    return "decline"


def build_scorecard(raw, labels):
    import scorecardpy as sc
    import sklearn
    from importlib.metadata import version
    from sklearn.linear_model import LogisticRegression

    out = OUT / "scorecard"
    out.mkdir(parents=True, exist_ok=True)
    features = [c for c in raw.columns if c not in EXCLUDED]
    train, calibration, test = split(len(raw))
    # The scorecard has no calibrator: it learns from the training and calibration rows together.
    fit_rows = np.sort(np.concatenate([train, calibration]))
    frame = raw.iloc[fit_rows][features].reset_index(drop=True)
    frame[TARGET] = labels[fit_rows]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selected = sc.var_filter(frame, y=TARGET)
        # scorecardpy orders columns by iterating sets; the data's column order keeps reruns equal.
        selected = selected[[c for c in features + [TARGET] if c in selected.columns]]
        bins = sc.woebin(selected, y=TARGET, no_cores=1, print_step=0)
        woe = sc.woebin_ply(selected, bins, print_step=0)
    x_columns = [f + "_woe" for f in features if f + "_woe" in woe.columns]
    model = LogisticRegression(max_iter=1000).fit(woe[x_columns], woe[TARGET])
    card = sc.scorecard(bins, model, x_columns, points0=CARD_POINTS0, odds0=CARD_ODDS0, pdo=CARD_PDO)
    card_frame = pd.concat(card, ignore_index=True)
    # The tool's own output, kept beside what riskserve reads.
    card_frame.to_csv(out / "card.csv", index=False, lineterminator="\n")
    card_frame = pd.read_csv(out / "card.csv")
    table = reason_code_table()
    versions = {"scorecardpy": version("scorecardpy"), "scikit-learn": sklearn.__version__}
    (out / "scorecard.pmml").write_text(card_pmml(card_frame, raw, table, versions))

    test = test[:SCORECARD_INPUT_ROWS]
    inputs = raw.iloc[test].reset_index(drop=True)
    write_csv(out / "input.csv", inputs)
    inputs = pd.read_csv(out / "input.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = sc.scorecard_ply(inputs, card, only_total_score=False, print_step=0)
    variables = [v for v in card_frame["variable"].unique() if v != "basepoints"]
    best = {v: float(card_frame.loc[card_frame["variable"] == v, "points"].max()) for v in variables}
    scaling = sc.scorecard.ab(CARD_POINTS0, CARD_ODDS0, CARD_PDO) if hasattr(sc.scorecard, "ab") else None
    if scaling is None:
        from scorecardpy.scorecard import ab

        scaling = ab(CARD_POINTS0, CARD_ODDS0, CARD_PDO)
    base_points = float(card_frame.loc[card_frame["variable"] == "basepoints", "points"].iloc[0])
    records = []
    for row in range(len(inputs)):
        score = float(points["score"].iloc[row])
        row_points = {v: float(points[v + "_points"].iloc[row]) for v in variables}
        # scorecardpy: score = a - b * ln(bad:good odds), read backwards.
        bad_odds = math.exp((scaling["a"] - score) / scaling["b"])
        # pointsBelow: the points each characteristic lost against its best bin.
        below = {v: best[v] - row_points[v] for v in variables}
        records.append(
            {
                "row": row,
                "score": score,
                "probability": bad_odds / (1.0 + bad_odds),
                "grade": card_grade(score),
                "decision": card_decision(score, inputs.iloc[row]),
                "points": row_points,
                "base_points": base_points,
                "reasons": top_reasons(below, table),
            }
        )
    write_jsonl(out / "expected.jsonl", records)

    spec = {
        "version": 1,
        "name": "german-credit-scorecard",
        "description": (
            f"German Credit scorecard built with scorecardpy {versions['scorecardpy']} (var_filter, woebin, "
            f"LogisticRegression from scikit-learn {versions['scikit-learn']}, scorecard: {CARD_POINTS0:g} points "
            f"at 1:19 bad:good odds, PDO {CARD_PDO:g}), imported from its points table as a PMML Scorecard. "
            "Written by scripts/examples.py"
        ),
        "features": feature_specs(raw, required=True, numeric_policy="reject", category_policy="reject"),
        "model": {"artifact": "scorecard.pmml", "format": "pmml"},
        "positive_class": "bad",
        "scaling": {
            "pdo": CARD_PDO,
            "reference_score": CARD_POINTS0,
            "reference_odds": CARD_ODDS0,
            "odds": "bad_to_good",
            "higher_is_better": True,
        },
        "master_scale": {"on": "score", "bands": card_bands()},
        "decision": {
            "on": "score",
            "approve": CARD_APPROVE_FROM,
            "decline": CARD_DECLINE_BELOW,
            "knockouts": [
                {"feature": KNOCKOUT_FEATURE, "op": "gt", "value": float(KNOCKOUT_ABOVE), "decision": "decline"}
            ],
        },
        "reason_codes": table,
        "outputs": ["probability", "score", "grade", "decision"],
    }
    write_json(out / "pipeline.json", spec)
    report(
        "scorecard",
        records,
        labels[test],
        [-r["score"] for r in records],
        f"{len(variables)} characteristics, base points {base_points:g}",
    )


# ---------------------------------------------------------------------------------------------
# Checks of what was written, by other programs than the ones that wrote it


def read_expected(path):
    with open(path) as lines:
        return [json.loads(line) for line in lines]


def read_input(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def check_pmml():
    """JPMML-Evaluator (the PMML reference implementation) scores scorecard.pmml on the input rows:
    its scores must be scorecardpy's, which shows the points table became PMML unchanged, and its
    pointsBelow reason codes those expected.jsonl lists."""
    from jpmml_evaluator import make_evaluator

    directory = OUT / "scorecard"
    evaluator = make_evaluator(str(directory / "scorecard.pmml")).verify()
    numeric = {name for name, (_, _, bounds) in RAW_FEATURES.items() if bounds is not None}
    expected = read_expected(directory / "expected.jsonl")
    rows = read_input(directory / "input.csv")
    fields = [field.getName() for field in evaluator.getInputFields()]
    worst = 0.0
    for index, (row, wanted) in enumerate(zip(rows, expected, strict=True)):
        arguments = {name: float(row[name]) if name in numeric else row[name] for name in fields}
        result = evaluator.evaluate(arguments)
        score = float(result["score"])
        worst = max(worst, abs(score - wanted["score"]))
        if abs(score - wanted["score"]) > 1e-9:
            sys.exit(f"check-pmml: row {index}: JPMML-Evaluator scores {score}, scorecardpy {wanted['score']}")
        codes = [result.get(f"reason_{rank}") for rank in range(1, REASON_RANKS + 1)]
        codes = [str(code) for code in codes if code is not None]
        if codes != [reason["code"] for reason in wanted["reasons"]]:
            sys.exit(f"check-pmml: row {index}: JPMML-Evaluator's reason codes {codes}, expected {wanted['reasons']}")
    print(f"check-pmml: {len(rows)} rows, JPMML-Evaluator equals scorecardpy (largest difference {worst})", file=sys.stderr)


def check_riskserve(binary):
    """`riskserve score --pipeline ... --output-format json --explain` on each example, compared
    with expected.jsonl as crates/riskserve-pipeline/tests/examples.rs compares Pipeline's answers."""
    tolerances = {"probability": 1e-6, "score": 1e-4}
    for name in ["xgboost", "scorecard"]:
        directory = OUT / name
        command = [
            binary, "score", "--pipeline", str(directory / "pipeline.json"), "--input", str(directory / "input.csv"),
            "--output-format", "json", "--explain",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"check-riskserve: {name}: {' '.join(command)} failed: {result.stderr.strip()}")
        outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        expected = read_expected(directory / "expected.jsonl")
        if len(outcomes) != len(expected):
            sys.exit(f"check-riskserve: {name}: {len(outcomes)} outcomes for {len(expected)} rows")
        worst = {}
        for index, (outcome, wanted) in enumerate(zip(outcomes, expected)):
            differences = {key: abs(outcome[key] - wanted[key]) for key in tolerances}
            wanted_points = wanted.get("contributions") or {**wanted["points"], "bias": wanted["base_points"]}
            differences["contributions"] = max(
                abs(value - wanted_points.get(feature, 0.0)) for feature, value in outcome["contributions"].items()
            )
            for key, value in differences.items():
                worst[key] = max(worst.get(key, 0.0), value)
                if value > tolerances.get(key, 1e-6):
                    sys.exit(f"check-riskserve: {name}: row {index}: {key} differs by {value}")
            for key in ["grade", "decision"]:
                if outcome[key] != wanted[key]:
                    sys.exit(f"check-riskserve: {name}: row {index}: {key} {outcome[key]}, expected {wanted[key]}")
        print(f"check-riskserve: {name}: {len(outcomes)} rows agree; largest differences {worst}", file=sys.stderr)


def main(argv):
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", choices=[[], "xgboost", "scorecard"], default=[])
    parser.add_argument("--out", type=Path, help="write the examples under this folder")
    parser.add_argument("--check-pmml", action="store_true")
    parser.add_argument("--check-riskserve", metavar="BINARY")
    args = parser.parse_args(argv)
    if args.out is not None:
        OUT = args.out
    if args.check_pmml:
        check_pmml()
    if args.check_riskserve:
        check_riskserve(args.check_riskserve)
    if args.check_pmml or args.check_riskserve:
        return
    raw, labels = load_credit()
    for name in args.examples or ["xgboost", "scorecard"]:
        if name == "xgboost":
            build_xgboost(raw, labels)
        else:
            build_scorecard(raw, labels)


if __name__ == "__main__":
    main(sys.argv[1:])
