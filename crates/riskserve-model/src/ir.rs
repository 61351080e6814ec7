//! The one model representation that every importer produces and the evaluator compiles.
//!
//! The representation is plain data: importers fill it in, [`Model::validate`] checks every
//! structural invariant once, and [`crate::Predictor`] compiles it into the fast layout. Nothing
//! here depends on the format a model came from; format quirks (LightGBM's `<=`, ONNX's branch
//! modes, XGBoost's probability-space `base_score`) are resolved by the importer.

use crate::error::{Format, ModelError};
use crate::preprocess::FeatureProgram;
use crate::scorecard::Scorecard;

/// A loaded model: its inputs, an optional feature program that turns inputs into the model's
/// features, the model itself, and how its raw output becomes the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The inputs a caller supplies, in order. Rows are `f64` slices of this length; a missing
    /// value is NaN and a category is its code (see [`FeatureKind::Categorical`]).
    pub inputs: Vec<Feature>,
    /// Turns the inputs into the feature vector the body reads (ONNX preprocessing). `None` means
    /// the body reads the inputs directly.
    pub preprocess: Option<FeatureProgram>,
    pub body: ModelBody,
    pub output: Output,
    /// Where the model came from, for descriptions and error messages.
    pub source: Format,
}

/// One input of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    /// A rewrite applied to the raw value before anything reads it (LightGBM's missing types).
    pub missing: MissingRule,
}

impl Feature {
    /// A numeric feature with no missing-value rewrite.
    pub fn numeric(name: impl Into<String>) -> Feature {
        Feature { name: name.into(), kind: FeatureKind::Numeric, missing: MissingRule::AsIs }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    Numeric,
    /// Values are category codes (non-negative integers as `f64`). When `categories` is known, the
    /// string `categories[i]` has code `i`, and a string outside the list is an unknown category,
    /// which follows `unknown`.
    Categorical {
        categories: Option<Vec<String>>,
        unknown: UnknownCategory,
    },
}

/// What an unknown category string becomes, following the library that wrote the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCategory {
    /// Treated as a missing value (LightGBM with pandas categories).
    Missing,
    /// Refused with an error naming the row and column (XGBoost: "category not in the training
    /// set").
    Error,
    /// A valid value the model does not list: it gets the code `categories.len()`, which no
    /// category test holds, so it is unequal to every listed category (PMML's open value lists
    /// and `invalidValueTreatment="asIs"`).
    Unlisted,
}

/// How a raw value is rewritten before the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingRule {
    AsIs,
    /// NaN becomes 0.0 (LightGBM's missing type `None`).
    NanAsZero,
    /// Values with |x| <= 1e-35 become NaN (LightGBM's missing type `Zero`).
    ZeroAsMissing,
}

/// LightGBM's `kZeroThreshold`. LightGBM declares it `const double kZeroThreshold = 1e-35f`: the
/// f32 literal widened, 1.0000000180025095e-35, not the double 1e-35.
pub const LIGHTGBM_ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

