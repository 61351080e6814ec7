//! Model monitoring's engine (no I/O): schedule settings, baselines built by scoring a validation file, outcome
//! uploads, and a run that streams captured SageMaker records through drift, outcome and fairness accumulators
//! (`riskserve_monitor`) and turns their reports into breaches.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use riskserve_monitor::{
    Band, Baseline, BaselineBuilder, BaselineSpec, DriftAccumulator, DriftOptions, DriftReport, FairnessOptions,
    FeatureKind, FeatureSpec, MonitorError, OutcomeAccumulator, OutcomeOptions, OutcomeReport, Value,
};
use riskserve_pipeline::FieldType;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_csv, decode_json};
use crate::error::ServiceError;
use crate::scoring::{Cell, ScoreOptions, Scorer};

/// Rows scored at a time while a baseline is built.
const BASELINE_BATCH_ROWS: usize = 1_000;
/// The most outcomes one upload may carry.
pub const MAX_OUTCOMES_PER_UPLOAD: usize = 5_000_000;
/// The longest inference id (SageMaker's limit).
const MAX_INFERENCE_ID: usize = 64;

fn default_interval_minutes() -> u32 {
    60
}
fn default_window_hours() -> u32 {
    24
}
fn default_outcome_window_days() -> u32 {
    365
}
fn default_shift() -> f64 {
    0.1
}
fn default_major_shift() -> f64 {
    0.25
}
fn default_alpha() -> f64 {
    0.05
}
fn default_missing_increase() -> f64 {
    0.05
}
fn default_out_of_range() -> f64 {
    0.05
}
fn default_favourable() -> Vec<String> {
    vec!["approve".to_string()]
}
fn default_four_fifths() -> f64 {
    0.8
}
fn default_rate_gap() -> f64 {
    0.1
}

/// How an endpoint is monitored: when, over which captured data, and where its alert bands lie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MonitorSettings {
    /// Minutes between two runs (1 to 44,640: a month); the first run is due as soon as the schedule is set.
    #[serde(default = "default_interval_minutes")]
    pub interval_minutes: u32,
    /// Drift (PSI, CSI, missing and out-of-range rates) looks at the records captured in the last this many hours
    /// (1 to 8,784).
    #[serde(default = "default_window_hours")]
    pub window_hours: u32,
    /// Outcomes are joined with the records captured in the last this many days (1 to 3,660): outcomes mature
    /// months after the decision.
    #[serde(default = "default_outcome_window_days")]
    pub outcome_window_days: u32,
    /// A stability index at or above this is a shift (a warning; default 0.1).
    #[serde(default = "default_shift")]
    pub shift: f64,
    /// A stability index at or above this is a major shift (an alert; default 0.25).
    #[serde(default = "default_major_shift")]
    pub major_shift: f64,
    /// Significance of the calibration test per grade (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// A feature's missing rate above its baseline's by more than this is a warning (default 0.05).
    #[serde(default = "default_missing_increase")]
    pub max_missing_increase: f64,
    /// A numeric feature's share outside the baseline's range, or a categorical feature's share of unseen
    /// categories, above this is a warning (default 0.05).
    #[serde(default = "default_out_of_range")]
    pub max_out_of_range: f64,
    /// An AUC below this is an alert (none by default).
    #[serde(default)]
    pub min_auc: Option<f64>,
    /// The decisions that are favourable to the applicant (default `approve`), for fairness.
    #[serde(default = "default_favourable")]
    pub favourable_decisions: Vec<String>,
    /// Fairness on the attribute uploaded with the outcomes (which the model does not see); none when absent.
    #[serde(default)]
    pub fairness: Option<FairnessSettings>,
}

/// Fairness settings of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FairnessSettings {
    /// What the outcomes' `attribute` holds (a label for reports, such as `age_band`).
    pub attribute: String,
    /// The group adverse impact ratios divide by; none: the most favoured group.
    #[serde(default)]
    pub reference_group: Option<String>,
    /// A group whose adverse impact ratio is below this breaches the four-fifths rule (default 0.8): an alert.
    #[serde(default = "default_four_fifths")]
    pub four_fifths_threshold: f64,
    /// A gap of true- or false-positive rates between groups above this is a warning (default 0.1).
    #[serde(default = "default_rate_gap")]
    pub max_rate_gap: f64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every setting has a default"))
    }
}

fn fraction(name: &str, value: f64, low_open: bool) -> Result<(), ServiceError> {
    let fine = value.is_finite() && value <= 1.0 && if low_open { value > 0.0 } else { value >= 0.0 };
    if fine {
        Ok(())
    } else {
        let bound = if low_open { "above 0" } else { "at least 0" };
        Err(ServiceError::validation(format!("{name} must be {bound} and at most 1, not {value}")))
    }
}

