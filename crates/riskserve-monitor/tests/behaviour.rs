//! Behaviour the reference fixtures do not show: refusals with their messages, missing-value rules, zero rows, and a
//! garbage loop that feeds every entry point random input and asserts nothing panics.

use riskserve_monitor::special::{beta_inc, beta_ppf, binomial_cdf, binomial_pmf, binomial_test_two_sided, ln_gamma};
use riskserve_monitor::{
    Band, Baseline, BaselineBuilder, BaselineSpec, DriftAccumulator, FairnessOptions, FeatureKind, FeatureSpec,
    MonitorError, OutcomeAccumulator, OutcomeOptions, Value,
};

fn spec() -> BaselineSpec {
    BaselineSpec {
        features: vec![
            FeatureSpec { name: "income".into(), kind: FeatureKind::Numeric },
            FeatureSpec { name: "region".into(), kind: FeatureKind::Categorical },
        ],
        bins: 4,
        grades: vec!["A".into(), "B".into()],
    }
}

fn baseline() -> Baseline {
    let mut builder = BaselineBuilder::new(spec()).unwrap();
    for i in 0..100 {
        let region = if i % 3 == 0 { "north" } else { "south" };
        let grade = if i % 2 == 0 { "A" } else { "B" };
        builder
            .add_row(
                &[Value::Number(f64::from(i)), Value::Text(region.into())],
                Some(f64::from(i) / 100.0),
                Some(grade),
                Some(i % 5 == 0),
            )
            .unwrap();
    }
    builder.finish().unwrap()
}

#[test]
fn refusals_name_the_problem_and_change_nothing() {
    let mut builder = BaselineBuilder::new(spec()).unwrap();
    let error = builder.add_row(&[Value::Number(1.0)], None, None, None).unwrap_err();
    assert_eq!(error.to_string(), "a row has 1 values but the baseline has 2 features");
    let error = builder.add_row(&[Value::Text("x".into()), Value::Missing], None, None, None).unwrap_err();
    assert_eq!(error.to_string(), "feature `income` is numeric but the row holds text");
    let error = builder.add_row(&[Value::Number(1.0), Value::Number(2.0)], None, None, None).unwrap_err();
    assert_eq!(error.to_string(), "feature `region` is categorical but the row holds a number");
    let error = builder.add_row(&[Value::Missing, Value::Missing], None, Some("Z"), None).unwrap_err();
    assert_eq!(error, MonitorError::UnknownGrade("Z".into()));
    assert_eq!(builder.rows(), 0);
    assert_eq!(builder.finish().unwrap_err(), MonitorError::EmptyBaseline);

    let mut twice = spec();
    twice.grades.push("A".into());
    assert!(matches!(BaselineBuilder::new(twice), Err(MonitorError::InvalidSpec(_))));
    let mut no_bins = spec();
    no_bins.bins = 0;
    assert!(matches!(BaselineBuilder::new(no_bins), Err(MonitorError::InvalidSpec(_))));

    let mut outcomes = OutcomeAccumulator::from_baseline(&baseline(), OutcomeOptions::default()).unwrap();
    for p in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
        assert!(matches!(outcomes.add(p, true, None, None, None), Err(MonitorError::InvalidProbability(_))));
    }
    assert_eq!(outcomes.add(0.5, true, None, None, None).map_err(|e| e.to_string()), Ok(()));
    assert_eq!(outcomes.add(0.5, true, Some("Z"), None, None).unwrap_err().to_string(), "unknown grade `Z`");
    assert_eq!(outcomes.rows(), 1);
}

