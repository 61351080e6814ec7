//! Loading a model file and reading a CSV of rows into the dense matrix the evaluator takes.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use riskserve_model::input::RowDecoder;
use riskserve_model::{Format, Model, load_model};

use crate::ModelArgs;

/// At most this many row errors are listed before the rest are counted.
const MAX_LISTED_ERRORS: usize = 20;

/// Reads and imports the model named by `args`.
pub fn load(args: &ModelArgs) -> anyhow::Result<Model> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("cannot read the model {}", args.model.display()))?;
    let format = args.format.as_deref().map(|name| Format::from_name(name).expect("clap checked the format"));
    load_model(&bytes, format).with_context(|| format!("cannot load the model {}", args.model.display()))
}

/// The rows of a CSV file, decoded for a model: `values` is row-major, `model.inputs.len()` a row.
pub struct Rows {
    pub values: Vec<f64>,
    pub count: usize,
}

/// Reads every row of `path`; bad rows are reported together, each naming its row and column.
pub fn read_csv(path: &Path, model: &Model) -> anyhow::Result<Rows> {
    let file = File::open(path).with_context(|| format!("cannot open the input {}", path.display()))?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(std::io::BufReader::new(file));
    let header = reader.headers().with_context(|| format!("cannot read the header of {}", path.display()))?.clone();
    let (decoder, _) = RowDecoder::from_header(&model.inputs, &header.iter().collect::<Vec<_>>())
        .with_context(|| format!("the input {} does not fit the model", path.display()))?;
    let width = model.inputs.len();
    let mut values = Vec::new();
    let mut count = 0;
    let mut errors = Vec::new();
    let mut error_count = 0;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => bail!("cannot read {}: {error}", path.display()),
        }
        count += 1;
        let start = values.len();
        values.resize(start + width, 0.0);
        if let Err(error) = decoder.decode(count, record.iter(), &mut values[start..]) {
            error_count += 1;
            if errors.len() < MAX_LISTED_ERRORS {
                errors.push(error.to_string());
            }
        }
    }
    if error_count > 0 {
        let more = error_count - errors.len();
        let tail = if more > 0 { format!("\n  and {more} more") } else { String::new() };
        bail!("{error_count} bad rows in {}:\n  {}{tail}", path.display(), errors.join("\n  "));
    }
    Ok(Rows { values, count })
}
