//! Model monitoring statistics for risk models: baselines, drift (PSI/CSI), outcomes (AUC, Gini, KS, Brier,
//! calibration by grade) and fairness, as streaming accumulators (`add` rows, then `finish`) with serde reports.
//!
//! No I/O and no async: callers stream rows in and store the reports (JSON has no NaN, so every statistic that can be
//! undefined is an `Option`). Every statistic is checked against the library a validator would use (scikit-learn,
//! scipy, fairlearn, numpy) by `tests/reference.rs` over fixtures `scripts/monitor_reference.sh` writes.

pub mod baseline;
pub mod drift;
pub mod error;
pub mod fairness;
pub mod outcome;
pub mod quantile;
pub mod special;
pub mod summation;

pub use baseline::{
    Baseline, BaselineBuilder, BaselineSpec, CategoricalBaseline, FeatureBaseline, FeatureKind, FeatureSpec,
    GradeBaseline, NumericBaseline, Value,
};
pub use drift::{Band, BinComparison, DriftAccumulator, DriftOptions, DriftReport, FeatureDrift, Stability};
pub use error::MonitorError;
pub use fairness::{FairnessAccumulator, FairnessOptions, FairnessReport, GroupFairness};
pub use outcome::{GradeCalibration, OutcomeAccumulator, OutcomeOptions, OutcomeReport};
