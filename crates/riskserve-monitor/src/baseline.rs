//! Baselines: the expected distribution of every feature, of the score and of the bad rate per grade, built from a
//! training or validation file in two passes (values kept, sorted at `finish`) so quantile edges are exact.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::MonitorError;
use crate::quantile::{bin_of, quantile_edges};

/// The most quantile bins a spec may ask for.
pub const MAX_BINS: usize = 1000;

/// One cell of a row. Non-finite numbers (NaN, ±∞) count as missing everywhere. In JSON: a number, a string or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A numeric cell.
    Number(f64),
    /// A categorical cell.
    Text(String),
    /// No value.
    Missing,
}

impl Value {
    fn kind_name(&self) -> &'static str {
        match self {
            Value::Number(x) if x.is_finite() => "a number",
            Value::Number(_) | Value::Missing => "a missing value",
            Value::Text(_) => "text",
        }
    }
}

/// What a feature holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Numbers, binned by baseline quantiles.
    Numeric,
    /// Text categories, binned by baseline category.
    Categorical,
}

/// One monitored feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The feature's name (unique in the spec).
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
}

fn default_bins() -> usize {
    10
}

/// What a baseline is built over: the features in row order, the quantile bin count and the grades in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSpec {
    /// The features, in the order of a row's values.
    pub features: Vec<FeatureSpec>,
    /// Quantile bins for numeric features and the score (default 10: deciles), 1 to 1000.
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// The grade labels of the master scale, best first (unique).
    #[serde(default)]
    pub grades: Vec<String>,
}

impl BaselineSpec {
    /// Checks names are unique and the bin count is in range.
    pub fn validate(&self) -> Result<(), MonitorError> {
        if self.bins == 0 || self.bins > MAX_BINS {
            return Err(MonitorError::InvalidSpec(format!("bins must be between 1 and {MAX_BINS}, not {}", self.bins)));
        }
        let mut names = std::collections::HashSet::new();
        for feature in &self.features {
            if !names.insert(feature.name.as_str()) {
                return Err(MonitorError::InvalidSpec(format!("feature `{}` is listed twice", feature.name)));
            }
        }
        let mut grades = std::collections::HashSet::new();
        for grade in &self.grades {
            if !grades.insert(grade.as_str()) {
                return Err(MonitorError::InvalidSpec(format!("grade `{grade}` is listed twice")));
            }
        }
        Ok(())
    }
}

/// The baseline distribution of a numeric variable (a numeric feature or the score).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericBaseline {
    /// Interior bin edges, strictly increasing; bins are `(−∞, e0]`, `(e0, e1]`, …, `(e_last, +∞)`.
    pub edges: Vec<f64>,
    /// Baseline rows per bin (`edges.len() + 1` entries).
    pub counts: Vec<u64>,
    /// Baseline rows with no value (the missing bin).
    pub missing: u64,
    /// `counts / rows` per bin.
    pub proportions: Vec<f64>,
    /// `missing / rows`.
    pub missing_proportion: f64,
    /// The smallest baseline value (None when every value was missing).
    pub min: Option<f64>,
    /// The largest baseline value.
    pub max: Option<f64>,
}

/// The baseline distribution of a categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalBaseline {
    /// Every category seen in the baseline, sorted by byte order.
    pub categories: Vec<String>,
    /// Baseline rows per category.
    pub counts: Vec<u64>,
    /// Baseline rows with no value.
    pub missing: u64,
    /// `counts / rows` per category.
    pub proportions: Vec<f64>,
    /// `missing / rows`. (The "other/unseen" bin is 0 in the baseline by construction.)
    pub missing_proportion: f64,
}

/// One feature's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureBaseline {
    /// A numeric feature.
    Numeric {
        /// The feature's name.
        name: String,
        /// Its distribution.
        distribution: NumericBaseline,
    },
    /// A categorical feature.
    Categorical {
        /// The feature's name.
        name: String,
        /// Its distribution.
        distribution: CategoricalBaseline,
    },
}

impl FeatureBaseline {
    /// The feature's name.
    pub fn name(&self) -> &str {
        match self {
            FeatureBaseline::Numeric { name, .. } | FeatureBaseline::Categorical { name, .. } => name,
        }
    }
}

/// The baseline's bad rate in one grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeBaseline {
    /// The grade label.
    pub grade: String,
    /// Baseline rows in the grade.
    pub rows: u64,
    /// Of those, rows with a known outcome.
    pub with_outcome: u64,
    /// Of those, bad outcomes.
    pub bad: u64,
    /// `bad / with_outcome` (None with no outcome).
    pub bad_rate: Option<f64>,
}

