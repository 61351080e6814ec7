//! Integration tests of the pipeline crate: the committed JSON Schema and the documented examples.

use std::path::PathBuf;

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed schema is what the Rust types produce; `RISKSERVE_BLESS=1` rewrites it.
#[test]
fn committed_schema_matches_the_types() {
    let path = repository_root().join("schemas/pipeline.schema.json");
    let generated = riskserve_pipeline::json_schema();
    if std::env::var_os("RISKSERVE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("the schema path has a folder")).expect("create schemas/");
        std::fs::write(&path, &generated).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).expect("schemas/pipeline.schema.json exists");
    assert_eq!(committed, generated, "schemas/pipeline.schema.json is stale; rerun with RISKSERVE_BLESS=1");
}

/// Every ```json block of docs/pipeline.md that holds a whole pipeline parses.
#[test]
fn documented_pipelines_parse() {
    let text = std::fs::read_to_string(repository_root().join("docs/pipeline.md")).expect("docs/pipeline.md");
    let mut parsed = 0;
    for block in text.split("```json").skip(1) {
        let Some((body, _)) = block.split_once("```") else { continue };
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        if value.get("version").is_some() {
            let spec: Result<riskserve_pipeline::spec::PipelineSpec, _> = serde_json::from_value(value);
            spec.unwrap_or_else(|e| panic!("{e}: {body}"));
            parsed += 1;
        } else if value.get("step").is_some() {
            let step: Result<riskserve_pipeline::spec::StepSpec, _> = serde_json::from_value(value);
            step.unwrap_or_else(|e| panic!("{e}: {body}"));
            parsed += 1;
        }
    }
    assert!(parsed >= 2, "docs/pipeline.md has too few examples");
}

mod scoring {
    use std::collections::BTreeMap;

    use riskserve_pipeline::{Cell, Pipeline, PipelineError, ScoreOptions};
    use serde_json::{Value, json};

    use super::repository_root;

    const XGB_MODEL: &str = "fixtures/xgb3/xgb3_binary_logistic.json";
    const XGB_INPUT: &str = "fixtures/xgb3/xgb3_binary_logistic.input.csv";
    const XGB_EXPECTED: &str = "fixtures/xgb3/xgb3_binary_logistic.json.expected.csv";
    const SCORECARD_MODEL: &str = "fixtures/pmml/germancredit_points_below.pmml";
    const SCORECARD_INPUT: &str = "fixtures/pmml/germancredit.input.csv";
    const SCORECARD_EXPECTED: &str = "fixtures/pmml/germancredit_points_below.expected.csv";

    fn read_csv(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_path(repository_root().join(path)).expect("fixture CSV");
        let header = reader.headers().expect("header").iter().map(str::to_string).collect();
        let rows =
            reader.records().map(|record| record.expect("record").iter().map(str::to_string).collect()).collect();
        (header, rows)
    }

