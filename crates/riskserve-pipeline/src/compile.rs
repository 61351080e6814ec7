//! Checks a pipeline spec and compiles it into a [`Program`]: names resolved to slots, types
//! checked step by step, the models loaded, cut-offs and bands verified, every error naming its
//! place in the file.

use std::collections::{BTreeSet, HashMap};

use riskserve_model::ir::{FeatureKind, Model, ModelBody, OutputKind, Transform, UnknownCategory};
use riskserve_model::scorecard::Predicate;
use riskserve_model::{Format, Predictor, load_model};

use crate::error::PipelineError;
use crate::explainer::Explainer;
use crate::fields::{Field, FieldRule, FieldType, number_as_category};
use crate::program::{
    Answer, Calibration, Combine, Decision, DecisionRules, Knockout, KnockoutTest, MasterScale, Member, Op, Operand,
    OutputSet, Program, ReasonCode, Scaling, ScorecardExplanation,
};
use crate::spec::{
    BinClosed, CalibrationInput, CalibrationSpec, CombineSpace, CombineSpec, DecisionBasis, FeatureSpec, FeatureType,
    KnockoutDecision, KnockoutOp, KnockoutValue, MissingPolicy, ModelSpec, OddsDirection, OneHotMissing,
    OutOfRangePolicy, OutputName, PipelineSpec, PositiveClass, StepSpec, Value,
};

type Result<T> = std::result::Result<T, PipelineError>;

/// The type of a value flowing between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarType {
    Numeric,
    Boolean,
    /// A category index into the categories of raw field `field`.
    Categorical {
        field: usize,
    },
}

impl VarType {
    fn describe(self) -> &'static str {
        match self {
            VarType::Numeric => "numeric",
            VarType::Boolean => "boolean",
            VarType::Categorical { .. } => "categorical",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Var {
    slot: u32,
    kind: VarType,
}

/// The names in scope while steps are compiled, and what every slot comes from.
struct Scope<'a> {
    features: &'a [FeatureSpec],
    vars: HashMap<String, Var>,
    /// Per slot: the raw fields it comes from, with shares.
    shares: Vec<Vec<(u32, f64)>>,
    ops: Vec<Op>,
}

impl<'a> Scope<'a> {
    fn new_slot(&mut self, shares: Vec<(u32, f64)>) -> u32 {
        self.shares.push(shares);
        (self.shares.len() - 1) as u32
    }

    fn lookup(&self, place: &str, name: &str) -> Result<Var> {
        self.vars.get(name).copied().ok_or_else(|| {
            PipelineError::invalid(
                place,
                format!("feature {name:?} is not declared (neither a raw feature nor the output of an earlier step)"),
            )
        })
    }

    fn categories(&self, var: Var) -> &'a [String] {
        match var.kind {
            VarType::Categorical { field } => {
                self.features.get(field).and_then(|feature| feature.categories.as_deref()).unwrap_or(&[])
            }
            _ => &[],
        }
    }

    /// Binds `name` to a new slot; a name may be rebound only by the step that reads it in place.
    fn define(
        &mut self,
        place: &str,
        name: &str,
        kind: VarType,
        shares: Vec<(u32, f64)>,
        in_place: bool,
    ) -> Result<u32> {
        if !in_place && self.vars.contains_key(name) {
            return Err(PipelineError::invalid(place, format!("{name:?} is already defined")));
        }
        if name == "bias" {
            return Err(PipelineError::invalid(place, "\"bias\" is reserved for the expected value in explanations"));
        }
        let slot = self.new_slot(shares);
        self.vars.insert(name.to_string(), Var { slot, kind });
        Ok(slot)
    }

    fn shares_of(&self, var: Var) -> Vec<(u32, f64)> {
        self.shares.get(var.slot as usize).cloned().unwrap_or_default()
    }
}

fn expect_numeric(place: &str, name: &str, var: Var, step: &str) -> Result<()> {
    match var.kind {
        VarType::Numeric | VarType::Boolean => Ok(()),
        VarType::Categorical { .. } => Err(PipelineError::invalid(
            place,
            format!(
                "{name:?} is categorical but {step} needs a numeric value; map it with category_map, one_hot or bin first"
            ),
        )),
    }
}

fn expect_categorical(place: &str, name: &str, var: Var, step: &str) -> Result<()> {
    match var.kind {
        VarType::Categorical { .. } => Ok(()),
        other => Err(PipelineError::invalid(
            place,
            format!("{name:?} is {} but {step} needs a categorical value", other.describe()),
        )),
    }
}

fn finite(place: &str, value: f64) -> Result<f64> {
    if value.is_finite() { Ok(value) } else { Err(PipelineError::invalid(place, "must be a finite number")) }
}

/// Parses the spec, reporting the member path of a syntax error.
pub(crate) fn parse(bytes: &[u8]) -> Result<PipelineSpec> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let spec: PipelineSpec = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        PipelineError::Syntax {
            place: if path == "." { "pipeline".to_string() } else { path },
            message: inner.to_string(),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| PipelineError::Syntax { place: "pipeline".into(), message: error.to_string() })?;
    if spec.version != crate::spec::FORMAT_VERSION {
        return Err(PipelineError::invalid(
            "version",
            format!(
                "version {} is not supported; this build reads version {}",
                spec.version,
                crate::spec::FORMAT_VERSION
            ),
        ));
    }
    Ok(spec)
}

/// The model files a spec names, in order.
pub(crate) fn artifact_names(spec: &PipelineSpec) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(artifact) = &spec.model.artifact {
        names.push(artifact.clone());
    }
    for member in spec.model.models.iter().flatten() {
        if !names.contains(&member.artifact) {
            names.push(member.artifact.clone());
        }
    }
    names
}

