#!/usr/bin/env python3
"""Writes the libFuzzer dictionaries under fuzz/dict/: each format's keywords (XGBoost's JSON keys,
also encoded as UBJSON keys, LightGBM's header and tree keys, ONNX-ML operator and attribute names,
PMML element and attribute names) plus the XGBoost keys and strings found in fixtures/.

    python3 fuzz/make_dicts.py

Needs only the Python standard library. The dictionaries are committed; rerun after new fixtures.
"""

import json
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DICT = ROOT / "fuzz" / "dict"

XGBOOST_KEYS = [
    "learner", "version", "attributes", "feature_names", "feature_types", "gradient_booster", "model",
    "name", "gbtree", "dart", "gblinear", "weight_drop", "trees", "tree_info", "iteration_indptr",
    "gbtree_model_param", "num_trees", "num_parallel_tree", "tree_param", "num_nodes", "num_feature",
    "num_deleted", "size_leaf_vector", "left_children", "right_children", "parents", "split_indices",
    "split_conditions", "split_type", "default_left", "base_weights", "loss_changes", "sum_hessian",
    "categories", "categories_nodes", "categories_segments", "categories_sizes", "id",
    "learner_model_param", "base_score", "num_class", "num_target", "boost_from_average", "objective",
    "reg_loss_param", "scale_pos_weight", "softmax_multiclass_param", "cats", "enc", "offsets", "values",
    "feature_segments", "sorted_idx", "weights", "bias", "best_iteration", "best_score",
]
XGBOOST_STRINGS = [
    "binary:logistic", "binary:logitraw", "binary:hinge", "multi:softprob", "multi:softmax",
    "reg:squarederror", "reg:logistic", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror",
    "count:poisson", "rank:pairwise", "survival:cox", "float", "int", "i", "q", "c", "[5E-1]", "5E-1",
    "[3E-1,1E0]", "0", "1", "NaN", "Infinity", "-Infinity", "1e308", "-1", "4294967295",
]
# UBJSON type markers and container openings XGBoost writes (typed, counted arrays).
UBJ_MARKERS = ["{", "}", "[", "]", "[$d#L", "[$D#L", "[$l#L", "[$L#L", "[$i#L", "[$U#L", "[#L", "SL", "Z", "T", "F", "N", "d", "D", "i", "U", "l", "L", "H"]

LIGHTGBM_WORDS = [
    "tree", "version=v4", "version=v3", "num_class=", "num_tree_per_iteration=", "label_index=",
    "max_feature_idx=", "objective=", "average_output", "feature_names=", "feature_infos=", "tree_sizes=",
    "monotone_constraints=", "Tree=", "num_leaves=", "num_cat=", "split_feature=", "split_gain=", "threshold=",
    "decision_type=", "left_child=", "right_child=", "leaf_value=", "leaf_weight=", "leaf_count=",
    "internal_value=", "internal_weight=", "internal_count=", "cat_boundaries=", "cat_threshold=",
    "is_linear=", "shrinkage=", "leaf_features=", "leaf_coeff=", "leaf_const=", "num_features=",
    "end of trees", "feature_importances:", "parameters:", "end of parameters", "pandas_categorical:",
    "binary sigmoid:1", "multiclass num_class:3", "multiclassova num_class:3 sigmoid:1", "regression",
    "regression_l1", "huber", "poisson", "cross_entropy", "lambdarank", "sqrt", "none", "[linear_tree: 1]",
    "[-1e+300:1e+300]", "-1:0:1:2", "1e-35", "1.0000000180025095e-35", "inf", "-inf", "nan", "null", " ", "=", "\n",
]

ONNX_WORDS = [
    "ai.onnx.ml", "ai.onnx", "skl2onnx", "onnxmltools", "TreeEnsembleClassifier", "TreeEnsembleRegressor",
    "TreeEnsemble", "LinearClassifier", "LinearRegressor", "Scaler", "OneHotEncoder", "Imputer", "Normalizer",
    "Cast", "ZipMap", "ArrayFeatureExtractor", "LabelEncoder", "Concat", "Identity", "Sigmoid", "Softmax",
    "Reshape", "Add", "MatMul", "Gemm", "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
    "nodes_values_as_tensor", "nodes_hitrates", "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
    "nodes_missing_value_tracks_true", "class_treeids", "class_nodeids", "class_ids", "class_weights",
    "class_weights_as_tensor", "classlabels_int64s", "classlabels_strings", "post_transform", "base_values",
    "base_values_as_tensor", "target_treeids", "target_nodeids", "target_ids", "target_weights",
    "target_weights_as_tensor", "n_targets", "aggregate_function", "BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE",
    "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "LEAF", "NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT",
    "SUM", "AVERAGE", "MIN", "MAX", "coefficients", "intercepts", "multi_class", "offset", "scale",
    "cats_int64s", "cats_strings", "zeros", "imputed_value_floats", "imputed_value_int64s",
    "replaced_value_float", "replaced_value_int64", "norm", "L1", "L2", "to", "axis", "keys_int64s",
    "keys_strings", "values_int64s", "values_floats", "values_strings", "default_int64", "default_float",
    "default_string", "input", "output_label", "output_probability", "probabilities", "label", "variable",
    "float_input",
]

