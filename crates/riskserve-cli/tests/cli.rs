//! The `riskserve` binary end to end: `score`, `bench` and `compile` on the parity fixtures, and their
//! answers to bad models, bad rows and bad flags.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn riskserve(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riskserve")).args(arguments).output().expect("the binary runs")
}

/// A scratch directory unique to one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("riskserve-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// The first fixture case of `format` that has expected values: (model, input, expected).
fn case(format: &str) -> (String, String, String) {
    let mut manifests = vec![fixtures().join("manifest.json")];
    if let Ok(entries) = std::fs::read_dir(fixtures().join("manifest.d")) {
        let mut parts: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        parts.sort();
        manifests.extend(parts);
    }
    for manifest in manifests.iter().filter(|path| path.exists()) {
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
        for case in manifest["cases"].as_array().unwrap() {
            if case["format"] == format && case["expected"].is_string() {
                let path = |key: &str| fixtures().join(case[key].as_str().unwrap()).display().to_string();
                return (path("model"), path("input"), path("expected"));
            }
        }
    }
    panic!("no fixture case for {format}; run scripts/fixtures.sh")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn score_writes_the_library_predictions_for_every_format() {
    let dir = scratch("score");
    for format in ["xgboost-json", "xgboost-ubj", "lightgbm", "onnx", "pmml"] {
        let (model, input, expected) = case(format);
        let out = dir.join(format!("{format}.csv"));
        // The format is detected from the content.
        let output = riskserve(&["score", "--model", &model, "--input", &input, "--output", out.to_str().unwrap()]);
        assert!(output.status.success(), "{format}: {}", stderr(&output));
        let actual = read_csv(&std::fs::read_to_string(&out).unwrap());
        let expected = read_csv(&std::fs::read_to_string(&expected).unwrap());
        assert_eq!(actual[0], expected[0], "{format}: header");
        assert_eq!(actual.len(), expected.len(), "{format}: one line per row");
        for (line, (actual, expected)) in actual.iter().zip(&expected).enumerate().skip(1) {
            for (actual, expected) in actual.iter().zip(expected) {
                match (actual.parse::<f64>(), expected.parse::<f64>()) {
                    (Ok(a), Ok(e)) => assert!(
                        (a - e).abs() <= 1e-5 * e.abs().max(1.0) || (a.is_nan() && e.is_nan()),
                        "{format} line {line}: {a} vs {e}"
                    ),
                    _ => assert_eq!(actual, expected, "{format} line {line}"),
                }
            }
        }
    }
}

#[test]
fn score_writes_to_standard_output_with_an_explicit_format() {
    let (model, input, expected) = case("xgboost-json");
    let output = riskserve(&["score", "--model", &model, "--format", "xgboost-json", "--input", &input]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = String::from_utf8(output.stdout).unwrap().lines().count();
    assert_eq!(lines, std::fs::read_to_string(expected).unwrap().lines().count());
}

#[test]
fn bad_rows_are_reported_together_naming_row_and_column() {
    let (model, input, _) = case("xgboost-json");
    let text = std::fs::read_to_string(&input).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let good = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let mut bad_cells: Vec<&str> = good.split(',').collect();
    bad_cells[0] = "twelve";
    let dir = scratch("bad-rows");
    let path = dir.join("bad.csv");
    std::fs::write(&path, format!("{header}\n{good}\n{}\n{}\n", bad_cells.join(","), "1,2")).unwrap();
    let output = riskserve(&["score", "--model", &model, "--input", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("2 bad rows"), "{message}");
    assert!(
        message.contains(&format!("row 2, column {:?}: expected a number, found \"twelve\"", columns[0])),
        "{message}"
    );
    assert!(message.contains(&format!("row 3: expected {} columns, found 2", columns.len())), "{message}");
}

#[test]
fn a_corrupt_model_is_refused_without_a_panic() {
    let (model, input, _) = case("xgboost-json");
    let bytes = std::fs::read(&model).unwrap();
    let dir = scratch("corrupt");
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let output = riskserve(&["score", "--model", truncated.to_str().unwrap(), "--input", &input]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("cannot load the model"), "{}", stderr(&output));
    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, b"\x01\x02not a model").unwrap();
    let output = riskserve(&["score", "--model", garbage.to_str().unwrap(), "--input", &input]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot detect the model format"), "{}", stderr(&output));
    let output = riskserve(&["score", "--model", "/nonexistent/model.json", "--input", &input]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read the model /nonexistent/model.json"), "{}", stderr(&output));
}

#[test]
fn bench_prints_a_json_report_last() {
    let (model, input, _) = case("xgboost-ubj");
    for batch in ["1", "1000"] {
        let output = riskserve(&[
            "bench",
            "--model",
            &model,
            "--input",
            &input,
            "--batch-size",
            batch,
            "--threads",
            "2",
            "--seconds",
            "0.2",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert!(report["rows_per_second"].as_f64().unwrap() > 0.0);
        assert!(report["ns_per_row"].as_f64().unwrap() > 0.0);
        assert_eq!(report["batch_size"].as_u64().unwrap().to_string(), batch);
        assert_eq!(report["threads"], 2);
    }
    let output = riskserve(&["bench", "--model", &model, "--input", &input, "--batch-size", "0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--batch-size"), "{}", stderr(&output));
}

/// A pipeline over the XGBoost fixture's 20 numeric inputs, written beside a copy of the model so
/// that the model file is found relative to the pipeline file: (pipeline path, input, expected).
fn xgboost_pipeline(dir: &Scratch, extra: serde_json::Value) -> (PathBuf, String, String) {
    let (model, input, expected) = case("xgboost-json");
    std::fs::copy(&model, dir.join("model.json")).unwrap();
    let text = std::fs::read_to_string(&input).unwrap();
    let header = text.lines().next().unwrap();
    let features: Vec<serde_json::Value> =
        header.split(',').map(|name| serde_json::json!({"name": name, "type": "numeric", "required": false})).collect();
    let mut spec = serde_json::json!({"version": 1, "features": features, "model": {"artifact": "model.json"}});
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    let path = dir.join("pipeline.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    (path, input, expected)
}

#[test]
fn score_pipeline_writes_csv_and_json_lines() {
    let dir = scratch("pipeline");
    let extra = serde_json::json!({
        "scaling": {"pdo": 20, "reference_score": 600, "reference_odds": 50},
        "master_scale": {"bands": [{"grade": "A", "min": 0, "max": 0.3}, {"grade": "B", "min": 0.3, "max": 1}]},
        "decision": {"approve": 0.3, "decline": 0.6}
    });
    let (pipeline, input, expected) = xgboost_pipeline(&dir, extra);
    // Run from another folder: the model is found beside the pipeline, not in the working folder.
    let output = Command::new(env!("CARGO_BIN_EXE_riskserve"))
        .args(["score", "--pipeline", pipeline.to_str().unwrap(), "--input", &input])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let csv = read_csv(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(csv[0], ["probability", "score", "grade", "decision"]);
    let expected = read_csv(&std::fs::read_to_string(&expected).unwrap());
    assert_eq!(csv.len(), expected.len());
    for (line, (actual, expected)) in csv.iter().zip(&expected).enumerate().skip(1) {
        let probability: f64 = actual[0].parse().unwrap();
        let library: f64 = expected[0].parse().unwrap();
        assert!((probability - library).abs() <= 1e-6, "line {line}: {probability} vs {library}");
        assert_eq!(actual[2], if probability < 0.3 { "A" } else { "B" }, "line {line}");
    }

    let output = riskserve(&[
        "score",
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--input",
        &input,
        "--output-format",
        "json",
        "--explain",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), expected.len() - 1, "one line per row");
    for line in text.lines() {
        let outcome: serde_json::Value = serde_json::from_str(line).unwrap();
        for member in ["probability", "score", "grade", "decision", "contributions", "reasons"] {
            assert!(outcome.get(member).is_some(), "{member} missing from {line}");
        }
        let probability = outcome["probability"].as_f64().unwrap();
        let sum: f64 = outcome["contributions"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
        let margin = (probability / (1.0 - probability)).ln();
        assert!((sum - margin).abs() < 1e-4, "contributions sum to {sum}, the margin is {margin}");
        assert!(outcome["contributions"].get("bias").is_some());
        for reason in outcome["reasons"].as_array().unwrap() {
            for member in ["code", "feature", "text", "contribution"] {
                assert!(reason.get(member).is_some(), "{member} missing from a reason");
            }
            assert!(reason["contribution"].as_f64().unwrap() > 0.0);
        }
    }
}

#[test]
fn score_model_explains_with_the_models_feature_names() {
    let (model, input, _) = case("xgboost-json");
    let output = riskserve(&["score", "--model", &model, "--input", &input, "--output-format", "json", "--explain"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let header = std::fs::read_to_string(&input).unwrap().lines().next().unwrap().to_string();
    let text = String::from_utf8(output.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let contributions = first["contributions"].as_object().unwrap();
    for name in header.split(',') {
        assert!(contributions.contains_key(name), "no contribution for {name}");
    }
    let probability = first["values"][0].as_f64().unwrap();
    let sum: f64 = contributions.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - (probability / (1.0 - probability)).ln()).abs() < 1e-4);
    assert!(first.get("reasons").is_some());
    assert!(first.get("probability").is_none(), "a bare model gives its values only");
}

#[test]
fn score_pipeline_reports_every_bad_row_naming_row_and_field() {
    let dir = scratch("pipeline-bad-rows");
    let (pipeline, input, _) = xgboost_pipeline(&dir, serde_json::json!({}));
    let text = std::fs::read_to_string(&input).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let good = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let mut bad: Vec<&str> = good.split(',').collect();
    bad[1] = "twelve";
    let path = dir.join("bad.csv");
    std::fs::write(&path, format!("{header}\n{good}\n{}\n1,2\n{}\n", bad.join(","), bad.join(","))).unwrap();
    let output = riskserve(&["score", "--pipeline", pipeline.to_str().unwrap(), "--input", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("3 errors"), "{message}");
    assert!(message.contains(&format!("row 2: field {:?}: \"twelve\" is not a number", columns[1])), "{message}");
    assert!(message.contains(&format!("row 3: expected {} columns, found 2", columns.len())), "{message}");
    assert!(message.contains(&format!("row 4: field {:?}", columns[1])), "{message}");
}

#[test]
fn an_invalid_pipeline_is_refused_naming_the_place() {
    let dir = scratch("pipeline-invalid");
    let extra = serde_json::json!({"steps": [{"step": "clip", "input": "income", "max": 1}]});
    let (pipeline, input, _) = xgboost_pipeline(&dir, extra);
    let output = riskserve(&["score", "--pipeline", pipeline.to_str().unwrap(), "--input", &input]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("steps[0].input: feature \"income\" is not declared"), "{message}");
}

#[test]
fn compile_reports_the_evaluator_and_the_kernel_it_chose() {
    let model = fixtures().join("xgb21/xgb21_binary_logistic.json").display().to_string();
    let report = |arguments: &[&str]| {
        let output = riskserve(&[&["compile", "--model", &model], arguments].concat());
        assert!(output.status.success(), "{arguments:?}: {}", stderr(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("the report is JSON")
    };
    let auto = report(&[]);
    assert!(auto["evaluator"].as_str().unwrap().starts_with("quantised"), "{auto}");
    assert_eq!(auto["verified_rows"], 139, "{auto}");
    let kernels = ["portable", "avx2", "avx512"];
    assert!(kernels.contains(&auto["kernel"].as_str().unwrap()), "{auto}");
    // With more than one kernel on this CPU, auto timed them all and kept one within 10 % of the fastest.
    let timings = auto["kernel_timings"].as_array().unwrap();
    let nanos = |timing: &serde_json::Value| timing["nanos_per_row"].as_f64().expect("a time per row");
    if let Some(fastest) = timings.iter().map(nanos).min_by(f64::total_cmp) {
        let kept = timings.iter().find(|timing| timing["kernel"] == auto["kernel"]).expect("the kept kernel was timed");
        assert!(nanos(kept) * 0.9 <= fastest + 0.1, "{auto}");
    }
    let portable = report(&["--kernel", "portable"]);
    assert_eq!((portable["kernel"].as_str(), portable["one_row_walk"].as_str()), (Some("portable"), Some("scalar")));
    assert_eq!(portable["kernel_timings"], serde_json::json!([]));
    let reference = report(&["--evaluator", "reference", "--kernel", "avx512"]);
    assert_eq!((reference["evaluator"].as_str(), reference["kernel"].as_str()), (Some("reference"), Some("portable")));

    let unknown = riskserve(&["compile", "--model", &model, "--kernel", "sse9"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("possible values: auto, portable, avx2, avx512"), "{}", stderr(&unknown));
    let scorecard = fixtures().join("pmml/dmg_sample_scorecard.pmml").display().to_string();
    let nothing = riskserve(&["compile", "--model", &scorecard]);
    assert!(!nothing.status.success());
    assert!(stderr(&nothing).contains("not a tree ensemble"), "{}", stderr(&nothing));
}
