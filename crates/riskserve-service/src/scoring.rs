//! The one place that turns stored artifacts into something that scores rows: a
//! `riskserve_pipeline::Pipeline`, built from a pipeline spec and its model files, or from one bare
//! model. Everything else in the server sees cells in and outcomes out.

use riskserve_model::{Format, load_model};
use riskserve_pipeline::Pipeline;

pub use riskserve_pipeline::{Cell, Outcome, RowError, ScoreOptions};

/// A model (with its pipeline) loaded once and shared by every worker thread.
#[derive(Debug)]
pub struct Scorer {
    pipeline: Pipeline,
    inputs: Vec<String>,
    outputs: Vec<String>,
    format: String,
    /// A bare model answers CSV with its raw values; a pipeline with its named outputs.
    bare: bool,
    /// A row the pipeline's schema (or a bare model's declared inputs) allows, for the smoke test.
    schema_row: Option<Vec<SchemaCell>>,
}

/// One cell of a row built from a pipeline's declared schema.
#[derive(Debug, Clone)]
enum SchemaCell {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl SchemaCell {
    fn cell(self) -> Cell<'static> {
        match self {
            SchemaCell::Number(number) => Cell::Number(number),
            SchemaCell::Text(text) => Cell::Text(text.into()),
            SchemaCell::Bool(flag) => Cell::Bool(flag),
        }
    }
}

/// For each field, a value the spec declares valid: its first category, `false`, or 0 clamped
/// to the declared `min`/`max`. `None` when the spec cannot be read as JSON.
fn schema_row(spec: &[u8], fields: &[String]) -> Option<Vec<SchemaCell>> {
    let spec: serde_json::Value = serde_json::from_slice(spec).ok()?;
    let features = spec.get("features")?.as_array()?;
    fields
        .iter()
        .map(|field| {
            let feature =
                features.iter().find(|feature| feature.get("name").and_then(|name| name.as_str()) == Some(field))?;
            let first_category =
                feature.get("categories").and_then(|list| list.get(0)).and_then(|first| first.as_str());
            Some(match (feature.get("type").and_then(|kind| kind.as_str()), first_category) {
                (_, Some(category)) => SchemaCell::Text(category.to_string()),
                (Some("boolean"), None) => SchemaCell::Bool(false),
                _ => {
                    let bound = |key: &str| feature.get(key).and_then(serde_json::Value::as_f64);
                    let low = bound("min").unwrap_or(f64::NEG_INFINITY);
                    let high = bound("max").unwrap_or(f64::INFINITY).max(low);
                    SchemaCell::Number(0.0_f64.clamp(low, high))
                }
            })
        })
        .collect()
}

/// For each input of a bare model, a value it declares valid: its first category name when it
/// lists them (a PMML scorecard's string fields refuse a bare 0), else 0.
fn model_schema_row(model: &riskserve_model::ir::Model) -> Vec<SchemaCell> {
    use riskserve_model::ir::FeatureKind;
    model
        .inputs
        .iter()
        .map(|feature| match &feature.kind {
            FeatureKind::Categorical { categories: Some(names), .. } => {
                names.first().map_or(SchemaCell::Number(0.0), |first| SchemaCell::Text(first.clone()))
            }
            _ => SchemaCell::Number(0.0),
        })
        .collect()
}

/// A named model file handed to [`Scorer::load`].
pub struct ArtifactBytes<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// The format name a model with a pipeline spec is recorded under.
pub const PIPELINE_FORMAT: &str = "pipeline";

