//! Every statistic of the crate against what numpy, scipy, scikit-learn and fairlearn compute for the same rows
//! (`fixtures/monitor/reference.json`, written by `scripts/monitor_reference.sh`).
//!
//! Tolerances (relative, |actual − expected| ≤ tol·|expected|), worst errors reached printed with `--nocapture`:
//! bin edges, counts, min/max: exact (the same IEEE operations in the same order); shares, rates, the mean
//! predicted probability, KS (exact rational here, one ulp off in scipy's asymptotic mode): 1e-15; PSI/CSI, AUC, Gini, Brier: 1e-12 (log and summation order, trapezoid vs rank sum);
//! Jeffreys bounds: 1e-10; binomial test p-values: 1e-9.

use std::collections::BTreeMap;

use riskserve_monitor::{
    Baseline, BaselineBuilder, BaselineSpec, DriftAccumulator, DriftReport, FeatureBaseline, OutcomeAccumulator,
    OutcomeOptions, OutcomeReport, Value,
};
use serde_json::Value as Json;

/// scipy itself is the looser side at large counts: binom.pmf(201342, 10⁶, 0.2) is 3e-11 off the 40-digit value
/// (mpmath), the crate 1e-16.
const TOLERANCE_SPECIAL: f64 = 1e-9;
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/monitor/reference.json");

#[derive(Debug, Clone, PartialEq)]
struct Row {
    values: Vec<Value>,
    score: Option<f64>,
    grade: Option<String>,
    outcome: Option<bool>,
    attribute: Option<String>,
    decision: Option<bool>,
}

fn row_from_json(row: &Json) -> Row {
    let cells = row.as_array().expect("a row is an array");
    Row {
        values: serde_json::from_value(cells[0].clone()).expect("values"),
        score: cells[1].as_f64(),
        grade: cells[2].as_str().map(str::to_owned),
        outcome: cells[3].as_bool(),
        attribute: cells[4].as_str().map(str::to_owned),
        decision: cells[5].as_bool(),
    }
}

/// splitmix64, exactly as `scripts/monitor_reference.py::SplitMix64`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// One row of the main case: the same operations, in the same order, as `monitor_reference.py::main_row`.
fn main_row(rng: &mut SplitMix64, current: bool) -> Row {
    let u: Vec<f64> = (0..12).map(|_| rng.uniform()).collect();
    let mut income = 20000.0 + 80000.0 * ((u[0] + u[1] + u[2]) / 3.0);
    if current {
        income += 6000.0;
    }
    let utilisation =
        if current { (u[4] >= 0.08).then(|| u[3] * u[3].sqrt()) } else { (u[4] >= 0.05).then(|| u[3] * u[3]) };
    let age = (18.0 + if current { 55.0 } else { 60.0 } * u[5]).floor();
    let inquiries = (u[6] * u[6] * if current { 10.0 } else { 8.0 }).floor();
    let (region, channel) = if current {
        let region = if u[7] < 0.35 {
            "north"
        } else if u[7] < 0.6 {
            "south"
        } else if u[7] < 0.85 {
            "east"
        } else if u[7] < 0.97 {
            "west"
        } else {
            "island"
        };
        let channel = if u[8] < 0.05 {
            None
        } else if u[8] < 0.4 {
            Some("branch")
        } else if u[8] < 0.8 {
            Some("online")
        } else {
            Some("broker")
        };
        (region, channel)
    } else {
        let region = if u[7] < 0.4 {
            "north"
        } else if u[7] < 0.7 {
            "south"
        } else if u[7] < 0.9 {
            "east"
        } else {
            "west"
        };
        let channel = if u[8] < 0.03 {
            None
        } else if u[8] < 0.5 {
            Some("branch")
        } else if u[8] < 0.8 {
            Some("online")
        } else {
            Some("broker")
        };
        (region, channel)
    };
    let used = utilisation.unwrap_or(0.5);
    let z = (inquiries / 8.0 - 0.3) * 2.0 + (used - 0.4) * 1.5 - (income - 60000.0) / 40000.0 + (u[9] - 0.5);
    let t = 0.5 + 0.5 * z / (1.0 + z.abs());
    let p = 0.04 + 0.5 * (t * t * t);
    let p = (p * 4096.0).floor() / 4096.0;
    let truth = if current { (p * 1.15).min(1.0) } else { p };
    let bad = u[10] < truth;
    let grade = if p < 0.06 {
        "A"
    } else if p < 0.09 {
        "B"
    } else if p < 0.13 {
        "C"
    } else if p < 0.2 {
        "D"
    } else if p < 0.3 {
        "E"
    } else {
        "F"
    };
    let attribute = if u[11] < 0.5 {
        "group_a"
    } else if u[11] < 0.8 {
        "group_b"
    } else {
        "group_c"
    };
    let approved = p < if attribute == "group_c" { 0.10 } else { 0.12 };
    Row {
        values: vec![
            Value::Number(income),
            utilisation.map_or(Value::Missing, Value::Number),
            Value::Number(age),
            Value::Number(inquiries),
            Value::Text(region.to_owned()),
            channel.map_or(Value::Missing, |c| Value::Text(c.to_owned())),
        ],
        score: Some(p),
        grade: Some(grade.to_owned()),
        outcome: Some(bad),
        attribute: Some(attribute.to_owned()),
        decision: Some(approved),
    }
}

