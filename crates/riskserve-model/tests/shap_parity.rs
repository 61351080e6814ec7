//! TreeSHAP parity: the explainer gives the SHAP values `shap.TreeExplainer` gives on the fixture
//! models (`scripts/fixtures_shap.sh` wrote them under `fixtures/shap/`), and every explanation
//! sums to the margin the evaluator computes.

use std::path::{Path, PathBuf};

use riskserve_model::input::RowDecoder;
use riskserve_model::ir::{Model, ModelBody, Output, OutputKind, Precision, Transform};
use riskserve_model::shap::Explainer;
use riskserve_model::{Format, ModelError, Predictor, load_model};
use serde::Deserialize;

/// Largest accepted difference from shap's values and from the margin, in margin space.
const TOLERANCE: f64 = 1e-6;
/// For f32 models (XGBoost), the sum of the contributions against the margin, relative to the
/// magnitude of the terms summed (Σ |value|, at least 1). XGBoost computes both in f32: its own
/// `pred_contribs`, which the explainer equals bit for bit, miss its own margin by a few f32
/// roundings of the terms (up to 2.4e-5 absolute on the depth-12 fixture, where contributions of
/// ±10 cancel), so 1e-6 absolute cannot hold there; 1e-5 is the relative tolerance the scoring
/// parity uses for margins.
const F32_SUM_TOLERANCE: f64 = 1e-5;

#[derive(Debug, Deserialize)]
struct Manifest {
    cases: Vec<ManifestEntry>,
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    case: String,
    file: String,
}