impl MonitorSettings {
    /// Checks every setting's range, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let whole = |name: &str, value: u32, max: u32| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(ServiceError::validation(format!("{name} must be 1 to {max}, not {value}")))
            }
        };
        whole("interval_minutes", self.interval_minutes, 44_640)?;
        whole("window_hours", self.window_hours, 8_784)?;
        whole("outcome_window_days", self.outcome_window_days, 3_660)?;
        fraction("shift", self.shift, true)?;
        fraction("major_shift", self.major_shift, true)?;
        if self.major_shift <= self.shift {
            return Err(ServiceError::validation(format!(
                "major_shift ({}) must be above shift ({})",
                self.major_shift, self.shift
            )));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(ServiceError::validation(format!("alpha must be above 0 and below 0.5, not {}", self.alpha)));
        }
        fraction("max_missing_increase", self.max_missing_increase, false)?;
        fraction("max_out_of_range", self.max_out_of_range, false)?;
        if let Some(auc) = self.min_auc {
            fraction("min_auc", auc, false)?;
        }
        if self.favourable_decisions.is_empty() {
            return Err(ServiceError::validation("favourable_decisions must name at least one decision"));
        }
        if let Some(fairness) = &self.fairness {
            if fairness.attribute.trim().is_empty() {
                return Err(ServiceError::validation("fairness.attribute must name the attribute"));
            }
            fraction("fairness.four_fifths_threshold", fairness.four_fifths_threshold, true)?;
            fraction("fairness.max_rate_gap", fairness.max_rate_gap, false)?;
        }
        Ok(())
    }

    fn drift_options(&self) -> DriftOptions {
        DriftOptions { shift: self.shift, major_shift: self.major_shift, ..DriftOptions::default() }
    }

    fn outcome_options(&self) -> OutcomeOptions {
        let mut fairness = FairnessOptions::default();
        if let Some(settings) = &self.fairness {
            fairness.reference_group = settings.reference_group.clone();
            fairness.four_fifths_threshold = settings.four_fifths_threshold;
        }
        OutcomeOptions { alpha: self.alpha, fairness }
    }
}

/// An endpoint's baseline as stored: the statistics, and which model and file produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredBaseline {
    /// The variant whose model scored the file.
    pub variant: String,
    /// That variant's model.
    pub model: String,
    /// The file's outcome column, when it had one.
    pub outcome_column: Option<String>,
    /// The model's CSV answer columns (`probability`, `score`, `grade`, `decision`, or a bare model's values), to
    /// read captured CSV answers.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Per feature (the pipeline's input fields, in their CSV order) bins, the score's distribution and the bad
    /// rate per grade.
    pub baseline: Baseline,
}

fn kind_of(field: FieldType) -> FeatureKind {
    match field {
        FieldType::Numeric => FeatureKind::Numeric,
        FieldType::Categorical | FieldType::Boolean => FeatureKind::Categorical,
    }
}

/// A cell as monitoring sees it: numeric features read numbers (text that is not one is missing), categorical
/// features read text (booleans as `true`/`false`).
fn value_of(cell: &Cell<'_>, kind: FeatureKind) -> Value {
    match (kind, cell) {
        (_, Cell::Missing) => Value::Missing,
        (FeatureKind::Numeric, Cell::Number(number)) => Value::Number(*number),
        (FeatureKind::Numeric, Cell::Bool(flag)) => Value::Number(f64::from(u8::from(*flag))),
        (FeatureKind::Numeric, Cell::Text(text)) => text.trim().parse::<f64>().map_or(Value::Missing, Value::Number),
        (FeatureKind::Categorical, Cell::Text(text)) => Value::Text(text.to_string()),
        (FeatureKind::Categorical, Cell::Bool(flag)) => Value::Text(flag.to_string()),
        (FeatureKind::Categorical, Cell::Number(number)) => Value::Text(number.to_string()),
    }
}

/// The probability of bad an outcome reports: the pipeline's calibrated probability, else a bare model's one value
/// when it is a probability.
fn probability_of(probability: Option<f64>, values: &[f64]) -> Option<f64> {
    probability.or(match values {
        [value] if (0.0..=1.0).contains(value) => Some(*value),
        _ => None,
    })
}

/// An outcome cell: 1/0, true/false, bad/good.
fn parse_outcome(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "bad" | "1.0" => Some(true),
        "0" | "false" | "good" | "0.0" => Some(false),
        _ => None,
    }
}

/// Builds a baseline by scoring a CSV file (a header naming every input field of the scorer; an optional outcome
/// column of 1/0, true/false or bad/good, empty when unknown) with the endpoint's model, as it serves.
pub fn build_baseline(
    scorer: &Scorer,
    body: &[u8],
    outcome_column: Option<&str>,
    bins: usize,
) -> Result<Baseline, ServiceError> {
    let fields = scorer.fields();
    let spec = BaselineSpec {
        features: fields
            .iter()
            .map(|field| FeatureSpec { name: field.name.clone(), kind: kind_of(field.kind) })
            .collect(),
        bins,
        grades: scorer.grades().to_vec(),
    };
    let mut builder = BaselineBuilder::new(spec).map_err(|error| ServiceError::validation(error.to_string()))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    let header = reader
        .headers()
        .map_err(|error| ServiceError::validation(format!("the baseline file's header cannot be read: {error}")))?
        .clone();
    let position = |name: &str| header.iter().position(|column| column.trim() == name);
    let mut missing_fields = Vec::new();
    let columns: Vec<usize> = fields
        .iter()
        .filter_map(|field| {
            let found = position(&field.name);
            if found.is_none() {
                missing_fields.push(field.name.as_str());
            }
            found
        })
        .collect();
    if !missing_fields.is_empty() {
        return Err(ServiceError::validation(format!(
            "the baseline file's header lacks the model's input fields {}",
            missing_fields.join(", ")
        )));
    }
    let outcome_at = match outcome_column {
        Some(name) => Some(
            position(name)
                .ok_or_else(|| ServiceError::validation(format!("the baseline file has no outcome column {name:?}")))?,
        ),
        None => None,
    };
    let kinds: Vec<FeatureKind> = fields.iter().map(|field| kind_of(field.kind)).collect();
    let mut records: Vec<(u64, csv::StringRecord)> = Vec::with_capacity(BASELINE_BATCH_ROWS);
    let mut flush = |records: &mut Vec<(u64, csv::StringRecord)>| -> Result<(), ServiceError> {
        let rows: Vec<Vec<Cell<'_>>> = records
            .iter()
            .map(|(_, record)| {
                columns
                    .iter()
                    .map(|&column| {
                        let text = record.get(column).unwrap_or("");
                        if text.trim().is_empty() { Cell::Missing } else { Cell::Text(Cow::Borrowed(text)) }
                    })
                    .collect()
            })
            .collect();
        let outcomes = scorer.score_batch(&rows, &ScoreOptions::default()).map_err(|errors| {
            let first = &errors[0];
            let line = records.get(first.row).map_or(0, |(line, _)| *line);
            ServiceError::InvalidInput(format!(
                "baseline file line {line}, field `{}`: {} ({} rows of the file cannot be scored in this batch)",
                first.field,
                first.message,
                errors.len()
            ))
        })?;
        for ((line, record), (row, outcome)) in records.iter().zip(rows.iter().zip(&outcomes)) {
            let values: Vec<Value> = row.iter().zip(&kinds).map(|(cell, kind)| value_of(cell, *kind)).collect();
            let bad = match outcome_at.map(|at| record.get(at).unwrap_or("")) {
                None => None,
                Some(text) if text.trim().is_empty() => None,
                Some(text) => Some(parse_outcome(text).ok_or_else(|| {
                    ServiceError::validation(format!(
                        "baseline file line {line}: the outcome {text:?} is not 1/0, true/false or bad/good"
                    ))
                })?),
            };
            let probability = probability_of(outcome.probability, &outcome.values);
            builder
                .add_row(&values, probability, outcome.grade.as_deref(), bad)
                .map_err(|error| ServiceError::validation(format!("baseline file line {line}: {error}")))?;
        }
        records.clear();
        Ok(())
    };
    for record in reader.records() {
        let record = record.map_err(|error| ServiceError::validation(format!("the baseline file: {error}")))?;
        let line = record.position().map_or(0, csv::Position::line);
        records.push((line, record));
        if records.len() == BASELINE_BATCH_ROWS {
            flush(&mut records)?;
        }
    }
    flush(&mut records)?;
    if builder.rows() == 0 {
        return Err(ServiceError::validation("the baseline file holds no rows"));
    }
    builder.finish().map_err(|error| ServiceError::validation(error.to_string()))
}

