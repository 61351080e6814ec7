//! Drift: PSI of the score and CSI of every feature against a baseline, with missing, out-of-range and unseen rates.
//!
//! Index = Σ over bins (a − e)·ln(a / e), where e and a are the baseline's and the current data's shares of rows in
//! the bin, over every bin including the missing bin (and, for categorical features, the "other/unseen" bin). A share
//! of exactly zero is replaced by `epsilon` (default 1e-4) before the sum, in both the baseline and the current data;
//! a bin empty on both sides then adds (ε − ε)·ln 1 = 0. Memory is bounded: one counter per bin.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, FeatureBaseline, FeatureKind, NumericBaseline, Value, check_value};
use crate::error::MonitorError;
use crate::quantile::bin_of;

/// Alert bands of a stability index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// index < shift threshold (default 0.1).
    Stable,
    /// shift ≤ index < major shift threshold (default 0.25): watch.
    Shift,
    /// index ≥ major shift threshold: act.
    MajorShift,
}

/// Options of a drift report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftOptions {
    /// Lower bound of the `shift` band (default 0.1).
    pub shift: f64,
    /// Lower bound of the `major_shift` band (default 0.25).
    pub major_shift: f64,
    /// The share used in place of a zero share (default 1e-4).
    pub epsilon: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions { shift: 0.1, major_shift: 0.25, epsilon: 1e-4 }
    }
}

impl DriftOptions {
    fn validate(&self) -> Result<(), MonitorError> {
        if !(self.shift >= 0.0 && self.major_shift >= self.shift && self.major_shift.is_finite()) {
            return Err(MonitorError::InvalidOption("drift bands need 0 ≤ shift ≤ major_shift < ∞".into()));
        }
        if !(self.epsilon > 0.0 && self.epsilon < 1.0) {
            return Err(MonitorError::InvalidOption("epsilon must be in (0, 1)".into()));
        }
        Ok(())
    }

    /// The band of an index.
    pub fn band(&self, index: f64) -> Band {
        if index >= self.major_shift {
            Band::MajorShift
        } else if index >= self.shift {
            Band::Shift
        } else {
            Band::Stable
        }
    }
}

/// One bin of a stability index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinComparison {
    /// `(-inf, 0.5]`, a category name, `other`, `missing`.
    pub label: String,
    /// Baseline share (before the epsilon replacement).
    pub expected: f64,
    /// Current rows in the bin.
    pub count: u64,
    /// Current share (None with no rows).
    pub actual: Option<f64>,
    /// (a − e)·ln(a / e) with zero shares replaced by epsilon (None with no rows).
    pub contribution: Option<f64>,
}

/// A population (or characteristic) stability index with its bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    /// The index (None with no rows).
    pub index: Option<f64>,
    /// Its band (None with no rows).
    pub band: Option<Band>,
    /// Every bin, the missing bin last.
    pub bins: Vec<BinComparison>,
}

/// One feature's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// The feature's name.
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
    /// CSI and its bins.
    pub stability: Stability,
    /// Share of current rows with no value.
    pub missing_rate: Option<f64>,
    /// Numeric: share of current rows below the baseline minimum (of all rows, missing ones included).
    pub below_min_rate: Option<f64>,
    /// Numeric: share of current rows above the baseline maximum.
    pub above_max_rate: Option<f64>,
    /// Categorical: share of current rows whose category the baseline never saw.
    pub unseen_rate: Option<f64>,
}

/// The drift of one window of current data against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Current rows.
    pub rows: u64,
    /// True when there were no rows: every index and rate is then None.
    pub no_data: bool,
    /// PSI of the score.
    pub score: Stability,
    /// CSI and rates per feature, in spec order.
    pub features: Vec<FeatureDrift>,
    /// The options the report was computed with.
    pub options: DriftOptions,
}

#[derive(Debug, Clone)]
struct NumericCounts {
    edges: Vec<f64>,
    min: Option<f64>,
    max: Option<f64>,
    counts: Vec<u64>,
    missing: u64,
    below_min: u64,
    above_max: u64,
}