impl MissingRule {
    #[inline]
    pub fn apply(self, value: f64) -> f64 {
        match self {
            MissingRule::AsIs => value,
            MissingRule::NanAsZero => {
                if value.is_nan() {
                    0.0
                } else {
                    value
                }
            }
            MissingRule::ZeroAsMissing => {
                if (-LIGHTGBM_ZERO_THRESHOLD..=LIGHTGBM_ZERO_THRESHOLD).contains(&value) {
                    f64::NAN
                } else {
                    value
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelBody {
    Trees(TreeEnsemble),
    Linear(LinearModel),
    Scorecard(Scorecard),
}

/// The arithmetic a model is scored in, matching the library that trained it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Inputs are rounded to f32, thresholds and leaves are f32, sums are f32 in tree order
    /// (XGBoost, ONNX Runtime).
    F32,
    /// Everything in f64 (LightGBM, scikit-learn).
    F64,
}

/// How leaf values of many trees combine into a margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// margin[k] = base_margin[k] + Σ leaves of trees with output k.
    Sum,
    /// margin[k] = base_margin[k] + (Σ leaves of trees with output k) / (number of trees with output k)
    /// (random forests).
    Mean,
}

/// A tree ensemble: gradient boosting or a random forest.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsemble {
    pub trees: Vec<Tree>,
    /// Length of the margin vector: 1 for binary and regression, the class count for multi-class.
    pub num_outputs: usize,
    /// The margin before any tree, one per output, already in margin space.
    pub base_margin: Vec<f64>,
    pub aggregation: Aggregation,
    pub precision: Precision,
    /// Number of features the trees index (the body's feature vector length).
    pub num_features: usize,
}

/// One tree; the root is `nodes[0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// The margin entry this tree's leaves add to.
    pub output: u32,
    /// Per node (indexed like `nodes`), the training cover: the weight of training data that
    /// reached it (XGBoost's `sum_hessian`, LightGBM's `internal_count`/`leaf_count`). Scoring
    /// ignores it; exact TreeSHAP needs it. `None` when the format does not record it.
    pub cover: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf {
        value: f64,
    },
    Split {
        feature: u32,
        test: SplitTest,
        left: u32,
        right: u32,
        /// Where a missing (NaN) value goes.
        missing: Direction,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SplitTest {
    /// Goes left iff `x < threshold`. A library's `x <= t` is imported as `x < next_up(t)` in
    /// the model's precision; for [`Precision::F32`] the threshold must be an exact f32 value.
    LessThan(f64),
    /// A categorical split. The value is truncated to an integer code; a code in `categories`
    /// (sorted, deduplicated) goes `in_set`, anything else (negative or huge values) goes the
    /// other way. NaN goes the node's `missing` direction. The precision decides the edge
    /// cases as the libraries do: in f32 (XGBoost) any negative value is not in the set and
    /// codes stop at 2^24; in f64 (LightGBM) values in (-1, 0) truncate to category 0.
    CategoryIn { categories: Vec<u32>, in_set: Direction },
}

/// A linear model: margin[k] = intercepts[k] + Σ_j coefficients[k * num_features + j] · x[j].
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub num_features: usize,
    pub num_outputs: usize,
    pub coefficients: Vec<f64>,
    pub intercepts: Vec<f64>,
}

/// How the margin vector becomes the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub transform: Transform,
    pub kind: OutputKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    Identity,
    /// 1 / (1 + exp(-scale · x)) on every margin entry.
    Sigmoid {
        scale: f64,
    },
    /// Softmax over the margin vector.
    Softmax,
    /// exp(x) on every margin entry (Poisson, gamma, Tweedie).
    Exp,
}

/// What the columns of the answer are.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    /// Binary classifier: one column `probability`, the positive class's probability.
    Probability,
    /// Multi-class classifier: columns `probability_0`, ..., one per class.
    ClassProbabilities,
    /// Multi-class classifier that answers the index of the most probable class (`class`).
    ClassLabel,
    /// A raw margin (`margin`), such as XGBoost's `binary:logitraw`.
    Margin,
    /// Regression (`prediction`), one column per output (`prediction_0`... when more than one).
    Value,
    /// A scorecard: `score`, then `reason_code_1`... as the scorecard defines.
    Score,
}

impl Model {
    /// The body's feature vector length.
    pub fn num_body_features(&self) -> usize {
        match &self.body {
            ModelBody::Trees(ensemble) => ensemble.num_features,
            ModelBody::Linear(linear) => linear.num_features,
            ModelBody::Scorecard(_) => self.inputs.len(),
        }
    }

    /// Length of the margin vector.
    pub fn num_outputs(&self) -> usize {
        match &self.body {
            ModelBody::Trees(ensemble) => ensemble.num_outputs,
            ModelBody::Linear(linear) => linear.num_outputs,
            ModelBody::Scorecard(_) => 1,
        }
    }

    /// The names of the numeric answer columns, in order.
    pub fn output_columns(&self) -> Vec<String> {
        let n = self.num_outputs();
        match &self.output.kind {
            OutputKind::Probability => vec!["probability".into()],
            OutputKind::ClassProbabilities => (0..n).map(|k| format!("probability_{k}")).collect(),
            OutputKind::ClassLabel => vec!["class".into()],
            OutputKind::Margin if n == 1 => vec!["margin".into()],
            OutputKind::Margin => (0..n).map(|k| format!("margin_{k}")).collect(),
            OutputKind::Value if n == 1 => vec!["prediction".into()],
            OutputKind::Value => (0..n).map(|k| format!("prediction_{k}")).collect(),
            OutputKind::Score => vec!["score".into()],
        }
    }

    /// Checks every structural invariant the evaluator relies on. Importers call this last; the
    /// evaluator calls it again, so a hostile file can never reach the hot path unchecked.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |message: String| ModelError::invalid(self.source, message);
        let num_features = self.num_body_features();
        match &self.preprocess {
            Some(program) => program.validate(self.inputs.len(), num_features).map_err(invalid)?,
            None => {
                if self.inputs.len() != num_features {
                    return Err(invalid(format!(
                        "the model reads {num_features} features but declares {} inputs",
                        self.inputs.len()
                    )));
                }
            }
        }
        let num_outputs = self.num_outputs();
        if num_outputs == 0 {
            return Err(invalid("the model has no outputs".into()));
        }
        match (&self.output.kind, num_outputs) {
            (OutputKind::Probability, 1) | (OutputKind::Score, 1) => {}
            (OutputKind::Probability, n) => {
                return Err(invalid(format!("a binary probability needs 1 output, not {n}")));
            }
            (OutputKind::ClassProbabilities | OutputKind::ClassLabel, n) if n < 2 => {
                return Err(invalid(format!("a multi-class output needs at least 2 classes, not {n}")));
            }
            _ => {}
        }
        match &self.body {
            ModelBody::Trees(ensemble) => ensemble.validate(num_features).map_err(invalid),
            ModelBody::Linear(linear) => linear.validate().map_err(invalid),
            ModelBody::Scorecard(scorecard) => scorecard.validate(self.inputs.len()).map_err(invalid),
        }
    }
}

