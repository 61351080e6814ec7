//! Model monitoring statistics for risk models: baselines, drift (PSI/CSI), outcomes (AUC, Gini, KS, Brier,
//! calibration by grade) and fairness, as streaming accumulators (`add` rows, then `finish`) with serde reports.
//!
//! No I/O and no async: callers stream rows in and store the reports (JSON has no NaN, so every statistic that can be
//! undefined is an `Option`). Every statistic is checked against the library a validator would use (scikit-learn,
//! scipy, fairlearn, numpy) by `tests/reference.rs` over fixtures `scripts/monitor_reference.sh` writes.
//!
//! ```
//! use riskserve_monitor::*;
//!
//! let spec = BaselineSpec {
//!     features: vec![FeatureSpec { name: "income".into(), kind: FeatureKind::Numeric }],
//!     bins: 10,
//!     grades: vec!["A".into(), "B".into()],
//! };
//! let mut builder = BaselineBuilder::new(spec)?;
//! for i in 0..1000 {
//!     let p = f64::from(i % 100) / 200.0;
//!     let grade = if p < 0.25 { "A" } else { "B" };
//!     builder.add_row(&[Value::Number(f64::from(i))], Some(p), Some(grade), Some(i % 7 == 0))?;
//! }
//! let baseline = builder.finish()?;
//!
//! let mut drift = DriftAccumulator::new(&baseline)?;
//! let mut outcomes = OutcomeAccumulator::from_baseline(&baseline, OutcomeOptions::default())?;
//! for i in 0..500 {
//!     let p = f64::from(i % 100) / 200.0;
//!     let grade = if p < 0.25 { "A" } else { "B" };
//!     drift.add_row(&[Value::Number(f64::from(i) + 300.0)], Some(p))?;
//!     outcomes.add(p, i % 5 == 0, Some(grade), Some(if i % 2 == 0 { "f" } else { "m" }), Some(p < 0.3))?;
//! }
//! let drift = drift.finish();
//! assert_eq!(drift.features[0].stability.band, Some(Band::MajorShift));
//! let outcomes = outcomes.finish();
//! assert!(outcomes.auc.is_some() && outcomes.grades.len() == 2);
//! let _json = serde_json::to_string(&outcomes).unwrap();
//! # Ok::<(), MonitorError>(())
//! ```

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
