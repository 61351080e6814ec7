//! Outcomes once labels mature: AUC, Gini, KS, Brier, calibration by grade (Jeffreys interval, exact binomial test)
//! and, through `fairness`, selection rates and error-rate gaps between groups.
//!
//! Conventions: `outcome = true` is a bad (default) and `probability` is the model's probability of bad, so AUC is
//! `roc_auc_score(outcome, probability)` and KS is `ks_2samp(probabilities of bads, probabilities of goods)`.
//!
//! Memory: AUC and KS are exact, so every (probability, outcome) pair is kept, packed in one u64 (the probability's
//! bits shifted left by one, the outcome in the low bit: a probability in [0, 1] has a zero sign bit, so nothing is
//! lost): 8 bytes a row, 80 MB for 10 million rows (up to twice that while the vector grows), sorted at `finish`.
//! Everything else is a counter per grade and per group.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::baseline::Baseline;
use crate::error::MonitorError;
use crate::fairness::{FairnessAccumulator, FairnessOptions, FairnessReport};
use crate::special::{beta_ppf, binomial_test_two_sided};
use crate::summation::CompensatedSum;

/// Options of an outcome report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutcomeOptions {
    /// Significance level of the Jeffreys interval and of the binomial test (default 0.05).
    pub alpha: f64,
    /// Fairness options (reference group, four-fifths threshold, group bound).
    pub fairness: FairnessOptions,
}

impl Default for OutcomeOptions {
    fn default() -> Self {
        OutcomeOptions { alpha: 0.05, fairness: FairnessOptions::default() }
    }
}

/// Calibration of one grade (or of all rows: calibration in the large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeCalibration {
    /// The grade label (`all` for every row).
    pub grade: String,
    /// Rows in the grade.
    pub rows: u64,
    /// Bad outcomes among them.
    pub bad: u64,
    /// `bad / rows`.
    pub observed_bad_rate: Option<f64>,
    /// The mean predicted probability of bad.
    pub mean_predicted: Option<f64>,
    /// The baseline's bad rate in the grade, when built from a baseline that had outcomes there.
    pub baseline_bad_rate: Option<f64>,
    /// Jeffreys interval of the bad rate: Beta(bad + ½, rows − bad + ½) quantiles at α/2 and 1 − α/2 (no boundary
    /// adjustment at 0 or `rows` bads).
    pub interval_lower: Option<f64>,
    /// The interval's upper end.
    pub interval_upper: Option<f64>,
    /// `scipy.stats.binomtest(bad, rows, mean_predicted).pvalue` (two-sided, exact).
    pub p_value: Option<f64>,
    /// p-value < α: the observed bad rate is not consistent with what the model predicted for these rows.
    pub breach: bool,
}

/// The outcome statistics of one window of labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReport {
    /// Labelled rows.
    pub rows: u64,
    /// Bad outcomes.
    pub bad: u64,
    /// Good outcomes.
    pub good: u64,
    /// Area under the ROC curve (ties count one half), as `sklearn.metrics.roc_auc_score`.
    pub auc: Option<f64>,
    /// 2·AUC − 1.
    pub gini: Option<f64>,
    /// The two-sample Kolmogorov–Smirnov statistic between bads' and goods' probabilities.
    pub ks: Option<f64>,
    /// The probability at which the KS distance is reached (the first, from below).
    pub ks_at: Option<f64>,
    /// Why AUC, Gini and KS are None (no rows, or one class only).
    pub discrimination_unavailable: Option<String>,
    /// Mean squared error of the probability, as `sklearn.metrics.brier_score_loss`.
    pub brier: Option<f64>,
    /// Calibration in the large (every row).
    pub overall: GradeCalibration,
    /// Calibration per grade, in the grade list's order (grades with no rows included, with None statistics).
    pub grades: Vec<GradeCalibration>,
    /// Rows added without a grade (they count everywhere but in the per-grade calibration).
    pub ungraded_rows: u64,
    /// Fairness across the attribute's groups.
    pub fairness: FairnessReport,
    /// The significance level used.
    pub alpha: f64,
}