fn compile_fields(spec: &PipelineSpec) -> Result<(Vec<Field>, Vec<FieldRule>)> {
    let mut fields = Vec::new();
    let mut rules = Vec::new();
    let mut seen = HashMap::new();
    if spec.features.is_empty() {
        return Err(PipelineError::invalid("features", "the pipeline declares no features"));
    }
    for (index, feature) in spec.features.iter().enumerate() {
        let place = |member: &str| format!("features[{index}].{member}");
        if feature.name.is_empty() {
            return Err(PipelineError::invalid(place("name"), "the name is empty"));
        }
        if feature.name == "bias" {
            return Err(PipelineError::invalid(
                place("name"),
                "\"bias\" is reserved for the expected value in explanations",
            ));
        }
        if let Some(first) = seen.insert(feature.name.clone(), index) {
            return Err(PipelineError::invalid(
                place("name"),
                format!("feature {:?} is already declared at features[{first}]", feature.name),
            ));
        }
        let mut rule = FieldRule::numeric();
        rule.kind = feature.kind;
        rule.out_of_range = feature.out_of_range.unwrap_or(OutOfRangePolicy::Reject);
        let categories = feature.categories.clone().unwrap_or_default();
        match feature.kind {
            FeatureType::Numeric => {
                if feature.categories.is_some() {
                    return Err(PipelineError::invalid(place("categories"), "a numeric feature has no categories"));
                }
                if let Some(min) = feature.min {
                    rule.min = finite(&place("min"), min)?;
                }
                if let Some(max) = feature.max {
                    rule.max = finite(&place("max"), max)?;
                }
                if rule.min > rule.max {
                    return Err(PipelineError::invalid(
                        place("max"),
                        format!("the maximum {} is below the minimum {}", rule.max, rule.min),
                    ));
                }
            }
            FeatureType::Categorical | FeatureType::Boolean => {
                if feature.min.is_some() || feature.max.is_some() {
                    let member = if feature.min.is_some() { "min" } else { "max" };
                    return Err(PipelineError::invalid(place(member), "only a numeric feature has a range"));
                }
                if rule.out_of_range == OutOfRangePolicy::Clip {
                    return Err(PipelineError::invalid(place("out_of_range"), "only a numeric feature can be clipped"));
                }
            }
        }
        match feature.kind {
            FeatureType::Categorical => {
                if categories.is_empty() {
                    return Err(PipelineError::invalid(
                        place("categories"),
                        "a categorical feature needs its list of categories",
                    ));
                }
                for (position, category) in categories.iter().enumerate() {
                    if rule.category_index.insert(category.clone(), position as u32).is_some() {
                        return Err(PipelineError::invalid(
                            format!("features[{index}].categories[{position}]"),
                            format!("category {category:?} is listed twice"),
                        ));
                    }
                }
            }
            FeatureType::Boolean if feature.categories.is_some() => {
                return Err(PipelineError::invalid(place("categories"), "a boolean feature has no categories"));
            }
            _ => {}
        }
        let impute = match &feature.missing {
            Some(MissingPolicy::Impute(impute)) => {
                Some(literal(&place("missing.impute"), &impute.impute, feature, &rule)?)
            }
            Some(MissingPolicy::Keep) | None => None,
        };
        rule.required = match (feature.required, impute) {
            (Some(true), Some(_)) => {
                return Err(PipelineError::invalid(
                    place("missing"),
                    "a required feature never has a missing value to impute; set \"required\": false",
                ));
            }
            (Some(true), None) => true,
            (Some(false), _) => false,
            // A field that says how to impute is optional unless it says otherwise.
            (None, Some(_)) => false,
            (None, None) => !matches!(feature.missing, Some(MissingPolicy::Keep)),
        };
        rule.impute = impute.unwrap_or(f64::NAN);
        rule.category_list = categories.clone();
        fields.push(Field {
            name: feature.name.clone(),
            kind: feature.kind,
            required: rule.required,
            categories,
            description: feature.description.clone(),
        });
        rules.push(rule);
    }
    Ok((fields, rules))
}

/// A literal as the number a value of `feature`'s type is inside the pipeline.
fn literal(place: &str, value: &Value, feature: &FeatureSpec, rule: &FieldRule) -> Result<f64> {
    literal_of(place, value, feature.kind, &feature.name, |category| rule.category_index.get(category).copied())
}

fn literal_of(
    place: &str,
    value: &Value,
    kind: FeatureType,
    name: &str,
    index_of: impl Fn(&str) -> Option<u32>,
) -> Result<f64> {
    match (kind, value) {
        (FeatureType::Numeric, Value::Number(number)) => finite(place, *number),
        (FeatureType::Boolean, Value::Bool(flag)) => Ok(if *flag { 1.0 } else { 0.0 }),
        (FeatureType::Boolean, Value::Number(number)) if *number == 0.0 || *number == 1.0 => Ok(*number),
        (FeatureType::Categorical, Value::Text(category)) => index_of(category).map(f64::from).ok_or_else(|| {
            PipelineError::invalid(place, format!("category {category:?} is not declared for feature {name:?}"))
        }),
        (FeatureType::Categorical, Value::Number(number)) => {
            let category = number_as_category(*number);
            index_of(&category).map(f64::from).ok_or_else(|| {
                PipelineError::invalid(place, format!("category {category:?} is not declared for feature {name:?}"))
            })
        }
        (kind, _) => Err(PipelineError::invalid(
            place,
            format!("feature {name:?} is {} and this value is not", describe_type(kind)),
        )),
    }
}

fn describe_type(kind: FeatureType) -> &'static str {
    match kind {
        FeatureType::Numeric => "numeric",
        FeatureType::Categorical => "categorical",
        FeatureType::Boolean => "boolean",
    }
}

