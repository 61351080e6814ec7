//! The explainer the pipeline uses for models other than scorecards: exact TreeSHAP and linear
//! contributions from `riskserve_model::shap`, kept behind this one name.

pub use riskserve_model::shap::{ExplainScratch, Explainer};