    fn cells(rows: &[Vec<String>]) -> Vec<Vec<Cell<'_>>> {
        rows.iter()
            .map(|row| {
                row.iter().map(|text| if text.is_empty() { Cell::Missing } else { Cell::Text(text.into()) }).collect()
            })
            .collect()
    }

    fn load(spec: &Value) -> Result<Pipeline, PipelineError> {
        let bytes = serde_json::to_vec(spec).expect("spec serializes");
        Pipeline::from_spec(&bytes, &mut |name: &str| {
            std::fs::read(repository_root().join(name)).map_err(|error| error.to_string())
        })
    }

    /// A pipeline over the 20 numeric inputs of the XGBoost fixture, every field optional.
    fn xgb_spec() -> Value {
        let (header, _) = read_csv(XGB_INPUT);
        let features: Vec<Value> =
            header.iter().map(|name| json!({"name": name, "type": "numeric", "required": false})).collect();
        json!({"version": 1, "features": features, "model": {"artifact": XGB_MODEL}})
    }

    fn expected_column(path: &str, column: usize) -> Vec<f64> {
        read_csv(path).1.iter().map(|row| row[column].parse().expect("number")).collect()
    }

    #[test]
    fn bare_pipeline_reproduces_the_library_probabilities() {
        let (_, rows) = read_csv(XGB_INPUT);
        let pipeline = load(&xgb_spec()).expect("loads");
        let outcomes = pipeline.score_batch(&cells(&rows), &ScoreOptions::default()).expect("scores");
        let expected = expected_column(XGB_EXPECTED, 0);
        assert_eq!(outcomes.len(), expected.len());
        for (outcome, expected) in outcomes.iter().zip(&expected) {
            assert!((outcome.probability.expect("probability") - expected).abs() < 1e-6);
            assert!(outcome.score.is_none() && outcome.grade.is_none() && outcome.decision.is_none());
        }
    }

    #[test]
    fn scaling_grades_and_decisions_follow_the_probability() {
        let mut spec = xgb_spec();
        spec["scaling"] = json!({"pdo": 20, "reference_score": 600, "reference_odds": 50});
        spec["master_scale"] = json!({"bands": [
            {"grade": "A", "min": 0.0, "max": 0.2}, {"grade": "B", "min": 0.2, "max": 0.5}, {"grade": "C", "min": 0.5, "max": 1.0}]});
        spec["decision"] = json!({"approve": 0.2, "decline": 0.5, "knockouts": [
            {"feature": "age_in_years", "op": "lt", "value": 25, "decision": "refer"}]});
        let pipeline = load(&spec).expect("loads");
        let (header, rows) = read_csv(XGB_INPUT);
        let age = header.iter().position(|name| name == "age_in_years").expect("age column");
        let outcomes = pipeline.score_batch(&cells(&rows), &ScoreOptions::default()).expect("scores");
        let factor = 20.0 / std::f64::consts::LN_2;
        for (outcome, row) in outcomes.iter().zip(&rows) {
            let p = outcome.probability.expect("probability");
            let score = outcome.score.expect("score");
            assert!((score - (600.0 + factor * (((1.0 - p) / p).ln() - 50f64.ln()))).abs() < 1e-9);
            let grade = if p < 0.2 {
                "A"
            } else if p < 0.5 {
                "B"
            } else {
                "C"
            };
            assert_eq!(outcome.grade.as_deref(), Some(grade));
            let by_cutoff = if p < 0.2 {
                "approve"
            } else if p >= 0.5 {
                "decline"
            } else {
                "refer"
            };
            let young = row[age].parse::<f64>().is_ok_and(|years| years < 25.0);
            let decision = if young && by_cutoff == "approve" { "refer" } else { by_cutoff };
            assert_eq!(outcome.decision.as_deref(), Some(decision));
        }
    }

    #[test]
    fn steps_feed_the_model_the_values_it_was_trained_on() {
        // Standardising then un-standardising a field, and mapping categories to the codes the
        // model was trained on, must give the model exactly the original inputs.
        let (header, rows) = read_csv(XGB_INPUT);
        let mut spec = xgb_spec();
        let housing = header.iter().position(|name| name == "housing").expect("housing column");
        spec["features"][housing] =
            json!({"name": "housing", "type": "categorical", "categories": ["zero", "one", "two"], "required": false});
        spec["steps"] = json!([
            {"step": "category_map", "input": "housing", "codes": {"zero": 0, "one": 1, "two": 2}},
            {"step": "standardize", "input": "credit_amount", "mean": 1000, "scale": 2, "output": "amount_z"},
            {"step": "derive", "output": "amount_half", "op": "product", "args": ["amount_z", 2]},
            {"step": "derive", "output": "amount_back", "op": "sum", "args": ["amount_half", 1000]}
        ]);
        let mut inputs: Vec<String> = header.clone();
        let amount = header.iter().position(|name| name == "credit_amount").expect("amount column");
        inputs[amount] = "amount_back".into();
        spec["model"]["inputs"] = json!(inputs);
        let pipeline = load(&spec).expect("loads");
        let words = ["zero", "one", "two"];
        let renamed: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                let mut row = row.clone();
                match row[housing].parse::<f64>() {
                    Ok(code) if code == 0.0 || code == 1.0 || code == 2.0 => {
                        row[housing] = words[code as usize].to_string()
                    }
                    // Codes the model reads but no category stands for: compared elsewhere.
                    _ => row[housing] = String::new(),
                }
                row
            })
            .collect();
        let outcomes = pipeline.score_batch(&cells(&renamed), &ScoreOptions::default()).expect("scores");
        let mut compared = 0;
        for ((outcome, expected), row) in outcomes.iter().zip(expected_column(XGB_EXPECTED, 0)).zip(&rows) {
            if row[housing].is_empty() || !renamed_ok(&row[housing]) {
                continue;
            }
            compared += 1;
            assert!((outcome.probability.expect("probability") - expected).abs() < 1e-6);
        }
        assert!(compared > 100);
    }

    fn renamed_ok(code: &str) -> bool {
        matches!(code, "0.0" | "1.0" | "2.0")
    }

    #[test]
    fn every_bad_field_of_a_batch_is_reported() {
        let mut spec = xgb_spec();
        spec["features"][1] = json!({"name": "duration_in_month", "type": "numeric", "min": 1, "max": 72});
        spec["features"][12] = json!({"name": "age_in_years", "type": "numeric", "min": 18, "max": 100, "out_of_range": "clip", "required": false});
        let pipeline = load(&spec).expect("loads");
        let row = |duration: Cell<'static>, age: f64| -> Vec<Cell<'static>> {
            let mut row = vec![Cell::Number(1.0); 20];
            row[1] = duration;
            row[12] = Cell::Number(age);
            row
        };
        let rows = vec![
            row(Cell::Number(12.0), 30.0),
            row(Cell::Missing, 30.0),
            row(Cell::Number(100.0), 130.0),
            row(Cell::Text("twelve".into()), 30.0),
            vec![Cell::Number(1.0); 3],
        ];
        let errors = pipeline.score_batch(&rows, &ScoreOptions::default()).expect_err("rows are invalid");
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "row 1, field `duration_in_month`: a value is required",
                "row 2, field `duration_in_month`: 100 is above the maximum 72",
                "row 3, field `duration_in_month`: \"twelve\" is not a number",
                "row 4: expected 20 values, got 3",
            ]
        );
        // Clipping is silent: the row with age 130 failed only on its duration.
        let clipped = pipeline.score_batch(&[row(Cell::Number(12.0), 130.0)], &ScoreOptions::default());
        let at_limit = pipeline.score_batch(&[row(Cell::Number(12.0), 100.0)], &ScoreOptions::default());
        assert_eq!(clipped.expect("scores"), at_limit.expect("scores"));
    }

    #[test]
    fn scorecard_pipeline_gives_the_tools_points_and_reasons() {
        let (header, rows) = read_csv(SCORECARD_INPUT);
        let features: Vec<Value> = header
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let numeric = matches!(name.as_str(), "duration_in_month" | "credit_amount" | "age_in_years");
                if numeric {
                    json!({"name": name, "type": "numeric", "required": false})
                } else {
                    let mut categories: Vec<String> =
                        rows.iter().map(|row| row[index].clone()).filter(|c| !c.is_empty()).collect();
                    categories.sort();
                    categories.dedup();
                    json!({"name": name, "type": "categorical", "categories": categories, "required": false})
                }
            })
            .collect();
        let spec = json!({"version": 1, "features": features, "model": {"artifact": SCORECARD_MODEL},
            "scaling": {"pdo": 50, "reference_score": 600, "reference_odds": 19, "odds": "good_to_bad"},
            "decision": {"on": "score", "approve": 600, "decline": 400}});
        let pipeline = load(&spec).expect("loads");
        let options = ScoreOptions { explain: true, top_reasons: 3 };
        let outcomes = pipeline.score_batch(&cells(&rows), &options).expect("scores");
        let (_, expected) = read_csv(SCORECARD_EXPECTED);
        for (outcome, expected) in outcomes.iter().zip(&expected) {
            let score = outcome.score.expect("score");
            assert!((score - expected[0].parse::<f64>().expect("number")).abs() < 1e-9);
            let contributions = outcome.contributions.as_ref().expect("contributions");
            let total: f64 = contributions.values().sum();
            assert!((total - score).abs() < 1e-6, "points sum to the score");
            let reasons = outcome.reasons.as_ref().expect("reasons");
            assert!(reasons.windows(2).all(|pair| pair[0].contribution >= pair[1].contribution));
            assert!(reasons.iter().all(|reason| reason.contribution > 0.0));
            // Without a reason-code table the codes are the scorecard's own, ranked as
            // JPMML-Evaluator ranks them (every characteristic here reads one field).
            let codes: Vec<&str> = reasons.iter().map(|reason| reason.code.as_str()).collect();
            let expected_codes: Vec<&str> =
                expected[1..].iter().map(String::as_str).filter(|code| !code.is_empty()).collect();
            assert_eq!(codes, expected_codes);
        }
    }

    #[test]
    fn categorical_fields_reach_a_model_with_its_own_categories_by_name() {
        // LightGBM on pandas categories: the model knows each category string; the pipeline
        // declares the same strings in another order, and an unknown string becomes missing,
        // which LightGBM also does.
        let model_path = "fixtures/lgbm/lgbm_categorical_pandas.txt";
        let bytes = std::fs::read(repository_root().join(model_path)).expect("model");
        let model = riskserve_model::load_model(&bytes, None).expect("loads");
        let features: Vec<Value> = model
            .inputs
            .iter()
            .map(|input| match &input.kind {
                riskserve_model::ir::FeatureKind::Categorical { categories: Some(known), .. } => {
                    let mut categories: Vec<String> = known.iter().rev().cloned().collect();
                    categories.push("a category the model never saw".into());
                    json!({"name": input.name, "type": "categorical", "categories": categories,
                           "required": false, "out_of_range": "missing"})
                }
                _ => json!({"name": input.name, "type": "numeric", "required": false}),
            })
            .collect();
        let spec = json!({"version": 1, "features": features, "model": {"artifact": model_path}});
        let pipeline = load(&spec).expect("loads");
        let (_, rows) = read_csv("fixtures/lgbm/lgbm_categorical_pandas.input.csv");
        let outcomes = pipeline.score_batch(&cells(&rows), &ScoreOptions::default()).expect("scores");
        let expected = expected_column("fixtures/lgbm/lgbm_categorical_pandas.expected.csv", 0);
        for (outcome, expected) in outcomes.iter().zip(&expected) {
            assert!((outcome.probability.expect("probability") - expected).abs() < 1e-9);
        }
        let mut unknown = rows[0].clone();
        let position = model
            .inputs
            .iter()
            .position(|input| matches!(input.kind, riskserve_model::ir::FeatureKind::Categorical { .. }))
            .expect("a categorical input");
        unknown[position] = "a category the model never saw".into();
        let mut missing = rows[0].clone();
        missing[position] = String::new();
        let answers = pipeline.score_batch(&cells(&[unknown, missing]), &ScoreOptions::default()).expect("scores");
        assert_eq!(answers[0].values, answers[1].values, "a category the model never saw reads as missing");
    }

    #[test]
    fn a_pipeline_is_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Pipeline>();
    }

    /// Scores the XGBoost fixture's rows through `spec` with explanations.
    fn outcomes(spec: &Value) -> Vec<riskserve_pipeline::Outcome> {
        let (_, rows) = read_csv(XGB_INPUT);
        let pipeline = load(spec).expect("loads");
        pipeline.score_batch(&cells(&rows), &ScoreOptions { explain: true, top_reasons: 4 }).expect("scores")
    }

    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn models_combined_in_margin_space_keep_exact_contributions() {
        let single = outcomes(&xgb_spec());
        let member = json!({"artifact": XGB_MODEL});
        for combine in [
            json!({"method": "average", "space": "margin"}),
            json!({"method": "stacking", "intercept": 0.25, "coefficients": [0.5, 0.5], "space": "margin"}),
        ] {
            let mut spec = xgb_spec();
            spec["model"] = json!({"models": [member, member], "combine": combine});
            let shift = combine.get("intercept").and_then(Value::as_f64).unwrap_or(0.0);
            for (combined, single) in outcomes(&spec).iter().zip(&single) {
                let p = single.probability.expect("probability");
                let q = combined.probability.expect("probability");
                assert!((logit(q) - (logit(p) + shift)).abs() < 1e-9, "{combine}");
                let (a, b) = (combined.contributions.as_ref().expect("c"), single.contributions.as_ref().expect("c"));
                for (name, value) in b {
                    let expected = if name == "bias" { value + shift } else { *value };
                    assert!((a[name] - expected).abs() < 1e-9, "{combine}: {name}");
                }
                assert_eq!(combined.values.len(), 2, "every model's values");
            }
        }
    }

    #[test]
    fn models_averaged_in_probability_space_sum_to_the_margin() {
        let mut spec = xgb_spec();
        let other = "fixtures/xgb3/xgb3_base_score_user.json";
        spec["model"] = json!({"models": [{"artifact": XGB_MODEL, "weight": 3}, {"artifact": other, "weight": 1}],
            "combine": {"method": "weighted_average"}});
        for outcome in outcomes(&spec) {
            let expected = 0.75 * outcome.values[0] + 0.25 * outcome.values[1];
            let p = outcome.probability.expect("probability");
            assert!((p - expected).abs() < 1e-12);
            let sum: f64 = outcome.contributions.as_ref().expect("contributions").values().sum();
            assert!((sum - logit(p)).abs() < 1e-9);
        }
    }

    #[test]
    fn calibration_steps_apply_in_order() {
        let mut spec = xgb_spec();
        spec["calibration"] = json!([
            {"method": "intercept_shift", "training_base_rate": 0.3, "target_base_rate": 0.1},
            {"method": "platt", "a": -1.2, "b": 0.1},
            {"method": "isotonic", "x": [0.0, 0.2, 0.6, 1.0], "y": [0.0, 0.1, 0.7, 0.9]}
        ]);
        let single = outcomes(&xgb_spec());
        for (calibrated, raw) in outcomes(&spec).iter().zip(&single) {
            let margin = logit(raw.probability.expect("p")) + (logit(0.1) - logit(0.3));
            let p = 1.0 / (1.0 + (-1.2 * margin + 0.1).exp());
            let xs = [0.0, 0.2, 0.6, 1.0];
            let ys = [0.0, 0.1, 0.7, 0.9];
            let segment = xs.windows(2).position(|pair| p >= pair[0] && p <= pair[1]).expect("in [0, 1]");
            let expected =
                ys[segment] + (p - xs[segment]) * (ys[segment + 1] - ys[segment]) / (xs[segment + 1] - xs[segment]);
            assert!((calibrated.probability.expect("p") - expected).abs() < 1e-12);
            // Contributions explain the model's margin, before calibration.
            assert_eq!(calibrated.contributions, raw.contributions);
        }
    }

    #[test]
    fn a_good_positive_class_turns_the_adverse_direction() {
        let mut spec = xgb_spec();
        spec["positive_class"] = json!("good");
        spec["scaling"] = json!({"pdo": 20, "reference_score": 600, "reference_odds": 1, "higher_is_better": true});
        spec["decision"] = json!({"approve": 0.8, "decline": 0.5});
        for outcome in outcomes(&spec) {
            let p_good = outcome.probability.expect("p");
            // At 1:1 reference odds the score is 600 + factor · ln(good:bad odds).
            let expected = 600.0 + 20.0 / std::f64::consts::LN_2 * logit(p_good);
            assert!((outcome.score.expect("score") - expected).abs() < 1e-9);
            let decision = if p_good >= 0.8 {
                "approve"
            } else if p_good < 0.5 {
                "decline"
            } else {
                "refer"
            };
            assert_eq!(outcome.decision.as_deref(), Some(decision));
            let reasons = outcome.reasons.as_ref().expect("reasons");
            assert!(reasons.iter().all(|reason| reason.contribution < 0.0), "adverse means lowering P(good)");
            assert!(reasons.windows(2).all(|pair| pair[0].contribution <= pair[1].contribution));
        }
    }

    #[test]
    fn contributions_group_one_hot_and_derived_features_back_to_raw_fields() {
        // A scorecard over two one-hot columns of one field and a ratio of two other fields.
        let pmml = r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="h_own" optype="continuous" dataType="double"/>
    <DataField name="h_rent" optype="continuous" dataType="double"/>
    <DataField name="ratio" optype="continuous" dataType="double"/>
    <DataField name="points" optype="continuous" dataType="double"/>
  </DataDictionary>
  <Scorecard functionName="regression" useReasonCodes="true" reasonCodeAlgorithm="pointsBelow" initialScore="-1.5" baselineMethod="other">
    <MiningSchema>
      <MiningField name="h_own"/><MiningField name="h_rent"/><MiningField name="ratio"/>
      <MiningField name="points" usageType="predicted"/>
    </MiningSchema>
    <Characteristics>
      <Characteristic name="own" reasonCode="OWN" baselineScore="0">
        <Attribute partialScore="-0.5"><SimplePredicate field="h_own" operator="equal" value="1"/></Attribute>
        <Attribute partialScore="0"><True/></Attribute>
      </Characteristic>
      <Characteristic name="rent" reasonCode="RENT" baselineScore="1">
        <Attribute partialScore="0.75"><SimplePredicate field="h_rent" operator="equal" value="1"/></Attribute>
        <Attribute partialScore="0"><True/></Attribute>
      </Characteristic>
      <Characteristic name="burden" reasonCode="BURDEN" baselineScore="10">
        <Attribute partialScore="1"><SimplePredicate field="ratio" operator="lessThan" value="2"/></Attribute>
        <Attribute partialScore="6"><True/></Attribute>
      </Characteristic>
    </Characteristics>
  </Scorecard>
</PMML>"#;
        let spec = json!({"version": 1,
            "features": [
                {"name": "housing", "type": "categorical", "categories": ["own", "rent", "free"]},
                {"name": "amount", "type": "numeric"},
                {"name": "duration", "type": "numeric"}],
            "steps": [
                {"step": "one_hot", "input": "housing", "categories": ["own", "rent"], "outputs": ["h_own", "h_rent"]},
                {"step": "derive", "output": "ratio", "op": "ratio", "args": ["amount", "duration"]}],
            "model": {"artifact": "model.pmml"},
            "reason_codes": {
                "housing": {"code": "H", "text": "Housing"},
                "amount": {"code": "A", "text": "Amount"},
                "duration": {"code": "D", "text": "Duration"}}});
        let pipeline = Pipeline::from_spec(&serde_json::to_vec(&spec).expect("json"), &mut |name: &str| {
            if name == "model.pmml" { Ok(pmml.as_bytes().to_vec()) } else { Err(format!("no file {name}")) }
        })
        .expect("loads");
        let rows = vec![vec![Cell::Text("rent".into()), Cell::Number(300.0), Cell::Number(100.0)]];
        let options = ScoreOptions { explain: true, top_reasons: 4 };
        let outcome = &pipeline.score_batch(&rows, &options).expect("scores")[0];
        assert_eq!(outcome.values, [-1.5 + 0.75 + 6.0]);
        let contributions = outcome.contributions.as_ref().expect("contributions");
        // The ratio's 6 points are shared equally by its two raw fields; both one-hot columns go
        // back to housing.
        let expected: BTreeMap<String, f64> = [("housing", 0.75), ("amount", 3.0), ("duration", 3.0), ("bias", -1.5)]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        assert_eq!(contributions, &expected);
        // Points below the baselines: burden lost 4 (2 each to amount and duration), rent 0.25.
        let reasons = outcome.reasons.as_ref().expect("reasons");
        let shown: Vec<(&str, &str, f64)> =
            reasons.iter().map(|reason| (reason.code.as_str(), reason.feature.as_str(), reason.contribution)).collect();
        assert_eq!(shown, [("A", "amount", 2.0), ("D", "duration", 2.0), ("H", "housing", 0.25)]);
        assert_eq!(reasons[0].text, "Amount");
        let top_one = pipeline.score_batch(&rows, &ScoreOptions { explain: true, top_reasons: 1 }).expect("scores");
        assert_eq!(top_one[0].reasons.as_ref().map(Vec::len), Some(1));
    }
}

