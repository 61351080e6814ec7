//! `riskserve score`: score a CSV of rows with a model or a pipeline and write the outcomes as
//! CSV or as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use riskserve_model::{Format, Predictor, load_model};
use riskserve_pipeline::{Outcome, Pipeline, ScoreOptions};

use crate::rows;

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The model file (XGBoost JSON or UBJSON, LightGBM text, ONNX, PMML).
    #[arg(long, value_name = "FILE", required_unless_present = "pipeline", conflicts_with = "pipeline")]
    pub model: Option<PathBuf>,
    /// A pipeline file (see docs/pipeline.md); the model files it names are read relative to it.
    #[arg(long, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,
    /// The model's format; detected from the content when omitted.
    #[arg(long, value_parser = ["xgboost-json", "xgboost-ubj", "lightgbm", "onnx", "pmml"], conflicts_with = "pipeline")]
    pub format: Option<String>,
    /// The rows: a CSV file with a header; an empty cell is a missing value.
    #[arg(long, value_name = "ROWS.csv")]
    pub input: PathBuf,
    /// Where to write the predictions; standard output when omitted.
    #[arg(long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// `csv` (a header, then one line a row) or `json` (one JSON object a line, a row each).
    #[arg(long, value_name = "FORMAT", default_value = "csv", value_parser = ["csv", "json"])]
    pub output_format: String,
    /// Also give each row's contributions (SHAP values in margin space, plus `bias`) and reasons.
    #[arg(long)]
    pub explain: bool,
    /// How many reasons at most, with --explain.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub top_reasons: usize,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let json = args.output_format == "json";
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    match (&args.pipeline, &args.model) {
        (Some(path), _) => {
            let pipeline = load_pipeline(path)?;
            score_pipeline(&pipeline, &args, json, sink)
        }
        (None, Some(path)) => {
            let model = load_model_file(path, args.format.as_deref())?;
            if !json && !args.explain {
                return score_model(model, &args.input, sink);
            }
            let pipeline = Pipeline::from_model(model).context("cannot compile the model")?;
            score_pipeline(&pipeline, &args, json, sink)
        }
        (None, None) => bail!("give --model or --pipeline"),
    }
}

fn load_model_file(path: &Path, format: Option<&str>) -> anyhow::Result<riskserve_model::Model> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the model {}", path.display()))?;
    let format = match format {
        Some(name) => Some(Format::from_name(name).with_context(|| format!("unknown format {name:?}"))?),
        None => None,
    };
    load_model(&bytes, format).with_context(|| format!("cannot load the model {}", path.display()))
}

