//! The compiled pipeline: a flat list of operations over numbered slots, the models reading
//! slots, and the postprocessing; scoring a row runs it top to bottom with no lookups by name.

use std::collections::BTreeMap;

use riskserve_model::Predictor;
use riskserve_model::eval::Scratch;
use riskserve_model::scorecard::{ReasonCodeAlgorithm, Scorecard, Truth};

use crate::error::RowError;
use crate::explainer::{ExplainScratch, Explainer};
use crate::fields::{Field, FieldRule};
use crate::spec::{CombineSpace, DeriveOp};
use crate::{Outcome, Reason, ScoreOptions};

/// One preprocessing operation. Slots below the number of fields hold the raw fields; every
/// operation writes slots of its own, so raw values stay available to knock-out rules.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Impute {
        input: u32,
        output: u32,
        value: f64,
    },
    Clip {
        input: u32,
        output: u32,
        min: f64,
        max: f64,
    },
    /// A category index to a value (`category_map`, categorical `bin`, a model's own encoding).
    Lookup {
        input: u32,
        output: u32,
        table: Box<[f64]>,
        missing: f64,
    },
    OneHot {
        input: u32,
        first_output: u32,
        columns: u32,
        column_of: Box<[u32]>,
        missing: f64,
    },
    Bin {
        input: u32,
        output: u32,
        edges: Box<[f64]>,
        values: Box<[f64]>,
        right_closed: bool,
        missing: f64,
    },
    Standardize {
        input: u32,
        output: u32,
        mean: f64,
        scale: f64,
    },
    Derive {
        op: DeriveOp,
        left: Operand,
        right: Operand,
        output: u32,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Operand {
    Slot(u32),
    Constant(f64),
}

/// What a model's answer is to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Answer {
    /// The probability of the positive class is value `column`.
    Probability { column: usize },
    /// The value is a margin (log-odds).
    Margin,
    /// The value is scorecard points.
    Score,
    /// Anything else (a bare multi-class or regression model): values only.
    Values,
}

/// One model of the pipeline.
#[derive(Debug)]
pub(crate) struct Member {
    pub predictor: Predictor,
    pub explainer: Result<Explainer, String>,
    pub scorecard: Option<ScorecardExplanation>,
    /// The slot each model input reads.
    pub inputs: Box<[u32]>,
    /// Per feature the explainer explains, the slots it comes from: the input's own slot when
    /// the model reads its inputs directly or the feature keeps an input's name through the
    /// model's own preprocessing, else every input's slot, shared equally.
    pub feature_slots: Vec<Box<[u32]>>,
    pub answer: Answer,
    pub num_values: usize,
}

