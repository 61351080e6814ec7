//! Pipeline overhead over the bare model: the same XGBoost model (German Credit, 20 inputs, 60
//! trees of depth 4) on the same rows, scored bare through `Predictor::predict_row` and through a
//! pipeline with a 20-field schema and a typical set of steps (category maps, clip, impute, a
//! derived ratio, Platt calibration, PDO scaling, a five-band master scale, cut-offs and two
//! knock-out rules). The difference per row is the pipeline's overhead.
//!
//! `cargo bench -p riskserve-pipeline --bench pipeline`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riskserve_model::{Predictor, load_model};
use riskserve_pipeline::{Cell, Pipeline, ScoreOptions};
use serde_json::{Value, json};

const MODEL: &str = "fixtures/xgb3/xgb3_binary_logistic.json";
const INPUT: &str = "fixtures/xgb3/xgb3_binary_logistic.input.csv";
const BATCH: usize = 256;
const CATEGORICAL: [&str; 5] =
    ["status_of_existing_checking_account", "credit_history", "purpose", "savings_account_and_bonds", "housing"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spec(header: &[String]) -> Value {
    let categories: Vec<String> = (0..10).map(|code| code.to_string()).collect();
    let features: Vec<Value> = header
        .iter()
        .map(|name| {
            if CATEGORICAL.contains(&name.as_str()) {
                json!({"name": name, "type": "categorical", "categories": categories, "required": false,
                       "out_of_range": "missing", "description": "a coded category"})
            } else {
                json!({"name": name, "type": "numeric", "required": false, "description": "a number"})
            }
        })
        .collect();
    let mut steps: Vec<Value> = CATEGORICAL
        .iter()
        .map(|name| {
            let codes: serde_json::Map<String, Value> =
                categories.iter().enumerate().map(|(code, category)| (category.clone(), json!(code))).collect();
            json!({"step": "category_map", "input": name, "codes": codes})
        })
        .collect();
    steps.push(json!({"step": "clip", "input": "duration_in_month", "min": 1, "max": 1e31}));
    steps.push(json!({"step": "impute", "input": "present_residence_since", "value": 2}));
    steps.push(json!({"step": "derive", "output": "amount_per_month", "op": "ratio", "args": ["credit_amount", "duration_in_month"]}));
    let reason_codes: serde_json::Map<String, Value> = header
        .iter()
        .enumerate()
        .map(|(index, name)| (name.clone(), json!({"code": format!("R{index:02}"), "text": name})))
        .collect();
    json!({
        "version": 1,
        "features": features,
        "steps": steps,
        "model": {"artifact": MODEL},
        "calibration": [{"method": "platt", "a": -1.1, "b": 0.05}],
        "scaling": {"pdo": 20, "reference_score": 600, "reference_odds": 50},
        "master_scale": {"bands": [
            {"grade": "A", "min": 0, "max": 0.05}, {"grade": "B", "min": 0.05, "max": 0.1},
            {"grade": "C", "min": 0.1, "max": 0.2}, {"grade": "D", "min": 0.2, "max": 0.4},
            {"grade": "E", "min": 0.4, "max": 1}]},
        "decision": {"approve": 0.1, "decline": 0.4, "knockouts": [
            {"feature": "age_in_years", "op": "lt", "value": 18},
            {"feature": "purpose", "op": "in", "value": ["9"], "decision": "refer"}]},
        "reason_codes": reason_codes
    })
}

fn benchmark(c: &mut Criterion) {
    let mut reader = csv::Reader::from_path(root().join(INPUT)).expect("fixture input");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    let records: Vec<Vec<String>> =
        reader.records().map(|record| record.expect("record").iter().map(str::to_string).collect()).collect();
    // Values as the pipeline reads them: categorical codes outside 0..9 are missing (as the
    // pipeline's out_of_range policy makes them), so both paths see the same model inputs.
    let values: Vec<Vec<f64>> = records
        .iter()
        .map(|row| {
            row.iter()
                .zip(&header)
                .map(|(text, name)| {
                    let value = text.parse::<f64>().unwrap_or(f64::NAN);
                    let categorical = CATEGORICAL.contains(&name.as_str());
                    if categorical && !(value.fract() == 0.0 && (0.0..10.0).contains(&value)) {
                        f64::NAN
                    } else {
                        value
                    }
                })
                .collect()
        })
        .collect();
    let cells: Vec<Vec<Cell<'static>>> = values
        .iter()
        .cycle()
        .take(BATCH)
        .map(|row| {
            row.iter()
                .zip(&header)
                .map(|(value, name)| {
                    if value.is_nan() {
                        Cell::Missing
                    } else if CATEGORICAL.contains(&name.as_str()) {
                        Cell::Text((*value as i64).to_string().into())
                    } else {
                        Cell::Number(*value)
                    }
                })
                .collect()
        })
        .collect();
    let flat: Vec<f64> = values.iter().cycle().take(BATCH).flatten().copied().collect();

    let bytes = std::fs::read(root().join(MODEL)).expect("fixture model");
    let predictor = Predictor::new(load_model(&bytes, None).expect("model loads")).expect("model compiles");
    let spec = serde_json::to_vec(&spec(&header)).expect("spec");
    let pipeline =
        Pipeline::from_spec(&spec, &mut |name: &str| std::fs::read(root().join(name)).map_err(|e| e.to_string()))
            .expect("pipeline loads");
    let options = ScoreOptions::default();
    pipeline.score_batch(&cells, &options).expect("rows are valid");

    let mut group = c.benchmark_group("pipeline_overhead");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("bare_predictor_row_by_row", |b| {
        let mut scratch = predictor.scratch();
        let mut out = [0.0];
        b.iter(|| {
            for row in flat.chunks(header.len()) {
                predictor.predict_row(black_box(row), &mut scratch, &mut out).expect("scores");
                black_box(out[0]);
            }
        })
    });
    group.bench_function("pipeline_score_batch", |b| {
        b.iter(|| black_box(pipeline.score_batch(black_box(&cells), &options).expect("scores")))
    });
    // A server answers many one-row requests: one batch per row.
    group.bench_function("pipeline_one_row_batches", |b| {
        b.iter(|| {
            for row in cells.chunks(1) {
                black_box(pipeline.score_batch(black_box(row), &options).expect("scores"));
            }
        })
    });
    group.bench_function("pipeline_score_batch_explain", |b| {
        let explain = ScoreOptions { explain: true, top_reasons: 4 };
        b.iter(|| black_box(pipeline.score_batch(black_box(&cells), &explain).expect("scores")))
    });
    group.finish();
}

criterion_group!(benches, benchmark);
criterion_main!(benches);