impl NumericCounts {
    fn new(baseline: &NumericBaseline) -> Self {
        NumericCounts {
            edges: baseline.edges.clone(),
            min: baseline.min,
            max: baseline.max,
            counts: vec![0; baseline.edges.len() + 1],
            missing: 0,
            below_min: 0,
            above_max: 0,
        }
    }

    fn add(&mut self, x: Option<f64>) {
        match x {
            Some(x) if x.is_finite() => {
                self.counts[bin_of(&self.edges, x)] += 1;
                self.below_min += u64::from(self.min.is_some_and(|m| x < m));
                self.above_max += u64::from(self.max.is_some_and(|m| x > m));
            }
            _ => self.missing += 1,
        }
    }
}

#[derive(Debug, Clone)]
struct CategoricalCounts {
    index: HashMap<String, usize>,
    counts: Vec<u64>,
    unseen: u64,
    missing: u64,
}

#[derive(Debug, Clone)]
enum FeatureCounts {
    Numeric(NumericCounts),
    Categorical(CategoricalCounts),
}

/// Streams current rows against a baseline. Memory: one counter per bin, whatever the number of rows.
#[derive(Debug, Clone)]
pub struct DriftAccumulator {
    baseline: Baseline,
    options: DriftOptions,
    rows: u64,
    score: NumericCounts,
    features: Vec<FeatureCounts>,
}

fn interval_labels(edges: &[f64]) -> Vec<String> {
    let mut labels = Vec::with_capacity(edges.len() + 1);
    let mut previous = "-inf".to_owned();
    for edge in edges {
        labels.push(format!("({previous}, {edge}]"));
        previous = edge.to_string();
    }
    labels.push(format!("({previous}, +inf)"));
    labels
}

impl DriftAccumulator {
    /// An accumulator against the baseline (checked first) with the default options.
    pub fn new(baseline: &Baseline) -> Result<Self, MonitorError> {
        Self::with_options(baseline, DriftOptions::default())
    }

    /// An accumulator with explicit bands and epsilon.
    pub fn with_options(baseline: &Baseline, options: DriftOptions) -> Result<Self, MonitorError> {
        baseline.validate()?;
        options.validate()?;
        let features = baseline
            .features
            .iter()
            .map(|feature| match feature {
                FeatureBaseline::Numeric { distribution, .. } => {
                    FeatureCounts::Numeric(NumericCounts::new(distribution))
                }
                FeatureBaseline::Categorical { distribution, .. } => FeatureCounts::Categorical(CategoricalCounts {
                    index: distribution.categories.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect(),
                    counts: vec![0; distribution.categories.len()],
                    unseen: 0,
                    missing: 0,
                }),
            })
            .collect();
        Ok(DriftAccumulator {
            score: NumericCounts::new(&baseline.score),
            baseline: baseline.clone(),
            options,
            rows: 0,
            features,
        })
    }