/// Checks an inference id as invocations do: 1 to 64 printable ASCII characters.
fn check_inference_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_INFERENCE_ID || !id.bytes().all(|byte| (0x20..0x7f).contains(&byte)) {
        return Err(format!("the inference id {id:?} is not 1 to {MAX_INFERENCE_ID} printable ASCII characters"));
    }
    Ok(())
}

/// One outcome as uploaded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeLine {
    inference_id: String,
    #[serde(default)]
    row: u32,
    bad: OutcomeValue,
    #[serde(default)]
    attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum OutcomeValue {
    Flag(bool),
    Number(f64),
    Text(String),
}

impl OutcomeValue {
    fn bad(&self) -> Option<bool> {
        match self {
            OutcomeValue::Flag(flag) => Some(*flag),
            OutcomeValue::Number(number) if *number == 1.0 => Some(true),
            OutcomeValue::Number(number) if *number == 0.0 => Some(false),
            OutcomeValue::Number(_) => None,
            OutcomeValue::Text(text) => parse_outcome(text),
        }
    }
}

/// Reads an outcome upload: CSV with a header (`inference_id`, `bad`, optional `row` and `attribute`) or JSON
/// Lines of the same keys. Every malformed line is refused with its number; a key given twice keeps its last line.
pub fn parse_outcomes(body: &[u8], json_lines: bool) -> Result<Vec<riskserve_store::OutcomeRecord>, ServiceError> {
    let mut outcomes: Vec<riskserve_store::OutcomeRecord> = Vec::new();
    let mut push = |line: u64, id: String, row: u32, bad: Option<bool>, attribute: Option<String>| {
        check_inference_id(&id)
            .map_err(|message| ServiceError::validation(format!("outcomes line {line}: {message}")))?;
        let bad = bad.ok_or_else(|| {
            ServiceError::validation(format!("outcomes line {line}: `bad` must be 1/0, true/false or bad/good"))
        })?;
        if outcomes.len() == MAX_OUTCOMES_PER_UPLOAD {
            return Err(ServiceError::validation(format!(
                "an upload holds at most {MAX_OUTCOMES_PER_UPLOAD} outcomes; split the file"
            )));
        }
        let attribute = attribute.filter(|value| !value.is_empty());
        outcomes.push(riskserve_store::OutcomeRecord { inference_id: id, row_index: row, bad, attribute });
        Ok::<(), ServiceError>(())
    };
    if json_lines {
        let text = std::str::from_utf8(body).map_err(|error| {
            ServiceError::validation(format!("the outcomes are not UTF-8 (byte {})", error.valid_up_to()))
        })?;
        for (index, line) in text.lines().enumerate() {
            let number = index as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: OutcomeLine = serde_json::from_str(line)
                .map_err(|error| ServiceError::validation(format!("outcomes line {number}: {error}")))?;
            push(number, parsed.inference_id, parsed.row, parsed.bad.bad(), parsed.attribute)?;
        }
    } else {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
        let header = reader
            .headers()
            .map_err(|error| ServiceError::validation(format!("the outcomes' header cannot be read: {error}")))?
            .clone();
        let position = |name: &str| header.iter().position(|column| column.trim() == name);
        let (Some(id_at), Some(bad_at)) = (position("inference_id"), position("bad")) else {
            return Err(ServiceError::validation(
                "the outcomes' header must name the columns inference_id and bad (row and attribute are optional)",
            ));
        };
        let (row_at, attribute_at) = (position("row"), position("attribute"));
        for record in reader.records() {
            let record = record.map_err(|error| ServiceError::validation(format!("the outcomes: {error}")))?;
            let line = record.position().map_or(0, csv::Position::line);
            let row = match row_at.map(|at| record.get(at).unwrap_or("").trim()) {
                None | Some("") => 0,
                Some(text) => text.parse::<u32>().map_err(|_| {
                    ServiceError::validation(format!("outcomes line {line}: the row {text:?} is not a row number"))
                })?,
            };
            let id = record.get(id_at).unwrap_or("").trim().to_string();
            let bad = parse_outcome(record.get(bad_at).unwrap_or(""));
            let attribute = attribute_at.and_then(|at| record.get(at)).map(|text| text.trim().to_string());
            push(line, id, row, bad, attribute)?;
        }
    }
    if outcomes.is_empty() {
        return Err(ServiceError::validation("the upload holds no outcomes"));
    }
    // The last line of a key wins (one statement must not touch a row twice).
    let mut last: HashMap<(&str, u32), usize> = HashMap::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.iter().enumerate() {
        last.insert((outcome.inference_id.as_str(), outcome.row_index), index);
    }
    if last.len() == outcomes.len() {
        return Ok(outcomes);
    }
    let keep: std::collections::HashSet<usize> = last.into_values().collect();
    Ok(outcomes.into_iter().enumerate().filter(|(index, _)| keep.contains(index)).map(|(_, outcome)| outcome).collect())
}