impl TreeEnsemble {
    fn validate(&self, num_features: usize) -> Result<(), String> {
        if self.base_margin.len() != self.num_outputs {
            return Err(format!("base margin has {} values for {} outputs", self.base_margin.len(), self.num_outputs));
        }
        if let Some(bad) = self.base_margin.iter().position(|v| !v.is_finite()) {
            return Err(format!("base margin {bad} is not finite"));
        }
        if num_features > u32::MAX as usize / 2 {
            return Err(format!("{num_features} features is more than supported"));
        }
        for (index, tree) in self.trees.iter().enumerate() {
            tree.validate(num_features, self.num_outputs, self.precision)
                .map_err(|message| format!("tree {index}: {message}"))?;
        }
        Ok(())
    }
}

/// The most nodes one tree may have; far above anything a library writes, low enough that the
/// compiled layout's 32-bit indices can never overflow.
pub const MAX_NODES_PER_TREE: usize = 1 << 24;

impl Tree {
    fn validate(&self, num_features: usize, num_outputs: usize, precision: Precision) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("has no nodes".into());
        }
        if self.nodes.len() > MAX_NODES_PER_TREE {
            return Err(format!("has {} nodes, more than {MAX_NODES_PER_TREE}", self.nodes.len()));
        }
        if self.output as usize >= num_outputs {
            return Err(format!("adds to output {} of {num_outputs}", self.output));
        }
        if let Some(cover) = &self.cover
            && cover.len() != self.nodes.len()
        {
            return Err(format!("has {} cover values for {} nodes", cover.len(), self.nodes.len()));
        }
        // Every node must be reached exactly once from the root: no cycles, no shared children,
        // no orphans.
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![0u32];
        seen[0] = true;
        let mut reached = 1usize;
        while let Some(index) = stack.pop() {
            match &self.nodes[index as usize] {
                Node::Leaf { value } => {
                    if !value.is_finite() {
                        return Err(format!("leaf {index} has a value that is not finite"));
                    }
                    if precision == Precision::F32 && (*value as f32).is_infinite() {
                        return Err(format!("leaf {index} overflows f32"));
                    }
                }
                Node::Split { feature, test, left, right, .. } => {
                    if *feature as usize >= num_features {
                        return Err(format!(
                            "node {index} splits on feature {feature} but the model has {num_features}"
                        ));
                    }
                    match test {
                        SplitTest::LessThan(threshold) => {
                            if threshold.is_nan() {
                                return Err(format!("node {index} has a NaN threshold"));
                            }
                            if precision == Precision::F32 && (*threshold as f32) as f64 != *threshold {
                                return Err(format!("node {index} has a threshold that is not an f32 value"));
                            }
                        }
                        SplitTest::CategoryIn { categories, .. } => {
                            if categories.windows(2).any(|pair| pair[0] >= pair[1]) {
                                return Err(format!("node {index} has categories that are not sorted and distinct"));
                            }
                        }
                    }
                    for child in [*left, *right] {
                        let slot = seen.get_mut(child as usize).ok_or_else(|| {
                            format!("node {index} has child {child} outside the tree of {} nodes", self.nodes.len())
                        })?;
                        if *slot {
                            return Err(format!("node {child} is reached twice (a cycle or a shared child)"));
                        }
                        *slot = true;
                        reached += 1;
                        stack.push(child);
                    }
                }
            }
        }
        if reached != self.nodes.len() {
            return Err(format!(
                "{} of {} nodes are not reachable from the root",
                self.nodes.len() - reached,
                self.nodes.len()
            ));
        }
        Ok(())
    }

    /// The longest root-to-leaf path, counted in splits.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(0u32, 0usize)];
        while let Some((index, depth)) = stack.pop() {
            match &self.nodes[index as usize] {
                Node::Leaf { .. } => deepest = deepest.max(depth),
                Node::Split { left, right, .. } => {
                    stack.push((*left, depth + 1));
                    stack.push((*right, depth + 1));
                }
            }
        }
        deepest
    }
}

impl LinearModel {
    fn validate(&self) -> Result<(), String> {
        if self.coefficients.len() != self.num_features.saturating_mul(self.num_outputs) {
            return Err(format!(
                "{} coefficients for {} outputs of {} features",
                self.coefficients.len(),
                self.num_outputs,
                self.num_features
            ));
        }
        if self.intercepts.len() != self.num_outputs {
            return Err(format!("{} intercepts for {} outputs", self.intercepts.len(), self.num_outputs));
        }
        if self.coefficients.iter().chain(&self.intercepts).any(|v| !v.is_finite()) {
            return Err("a coefficient or intercept is not finite".into());
        }
        Ok(())
    }
}