fn main_rows(seed: u64, n: usize, current: bool) -> Vec<Row> {
    let mut rng = SplitMix64(seed);
    (0..n).map(|_| main_row(&mut rng, current)).collect()
}

/// Compares values and remembers the worst relative error per statistic.
#[derive(Default)]
struct Checker {
    failures: Vec<String>,
    worst: BTreeMap<&'static str, f64>,
}

impl Checker {
    fn number(&mut self, statistic: &'static str, place: &str, actual: Option<f64>, expected: &Json, tolerance: f64) {
        let expected = expected.as_f64();
        match (actual, expected) {
            (None, None) => {}
            (Some(a), Some(e)) => {
                let error = if a == e { 0.0 } else { (a - e).abs() / e.abs().max(f64::MIN_POSITIVE) };
                let worst = self.worst.entry(statistic).or_insert(0.0);
                *worst = worst.max(error);
                if error > tolerance {
                    self.failures.push(format!("{place} {statistic}: {a:e} vs expected {e:e} (relative {error:e})"));
                }
            }
            (a, e) => self.failures.push(format!("{place} {statistic}: {a:?} vs expected {e:?}")),
        }
    }

    fn count(&mut self, place: &str, actual: u64, expected: &Json) {
        if expected.as_u64() != Some(actual) {
            self.failures.push(format!("{place}: count {actual} vs expected {expected}"));
        }
    }

    fn same(&mut self, place: &str, actual: Json, expected: &Json) {
        if &actual != expected {
            self.failures.push(format!("{place}: {actual} vs expected {expected}"));
        }
    }
}

fn build(spec: &BaselineSpec, baseline_rows: &[Row], current_rows: &[Row]) -> (Baseline, DriftReport, OutcomeReport) {
    let mut builder = BaselineBuilder::new(spec.clone()).unwrap();
    for row in baseline_rows {
        builder.add_row(&row.values, row.score, row.grade.as_deref(), row.outcome).unwrap();
    }
    let baseline = builder.finish().unwrap();
    // The baseline a server stores is its JSON: compare what comes back from it.
    let baseline: Baseline = serde_json::from_str(&serde_json::to_string(&baseline).unwrap()).unwrap();
    let mut drift = DriftAccumulator::new(&baseline).unwrap();
    let mut outcomes = OutcomeAccumulator::from_baseline(&baseline, OutcomeOptions::default()).unwrap();
    for row in current_rows {
        drift.add_row(&row.values, row.score).unwrap();
        if let (Some(score), Some(outcome)) = (row.score, row.outcome) {
            outcomes.add(score, outcome, row.grade.as_deref(), row.attribute.as_deref(), row.decision).unwrap();
        }
    }
    let drift = drift.finish();
    let outcomes = outcomes.finish();
    // Reports must be JSON (no NaN) and read back equal.
    let text = serde_json::to_string(&drift).unwrap();
    assert_eq!(serde_json::from_str::<DriftReport>(&text).unwrap(), drift);
    let text = serde_json::to_string(&outcomes).unwrap();
    assert_eq!(serde_json::from_str::<OutcomeReport>(&text).unwrap(), outcomes);
    (baseline, drift, outcomes)
}

fn compare_numeric(check: &mut Checker, place: &str, actual: &riskserve_monitor::NumericBaseline, expected: &Json) {
    check.same(&format!("{place} edges"), serde_json::to_value(&actual.edges).unwrap(), &expected["edges"]);
    check.same(&format!("{place} counts"), serde_json::to_value(&actual.counts).unwrap(), &expected["counts"]);
    check.count(&format!("{place} missing"), actual.missing, &expected["missing"]);
    check.number("min/max", place, actual.min, &expected["min"], 0.0);
    check.number("min/max", place, actual.max, &expected["max"], 0.0);
}

