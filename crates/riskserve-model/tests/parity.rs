//! Parity: every fixture model scores exactly as the library that wrote it (`scripts/fixtures.sh`
//! produced the models, rows and the libraries' own predictions under `fixtures/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use riskserve_model::input::RowDecoder;
use riskserve_model::{EvaluatorChoice, Format, Kernel, KernelChoice, Predictor, load_model};
use serde::Deserialize;

/// The issue asks for at least this many model variants.
const MINIMUM_CASES: usize = 25;

#[derive(Debug, Deserialize)]
struct Manifest {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize, Clone)]
struct Case {
    name: String,
    model: String,
    format: String,
    input: Option<String>,
    expected: Option<String>,
    expect_error: Option<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// All cases of `fixtures/manifest.json` and `fixtures/manifest.d/*.json`, by name.
fn cases() -> Vec<Case> {
    let dir = fixtures_dir();
    let mut files = vec![dir.join("manifest.json")];
    if let Ok(entries) = std::fs::read_dir(dir.join("manifest.d")) {
        let mut parts: Vec<PathBuf> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        parts.sort();
        files.extend(parts);
    }
    let mut by_name = BTreeMap::new();
    for file in files.iter().filter(|file| file.exists()) {
        let text = std::fs::read_to_string(file).unwrap();
        let manifest: Manifest =
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        for case in manifest.cases {
            by_name.entry(case.name.clone()).or_insert(case);
        }
    }
    by_name.into_values().collect()
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let header = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows = reader.records().map(|record| record.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

/// Compares one value the way the issue asks: probabilities to 1e-6 absolute, margins,
/// predictions and scores to 1e-5 relative (absolute below magnitude 1), labels exactly.
fn matches(column: &str, expected: &str, actual: f64) -> bool {
    let Ok(expected) = expected.parse::<f64>() else { return false };
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    if column.starts_with("probability") {
        (expected - actual).abs() <= 1e-6
    } else if column == "class" {
        expected == actual
    } else {
        (expected - actual).abs() <= 1e-5 * expected.abs().max(1.0)
    }
}

/// Scores one case and returns a description of every mismatch (empty when it passes).
fn check_case(case: &Case) -> Vec<String> {
    let dir = fixtures_dir();
    let bytes =
        std::fs::read(dir.join(&case.model)).unwrap_or_else(|error| panic!("{}: {}: {error}", case.name, case.model));
    let format =
        Format::from_name(&case.format).unwrap_or_else(|| panic!("{}: unknown format {}", case.name, case.format));
    let loaded = load_model(&bytes, Some(format));
    if let Some(substring) = &case.expect_error {
        return match loaded {
            Ok(_) => vec![format!("{}: loaded, but should fail with {substring:?}", case.name)],
            Err(error) if error.to_string().contains(substring.as_str()) => vec![],
            Err(error) => vec![format!("{}: error {error:?} does not contain {substring:?}", case.name)],
        };
    }
    let model = match loaded {
        Ok(model) => model,
        Err(error) => return vec![format!("{}: cannot load: {error}", case.name)],
    };
    // Detection must agree with the declared format.
    let mut failures = Vec::new();
    match riskserve_model::detect_format(&bytes) {
        Ok(detected) if detected == format => {}
        other => failures.push(format!("{}: format detected as {other:?}, declared {format}", case.name)),
    }
    let (input_header, input_rows) =
        read_csv(&dir.join(case.input.as_ref().expect("a case with expected values has an input")));
    let (expected_header, expected_rows) =
        read_csv(&dir.join(case.expected.as_ref().expect("a case has expected or expect_error")));
    assert_eq!(input_rows.len(), expected_rows.len(), "{}: input and expected row counts differ", case.name);
    let (decoder, _) =
        RowDecoder::from_header(&model.inputs, &input_header).unwrap_or_else(|error| panic!("{}: {error}", case.name));
    let width = model.inputs.len();
    let predictor = Predictor::new(model).unwrap_or_else(|error| panic!("{}: {error}", case.name));
    if predictor.columns() != expected_header.as_slice() {
        return vec![format!("{}: columns {:?}, expected {:?}", case.name, predictor.columns(), expected_header)];
    }
    let values = predictor.num_values();
    let mut rows = vec![0.0; input_rows.len() * width];
    for (index, (cells, row)) in input_rows.iter().zip(rows.chunks_mut(width.max(1))).enumerate() {
        decoder
            .decode(index + 1, cells.iter().map(String::as_str), row)
            .unwrap_or_else(|error| panic!("{}: {error}", case.name));
    }
    let mut scratch = predictor.scratch();
    let mut one_row = vec![0.0; input_rows.len() * values];
    for (index, expected) in expected_rows.iter().enumerate() {
        let out = &mut one_row[index * values..(index + 1) * values];
        if let Err(error) = predictor.predict_row(&rows[index * width..(index + 1) * width], &mut scratch, out) {
            failures.push(format!("{}: row {}: {error}", case.name, index + 1));
            continue;
        }
        for (column, (name, expected)) in expected_header.iter().zip(expected).enumerate() {
            if column < values {
                if !matches(name, expected, out[column]) {
                    failures.push(format!(
                        "{}: row {} column {name}: expected {expected}, got {}",
                        case.name,
                        index + 1,
                        out[column]
                    ));
                }
            } else {
                let scorecard = predictor.scorecard().expect("only scorecards have text columns");
                let actual = scratch.reasons.get(column - values).map_or("", |id| scorecard.reason_code_text(*id));
                if actual != expected {
                    failures.push(format!(
                        "{}: row {} column {name}: expected {expected:?}, got {actual:?}",
                        case.name,
                        index + 1
                    ));
                }
            }
        }
    }
    // The batch path (one and two threads) must give exactly what the one-row path gives.
    if predictor.scorecard().is_none() {
        for threads in [1, 2] {
            let mut batch = vec![0.0; one_row.len()];
            predictor
                .predict_batch(&rows, &mut batch, threads)
                .unwrap_or_else(|error| panic!("{}: {error}", case.name));
            if let Some(index) = batch.iter().zip(&one_row).position(|(a, b)| a.to_bits() != b.to_bits()) {
                failures.push(format!(
                    "{}: batch on {threads} thread(s) differs from one-row scoring at value {index}: {} vs {}",
                    case.name, batch[index], one_row[index]
                ));
            }
        }
    }
    failures
}

#[test]
fn every_fixture_scores_as_its_library() {
    let cases = cases();
    assert!(cases.len() >= MINIMUM_CASES, "only {} parity cases under fixtures/; run scripts/fixtures.sh", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let case_failures = check_case(case);
        eprintln!("{:<48} {}", case.name, if case_failures.is_empty() { "ok" } else { "FAILED" });
        failures.extend(case_failures.into_iter().take(10));
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_fixtures_cover_every_format() {
    let cases = cases();
    for format in ["xgboost-json", "xgboost-ubj", "lightgbm", "onnx", "pmml"] {
        assert!(
            cases.iter().any(|case| case.format == format && case.expected.is_some()),
            "no parity case for {format}"
        );
    }
}

/// Values beside and on the usual thresholds, signed zeros, subnormals, huge values, infinities and NaN: every
/// fixture is also scored on rows made of these, besides its own rows.
const TRICKY_VALUES: [f64; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    3.0,
    1e-40,
    -1e-40,
    1e-310,
    3.5e38,
    -3.5e38,
    1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    64.0,
];

/// Every tree evaluator gives bit-identical answers to the reference walk on every fixture, one row at a time and
/// in batches.
#[test]
fn every_evaluator_scores_every_fixture_as_the_reference_walk() {
    let dir = fixtures_dir();
    let mut quantised = 0;
    let mut failures = Vec::new();
    for case in cases().iter().filter(|case| case.expected.is_some()) {
        let bytes = std::fs::read(dir.join(&case.model)).unwrap();
        let format = Format::from_name(&case.format).unwrap();
        let model = load_model(&bytes, Some(format)).unwrap_or_else(|error| panic!("{}: {error}", case.name));
        let (header, input_rows) = read_csv(&dir.join(case.input.as_ref().unwrap()));
        let (decoder, _) = RowDecoder::from_header(&model.inputs, &header).unwrap();
        let width = model.inputs.len();
        let reference = Predictor::with_evaluator(model.clone(), EvaluatorChoice::Reference).unwrap();
        let Some(report) = reference.compile_report() else { continue };
        assert_eq!(report.evaluator, "reference");
        let mut rows = vec![0.0; input_rows.len() * width];
        for (index, (cells, row)) in input_rows.iter().zip(rows.chunks_mut(width.max(1))).enumerate() {
            decoder.decode(index + 1, cells.iter().map(String::as_str), row).unwrap();
        }
        for index in 0..150 * width {
            rows.push(TRICKY_VALUES[(index * 7 + index / width) % TRICKY_VALUES.len()]);
        }
        let values = reference.num_values();
        let num_rows = rows.len() / width.max(1);
        let mut expected = vec![0.0; num_rows * values];
        let mut scratch = reference.scratch();
        let mut ok = vec![true; num_rows];
        for (index, (row, out)) in rows.chunks(width).zip(expected.chunks_mut(values)).enumerate() {
            // Tricky values may be refused by the model (a category out of range is not, but stay general).
            ok[index] = reference.predict_row(row, &mut scratch, out).is_ok();
        }
        // The quantised walk with every kernel this CPU runs, and the compile step's own choice.
        let mut choices: Vec<(EvaluatorChoice, KernelChoice)> = Kernel::available()
            .into_iter()
            .map(|kernel| (EvaluatorChoice::Quantised, KernelChoice::Exactly(kernel)))
            .collect();
        choices.push((EvaluatorChoice::Auto, KernelChoice::Auto));
        for (choice, kernel) in choices {
            let predictor = Predictor::with_kernel(model.clone(), choice, kernel).unwrap();
            let report = predictor.compile_report().unwrap();
            let name = format!("{} ({:?}, {})", report.evaluator, report.kernel, report.one_row_walk);
            if choice == EvaluatorChoice::Quantised && report.evaluator.starts_with("quantised") {
                quantised += 1;
            }
            eprintln!("{:<48} {choice:?}: {name}", case.name);
            let mut scratch = predictor.scratch();
            let mut out = vec![0.0; values];
            for (index, row) in rows.chunks(width).enumerate().filter(|(index, _)| ok[*index]) {
                predictor.predict_row(row, &mut scratch, &mut out).unwrap();
                let wanted = &expected[index * values..(index + 1) * values];
                if out.iter().zip(wanted).any(|(a, b)| a.to_bits() != b.to_bits()) {
                    failures.push(format!("{} ({name}): row {index}: {out:?}, reference {wanted:?}", case.name));
                }
            }
            if ok.iter().all(|ok| *ok) {
                for threads in [1, 2] {
                    let mut batch = vec![0.0; expected.len()];
                    predictor.predict_batch(&rows, &mut batch, threads).unwrap();
                    if let Some(at) = batch.iter().zip(&expected).position(|(a, b)| a.to_bits() != b.to_bits()) {
                        failures.push(format!(
                            "{} ({name}): batch on {threads} thread(s) differs at value {at}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(
        quantised >= 10 * Kernel::available().len(),
        "only {quantised} fixture compilations took a quantised evaluator"
    );
}