#[derive(Debug, Clone, Default)]
struct GradeCounts {
    rows: u64,
    bad: u64,
    predicted: CompensatedSum,
}

impl GradeCounts {
    fn add(&mut self, probability: f64, bad: bool) {
        self.rows += 1;
        self.bad += u64::from(bad);
        self.predicted.add(probability);
    }

    fn calibration(&self, grade: &str, baseline_bad_rate: Option<f64>, alpha: f64) -> GradeCalibration {
        let (n, x) = (self.rows, self.bad);
        let some = n > 0;
        let mean = some.then(|| (self.predicted.value() / n as f64).clamp(0.0, 1.0));
        let (a, b) = (x as f64 + 0.5, (n - x) as f64 + 0.5);
        let p_value = mean.and_then(|p| binomial_test_two_sided(x, n, p));
        GradeCalibration {
            grade: grade.to_owned(),
            rows: n,
            bad: x,
            observed_bad_rate: some.then(|| x as f64 / n as f64),
            mean_predicted: mean,
            baseline_bad_rate,
            interval_lower: some.then(|| beta_ppf(alpha / 2.0, a, b)),
            interval_upper: some.then(|| beta_ppf(1.0 - alpha / 2.0, a, b)),
            p_value,
            breach: p_value.is_some_and(|p| p < alpha),
        }
    }
}

/// Streams labelled rows. See the module documentation for memory.
#[derive(Debug, Clone)]
pub struct OutcomeAccumulator {
    options: OutcomeOptions,
    grade_names: Vec<String>,
    baseline_rates: Vec<Option<f64>>,
    grade_index: HashMap<String, usize>,
    grades: Vec<GradeCounts>,
    overall: GradeCounts,
    ungraded: u64,
    squared_error: CompensatedSum,
    pairs: Vec<u64>,
    fairness: FairnessAccumulator,
}

impl OutcomeAccumulator {
    /// An accumulator over the baseline's grades, which also reports the baseline's bad rate per grade.
    pub fn from_baseline(baseline: &Baseline, options: OutcomeOptions) -> Result<Self, MonitorError> {
        let mut accumulator = Self::new(&baseline.spec.grades, options)?;
        accumulator.baseline_rates = baseline.grades.iter().map(|g| g.bad_rate).collect();
        accumulator.baseline_rates.resize(accumulator.grade_names.len(), None);
        Ok(accumulator)
    }

    /// An accumulator over a grade list (unique labels; may be empty).
    pub fn new(grades: &[String], options: OutcomeOptions) -> Result<Self, MonitorError> {
        if !(options.alpha > 0.0 && options.alpha < 1.0) {
            return Err(MonitorError::InvalidOption("alpha must be in (0, 1)".into()));
        }
        let mut grade_index = HashMap::new();
        for (i, grade) in grades.iter().enumerate() {
            if grade_index.insert(grade.clone(), i).is_some() {
                return Err(MonitorError::InvalidSpec(format!("grade `{grade}` is listed twice")));
            }
        }
        Ok(OutcomeAccumulator {
            fairness: FairnessAccumulator::new(options.fairness.clone())?,
            options,
            grade_names: grades.to_vec(),
            baseline_rates: vec![None; grades.len()],
            grade_index,
            grades: vec![GradeCounts::default(); grades.len()],
            overall: GradeCounts::default(),
            ungraded: 0,
            squared_error: CompensatedSum::default(),
            pairs: Vec::new(),
        })
    }