PMML_WORDS = [
    "<?xml version=\"1.0\"?>", "<PMML", "</PMML>", "xmlns=\"http://www.dmg.org/PMML-4_4\"", "version=\"4.4\"",
    "<Header", "<DataDictionary", "</DataDictionary>", "<DataField", "<Value", "<Interval", "<MiningSchema",
    "</MiningSchema>", "<MiningField", "<Output", "</Output>", "<OutputField", "<Scorecard", "</Scorecard>",
    "<Characteristics", "</Characteristics>", "<Characteristic", "</Characteristic>", "<Attribute",
    "</Attribute>", "<SimplePredicate", "<CompoundPredicate", "</CompoundPredicate>", "<SimpleSetPredicate",
    "</SimpleSetPredicate>", "<True/>", "<False/>", "<Array", "</Array>", "<Extension", "<ComplexPartialScore",
    "<FieldRef", "<Constant", "<Apply", "<TransformationDictionary", "<LocalTransformations", "<DerivedField",
    "<TreeModel", "<RegressionModel", "name=", "field=", "optype=", "dataType=", "usageType=", "functionName=",
    "modelName=", "useReasonCodes=", "reasonCodeAlgorithm=", "baselineScore=", "baselineMethod=",
    "initialScore=", "partialScore=", "reasonCode=", "operator=", "value=", "booleanOperator=", "type=", "n=",
    "feature=", "rank=", "invalidValueTreatment=", "missingValueReplacement=", "missingValueTreatment=",
    "isMissing", "isNotMissing", "lessThan", "lessOrEqual", "greaterThan", "greaterOrEqual", "equal",
    "notEqual", "isIn", "isNotIn", "pointsBelow", "pointsAbove", "max", "min", "mean", "neutral", "other",
    "and", "or", "xor", "surrogate", "continuous", "categorical", "ordinal", "double", "float", "integer",
    "string", "boolean", "active", "predicted", "target", "supplementary", "regression", "reasonCode",
    "predictedValue", "asIs", "asMissing", "returnInvalid", "true", "false", "&amp;", "&lt;", "&#x41;",
    "<![CDATA[", "]]>", "<!--", "-->", "NaN", "INF", "-INF", "1e308",
]


def quote(word: bytes) -> str:
    """A libFuzzer dictionary value: printable ASCII as is, the rest as \\xNN."""
    out = []
    for byte in word:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\x{byte:02X}")
    return '"' + "".join(out) + '"'


def write(name: str, words: list[bytes]) -> None:
    seen = []
    for word in words:
        if word and word not in seen:
            seen.append(word)
    lines = [f"# {name}: written by fuzz/make_dicts.py"] + [quote(word) for word in seen]
    (DICT / f"{name}.dict").write_text("\n".join(lines) + "\n")


def fixture_xgboost_words() -> tuple[list[str], list[str]]:
    """Keys and short strings of the XGBoost JSON fixtures, so that new fields are covered."""
    keys, strings = set(), set()

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                keys.add(key)
                walk(item)
        elif isinstance(value, list):
            for item in value[:50]:
                walk(item)
        elif isinstance(value, str) and len(value) < 24 and not value.isdigit():
            strings.add(value)

    for path in sorted((ROOT / "fixtures").glob("**/*.json")):
        if "manifest" in path.parts:
            continue
        try:
            walk(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError):
            continue
    return sorted(keys), sorted(strings)


def ubj_key(key: str) -> list[bytes]:
    """A UBJSON object key as XGBoost writes it (int64 length) and as other writers do (int8)."""
    raw = key.encode()
    forms = [b"L" + struct.pack(">q", len(raw)) + raw]
    if len(raw) < 128:
        forms.append(b"i" + bytes([len(raw)]) + raw)
    return forms


def main() -> None:
    DICT.mkdir(parents=True, exist_ok=True)
    fixture_keys, fixture_strings = fixture_xgboost_words()
    keys = XGBOOST_KEYS + [key for key in fixture_keys if key not in XGBOOST_KEYS]
    strings = XGBOOST_STRINGS + [string for string in fixture_strings if string not in XGBOOST_STRINGS]
    json_words = [f'"{key}":'.encode() for key in keys] + [f'"{string}"'.encode() for string in strings]
    json_words += [word.encode() for word in ["{", "}", "[", "]", ",", "true", "false", "null", "-0", "1e400", "NaN"]]
    write("xgboost_json", json_words)
    ubj_words = [form for key in keys for form in ubj_key(key)]
    ubj_words += [b"SL" + struct.pack(">q", len(string)) + string.encode() for string in strings]
    ubj_words += [marker.encode() for marker in UBJ_MARKERS]
    ubj_words += [b"d" + struct.pack(">f", value) for value in [0.5, float("nan"), float("inf"), -0.0]]
    ubj_words += [b"L" + struct.pack(">q", value) for value in [-1, 2**31, 2**62]]
    write("xgboost_ubj", ubj_words)
    write("lightgbm", [word.encode() for word in LIGHTGBM_WORDS])
    write("onnx", [word.encode() for word in ONNX_WORDS])
    write("pmml", [word.encode() for word in PMML_WORDS])
    write(
        "rows",
        [word.encode() for word in ["amount", "purpose", "housing", "job", "car", "tv", "radio", "own", "rent",
                                    "NaN", "nan", "NA", "null", "None", "inf", "-inf", "infinity", "1e400",
                                    "-0", "0x10", "1_000", ",", "\n", "\r\n", " ", "\t", "\"", "\ufeff"]],
    )


if __name__ == "__main__":
    main()
