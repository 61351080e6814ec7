#!/usr/bin/env python3
"""Writes small seed models under fuzz/seeds/<target>/ with the real libraries: a fuzzer mutates a
2-tree model far more usefully than a 100 KB fixture. Run in the fixtures environment:

    ~/.cache/riskserve/venv-fixtures/bin/python fuzz/make_seeds.py

The seeds are committed; scripts/fuzz.sh copies them into the corpora with the fixtures.
"""

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"

# A scorecard in the shape of the DMG specification's sample, cut down to two characteristics,
# with every predicate kind the importer reads.
PMML_SCORECARD = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header copyright="seed"/>
  <DataDictionary numberOfFields="4">
    <DataField name="department" dataType="string" optype="categorical">
      <Value value="engineering"/><Value value="marketing"/><Value value="business"/>
    </DataField>
    <DataField name="age" dataType="integer" optype="continuous"/>
    <DataField name="income" dataType="double" optype="continuous"/>
    <DataField name="overallScore" dataType="double" optype="continuous"/>
  </DataDictionary>
  <Scorecard modelName="seed" functionName="regression" useReasonCodes="true" reasonCodeAlgorithm="pointsBelow"
             initialScore="10" baselineMethod="other">
    <MiningSchema>
      <MiningField name="department" usageType="active" invalidValueTreatment="asMissing"/>
      <MiningField name="age" usageType="active" invalidValueTreatment="asMissing"/>
      <MiningField name="income" usageType="active" invalidValueTreatment="asMissing"/>
      <MiningField name="overallScore" usageType="predicted"/>
    </MiningSchema>
    <Output>
      <OutputField name="Final Score" feature="predictedValue" dataType="double" optype="continuous"/>
      <OutputField name="Reason Code 1" rank="1" feature="reasonCode" dataType="string" optype="categorical"/>
      <OutputField name="Reason Code 2" rank="2" feature="reasonCode" dataType="string" optype="categorical"/>
    </Output>
    <Characteristics>
      <Characteristic name="departmentScore" reasonCode="RC1" baselineScore="19">
        <Attribute partialScore="-9"><SimplePredicate field="department" operator="isMissing"/></Attribute>
        <Attribute partialScore="19"><SimplePredicate field="department" operator="equal" value="marketing"/></Attribute>
        <Attribute partialScore="3">
          <SimpleSetPredicate field="department" booleanOperator="isIn">
            <Array n="2" type="string">engineering "business"</Array>
          </SimpleSetPredicate>
        </Attribute>
        <Attribute partialScore="0"><True/></Attribute>
      </Characteristic>
      <Characteristic name="ageScore" reasonCode="RC2" baselineScore="18">
        <Attribute partialScore="-1"><SimplePredicate field="age" operator="isMissing"/></Attribute>
        <Attribute partialScore="-3"><SimplePredicate field="age" operator="lessOrEqual" value="18"/></Attribute>
        <Attribute partialScore="0">
          <CompoundPredicate booleanOperator="and">
            <SimplePredicate field="age" operator="greaterThan" value="18"/>
            <SimplePredicate field="age" operator="lessOrEqual" value="29"/>
          </CompoundPredicate>
        </Attribute>
        <Attribute partialScore="12" reasonCode="RC2-3">
          <CompoundPredicate booleanOperator="or">
            <SimplePredicate field="age" operator="greaterThan" value="29"/>
            <SimplePredicate field="income" operator="greaterOrEqual" value="1000.5"/>
          </CompoundPredicate>
        </Attribute>
      </Characteristic>
    </Characteristics>
  </Scorecard>