/// One outcome waiting to be joined.
#[derive(Debug)]
struct OutcomeSlot {
    row: u32,
    bad: bool,
    attribute: Option<Box<str>>,
    joined: bool,
}

/// An endpoint's outcomes by inference id, for the join.
#[derive(Debug, Default)]
pub struct OutcomeIndex {
    by_id: HashMap<Box<str>, Vec<OutcomeSlot>>,
    count: u64,
}

impl OutcomeIndex {
    pub fn add(&mut self, outcome: riskserve_store::OutcomeRecord) {
        self.count += 1;
        self.by_id.entry(outcome.inference_id.into_boxed_str()).or_default().push(OutcomeSlot {
            row: outcome.row_index,
            bad: outcome.bad,
            attribute: outcome.attribute.map(String::into_boxed_str),
            joined: false,
        });
    }
}

/// A time range in milliseconds since the epoch, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    fn holds(&self, millis: i64) -> bool {
        (self.from..self.to).contains(&millis)
    }
}

/// Records a run skipped, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Lines that are not a capture record, or whose input or output does not decode.
    pub malformed: u64,
    /// Records captured without their input (drift needs it).
    pub without_input: u64,
    /// Records captured without their output (every statistic needs the probability).
    pub without_output: u64,
    /// Records outside both windows.
    pub outside_windows: u64,
}

/// One breach of an alert band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// `score_psi`, `feature_csi`, `missing_rate`, `out_of_range`, `unseen_categories`, `auc`, `calibration`,
    /// `four_fifths`, `true_positive_rate_gap` or `false_positive_rate_gap`.
    pub metric: String,
    /// What breached: `score`, a feature, a grade or a group.
    pub subject: String,
    pub value: f64,
    pub threshold: f64,
    /// `warning` or `alert`.
    pub severity: String,
}

/// The statistics of one run, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub files: u64,
    pub records: u64,
    pub rows: u64,
    pub skipped: Skipped,
    pub drift: DriftReport,
    pub outcomes: Option<OutcomeReport>,
    /// Outcomes joined with a captured row.
    pub outcomes_joined: u64,
    /// Uploaded outcomes whose inference id and row matched no record of the outcome window.
    pub outcomes_unmatched: u64,
    pub breaches: Vec<Breach>,
}

/// The capture record fields a run reads.
#[derive(Deserialize)]
struct CaptureLine<'a> {
    #[serde(rename = "captureData", borrow)]
    capture: CaptureBodies<'a>,
    #[serde(rename = "eventMetadata", borrow)]
    metadata: EventMetadata<'a>,
}

#[derive(Deserialize)]
struct CaptureBodies<'a> {
    #[serde(rename = "endpointInput", borrow, default)]
    input: Option<CapturedBody<'a>>,
    #[serde(rename = "endpointOutput", borrow, default)]
    output: Option<CapturedBody<'a>>,
}

#[derive(Deserialize)]
struct CapturedBody<'a> {
    #[serde(rename = "observedContentType", borrow)]
    content_type: Cow<'a, str>,
    #[serde(borrow)]
    data: Cow<'a, str>,
    #[serde(borrow)]
    encoding: Cow<'a, str>,
}

impl CapturedBody<'_> {
    fn bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self.encoding.as_ref() {
            "BASE64" => BASE64.decode(self.data.as_bytes()).ok().map(Cow::Owned),
            _ => Some(Cow::Borrowed(self.data.as_bytes())),
        }
    }
}

#[derive(Deserialize)]
struct EventMetadata<'a> {
    #[serde(rename = "inferenceId", borrow, default)]
    inference_id: Option<Cow<'a, str>>,
    #[serde(rename = "inferenceTime", borrow)]
    time: Cow<'a, str>,
}

/// What a prediction in a captured answer says.
#[derive(Deserialize)]
struct CapturedPrediction<'a> {
    #[serde(default)]
    values: Vec<f64>,
    #[serde(default)]
    probability: Option<f64>,
    #[serde(default, borrow)]
    grade: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    decision: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CapturedAnswer<'a> {
    #[serde(borrow)]
    predictions: Vec<CapturedPrediction<'a>>,
}

/// What monitoring reads of one answered row.
struct Prediction<'a> {
    probability: Option<f64>,
    grade: Option<Cow<'a, str>>,
    decision: Option<Cow<'a, str>>,
}