#[test]
fn non_finite_numbers_are_missing_and_out_of_range_is_counted() {
    let baseline = baseline();
    let mut drift = DriftAccumulator::new(&baseline).unwrap();
    drift.add_row(&[Value::Number(f64::NAN), Value::Missing], Some(f64::NAN)).unwrap();
    drift.add_row(&[Value::Number(f64::INFINITY), Value::Number(f64::NAN)], None).unwrap();
    drift.add_row(&[Value::Number(-5.0), Value::Text("island".into())], Some(0.5)).unwrap();
    drift.add_row(&[Value::Number(500.0), Value::Text("north".into())], Some(0.5)).unwrap();
    let report = drift.finish();
    assert_eq!(report.rows, 4);
    let income = &report.features[0];
    assert_eq!(income.missing_rate, Some(0.5));
    assert_eq!(income.below_min_rate, Some(0.25));
    assert_eq!(income.above_max_rate, Some(0.25));
    let region = &report.features[1];
    assert_eq!(region.missing_rate, Some(0.5));
    assert_eq!(region.unseen_rate, Some(0.25));
    assert_eq!(
        region.stability.bins.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(),
        ["north", "south", "other", "missing"]
    );
    assert_eq!(report.score.bins.last().unwrap().count, 2);
    assert_eq!(report.score.band, Some(Band::MajorShift));
}

#[test]
fn zero_rows_give_no_data_and_json_without_nan() {
    let baseline = baseline();
    let report = DriftAccumulator::new(&baseline).unwrap().finish();
    assert!(report.no_data);
    assert_eq!(report.score.index, None);
    assert!(report.features.iter().all(|f| f.stability.index.is_none() && f.missing_rate.is_none()));
    let outcome = OutcomeAccumulator::from_baseline(&baseline, OutcomeOptions::default()).unwrap().finish();
    assert_eq!(outcome.auc, None);
    assert_eq!(outcome.discrimination_unavailable.as_deref(), Some("no rows"));
    assert_eq!(outcome.brier, None);
    assert!(outcome.grades.iter().all(|g| g.p_value.is_none() && !g.breach));
    for text in [serde_json::to_string(&report).unwrap(), serde_json::to_string(&outcome).unwrap()] {
        assert!(!text.contains("NaN") && !text.contains("null,null,null,null,null,null,null,null,null"), "{text}");
    }
    // The baseline's own grade rates come along in the report.
    let mut outcomes = OutcomeAccumulator::from_baseline(&baseline, OutcomeOptions::default()).unwrap();
    outcomes.add(0.2, false, Some("A"), None, None).unwrap();
    let report = outcomes.finish();
    assert_eq!(report.grades[0].baseline_bad_rate, baseline.grades[0].bad_rate);
    assert_eq!(report.discrimination_unavailable.as_deref(), Some("only good outcomes (no bads)"));
}

#[test]
fn fairness_reference_and_group_bound() {
    let options = OutcomeOptions {
        fairness: FairnessOptions { reference_group: Some("b".into()), max_groups: 2, ..FairnessOptions::default() },
        ..OutcomeOptions::default()
    };
    let mut outcomes = OutcomeAccumulator::new(&[], options).unwrap();
    outcomes.add(0.1, false, None, Some("a"), Some(true)).unwrap();
    outcomes.add(0.1, false, None, Some("a"), Some(false)).unwrap();
    outcomes.add(0.1, false, None, Some("b"), Some(true)).unwrap();
    assert_eq!(outcomes.add(0.1, false, None, Some("c"), Some(true)).unwrap_err(), MonitorError::TooManyGroups(2));
    assert_eq!(outcomes.rows(), 3);
    let report = outcomes.finish().fairness;
    assert_eq!(report.reference_group.as_deref(), Some("b"));
    assert_eq!(report.groups[0].adverse_impact_ratio, Some(0.5));
    assert!(report.groups[0].four_fifths_breach);
    assert_eq!(report.groups[0].false_positive_rate, None);
}

