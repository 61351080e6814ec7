//! Streams 10 million synthetic rows (20 features, score, grade, outcome, attribute) through `DriftAccumulator` and
//! `OutcomeAccumulator` and prints rows/s and peak resident memory (VmHWM).
//!
//!     cargo run --release -p riskserve-monitor --example bench_monitor [ROWS]
//!
//! Rows are generated in chunks of 10,000 outside the timed sections, so the figures are the accumulators' own.

use std::time::{Duration, Instant};

use riskserve_monitor::{
    BaselineBuilder, BaselineSpec, DriftAccumulator, FeatureKind, FeatureSpec, OutcomeAccumulator, OutcomeOptions,
    Value,
};

const NUMERIC: usize = 16;
const CATEGORICAL: usize = 4;
const CHUNK: usize = 10_000;
const GRADES: [&str; 7] = ["A", "B", "C", "D", "E", "F", "G"];
const GROUPS: [&str; 3] = ["group_a", "group_b", "group_c"];
const CATEGORIES: [&str; 6] = ["north", "south", "east", "west", "centre", "island"];

struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Row {
    values: Vec<Value>,
    probability: f64,
    grade: &'static str,
    bad: bool,
    group: &'static str,
    approved: bool,
}

/// Fills a row in place (category strings are rewritten, not reallocated).
fn fill(rng: &mut Rng, row: &mut Row, shift: f64) {
    let mut z = 0.0;
    for (i, value) in row.values.iter_mut().enumerate() {
        let u = rng.uniform();
        if i < NUMERIC {
            let x = u * 100.0 + shift * i as f64;
            z += (u - 0.5) / NUMERIC as f64;
            *value = if u < 0.02 { Value::Missing } else { Value::Number(x) };
        } else {
            let category = CATEGORIES[((u + shift * 0.05) * 4.9) as usize % CATEGORIES.len()];
            match value {
                Value::Text(text) => {
                    text.clear();
                    text.push_str(category);
                }
                other => *other = Value::Text(category.to_owned()),
            }
        }
    }
    let t = 0.5 + 0.5 * (4.0 * z) / (1.0 + (4.0 * z).abs());
    row.probability = 0.01 + 0.6 * t * t * t;
    row.grade = GRADES[((row.probability * 12.0) as usize).min(GRADES.len() - 1)];
    row.bad = rng.uniform() < row.probability;
    row.group = GROUPS[(rng.uniform() * 3.0) as usize % 3];
    row.approved = row.probability < 0.12;
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn new_chunk() -> Vec<Row> {
    (0..CHUNK)
        .map(|_| Row {
            values: (0..NUMERIC + CATEGORICAL).map(|_| Value::Missing).collect(),
            probability: 0.0,
            grade: "A",
            bad: false,
            group: "group_a",
            approved: false,
        })
        .collect()
}

fn main() {
    let rows: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let features = (0..NUMERIC + CATEGORICAL)
        .map(|i| FeatureSpec {
            name: format!("f{i}"),
            kind: if i < NUMERIC { FeatureKind::Numeric } else { FeatureKind::Categorical },
        })
        .collect();
    let spec = BaselineSpec { features, bins: 10, grades: GRADES.iter().map(|g| (*g).to_owned()).collect() };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut chunk = new_chunk();

    let baseline_rows = 200_000;
    let started = Instant::now();
    let mut builder = BaselineBuilder::new(spec).expect("spec");
    for _ in 0..baseline_rows / CHUNK {
        for row in &mut chunk {
            fill(&mut rng, row, 0.0);
            builder.add_row(&row.values, Some(row.probability), Some(row.grade), Some(row.bad)).expect("row");
        }
    }
    let baseline = builder.finish().expect("baseline");
    println!(
        "baseline: {baseline_rows} rows in {:.2} s, peak RSS {:.1} MB",
        started.elapsed().as_secs_f64(),
        peak_rss_mb()
    );

    let mut drift = DriftAccumulator::new(&baseline).expect("drift");
    let mut outcomes = OutcomeAccumulator::from_baseline(&baseline, OutcomeOptions::default()).expect("outcomes");
    let (mut drift_time, mut outcome_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < rows {
        let n = CHUNK.min(rows - done);
        for row in &mut chunk[..n] {
            fill(&mut rng, row, 1.0);
        }
        let started = Instant::now();
        for row in &chunk[..n] {
            drift.add_row(&row.values, Some(row.probability)).expect("drift row");
        }
        drift_time += started.elapsed();
        let started = Instant::now();
        for row in &chunk[..n] {
            outcomes
                .add(row.probability, row.bad, Some(row.grade), Some(row.group), Some(row.approved))
                .expect("outcome row");
        }
        outcome_time += started.elapsed();
        done += n;
    }
    let started = Instant::now();
    let drift_report = drift.finish();
    let drift_finish = started.elapsed();
    let started = Instant::now();
    let outcome_report = outcomes.finish();
    let outcome_finish = started.elapsed();
    let per_second = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "drift: {rows} rows, {:.2} M rows/s (add_row {:.2} s, finish {:.3} ms), score PSI {:.4}",
        per_second(drift_time) / 1e6,
        drift_time.as_secs_f64(),
        drift_finish.as_secs_f64() * 1e3,
        drift_report.score.index.unwrap_or(f64::NAN)
    );
    println!(
        "outcomes: {rows} rows, {:.2} M rows/s for add ({:.2} s), finish {:.2} s (sort + AUC/KS), {:.2} M rows/s overall; AUC {:.4}, KS {:.4}",
        per_second(outcome_time) / 1e6,
        outcome_time.as_secs_f64(),
        outcome_finish.as_secs_f64(),
        per_second(outcome_time + outcome_finish) / 1e6,
        outcome_report.auc.unwrap_or(f64::NAN),
        outcome_report.ks.unwrap_or(f64::NAN)
    );
    println!("peak RSS (VmHWM): {:.1} MB", peak_rss_mb());
}
