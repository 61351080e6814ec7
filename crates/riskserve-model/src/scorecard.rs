//! Points-based scorecards: characteristics, attributes with predicates, partial scores and
//! reason codes, as PMML 4.4 defines them.

/// A placeholder until the PMML importer lands.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    pub initial_score: f64,
}

/// Why a scorecard could not score a row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("no attribute of characteristic {characteristic:?} matches the row")]
pub struct NoAttributeMatched {
    pub characteristic: String,
}

impl Scorecard {
    /// Checks predicates index existing inputs.
    pub fn validate(&self, _num_inputs: usize) -> Result<(), String> {
        Ok(())
    }

    /// How many `reason_code_N` columns the answer has.
    pub fn reason_code_columns(&self) -> usize {
        0
    }

    /// Scores one row. `reasons` is cleared and filled with reason-code ids, most important first
    /// (at most [`Scorecard::reason_code_columns`]); [`Scorecard::reason_code_text`] names them.
    pub fn evaluate(&self, _row: &[f64], reasons: &mut Vec<u32>) -> Result<f64, NoAttributeMatched> {
        reasons.clear();
        Ok(self.initial_score)
    }

    /// The reason code with id `id`.
    pub fn reason_code_text(&self, _id: u32) -> &str {
        ""
    }
}