</PMML>
"""


def data(rows: int = 60, features: int = 3, seed: int = 7):
    generator = np.random.default_rng(seed)
    features_matrix = generator.normal(size=(rows, features))
    features_matrix[generator.random(size=features_matrix.shape) < 0.1] = np.nan
    label = (np.nan_to_num(features_matrix[:, 0]) + 0.3 * generator.normal(size=rows) > 0).astype(int)
    return features_matrix, label, generator


def write_xgboost() -> None:
    import pandas as pd
    import xgboost

    features, label, generator = data()
    models = {
        "binary": (xgboost.XGBClassifier(n_estimators=2, max_depth=2), features, label),
        "regression": (xgboost.XGBRegressor(n_estimators=1, max_depth=1), features, np.nan_to_num(features[:, 1])),
        "multi": (
            xgboost.XGBClassifier(n_estimators=1, max_depth=2, objective="multi:softprob"),
            features,
            generator.integers(0, 3, size=len(label)),
        ),
    }
    frame = pd.DataFrame({"x": features[:, 0], "colour": pd.Categorical(generator.choice(["r", "g", "b"], len(label)))})
    models["categorical"] = (
        xgboost.XGBClassifier(n_estimators=2, max_depth=2, enable_categorical=True, tree_method="hist"),
        frame,
        label,
    )
    for name, (model, inputs, target) in models.items():
        model.fit(inputs, target)
        booster = model.get_booster()
        for extension, target_name in [("json", "xgboost_json"), ("ubj", "xgboost_ubj")]:
            folder = SEEDS / target_name
            folder.mkdir(parents=True, exist_ok=True)
            booster.save_model(str(folder / f"{name}.{extension}"))


def write_lightgbm() -> None:
    import lightgbm
    import pandas as pd

    features, label, generator = data()
    folder = SEEDS / "lightgbm"
    folder.mkdir(parents=True, exist_ok=True)
    common = {"n_estimators": 2, "num_leaves": 4, "min_child_samples": 2, "verbose": -1}
    lightgbm.LGBMClassifier(**common).fit(features, label).booster_.save_model(str(folder / "binary.txt"))
    lightgbm.LGBMRegressor(zero_as_missing=True, **common).fit(features, np.nan_to_num(features[:, 1])).booster_.save_model(
        str(folder / "regression_zero_as_missing.txt")
    )
    lightgbm.LGBMClassifier(**common).fit(features, generator.integers(0, 3, size=len(label))).booster_.save_model(
        str(folder / "multiclass.txt")
    )
    frame = pd.DataFrame({"x": features[:, 0], "colour": pd.Categorical(generator.choice(["r", "g", "b"], len(label)))})
    lightgbm.LGBMClassifier(min_data_per_group=2, cat_smooth=1, **common).fit(frame, label).booster_.save_model(
        str(folder / "categorical.txt")
    )


def patch_onnx_make_attribute() -> None:
    """skl2onnx 1.19.1 passes numpy booleans for nodes_missing_value_tracks_true, which onnx 1.19
    refuses; written as 0/1, as scripts/fixtures.py does."""
    import onnx.helper

    original = onnx.helper.make_attribute

    def make_attribute(key, value, *args, **kwargs):
        if isinstance(value, (list, tuple, np.ndarray)) and any(isinstance(v, (bool, np.bool_)) for v in value):
            value = [int(v) for v in value]
        return original(key, value, *args, **kwargs)

    onnx.helper.make_attribute = make_attribute


def write_onnx() -> None:
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    patch_onnx_make_attribute()
    features, label, _ = data()
    filled = np.nan_to_num(features).astype(np.float32)
    folder = SEEDS / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    models = {
        "forest": RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0),
        "boosting": GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0),
        "logistic": make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()),
    }
    for name, model in models.items():
        model.fit(filled if name != "logistic" else features.astype(np.float32), label)
        # The forest keeps skl2onnx's ZipMap output; the others do without, as riskserve's users do.
        options = {} if name == "forest" else {id(model): {"zipmap": False}}
        onnx_model = to_onnx(model, filled[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        (folder / f"{name}.onnx").write_bytes(onnx_model.SerializeToString())


def write_pmml_and_rows() -> None:
    (SEEDS / "pmml").mkdir(parents=True, exist_ok=True)
    (SEEDS / "pmml" / "scorecard.pmml").write_text(PMML_SCORECARD)
    (SEEDS / "rows").mkdir(parents=True, exist_ok=True)
    (SEEDS / "rows" / "rows.csv").write_text(
        "amount,purpose,housing,job\n12.5,car,own,2\n,tv,rent,\nNaN,boat,NA,3\n-1e30,radio,own,0\n"
    )


if __name__ == "__main__":
    write_pmml_and_rows()
    write_xgboost()
    write_lightgbm()
    write_onnx()
