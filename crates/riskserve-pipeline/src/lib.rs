//! Inference pipelines: a feature schema, preprocessing steps, one or several models, calibration,
//! score scaling, a master scale, decisions and reason codes, compiled once into a flat program.
//! No I/O and no async: callers hand in the spec's bytes, the model files' bytes and rows.

mod compile;
pub mod error;
mod explainer;
mod fields;
mod program;
pub mod spec;

use std::collections::BTreeMap;

pub use error::{PipelineError, RowError};
pub use fields::{Cell, Field, FieldType};

/// A loaded pipeline. Immutable, `Send + Sync`: loaded once and shared by every worker thread.
#[derive(Debug)]
pub struct Pipeline {
    program: program::Program,
}

/// What a caller asks of a batch besides the outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Also give `contributions` and `reasons`.
    pub explain: bool,
    /// How many reasons at most.
    pub top_reasons: usize,
}

impl Default for ScoreOptions {
    fn default() -> ScoreOptions {
        ScoreOptions { explain: false, top_reasons: 4 }
    }
}

/// The answer for one row. Only the members the pipeline produces are present.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Outcome {
    /// The model's raw answer columns (every model's, in order, when there are several).
    pub values: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Raw feature name to its contribution in margin space, plus `"bias"`; they sum to the margin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<BTreeMap<String, f64>>,
    /// The principal reasons, most adverse first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
}

/// One principal reason for an outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reason {
    pub code: String,
    pub feature: String,
    pub text: String,
    pub contribution: f64,
}

impl Pipeline {
    /// A bare model with no spec: inputs are the model's features; outputs are the model's values.
    pub fn from_model(model: riskserve_model::ir::Model) -> Result<Pipeline, PipelineError> {
        Ok(Pipeline { program: compile::bare(model)? })
    }

    /// A spec (JSON); `load_artifact(name)` returns the bytes of a model file the spec names.
    pub fn from_spec(
        spec: &[u8],
        load_artifact: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Pipeline, PipelineError> {
        let spec = compile::parse(spec)?;
        Ok(Pipeline { program: compile::compile(&spec, load_artifact)? })
    }

    /// Names of the model files the spec references (so a server can check they were uploaded).
    pub fn artifact_names(spec: &[u8]) -> Result<Vec<String>, PipelineError> {
        Ok(compile::artifact_names(&compile::parse(spec)?))
    }

    /// The raw input fields in positional (CSV) order.
    pub fn fields(&self) -> &[Field] {
        &self.program.fields
    }

    /// The master scale's grades in band order (empty without a master scale or when grades are not an output).
    pub fn grades(&self) -> &[String] {
        match &self.program.master_scale {
            Some(scale) if self.program.outputs.grade => &scale.grades,
            _ => &[],
        }
    }

    /// The names of the CSV output columns: a bare model's value columns, else those of
    /// probability, score, grade and decision the pipeline returns.
    pub fn output_columns(&self) -> Vec<String> {
        let program = &self.program;
        if program.bare {
            return program
                .members
                .iter()
                .flat_map(|member| member.predictor.columns().iter().take(member.num_values).cloned())
                .collect();
        }
        let outputs = program.outputs;
        [
            ("probability", outputs.probability),
            ("score", outputs.score),
            ("grade", outputs.grade),
            ("decision", outputs.decision),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| name.to_string())
        .collect()
    }

    /// The CSV cells of an outcome, one per [`Pipeline::output_columns`]: a bare model's values,
    /// else its probability, score, grade and decision (empty where an outcome lacks one).
    pub fn output_cells(&self, outcome: &Outcome) -> Vec<String> {
        if self.program.bare {
            return outcome.values.iter().map(|value| value.to_string()).collect();
        }
        let outputs = self.program.outputs;
        let number = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
        let mut cells = Vec::with_capacity(4);
        if outputs.probability {
            cells.push(number(outcome.probability));
        }
        if outputs.score {
            cells.push(number(outcome.score));
        }
        if outputs.grade {
            cells.push(outcome.grade.clone().unwrap_or_default());
        }
        if outputs.decision {
            cells.push(outcome.decision.clone().unwrap_or_default());
        }
        cells
    }

    /// Scores a batch; every invalid row and field is reported together (row index 0-based in
    /// the batch, and the field's name).
    pub fn score_batch(&self, rows: &[Vec<Cell<'_>>], options: &ScoreOptions) -> Result<Vec<Outcome>, Vec<RowError>> {
        self.program.score_batch(rows, options)
    }
}

/// The JSON Schema of the pipeline file format, as committed in `schemas/pipeline.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(spec::PipelineSpec);
    let schema = sorted_keys(serde_json::to_value(&schema).unwrap_or_default());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The value with every object's keys in sorted order: the committed schema must not depend on
/// whether some other crate in the build turned on serde_json's `preserve_order`.
fn sorted_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(members) => {
            let sorted: std::collections::BTreeMap<String, serde_json::Value> =
                members.into_iter().map(|(key, member)| (key, sorted_keys(member))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}