/// A captured answer's rows: native JSON (`{"predictions": [...]}`) or CSV lines of the model's output columns.
fn read_answer<'b>(bytes: &'b [u8], content_type: &str, outputs: &[String]) -> Option<Vec<Prediction<'b>>> {
    if content_type.contains("json") {
        let answer: CapturedAnswer<'b> = serde_json::from_slice(bytes).ok()?;
        return Some(
            answer
                .predictions
                .into_iter()
                .map(|prediction| Prediction {
                    probability: probability_of(prediction.probability, &prediction.values),
                    grade: prediction.grade,
                    decision: prediction.decision,
                })
                .collect(),
        );
    }
    if !content_type.contains("csv") || outputs.is_empty() {
        return None;
    }
    let column = |name: &str| outputs.iter().position(|output| output == name);
    let (probability_at, grade_at, decision_at) = (column("probability"), column("grade"), column("decision"));
    let rows = decode_csv(bytes, outputs).ok()?;
    let text = |row: &[Cell<'b>], at: Option<usize>| -> Option<Cow<'b, str>> {
        match row.get(at?)? {
            Cell::Text(text) => Some(text.clone()),
            _ => None,
        }
    };
    rows.into_iter()
        .map(|row| {
            let number = |at: usize| text(&row, Some(at)).and_then(|cell| cell.trim().parse::<f64>().ok());
            let probability = match probability_at {
                Some(at) => Some(number(at)?),
                // A bare model's one value column.
                None if row.len() == 1 => probability_of(None, &[number(0)?]),
                None => None,
            };
            Some(Prediction { probability, grade: text(&row, grade_at), decision: text(&row, decision_at) })
        })
        .collect()
}

/// A run in progress: feed it capture files (`add_file`), then `finish`.
pub struct Run<'a> {
    baseline: &'a Baseline,
    outputs: &'a [String],
    settings: &'a MonitorSettings,
    drift_window: Window,
    outcome_window: Window,
    outcomes: &'a mut OutcomeIndex,
    drift: DriftAccumulator,
    labelled: OutcomeAccumulator,
    fields: Vec<String>,
    kinds: Vec<FeatureKind>,
    files: u64,
    records: u64,
    rows: u64,
    skipped: Skipped,
    joined: u64,
    values: Vec<Value>,
}

impl<'a> Run<'a> {
    pub fn new(
        stored: &'a StoredBaseline,
        settings: &'a MonitorSettings,
        drift_window: Window,
        outcome_window: Window,
        outcomes: &'a mut OutcomeIndex,
    ) -> Result<Run<'a>, ServiceError> {
        let baseline = &stored.baseline;
        let invalid = |error: MonitorError| ServiceError::internal(format!("the stored baseline is unusable: {error}"));
        let drift = DriftAccumulator::with_options(baseline, settings.drift_options()).map_err(invalid)?;
        let labelled = OutcomeAccumulator::from_baseline(baseline, settings.outcome_options()).map_err(invalid)?;
        Ok(Run {
            baseline,
            outputs: &stored.outputs,
            settings,
            drift_window,
            outcome_window,
            outcomes,
            drift,
            labelled,
            fields: baseline.spec.features.iter().map(|feature| feature.name.clone()).collect(),
            kinds: baseline.spec.features.iter().map(|feature| feature.kind).collect(),
            files: 0,
            records: 0,
            rows: 0,
            skipped: Skipped::default(),
            joined: 0,
            values: Vec::new(),
        })
    }

    /// Reads one capture file (JSON Lines); lines that are not capture records are counted, never fatal.
    pub fn add_file(&mut self, text: &[u8]) {
        self.files += 1;
        for line in text.split(|byte| *byte == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.records += 1;
            if self.add_record(line).is_none() {
                self.skipped.malformed += 1;
            }
        }
    }

    /// One record; `None` when it is malformed.
    fn add_record(&mut self, line: &[u8]) -> Option<()> {
        let record: CaptureLine<'_> = serde_json::from_slice(line).ok()?;
        let millis = crate::history::parse_time(&record.metadata.time, "inferenceTime").ok()?.checked_mul(1000)?;
        let in_drift = self.drift_window.holds(millis);
        let in_outcomes = self.outcome_window.holds(millis) && record.metadata.inference_id.is_some();
        if !in_drift && !in_outcomes {
            self.skipped.outside_windows += 1;
            return Some(());
        }
        let Some(output) = &record.capture.output else {
            self.skipped.without_output += 1;
            return Some(());
        };
        let answer_bytes = output.bytes()?;
        let predictions = read_answer(&answer_bytes, &output.content_type.to_ascii_lowercase(), self.outputs)?;
        let input_bytes = match &record.capture.input {
            Some(input) if in_drift => Some((input.bytes()?, input.content_type.to_ascii_lowercase())),
            Some(_) => None,
            None => {
                self.skipped.without_input += 1;
                None
            }
        };
        let rows = match &input_bytes {
            Some((bytes, content_type)) => Some(decode_rows(bytes, content_type, &self.fields)?),
            None => None,
        };
        if let Some(rows) = &rows
            && rows.len() != predictions.len()
        {
            return None;
        }
        self.rows += predictions.len() as u64;
        for (index, prediction) in predictions.iter().enumerate() {
            let probability = prediction.probability;
            if in_drift && let Some(rows) = &rows {
                self.values.clear();
                self.values.extend(rows[index].iter().zip(&self.kinds).map(|(cell, kind)| value_of(cell, *kind)));
                self.drift.add_row(&self.values, probability).ok()?;
            }
            if in_outcomes
                && let (Some(id), Some(probability)) = (&record.metadata.inference_id, probability)
                && let Some(slots) = self.outcomes.by_id.get_mut(id.as_ref())
                && let Some(slot) = slots.iter_mut().find(|slot| slot.row as usize == index && !slot.joined)
            {
                slot.joined = true;
                self.joined += 1;
                let favourable = prediction
                    .decision
                    .as_ref()
                    .map(|decision| self.settings.favourable_decisions.iter().any(|d| d == decision));
                let attribute = if self.settings.fairness.is_some() { slot.attribute.as_deref() } else { None };
                let grade = prediction.grade.as_deref();
                if self.labelled.add(probability, slot.bad, grade, attribute, favourable).is_err() {
                    // A grade the baseline does not know (the master scale changed): still counts, ungraded.
                    self.labelled.add(probability, slot.bad, None, attribute, favourable).ok()?;
                }
            }
        }
        Some(())
    }

    /// The run's statistics and breaches.
    pub fn finish(self) -> RunResult {
        let drift = self.drift.finish();
        let outcomes = (self.labelled.rows() > 0).then(|| self.labelled.finish());
        let breaches = breaches(self.baseline, self.settings, &drift, outcomes.as_ref());
        RunResult {
            files: self.files,
            records: self.records,
            rows: self.rows,
            skipped: self.skipped,
            drift,
            outcomes,
            outcomes_joined: self.joined,
            outcomes_unmatched: self.outcomes.count - self.joined,
            breaches,
        }
    }
}

