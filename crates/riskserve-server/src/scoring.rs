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
        let (pipeline, format, bare) = match spec {
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
                let pipeline = Pipeline::from_model(model).map_err(|error| format!("{}: {error}", artifact.name))?;
                (pipeline, format, true)
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
                (pipeline, PIPELINE_FORMAT.to_string(), false)
            }
        };
        let inputs = pipeline.fields().iter().map(|field| field.name.clone()).collect();
        let outputs = pipeline.output_columns();
        Ok(Scorer { pipeline, inputs, outputs, format, bare })
    }

    /// The name of the format the model was read as (`pipeline` with a spec).
    pub fn format_name(&self) -> &str {
        &self.format
    }

    /// Input field names in positional (CSV) order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Names of the CSV answer's columns.
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
                first.first().map(|error| format!("field `{}`: {}", error.field, error.message)).unwrap_or_default()
            )),
        }
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