#[derive(Debug, Deserialize)]
struct ShapCase {
    model: String,
    format: String,
    input: String,
    rows: Vec<usize>,
    num_features: usize,
    num_groups: usize,
    expected_value: Vec<f64>,
    /// Per row, per group, per feature.
    shap_values: Vec<Vec<Vec<f64>>>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn load(relative: &str, format: &str) -> Model {
    let bytes = std::fs::read(fixtures_dir().join(relative)).unwrap_or_else(|error| panic!("{relative}: {error}"));
    load_model(&bytes, Some(Format::from_name(format).expect("a known format"))).expect("the fixture loads")
}

/// The model with its output transform removed, so that the evaluator answers the margin.
fn margin_model(model: &Model) -> Model {
    let mut margin = model.clone();
    margin.output = Output { transform: Transform::Identity, kind: OutputKind::Margin };
    margin
}

/// Decoded data rows of an input CSV (all of them).
fn decode_rows(model: &Model, input: &str) -> Vec<Vec<f64>> {
    let path = fixtures_dir().join(input);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let (decoder, _) =
        RowDecoder::from_header(&model.inputs, &header).unwrap_or_else(|error| panic!("{input}: {error}"));
    reader
        .records()
        .enumerate()
        .map(|(index, record)| {
            let record = record.unwrap();
            let mut row = vec![0.0; model.inputs.len()];
            decoder.decode(index + 1, record.iter(), &mut row).unwrap_or_else(|error| panic!("{input}: {error}"));
            row
        })
        .collect()
}

/// Explains every row of one case; returns its mismatches (empty when it passes).
fn check_case(name: &str, case: &ShapCase) -> Vec<String> {
    let model = load(&case.model, &case.format);
    let explainer = Explainer::new(&model).unwrap_or_else(|error| panic!("{name}: {error}"));
    let mut failures = Vec::new();
    if explainer.num_features() != case.num_features || explainer.num_groups() != case.num_groups {
        return vec![format!(
            "{name}: explainer has {} features and {} groups, shap {} and {}",
            explainer.num_features(),
            explainer.num_groups(),
            case.num_features,
            case.num_groups
        )];
    }
    let rows = decode_rows(&model, &case.input);
    let predictor = Predictor::new(margin_model(&model)).unwrap();
    let mut predictor_scratch = predictor.scratch();
    let mut margin = vec![0.0; predictor.num_values()];
    let mut scratch = explainer.scratch();
    let stride = case.num_features + 1;
    let mut out = vec![0.0; case.num_groups * stride];
    let f32_model = matches!(&model.body, ModelBody::Trees(ensemble) if ensemble.precision == Precision::F32);
    let (mut largest_difference, mut largest_sum_error) = (0.0f64, 0.0f64);
    for (row_index, expected_row) in case.rows.iter().zip(&case.shap_values) {
        let row = &rows[*row_index];
        explainer.explain_row(row, &mut scratch, &mut out).unwrap();
        predictor.predict_row(row, &mut predictor_scratch, &mut margin).unwrap();
        let line = row_index + 1;
        for (group, expected_group) in expected_row.iter().enumerate() {
            let actual = &out[group * stride..(group + 1) * stride];
            for (feature, (expected, actual)) in expected_group.iter().zip(actual).enumerate() {
                largest_difference = largest_difference.max((expected - actual).abs());
                if (expected - actual).abs() > TOLERANCE {
                    failures.push(format!(
                        "{name}: row {line} group {group} feature {feature}: shap {expected}, riskserve {actual}"
                    ));
                }
            }
            let bias = actual[case.num_features];
            if (bias - case.expected_value[group]).abs() > TOLERANCE {
                failures.push(format!(
                    "{name}: row {line} group {group}: expected value {}, riskserve bias {bias}",
                    case.expected_value[group]
                ));
            }
            let sum: f64 = actual.iter().sum();
            let magnitude: f64 = actual.iter().map(|value| value.abs()).sum();
            let tolerance = if f32_model { F32_SUM_TOLERANCE * magnitude.max(1.0) } else { TOLERANCE };
            largest_sum_error = largest_sum_error.max((sum - margin[group]).abs());
            if (sum - margin[group]).abs() > tolerance {
                failures.push(format!(
                    "{name}: row {line} group {group}: contributions sum to {sum}, the margin is {}",
                    margin[group]
                ));
            }
        }
    }
    eprintln!(
        "{name:<40} largest difference from shap {largest_difference:.1e}, largest |sum - margin| {largest_sum_error:.1e}"
    );
    failures
}

#[test]
fn tree_shap_equals_shap_tree_explainer_on_every_fixture() {
    let dir = fixtures_dir().join("shap");
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("run scripts/fixtures_shap.sh"),
    )
    .unwrap();
    assert!(manifest.cases.len() >= 20, "only {} TreeSHAP cases", manifest.cases.len());
    let mut failures = Vec::new();
    let mut values = 0;
    for entry in &manifest.cases {
        let text = std::fs::read_to_string(fixtures_dir().join(&entry.file)).unwrap();
        let case: ShapCase = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", entry.file));
        values += case.rows.len() * case.num_groups * (case.num_features + 1);
        let case_failures = check_case(&entry.case, &case);
        eprintln!("{:<40} {}", entry.case, if case_failures.is_empty() { "ok" } else { "FAILED" });
        failures.extend(case_failures.into_iter().take(10));
    }
    eprintln!("{values} values compared");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_fixtures_cover_every_kind_of_tree_model() {
    let text = std::fs::read_to_string(fixtures_dir().join("shap/manifest.json")).unwrap();
    let manifest: Manifest = serde_json::from_str(&text).unwrap();
    for needed in [
        "xgb3_binary_logistic_json",
        "xgb3_binary_logistic_ubj",
        "xgb3_multi_softprob_json",
        "xgb3_reg_squarederror_json",
        "xgb3_categorical_json",
        "lgbm_binary_nan",
        "lgbm_binary_zero",
        "lgbm_multiclass",
        "lgbm_categorical_pandas",
        "lgbm_categorical_codes",
    ] {
        assert!(manifest.cases.iter().any(|entry| entry.case == needed), "no TreeSHAP case {needed}");
    }
}

/// Linear and logistic models: each contribution is `w · x` and the bias the intercept, so they
/// sum to the margin the evaluator computes (after any preprocessing program).
#[test]
fn linear_contributions_sum_to_the_margin() {
    for (model_file, input) in [
        ("onnx/onnx_logistic_regression_binary.onnx", "onnx/onnx_logistic_regression_binary.input.csv"),
        ("onnx/onnx_logistic_regression_multiclass.onnx", "onnx/onnx_logistic_regression_multiclass.input.csv"),
        ("onnx/onnx_pipeline_scaler_logistic.onnx", "onnx/onnx_pipeline_scaler_logistic.input.csv"),
        ("onnx/onnx_column_transformer_logistic.onnx", "onnx/onnx_column_transformer_logistic.input.csv"),
    ] {
        let model = load(model_file, "onnx");
        let explainer = Explainer::new(&model).unwrap_or_else(|error| panic!("{model_file}: {error}"));
        assert_eq!(explainer.feature_names().len(), explainer.num_features());
        let predictor = Predictor::new(margin_model(&model)).unwrap();
        let mut predictor_scratch = predictor.scratch();
        let mut margin = vec![0.0; predictor.num_values()];
        let mut scratch = explainer.scratch();
        let stride = explainer.num_features() + 1;
        let mut out = vec![0.0; explainer.num_groups() * stride];
        let mut checked = 0;
        for (index, row) in decode_rows(&model, input).iter().enumerate() {
            explainer.explain_row(row, &mut scratch, &mut out).unwrap();
            predictor.predict_row(row, &mut predictor_scratch, &mut margin).unwrap();
            for (group, margin) in margin.iter().enumerate() {
                let sum: f64 = out[group * stride..(group + 1) * stride].iter().sum();
                if margin.is_finite() {
                    let tolerance = TOLERANCE * margin.abs().max(1.0);
                    assert!(
                        (sum - margin).abs() <= tolerance,
                        "{model_file}: row {index} group {group}: {sum} vs {margin}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "{model_file}: only {checked} finite margins");
    }
}

#[test]
fn models_without_covers_and_scorecards_are_refused_naming_why() {
    let forest = load("onnx/onnx_random_forest_binary.onnx", "onnx");
    match Explainer::new(&forest) {
        Err(ModelError::Unsupported { message, .. }) => assert!(message.contains("cover"), "{message}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let scorecard = load("pmml/germancredit_points_below.pmml", "pmml");
    match Explainer::new(&scorecard) {
        Err(ModelError::Unsupported { message, .. }) => assert!(message.contains("scorecard"), "{message}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn a_row_of_the_wrong_length_is_an_error() {
    let model = load("xgb3/xgb3_binary_logistic.json", "xgboost-json");
    let explainer = Explainer::new(&model).unwrap();
    let mut scratch = explainer.scratch();
    let mut out = vec![0.0; explainer.num_groups() * (explainer.num_features() + 1)];
    let error = explainer.explain_row(&[1.0, 2.0], &mut scratch, &mut out).unwrap_err();
    assert_eq!(error.to_string(), format!("expected {} values, got 2", model.inputs.len()));
    assert_eq!(explainer.feature_names()[0], model.inputs[0].name);
}

#[test]
fn an_explainer_is_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Explainer>();
    fn owned<T: Send>() {}
    owned::<riskserve_model::shap::ExplainScratch>();
}