/// A captured input's rows, by its content type (CSV or JSON, as invocations decode them).
fn decode_rows<'b>(bytes: &'b [u8], content_type: &str, fields: &[String]) -> Option<Vec<Vec<Cell<'b>>>> {
    if content_type.contains("csv") {
        decode_csv(bytes, fields).ok()
    } else if content_type.contains("json") {
        decode_json(bytes, fields).ok()
    } else {
        None
    }
}

fn breach(metric: &str, subject: &str, value: f64, threshold: f64, severity: &str) -> Breach {
    Breach {
        metric: metric.to_string(),
        subject: subject.to_string(),
        value,
        threshold,
        severity: severity.to_string(),
    }
}

/// Every alert band a run's statistics cross.
fn breaches(
    baseline: &Baseline,
    settings: &MonitorSettings,
    drift: &DriftReport,
    outcomes: Option<&OutcomeReport>,
) -> Vec<Breach> {
    let mut found = Vec::new();
    let mut stability = |metric: &str, subject: &str, index: Option<f64>, band: Option<Band>| match (index, band) {
        (Some(index), Some(Band::MajorShift)) => {
            found.push(breach(metric, subject, index, settings.major_shift, "alert"));
        }
        (Some(index), Some(Band::Shift)) => found.push(breach(metric, subject, index, settings.shift, "warning")),
        _ => {}
    };
    stability("score_psi", "score", drift.score.index, drift.score.band);
    for feature in &drift.features {
        stability("feature_csi", &feature.name, feature.stability.index, feature.stability.band);
    }
    for (feature, expected) in drift.features.iter().zip(&baseline.features) {
        let expected_missing = match expected {
            riskserve_monitor::FeatureBaseline::Numeric { distribution, .. } => distribution.missing_proportion,
            riskserve_monitor::FeatureBaseline::Categorical { distribution, .. } => distribution.missing_proportion,
        };
        if let Some(rate) = feature.missing_rate
            && rate - expected_missing > settings.max_missing_increase
        {
            let threshold = expected_missing + settings.max_missing_increase;
            found.push(breach("missing_rate", &feature.name, rate, threshold, "warning"));
        }
        let out_of_range = match (feature.below_min_rate, feature.above_max_rate) {
            (Some(below), Some(above)) => Some(below + above),
            _ => None,
        };
        if let Some(rate) = out_of_range
            && rate > settings.max_out_of_range
        {
            found.push(breach("out_of_range", &feature.name, rate, settings.max_out_of_range, "warning"));
        }
        if let Some(rate) = feature.unseen_rate
            && rate > settings.max_out_of_range
        {
            found.push(breach("unseen_categories", &feature.name, rate, settings.max_out_of_range, "warning"));
        }
    }
    let Some(outcomes) = outcomes else { return found };
    if let (Some(auc), Some(minimum)) = (outcomes.auc, settings.min_auc)
        && auc < minimum
    {
        found.push(breach("auc", "score", auc, minimum, "alert"));
    }
    for grade in &outcomes.grades {
        if grade.breach {
            let observed = grade.observed_bad_rate.unwrap_or(f64::NAN);
            found.push(breach("calibration", &grade.grade, observed, settings.alpha, "alert"));
        }
    }
    if let Some(fairness) = &settings.fairness {
        for group in &outcomes.fairness.groups {
            if group.four_fifths_breach {
                let ratio = group.adverse_impact_ratio.unwrap_or(f64::NAN);
                found.push(breach("four_fifths", &group.group, ratio, fairness.four_fifths_threshold, "alert"));
            }
        }
        let gaps = [
            ("true_positive_rate_gap", outcomes.fairness.true_positive_rate_gap),
            ("false_positive_rate_gap", outcomes.fairness.false_positive_rate_gap),
        ];
        for (metric, gap) in gaps {
            if let Some(gap) = gap
                && gap > fairness.max_rate_gap
            {
                found.push(breach(metric, &fairness.attribute, gap, fairness.max_rate_gap, "warning"));
            }
        }
    }
    // A NaN value (no rate) must not reach JSON, which has none.
    for item in &mut found {
        if !item.value.is_finite() {
            item.value = item.threshold;
        }
    }
    found
}

