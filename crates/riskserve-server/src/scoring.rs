//! The one place that turns stored artifacts into something that scores rows. It mirrors the
//! `riskserve-pipeline` API (cells in, outcomes out) so that moving to `Pipeline` changes only
//! this file; until then a model is scored bare through `riskserve_model::Predictor`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use riskserve_model::input::RowDecoder;
use riskserve_model::{Format, Predictor, load_model};
use serde::Serialize;

/// One input value of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Missing,
    Number(f64),
    Text(Cow<'a, str>),
    Bool(bool),
}

/// Options a request sets. A bare model answers with its values only: explanations come with
/// pipelines, which read these.
#[derive(Debug, Clone, Copy)]
#[expect(dead_code, reason = "read once scoring goes through riskserve-pipeline")]
pub struct ScoreOptions {
    pub explain: bool,
    pub top_reasons: usize,
}

impl Default for ScoreOptions {
    fn default() -> ScoreOptions {
        ScoreOptions { explain: false, top_reasons: 4 }
    }
}

/// A row that cannot be scored: `row` is 0-based in the request, `field` the input's name.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(formatter, "row {}: {}", self.row + 1, self.message)
        } else {
            write!(formatter, "row {}, field `{}`: {}", self.row + 1, self.field, self.message)
        }
    }
}

/// The answer for one row; members a model does not produce are absent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// The model's raw output columns, as `riskserve score` prints them.
    pub values: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: String,
    pub feature: String,
    pub text: String,
    pub contribution: f64,
}

impl Outcome {
    /// The CSV answer's cells: the raw values for a bare model.
    pub fn csv_values(&self) -> Vec<String> {
        self.values.iter().map(|value| value.to_string()).collect()
    }
}

/// A model (with its pipeline, later) loaded once and shared by every worker thread.
#[derive(Debug)]
pub struct Scorer {
    predictor: Predictor,
    decoder: RowDecoder,
    inputs: Vec<String>,
    outputs: Vec<String>,
    format: Format,
}

/// A named model file handed to [`Scorer::load`].
pub struct ArtifactBytes<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

impl Scorer {
    /// Loads and compiles the artifacts. A bare model takes exactly one artifact; pipelines come
    /// with `riskserve-pipeline`.
    pub fn load(
        artifacts: &[ArtifactBytes<'_>],
        pipeline: Option<&[u8]>,
        format: Option<Format>,
    ) -> Result<Scorer, String> {
        if pipeline.is_some() {
            return Err("pipelines are not supported by this server yet".to_string());
        }
        let [artifact] = artifacts else {
            return Err(format!(
                "a model without a pipeline takes exactly one artifact, {} were given",
                artifacts.len()
            ));
        };
        let model = load_model(artifact.bytes, format).map_err(|error| format!("{}: {error}", artifact.name))?;
        let format = model.source;
        let inputs: Vec<String> = model.inputs.iter().map(|feature| feature.name.clone()).collect();
        let (decoder, _) = RowDecoder::from_header(&model.inputs, &inputs)
            .map_err(|error| format!("{}: the model's inputs cannot be decoded: {error}", artifact.name))?;
        let predictor = Predictor::new(model).map_err(|error| format!("{}: {error}", artifact.name))?;
        let outputs = predictor.columns()[..predictor.num_values()].to_vec();
        Ok(Scorer { predictor, decoder, inputs, outputs, format })
    }

    /// The name of the format the model was read as.
    pub fn format_name(&self) -> &'static str {
        self.format.name()
    }

    /// Input field names in positional (CSV) order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Names of the values each outcome carries.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// Scores one row of missing values, else one of zeros: a model that can score neither is
    /// refused before it is stored.
    pub fn smoke_test(&self) -> Result<(), String> {
        let missing = vec![vec![Cell::Missing; self.inputs.len()]];
        let Err(first) = self.score_batch(&missing, &ScoreOptions::default()) else { return Ok(()) };
        let zeros = vec![vec![Cell::Number(0.0); self.inputs.len()]];
        match self.score_batch(&zeros, &ScoreOptions::default()) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "the model cannot score a row of missing values nor a row of zeros: {}",
                first.first().map(ToString::to_string).unwrap_or_default()
            )),
        }
    }

    /// Scores a batch; every invalid row is reported (the caller caps how many it shows).
    pub fn score_batch(&self, rows: &[Vec<Cell<'_>>], _options: &ScoreOptions) -> Result<Vec<Outcome>, Vec<RowError>> {
        let width = self.predictor.num_inputs();
        let mut values = vec![0.0; width];
        let mut scratch = self.predictor.scratch();
        let mut out = vec![0.0; self.predictor.num_values()];
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        let mut texts: Vec<Cow<'_, str>> = Vec::with_capacity(width);
        for (index, row) in rows.iter().enumerate() {
            if row.len() != width {
                errors.push(RowError {
                    row: index,
                    field: String::new(),
                    message: format!("expected {width} values, found {}", row.len()),
                });
                continue;
            }
            texts.clear();
            texts.extend(row.iter().map(|cell| match cell {
                Cell::Missing => Cow::Borrowed(""),
                Cell::Number(number) => Cow::Owned(number.to_string()),
                Cell::Text(text) => Cow::Borrowed(text.as_ref()),
                Cell::Bool(flag) => Cow::Borrowed(if *flag { "1" } else { "0" }),
            }));
            if let Err(error) = self.decoder.decode(index + 1, texts.iter().map(AsRef::as_ref), &mut values) {
                errors.push(row_error(index, error));
                continue;
            }
            match self.predictor.predict_row(&values, &mut scratch, &mut out) {
                Ok(()) => outcomes.push(Outcome {
                    values: out.clone(),
                    probability: None,
                    score: None,
                    grade: None,
                    decision: None,
                    contributions: None,
                    reasons: None,
                }),
                Err(error) => errors.push(RowError { row: index, field: String::new(), message: error.to_string() }),
            }
        }
        if errors.is_empty() { Ok(outcomes) } else { Err(errors) }
    }
}

fn row_error(index: usize, error: riskserve_model::InputError) -> RowError {
    use riskserve_model::InputError;
    match error {
        InputError::Cell { column, message, .. } => RowError { row: index, field: column, message },
        InputError::ColumnCount { expected, found, .. } => {
            RowError { row: index, field: String::new(), message: format!("expected {expected} values, found {found}") }
        }
        InputError::Row { message, .. } => RowError { row: index, field: String::new(), message },
        InputError::Header(message) => RowError { row: index, field: String::new(), message },
    }
}