impl Scorer {
    /// Loads and compiles the artifacts: a bare model takes exactly one; a pipeline spec names
    /// the model files it needs, and each must be among the artifacts.
    pub fn load(
        artifacts: &[ArtifactBytes<'_>],
        spec: Option<&[u8]>,
        format: Option<Format>,
    ) -> Result<Scorer, String> {
        // `bare_row`: for a bare model, a row its declared inputs allow (set only for bare models).
        let (pipeline, format, bare_row) = match spec {
            None => {
                let [artifact] = artifacts else {
                    return Err(format!(
                        "a model without a pipeline takes exactly one artifact, {} were given",
                        artifacts.len()
                    ));
                };
                let model =
                    load_model(artifact.bytes, format).map_err(|error| format!("{}: {error}", artifact.name))?;
                let format = model.source.name().to_string();
                let row = model_schema_row(&model);
                let pipeline = Pipeline::from_model(model).map_err(|error| format!("{}: {error}", artifact.name))?;
                (pipeline, format, Some(row))
            }
            Some(spec) => {
                let names = Pipeline::artifact_names(spec).map_err(|error| format!("the pipeline: {error}"))?;
                let given: Vec<&str> = artifacts.iter().map(|artifact| artifact.name).collect();
                if let Some(missing) = names.iter().find(|name| !given.contains(&name.as_str())) {
                    return Err(format!(
                        "the pipeline names the model file {missing:?}, which is not among the artifacts ({})",
                        given.join(", ")
                    ));
                }
                let mut load_artifact = |name: &str| {
                    artifacts
                        .iter()
                        .find(|artifact| artifact.name == name)
                        .map(|artifact| artifact.bytes.to_vec())
                        .ok_or_else(|| format!("no artifact is named {name:?}"))
                };
                let pipeline =
                    Pipeline::from_spec(spec, &mut load_artifact).map_err(|error| format!("the pipeline: {error}"))?;
                (pipeline, PIPELINE_FORMAT.to_string(), None)
            }
        };
        let bare = bare_row.is_some();
        let inputs: Vec<String> = pipeline.fields().iter().map(|field| field.name.clone()).collect();
        let outputs = pipeline.output_columns();
        let schema_row = bare_row.or_else(|| spec.and_then(|spec| schema_row(spec, &inputs)));
        Ok(Scorer { pipeline, inputs, outputs, format, bare, schema_row })
    }

    /// The name of the format the model was read as (`pipeline` with a spec).
    pub fn format_name(&self) -> &str {
        &self.format
    }

    /// Input field names in positional (CSV) order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// The input fields with their types, in positional (CSV) order.
    pub fn fields(&self) -> &[riskserve_pipeline::Field] {
        self.pipeline.fields()
    }

    /// The master scale's grades in band order (empty when the model grades nothing).
    pub fn grades(&self) -> &[String] {
        self.pipeline.grades()
    }

    /// Names of the CSV answer's columns.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// Scores one row of missing values, else one of zeros, else one that the pipeline's schema
    /// allows (first category, `false`, 0 clamped to the declared range): a model that can score
    /// none of them is refused before it is stored.
    pub fn smoke_test(&self) -> Result<(), String> {
        let mut candidates = vec![vec![Cell::Missing; self.inputs.len()], vec![Cell::Number(0.0); self.inputs.len()]];
        if let Some(row) = &self.schema_row {
            candidates.push(row.iter().cloned().map(SchemaCell::cell).collect());
        }
        let mut last_error = None;
        for row in candidates {
            match self.score_batch(&[row], &ScoreOptions::default()) {
                Ok(_) => return Ok(()),
                Err(errors) => last_error = errors.into_iter().next(),
            }
        }
        Err(format!(
            "the model cannot score a row of missing values, of zeros, nor one its schema allows: {}",
            last_error.map(|error| format!("field `{}`: {}", error.field, error.message)).unwrap_or_default()
        ))
    }

    /// Scores a batch; every invalid row is reported (the caller caps how many it shows).
    pub fn score_batch(&self, rows: &[Vec<Cell<'_>>], options: &ScoreOptions) -> Result<Vec<Outcome>, Vec<RowError>> {
        self.pipeline.score_batch(rows, options)
    }

    /// One CSV answer line's cells: a bare model's values, else the pipeline's probability,
    /// score, grade and decision (those it produces).
    pub fn csv_cells(&self, outcome: &Outcome) -> Vec<String> {
        if self.bare {
            return outcome.values.iter().map(ToString::to_string).collect();
        }
        let mut cells = Vec::with_capacity(4);
        cells.extend(outcome.probability.map(|value| value.to_string()));
        cells.extend(outcome.score.map(|value| value.to_string()));
        cells.extend(outcome.grade.clone());
        cells.extend(outcome.decision.clone());
        cells
    }
}