fn compile_steps(scope: &mut Scope<'_>, steps: &[StepSpec]) -> Result<()> {
    for (index, step) in steps.iter().enumerate() {
        let at = |member: &str| format!("steps[{index}].{member}");
        match step {
            StepSpec::Impute { input, value, output } => {
                let var = scope.lookup(&at("input"), input)?;
                let number = match var.kind {
                    VarType::Numeric => literal_of(&at("value"), value, FeatureType::Numeric, input, |_| None)?,
                    VarType::Boolean => literal_of(&at("value"), value, FeatureType::Boolean, input, |_| None)?,
                    VarType::Categorical { .. } => {
                        let categories = scope.categories(var);
                        literal_of(&at("value"), value, FeatureType::Categorical, input, |category| {
                            categories.iter().position(|c| c == category).map(|p| p as u32)
                        })?
                    }
                };
                let (name, in_place) = target(output, input);
                let shares = scope.shares_of(var);
                let slot = scope.define(&at("output"), name, var.kind, shares, in_place)?;
                scope.ops.push(Op::Impute { input: var.slot, output: slot, value: number });
            }
            StepSpec::Clip { input, min, max, output } => {
                let var = scope.lookup(&at("input"), input)?;
                expect_numeric(&at("input"), input, var, "clip")?;
                let min = match min {
                    Some(min) => finite(&at("min"), *min)?,
                    None => f64::NEG_INFINITY,
                };
                let max = match max {
                    Some(max) => finite(&at("max"), *max)?,
                    None => f64::INFINITY,
                };
                if min > max {
                    return Err(PipelineError::invalid(
                        at("max"),
                        format!("the maximum {max} is below the minimum {min}"),
                    ));
                }
                let (name, in_place) = target(output, input);
                let shares = scope.shares_of(var);
                let slot = scope.define(&at("output"), name, VarType::Numeric, shares, in_place)?;
                scope.ops.push(Op::Clip { input: var.slot, output: slot, min, max });
            }
            StepSpec::CategoryMap { input, codes, unknown, output } => {
                let var = scope.lookup(&at("input"), input)?;
                expect_categorical(&at("input"), input, var, "category_map")?;
                let categories = scope.categories(var);
                let unknown = match unknown {
                    Some(code) => finite(&at("unknown"), *code)?,
                    None => f64::NAN,
                };
                let table: Vec<f64> = match codes {
                    Some(codes) => {
                        for (category, code) in codes {
                            if !categories.contains(category) {
                                return Err(PipelineError::invalid(
                                    at("codes"),
                                    format!("category {category:?} is not declared for {input:?}"),
                                ));
                            }
                            finite(&at("codes"), *code)?;
                        }
                        categories.iter().map(|category| codes.get(category).copied().unwrap_or(unknown)).collect()
                    }
                    None => (0..categories.len()).map(|position| position as f64).collect(),
                };
                let (name, in_place) = target(output, input);
                let shares = scope.shares_of(var);
                let slot = scope.define(&at("output"), name, VarType::Numeric, shares, in_place)?;
                scope.ops.push(Op::Lookup { input: var.slot, output: slot, table: table.into(), missing: f64::NAN });
            }
            StepSpec::OneHot { input, categories, outputs, missing } => {
                let var = scope.lookup(&at("input"), input)?;
                expect_categorical(&at("input"), input, var, "one_hot")?;
                let declared = scope.categories(var);
                let chosen: Vec<String> = match categories {
                    Some(chosen) => {
                        for (position, category) in chosen.iter().enumerate() {
                            if !declared.contains(category) {
                                return Err(PipelineError::invalid(
                                    format!("steps[{index}].categories[{position}]"),
                                    format!("category {category:?} is not declared for {input:?}"),
                                ));
                            }
                        }
                        chosen.clone()
                    }
                    None => declared.to_vec(),
                };
                let names: Vec<String> = match outputs {
                    Some(names) => {
                        if names.len() != chosen.len() {
                            return Err(PipelineError::invalid(
                                at("outputs"),
                                format!("{} names for {} categories", names.len(), chosen.len()),
                            ));
                        }
                        names.clone()
                    }
                    None => chosen.iter().map(|category| format!("{input}_{category}")).collect(),
                };
                let shares = scope.shares_of(var);
                let mut first = None;
                for (position, name) in names.iter().enumerate() {
                    let slot = scope.define(
                        &format!("steps[{index}].outputs[{position}]"),
                        name,
                        VarType::Numeric,
                        shares.clone(),
                        false,
                    )?;
                    first.get_or_insert(slot);
                }
                let column_of: Vec<u32> = declared
                    .iter()
                    .map(|category| chosen.iter().position(|c| c == category).map_or(u32::MAX, |p| p as u32))
                    .collect();
                let fill = match missing.unwrap_or(OneHotMissing::Zeros) {
                    OneHotMissing::Zeros => 0.0,
                    OneHotMissing::Missing => f64::NAN,
                };
                if let Some(first_output) = first {
                    scope.ops.push(Op::OneHot {
                        input: var.slot,
                        first_output,
                        columns: names.len() as u32,
                        column_of: column_of.into(),
                        missing: fill,
                    });
                }
            }
            StepSpec::Bin { input, edges, values, closed, groups, other, missing_value, output } => {
                let var = scope.lookup(&at("input"), input)?;
                let missing = match missing_value {
                    Some(value) => finite(&at("missing"), *value)?,
                    None => f64::NAN,
                };
                let (name, in_place) = target(output, input);
                let shares = scope.shares_of(var);
                match var.kind {
                    VarType::Categorical { .. } => {
                        if edges.is_some() || values.is_some() || closed.is_some() {
                            return Err(PipelineError::invalid(
                                at("edges"),
                                format!("{input:?} is categorical: bin it with groups, not edges and values"),
                            ));
                        }
                        let Some(groups) = groups else {
                            return Err(PipelineError::invalid(at("groups"), "a categorical input needs groups"));
                        };
                        let categories = scope.categories(var);
                        let other = match other {
                            Some(value) => finite(&at("other"), *value)?,
                            None => f64::NAN,
                        };
                        let mut table = vec![None; categories.len()];
                        for (group_index, group) in groups.iter().enumerate() {
                            let value = finite(&format!("steps[{index}].groups[{group_index}].value"), group.value)?;
                            for category in &group.categories {
                                let place = format!("steps[{index}].groups[{group_index}].categories");
                                let Some(position) = categories.iter().position(|c| c == category) else {
                                    return Err(PipelineError::invalid(
                                        place,
                                        format!("category {category:?} is not declared for {input:?}"),
                                    ));
                                };
                                if table[position].replace(value).is_some() {
                                    return Err(PipelineError::invalid(
                                        place,
                                        format!("category {category:?} is in more than one group"),
                                    ));
                                }
                            }
                        }
                        let table: Vec<f64> = table.into_iter().map(|value| value.unwrap_or(other)).collect();
                        let slot = scope.define(&at("output"), name, VarType::Numeric, shares, in_place)?;
                        scope.ops.push(Op::Lookup { input: var.slot, output: slot, table: table.into(), missing });
                    }
                    VarType::Numeric | VarType::Boolean => {
                        if groups.is_some() || other.is_some() {
                            return Err(PipelineError::invalid(
                                at("groups"),
                                format!("{input:?} is numeric: bin it with edges and values, not groups"),
                            ));
                        }
                        let (Some(edges), Some(values)) = (edges, values) else {
                            return Err(PipelineError::invalid(at("edges"), "a numeric input needs edges and values"));
                        };
                        if values.len() != edges.len() + 1 {
                            return Err(PipelineError::invalid(
                                at("values"),
                                format!(
                                    "{} edges make {} bins but there are {} values",
                                    edges.len(),
                                    edges.len() + 1,
                                    values.len()
                                ),
                            ));
                        }
                        for (position, edge) in edges.iter().enumerate() {
                            finite(&format!("steps[{index}].edges[{position}]"), *edge)?;
                        }
                        if edges.windows(2).any(|pair| pair[0] >= pair[1]) {
                            return Err(PipelineError::invalid(at("edges"), "the edges are not strictly increasing"));
                        }
                        for (position, value) in values.iter().enumerate() {
                            finite(&format!("steps[{index}].values[{position}]"), *value)?;
                        }
                        let slot = scope.define(&at("output"), name, VarType::Numeric, shares, in_place)?;
                        scope.ops.push(Op::Bin {
                            input: var.slot,
                            output: slot,
                            edges: edges.clone().into(),
                            values: values.clone().into(),
                            right_closed: *closed == Some(BinClosed::Right),
                            missing,
                        });
                    }
                }
            }
            StepSpec::Standardize { input, mean, scale, output } => {
                let var = scope.lookup(&at("input"), input)?;
                expect_numeric(&at("input"), input, var, "standardize")?;
                let mean = finite(&at("mean"), *mean)?;
                let scale = finite(&at("scale"), *scale)?;
                if scale <= 0.0 {
                    return Err(PipelineError::invalid(at("scale"), "the scale must be positive"));
                }
                let (name, in_place) = target(output, input);
                let shares = scope.shares_of(var);
                let slot = scope.define(&at("output"), name, VarType::Numeric, shares, in_place)?;
                scope.ops.push(Op::Standardize { input: var.slot, output: slot, mean, scale });
            }
            StepSpec::Derive { output, op, args, attribute_to } => {
                let unary = matches!(
                    op,
                    crate::spec::DeriveOp::Log | crate::spec::DeriveOp::Log1p | crate::spec::DeriveOp::Abs
                );
                let expected = if unary { 1 } else { 2 };
                if args.len() != expected {
                    return Err(PipelineError::invalid(
                        at("args"),
                        format!("{op:?} takes {expected} operand(s), not {}", args.len()).to_lowercase(),
                    ));
                }
                let mut operands = Vec::new();
                let mut sources = BTreeSet::new();
                for (position, arg) in args.iter().enumerate() {
                    let place = format!("steps[{index}].args[{position}]");
                    match arg {
                        crate::spec::Operand::Number(value) => {
                            operands.push(Operand::Constant(finite(&place, *value)?))
                        }
                        crate::spec::Operand::Feature(name) => {
                            let var = scope.lookup(&place, name)?;
                            expect_numeric(&place, name, var, "derive")?;
                            sources.extend(scope.shares_of(var).into_iter().map(|(field, _)| field));
                            operands.push(Operand::Slot(var.slot));
                        }
                    }
                }
                if sources.is_empty() {
                    return Err(PipelineError::invalid(at("args"), "at least one operand must be a feature"));
                }
                let shares: Vec<(u32, f64)> = match attribute_to {
                    Some(owner) => {
                        let Some(field) = scope.features.iter().position(|feature| &feature.name == owner) else {
                            return Err(PipelineError::invalid(
                                at("attribute_to"),
                                format!("feature {owner:?} is not declared"),
                            ));
                        };
                        if !sources.contains(&(field as u32)) {
                            return Err(PipelineError::invalid(
                                at("attribute_to"),
                                format!("{output:?} does not come from {owner:?}"),
                            ));
                        }
                        vec![(field as u32, 1.0)]
                    }
                    None => {
                        let share = 1.0 / sources.len() as f64;
                        sources.into_iter().map(|field| (field, share)).collect()
                    }
                };
                let slot = scope.define(&at("output"), output, VarType::Numeric, shares, false)?;
                let left = operands.first().copied().unwrap_or(Operand::Constant(f64::NAN));
                let right = operands.get(1).copied().unwrap_or(Operand::Constant(f64::NAN));
                scope.ops.push(Op::Derive { op: *op, left, right, output: slot });
            }
        }
    }
    Ok(())
}