fn compare(
    check: &mut Checker,
    case: &str,
    baseline: &Baseline,
    drift: &DriftReport,
    outcome: &OutcomeReport,
    expected: &Json,
) {
    let base = &expected["baseline"];
    check.count(&format!("{case} baseline rows"), baseline.rows, &base["rows"]);
    for (i, feature) in baseline.features.iter().enumerate() {
        let e = &base["features"][i];
        let place = format!("{case} baseline {}", feature.name());
        match feature {
            FeatureBaseline::Numeric { distribution, .. } => compare_numeric(check, &place, distribution, e),
            FeatureBaseline::Categorical { distribution, .. } => {
                check.same(&place, serde_json::to_value(&distribution.categories).unwrap(), &e["categories"]);
                check.same(&place, serde_json::to_value(&distribution.counts).unwrap(), &e["counts"]);
                check.count(&place, distribution.missing, &e["missing"]);
            }
        }
    }
    compare_numeric(check, &format!("{case} baseline score"), &baseline.score, &base["score"]);
    for (i, grade) in baseline.grades.iter().enumerate() {
        let e = &base["grades"][i];
        let place = format!("{case} baseline grade {}", grade.grade);
        check.count(&place, grade.rows, &e["rows"]);
        check.count(&place, grade.with_outcome, &e["with_outcome"]);
        check.count(&place, grade.bad, &e["bad"]);
        check.number("share", &place, grade.bad_rate, &e["bad_rate"], 1e-15);
    }

    let e = &expected["drift"];
    check.count(&format!("{case} drift rows"), drift.rows, &e["rows"]);
    check.number("psi/csi", &format!("{case} score"), drift.score.index, &e["score_psi"], 1e-12);
    for (i, feature) in drift.features.iter().enumerate() {
        let e = &e["features"][i];
        let place = format!("{case} drift {}", feature.name);
        check.number("psi/csi", &place, feature.stability.index, &e["csi"], 1e-12);
        if drift.rows > 0 {
            check.number("share", &place, feature.missing_rate, &e["missing_rate"], 1e-15);
            check.number("share", &place, feature.below_min_rate, &e["below_min_rate"], 1e-15);
            check.number("share", &place, feature.above_max_rate, &e["above_max_rate"], 1e-15);
            check.number("share", &place, feature.unseen_rate, &e["unseen_rate"], 1e-15);
        }
    }

    let e = &expected["outcome"];
    let place = format!("{case} outcome");
    check.count(&place, outcome.rows, &e["rows"]);
    check.count(&place, outcome.bad, &e["bad"]);
    check.number("auc", &place, outcome.auc, &e["auc"], 1e-12);
    check.number("gini", &place, outcome.gini, &e["gini"], 1e-12);
    check.number("ks", &place, outcome.ks, &e["ks"], 1e-15);
    check.number("brier", &place, outcome.brier, &e["brier"], 1e-12);
    if outcome.auc.is_none() != outcome.discrimination_unavailable.is_some() {
        check.failures.push(format!("{place}: a missing AUC needs a reason"));
    }
    let calibrations = std::iter::once((&outcome.overall, &e["overall"]))
        .chain(outcome.grades.iter().zip(e["grades"].as_array().unwrap()));
    for (grade, e) in calibrations {
        let place = format!("{case} grade {}", grade.grade);
        check.count(&place, grade.rows, &e["rows"]);
        check.count(&place, grade.bad, &e["bad"]);
        check.number("mean predicted", &place, grade.mean_predicted, &e["mean_predicted"], 1e-15);
        check.number("jeffreys", &place, grade.interval_lower, &e["interval_lower"], 1e-10);
        check.number("jeffreys", &place, grade.interval_upper, &e["interval_upper"], 1e-10);
        check.number("binomtest p-value", &place, grade.p_value, &e["p_value"], 1e-9);
        check.same(&format!("{place} breach"), Json::Bool(grade.breach), &e["breach"]);
    }

    let e = &e["fairness"];
    let fairness = &outcome.fairness;
    let place = format!("{case} fairness");
    check.count(&place, fairness.rows, &e["rows"]);
    if fairness.rows == 0 {
        return;
    }
    check.same(&place, serde_json::to_value(&fairness.reference_group).unwrap(), &e["reference_group"]);
    for (i, group) in fairness.groups.iter().enumerate() {
        let e = &e["groups"][i];
        let place = format!("{place} {}", group.group);
        check.same(&place, Json::String(group.group.clone()), &e["group"]);
        check.number("fairness rates", &place, Some(group.selection_rate), &e["selection_rate"], 1e-15);
        // fairlearn reports 0 for a rate with an empty denominator; the crate reports None.
        let undefined_is_zero = |rate: Option<f64>, count: u64| if count == 0 { rate.or(Some(0.0)) } else { rate };
        check.number(
            "fairness rates",
            &place,
            undefined_is_zero(group.true_positive_rate, group.good),
            &e["true_positive_rate"],
            1e-15,
        );
        check.number(
            "fairness rates",
            &place,
            undefined_is_zero(group.false_positive_rate, group.bad),
            &e["false_positive_rate"],
            1e-15,
        );
        check.number("fairness rates", &place, group.adverse_impact_ratio, &e["adverse_impact_ratio"], 1e-15);
        let breach = group.adverse_impact_ratio.is_some_and(|a| a < 0.8);
        check.same(&format!("{place} four-fifths"), Json::Bool(group.four_fifths_breach), &Json::Bool(breach));
    }
    check.number("fairness rates", &place, fairness.demographic_parity_ratio, &e["demographic_parity_ratio"], 1e-15);
    check.number(
        "fairness gaps",
        &place,
        fairness.demographic_parity_difference,
        &e["demographic_parity_difference"],
        1e-12,
    );
    check.number("fairness gaps", &place, fairness.equalized_odds_difference, &e["equalized_odds_difference"], 1e-12);
    let gap_or_zero = |gap: Option<f64>| gap.or(Some(0.0));
    check.number(
        "fairness gaps",
        &place,
        gap_or_zero(fairness.true_positive_rate_gap),
        &e["true_positive_rate_gap"],
        1e-12,
    );
    check.number(
        "fairness gaps",
        &place,
        gap_or_zero(fairness.false_positive_rate_gap),
        &e["false_positive_rate_gap"],
        1e-12,
    );
}