/// Reads a pipeline file and the model files it names, relative to the pipeline's folder.
fn load_pipeline(path: &Path) -> anyhow::Result<Pipeline> {
    let spec = std::fs::read(path).with_context(|| format!("cannot read the pipeline {}", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut load_artifact = |name: &str| -> Result<Vec<u8>, String> {
        let file = folder.join(name);
        std::fs::read(&file).map_err(|error| format!("cannot read {}: {error}", file.display()))
    };
    Pipeline::from_spec(&spec, &mut load_artifact)
        .with_context(|| format!("cannot load the pipeline {}", path.display()))
}

/// The bare-model CSV path, unchanged: the model's columns, and a scorecard's reason codes.
fn score_model(model: riskserve_model::Model, input: &Path, sink: Box<dyn Write>) -> anyhow::Result<()> {
    let rows = rows::read_csv(input, &model)?;
    let predictor = Predictor::new(model).context("cannot compile the model")?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    writer.write_record(predictor.columns())?;
    let width = predictor.num_inputs();
    let values = predictor.num_values();
    let mut scratch = predictor.scratch();
    let mut out = vec![0.0; values];
    let mut record: Vec<String> = Vec::with_capacity(predictor.columns().len());
    for index in 0..rows.count {
        let row = &rows.values[index * width..(index + 1) * width];
        predictor
            .predict_row(row, &mut scratch, &mut out)
            .with_context(|| format!("cannot score row {}", index + 1))?;
        record.clear();
        record.extend(out.iter().map(|value| value.to_string()));
        if let Some(scorecard) = predictor.scorecard() {
            let columns = predictor.columns().len() - values;
            record.extend((0..columns).map(|rank| {
                scratch.reasons.get(rank).map_or(String::new(), |id| scorecard.reason_code_text(*id).to_string())
            }));
        }
        writer.write_record(&record)?;
    }
    writer.flush().context("cannot write the predictions")?;
    Ok(())
}

fn score_pipeline(pipeline: &Pipeline, args: &ScoreArgs, json: bool, sink: Box<dyn Write>) -> anyhow::Result<()> {
    let records = rows::read_records(&args.input, pipeline)?;
    let cells = records.cells();
    let options = ScoreOptions { explain: args.explain, top_reasons: args.top_reasons };
    let result = pipeline.score_batch(&cells, &options);
    // Every problem of the file at once: rows with the wrong column count, then the pipeline's
    // errors, in row order; rows are numbered from 1 as in every other message about a CSV file.
    let mut problems: Vec<(usize, String)> = records.column_errors.clone();
    let outcomes = match result {
        Ok(outcomes) => outcomes,
        Err(errors) => {
            for error in errors {
                let row = records.row_numbers.get(error.row).copied().unwrap_or(error.row + 1);
                let message = if error.field.is_empty() {
                    error.message
                } else {
                    format!("field {:?}: {}", error.field, error.message)
                };
                problems.push((row, message));
            }
            Vec::new()
        }
    };
    if !problems.is_empty() {
        problems.sort_by_key(|(row, _)| *row);
        let listed: Vec<String> = problems
            .iter()
            .take(rows::MAX_LISTED_ERRORS)
            .map(|(row, message)| format!("row {row}: {message}"))
            .collect();
        let more = problems.len() - listed.len();
        let tail = if more > 0 { format!("\n  and {more} more") } else { String::new() };
        bail!("{} errors in {}:\n  {}{tail}", problems.len(), args.input.display(), listed.join("\n  "));
    }
    let mut out = std::io::BufWriter::new(sink);
    if json {
        for outcome in &outcomes {
            serde_json::to_writer(&mut out, outcome).context("cannot write the predictions")?;
            out.write_all(b"\n").context("cannot write the predictions")?;
        }
        out.flush().context("cannot write the predictions")?;
        return Ok(());
    }
    write_csv(pipeline, &outcomes, args, out)
}

/// CSV: the pipeline's outputs (a bare model's values); with --explain also one
/// `contribution_<field>` column per field, `contribution_bias`, and `reason_1`... (codes).
fn write_csv(pipeline: &Pipeline, outcomes: &[Outcome], args: &ScoreArgs, out: impl Write) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let columns = pipeline.output_columns();
    let mut header = columns.clone();
    if args.explain {
        header.extend(pipeline.fields().iter().map(|field| format!("contribution_{}", field.name)));
        header.push("contribution_bias".into());
        header.extend((1..=args.top_reasons).map(|rank| format!("reason_{rank}")));
    }
    writer.write_record(&header)?;
    let mut record: Vec<String> = Vec::with_capacity(header.len());
    for outcome in outcomes {
        record.clear();
        record.extend(pipeline.output_cells(outcome));
        if args.explain {
            let contributions = outcome.contributions.as_ref();
            let value = |name: &str| {
                contributions.and_then(|map| map.get(name)).map(|value| value.to_string()).unwrap_or_default()
            };
            record.extend(pipeline.fields().iter().map(|field| value(&field.name)));
            record.push(value("bias"));
            let reasons = outcome.reasons.as_deref().unwrap_or(&[]);
            record.extend(
                (0..args.top_reasons)
                    .map(|rank| reasons.get(rank).map(|reason| reason.code.clone()).unwrap_or_default()),
            );
        }
        writer.write_record(&record)?;
    }
    writer.flush().context("cannot write the predictions")?;
    Ok(())
}
