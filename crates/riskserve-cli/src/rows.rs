//! Loading a model file and reading a CSV of rows: into the dense matrix the evaluator takes, or
//! into the cells a pipeline takes.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use riskserve_model::input::RowDecoder;
use riskserve_model::{Format, Model, load_model};
use riskserve_pipeline::{Cell, Pipeline};

use crate::ModelArgs;

/// At most this many row errors are listed before the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 20;

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

/// The records of a CSV file, in a pipeline's field order.
pub struct Records {
    /// Per row with the right number of columns, its cells in field order.
    rows: Vec<Vec<String>>,
    /// The file's row number (from 1) of each of `rows`.
    pub row_numbers: Vec<usize>,
    /// Rows with the wrong number of columns: (row number from 1, message).
    pub column_errors: Vec<(usize, String)>,
}

impl Records {
    /// The cells a pipeline scores; an empty cell is a missing value.
    pub fn cells(&self) -> Vec<Vec<Cell<'_>>> {
        self.rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|text| if text.is_empty() { Cell::Missing } else { Cell::Text(text.as_str().into()) })
                    .collect()
            })
            .collect()
    }
}

/// Reads every row of `path` for `pipeline`: columns match the fields by name when the header
/// names every field (other columns are ignored), else by position when the counts agree.
pub fn read_records(path: &Path, pipeline: &Pipeline) -> anyhow::Result<Records> {
    let file = File::open(path).with_context(|| format!("cannot open the input {}", path.display()))?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(std::io::BufReader::new(file));
    let header = reader.headers().with_context(|| format!("cannot read the header of {}", path.display()))?.clone();
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let fields = pipeline.fields();
    let by_name: Option<Vec<usize>> =
        fields.iter().map(|field| names.iter().position(|name| *name == field.name)).collect();
    let columns: Vec<usize> = match by_name {
        Some(columns) => columns,
        None if names.len() == fields.len() => (0..fields.len()).collect(),
        None => {
            let absent: Vec<&str> =
                fields.iter().map(|field| field.name.as_str()).filter(|name| !names.contains(name)).take(5).collect();
            bail!(
                "the input {} has {} columns for {} fields, and its header lacks the fields {}",
                path.display(),
                names.len(),
                fields.len(),
                absent.join(", ")
            );
        }
    };
    let mut records = Records { rows: Vec::new(), row_numbers: Vec::new(), column_errors: Vec::new() };
    let mut record = csv::StringRecord::new();
    let mut number = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => bail!("cannot read {}: {error}", path.display()),
        }
        number += 1;
        if record.len() != names.len() {
            let message = format!("expected {} columns, found {}", names.len(), record.len());
            records.column_errors.push((number, message));
            continue;
        }
        records.rows.push(columns.iter().map(|column| record.get(*column).unwrap_or("").to_string()).collect());
        records.row_numbers.push(number);
    }
    Ok(records)
}
