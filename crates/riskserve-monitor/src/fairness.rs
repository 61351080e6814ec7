//! Fairness on an attribute the model does not use: selection rate, adverse impact ratio (four-fifths rule), and the
//! true- and false-positive-rate gaps between groups, as fairlearn's `MetricFrame` computes them.
//!
//! "Positive" is the favourable side everywhere, as in fairlearn's `y_pred = 1` / `y_true = 1`: the prediction is the
//! favourable decision (`decision_positive = true`, e.g. approved) and the true label is a **good** outcome
//! (`outcome = false`). So the selection rate is the approval rate, the true-positive rate is the approval rate among
//! goods (equal opportunity) and the false-positive rate the approval rate among bads. Rows without an attribute value
//! or without a decision are left out of fairness (they still count in the other statistics).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::MonitorError;

/// Options of the fairness statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FairnessOptions {
    /// The group adverse impact ratios divide by; None: the most favoured group (highest selection rate; the first
    /// by name on a tie).
    pub reference_group: Option<String>,
    /// A group breaches the four-fifths rule when its adverse impact ratio is below this (default 0.8).
    pub four_fifths_threshold: f64,
    /// The most distinct groups accepted (default 1000), so a wrong column cannot grow memory without bound.
    pub max_groups: usize,
}

impl Default for FairnessOptions {
    fn default() -> Self {
        FairnessOptions { reference_group: None, four_fifths_threshold: 0.8, max_groups: 1000 }
    }
}

/// One group's rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFairness {
    /// The attribute's value.
    pub group: String,
    /// Rows of the group with a decision.
    pub rows: u64,
    /// Of those, favourable decisions.
    pub selected: u64,
    /// `selected / rows` (fairlearn's `selection_rate`).
    pub selection_rate: f64,
    /// Good outcomes in the group.
    pub good: u64,
    /// Bad outcomes in the group.
    pub bad: u64,
    /// Approved among goods (fairlearn's `true_positive_rate`; None without goods).
    pub true_positive_rate: Option<f64>,
    /// Approved among bads (fairlearn's `false_positive_rate`; None without bads).
    pub false_positive_rate: Option<f64>,
    /// `selection_rate / the reference group's` (None when the reference is absent or selects nobody).
    pub adverse_impact_ratio: Option<f64>,
    /// Adverse impact ratio below the four-fifths threshold.
    pub four_fifths_breach: bool,
}

/// Fairness across the attribute's groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessReport {
    /// Rows with an attribute value and a decision.
    pub rows: u64,
    /// The group adverse impact ratios divide by.
    pub reference_group: Option<String>,
    /// Per group, sorted by name (as fairlearn's `by_group`).
    pub groups: Vec<GroupFairness>,
    /// min / max selection rate (fairlearn's `demographic_parity_ratio`).
    pub demographic_parity_ratio: Option<f64>,
    /// max − min selection rate (fairlearn's `demographic_parity_difference`).
    pub demographic_parity_difference: Option<f64>,
    /// max − min true-positive rate over the groups that have one.
    pub true_positive_rate_gap: Option<f64>,
    /// max − min false-positive rate over the groups that have one.
    pub false_positive_rate_gap: Option<f64>,
    /// The larger of the two gaps that are defined (fairlearn's `equalized_odds_difference`; fairlearn counts an
    /// undefined rate as 0, this report leaves such a group out of that gap).
    pub equalized_odds_difference: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct GroupCounts {
    rows: u64,
    selected: u64,
    good: u64,
    good_selected: u64,
    bad: u64,
    bad_selected: u64,
}

/// Counters per group: six integers each.
#[derive(Debug, Clone)]
pub struct FairnessAccumulator {
    options: FairnessOptions,
    index: HashMap<String, usize>,
    groups: Vec<(String, GroupCounts)>,
}

fn gap(values: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    let max = values.clone().reduce(f64::max)?;
    let min = values.reduce(f64::min)?;
    Some(max - min)
}

