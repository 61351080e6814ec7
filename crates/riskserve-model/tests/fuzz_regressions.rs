//! Replays the inputs that once crashed a fuzz target (`tests/fuzz_regressions/<target>-<name>`):
//! each must be refused with an error, or import and score through both evaluator paths, without
//! panicking. The fuzz targets themselves live in `fuzz/` and need nightly; this runs everywhere.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use riskserve_model::input::RowDecoder;
use riskserve_model::ir::{Feature, FeatureKind, MissingRule, UnknownCategory};
use riskserve_model::{Format, Predictor, load_model};

/// Values the fuzz harness also feeds: signed zeros, codes beyond bitsets, f32 overflow,
/// subnormals, infinities, NaN.
const TRICKY_VALUES: [f64; 12] =
    [0.0, -0.0, 1.0, -1.0, 64.0, 4294967296.0, 3.5e38, -3.5e38, 1e-40, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];

/// More than two row blocks, so that a two-thread batch gives each thread a full and a partial one.
const BATCH_ROWS: usize = 150;

fn regression_files() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let Ok(entries) = std::fs::read_dir(&folder) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.is_file()).collect();
    files.sort();
    files
}

/// The importer a reproducer goes through, from its name's prefix; `None` (outer) for the row decoder.
fn format_of(file_name: &str) -> Option<Option<Format>> {
    let target = file_name.split_once('-').map_or(file_name, |(target, _)| target);
    match target {
        "xgboost_json" => Some(Some(Format::XgboostJson)),
        "xgboost_ubj" => Some(Some(Format::XgboostUbj)),
        "lightgbm" => Some(Some(Format::Lightgbm)),
        "onnx" => Some(Some(Format::Onnx)),
        "pmml" => Some(Some(Format::Pmml)),
        "detect" => Some(None),
        "rows" => None,
        other => panic!("{file_name}: unknown fuzz target {other:?}; name reproducers <target>-<short name>"),
    }
}

fn import_and_score(data: &[u8], format: Option<Format>) {
    let Ok(model) = load_model(data, format) else { return };
    let Ok(predictor) = Predictor::new(model) else { return };
    let width = predictor.num_inputs();
    let values = predictor.num_values();
    let num_rows = (1usize << 20).checked_div(width).map_or(0, |cap| BATCH_ROWS.min(cap).max(1));
    let rows: Vec<f64> = (0..num_rows * width)
        .map(|index| match index / width.max(1) {
            0 => f64::NAN,
            1 => 0.0,
            _ => TRICKY_VALUES[(index * 7) % TRICKY_VALUES.len()],
        })
        .collect();
    let mut scratch = predictor.scratch();
    let mut out = vec![0.0; values];
    let mut alone = Vec::with_capacity(num_rows);
    for row in rows.chunks(width.max(1)) {
        alone.push(predictor.predict_row(row, &mut scratch, &mut out).map(|()| out.clone()));
    }
    let mut batch_out = vec![0.0; num_rows * values];
    if predictor.predict_batch(&rows, &mut batch_out, 2).is_ok() {
        for (index, (expected, found)) in alone.iter().zip(batch_out.chunks(values.max(1))).enumerate() {
            let expected = expected.as_ref().expect("a row that scores in a batch scores alone");
            assert!(
                expected.iter().zip(found).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
                "row {index}: one-row path gives {expected:?}, batch gives {found:?}"
            );
        }
    }
}

fn decode_rows(data: &[u8]) {
    let named = |name: &str, categories: &[&str], unknown| Feature {
        name: name.into(),
        kind: FeatureKind::Categorical {
            categories: Some(categories.iter().map(|category| category.to_string()).collect()),
            unknown,
        },
        missing: MissingRule::AsIs,
    };
    let features = vec![
        Feature::numeric("amount"),
        named("purpose", &["car", "tv", "radio"], UnknownCategory::Missing),
        named("housing", &["own", "rent"], UnknownCategory::Error),
        Feature {
            name: "job".into(),
            kind: FeatureKind::Categorical { categories: None, unknown: UnknownCategory::Missing },
            missing: MissingRule::AsIs,
        },
    ];
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let decoder = match RowDecoder::from_header(&features, &header) {
        Ok((decoder, _)) => decoder,
        Err(_) => RowDecoder::from_header(&features, &["amount", "purpose", "housing", "job"]).unwrap().0,
    };
    let mut out = vec![0.0; features.len()];
    for (index, line) in lines.enumerate() {
        let _ = decoder.decode(index + 1, line.split(','), &mut out);
    }
}

#[test]
fn fuzz_reproducers_are_refused_or_score_without_panicking() {
    let mut failures = Vec::new();
    for path in regression_files() {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_string();
        let data = std::fs::read(&path).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| match format_of(&name) {
            Some(format) => import_and_score(&data, format),
            None => decode_rows(&data),
        }));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(failures.is_empty(), "fuzz reproducers panicked:\n{}", failures.join("\n"));
}