#[test]
fn a_tampered_baseline_is_refused() {
    let text = serde_json::to_string(&baseline()).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["features"][0]["distribution"]["edges"] = serde_json::json!([3.0, 1.0]);
    let tampered: Baseline = serde_json::from_value(value.clone()).unwrap();
    assert!(matches!(DriftAccumulator::new(&tampered), Err(MonitorError::InvalidBaseline(_))));
    value["features"][0]["distribution"]["edges"] = serde_json::json!([1.0]);
    let tampered: Baseline = serde_json::from_value(value).unwrap();
    assert!(matches!(DriftAccumulator::new(&tampered), Err(MonitorError::InvalidBaseline(_))));
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn number(&mut self) -> f64 {
        match self.below(8) {
            0 => f64::NAN,
            1 => [f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN_POSITIVE, -0.0, 5e-324][self.below(6) as usize],
            2 => f64::from_bits(self.next()),
            3 => (self.below(5)) as f64,
            _ => (self.next() >> 11) as f64 / (1u64 << 53) as f64,
        }
    }

    fn text(&mut self) -> String {
        ["", "a", "b", "ü", "A", "B", "other", "missing"][self.below(8) as usize].to_owned()
    }

    fn value(&mut self) -> Value {
        match self.below(4) {
            0 => Value::Missing,
            1 => Value::Text(self.text()),
            _ => Value::Number(self.number()),
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for round in 0..300 {
        let features = (0..rng.below(4))
            .map(|i| FeatureSpec {
                name: format!("f{i}"),
                kind: if rng.below(2) == 0 { FeatureKind::Numeric } else { FeatureKind::Categorical },
            })
            .collect();
        let grades = (0..rng.below(3)).map(|i| ["A", "B", "C"][i as usize].to_owned()).collect();
        let spec = BaselineSpec { features, bins: rng.below(13) as usize, grades };
        let width = spec.features.len();
        let Ok(mut builder) = BaselineBuilder::new(spec) else { continue };
        let mut rows = Vec::new();
        for _ in 0..rng.below(60) {
            let n = if rng.below(10) == 0 { rng.below(5) as usize } else { width };
            let values: Vec<Value> = (0..n).map(|_| rng.value()).collect();
            let score = (rng.below(4) != 0).then(|| rng.number());
            let grade = (rng.below(3) != 0).then(|| rng.text());
            let outcome = (rng.below(3) != 0).then(|| rng.below(2) == 0);
            let _ = builder.add_row(&values, score, grade.as_deref(), outcome);
            rows.push((values, score, grade, outcome));
        }
        let Ok(baseline) = builder.finish() else { continue };
        let text = serde_json::to_string(&baseline).expect("a baseline is JSON");
        let baseline: Baseline = serde_json::from_str(&text).expect("and reads back");
        let mut drift = DriftAccumulator::new(&baseline).expect("its own baseline is valid");
        let options = OutcomeOptions { alpha: [0.05, 0.5, 1e-9][round % 3], ..OutcomeOptions::default() };
        let mut outcomes = OutcomeAccumulator::from_baseline(&baseline, options).unwrap();
        for (values, score, grade, outcome) in &rows {
            let _ = drift.add_row(values, *score);
            let attribute = (rng.below(3) != 0).then(|| rng.text());
            let decision = (rng.below(3) != 0).then(|| rng.below(2) == 0);
            let _ = outcomes.add(
                score.unwrap_or(0.5),
                outcome.unwrap_or(false),
                grade.as_deref(),
                attribute.as_deref(),
                decision,
            );
        }
        let report = drift.finish();
        assert!(!serde_json::to_string(&report).unwrap().contains("NaN"));
        let report = outcomes.finish();
        serde_json::to_string(&report).expect("an outcome report is JSON");
    }
    for _ in 0..2000 {
        let (a, b, x) = (rng.number().abs() * 1e3, rng.number().abs(), rng.number());
        let _ = (ln_gamma(a), beta_inc(a, b, x), beta_ppf(x, a.min(1e7), b.min(1e7)));
        let n = rng.below(2000);
        let k = rng.below(n + 2);
        let _ = (binomial_pmf(k as i64 - 1, n, x), binomial_cdf(k as i64, n, x), binomial_test_two_sided(k, n, x));
    }
}