impl FairnessAccumulator {
    /// An empty accumulator (the options are checked).
    pub fn new(options: FairnessOptions) -> Result<Self, MonitorError> {
        if !(options.four_fifths_threshold >= 0.0 && options.four_fifths_threshold.is_finite()) {
            return Err(MonitorError::InvalidOption("four_fifths_threshold must be a finite number ≥ 0".into()));
        }
        Ok(FairnessAccumulator { options, index: HashMap::new(), groups: Vec::new() })
    }

    /// Counts one decided row of a group (`bad` is the outcome). Refuses a group beyond `max_groups`.
    pub fn add(&mut self, group: &str, decision_positive: bool, bad: bool) -> Result<(), MonitorError> {
        let slot = match self.index.get(group) {
            Some(&slot) => slot,
            None => {
                if self.groups.len() >= self.options.max_groups {
                    return Err(MonitorError::TooManyGroups(self.options.max_groups));
                }
                self.index.insert(group.to_owned(), self.groups.len());
                self.groups.push((group.to_owned(), GroupCounts::default()));
                self.groups.len() - 1
            }
        };
        let counts = &mut self.groups[slot].1;
        let selected = u64::from(decision_positive);
        counts.rows += 1;
        counts.selected += selected;
        if bad {
            counts.bad += 1;
            counts.bad_selected += selected;
        } else {
            counts.good += 1;
            counts.good_selected += selected;
        }
        Ok(())
    }

    /// The report.
    pub fn finish(&self) -> FairnessReport {
        let mut groups: Vec<&(String, GroupCounts)> = self.groups.iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        let ratio = |x: u64, n: u64| (n > 0).then(|| x as f64 / n as f64);
        let selection = |c: &GroupCounts| c.selected as f64 / c.rows as f64;
        let reference = match &self.options.reference_group {
            Some(name) => Some(name.clone()),
            None => groups
                .iter()
                .fold(None::<(&String, f64)>, |best, (name, counts)| {
                    let rate = selection(counts);
                    match best {
                        Some((_, best_rate)) if best_rate >= rate => best,
                        _ => Some((name, rate)),
                    }
                })
                .map(|(name, _)| name.clone()),
        };
        let reference_rate = reference
            .as_ref()
            .and_then(|name| groups.iter().find(|(g, _)| g == name))
            .map(|(_, counts)| selection(counts))
            .filter(|&rate| rate > 0.0);
        let threshold = self.options.four_fifths_threshold;
        let report_groups: Vec<GroupFairness> = groups
            .iter()
            .map(|(name, c)| {
                let rate = selection(c);
                let air = reference_rate.map(|r| rate / r);
                GroupFairness {
                    group: name.clone(),
                    rows: c.rows,
                    selected: c.selected,
                    selection_rate: rate,
                    good: c.good,
                    bad: c.bad,
                    true_positive_rate: ratio(c.good_selected, c.good),
                    false_positive_rate: ratio(c.bad_selected, c.bad),
                    adverse_impact_ratio: air,
                    four_fifths_breach: air.is_some_and(|a| a < threshold),
                }
            })
            .collect();
        let rates = report_groups.iter().map(|g| g.selection_rate);
        let max_rate = rates.clone().reduce(f64::max);
        let min_rate = rates.clone().reduce(f64::min);
        let tpr_gap = gap(report_groups.iter().filter_map(|g| g.true_positive_rate));
        let fpr_gap = gap(report_groups.iter().filter_map(|g| g.false_positive_rate));
        FairnessReport {
            rows: self.groups.iter().map(|g| g.1.rows).sum(),
            reference_group: reference,
            demographic_parity_ratio: match (min_rate, max_rate) {
                (Some(min), Some(max)) if max > 0.0 => Some(min / max),
                _ => None,
            },
            demographic_parity_difference: gap(rates),
            equalized_odds_difference: match (tpr_gap, fpr_gap) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (Some(gap), None) | (None, Some(gap)) => Some(gap),
                (None, None) => None,
            },
            true_positive_rate_gap: tpr_gap,
            false_positive_rate_gap: fpr_gap,
            groups: report_groups,
        }
    }
}