/// The hour a capture file's key names (`…/yyyy/mm/dd/hh/file`), as milliseconds since the epoch; `None` for a
/// key of another shape.
pub fn capture_file_hour(key: &str) -> Option<i64> {
    let mut parts = key.rsplit('/');
    let _file = parts.next()?;
    let hour = parts.next()?;
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let text = format!("{year}-{month}-{day}T{hour}:00:00Z");
    if [year.len(), month.len(), day.len(), hour.len()] != [4, 2, 2, 2] {
        return None;
    }
    crate::history::parse_time(&text, "hour").ok().map(|seconds| seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredBaseline {
        let spec = BaselineSpec {
            features: vec![
                FeatureSpec { name: "income".into(), kind: FeatureKind::Numeric },
                FeatureSpec { name: "region".into(), kind: FeatureKind::Categorical },
            ],
            bins: 4,
            grades: vec!["A".into(), "B".into()],
        };
        let mut builder = BaselineBuilder::new(spec).unwrap();
        for i in 0..400 {
            let region = if i % 2 == 0 { "north" } else { "south" };
            let p = f64::from(i % 100) / 100.0;
            let grade = if p < 0.5 { "A" } else { "B" };
            builder
                .add_row(
                    &[Value::Number(f64::from(i)), Value::Text(region.into())],
                    Some(p),
                    Some(grade),
                    Some(i % 3 == 0),
                )
                .unwrap();
        }
        StoredBaseline {
            variant: "main".into(),
            model: "m".into(),
            outcome_column: Some("bad".into()),
            outputs: vec!["probability".into(), "score".into(), "grade".into(), "decision".into()],
            baseline: builder.finish().unwrap(),
        }
    }

    fn line(input: &str, output: &str, id: Option<&str>, time: &str) -> String {
        let mut metadata = serde_json::json!({"eventId": "e", "inferenceTime": time});
        if let Some(id) = id {
            metadata["inferenceId"] = id.into();
        }
        serde_json::json!({
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": input, "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": output, "encoding": "CSV"},
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        })
        .to_string()
    }

    const NOW: &str = "2026-12-07T12:00:00.000Z";

    fn windows() -> (Window, Window) {
        let now = crate::history::parse_time(NOW, "now").unwrap() * 1000 + 1000;
        (Window { from: now - 3_600_000, to: now }, Window { from: now - 86_400_000 * 30, to: now })
    }

    #[test]
    fn settings_are_checked_by_name() {
        assert!(MonitorSettings::default().validate().is_ok());
        let bad = |json: serde_json::Value| {
            let settings: MonitorSettings = serde_json::from_value(json).unwrap();
            settings.validate().unwrap_err().to_string()
        };
        assert!(bad(serde_json::json!({"interval_minutes": 0})).contains("interval_minutes"));
        assert!(bad(serde_json::json!({"shift": 0.3})).contains("major_shift"));
        assert!(bad(serde_json::json!({"alpha": 0.7})).contains("alpha"));
        assert!(bad(serde_json::json!({"favourable_decisions": []})).contains("favourable_decisions"));
        assert!(bad(serde_json::json!({"fairness": {"attribute": " "}})).contains("fairness.attribute"));
        assert!(bad(serde_json::json!({"max_out_of_range": f64::MAX})).contains("max_out_of_range"));
        assert!(serde_json::from_str::<MonitorSettings>("{\"intervall\": 5}").is_err());
    }

    #[test]
    fn outcome_uploads_name_the_bad_line_and_keep_the_last_of_a_key() {
        let outcomes = parse_outcomes(b"inference_id,bad,row,attribute\na,1,0,f\nb,good,2,\na,0,0,m\n", false).unwrap();
        assert_eq!(outcomes.len(), 2);
        let a = outcomes.iter().find(|outcome| outcome.inference_id == "a").unwrap();
        assert_eq!((a.bad, a.attribute.as_deref()), (false, Some("m")));
        let b = outcomes.iter().find(|outcome| outcome.inference_id == "b").unwrap();
        assert_eq!((b.bad, b.row_index, b.attribute.as_deref()), (false, 2, None));
        let lines = b"{\"inference_id\":\"x\",\"bad\":true}\n\n{\"inference_id\":\"y\",\"bad\":\"bad\",\"row\":3}\n";
        assert_eq!(parse_outcomes(lines, true).unwrap().len(), 2);
        for (body, json, expected) in [
            (&b"inference_id,bad\na,1\nb,2\n"[..], false, "line 3"),
            (b"inference_id,bad\n,1\n", false, "line 2"),
            (b"inference_id,bad,row\na,1,x\n", false, "line 2"),
            (b"inference_id\na\n", false, "inference_id and bad"),
            (b"inference_id,bad\n", false, "no outcomes"),
            (b"{\"inference_id\":\"a\",\"bad\":1}\n{\"bad\":1}\n", true, "line 2"),
            (b"{\"inference_id\":\"a\",\"bad\":0.5}\n", true, "line 1"),
            (b"\xff\n", true, "UTF-8"),
        ] {
            let error = parse_outcomes(body, json).unwrap_err().to_string();
            assert!(error.contains(expected), "{:?}: {error}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn capture_file_hours_come_from_the_key() {
        let hour = capture_file_hour("data-capture/credit/main/2026/12/07/13/00-01-002-r-1.jsonl").unwrap();
        assert_eq!(hour, crate::history::parse_time("2026-12-07T13:00:00Z", "t").unwrap() * 1000);
        assert_eq!(capture_file_hour("data-capture/credit/main/notes.txt"), None);
        assert_eq!(capture_file_hour("a/2026/1/07/13/f"), None);
    }

    #[test]
    fn answers_are_read_as_json_or_by_the_output_columns() {
        let outputs: Vec<String> = ["probability", "score", "grade", "decision"].map(String::from).to_vec();
        let rows = read_answer(b"0.25,600,A,approve\n0.75,500,B,decline\n", "text/csv", &outputs).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].probability, rows[1].grade.as_deref()), (Some(0.75), Some("B")));
        assert_eq!(rows[0].decision.as_deref(), Some("approve"));
        let json = br#"{"predictions":[{"values":[1.2],"probability":0.3,"grade":"A"},{"values":[0.4]}]}"#;
        let rows = read_answer(json, "application/json", &[]).unwrap();
        assert_eq!((rows[0].probability, rows[1].probability), (Some(0.3), Some(0.4)));
        let bare = read_answer(b"0.125\n", "text/csv", &["probability_1".to_string()]).unwrap();
        assert_eq!(bare[0].probability, Some(0.125));
        assert!(read_answer(b"0.1,2\n", "text/csv", &outputs).is_none(), "a line of the wrong width");
        assert!(read_answer(b"x", "application/octet-stream", &outputs).is_none());
    }

    #[test]
    fn a_run_counts_what_it_cannot_read_and_joins_each_outcome_once() {
        let stored = stored();
        let settings = MonitorSettings::default();
        let (drift, outcomes) = windows();
        let mut index = OutcomeIndex::default();
        for (id, row, bad) in [("a", 0, true), ("a", 1, false), ("b", 0, false), ("ghost", 0, true)] {
            index.add(riskserve_store::OutcomeRecord { inference_id: id.into(), row_index: row, bad, attribute: None });
        }
        let mut run = Run::new(&stored, &settings, drift, outcomes, &mut index).unwrap();
        let file = [
            line("10,north\n300,south\n", "0.2,600,A,approve\n0.7,500,B,decline\n", Some("a"), NOW),
            // The same id again: its outcomes are already joined.
            line("10,north\n300,south\n", "0.2,600,A,approve\n0.7,500,B,decline\n", Some("a"), NOW),
            line("50,west\n", "0.4,580,A,approve\n", Some("b"), NOW),
            "not json".to_string(),
            line("1,2,3\n", "0.1,1,A,approve\n", None, NOW),
            line("1,north\n", "0.1,1,A,approve\n0.2,1,A,approve\n", None, NOW),
            line("1,north\n", "0.1,1,A,approve\n", None, "2020-01-01T00:00:00Z"),
        ]
        .join("\n");
        run.add_file(file.as_bytes());
        let result = run.finish();
        assert_eq!((result.files, result.records), (1, 7));
        assert_eq!(result.skipped.malformed, 3, "not JSON, a row of the wrong width, a count mismatch");
        assert_eq!(result.skipped.outside_windows, 1);
        assert_eq!(result.rows, 5);
        assert_eq!((result.outcomes_joined, result.outcomes_unmatched), (3, 1));
        assert_eq!(result.drift.rows, 5);
        let outcomes = result.outcomes.unwrap();
        assert_eq!((outcomes.rows, outcomes.bad), (3, 1));
        assert_eq!(result.drift.features[1].unseen_rate, Some(0.2), "west is not a baseline region");
    }

    #[test]
    fn breaches_follow_the_bands() {
        let stored = stored();
        let settings = MonitorSettings { min_auc: Some(0.99), ..MonitorSettings::default() };
        let (drift, outcomes) = windows();
        let mut index = OutcomeIndex::default();
        let mut lines = Vec::new();
        for i in 0..200 {
            let id = format!("id-{i}");
            // Incomes far above the baseline's, one region only; outcomes unrelated to the score.
            lines.push(line(
                &format!("{},north\n", 10_000 + i),
                &format!("{},600,A,approve\n", f64::from(i % 50) / 100.0),
                Some(&id),
                NOW,
            ));
            index.add(riskserve_store::OutcomeRecord {
                inference_id: id,
                row_index: 0,
                bad: i % 2 == 0,
                attribute: None,
            });
        }
        let mut run = Run::new(&stored, &settings, drift, outcomes, &mut index).unwrap();
        run.add_file(lines.join("\n").as_bytes());
        let result = run.finish();
        let found = |metric: &str, subject: &str| {
            result.breaches.iter().find(|breach| breach.metric == metric && breach.subject == subject)
        };
        assert_eq!(found("feature_csi", "income").unwrap().severity, "alert");
        assert_eq!(found("out_of_range", "income").unwrap().value, 1.0);
        assert_eq!(found("feature_csi", "region").unwrap().severity, "alert");
        assert_eq!(found("auc", "score").unwrap().threshold, 0.99);
        assert!(found("calibration", "A").is_some(), "{:?}", result.breaches);
        assert!(found("missing_rate", "income").is_none());
    }

    /// Mutated capture files and outcome uploads (bytes flipped, cut, duplicated, random) never panic: every line is
    /// either read or counted, every upload either parsed or refused.
    #[test]
    fn mutated_inputs_are_counted_or_refused_never_a_panic() {
        let stored = stored();
        let settings = MonitorSettings::default();
        let (drift, outcomes) = windows();
        let valid = [
            line("10,north\n300,south\n", "0.2,600,A,approve\n0.7,500,B,decline\n", Some("a"), NOW),
            line("50,\"we,st\"\n", "0.4,580,A,approve\n", None, NOW),
        ]
        .join("\n");
        let upload = b"inference_id,bad,row,attribute\na,1,0,f\nb,0,1,m\n".to_vec();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3_000 {
            let source = if round % 2 == 0 { valid.as_bytes().to_vec() } else { upload.clone() };
            let mut bytes = source.clone();
            for _ in 0..1 + next() % 6 {
                let at = (next() as usize) % bytes.len().max(1);
                match next() % 4 {
                    0 if !bytes.is_empty() => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    2 => bytes.splice(at..at, source[..at.min(source.len())].iter().copied()).for_each(drop),
                    _ => bytes.insert(at.min(bytes.len()), b"\"{}[],:\n\\"[(next() % 9) as usize]),
                }
            }
            let mut index = OutcomeIndex::default();
            index.add(riskserve_store::OutcomeRecord {
                inference_id: "a".into(),
                row_index: 0,
                bad: true,
                attribute: None,
            });
            let mut run = Run::new(&stored, &settings, drift, outcomes, &mut index).unwrap();
            run.add_file(&bytes);
            let result = run.finish();
            let lines = bytes.split(|byte| *byte == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace));
            assert_eq!(result.records, lines.count() as u64);
            assert!(result.outcomes_joined <= 1);
            let _ = parse_outcomes(&bytes, round % 3 == 0);
        }
    }
}