/// What current data is compared against. Serialize it to keep it; `DriftAccumulator::new` checks one read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The spec it was built from.
    pub spec: BaselineSpec,
    /// Baseline rows.
    pub rows: u64,
    /// One entry per feature, in spec order.
    pub features: Vec<FeatureBaseline>,
    /// The score's distribution (rows without a score are its missing bin).
    pub score: NumericBaseline,
    /// One entry per grade, in spec order.
    pub grades: Vec<GradeBaseline>,
}

impl NumericBaseline {
    fn from_values(mut values: Vec<f64>, missing: u64, bins: usize) -> Self {
        values.sort_unstable_by(f64::total_cmp);
        let edges = quantile_edges(&values, bins);
        let mut counts = vec![0u64; edges.len() + 1];
        for &v in &values {
            counts[bin_of(&edges, v)] += 1;
        }
        let rows = values.len() as u64 + missing;
        let share = |c: u64| if rows == 0 { 0.0 } else { c as f64 / rows as f64 };
        NumericBaseline {
            proportions: counts.iter().map(|&c| share(c)).collect(),
            missing_proportion: share(missing),
            min: values.first().copied(),
            max: values.last().copied(),
            edges,
            counts,
            missing,
        }
    }

    pub(crate) fn check(&self, what: &str) -> Result<(), MonitorError> {
        let bad = |message: &str| Err(MonitorError::InvalidBaseline(format!("{what}: {message}")));
        if self.edges.iter().any(|e| !e.is_finite()) || self.edges.windows(2).any(|w| w[0] >= w[1]) {
            return bad("edges must be finite and strictly increasing");
        }
        if self.counts.len() != self.edges.len() + 1 || self.proportions.len() != self.counts.len() {
            return bad("counts and proportions need one entry per bin");
        }
        Ok(())
    }
}

enum FeatureValues {
    Numeric { values: Vec<f64>, missing: u64 },
    Categorical { counts: HashMap<String, u64>, missing: u64 },
}

/// Builds a `Baseline` from rows. Memory: it keeps every finite value of every numeric feature and of the score
/// (8 bytes each: 8·(numeric features + 1) bytes a row, so 3 million rows of 20 numeric features take about 500 MB)
/// and one counter per distinct category, because exact quantile edges need all the values at once.
pub struct BaselineBuilder {
    spec: BaselineSpec,
    rows: u64,
    features: Vec<FeatureValues>,
    scores: Vec<f64>,
    score_missing: u64,
    grade_index: HashMap<String, usize>,
    grades: Vec<GradeBaseline>,
}

impl BaselineBuilder {
    /// A builder for the spec (checked first).
    pub fn new(spec: BaselineSpec) -> Result<Self, MonitorError> {
        spec.validate()?;
        let features = spec
            .features
            .iter()
            .map(|f| match f.kind {
                FeatureKind::Numeric => FeatureValues::Numeric { values: Vec::new(), missing: 0 },
                FeatureKind::Categorical => FeatureValues::Categorical { counts: HashMap::new(), missing: 0 },
            })
            .collect();
        let grade_index = spec.grades.iter().enumerate().map(|(i, g)| (g.clone(), i)).collect();
        let grades = spec
            .grades
            .iter()
            .map(|g| GradeBaseline { grade: g.clone(), rows: 0, with_outcome: 0, bad: 0, bad_rate: None })
            .collect();
        Ok(BaselineBuilder { spec, rows: 0, features, scores: Vec::new(), score_missing: 0, grade_index, grades })
    }

