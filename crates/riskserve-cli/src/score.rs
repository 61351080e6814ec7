//! `riskserve score`: score a CSV of rows with a model and write the predictions as CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use riskserve_model::Predictor;

use crate::ModelArgs;
use crate::rows;

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to write the predictions; standard output when omitted.
    #[arg(long, value_name = "OUT.csv")]
    pub output: Option<PathBuf>,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let model = rows::load(&args.model)?;
    let rows = rows::read_csv(&args.model.input, &model)?;
    let predictor = Predictor::new(model).context("cannot compile the model")?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
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