mod validation {
    use riskserve_pipeline::Pipeline;
    use serde_json::{Value, json};

    use super::repository_root;

    /// A valid pipeline over the 20 inputs of the XGBoost fixture, with every postprocessing part.
    fn base() -> Value {
        let header = "status_of_existing_checking_account,duration_in_month,credit_history,purpose,credit_amount,savings_account_and_bonds,present_employment_since,installment_rate_in_percentage_of_disposable_income,personal_status_and_sex,other_debtors_or_guarantors,present_residence_since,property,age_in_years,other_installment_plans,housing,number_of_existing_credits_at_this_bank,job,number_of_people_being_liable_to_provide_maintenance_for,telephone,foreign_worker";
        let mut features: Vec<Value> =
            header.split(',').map(|name| json!({"name": name, "type": "numeric", "required": false})).collect();
        features.push(json!({"name": "region", "type": "categorical", "categories": ["north", "south"]}));
        let reason_codes: serde_json::Map<String, Value> =
            header.split(',').map(|name| (name.to_string(), json!({"code": name, "text": name}))).collect();
        json!({
            "version": 1,
            "features": features,
            "model": {"artifact": "fixtures/xgb3/xgb3_binary_logistic.json"},
            "scaling": {"pdo": 20, "reference_score": 600, "reference_odds": 50},
            "master_scale": {"bands": [{"grade": "A", "min": 0, "max": 0.1}, {"grade": "B", "min": 0.1, "max": 1}]},
            "decision": {"approve": 0.1, "decline": 0.3},
            "reason_codes": reason_codes
        })
    }