    /// Adds one current row (values in spec order, the score when there is one). A refused row changes nothing.
    pub fn add_row(&mut self, values: &[Value], score: Option<f64>) -> Result<(), MonitorError> {
        let specs = &self.baseline.spec.features;
        if values.len() != specs.len() {
            return Err(MonitorError::WrongValueCount { expected: specs.len(), found: values.len() });
        }
        for (feature, value) in specs.iter().zip(values) {
            check_value(feature, value)?;
        }
        self.rows += 1;
        self.score.add(score);
        for (counts, value) in self.features.iter_mut().zip(values) {
            match counts {
                FeatureCounts::Numeric(numeric) => numeric.add(match value {
                    Value::Number(x) => Some(*x),
                    _ => None,
                }),
                FeatureCounts::Categorical(categorical) => match value {
                    Value::Text(text) => match categorical.index.get(text.as_str()) {
                        Some(&i) => categorical.counts[i] += 1,
                        None => categorical.unseen += 1,
                    },
                    _ => categorical.missing += 1,
                },
            }
        }
        Ok(())
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The report. Zero rows give `no_data` and None for every index and rate (JSON has no NaN).
    pub fn finish(&self) -> DriftReport {
        let rows = self.rows;
        let rate = |count: u64| (rows > 0).then(|| count as f64 / rows as f64);
        let score = self.stability(
            interval_labels(&self.baseline.score.edges),
            &self.baseline.score.proportions,
            self.baseline.score.missing_proportion,
            &self.score.counts,
            &[],
            self.score.missing,
        );
        let features = self
            .baseline
            .features
            .iter()
            .zip(&self.features)
            .map(|(baseline, counts)| match (baseline, counts) {
                (FeatureBaseline::Numeric { name, distribution }, FeatureCounts::Numeric(numeric)) => FeatureDrift {
                    name: name.clone(),
                    kind: FeatureKind::Numeric,
                    stability: self.stability(
                        interval_labels(&distribution.edges),
                        &distribution.proportions,
                        distribution.missing_proportion,
                        &numeric.counts,
                        &[],
                        numeric.missing,
                    ),
                    missing_rate: rate(numeric.missing),
                    below_min_rate: rate(numeric.below_min),
                    above_max_rate: rate(numeric.above_max),
                    unseen_rate: None,
                },
                (FeatureBaseline::Categorical { name, distribution }, FeatureCounts::Categorical(categorical)) => {
                    let mut labels = distribution.categories.clone();
                    labels.push("other".to_owned());
                    FeatureDrift {
                        name: name.clone(),
                        kind: FeatureKind::Categorical,
                        stability: self.stability(
                            labels,
                            &distribution.proportions,
                            distribution.missing_proportion,
                            &categorical.counts,
                            &[categorical.unseen],
                            categorical.missing,
                        ),
                        missing_rate: rate(categorical.missing),
                        below_min_rate: None,
                        above_max_rate: None,
                        unseen_rate: rate(categorical.unseen),
                    }
                }
                // `new` builds the counts from the same baseline, so the kinds always agree.
                (FeatureBaseline::Numeric { name, .. } | FeatureBaseline::Categorical { name, .. }, _) => {
                    FeatureDrift {
                        name: name.clone(),
                        kind: FeatureKind::Numeric,
                        stability: Stability { index: None, band: None, bins: Vec::new() },
                        missing_rate: None,
                        below_min_rate: None,
                        above_max_rate: None,
                        unseen_rate: None,
                    }
                }
            })
            .collect();
        DriftReport { rows, no_data: rows == 0, score, features, options: self.options }
    }

    /// One index over bins: labelled bins (the baseline's shares, the current counts), then extra bins the baseline
    /// has no share in (other/unseen), then the missing bin.
    fn stability(
        &self,
        mut labels: Vec<String>,
        expected: &[f64],
        expected_missing: f64,
        counts: &[u64],
        extra: &[u64],
        missing: u64,
    ) -> Stability {
        labels.push("missing".to_owned());
        let epsilon = self.options.epsilon;
        let rows = self.rows;
        let expected_all = expected.iter().copied().chain(extra.iter().map(|_| 0.0)).chain([expected_missing]);
        let counts_all = counts.iter().copied().chain(extra.iter().copied()).chain([missing]);
        let mut index = 0.0;
        let bins: Vec<BinComparison> = labels
            .into_iter()
            .zip(expected_all.zip(counts_all))
            .map(|(label, (e, count))| {
                let actual = (rows > 0).then(|| count as f64 / rows as f64);
                let contribution = actual.map(|a| {
                    let a = if count == 0 { epsilon } else { a };
                    let e = if e == 0.0 { epsilon } else { e };
                    (a - e) * (a / e).ln()
                });
                index += contribution.unwrap_or(0.0);
                BinComparison { label, expected: e, count, actual, contribution }
            })
            .collect();
        let index = (rows > 0).then_some(index);
        Stability { index, band: index.map(|i| self.options.band(i)), bins }
    }
}