    /// Adds one labelled row: the predicted probability of bad, the outcome (`true` = bad), its grade, the value of
    /// the fairness attribute and whether the decision was favourable (approved). A refused row changes nothing.
    pub fn add(
        &mut self,
        probability: f64,
        outcome: bool,
        grade: Option<&str>,
        attribute: Option<&str>,
        decision_positive: Option<bool>,
    ) -> Result<(), MonitorError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(MonitorError::InvalidProbability(probability));
        }
        let slot = match grade {
            Some(g) => Some(*self.grade_index.get(g).ok_or_else(|| MonitorError::UnknownGrade(g.to_owned()))?),
            None => None,
        };
        if let (Some(attribute), Some(decision)) = (attribute, decision_positive) {
            self.fairness.add(attribute, decision, outcome)?;
        }
        // -0.0 becomes 0.0, so the packed key has a zero sign bit.
        let probability = probability + 0.0;
        match slot {
            Some(slot) => self.grades[slot].add(probability, outcome),
            None => self.ungraded += 1,
        }
        self.overall.add(probability, outcome);
        let error = probability - f64::from(u8::from(outcome));
        self.squared_error.add(error * error);
        self.pairs.push((probability.to_bits() << 1) | u64::from(outcome));
        Ok(())
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.overall.rows
    }

    /// Sorts the pairs once and computes every statistic.
    pub fn finish(mut self) -> OutcomeReport {
        let rows = self.overall.rows;
        let bad = self.overall.bad;
        let good = rows - bad;
        let (auc, ks, ks_at) = if bad > 0 && good > 0 {
            self.pairs.sort_unstable();
            let (auc, ks, ks_at) = discrimination(&self.pairs, bad, good);
            (Some(auc), Some(ks), Some(ks_at))
        } else {
            (None, None, None)
        };
        let discrimination_unavailable = if rows == 0 {
            Some("no rows".to_owned())
        } else if bad == 0 {
            Some("only good outcomes (no bads)".to_owned())
        } else if good == 0 {
            Some("only bad outcomes (no goods)".to_owned())
        } else {
            None
        };
        let alpha = self.options.alpha;
        let grades = self
            .grade_names
            .iter()
            .zip(&self.grades)
            .zip(&self.baseline_rates)
            .map(|((name, counts), &rate)| counts.calibration(name, rate, alpha))
            .collect();
        OutcomeReport {
            rows,
            bad,
            good,
            auc,
            gini: auc.map(|a| 2.0 * a - 1.0),
            ks,
            ks_at,
            discrimination_unavailable,
            brier: (rows > 0).then(|| self.squared_error.value() / rows as f64),
            overall: self.overall.calibration("all", None, alpha),
            grades,
            ungraded_rows: self.ungraded,
            fairness: self.fairness.finish(),
            alpha,
        }
    }
}

/// AUC (Mann–Whitney with ties counting one half, in exact integers) and KS over sorted packed pairs.
fn discrimination(sorted: &[u64], bad: u64, good: u64) -> (f64, f64, f64) {
    let (mut goods_below, mut bads_below) = (0u64, 0u64);
    let mut twice_concordant: u128 = 0;
    // KS in exact integers: |F_bad − F_good| = |bads_below·good − goods_below·bad| / (bad·good), divided once at the
    // end, so the statistic is the correctly rounded rational (scipy's exact mode rounds to the same lattice value;
    // its asymptotic mode, above 10,000 rows, subtracts two rounded quotients and can differ by one ulp).
    let (mut ks_numerator, mut ks_at) = (0u128, 0.0_f64);
    let mut start = 0;
    while start < sorted.len() {
        let key = sorted[start] >> 1;
        let mut end = start;
        let (mut group_bad, mut group_good) = (0u64, 0u64);
        while end < sorted.len() && sorted[end] >> 1 == key {
            if sorted[end] & 1 == 1 {
                group_bad += 1;
            } else {
                group_good += 1;
            }
            end += 1;
        }
        // A bad scores above every good below its score (1) and ties with the goods of its own score (½).
        twice_concordant += u128::from(group_bad) * u128::from(2 * goods_below + group_good);
        goods_below += group_good;
        bads_below += group_bad;
        let distance = (u128::from(bads_below) * u128::from(good)).abs_diff(u128::from(goods_below) * u128::from(bad));
        if distance > ks_numerator {
            ks_numerator = distance;
            ks_at = f64::from_bits(key);
        }
        start = end;
    }
    let pairs = bad as f64 * good as f64;
    let auc = twice_concordant as f64 / (2.0 * pairs);
    (auc, ks_numerator as f64 / pairs, ks_at)
}
