//! `MonitorError`: every refusal of the monitoring statistics, each naming what was wrong.

/// Why a spec, a baseline, a row or an option was refused. Messages have no trailing period.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MonitorError {
    /// The baseline spec cannot be used (duplicate names, bin count out of range).
    #[error("invalid baseline spec: {0}")]
    InvalidSpec(String),
    /// A baseline (typically read back from JSON) is not internally consistent.
    #[error("invalid baseline: {0}")]
    InvalidBaseline(String),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A row does not have one value per feature.
    #[error("a row has {found} values but the baseline has {expected} features")]
    WrongValueCount {
        /// The number of features.
        expected: usize,
        /// The number of values in the row.
        found: usize,
    },
    /// A value of the wrong kind for its feature (text for a numeric feature, a number for a categorical one).
    #[error("feature `{feature}` is {expected} but the row holds {found}")]
    WrongKind {
        /// The feature's name.
        feature: String,
        /// What the feature holds.
        expected: &'static str,
        /// What the row held.
        found: &'static str,
    },
    /// A grade that is not in the spec's grade list.
    #[error("unknown grade `{0}`")]
    UnknownGrade(String),
    /// A predicted probability outside [0, 1], or NaN.
    #[error("probability {0} is not in [0, 1]")]
    InvalidProbability(f64),
    /// The baseline builder saw no rows.
    #[error("the baseline has no rows")]
    EmptyBaseline,
    /// The fairness attribute has more distinct values than the configured bound.
    #[error("the fairness attribute has more than {0} groups")]
    TooManyGroups(usize),
}
