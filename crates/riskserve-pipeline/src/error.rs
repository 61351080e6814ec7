//! Errors of the pipeline crate: one for pipeline files, one for the rows of a batch.

use std::fmt;

/// A pipeline that cannot be loaded. `place` names where in the file the problem is, in the
/// file's own terms (`steps[2].input`, `master_scale.bands[1]`); messages have no trailing period.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PipelineError {
    /// The file is not JSON, or not JSON of the pipeline format (an unknown step or member, a
    /// wrong type).
    #[error("{place}: {message}")]
    Syntax { place: String, message: String },
    /// The file is well formed but does not make sense (a feature used but not declared, bands
    /// that overlap, cut-offs out of order).
    #[error("{place}: {message}")]
    Invalid { place: String, message: String },
    /// A model file the pipeline names cannot be read or loaded.
    #[error("{place}: model {artifact:?}: {message}")]
    Artifact { place: String, artifact: String, message: String },
    /// A bare model that cannot be scored.
    #[error("{0}")]
    Model(#[from] riskserve_model::ModelError),
}

impl PipelineError {
    pub(crate) fn invalid(place: impl Into<String>, message: impl Into<String>) -> PipelineError {
        PipelineError::Invalid { place: place.into(), message: message.into() }
    }

    /// Where in the pipeline file the problem is (empty for a bare model).
    pub fn place(&self) -> &str {
        match self {
            PipelineError::Syntax { place, .. }
            | PipelineError::Invalid { place, .. }
            | PipelineError::Artifact { place, .. } => place,
            PipelineError::Model(_) => "",
        }
    }
}

/// One invalid field of one row of a batch. `row` counts from 0 within the batch; `field` is the
/// raw field's name, or empty when the problem is the row as a whole.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub message: String,
}

impl RowError {
    pub(crate) fn new(row: usize, field: impl Into<String>, message: impl Into<String>) -> RowError {
        RowError { row, field: field.into(), message: message.into() }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "row {}: {}", self.row, self.message)
        } else {
            write!(f, "row {}, field `{}`: {}", self.row, self.field, self.message)
        }
    }
}

impl std::error::Error for RowError {}