/// The name a step writes: its `output`, or its input replaced in place.
fn target<'s>(output: &'s Option<String>, input: &'s str) -> (&'s str, bool) {
    match output {
        Some(output) if output != input => (output, false),
        _ => (input, true),
    }
}

/// What a model answers, for a pipeline that needs a binary classifier or a scorecard.
fn answer_of(model: &Model) -> Option<Answer> {
    match (&model.output.kind, model.num_outputs()) {
        (OutputKind::Score, _) => Some(Answer::Score),
        (OutputKind::Probability, 1) if matches!(model.output.transform, Transform::Sigmoid { .. }) => {
            Some(Answer::Probability { column: 0 })
        }
        (OutputKind::Probability, 1) => Some(Answer::Probability { column: 0 }),
        (OutputKind::ClassProbabilities, 2) => Some(Answer::Probability { column: 1 }),
        (OutputKind::Margin, 1) => Some(Answer::Margin),
        _ => None,
    }
}

fn characteristic_inputs(predicate: &Predicate, inputs: &mut BTreeSet<u32>) {
    match predicate {
        Predicate::Constant(_) => {}
        Predicate::Compare { input, .. } | Predicate::Missing { input, .. } | Predicate::InSet { input, .. } => {
            inputs.insert(*input);
        }
        Predicate::Compound { children, .. } => {
            for child in children {
                characteristic_inputs(child, inputs);
            }
        }
    }
}

fn scorecard_explanation(model: &Model) -> Option<ScorecardExplanation> {
    let ModelBody::Scorecard(scorecard) = &model.body else { return None };
    let characteristic_inputs = scorecard
        .characteristics
        .iter()
        .map(|characteristic| {
            let mut inputs = BTreeSet::new();
            for attribute in &characteristic.attributes {
                characteristic_inputs(&attribute.predicate, &mut inputs);
            }
            inputs.into_iter().collect()
        })
        .collect();
    Some(ScorecardExplanation { scorecard: scorecard.clone(), characteristic_inputs })
}