    /// Adds one baseline row: one value per feature in spec order, the model's score, its grade and the outcome
    /// (`true` = bad) when known. A refused row changes nothing.
    pub fn add_row(
        &mut self,
        values: &[Value],
        score: Option<f64>,
        grade: Option<&str>,
        outcome: Option<bool>,
    ) -> Result<(), MonitorError> {
        if values.len() != self.spec.features.len() {
            return Err(MonitorError::WrongValueCount { expected: self.spec.features.len(), found: values.len() });
        }
        for (feature, value) in self.spec.features.iter().zip(values) {
            check_value(feature, value)?;
        }
        let grade_slot = match grade {
            Some(g) => Some(*self.grade_index.get(g).ok_or_else(|| MonitorError::UnknownGrade(g.to_owned()))?),
            None => None,
        };
        self.rows += 1;
        for (slot, value) in self.features.iter_mut().zip(values) {
            match (slot, value) {
                (FeatureValues::Numeric { values, .. }, Value::Number(x)) if x.is_finite() => values.push(*x),
                (FeatureValues::Categorical { counts, .. }, Value::Text(text)) => {
                    if let Some(count) = counts.get_mut(text.as_str()) {
                        *count += 1;
                    } else {
                        counts.insert(text.clone(), 1);
                    }
                }
                (FeatureValues::Numeric { missing, .. } | FeatureValues::Categorical { missing, .. }, _) => {
                    *missing += 1
                }
            }
        }
        match score {
            Some(s) if s.is_finite() => self.scores.push(s),
            _ => self.score_missing += 1,
        }
        if let Some(slot) = grade_slot {
            let entry = &mut self.grades[slot];
            entry.rows += 1;
            if let Some(bad) = outcome {
                entry.with_outcome += 1;
                entry.bad += u64::from(bad);
            }
        }
        Ok(())
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Sorts the kept values and computes edges, proportions and bad rates. Refuses a baseline of zero rows.
    pub fn finish(self) -> Result<Baseline, MonitorError> {
        if self.rows == 0 {
            return Err(MonitorError::EmptyBaseline);
        }
        let rows = self.rows;
        let bins = self.spec.bins;
        let features = self
            .spec
            .features
            .iter()
            .zip(self.features)
            .map(|(feature, values)| match values {
                FeatureValues::Numeric { values, missing } => FeatureBaseline::Numeric {
                    name: feature.name.clone(),
                    distribution: NumericBaseline::from_values(values, missing, bins),
                },
                FeatureValues::Categorical { counts, missing } => {
                    let mut pairs: Vec<(String, u64)> = counts.into_iter().collect();
                    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    let share = |c: u64| c as f64 / rows as f64;
                    FeatureBaseline::Categorical {
                        name: feature.name.clone(),
                        distribution: CategoricalBaseline {
                            proportions: pairs.iter().map(|p| share(p.1)).collect(),
                            counts: pairs.iter().map(|p| p.1).collect(),
                            categories: pairs.into_iter().map(|p| p.0).collect(),
                            missing_proportion: share(missing),
                            missing,
                        },
                    }
                }
            })
            .collect();
        let score = NumericBaseline::from_values(self.scores, self.score_missing, bins);
        let grades = self
            .grades
            .into_iter()
            .map(|mut g| {
                g.bad_rate = (g.with_outcome > 0).then(|| g.bad as f64 / g.with_outcome as f64);
                g
            })
            .collect();
        Ok(Baseline { spec: self.spec, rows, features, score, grades })
    }
}

/// Whether a value fits its feature: numbers (or missing) for numeric, text (or missing) for categorical.
pub(crate) fn check_value(feature: &FeatureSpec, value: &Value) -> Result<(), MonitorError> {
    let fits = match (feature.kind, value) {
        (_, Value::Missing) => true,
        (FeatureKind::Numeric, Value::Number(_)) => true,
        (FeatureKind::Categorical, Value::Text(_)) => true,
        // A NaN in a categorical column is a missing value, whatever its type.
        (FeatureKind::Categorical, Value::Number(x)) => !x.is_finite(),
        (FeatureKind::Numeric, Value::Text(_)) => false,
    };
    if fits {
        return Ok(());
    }
    let expected = match feature.kind {
        FeatureKind::Numeric => "numeric",
        FeatureKind::Categorical => "categorical",
    };
    Err(MonitorError::WrongKind { feature: feature.name.clone(), expected, found: value.kind_name() })
}

impl Baseline {
    /// Checks a baseline (typically deserialized) is consistent with its spec, so accumulators can index it freely.
    pub fn validate(&self) -> Result<(), MonitorError> {
        self.spec.validate()?;
        if self.rows == 0 {
            return Err(MonitorError::EmptyBaseline);
        }
        if self.features.len() != self.spec.features.len() {
            return Err(MonitorError::InvalidBaseline("one entry per spec feature is needed".into()));
        }
        for (spec, feature) in self.spec.features.iter().zip(&self.features) {
            if spec.name != feature.name() {
                return Err(MonitorError::InvalidBaseline(format!("feature `{}` is out of place", feature.name())));
            }
            match (spec.kind, feature) {
                (FeatureKind::Numeric, FeatureBaseline::Numeric { distribution, .. }) => {
                    distribution.check(&spec.name)?
                }
                (FeatureKind::Categorical, FeatureBaseline::Categorical { distribution, .. }) => {
                    let n = distribution.categories.len();
                    if distribution.counts.len() != n || distribution.proportions.len() != n {
                        return Err(MonitorError::InvalidBaseline(format!(
                            "{}: counts and proportions need one entry per category",
                            spec.name
                        )));
                    }
                }
                _ => {
                    return Err(MonitorError::InvalidBaseline(format!("feature `{}` has the wrong kind", spec.name)));
                }
            }
        }
        self.score.check("score")?;
        if self.grades.len() != self.spec.grades.len()
            || self.grades.iter().zip(&self.spec.grades).any(|(g, name)| &g.grade != name)
        {
            return Err(MonitorError::InvalidBaseline("one entry per spec grade is needed, in order".into()));
        }
        Ok(())
    }
}