    fn load(spec: &Value) -> Result<Pipeline, String> {
        let bytes = serde_json::to_vec(spec).expect("spec serializes");
        Pipeline::from_spec(&bytes, &mut |name: &str| {
            std::fs::read(repository_root().join(name)).map_err(|error| error.to_string())
        })
        .map_err(|error| error.to_string())
    }

    #[test]
    fn the_base_pipeline_loads() {
        load(&base()).expect("the base pipeline is valid");
    }

    /// A case's name, the change to the base pipeline, and the start of the error it must give.
    type Case = (&'static str, fn(&mut Value), &'static str);

    /// Each case changes one member of the base pipeline and names the error it must give.
    #[test]
    fn invalid_pipelines_are_refused_naming_the_place() {
        let cases: Vec<Case> = vec![
            (
                "unknown step",
                |spec| spec["steps"] = json!([{"step": "normalise", "input": "age_in_years"}]),
                "steps[0].step: unknown variant `normalise`",
            ),
            (
                "unknown member",
                |spec| spec["scaling"]["pdo_points"] = json!(20),
                "scaling.pdo_points: unknown field `pdo_points`",
            ),
            (
                "wrong type",
                |spec| spec["scaling"]["pdo"] = json!("twenty"),
                "scaling.pdo: invalid type: string \"twenty\"",
            ),
            (
                "undeclared feature",
                |spec| spec["steps"] = json!([{"step": "clip", "input": "income", "max": 10}]),
                "steps[0].input: feature \"income\" is not declared",
            ),
            (
                "type mismatch between steps",
                |spec| spec["steps"] = json!([{"step": "standardize", "input": "region", "mean": 0, "scale": 1}]),
                "steps[0].input: \"region\" is categorical but standardize needs a numeric value",
            ),
            (
                "numeric into one_hot",
                |spec| spec["steps"] = json!([{"step": "one_hot", "input": "age_in_years"}]),
                "steps[0].input: \"age_in_years\" is numeric but one_hot needs a categorical value",
            ),
            (
                "categorical into the model",
                |spec| {
                    spec["model"]["inputs"] = json!([
                        "region",
                        "duration_in_month",
                        "credit_history",
                        "purpose",
                        "credit_amount",
                        "savings_account_and_bonds",
                        "present_employment_since",
                        "installment_rate_in_percentage_of_disposable_income",
                        "personal_status_and_sex",
                        "other_debtors_or_guarantors",
                        "present_residence_since",
                        "property",
                        "age_in_years",
                        "other_installment_plans",
                        "housing",
                        "number_of_existing_credits_at_this_bank",
                        "job",
                        "number_of_people_being_liable_to_provide_maintenance_for",
                        "telephone",
                        "foreign_worker"
                    ])
                },
                "model.inputs[0]: \"region\" is categorical but the model reads a number there",
            ),
            (
                "model input count",
                |spec| spec["model"]["inputs"] = json!(["age_in_years"]),
                "model.inputs: 1 names for a model with 20 inputs",
            ),
            (
                "overlapping bands",
                |spec| spec["master_scale"]["bands"][1]["min"] = json!(0.05),
                "master_scale.bands[1].min: bands overlap",
            ),
            (
                "bands with a gap",
                |spec| spec["master_scale"]["bands"][1]["min"] = json!(0.2),
                "master_scale.bands[1].min: a gap",
            ),
            (
                "bands not reaching 1",
                |spec| spec["master_scale"]["bands"][1]["max"] = json!(0.9),
                "master_scale.bands[1].max: a gap",
            ),
            (
                "cut-offs out of order",
                |spec| spec["decision"]["approve"] = json!(0.5),
                "decision.decline: cut-offs out of order",
            ),
            (
                "score cut-offs out of order",
                |spec| spec["decision"] = json!({"on": "score", "approve": 500, "decline": 600}),
                "decision.decline: cut-offs out of order",
            ),
            (
                "reason code missing a feature",
                |spec| {
                    spec["reason_codes"].as_object_mut().expect("object").remove("credit_amount");
                },
                "reason_codes: feature \"credit_amount\" reaches the model but has no reason code",
            ),
            (
                "reason code for an undeclared feature",
                |spec| spec["reason_codes"]["income"] = json!({"code": "I", "text": "Income"}),
                "reason_codes.income: feature \"income\" is not declared",
            ),
            (
                "knock-out on an undeclared feature",
                |spec| spec["decision"]["knockouts"] = json!([{"feature": "income", "op": "lt", "value": 1}]),
                "decision.knockouts[0].feature: feature \"income\" is not declared",
            ),
            (
                "knock-out with an undeclared category",
                |spec| spec["decision"]["knockouts"] = json!([{"feature": "region", "op": "eq", "value": "east"}]),
                "decision.knockouts[0].value: category \"east\" is not declared for feature \"region\"",
            ),
            (
                "duplicate feature",
                |spec| spec["features"][1]["name"] = json!("status_of_existing_checking_account"),
                "features[1].name: feature \"status_of_existing_checking_account\" is already declared at features[0]",
            ),
            (
                "categorical without categories",
                |spec| spec["features"][20] = json!({"name": "region", "type": "categorical"}),
                "features[20].categories: a categorical feature needs its list of categories",
            ),
            (
                "step output redefined",
                |spec| {
                    spec["steps"] =
                        json!([{"step": "derive", "output": "credit_amount", "op": "log", "args": ["credit_amount"]}])
                },
                "steps[0].output: \"credit_amount\" is already defined",
            ),
            (
                "derive arity",
                |spec| {
                    spec["steps"] = json!([{"step": "derive", "output": "r", "op": "ratio", "args": ["credit_amount"]}])
                },
                "steps[0].args: ratio takes 2 operand(s), not 1",
            ),
            (
                "bin values count",
                |spec| {
                    spec["steps"] =
                        json!([{"step": "bin", "input": "age_in_years", "edges": [30, 40], "values": [1, 2]}])
                },
                "steps[0].values: 2 edges make 3 bins but there are 2 values",
            ),
            (
                "grade output without a master scale",
                |spec| {
                    spec.as_object_mut().expect("object").remove("master_scale");
                    spec["outputs"] = json!(["probability", "grade"]);
                },
                "outputs[1]: the pipeline gives no grade",
            ),
            (
                "missing model file",
                |spec| spec["model"]["artifact"] = json!("fixtures/none.json"),
                "model: model \"fixtures/none.json\": ",
            ),
            ("unsupported version", |spec| spec["version"] = json!(2), "version: version 2 is not supported"),
            (
                "calibration isotonic lengths",
                |spec| spec["calibration"] = json!([{"method": "isotonic", "x": [0, 1], "y": [0.5]}]),
                "calibration[0].y: 2 x values and 1 y values",
            ),
        ];
        let mut failures = Vec::new();
        for (name, change, expected) in cases {
            let mut spec = base();
            change(&mut spec);
            match load(&spec) {
                Ok(_) => failures.push(format!("{name}: the pipeline loaded")),
                Err(message) if message.starts_with(expected) => {}
                Err(message) => failures.push(format!("{name}: {message:?} does not start with {expected:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Every leaf of a full pipeline replaced by odd values, one at a time: loading answers
    /// with a pipeline or an error, never a panic, and what loads scores odd rows without one.
    #[test]
    fn odd_values_anywhere_never_panic() {
        let mut spec = base();
        spec["steps"] = json!([
            {"step": "impute", "input": "age_in_years", "value": 30},
            {"step": "clip", "input": "duration_in_month", "min": 1, "max": 72},
            {"step": "one_hot", "input": "region"},
            {"step": "bin", "input": "credit_amount", "edges": [1000, 5000], "values": [0.5, 0, -0.5], "missing": 0, "output": "amount_woe"},
            {"step": "standardize", "input": "housing", "mean": 1, "scale": 2},
            {"step": "derive", "output": "per_month", "op": "ratio", "args": ["credit_amount", "duration_in_month"]}
        ]);
        spec["calibration"] =
            json!([{"method": "platt", "a": -1, "b": 0}, {"method": "isotonic", "x": [0, 1], "y": [0, 1]}]);
        spec["decision"]["knockouts"] = json!([{"feature": "region", "op": "in", "value": ["north"]}]);
        load(&spec).expect("the full pipeline is valid");
        fn leaves(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        path.push(json!(key));
                        leaves(child, path, out);
                        path.pop();
                    }
                }
                Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        path.push(json!(index));
                        leaves(child, path, out);
                        path.pop();
                    }
                }
                _ => out.push(path.clone()),
            }
        }
        let mut paths = Vec::new();
        leaves(&spec, &mut Vec::new(), &mut paths);
        let odd = [json!(null), json!(-1), json!(0), json!(1e308), json!(-1e308), json!("north"), json!([]), json!({})];
        let cells: Vec<Vec<riskserve_pipeline::Cell<'static>>> = vec![
            vec![riskserve_pipeline::Cell::Missing; 21],
            vec![riskserve_pipeline::Cell::Number(1e300); 21],
            vec![riskserve_pipeline::Cell::Text("north".into()); 21],
            vec![riskserve_pipeline::Cell::Bool(true); 21],
        ];
        let mut loaded = 0;
        for path in &paths {
            for value in &odd {
                let mut changed = spec.clone();
                let mut target = &mut changed;
                for key in path {
                    target = match key {
                        Value::String(key) => &mut target[key.as_str()],
                        Value::Number(index) => &mut target[index.as_u64().expect("index") as usize],
                        _ => unreachable!(),
                    };
                }
                *target = value.clone();
                if let Ok(pipeline) = load(&changed) {
                    loaded += 1;
                    let options = riskserve_pipeline::ScoreOptions { explain: true, top_reasons: 4 };
                    for row in &cells {
                        let _ = pipeline.score_batch(std::slice::from_ref(row), &options);
                    }
                }
            }
        }
        assert!(loaded > 0);
    }

    #[test]
    fn artifact_names_lists_every_model_file() {
        let mut spec = base();
        spec["model"] = json!({"models": [{"artifact": "a.json"}, {"artifact": "b.txt"}, {"artifact": "a.json"}], "combine": {"method": "average"}});
        let names = Pipeline::artifact_names(&serde_json::to_vec(&spec).expect("json")).expect("parses");
        assert_eq!(names, ["a.json", "b.txt"]);
    }
}
