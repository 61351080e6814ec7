//! A stand-in for `riskserve_model::shap` with the same API, until TreeSHAP lands there: exact
//! contributions for linear models (coefficient · value, the intercept as bias), and a clear
//! error for every other model. Replace this module's body with
//! `pub use riskserve_model::shap::{ExplainScratch, Explainer};` once that module exists.

use riskserve_model::eval::ScoreError;
use riskserve_model::ir::{LinearModel, Model, ModelBody};
use riskserve_model::{Format, ModelError};

/// Explains one model's rows: per output group, each feature's contribution then the bias.
#[derive(Debug)]
pub struct Explainer {
    linear: LinearModel,
    feature_names: Vec<String>,
}

/// Per-thread buffers of an [`Explainer`] (none are needed for linear models).
#[derive(Debug, Default)]
pub struct ExplainScratch;

impl Explainer {
    pub fn new(model: &Model) -> Result<Explainer, ModelError> {
        match &model.body {
            ModelBody::Linear(linear) if model.preprocess.is_none() => Ok(Explainer {
                linear: linear.clone(),
                feature_names: model.inputs.iter().map(|feature| feature.name.clone()).collect(),
            }),
            _ => Err(ModelError::unsupported(
                Format::Model,
                "explanations of this kind of model need TreeSHAP, which this build does not have yet",
            )),
        }
    }

    pub fn num_features(&self) -> usize {
        self.linear.num_features
    }

    pub fn num_groups(&self) -> usize {
        self.linear.num_outputs
    }

    #[allow(dead_code, reason = "the API of riskserve_model::shap, which the pipeline does not need")]
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn scratch(&self) -> ExplainScratch {
        ExplainScratch
    }

    /// `out.len() == num_groups * (num_features + 1)`: per group each feature's contribution, then
    /// the bias last; they sum to the margin.
    pub fn explain_row(&self, row: &[f64], _scratch: &mut ExplainScratch, out: &mut [f64]) -> Result<(), ScoreError> {
        let width = self.linear.num_features;
        if row.len() != width {
            return Err(ScoreError::RowLength { expected: width, found: row.len() });
        }
        for (group, chunk) in out.chunks_mut(width + 1).enumerate().take(self.linear.num_outputs) {
            let weights = self.linear.coefficients.get(group * width..(group + 1) * width).unwrap_or(&[]);
            for ((slot, weight), value) in chunk.iter_mut().zip(weights).zip(row) {
                *slot = weight * value;
            }
            if let Some(bias) = chunk.last_mut() {
                *bias = self.linear.intercepts.get(group).copied().unwrap_or(0.0);
            }
        }
        Ok(())
    }
}