/// What explaining a scorecard needs: the scorecard and, per characteristic, the model inputs it
/// reads.
#[derive(Debug)]
pub(crate) struct ScorecardExplanation {
    pub scorecard: Scorecard,
    pub characteristic_inputs: Vec<Vec<u32>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Combine {
    Single,
    /// Σ weightᵢ · answerᵢ + intercept, then a sigmoid when `logistic`.
    Linear {
        space: CombineSpace,
        weights: Box<[f64]>,
        intercept: f64,
        logistic: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Calibration {
    Platt { a: f64, b: f64, on_margin: bool },
    Shift { shift: f64 },
    Isotonic { index: usize, on_margin: bool },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Scaling {
    pub reference_score: f64,
    pub factor: f64,
    pub reference_log_odds: f64,
    pub sign: f64,
    pub decimals: Option<i32>,
}

impl Scaling {
    /// Points from the probability of the adverse outcome.
    pub fn score(&self, probability_bad: f64) -> f64 {
        let good_log_odds = ((1.0 - probability_bad) / probability_bad).ln();
        let score = self.reference_score + self.sign * self.factor * (good_log_odds - self.reference_log_odds);
        match self.decimals {
            Some(decimals) => {
                let power = 10f64.powi(decimals);
                (score * power).round() / power
            }
            None => score,
        }
    }

    /// The probability of the adverse outcome a score stands for.
    pub fn probability_bad(&self, score: f64) -> f64 {
        let good_log_odds = (score - self.reference_score) / (self.sign * self.factor) + self.reference_log_odds;
        1.0 / (1.0 + good_log_odds.exp())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct MasterScale {
    pub on_score: bool,
    /// Where band i + 1 starts; a value takes the band of the last start it reaches.
    pub starts: Box<[f64]>,
    pub grades: Box<[String]>,
}

#[derive(Debug, Clone)]
pub(crate) struct DecisionRules {
    pub on_score: bool,
    pub lower_is_better: bool,
    pub approve: f64,
    pub decline: f64,
    pub knockouts: Box<[Knockout]>,
}

#[derive(Debug, Clone)]
pub(crate) struct Knockout {
    pub slot: u32,
    pub test: KnockoutTest,
    pub decision: Decision,
}

#[derive(Debug, Clone)]
pub(crate) enum KnockoutTest {
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Eq(f64),
    Ne(f64),
    In(Box<[f64]>),
    NotIn(Box<[f64]>),
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Decision {
    Approve,
    Refer,
    Decline,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Refer => "refer",
            Decision::Decline => "decline",
        }
    }
}

/// Which outputs are returned.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OutputSet {
    pub probability: bool,
    pub score: bool,
    pub grade: bool,
    pub decision: bool,
}

/// A reason-code table entry, by raw field.
#[derive(Debug, Clone)]
pub(crate) struct ReasonCode {
    pub code: String,
    pub text: String,
}

/// The (x, y) points of an isotonic calibration.
pub(crate) type IsotonicPoints = (Box<[f64]>, Box<[f64]>);

#[derive(Debug)]
pub(crate) struct Program {
    pub fields: Vec<Field>,
    pub rules: Vec<FieldRule>,
    pub num_slots: usize,
    pub ops: Vec<Op>,
    pub members: Vec<Member>,
    pub combine: Combine,
    /// The model's probability is of the adverse outcome.
    pub positive_is_bad: bool,
    pub calibration: Vec<Calibration>,
    pub isotonic: Vec<IsotonicPoints>,
    pub scaling: Option<Scaling>,
    /// A scorecard pipeline with scaling reads its points backwards into a probability.
    pub scorecard_probability: bool,
    pub master_scale: Option<MasterScale>,
    pub decision: Option<DecisionRules>,
    pub outputs: OutputSet,
    /// Per slot, the raw fields it comes from and each one's share of its contribution.
    pub slot_shares: Vec<Vec<(u32, f64)>>,
    /// Per raw field; `None` when the pipeline has no table.
    pub reason_codes: Option<Vec<ReasonCode>>,
    /// True for a bare model: no postprocessing, values only.
    pub bare: bool,
    /// Scratches of finished batches, reused by the next ones.
    pub scratch_pool: std::sync::Mutex<Vec<BatchScratch>>,
}

/// The most scratches kept for reuse (about one per thread scoring at once).
const MAX_POOLED_SCRATCH: usize = 64;

/// One thread's buffers for scoring a batch.
#[derive(Debug)]
pub(crate) struct BatchScratch {
    slots: Vec<f64>,
    member_rows: Vec<Vec<f64>>,
    member_scratch: Vec<Scratch>,
    member_out: Vec<Vec<f64>>,
    explain_scratch: Vec<Option<ExplainScratch>>,
    explain_out: Vec<Vec<f64>>,
    contributions: Vec<f64>,
    reason_points: Vec<f64>,
    /// Per scorecard reason code: the points it explains, and the raw field that gave most of them.
    code_points: Vec<f64>,
    code_fields: Vec<Option<(u32, f64)>>,
}

/// The combined answer of the model step.
#[derive(Debug, Clone, Copy)]
enum Combined {
    Probabilistic { margin: f64, probability: f64 },
    Score(f64),
    Values,
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[inline]
fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// np.interp: linear interpolation through (x, y), clipped to the end values.
fn interpolate(x: &[f64], y: &[f64], value: f64) -> f64 {
    if value.is_nan() {
        return f64::NAN;
    }
    let (Some(&first_x), Some(&last_x)) = (x.first(), x.last()) else { return f64::NAN };
    if value <= first_x {
        return y.first().copied().unwrap_or(f64::NAN);
    }
    if value >= last_x {
        return y.last().copied().unwrap_or(f64::NAN);
    }
    // The first point strictly above the value; the segment before it holds the value.
    let upper = x.partition_point(|point| *point <= value);
    match (x.get(upper - 1), x.get(upper), y.get(upper - 1), y.get(upper)) {
        (Some(&x0), Some(&x1), Some(&y0), Some(&y1)) => {
            if x1 == x0 {
                y1
            } else {
                y0 + (value - x0) * (y1 - y0) / (x1 - x0)
            }
        }
        _ => f64::NAN,
    }
}

/// Applies calibration steps in order to a (margin, probability) pair.
pub(crate) fn calibrate(
    steps: &[Calibration],
    isotonic: &[IsotonicPoints],
    mut margin: f64,
    mut probability: f64,
) -> (f64, f64) {
    for step in steps {
        match *step {
            Calibration::Platt { a, b, on_margin } => {
                let x = if on_margin { margin } else { probability };
                probability = 1.0 / (1.0 + (a * x + b).exp());
                margin = logit(probability);
            }
            Calibration::Shift { shift } => {
                margin += shift;
                probability = sigmoid(margin);
            }
            Calibration::Isotonic { index, on_margin } => {
                let x = if on_margin { margin } else { probability };
                if let Some((xs, ys)) = isotonic.get(index) {
                    probability = interpolate(xs, ys, x);
                    margin = logit(probability);
                }
            }
        }
    }
    (margin, probability)
}

impl Program {
    fn num_reason_codes(&self) -> usize {
        self.members
            .iter()
            .filter_map(|member| member.scorecard.as_ref()?.scorecard.reason_codes.as_ref())
            .map(|codes| codes.texts.len())
            .max()
            .unwrap_or(0)
    }

    /// A scratch from the pool, or a new one: a server scores many small batches, and making
    /// every buffer anew for each would cost more than the pipeline itself.
    fn take_scratch(&self) -> BatchScratch {
        let pooled = self.scratch_pool.lock().ok().and_then(|mut pool| pool.pop());
        pooled.unwrap_or_else(|| self.scratch())
    }

    fn return_scratch(&self, scratch: BatchScratch) {
        if let Ok(mut pool) = self.scratch_pool.lock()
            && pool.len() < MAX_POOLED_SCRATCH
        {
            pool.push(scratch);
        }
    }

    pub fn scratch(&self) -> BatchScratch {
        BatchScratch {
            slots: vec![f64::NAN; self.num_slots],
            member_rows: self.members.iter().map(|member| vec![0.0; member.inputs.len()]).collect(),
            member_scratch: self.members.iter().map(|member| member.predictor.scratch()).collect(),
            member_out: self.members.iter().map(|member| vec![0.0; member.num_values]).collect(),
            // Explanation buffers (TreeSHAP's path buffers can be large) are made on first use.
            explain_scratch: self.members.iter().map(|_| None).collect(),
            explain_out: self.members.iter().map(|_| Vec::new()).collect(),
            contributions: vec![0.0; self.fields.len()],
            reason_points: vec![0.0; self.fields.len()],
            code_points: vec![0.0; self.num_reason_codes()],
            code_fields: vec![None; self.num_reason_codes()],
        }
    }

    pub fn score_batch(
        &self,
        rows: &[Vec<crate::Cell<'_>>],
        options: &ScoreOptions,
    ) -> Result<Vec<Outcome>, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut scratch = self.take_scratch();
        for (index, row) in rows.iter().enumerate() {
            if row.len() != self.fields.len() {
                errors.push(RowError::new(
                    index,
                    "",
                    format!("expected {} values, got {}", self.fields.len(), row.len()),
                ));
                continue;
            }
            let mut valid = true;
            for (((cell, rule), field), slot) in row.iter().zip(&self.rules).zip(&self.fields).zip(&mut scratch.slots) {
                match rule.read(cell) {
                    Ok(value) => *slot = value,
                    Err(message) => {
                        errors.push(RowError::new(index, field.name.as_str(), message));
                        valid = false;
                    }
                }
            }
            // Once a row failed, the rest are only validated, so that every error is reported.
            if !valid || !errors.is_empty() {
                continue;
            }
            match self.score_row(&mut scratch, options) {
                Ok(outcome) => outcomes.push(outcome),
                Err((field, message)) => errors.push(RowError::new(index, field, message)),
            }
        }
        self.return_scratch(scratch);
        if errors.is_empty() { Ok(outcomes) } else { Err(errors) }
    }

    /// Scores the row whose raw fields are in `scratch.slots`.
    fn score_row(&self, scratch: &mut BatchScratch, options: &ScoreOptions) -> Result<Outcome, (String, String)> {
        run_ops(&self.ops, &mut scratch.slots);
        let mut values = Vec::with_capacity(scratch.member_out.iter().map(Vec::len).sum());
        for (index, member) in self.members.iter().enumerate() {
            let row = &mut scratch.member_rows[index];
            for (value, slot) in row.iter_mut().zip(member.inputs.iter()) {
                *value = scratch.slots.get(*slot as usize).copied().unwrap_or(f64::NAN);
            }
            let out = &mut scratch.member_out[index];
            member.predictor.predict_row(row, &mut scratch.member_scratch[index], out).map_err(|error| {
                let field = match &error {
                    riskserve_model::eval::ScoreError::NoAttributeMatched(failure) => failure
                        .invalid_input
                        .as_ref()
                        .map(|(input, _)| input.clone())
                        .unwrap_or_else(|| failure.characteristic.clone()),
                    _ => String::new(),
                };
                (field, error.to_string())
            })?;
            values.extend_from_slice(out);
        }
        let combined = self.combine(&scratch.member_out);
        let mut outcome = Outcome { values, ..Outcome::default() };
        if !self.bare {
            self.postprocess(combined, scratch, &mut outcome);
        }
        if options.explain {
            self.explain(combined, scratch, options, &mut outcome)?;
        }
        Ok(outcome)
    }

    fn combine(&self, outs: &[Vec<f64>]) -> Combined {
        let answer = |index: usize| -> Combined {
            let (Some(member), Some(out)) = (self.members.get(index), outs.get(index)) else {
                return Combined::Values;
            };
            let first = out.first().copied().unwrap_or(f64::NAN);
            match member.answer {
                Answer::Probability { column } => {
                    let probability = out.get(column).copied().unwrap_or(f64::NAN);
                    Combined::Probabilistic { margin: logit(probability), probability }
                }
                Answer::Margin => Combined::Probabilistic { margin: first, probability: sigmoid(first) },
                Answer::Score => Combined::Score(first),
                Answer::Values => Combined::Values,
            }
        };
        match &self.combine {
            Combine::Single => answer(0),
            Combine::Linear { space, weights, intercept, logistic } => {
                let mut total = *intercept;
                for (index, weight) in weights.iter().enumerate() {
                    let value = match (answer(index), space) {
                        (Combined::Probabilistic { probability, .. }, CombineSpace::Probability) => probability,
                        (Combined::Probabilistic { margin, .. }, CombineSpace::Margin) => margin,
                        _ => f64::NAN,
                    };
                    total += weight * value;
                }
                if *logistic || *space == CombineSpace::Margin {
                    Combined::Probabilistic { margin: total, probability: sigmoid(total) }
                } else {
                    Combined::Probabilistic { margin: logit(total), probability: total }
                }
            }
        }
    }

    fn postprocess(&self, combined: Combined, _scratch: &mut BatchScratch, outcome: &mut Outcome) {
        let (probability, score) = match combined {
            Combined::Probabilistic { margin, probability } => {
                let (_, probability) = calibrate(&self.calibration, &self.isotonic, margin, probability);
                let probability_bad = if self.positive_is_bad { probability } else { 1.0 - probability };
                (Some(probability), self.scaling.map(|scaling| scaling.score(probability_bad)))
            }
            Combined::Score(score) => {
                let probability = match (self.scorecard_probability, self.scaling) {
                    (true, Some(scaling)) => {
                        let probability_bad = scaling.probability_bad(score);
                        Some(if self.positive_is_bad { probability_bad } else { 1.0 - probability_bad })
                    }
                    _ => None,
                };
                (probability, Some(score))
            }
            Combined::Values => (None, None),
        };
        let basis = |on_score: bool| if on_score { score } else { probability };
        if let Some(scale) = &self.master_scale
            && let Some(value) = basis(scale.on_score)
            && !value.is_nan()
        {
            let band = scale.starts.partition_point(|start| *start <= value);
            outcome.grade = scale.grades.get(band).cloned();
        }
        if let Some(rules) = &self.decision {
            let mut decision = match basis(rules.on_score) {
                Some(value) if !value.is_nan() => {
                    let (approved, declined) = if rules.lower_is_better {
                        (value < rules.approve, value >= rules.decline)
                    } else {
                        (value >= rules.approve, value < rules.decline)
                    };
                    if approved {
                        Decision::Approve
                    } else if declined {
                        Decision::Decline
                    } else {
                        Decision::Refer
                    }
                }
                // No value to decide on: a person decides.
                _ => Decision::Refer,
            };
            for knockout in rules.knockouts.iter() {
                if knockout.decision > decision && knockout_holds(knockout, &_scratch.slots) {
                    decision = knockout.decision;
                }
            }
            if self.outputs.decision {
                outcome.decision = Some(decision.name().to_string());
            }
        }
        if !self.outputs.grade {
            outcome.grade = None;
        }
        if self.outputs.probability {
            outcome.probability = probability;
        }
        if self.outputs.score {
            outcome.score = score;
        }
    }

    fn explain(
        &self,
        combined: Combined,
        scratch: &mut BatchScratch,
        options: &ScoreOptions,
        outcome: &mut Outcome,
    ) -> Result<(), (String, String)> {
        let BatchScratch {
            member_rows,
            member_scratch,
            explain_scratch,
            explain_out,
            contributions,
            reason_points,
            code_points,
            code_fields,
            ..
        } = scratch;
        contributions.fill(0.0);
        reason_points.fill(0.0);
        code_points.fill(0.0);
        code_fields.fill(None);
        // The ranked reason codes of a scorecard, when its own codes are the reasons.
        let mut scorecard_codes: Option<(&Scorecard, &[u32])> = None;
        let mut bias = 0.0;
        let mut scorecard_reasons = false;
        let (weights, intercept, linear_in_margin): (&[f64], f64, bool) = match &self.combine {
            Combine::Single => (&[1.0], 0.0, true),
            Combine::Linear { space, weights, intercept, .. } => (weights, *intercept, *space == CombineSpace::Margin),
        };
        bias += intercept;
        for (index, member) in self.members.iter().enumerate() {
            let weight = weights.get(index).copied().unwrap_or(0.0);
            let row = &member_rows[index];
            if let Some(card) = &member.scorecard {
                scorecard_reasons = true;
                if self.reason_codes.is_none() && card.scorecard.reason_codes.is_some() {
                    let ranked = member_scratch.get(index).map_or(&[][..], |scratch| scratch.reasons.as_slice());
                    scorecard_codes = Some((&card.scorecard, ranked));
                }
                bias += weight * card.scorecard.initial_score;
                let algorithm = card.scorecard.reason_codes.as_ref().map(|codes| codes.algorithm);
                for (characteristic, inputs) in card.scorecard.characteristics.iter().zip(&card.characteristic_inputs) {
                    let Some(attribute) = characteristic
                        .attributes
                        .iter()
                        .find(|attribute| card.scorecard.truth(&attribute.predicate, row) == Truth::True)
                    else {
                        continue;
                    };
                    let points = attribute.partial_score;
                    // Without reason codes the baseline is the characteristic's best score, so that
                    // points below it are what the row lost there.
                    let baseline = characteristic.baseline.unwrap_or_else(|| {
                        characteristic.attributes.iter().map(|a| a.partial_score).fold(f64::NEG_INFINITY, f64::max)
                    });
                    let lost = match algorithm {
                        Some(ReasonCodeAlgorithm::PointsAbove) => points - baseline,
                        Some(ReasonCodeAlgorithm::PointsBelow) | None => baseline - points,
                    };
                    let share = 1.0 / inputs.len().max(1) as f64;
                    for input in inputs {
                        let Some(slot) = member.inputs.get(*input as usize) else { continue };
                        for (field, field_share) in self.slot_shares.get(*slot as usize).into_iter().flatten() {
                            let part = share * field_share;
                            if let Some(value) = contributions.get_mut(*field as usize) {
                                *value += weight * points * part;
                            }
                            if let Some(value) = reason_points.get_mut(*field as usize) {
                                *value += lost * part;
                            }
                            if let Some(code) = attribute.reason_code {
                                if let Some(points) = code_points.get_mut(code as usize) {
                                    *points += lost * part;
                                }
                                if let Some(best) = code_fields.get_mut(code as usize)
                                    && best.is_none_or(|(_, most)| lost * part > most)
                                {
                                    *best = Some((*field, lost * part));
                                }
                            }
                        }
                    }
                }
                continue;
            }
            let explainer = match &member.explainer {
                Ok(explainer) => explainer,
                Err(message) => return Err((String::new(), message.clone())),
            };
            let (Some(explain_scratch), Some(out)) = (explain_scratch.get_mut(index), explain_out.get_mut(index))
            else {
                return Err((String::new(), "no explanation buffers".into()));
            };
            let explain_scratch = explain_scratch.get_or_insert_with(|| explainer.scratch());
            out.resize(explainer.num_groups() * (explainer.num_features() + 1), 0.0);
            explainer.explain_row(row, explain_scratch, out).map_err(|error| (String::new(), error.to_string()))?;
            let width = explainer.num_features() + 1;
            let groups = explainer.num_groups();
            let group_value = |feature: usize| -> f64 {
                match groups {
                    1 => out.get(feature).copied().unwrap_or(0.0),
                    // Two softmax groups: the positive class's log-odds is the difference.
                    2 => out.get(width + feature).copied().unwrap_or(0.0) - out.get(feature).copied().unwrap_or(0.0),
                    _ => f64::NAN,
                }
            };
            if groups > 2 {
                return Err((String::new(), format!("explanations need a model with one output, not {groups}")));
            }
            bias += weight * group_value(width - 1);
            for (feature, slots) in member.feature_slots.iter().enumerate() {
                let value = weight * group_value(feature);
                let share = 1.0 / slots.len().max(1) as f64;
                for slot in slots.iter() {
                    for (field, field_share) in self.slot_shares.get(*slot as usize).into_iter().flatten() {
                        if let Some(total) = contributions.get_mut(*field as usize) {
                            *total += value * share * field_share;
                        }
                    }
                }
            }
        }
        if !linear_in_margin && let Combined::Probabilistic { margin, .. } = combined {
            // Combined in probability space the margin is no linear combination of the models'
            // margins: the bias takes up the difference so that the sum is still the margin.
            bias = margin - contributions.iter().sum::<f64>();
        }
        let mut map = BTreeMap::new();
        for (field, value) in self.fields.iter().zip(contributions.iter()) {
            map.insert(field.name.clone(), *value);
        }
        map.insert("bias".to_string(), bias);
        outcome.contributions = Some(map);

        if let Some((scorecard, ranked)) = scorecard_codes {
            // PMML's semantics: points below (or above) the baselines summed per reason code and
            // ranked by the scorecard; the feature is the one that lost most under that code.
            let reasons = ranked
                .iter()
                .take(options.top_reasons)
                .map(|id| {
                    let code = scorecard.reason_code_text(*id).to_string();
                    let feature = code_fields
                        .get(*id as usize)
                        .copied()
                        .flatten()
                        .and_then(|(field, _)| self.fields.get(field as usize))
                        .map(|field| field.name.clone())
                        .unwrap_or_default();
                    let contribution = code_points.get(*id as usize).copied().unwrap_or(0.0);
                    Reason { text: code.clone(), code, feature, contribution }
                })
                .collect();
            outcome.reasons = Some(reasons);
            return Ok(());
        }
        let adverse_sign = if self.positive_is_bad { 1.0 } else { -1.0 };
        let adverse: &[f64] = if scorecard_reasons {
            reason_points
        } else {
            for (points, value) in reason_points.iter_mut().zip(contributions.iter()) {
                *points = adverse_sign * value;
            }
            reason_points
        };
        let mut ranked: Vec<usize> = (0..adverse.len()).filter(|field| adverse[*field] > 0.0).collect();
        ranked.sort_by(|a, b| adverse[*b].total_cmp(&adverse[*a]).then(a.cmp(b)));
        ranked.truncate(options.top_reasons);
        let reasons = ranked
            .into_iter()
            .filter_map(|index| {
                let field = self.fields.get(index)?;
                let contribution = if scorecard_reasons { adverse[index] } else { contributions[index] };
                let (code, text) = match &self.reason_codes {
                    Some(table) => {
                        let entry = table.get(index)?;
                        (entry.code.clone(), entry.text.clone())
                    }
                    None => (field.name.clone(), field.description.clone().unwrap_or_else(|| field.name.clone())),
                };
                Some(Reason { code, feature: field.name.clone(), text, contribution })
            })
            .collect();
        outcome.reasons = Some(reasons);
        Ok(())
    }
}

fn knockout_holds(knockout: &Knockout, slots: &[f64]) -> bool {
    let value = slots.get(knockout.slot as usize).copied().unwrap_or(f64::NAN);
    if value.is_nan() {
        return matches!(knockout.test, KnockoutTest::Missing);
    }
    match &knockout.test {
        KnockoutTest::Lt(limit) => value < *limit,
        KnockoutTest::Le(limit) => value <= *limit,
        KnockoutTest::Gt(limit) => value > *limit,
        KnockoutTest::Ge(limit) => value >= *limit,
        KnockoutTest::Eq(other) => value == *other,
        KnockoutTest::Ne(other) => value != *other,
        KnockoutTest::In(set) => set.contains(&value),
        KnockoutTest::NotIn(set) => !set.contains(&value),
        KnockoutTest::Missing => false,
    }
}

#[inline]
fn read(slots: &[f64], slot: u32) -> f64 {
    slots.get(slot as usize).copied().unwrap_or(f64::NAN)
}

#[inline]
fn write(slots: &mut [f64], slot: u32, value: f64) {
    if let Some(target) = slots.get_mut(slot as usize) {
        *target = value;
    }
}

/// Runs the preprocessing operations; compilation made every slot index valid, so the checked
/// accessors above never miss.
fn run_ops(ops: &[Op], slots: &mut [f64]) {
    for op in ops {
        match op {
            Op::Impute { input, output, value } => {
                let x = read(slots, *input);
                write(slots, *output, if x.is_nan() { *value } else { x });
            }
            Op::Clip { input, output, min, max } => {
                let x = read(slots, *input);
                write(slots, *output, if x.is_nan() { x } else { x.max(*min).min(*max) });
            }
            Op::Lookup { input, output, table, missing } => {
                let x = read(slots, *input);
                let value = if x.is_nan() { *missing } else { table.get(x as usize).copied().unwrap_or(f64::NAN) };
                write(slots, *output, value);
            }
            Op::OneHot { input, first_output, columns, column_of, missing } => {
                let x = read(slots, *input);
                let fill = if x.is_nan() { *missing } else { 0.0 };
                for column in 0..*columns {
                    write(slots, first_output + column, fill);
                }
                if !x.is_nan()
                    && let Some(column) = column_of.get(x as usize)
                    && *column < *columns
                {
                    write(slots, first_output + column, 1.0);
                }
            }
            Op::Bin { input, output, edges, values, right_closed, missing } => {
                let x = read(slots, *input);
                let value = if x.is_nan() {
                    *missing
                } else {
                    let bin = if *right_closed {
                        edges.partition_point(|edge| *edge < x)
                    } else {
                        edges.partition_point(|edge| *edge <= x)
                    };
                    values.get(bin).copied().unwrap_or(f64::NAN)
                };
                write(slots, *output, value);
            }
            Op::Standardize { input, output, mean, scale } => {
                let x = read(slots, *input);
                write(slots, *output, (x - mean) / scale);
            }
            Op::Derive { op, left, right, output } => {
                let operand = |operand: &Operand| match operand {
                    Operand::Slot(slot) => read(slots, *slot),
                    Operand::Constant(value) => *value,
                };
                let (a, b) = (operand(left), operand(right));
                let value = match op {
                    DeriveOp::Sum => a + b,
                    DeriveOp::Difference => a - b,
                    DeriveOp::Product => a * b,
                    DeriveOp::Ratio => a / b,
                    DeriveOp::Min => {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else {
                            a.min(b)
                        }
                    }
                    DeriveOp::Max => {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else {
                            a.max(b)
                        }
                    }
                    DeriveOp::Log => a.ln(),
                    DeriveOp::Log1p => a.ln_1p(),
                    DeriveOp::Abs => a.abs(),
                };
                write(slots, *output, if value.is_finite() { value } else { f64::NAN });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: Op, inputs: &[f64], width: usize) -> Vec<f64> {
        let mut slots = inputs.to_vec();
        slots.resize(inputs.len() + width, -99.0);
        run_ops(&[op], &mut slots);
        slots[inputs.len()..].to_vec()
    }

    #[test]
    fn bins_are_closed_on_the_declared_side() {
        let bin = |x: f64, right_closed: bool| {
            let op = Op::Bin {
                input: 0,
                output: 1,
                edges: vec![10.0, 20.0].into(),
                values: vec![-1.0, 0.0, 1.0].into(),
                right_closed,
                missing: 7.0,
            };
            run(op, &[x], 1)[0]
        };
        assert_eq!([bin(9.9, false), bin(10.0, false), bin(20.0, false), bin(25.0, false)], [-1.0, 0.0, 1.0, 1.0]);
        assert_eq!([bin(10.0, true), bin(10.1, true), bin(20.0, true), bin(20.1, true)], [-1.0, 0.0, 0.0, 1.0]);
        assert_eq!(bin(f64::NAN, false), 7.0);
    }

    #[test]
    fn one_hot_sets_one_column_and_follows_the_missing_rule() {
        let op = |missing: f64| Op::OneHot {
            input: 0,
            first_output: 1,
            columns: 2,
            column_of: vec![0, u32::MAX, 1].into(),
            missing,
        };
        assert_eq!(run(op(0.0), &[2.0], 2), [0.0, 1.0]);
        assert_eq!(run(op(0.0), &[1.0], 2), [0.0, 0.0], "a category without a column sets none");
        assert_eq!(run(op(0.0), &[f64::NAN], 2), [0.0, 0.0]);
        assert!(run(op(f64::NAN), &[f64::NAN], 2).iter().all(|value| value.is_nan()));
    }

    #[test]
    fn derived_features_that_are_not_finite_are_missing() {
        let derive = |op: DeriveOp, a: f64, b: f64| {
            run(Op::Derive { op, left: Operand::Slot(0), right: Operand::Slot(1), output: 2 }, &[a, b], 1)[0]
        };
        assert_eq!(derive(DeriveOp::Ratio, 6.0, 3.0), 2.0);
        assert!(derive(DeriveOp::Ratio, 6.0, 0.0).is_nan());
        assert!(derive(DeriveOp::Log, -1.0, 0.0).is_nan());
        assert!(derive(DeriveOp::Log, 0.0, 0.0).is_nan());
        assert_eq!(derive(DeriveOp::Log1p, 0.0, 0.0), 0.0);
        assert_eq!(derive(DeriveOp::Difference, 5.0, 7.0), -2.0);
        assert!(derive(DeriveOp::Min, f64::NAN, 1.0).is_nan(), "a missing operand gives a missing result");
        assert!(derive(DeriveOp::Sum, f64::NAN, 1.0).is_nan());
        assert_eq!(derive(DeriveOp::Abs, -3.0, 0.0), 3.0);
    }

    #[test]
    fn impute_clip_lookup_and_standardize() {
        assert_eq!(run(Op::Impute { input: 0, output: 1, value: 4.0 }, &[f64::NAN], 1), [4.0]);
        assert_eq!(run(Op::Impute { input: 0, output: 1, value: 4.0 }, &[2.0], 1), [2.0]);
        assert_eq!(run(Op::Clip { input: 0, output: 1, min: 0.0, max: 1.0 }, &[3.0], 1), [1.0]);
        assert!(run(Op::Clip { input: 0, output: 1, min: 0.0, max: 1.0 }, &[f64::NAN], 1)[0].is_nan());
        let lookup =
            |x: f64| run(Op::Lookup { input: 0, output: 1, table: vec![10.0, 20.0].into(), missing: -1.0 }, &[x], 1)[0];
        assert_eq!([lookup(1.0), lookup(f64::NAN)], [20.0, -1.0]);
        assert_eq!(run(Op::Standardize { input: 0, output: 1, mean: 3.0, scale: 2.0 }, &[7.0], 1), [2.0]);
    }

    #[test]
    fn isotonic_interpolation_clips_at_both_ends() {
        let x = [0.1, 0.5, 0.5, 0.9];
        let y = [0.0, 0.2, 0.4, 1.0];
        assert_eq!(interpolate(&x, &y, 0.0), 0.0);
        assert_eq!(interpolate(&x, &y, 1.0), 1.0);
        assert!((interpolate(&x, &y, 0.3) - 0.1).abs() < 1e-15);
        assert!((interpolate(&x, &y, 0.7) - 0.7).abs() < 1e-15);
        assert!(interpolate(&x, &y, f64::NAN).is_nan());
    }

    /// scikit-learn's own calibrators (scripts/fixtures_pipeline.py) on a grid of margins.
    #[test]
    fn calibration_matches_scikit_learn() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pipeline/calibration.json");
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        let numbers = |value: &serde_json::Value| -> Vec<f64> {
            value.as_array().expect("list").iter().map(|v| v.as_f64().expect("number")).collect()
        };
        let margins = numbers(&fixture["margins"]);
        let platt = Calibration::Platt {
            a: fixture["platt"]["a"].as_f64().expect("a"),
            b: fixture["platt"]["b"].as_f64().expect("b"),
            on_margin: true,
        };
        let points: IsotonicPoints = (
            numbers(&fixture["isotonic"]["x"]).into_boxed_slice(),
            numbers(&fixture["isotonic"]["y"]).into_boxed_slice(),
        );
        let isotonic = Calibration::Isotonic { index: 0, on_margin: false };
        let tables = [points];
        for ((margin, platt_expected), isotonic_expected) in
            margins.iter().zip(numbers(&fixture["platt_on_margin"])).zip(numbers(&fixture["isotonic_on_probability"]))
        {
            let probability = sigmoid(*margin);
            let (_, by_platt) = calibrate(&[platt], &tables, *margin, probability);
            assert!((by_platt - platt_expected).abs() < 1e-12, "platt at {margin}: {by_platt} vs {platt_expected}");
            let (_, by_isotonic) = calibrate(&[isotonic], &tables, *margin, probability);
            assert!(
                (by_isotonic - isotonic_expected).abs() < 1e-12,
                "isotonic at {margin}: {by_isotonic} vs {isotonic_expected}"
            );
        }
    }

    #[test]
    fn scaling_reads_backwards() {
        let scaling = Scaling {
            reference_score: 600.0,
            factor: 20.0 / std::f64::consts::LN_2,
            reference_log_odds: 50f64.ln(),
            sign: 1.0,
            decimals: None,
        };
        for p in [0.01, 0.2, 0.5, 0.93] {
            assert!((scaling.probability_bad(scaling.score(p)) - p).abs() < 1e-12);
        }
        // Doubling the good:bad odds adds the points to double the odds.
        let odds = |p: f64| (1.0 - p) / p;
        let (p1, p2) = (0.2, 1.0 / (1.0 + 2.0 * odds(0.2)));
        assert!((scaling.score(p2) - scaling.score(p1) - 20.0).abs() < 1e-9);
        let rounded = Scaling { decimals: Some(0), ..scaling };
        assert_eq!(rounded.score(0.2).fract(), 0.0);
    }

    #[test]
    fn knockouts_never_hold_on_a_missing_value_except_missing() {
        let rule = |test: KnockoutTest| Knockout { slot: 0, test, decision: Decision::Decline };
        assert!(knockout_holds(&rule(KnockoutTest::Lt(18.0)), &[17.0]));
        assert!(!knockout_holds(&rule(KnockoutTest::Lt(18.0)), &[f64::NAN]));
        assert!(!knockout_holds(&rule(KnockoutTest::Ne(1.0)), &[f64::NAN]));
        assert!(!knockout_holds(&rule(KnockoutTest::NotIn(vec![1.0].into())), &[f64::NAN]));
        assert!(knockout_holds(&rule(KnockoutTest::Missing), &[f64::NAN]));
        assert!(knockout_holds(&rule(KnockoutTest::In(vec![1.0, 3.0].into())), &[3.0]));
        assert!(!knockout_holds(&rule(KnockoutTest::Missing), &[0.0]));
        assert!(Decision::Decline > Decision::Refer && Decision::Refer > Decision::Approve);
    }
}