#[test]
fn every_statistic_matches_the_reference_libraries() {
    let document: Json = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("the fixture")).unwrap();
    let mut check = Checker::default();
    let cases = document["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let spec: BaselineSpec = serde_json::from_value(case["spec"].clone()).unwrap();
        let (baseline_rows, current_rows) = if let Some(generated) = case.get("generated") {
            let n = generated["rows"].as_u64().unwrap() as usize;
            let base = main_rows(generated["baseline_seed"].as_u64().unwrap(), n, false);
            let current = main_rows(generated["current_seed"].as_u64().unwrap(), n, true);
            // The generator must agree bit for bit before any statistic means anything.
            for (which, rows) in [("baseline", &base), ("current", &current)] {
                for (i, expected) in case["first_rows"][which].as_array().unwrap().iter().enumerate() {
                    assert_eq!(
                        rows[i],
                        row_from_json(expected),
                        "{name}: generated {which} row {i} differs from Python's"
                    );
                }
            }
            (base, current)
        } else {
            let rows = |key: &str| case[key].as_array().unwrap().iter().map(row_from_json).collect::<Vec<_>>();
            (rows("baseline_rows"), rows("current_rows"))
        };
        let (baseline, drift, outcome) = build(&spec, &baseline_rows, &current_rows);
        compare(&mut check, name, &baseline, &drift, &outcome, &case["expected"]);
    }
    for (statistic, worst) in &check.worst {
        println!("worst relative error, {statistic}: {worst:e}");
    }
    assert!(check.failures.is_empty(), "{} mismatches:\n{}", check.failures.len(), check.failures.join("\n"));
}

/// The special functions against scipy on a grid (shapes and counts up to ten million): 1e-9 relative at most, the
/// worst reached is printed.
#[test]
fn special_functions_match_scipy() {
    use riskserve_monitor::special::{
        beta_inc, beta_ppf, binomial_cdf, binomial_pmf, binomial_sf, binomial_test_two_sided, ln_gamma,
    };
    let document: Json = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("the fixture")).unwrap();
    let entries = document["special"].as_array().unwrap();
    assert!(entries.len() > 100);
    let mut check = Checker::default();
    for entry in entries {
        let args: Vec<f64> = entry["args"].as_array().unwrap().iter().map(|a| a.as_f64().unwrap()).collect();
        let function = entry["function"].as_str().unwrap();
        let (k, n) = (args[0] as i64, args.get(1).map_or(0, |&n| n as u64));
        let (name, actual): (&'static str, f64) = match function {
            "ln_gamma" => ("ln_gamma", ln_gamma(args[0])),
            "beta_inc" => ("beta_inc", beta_inc(args[0], args[1], args[2])),
            "beta_ppf" => ("beta_ppf", beta_ppf(args[0], args[1], args[2])),
            "binomial_pmf" => ("binomial_pmf", binomial_pmf(k, n, args[2])),
            "binomial_cdf" => ("binomial_cdf", binomial_cdf(k, n, args[2])),
            "binomial_sf" => ("binomial_sf", binomial_sf(k, n, args[2])),
            "binomial_test" => ("binomial_test", binomial_test_two_sided(k as u64, n, args[2]).unwrap_or(f64::NAN)),
            other => panic!("unknown function {other}"),
        };
        check.number(name, &format!("{function}{args:?}"), Some(actual), &entry["value"], TOLERANCE_SPECIAL);
    }
    for (statistic, worst) in &check.worst {
        println!("worst relative error, {statistic}: {worst:e}");
    }
    assert!(check.failures.is_empty(), "{} mismatches:\n{}", check.failures.len(), check.failures.join("\n"));
}