/// Builds a member from a loaded model whose inputs read `slots`.
fn member(model: Model, slots: Vec<u32>, answer: Answer, place: &str) -> Result<Member> {
    let explainer = Explainer::new(&model).map_err(|error| error.to_string());
    let feature_slots = match &explainer {
        Ok(explainer) if explainer.num_features() == slots.len() => {
            slots.iter().map(|slot| vec![*slot].into_boxed_slice()).collect()
        }
        Ok(explainer) => explainer
            .feature_names()
            .iter()
            .map(|name| match model.inputs.iter().position(|input| &input.name == name) {
                Some(input) => slots.get(input).map(|slot| vec![*slot]).unwrap_or_default().into_boxed_slice(),
                None => slots.clone().into_boxed_slice(),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let scorecard = scorecard_explanation(&model);
    let predictor = Predictor::new(model).map_err(|error| PipelineError::invalid(place, error.to_string()))?;
    let num_values = predictor.num_values();
    Ok(Member { predictor, explainer, scorecard, inputs: slots.into(), feature_slots, answer, num_values })
}

fn load_member(
    scope: &mut Scope<'_>,
    place: &str,
    artifact: &str,
    format: Option<&str>,
    inputs: Option<&[String]>,
    load_artifact: &mut dyn FnMut(&str) -> std::result::Result<Vec<u8>, String>,
) -> Result<Member> {
    let artifact_error =
        |message: String| PipelineError::Artifact { place: place.to_string(), artifact: artifact.to_string(), message };
    let format = match format {
        Some(name) => Some(Format::from_name(name).ok_or_else(|| {
            PipelineError::invalid(
                format!("{place}.format"),
                format!("unknown format {name:?}; expected xgboost-json, xgboost-ubj, lightgbm, onnx or pmml"),
            )
        })?),
        None => None,
    };
    let bytes = load_artifact(artifact).map_err(artifact_error)?;
    let model = load_model(&bytes, format).map_err(|error| artifact_error(error.to_string()))?;
    let Some(answer) = answer_of(&model) else {
        return Err(PipelineError::invalid(
            place,
            format!(
                "the pipeline needs a binary classifier or a scorecard, but model {artifact:?} answers {}",
                model.output_columns().join(", ")
            ),
        ));
    };
    let names: Vec<String> = match inputs {
        Some(names) => {
            if names.len() != model.inputs.len() {
                return Err(PipelineError::invalid(
                    format!("{place}.inputs"),
                    format!("{} names for a model with {} inputs", names.len(), model.inputs.len()),
                ));
            }
            names.to_vec()
        }
        None => model.inputs.iter().map(|feature| feature.name.clone()).collect(),
    };
    let mut slots = Vec::with_capacity(names.len());
    for (position, (name, feature)) in names.iter().zip(&model.inputs).enumerate() {
        let input_place = if inputs.is_some() {
            format!("{place}.inputs[{position}]")
        } else {
            format!("{place}: model input {position} ({name:?})")
        };
        let var = scope.lookup(&input_place, name)?;
        let slot = match (var.kind, &feature.kind) {
            (VarType::Numeric | VarType::Boolean, _) => var.slot,
            (VarType::Categorical { .. }, FeatureKind::Categorical { categories: Some(known), unknown }) => {
                // Map the field's categories to the model's own codes by name.
                let mut table = Vec::new();
                for category in scope.categories(var) {
                    let code = match known.iter().position(|k| k == category) {
                        Some(code) => code as f64,
                        None => match unknown {
                            UnknownCategory::Missing => f64::NAN,
                            UnknownCategory::Unlisted => known.len() as f64,
                            UnknownCategory::Error => {
                                return Err(PipelineError::invalid(
                                    input_place,
                                    format!("category {category:?} of {name:?} is not one the model knows"),
                                ));
                            }
                        },
                    };
                    table.push(code);
                }
                let shares = scope.shares_of(var);
                let slot = scope.new_slot(shares);
                scope.ops.push(Op::Lookup { input: var.slot, output: slot, table: table.into(), missing: f64::NAN });
                slot
            }
            (VarType::Categorical { .. }, _) => {
                return Err(PipelineError::invalid(
                    input_place,
                    format!(
                        "{name:?} is categorical but the model reads a number there; map it with category_map, one_hot or bin first"
                    ),
                ));
            }
        };
        slots.push(slot);
    }
    member(model, slots, answer, place)
}

pub(crate) fn compile(
    spec: &PipelineSpec,
    load_artifact: &mut dyn FnMut(&str) -> std::result::Result<Vec<u8>, String>,
) -> Result<Program> {
    let (fields, rules) = compile_fields(spec)?;
    let mut scope = Scope { features: &spec.features, vars: HashMap::new(), shares: Vec::new(), ops: Vec::new() };
    for (index, feature) in spec.features.iter().enumerate() {
        let kind = match feature.kind {
            FeatureType::Numeric => VarType::Numeric,
            FeatureType::Boolean => VarType::Boolean,
            FeatureType::Categorical => VarType::Categorical { field: index },
        };
        let slot = scope.new_slot(vec![(index as u32, 1.0)]);
        scope.vars.insert(feature.name.clone(), Var { slot, kind });
    }
    compile_steps(&mut scope, &spec.steps)?;

    let (members, combine) = compile_models(&mut scope, &spec.model, load_artifact)?;
    let is_scorecard = members.iter().any(|member| member.answer == Answer::Score);
    let positive_is_bad = spec.positive_class.unwrap_or(PositiveClass::Bad) == PositiveClass::Bad;

    let mut isotonic = Vec::new();
    let mut calibration = Vec::new();
    for (index, step) in spec.calibration.iter().enumerate() {
        let at = |member: &str| format!("calibration[{index}].{member}");
        if is_scorecard {
            return Err(PipelineError::invalid(
                format!("calibration[{index}]"),
                "calibration needs a model that gives a probability, not a scorecard",
            ));
        }
        calibration.push(match step {
            CalibrationSpec::Platt { a, b, input } => Calibration::Platt {
                a: finite(&at("a"), *a)?,
                b: finite(&at("b"), *b)?,
                on_margin: input.unwrap_or(CalibrationInput::Margin) == CalibrationInput::Margin,
            },
            CalibrationSpec::Isotonic { x, y, input } => {
                if x.is_empty() || x.len() != y.len() {
                    return Err(PipelineError::invalid(
                        at("y"),
                        format!("{} x values and {} y values; they need the same, non-zero count", x.len(), y.len()),
                    ));
                }
                for (position, value) in x.iter().enumerate() {
                    finite(&format!("calibration[{index}].x[{position}]"), *value)?;
                }
                for (position, value) in y.iter().enumerate() {
                    if !(0.0..=1.0).contains(value) {
                        return Err(PipelineError::invalid(
                            format!("calibration[{index}].y[{position}]"),
                            "a probability must be in [0, 1]",
                        ));
                    }
                }
                if x.windows(2).any(|pair| pair[0] > pair[1]) {
                    return Err(PipelineError::invalid(at("x"), "the x values are not increasing"));
                }
                if y.windows(2).any(|pair| pair[0] > pair[1]) {
                    return Err(PipelineError::invalid(at("y"), "the y values are not non-decreasing"));
                }
                isotonic.push((x.clone().into_boxed_slice(), y.clone().into_boxed_slice()));
                Calibration::Isotonic {
                    index: isotonic.len() - 1,
                    on_margin: input.unwrap_or(CalibrationInput::Probability) == CalibrationInput::Margin,
                }
            }
            CalibrationSpec::InterceptShift { shift, training_base_rate, target_base_rate } => {
                let shift = match (shift, training_base_rate, target_base_rate) {
                    (Some(shift), None, None) => finite(&at("shift"), *shift)?,
                    (None, Some(training), Some(target)) => {
                        for (member, rate) in [("training_base_rate", training), ("target_base_rate", target)] {
                            if !(*rate > 0.0 && *rate < 1.0) {
                                return Err(PipelineError::invalid(at(member), "a base rate must be in (0, 1)"));
                            }
                        }
                        (target / (1.0 - target)).ln() - (training / (1.0 - training)).ln()
                    }
                    _ => {
                        return Err(PipelineError::invalid(
                            format!("calibration[{index}]"),
                            "give either shift, or both training_base_rate and target_base_rate",
                        ));
                    }
                };
                Calibration::Shift { shift }
            }
        });
    }

    let scaling = match &spec.scaling {
        Some(scaling) => {
            let pdo = finite("scaling.pdo", scaling.pdo)?;
            if pdo <= 0.0 {
                return Err(PipelineError::invalid("scaling.pdo", "points to double the odds must be positive"));
            }
            let reference_odds = finite("scaling.reference_odds", scaling.reference_odds)?;
            if reference_odds <= 0.0 {
                return Err(PipelineError::invalid("scaling.reference_odds", "the odds must be positive"));
            }
            let reference_score = finite("scaling.reference_score", scaling.reference_score)?;
            let reference_log_odds = match scaling.odds.unwrap_or(OddsDirection::GoodToBad) {
                OddsDirection::GoodToBad => reference_odds.ln(),
                OddsDirection::BadToGood => -reference_odds.ln(),
            };
            let decimals = match scaling.decimals {
                Some(decimals) if decimals > 15 => {
                    return Err(PipelineError::invalid("scaling.decimals", "at most 15 decimals"));
                }
                Some(decimals) => Some(decimals as i32),
                None => None,
            };
            Some(Scaling {
                reference_score,
                factor: pdo / std::f64::consts::LN_2,
                reference_log_odds,
                sign: if scaling.higher_is_better.unwrap_or(true) { 1.0 } else { -1.0 },
                decimals,
            })
        }
        None => None,
    };
    let higher_score_is_better = spec.scaling.as_ref().and_then(|scaling| scaling.higher_is_better).unwrap_or(true);
    let has_probability = !is_scorecard || scaling.is_some();
    let has_score = is_scorecard || scaling.is_some();
    let basis_available = |place: &str, basis: Option<DecisionBasis>| -> Result<bool> {
        match basis.unwrap_or(DecisionBasis::Probability) {
            DecisionBasis::Probability if !has_probability => {
                Err(PipelineError::invalid(place, "the pipeline gives no probability (a scorecard without scaling)"))
            }
            DecisionBasis::Score if !has_score => {
                Err(PipelineError::invalid(place, "the pipeline gives no score (add scaling)"))
            }
            DecisionBasis::Probability => Ok(false),
            DecisionBasis::Score => Ok(true),
        }
    };

    let master_scale = match &spec.master_scale {
        Some(scale) => {
            let on_score = basis_available("master_scale.on", scale.on)?;
            Some(compile_master_scale(scale, on_score)?)
        }
        None => None,
    };

    let decision = match &spec.decision {
        Some(rules) => {
            let on_score = basis_available("decision.on", rules.on)?;
            let lower_is_better = if on_score { !higher_score_is_better } else { positive_is_bad };
            let approve = finite("decision.approve", rules.approve)?;
            let decline = finite("decision.decline", rules.decline)?;
            if lower_is_better && approve > decline {
                return Err(PipelineError::invalid(
                    "decision.decline",
                    format!(
                        "cut-offs out of order: lower is better here, so approve ({approve}) must not be above decline ({decline})"
                    ),
                ));
            }
            if !lower_is_better && approve < decline {
                return Err(PipelineError::invalid(
                    "decision.decline",
                    format!(
                        "cut-offs out of order: higher is better here, so approve ({approve}) must not be below decline ({decline})"
                    ),
                ));
            }
            let mut knockouts = Vec::new();
            for (index, knockout) in rules.knockouts.iter().enumerate() {
                knockouts.push(compile_knockout(spec, &rules_field_index(spec), index, knockout)?);
            }
            Some(DecisionRules { on_score, lower_is_better, approve, decline, knockouts: knockouts.into() })
        }
        None => None,
    };

    let outputs = match &spec.outputs {
        Some(names) => {
            let mut set = OutputSet::default();
            for (index, name) in names.iter().enumerate() {
                let place = format!("outputs[{index}]");
                match name {
                    OutputName::Probability if !has_probability => {
                        return Err(PipelineError::invalid(place, "the pipeline gives no probability"));
                    }
                    OutputName::Score if !has_score => {
                        return Err(PipelineError::invalid(place, "the pipeline gives no score (add scaling)"));
                    }
                    OutputName::Grade if master_scale.is_none() => {
                        return Err(PipelineError::invalid(place, "the pipeline gives no grade (add master_scale)"));
                    }
                    OutputName::Decision if decision.is_none() => {
                        return Err(PipelineError::invalid(place, "the pipeline gives no decision (add decision)"));
                    }
                    OutputName::Probability => set.probability = true,
                    OutputName::Score => set.score = true,
                    OutputName::Grade => set.grade = true,
                    OutputName::Decision => set.decision = true,
                }
            }
            set
        }
        None => OutputSet {
            probability: has_probability,
            score: has_score,
            grade: master_scale.is_some(),
            decision: decision.is_some(),
        },
    };

    let reason_codes = match &spec.reason_codes {
        Some(table) => {
            for name in table.keys() {
                if !fields.iter().any(|field| &field.name == name) {
                    return Err(PipelineError::invalid(
                        format!("reason_codes.{name}"),
                        format!("feature {name:?} is not declared"),
                    ));
                }
            }
            let mut used = BTreeSet::new();
            for member in &members {
                for slot in member.inputs.iter() {
                    for (field, _) in scope.shares.get(*slot as usize).into_iter().flatten() {
                        used.insert(*field as usize);
                    }
                }
            }
            let mut entries = Vec::new();
            for (index, field) in fields.iter().enumerate() {
                match table.get(&field.name) {
                    Some(entry) => entries.push(ReasonCode { code: entry.code.clone(), text: entry.text.clone() }),
                    None if used.contains(&index) => {
                        return Err(PipelineError::invalid(
                            "reason_codes",
                            format!("feature {:?} reaches the model but has no reason code", field.name),
                        ));
                    }
                    None => entries.push(ReasonCode { code: field.name.clone(), text: field.name.clone() }),
                }
            }
            Some(entries)
        }
        None => None,
    };

    Ok(Program {
        fields,
        rules,
        num_slots: scope.shares.len(),
        ops: scope.ops,
        members,
        combine,
        positive_is_bad,
        calibration,
        isotonic,
        scaling,
        scorecard_probability: is_scorecard,
        master_scale,
        decision,
        outputs,
        slot_shares: scope.shares,
        reason_codes,
        bare: false,
        scratch_pool: Default::default(),
    })
}

fn rules_field_index(spec: &PipelineSpec) -> HashMap<&str, usize> {
    spec.features.iter().enumerate().map(|(index, feature)| (feature.name.as_str(), index)).collect()
}

fn compile_knockout(
    spec: &PipelineSpec,
    field_index: &HashMap<&str, usize>,
    index: usize,
    knockout: &crate::spec::KnockoutSpec,
) -> Result<Knockout> {
    let at = |member: &str| format!("decision.knockouts[{index}].{member}");
    let Some(&field) = field_index.get(knockout.feature.as_str()) else {
        return Err(PipelineError::invalid(at("feature"), format!("feature {:?} is not declared", knockout.feature)));
    };
    let feature = &spec.features[field];
    let index_of = |category: &str| {
        feature
            .categories
            .as_ref()
            .and_then(|categories| categories.iter().position(|c| c == category))
            .map(|p| p as u32)
    };
    let one = |value: &Option<KnockoutValue>| -> Result<f64> {
        match value {
            Some(KnockoutValue::One(value)) => literal_of(&at("value"), value, feature.kind, &feature.name, index_of),
            Some(KnockoutValue::List(_)) => {
                Err(PipelineError::invalid(at("value"), "a list only goes with in and not_in"))
            }
            None => Err(PipelineError::invalid(at("value"), "this rule needs a value")),
        }
    };
    let ordered = |value: &Option<KnockoutValue>| -> Result<f64> {
        if feature.kind != FeatureType::Numeric {
            return Err(PipelineError::invalid(
                at("op"),
                format!(
                    "feature {:?} is {}; lt, le, gt and ge compare numbers",
                    feature.name,
                    describe_type(feature.kind)
                ),
            ));
        }
        one(value)
    };
    let list = |value: &Option<KnockoutValue>| -> Result<Box<[f64]>> {
        let items: Vec<Value> = match value {
            Some(KnockoutValue::List(items)) => items.iter().cloned().map(Value::Text).collect(),
            Some(KnockoutValue::One(value)) => vec![value.clone()],
            None => return Err(PipelineError::invalid(at("value"), "this rule needs a list of categories")),
        };
        items.iter().map(|item| literal_of(&at("value"), item, feature.kind, &feature.name, index_of)).collect()
    };
    let test = match knockout.op {
        KnockoutOp::Lt => KnockoutTest::Lt(ordered(&knockout.value)?),
        KnockoutOp::Le => KnockoutTest::Le(ordered(&knockout.value)?),
        KnockoutOp::Gt => KnockoutTest::Gt(ordered(&knockout.value)?),
        KnockoutOp::Ge => KnockoutTest::Ge(ordered(&knockout.value)?),
        KnockoutOp::Eq => KnockoutTest::Eq(one(&knockout.value)?),
        KnockoutOp::Ne => KnockoutTest::Ne(one(&knockout.value)?),
        KnockoutOp::In => KnockoutTest::In(list(&knockout.value)?),
        KnockoutOp::NotIn => KnockoutTest::NotIn(list(&knockout.value)?),
        KnockoutOp::Missing => {
            if knockout.value.is_some() {
                return Err(PipelineError::invalid(at("value"), "missing takes no value"));
            }
            KnockoutTest::Missing
        }
    };
    let decision = match knockout.decision.unwrap_or(KnockoutDecision::Decline) {
        KnockoutDecision::Decline => Decision::Decline,
        KnockoutDecision::Refer => Decision::Refer,
    };
    Ok(Knockout { slot: field as u32, test, decision })
}

fn compile_master_scale(scale: &crate::spec::MasterScaleSpec, on_score: bool) -> Result<MasterScale> {
    let bands = &scale.bands;
    if bands.is_empty() {
        return Err(PipelineError::invalid("master_scale.bands", "the master scale has no bands"));
    }
    let last = bands.len() - 1;
    let mut starts = Vec::new();
    for (index, band) in bands.iter().enumerate() {
        let at = |member: &str| format!("master_scale.bands[{index}].{member}");
        if band.grade.is_empty() {
            return Err(PipelineError::invalid(at("grade"), "the grade is empty"));
        }
        let min = match band.min {
            Some(min) => finite(&at("min"), min)?,
            None if index == 0 && on_score => f64::NEG_INFINITY,
            None => return Err(PipelineError::invalid(at("min"), "the band needs a min")),
        };
        let max = match band.max {
            Some(max) => finite(&at("max"), max)?,
            None if index == last && on_score => f64::INFINITY,
            None => return Err(PipelineError::invalid(at("max"), "the band needs a max")),
        };
        if min >= max {
            return Err(PipelineError::invalid(
                at("max"),
                format!("the band is empty: min {min} is not below max {max}"),
            ));
        }
        if !on_score {
            if index == 0 && min != 0.0 {
                return Err(PipelineError::invalid(
                    at("min"),
                    format!("a gap: probabilities from 0 to {min} have no band"),
                ));
            }
            if index == last && max != 1.0 {
                return Err(PipelineError::invalid(
                    at("max"),
                    format!("a gap: probabilities from {max} to 1 have no band"),
                ));
            }
            if min < 0.0 || max > 1.0 {
                return Err(PipelineError::invalid(at("max"), "a probability band must lie within [0, 1]"));
            }
        }
        if index > 0 {
            let previous_max = bands[index - 1].max.unwrap_or(f64::INFINITY);
            if min < previous_max {
                return Err(PipelineError::invalid(
                    at("min"),
                    format!("bands overlap: this band starts at {min}, before the previous one ends at {previous_max}"),
                ));
            }
            if min > previous_max {
                return Err(PipelineError::invalid(
                    at("min"),
                    format!("a gap: the previous band ends at {previous_max} but this one starts at {min}"),
                ));
            }
            starts.push(min);
        }
    }
    Ok(MasterScale { on_score, starts: starts.into(), grades: bands.iter().map(|band| band.grade.clone()).collect() })
}

fn compile_models(
    scope: &mut Scope<'_>,
    spec: &ModelSpec,
    load_artifact: &mut dyn FnMut(&str) -> std::result::Result<Vec<u8>, String>,
) -> Result<(Vec<Member>, Combine)> {
    match (&spec.artifact, &spec.models) {
        (Some(artifact), None) => {
            if spec.combine.is_some() {
                return Err(PipelineError::invalid("model.combine", "combine goes with models, not with one artifact"));
            }
            let member =
                load_member(scope, "model", artifact, spec.format.as_deref(), spec.inputs.as_deref(), load_artifact)?;
            Ok((vec![member], Combine::Single))
        }
        (None, Some(models)) => {
            if spec.format.is_some() || spec.inputs.is_some() {
                return Err(PipelineError::invalid(
                    "model",
                    "with models, give format and inputs on each model, not on the model step",
                ));
            }
            if models.is_empty() {
                return Err(PipelineError::invalid("model.models", "no models"));
            }
            let Some(combine) = &spec.combine else {
                return Err(PipelineError::invalid("model.combine", "several models need combine"));
            };
            let mut members = Vec::new();
            for (index, model) in models.iter().enumerate() {
                let place = format!("model.models[{index}]");
                let member = load_member(
                    scope,
                    &place,
                    &model.artifact,
                    model.format.as_deref(),
                    model.inputs.as_deref(),
                    load_artifact,
                )?;
                if member.answer == Answer::Score {
                    return Err(PipelineError::invalid(place, "scorecards cannot be combined"));
                }
                members.push(member);
            }
            let count = models.len() as f64;
            let combine = match combine {
                CombineSpec::Average { space } => Combine::Linear {
                    space: space.unwrap_or(CombineSpace::Probability),
                    weights: vec![1.0 / count; models.len()].into(),
                    intercept: 0.0,
                    logistic: false,
                },
                CombineSpec::WeightedAverage { space } => {
                    let mut weights = Vec::new();
                    for (index, model) in models.iter().enumerate() {
                        let place = format!("model.models[{index}].weight");
                        match model.weight {
                            Some(weight) if weight.is_finite() && weight > 0.0 => weights.push(weight),
                            Some(_) => return Err(PipelineError::invalid(place, "a weight must be positive")),
                            None => {
                                return Err(PipelineError::invalid(
                                    place,
                                    "a weighted average needs every model's weight",
                                ));
                            }
                        }
                    }
                    let total: f64 = weights.iter().sum();
                    Combine::Linear {
                        space: space.unwrap_or(CombineSpace::Probability),
                        weights: weights.into_iter().map(|weight| weight / total).collect(),
                        intercept: 0.0,
                        logistic: false,
                    }
                }
                CombineSpec::Stacking { intercept, coefficients, space } => {
                    if coefficients.len() != models.len() {
                        return Err(PipelineError::invalid(
                            "model.combine.coefficients",
                            format!("{} coefficients for {} models", coefficients.len(), models.len()),
                        ));
                    }
                    for (index, coefficient) in coefficients.iter().enumerate() {
                        finite(&format!("model.combine.coefficients[{index}]"), *coefficient)?;
                    }
                    Combine::Linear {
                        space: space.unwrap_or(CombineSpace::Probability),
                        weights: coefficients.clone().into(),
                        intercept: finite("model.combine.intercept", *intercept)?,
                        logistic: true,
                    }
                }
            };
            for (index, model) in models.iter().enumerate() {
                if model.weight.is_some() && !matches!(combine_kind(spec), Some("weighted_average")) {
                    return Err(PipelineError::invalid(
                        format!("model.models[{index}].weight"),
                        "a weight only goes with combine method weighted_average",
                    ));
                }
            }
            Ok((members, combine))
        }
        (Some(_), Some(_)) => Err(PipelineError::invalid("model", "give either artifact or models, not both")),
        (None, None) => Err(PipelineError::invalid("model", "give artifact (one model) or models (several)")),
    }
}

fn combine_kind(spec: &ModelSpec) -> Option<&'static str> {
    spec.combine.as_ref().map(|combine| match combine {
        CombineSpec::Average { .. } => "average",
        CombineSpec::WeightedAverage { .. } => "weighted_average",
        CombineSpec::Stacking { .. } => "stacking",
    })
}

/// A bare model: its inputs are the fields, its values the outcome.
pub(crate) fn bare(model: Model) -> Result<Program> {
    model.validate()?;
    let mut fields = Vec::new();
    let mut rules = Vec::new();
    for feature in &model.inputs {
        let mut rule = FieldRule::numeric();
        let mut categories = Vec::new();
        if let FeatureKind::Categorical { categories: Some(known), unknown } = &feature.kind {
            rule.kind = FieldType::Categorical;
            for (position, category) in known.iter().enumerate() {
                rule.category_index.entry(category.clone()).or_insert(position as u32);
            }
            rule.category_list = known.clone();
            match unknown {
                UnknownCategory::Missing => rule.out_of_range = OutOfRangePolicy::Missing,
                UnknownCategory::Error => rule.out_of_range = OutOfRangePolicy::Reject,
                UnknownCategory::Unlisted => rule.unlisted_code = Some(known.len() as f64),
            }
            categories = known.clone();
        }
        fields.push(Field {
            name: feature.name.clone(),
            kind: rule.kind,
            required: false,
            categories,
            description: None,
        });
        rules.push(rule);
    }
    let answer = answer_of(&model).unwrap_or(Answer::Values);
    let slots: Vec<u32> = (0..model.inputs.len() as u32).collect();
    let slot_shares = slots.iter().map(|slot| vec![(*slot, 1.0)]).collect();
    let member = member(model, slots, answer, "model").map_err(|error| match error {
        PipelineError::Invalid { message, .. } => {
            PipelineError::Model(riskserve_model::ModelError::invalid(Format::Model, message))
        }
        other => other,
    })?;
    Ok(Program {
        num_slots: fields.len(),
        fields,
        rules,
        ops: Vec::new(),
        members: vec![member],
        combine: Combine::Single,
        positive_is_bad: true,
        calibration: Vec::new(),
        isotonic: Vec::new(),
        scaling: None,
        scorecard_probability: false,
        master_scale: None,
        decision: None,
        outputs: OutputSet::default(),
        slot_shares,
        reason_codes: None,
        bare: true,
        scratch_pool: Default::default(),
    })
}
