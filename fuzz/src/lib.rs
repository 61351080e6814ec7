//! What every fuzz target runs: import a model from the fuzz input and score rows derived from the
//! same input through both evaluator paths of every evaluator and kernel, or decode the input as rows. A panic
//! anywhere is a bug.

use riskserve_model::eval::ScoreError;
use riskserve_model::input::RowDecoder;
use riskserve_model::ir::{Feature, FeatureKind, MissingRule, UnknownCategory};
use riskserve_model::{EvaluatorChoice, Format, Kernel, KernelChoice, Predictor, load_model};

/// Values that trip evaluators: signed zeros, values beside common thresholds, category codes
/// around bitset word boundaries and beyond any bitset, negative and fractional codes, f32
/// overflow and subnormals, infinities and NaN.
const TRICKY_VALUES: [f64; 32] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    3.0,
    7.0,
    31.0,
    32.0,
    63.0,
    64.0,
    65.0,
    255.0,
    1e6,
    -1e6,
    2147483647.0,
    4294967296.0,
    1e19,
    -1e19,
    1e30,
    -1e30,
    3.5e38,
    -3.5e38,
    1e-40,
    -1e-40,
    1e-36,
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

/// Rows in the batch: more than two row blocks (64 rows), so that two threads each score a full
/// block and a partial one.
const BATCH_ROWS: usize = 150;

/// Most values a batch holds, so that a model with very many inputs keeps the fuzzer fast.
const MAX_BATCH_VALUES: usize = 1 << 20;

/// Imports `data` (detecting the format when `format` is `None`); when that succeeds, scores
/// rows derived from `data` one at a time and as a two-thread batch with the compile step's own choice, checks that
/// both paths agree, then that the reference walk and the quantised walk with every kernel this CPU runs give the
/// same answers bit for bit.
pub fn import_and_score(data: &[u8], format: Option<Format>) {
    let Ok(model) = load_model(data, format) else { return };
    let Ok(predictor) = Predictor::new(model.clone()) else { return };
    let expected = score_both_paths(&predictor, data);
    let mut variants = vec![(EvaluatorChoice::Reference, KernelChoice::Auto)];
    variants.extend(
        Kernel::available().into_iter().map(|kernel| (EvaluatorChoice::Quantised, KernelChoice::Exactly(kernel))),
    );
    for (choice, kernel) in variants {
        let other = Predictor::with_kernel(model.clone(), choice, kernel).expect("the model compiled once");
        let name = other.compile_report().map(|report| format!("{} {:?}", report.evaluator, report.kernel));
        let found = score_both_paths(&other, data);
        for (index, (expected, found)) in expected.iter().zip(&found).enumerate() {
            match (expected, found) {
                (Ok(expected), Ok(found)) => assert!(
                    same(expected, found),
                    "row {index}: {name:?} gives {found:?}, the compile step's choice {expected:?}"
                ),
                (Err(_), Err(_)) => {}
                _ => panic!("row {index}: {name:?} and the compile step's choice disagree on whether it scores"),
            }
        }
    }
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
}

/// Scores rows derived from `data` one at a time and as a two-thread batch, checks that both paths agree, and
/// returns the one-row answers.
fn score_both_paths(predictor: &Predictor, data: &[u8]) -> Vec<Result<Vec<f64>, ScoreError>> {
    let width = predictor.num_inputs();
    let values = predictor.num_values();

    let num_rows = MAX_BATCH_VALUES.checked_div(width).map_or(0, |cap| BATCH_ROWS.min(cap).max(1));
    let mut rows = Vec::with_capacity(num_rows * width);
    for row in 0..num_rows {
        rows.extend((0..width).map(|column| row_value(data, row, column)));
    }

    let mut scratch = predictor.scratch();
    let mut one_row_out = vec![0.0; values];
    let mut one_row_results: Vec<Result<Vec<f64>, ScoreError>> = Vec::with_capacity(num_rows);
    for row in rows.chunks(width.max(1)) {
        one_row_results.push(predictor.predict_row(row, &mut scratch, &mut one_row_out).map(|()| one_row_out.clone()));
    }
    // A row of the wrong length must be refused, never read past.
    let _ = predictor.predict_row(&vec![0.0; width + 1], &mut scratch, &mut one_row_out);

    let mut batch_out = vec![0.0; num_rows * values];
    match predictor.predict_batch(&rows, &mut batch_out, 2) {
        Ok(()) => {
            for (index, (expected, found)) in one_row_results.iter().zip(batch_out.chunks(values.max(1))).enumerate() {
                let expected = expected
                    .as_ref()
                    .unwrap_or_else(|error| panic!("row {index} scores in a batch but fails alone: {error}"));
                assert!(same(expected, found), "row {index}: one-row path gives {expected:?}, batch gives {found:?}");
            }
        }
        Err(error) => {
            assert!(
                one_row_results.get(error.row).is_some_and(Result::is_err),
                "the batch fails at row {} ({}), which scores alone",
                error.row,
                error.error
            );
        }
    }
    one_row_results
}

/// The value of one cell of the derived rows: row 0 is all missing, row 1 all zeros, the rest
/// pick tricky values by the input's bytes, and every fifth row reads raw f64 bits from the input.
fn row_value(data: &[u8], row: usize, column: usize) -> f64 {
    match row {
        0 => f64::NAN,
        1 => 0.0,
        _ if data.is_empty() => TRICKY_VALUES[(row + column) % TRICKY_VALUES.len()],
        _ if row.is_multiple_of(5) && data.len() >= 8 => {
            let start = (row * 13 + column * 8) % (data.len() - 7);
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&data[start..start + 8]);
            f64::from_le_bytes(bytes)
        }
        _ => {
            let byte = data[(row * 31 + column * 7) % data.len()];
            TRICKY_VALUES[usize::from(byte) % TRICKY_VALUES.len()]
        }
    }
}

/// The features the row decoder is fuzzed against: one of each cell reader.
fn row_features() -> Vec<Feature> {
    let named = |name: &str, categories: &[&str], unknown| Feature {
        name: name.into(),
        kind: FeatureKind::Categorical {
            categories: Some(categories.iter().map(|category| category.to_string()).collect()),
            unknown,
        },
        missing: MissingRule::AsIs,
    };
    vec![
        Feature::numeric("amount"),
        named("purpose", &["car", "tv", "radio"], UnknownCategory::Missing),
        named("housing", &["own", "rent"], UnknownCategory::Error),
        Feature {
            name: "job".into(),
            kind: FeatureKind::Categorical { categories: None, unknown: UnknownCategory::Missing },
            missing: MissingRule::AsIs,
        },
    ]
}

/// Reads `data` as text: the first line is a header (the features' own names when the fuzzed one
/// does not map), each further line a row of comma-separated cells.
pub fn decode_rows(data: &[u8]) {
    let features = row_features();
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let decoder = match RowDecoder::from_header(&features, &header) {
        Ok((decoder, _)) => decoder,
        Err(_) => {
            let names: Vec<&str> = features.iter().map(|feature| feature.name.as_str()).collect();
            RowDecoder::from_header(&features, &names).expect("the features' own names always map").0
        }
    };
    let mut out = vec![0.0; features.len()];
    for (index, line) in lines.enumerate() {
        if decoder.decode(index + 1, line.split(','), &mut out).is_ok() {
            // Named categories decode to a code in the list or to missing.
            for (value, size) in [(out[1], 3.0), (out[2], 2.0)] {
                assert!(value.is_nan() || (value >= 0.0 && value < size && value.fract() == 0.0), "code {value}");
            }
        }
    }
}
