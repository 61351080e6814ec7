//! Importer for PMML 4.x `Scorecard` models: the data dictionary, mining schema, output fields,
//! characteristics, attributes and their predicates become a [`Scorecard`].
//!
//! Decisions where PMML leaves room or riskserve's model representation is narrower:
//! - Inputs are the active `MiningField`s in `MiningSchema` order, named as in the file. A field
//!   of data type `string` is categorical: its valid `Value`s (or, when the data dictionary lists
//!   none, the strings its predicates mention) become the category names. A string outside that
//!   list follows `invalidValueTreatment`: `asMissing` reads it as missing, `returnInvalid` (the
//!   default) refuses it with an error naming the value, `asIs` keeps it as a value unequal to
//!   every listed one ([`UnknownCategory::Unlisted`]). For a field whose dictionary lists no
//!   values, PMML accepts any string: an unlisted one matches no `equal` and every `notEqual`,
//!   as it does there. Numeric fields (`integer`, `float`,
//!   `double`) compare as numbers; `integer` accepts whole numbers within Java's `int` range, as
//!   JPMML-Evaluator does, and `Interval`s and valid `Value`s of numeric fields are honoured, all
//!   following `invalidValueTreatment`.
//! - `missingValueReplacement` replaces a missing value (and an invalid one read as missing).
//! - Reason codes: as many ranks as the highest `rank` of the `Output`'s `reasonCode` fields;
//!   when `useReasonCodes` is on and the output names none, four ranks ([`DEFAULT_REASON_RANKS`],
//!   the most reasons FCRA's key factors and Regulation B's guidance call useful).
//! - Output fields other than `predictedValue` and `reasonCode` are not computed (the answer is
//!   the score and its reason codes); `ComplexPartialScore`, `Targets` that rescale the score,
//!   outlier treatments, `asValue` and other features that would change scores are refused with
//!   their names.

use std::collections::{HashMap, HashSet};
use std::fmt;

use roxmltree::{Document, Node, ParsingOptions};

use crate::error::{Format, ModelError};
use crate::ir::{Feature, FeatureKind, MissingRule, Model, ModelBody, Output, OutputKind, Transform, UnknownCategory};
use crate::scorecard::{
    Attribute, BaselineMethod, BooleanOperator, Characteristic, Comparison, Interval, InvalidValue,
    MAX_PREDICATE_DEPTH, MAX_REASON_RANKS, NO_CATEGORY, Predicate, ReasonCodeAlgorithm, ReasonCodes, Scorecard,
    ScorecardInput, Validity,
};

/// Reason-code ranks returned when the scorecard uses reason codes but its output names none.
pub const DEFAULT_REASON_RANKS: usize = 4;

/// The most entries one `Array` may hold; category sets in scorecards hold a handful.
pub const MAX_ARRAY_ENTRIES: usize = 100_000;

/// The most XML nodes a document may have: a scorecard with a thousand characteristics holds far
/// fewer, and the parsed tree costs tens of bytes a node.
pub const MAX_XML_NODES: u32 = 1 << 24;

/// The element names of PMML's models, to say which model a file holds when it is no scorecard.
const MODEL_ELEMENTS: [&str; 19] = [
    "AnomalyDetectionModel",
    "AssociationModel",
    "BayesianNetworkModel",
    "BaselineModel",
    "ClusteringModel",
    "GaussianProcessModel",
    "GeneralRegressionModel",
    "MiningModel",
    "NaiveBayesModel",
    "NearestNeighborModel",
    "NeuralNetwork",
    "RegressionModel",
    "RuleSetModel",
    "SequenceModel",
    "Scorecard",
    "SupportVectorMachineModel",
    "TextModel",
    "TimeSeriesModel",
    "TreeModel",
];

fn malformed(message: impl Into<String>) -> ModelError {
    ModelError::malformed(Format::Pmml, message)
}

fn invalid(message: impl Into<String>) -> ModelError {
    ModelError::invalid(Format::Pmml, message)
}

fn unsupported(message: impl Into<String>) -> ModelError {
    ModelError::unsupported(Format::Pmml, message)
}

/// Loads a PMML document whose model is a `Scorecard`.
pub fn load(bytes: &[u8]) -> Result<Model, ModelError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|error| malformed(format!("the file is not UTF-8 text (byte {})", error.valid_up_to())))?;
    // DTDs stay refused (the default), which shuts out entity-expansion attacks.
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_XML_NODES, ..ParsingOptions::default() };
    let document = Document::parse_with_options(text, options).map_err(|error| match error {
        roxmltree::Error::DtdDetected => unsupported("a DTD (PMML files have none; DTDs are refused)"),
        roxmltree::Error::NodesLimitReached => invalid(format!("the XML has more than {MAX_XML_NODES} nodes")),
        error => malformed(format!("not well-formed XML: {error}")),
    })?;
    let root = document.root_element();
    if root.tag_name().name() != "PMML" {
        return Err(malformed(format!("the root element is <{}>, not <PMML>", root.tag_name().name())));
    }
    match root.attribute("version") {
        Some(version) if version.trim().starts_with("4.") => {}
        Some(version) => return Err(unsupported(format!("PMML version {version:?} (only 4.x has scorecards)"))),
        None => return Err(malformed("the PMML element has no version attribute")),
    }
    let scorecard = match children(root).find(|node| node.tag_name().name() == "Scorecard") {
        Some(scorecard) => scorecard,
        None => {
            let models: Vec<&str> = children(root)
                .map(|node| node.tag_name().name())
                .filter(|name| MODEL_ELEMENTS.contains(name))
                .collect();
            return Err(if models.is_empty() {
                invalid("the PMML holds no model (no Scorecard)")
            } else {
                unsupported(format!(
                    "the PMML holds no Scorecard, only {}; riskserve reads PMML scorecards",
                    models.join(", ")
                ))
            });
        }
    };
    let dictionary = children(root)
        .find(|node| node.tag_name().name() == "DataDictionary")
        .ok_or_else(|| malformed("the PMML has no DataDictionary"))?;
    let fields = read_data_dictionary(dictionary)?;
    Importer::new(fields).read_scorecard(scorecard)
}

/// Element children only (text, comments and processing instructions skipped).
fn children<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    children(node).find(|child| child.tag_name().name() == name)
}

/// What the data dictionary says about one field.
#[derive(Debug)]
struct DataField {
    kind: DataKind,
    /// Valid `Value`s, in file order (strings as written).
    values: Vec<String>,
    intervals: Vec<Interval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Text,
    Number { integer: bool },
}

fn read_data_dictionary(dictionary: Node) -> Result<HashMap<String, DataField>, ModelError> {
    let mut fields = HashMap::new();
    for node in children(dictionary).filter(|node| node.tag_name().name() == "DataField") {
        let name = required(node, "name")?.to_string();
        let line = Line(node);
        let data_type = required(node, "dataType")?;
        let kind = match data_type {
            "string" => DataKind::Text,
            "integer" => DataKind::Number { integer: true },
            "float" | "double" => DataKind::Number { integer: false },
            other => return Err(unsupported(format!("data type {other:?} of field {name:?} (line {line})"))),
        };
        let mut values = Vec::new();
        let mut intervals = Vec::new();
        for item in children(node) {
            match item.tag_name().name() {
                "Value" => {
                    let value = required(item, "value")?;
                    match item.attribute("property").unwrap_or("valid") {
                        "valid" => values.push(value.to_string()),
                        // A listed invalid string is simply not a category, which is what invalid
                        // means; a listed invalid number would need a list of its own.
                        "invalid" if kind == DataKind::Text => {}
                        property => {
                            return Err(unsupported(format!(
                                "Value {value:?} with property {property:?} of field {name:?} (line {})",
                                Line(item)
                            )));
                        }
                    }
                }
                "Interval" => {
                    if kind == DataKind::Text {
                        return Err(invalid(format!("field {name:?} is a string but declares an Interval")));
                    }
                    intervals.push(read_interval(item, &name)?);
                }
                _ => {}
            }
        }
        if fields.insert(name.clone(), DataField { kind, values, intervals }).is_some() {
            return Err(invalid(format!("field {name:?} is declared twice in the DataDictionary (line {line})")));
        }
    }
    Ok(fields)
}

fn read_interval(node: Node, field: &str) -> Result<Interval, ModelError> {
    let (low_closed, high_closed) = match required(node, "closure")? {
        "openOpen" => (false, false),
        "openClosed" => (false, true),
        "closedOpen" => (true, false),
        "closedClosed" => (true, true),
        other => return Err(malformed(format!("Interval closure {other:?} of field {field:?}"))),
    };
    let margin = |name: &str, default: f64| -> Result<f64, ModelError> {
        match node.attribute(name) {
            None => Ok(default),
            Some(text) => {
                let value = number(text, || format!("{name} of an Interval of field {field:?}"))?;
                if value.is_nan() {
                    return Err(invalid(format!("{name} of an Interval of field {field:?} is NaN")));
                }
                Ok(value)
            }
        }
    };
    let interval = Interval {
        low: margin("leftMargin", f64::NEG_INFINITY)?,
        high: margin("rightMargin", f64::INFINITY)?,
        low_closed,
        high_closed,
    };
    if interval.low > interval.high {
        return Err(invalid(format!("an Interval of field {field:?} has leftMargin above rightMargin")));
    }
    Ok(interval)
}

/// The 1-based line where a node starts, for messages. Finding it scans the text, so it is only
/// computed when a message is written (formatting a [`Line`]).
fn line_of(node: Node) -> u32 {
    node.document().text_pos_at(node.range().start).row
}

/// A node's line, found only when displayed.
#[derive(Clone, Copy)]
struct Line<'a, 'input>(Node<'a, 'input>);

impl fmt::Display for Line<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", line_of(self.0))
    }
}

fn required<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str, ModelError> {
    node.attribute(name).ok_or_else(|| {
        malformed(format!("<{}> at line {} has no {name} attribute", node.tag_name().name(), line_of(node)))
    })
}

/// Parses an `xs:double` (also `INF`, `-INF` and `NaN`, which Rust's parser takes too).
fn number(text: &str, what: impl FnOnce() -> String) -> Result<f64, ModelError> {
    let trimmed = text.trim();
    trimmed.parse::<f64>().map_err(|_| malformed(format!("{} is {:?}, not a number", what(), shorten(trimmed))))
}

fn boolean(node: Node, name: &str, default: bool) -> Result<bool, ModelError> {
    match node.attribute(name).map(str::trim) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(malformed(format!("{name} is {:?}, not a boolean", shorten(other)))),
    }
}

/// Keeps error messages short when a value is huge.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// One active mining field as the scorecard reads it.
#[derive(Debug)]
struct Input {
    name: String,
    kind: DataKind,
    /// For text inputs: category names and their codes. When the dictionary lists no values the
    /// list is open: strings the model mentions join it as they are met.
    categories: Vec<String>,
    codes: HashMap<String, u32>,
    open: bool,
    rule: ScorecardInput,
    unknown: UnknownCategory,
}

impl Input {
    /// The code of a category string, joining an open list; [`NO_CATEGORY`] when a closed list
    /// lacks it (no input can then take it).
    fn code(&mut self, text: &str) -> f64 {
        if let Some(code) = self.codes.get(text) {
            return f64::from(*code);
        }
        if !self.open {
            return NO_CATEGORY;
        }
        let code = self.categories.len() as u32;
        self.categories.push(text.to_string());
        self.codes.insert(text.to_string(), code);
        f64::from(code)
    }

    /// A predicate's value for this input: a number, or a category code.
    fn value(&mut self, text: &str, at: &dyn Fn() -> String) -> Result<f64, ModelError> {
        match self.kind {
            DataKind::Text => Ok(self.code(text)),
            DataKind::Number { .. } => {
                let value = number(text, || format!("the value of {} for field {:?}", at(), self.name))?;
                if value.is_nan() {
                    return Err(invalid(format!("{} compares field {:?} with NaN", at(), self.name)));
                }
                Ok(value)
            }
        }
    }
}

struct Importer {
    fields: HashMap<String, DataField>,
    inputs: Vec<Input>,
    /// Input index by field name.
    input_index: HashMap<String, u32>,
    reason_texts: Vec<String>,
    reason_index: HashMap<String, u32>,
}

impl Importer {
    fn new(fields: HashMap<String, DataField>) -> Self {
        Importer {
            fields,
            inputs: Vec::new(),
            input_index: HashMap::new(),
            reason_texts: Vec::new(),
            reason_index: HashMap::new(),
        }
    }

    fn read_scorecard(mut self, scorecard: Node) -> Result<Model, ModelError> {
        match scorecard.attribute("functionName") {
            Some("regression") => {}
            Some(other) => {
                return Err(invalid(format!("the Scorecard's functionName is {other:?}, not \"regression\"")));
            }
            None => return Err(malformed("the Scorecard has no functionName")),
        }
        if !boolean(scorecard, "isScorable", true)? {
            return Err(invalid("the Scorecard is marked isScorable=\"false\""));
        }
        let initial_score = match scorecard.attribute("initialScore") {
            Some(text) => number(text, || "the Scorecard's initialScore".into())?,
            None => 0.0,
        };
        let use_reason_codes = boolean(scorecard, "useReasonCodes", true)?;
        let algorithm = match scorecard.attribute("reasonCodeAlgorithm").unwrap_or("pointsBelow") {
            "pointsBelow" => ReasonCodeAlgorithm::PointsBelow,
            "pointsAbove" => ReasonCodeAlgorithm::PointsAbove,
            other => return Err(unsupported(format!("reasonCodeAlgorithm {other:?}"))),
        };
        let default_baseline = match scorecard.attribute("baselineScore") {
            Some(text) => Some(number(text, || "the Scorecard's baselineScore".into())?),
            None => None,
        };
        let baseline_method = match scorecard.attribute("baselineMethod").unwrap_or("other") {
            "max" => BaselineMethod::Max,
            "min" => BaselineMethod::Min,
            "mean" => BaselineMethod::Mean,
            "neutral" => BaselineMethod::Neutral,
            "other" => BaselineMethod::Other,
            other => return Err(malformed(format!("baselineMethod {other:?}"))),
        };
        for node in children(scorecard) {
            match node.tag_name().name() {
                "Targets" => check_targets(node)?,
                "ModelStats" | "ModelExplanation" | "ModelVerification" | "Extension" | "LocalTransformations" => {}
                _ => {}
            }
        }
        let schema = child(scorecard, "MiningSchema").ok_or_else(|| malformed("the Scorecard has no MiningSchema"))?;
        self.read_mining_schema(schema)?;
        let ranks = match child(scorecard, "Output") {
            Some(output) => read_reason_ranks(output)?,
            None => 0,
        };
        let characteristics_node =
            child(scorecard, "Characteristics").ok_or_else(|| malformed("the Scorecard has no Characteristics"))?;
        let mut characteristics = Vec::new();
        for (index, node) in
            children(characteristics_node).filter(|node| node.tag_name().name() == "Characteristic").enumerate()
        {
            characteristics.push(self.read_characteristic(node, index, use_reason_codes, default_baseline)?);
        }
        if characteristics.is_empty() {
            return Err(invalid("the Scorecard has no Characteristic"));
        }
        let reason_codes = use_reason_codes.then(|| ReasonCodes {
            algorithm,
            texts: std::mem::take(&mut self.reason_texts),
            ranks: if ranks == 0 { DEFAULT_REASON_RANKS } else { ranks },
        });
        let mut features = Vec::with_capacity(self.inputs.len());
        let mut rules = Vec::with_capacity(self.inputs.len());
        for input in self.inputs {
            let kind = match input.kind {
                DataKind::Text => {
                    FeatureKind::Categorical { categories: Some(input.categories), unknown: input.unknown }
                }
                DataKind::Number { .. } => FeatureKind::Numeric,
            };
            features.push(Feature { name: input.name, kind, missing: MissingRule::AsIs });
            rules.push(input.rule);
        }
        let model = Model {
            inputs: features,
            preprocess: None,
            body: ModelBody::Scorecard(Scorecard {
                initial_score,
                inputs: rules,
                characteristics,
                reason_codes,
                baseline_method,
            }),
            output: Output { transform: Transform::Identity, kind: OutputKind::Score },
            source: Format::Pmml,
        };
        model.validate()?;
        Ok(model)
    }

    fn read_mining_schema(&mut self, schema: Node) -> Result<(), ModelError> {
        let mut seen = HashSet::new();
        for node in children(schema).filter(|node| node.tag_name().name() == "MiningField") {
            let name = required(node, "name")?;
            let line = Line(node);
            if !seen.insert(name) {
                return Err(invalid(format!("MiningField {name:?} appears twice (line {line})")));
            }
            let usage = node.attribute("usageType").unwrap_or("active");
            if usage != "active" {
                continue;
            }
            let field = self.fields.get(name).ok_or_else(|| {
                invalid(format!("MiningField {name:?} (line {line}) is not a field of the DataDictionary"))
            })?;
            if let Some(outliers) = node.attribute("outliers")
                && outliers != "asIs"
            {
                return Err(unsupported(format!("outliers={outliers:?} on MiningField {name:?}")));
            }
            let treatment = node.attribute("invalidValueTreatment").unwrap_or("returnInvalid");
            let invalid_value = match treatment {
                "returnInvalid" => InvalidValue::Refuse,
                "asMissing" => InvalidValue::AsMissing,
                "asIs" => InvalidValue::AsIs,
                other => {
                    return Err(unsupported(format!("invalidValueTreatment {other:?} on MiningField {name:?}")));
                }
            };
            let mut input = Input {
                name: name.to_string(),
                kind: field.kind,
                categories: Vec::new(),
                codes: HashMap::new(),
                open: false,
                rule: ScorecardInput::any(name),
                unknown: UnknownCategory::Error,
            };
            match field.kind {
                DataKind::Text => {
                    input.open = true;
                    for value in &field.values {
                        input.code(value);
                    }
                    input.open = field.values.is_empty();
                    // Only a closed list makes strings invalid; an open list, or `asIs`, keeps an
                    // unlisted string as a value unequal to every listed one.
                    input.unknown = match (input.open, invalid_value) {
                        (true, _) | (false, InvalidValue::AsIs) => UnknownCategory::Unlisted,
                        (false, InvalidValue::AsMissing) => UnknownCategory::Missing,
                        (false, InvalidValue::Refuse) => UnknownCategory::Error,
                    };
                }
                DataKind::Number { integer } => {
                    let mut values = Vec::with_capacity(field.values.len());
                    for value in &field.values {
                        let parsed = number(value, || format!("a Value of field {name:?}"))?;
                        if parsed.is_nan() {
                            return Err(invalid(format!("field {name:?} lists NaN as a valid Value")));
                        }
                        values.push(parsed);
                    }
                    values.sort_by(f64::total_cmp);
                    values.dedup_by(|a, b| a.total_cmp(b).is_eq());
                    input.rule.validity =
                        Validity { whole_numbers: integer, intervals: field.intervals.clone(), values };
                    input.rule.invalid = invalid_value;
                }
            }
            if let Some(text) = node.attribute("missingValueReplacement") {
                let replacement = match field.kind {
                    DataKind::Text => {
                        let code = input.code(text);
                        if code == NO_CATEGORY {
                            return Err(invalid(format!(
                                "missingValueReplacement {text:?} of field {name:?} is not one of its Values"
                            )));
                        }
                        code
                    }
                    DataKind::Number { .. } => {
                        let value = number(text, || format!("missingValueReplacement of field {name:?}"))?;
                        if !value.is_finite() {
                            return Err(invalid(format!("missingValueReplacement of field {name:?} is not finite")));
                        }
                        value
                    }
                };
                input.rule.missing_replacement = Some(replacement);
            }
            self.input_index.insert(name.to_string(), self.inputs.len() as u32);
            self.inputs.push(input);
        }
        Ok(())
    }

    fn reason_code(&mut self, text: &str) -> u32 {
        if let Some(id) = self.reason_index.get(text) {
            return *id;
        }
        let id = self.reason_texts.len() as u32;
        self.reason_texts.push(text.to_string());
        self.reason_index.insert(text.to_string(), id);
        id
    }

    fn read_characteristic(
        &mut self,
        node: Node,
        index: usize,
        use_reason_codes: bool,
        default_baseline: Option<f64>,
    ) -> Result<Characteristic, ModelError> {
        let name = node.attribute("name").map_or_else(|| format!("characteristic {}", index + 1), str::to_string);
        let baseline = match node.attribute("baselineScore") {
            Some(text) => Some(number(text, || format!("baselineScore of characteristic {name:?}"))?),
            None => default_baseline,
        };
        if use_reason_codes {
            match baseline {
                Some(value) if value.is_finite() => {}
                Some(_) => return Err(invalid(format!("the baselineScore of characteristic {name:?} is not finite"))),
                None => {
                    return Err(invalid(format!(
                        "characteristic {name:?} has no baselineScore, and neither has the Scorecard (useReasonCodes is on)"
                    )));
                }
            }
        }
        let characteristic_code = node.attribute("reasonCode");
        let mut attributes = Vec::new();
        for (position, attribute) in children(node).filter(|node| node.tag_name().name() == "Attribute").enumerate() {
            let at = || format!("attribute {} of characteristic {name:?} (line {})", position + 1, line_of(attribute));
            if child(attribute, "ComplexPartialScore").is_some() {
                return Err(unsupported(format!("ComplexPartialScore in {}", at())));
            }
            let partial_score = match attribute.attribute("partialScore") {
                Some(text) => number(text, || format!("the partialScore of {}", at()))?,
                None => return Err(invalid(format!("{} has no partialScore", at()))),
            };
            if !partial_score.is_finite() {
                return Err(invalid(format!("the partialScore of {} is not finite", at())));
            }
            let reason_code = if use_reason_codes {
                let text = attribute.attribute("reasonCode").or(characteristic_code).ok_or_else(|| {
                    invalid(format!(
                        "{} has no reasonCode, and neither has its characteristic (useReasonCodes is on)",
                        at()
                    ))
                })?;
                Some(self.reason_code(text))
            } else {
                None
            };
            let mut predicates = children(attribute).filter(|node| is_predicate(node.tag_name().name()));
            let predicate_node = predicates.next().ok_or_else(|| malformed(format!("{} has no predicate", at())))?;
            if predicates.next().is_some() {
                return Err(malformed(format!("{} has more than one predicate", at())));
            }
            let predicate = self.read_predicate(predicate_node, 1)?;
            attributes.push(Attribute { predicate, partial_score, reason_code });
        }
        if attributes.is_empty() {
            return Err(invalid(format!("characteristic {name:?} has no Attribute")));
        }
        Ok(Characteristic { name, baseline, attributes })
    }

    /// Reads a predicate at nesting `depth` (the attribute's own predicate is depth 1); deeper
    /// than [`MAX_PREDICATE_DEPTH`] is refused before recursing further.
    fn read_predicate(&mut self, node: Node, depth: usize) -> Result<Predicate, ModelError> {
        let line = Line(node);
        if depth > MAX_PREDICATE_DEPTH {
            return Err(invalid(format!("predicates nest deeper than {MAX_PREDICATE_DEPTH} levels (line {line})")));
        }
        let element = node.tag_name().name();
        match element {
            "True" => Ok(Predicate::Constant(true)),
            "False" => Ok(Predicate::Constant(false)),
            "SimplePredicate" => self.read_simple_predicate(node, line),
            "SimpleSetPredicate" => self.read_set_predicate(node, line),
            "CompoundPredicate" => {
                let operator = match required(node, "booleanOperator")? {
                    "and" => BooleanOperator::And,
                    "or" => BooleanOperator::Or,
                    "xor" => BooleanOperator::Xor,
                    "surrogate" => BooleanOperator::Surrogate,
                    other => return Err(malformed(format!("booleanOperator {other:?} at line {line}"))),
                };
                let mut predicates = Vec::new();
                for child in children(node).filter(|child| child.tag_name().name() != "Extension") {
                    predicates.push(self.read_predicate(child, depth + 1)?);
                }
                if predicates.is_empty() {
                    return Err(malformed(format!("the CompoundPredicate at line {line} has no predicates")));
                }
                Ok(Predicate::Compound { operator, children: predicates })
            }
            other => Err(unsupported(format!("predicate <{other}> at line {line}"))),
        }
    }

    fn input_for(&self, node: Node, line: Line) -> Result<u32, ModelError> {
        let field = required(node, "field")?;
        self.input_index.get(field).copied().ok_or_else(|| {
            let what =
                if self.fields.contains_key(field) { "not an active MiningField" } else { "not a field of the model" };
            invalid(format!(
                "the {} at line {line} refers to field {:?}, which is {what}",
                node.tag_name().name(),
                shorten(field)
            ))
        })
    }

    fn read_simple_predicate(&mut self, node: Node, line: Line) -> Result<Predicate, ModelError> {
        let input = self.input_for(node, line)?;
        let operator = required(node, "operator")?;
        let comparison = match operator {
            "isMissing" => return Ok(Predicate::Missing { input, missing: true }),
            "isNotMissing" => return Ok(Predicate::Missing { input, missing: false }),
            "equal" => Comparison::Equal,
            "notEqual" => Comparison::NotEqual,
            "lessThan" => Comparison::LessThan,
            "lessOrEqual" => Comparison::LessOrEqual,
            "greaterThan" => Comparison::GreaterThan,
            "greaterOrEqual" => Comparison::GreaterOrEqual,
            other => {
                return Err(malformed(format!("operator {:?} of the SimplePredicate at line {line}", shorten(other))));
            }
        };
        let target = &mut self.inputs[input as usize];
        if target.kind == DataKind::Text && !matches!(comparison, Comparison::Equal | Comparison::NotEqual) {
            return Err(unsupported(format!(
                "the ordering comparison {operator} on the string field {:?} (line {line})",
                target.name
            )));
        }
        let text = required(node, "value")?;
        let value = target.value(text, &|| format!("the SimplePredicate at line {line}"))?;
        Ok(Predicate::Compare { input, comparison, value })
    }

    fn read_set_predicate(&mut self, node: Node, line: Line) -> Result<Predicate, ModelError> {
        let input = self.input_for(node, line)?;
        let negated = match required(node, "booleanOperator")? {
            "isIn" => false,
            "isNotIn" => true,
            other => {
                return Err(malformed(format!(
                    "booleanOperator {:?} of the SimpleSetPredicate at line {line}",
                    shorten(other)
                )));
            }
        };
        let array = child(node, "Array")
            .ok_or_else(|| malformed(format!("the SimpleSetPredicate at line {line} has no Array")))?;
        match required(array, "type")? {
            "string" | "int" | "real" => {}
            other => return Err(unsupported(format!("Array type {other:?} at line {line}"))),
        }
        let text: String = array.children().filter(Node::is_text).filter_map(|text| text.text()).collect();
        let entries =
            array_entries(&text).map_err(|message| invalid(format!("the Array at line {line}: {message}")))?;
        if let Some(declared) = array.attribute("n") {
            let declared: usize = declared
                .trim()
                .parse()
                .map_err(|_| malformed(format!("the Array at line {line} has n={:?}", shorten(declared))))?;
            if declared != entries.len() {
                return Err(malformed(format!(
                    "the Array at line {line} declares n={declared} but holds {} entries",
                    entries.len()
                )));
            }
        }
        let target = &mut self.inputs[input as usize];
        let mut values = Vec::with_capacity(entries.len());
        for entry in &entries {
            let value = target.value(entry, &|| format!("the Array at line {line}"))?;
            // A category no input can take is in no set; leaving it out changes neither isIn nor
            // isNotIn.
            if value != NO_CATEGORY || target.kind != DataKind::Text {
                values.push(value);
            }
        }
        values.sort_by(f64::total_cmp);
        values.dedup_by(|a, b| a.total_cmp(b).is_eq());
        Ok(Predicate::InSet { input, values, negated })
    }
}

fn is_predicate(name: &str) -> bool {
    matches!(name, "SimplePredicate" | "CompoundPredicate" | "SimpleSetPredicate" | "True" | "False")
}

/// Refuses `Targets` that would rescale, clamp or round the score.
fn check_targets(targets: Node) -> Result<(), ModelError> {
    for target in children(targets).filter(|node| node.tag_name().name() == "Target") {
        for attribute in ["rescaleFactor", "rescaleConstant", "min", "max", "castInteger"] {
            if let Some(value) = target.attribute(attribute) {
                let neutral = match attribute {
                    "rescaleFactor" => value.trim().parse::<f64>() == Ok(1.0),
                    "rescaleConstant" => value.trim().parse::<f64>() == Ok(0.0),
                    _ => false,
                };
                if !neutral {
                    return Err(unsupported(format!(
                        "Targets with {attribute}={:?} (the score would be transformed)",
                        shorten(value)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The highest `rank` among the output's `reasonCode` fields (0 when it has none).
fn read_reason_ranks(output: Node) -> Result<usize, ModelError> {
    let mut ranks = 0usize;
    for field in children(output).filter(|node| node.tag_name().name() == "OutputField") {
        if field.attribute("feature") != Some("reasonCode") {
            continue;
        }
        let rank = match field.attribute("rank") {
            None => 1,
            Some(text) => text.trim().parse::<usize>().ok().filter(|rank| *rank >= 1).ok_or_else(|| {
                malformed(format!(
                    "the OutputField at line {} has rank {:?}, not a positive integer",
                    line_of(field),
                    shorten(text)
                ))
            })?,
        };
        if rank > MAX_REASON_RANKS {
            return Err(invalid(format!("reason-code rank {rank} is more than the {MAX_REASON_RANKS} supported")));
        }
        ranks = ranks.max(rank);
    }
    Ok(ranks)
}

/// Splits the text of a PMML `Array`: entries separated by white space, an entry in double quotes
/// may hold white space and `\"`.
fn array_entries(text: &str) -> Result<Vec<String>, String> {
    let mut entries = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        if entries.len() == MAX_ARRAY_ENTRIES {
            return Err(format!("it holds more than {MAX_ARRAY_ENTRIES} entries"));
        }
        let mut entry = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a quoted entry is not closed".into()),
                    Some('\\') if chars.peek() == Some(&'"') => {
                        chars.next();
                        entry.push('"');
                    }
                    Some('"') => break,
                    Some(c) => entry.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                entry.push(c);
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorecard::{NoAttributeMatched, Truth};

    /// A scorecard over a double `x` and a string `color` (red, green, blue) with `characteristics`
    /// and extra attributes on the Scorecard element.
    fn document(scorecard_attributes: &str, output: &str, characteristics: &str) -> String {
        format!(
            r#"<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="green"/><Value value="blue"/><Value value="void" property="invalid"/>
    </DataField>
    <DataField name="score" optype="continuous" dataType="double"/>
  </DataDictionary>
  <Scorecard functionName="regression" {scorecard_attributes}>
    <MiningSchema>
      <MiningField name="x"/>
      <MiningField name="color"/>
      <MiningField name="score" usageType="predicted"/>
    </MiningSchema>
    {output}
    <Characteristics>{characteristics}</Characteristics>
  </Scorecard>
</PMML>"#
        )
    }

    #[test]
    fn an_unlisted_string_is_a_value_equal_to_no_listed_category() {
        // `asIs` keeps a string outside the closed list; it fails every `equal` and reaches the
        // catch-all attribute. Under the default `returnInvalid` it is refused.
        let attributes = r#"<Attribute partialScore="10"><SimplePredicate field="color" operator="equal" value="red"/></Attribute>
            <Attribute partialScore="7"><SimplePredicate field="color" operator="notEqual" value="blue"/></Attribute>
            <Attribute partialScore="5"><True/></Attribute>"#;
        let text = with_attributes(attributes)
            .replace(r#"<MiningField name="color"/>"#, r#"<MiningField name="color" invalidValueTreatment="asIs"/>"#);
        let model = load(text.as_bytes()).unwrap();
        let (decoder, _) = crate::input::RowDecoder::from_header(&model.inputs, &["x", "color"]).unwrap();
        let predictor = crate::Predictor::new(model).unwrap();
        let mut scratch = predictor.scratch();
        let mut row = [0.0; 2];
        let mut score = [0.0];
        for (color, expected) in [("red", 10.0), ("blue", 5.0), ("purple", 7.0)] {
            decoder.decode(1, ["1", color].into_iter(), &mut row).unwrap();
            predictor.predict_row(&row, &mut scratch, &mut score).unwrap();
            assert_eq!(score[0], expected, "{color}");
        }
        let refusing = load(with_attributes(attributes).as_bytes()).unwrap();
        let (decoder, _) = crate::input::RowDecoder::from_header(&refusing.inputs, &["x", "color"]).unwrap();
        let error = decoder.decode(1, ["1", "purple"].into_iter(), &mut row).unwrap_err();
        assert!(error.to_string().contains("unknown category \"purple\""), "{error}");
    }

    /// One characteristic with the given attributes, baseline 0 and reason code R.
    fn with_attributes(attributes: &str) -> String {
        document(
            "",
            "",
            &format!(r#"<Characteristic name="c" reasonCode="R" baselineScore="0">{attributes}</Characteristic>"#),
        )
    }

    fn scorecard(model: &Model) -> &Scorecard {
        match &model.body {
            ModelBody::Scorecard(scorecard) => scorecard,
            other => panic!("not a scorecard: {other:?}"),
        }
    }

    fn error_of(text: &str) -> String {
        load(text.as_bytes()).expect_err("the document should be refused").to_string()
    }

    #[test]
    fn reads_the_specification_sample() {
        let model = load(include_bytes!("../../../fixtures/pmml/dmg_sample_scorecard.pmml")).unwrap();
        let names: Vec<&str> = model.inputs.iter().map(|feature| feature.name.as_str()).collect();
        assert_eq!(names, ["department", "age", "income"]);
        // The dictionary lists no departments: the strings the predicates mention become the
        // categories, and any other string is a valid value equal to none of them.
        assert_eq!(
            model.inputs[0].kind,
            FeatureKind::Categorical {
                categories: Some(vec!["marketing".into(), "engineering".into(), "business".into()]),
                unknown: UnknownCategory::Unlisted,
            }
        );
        assert_eq!(model.inputs[1].kind, FeatureKind::Numeric);
        assert_eq!(model.output, Output { transform: Transform::Identity, kind: OutputKind::Score });
        assert_eq!(model.source, Format::Pmml);
        let card = scorecard(&model);
        assert_eq!(card.characteristics.len(), 3);
        assert_eq!(card.characteristics[1].name, "ageScore");
        assert_eq!(card.characteristics[1].baseline, Some(18.0));
        assert_eq!(card.characteristics[1].attributes.len(), 5);
        assert!(card.inputs[1].validity.whole_numbers);
        assert_eq!(card.inputs[1].invalid, InvalidValue::AsMissing);
        let reasons = card.reason_codes.as_ref().unwrap();
        assert_eq!(reasons.texts, ["RC1", "RC2", "RC3"]);
        assert_eq!(reasons.algorithm, ReasonCodeAlgorithm::PointsBelow);
        assert_eq!(card.reason_code_columns(), 3);
        assert_eq!(model.output_columns(), ["score"]);
    }

    #[test]
    fn attribute_reason_codes_override_the_characteristic() {
        let model = load(include_bytes!("../../../fixtures/pmml/dmg_sample_attribute_reason_codes.pmml")).unwrap();
        let card = scorecard(&model);
        let texts = &card.reason_codes.as_ref().unwrap().texts;
        let age_codes: Vec<&str> = card.characteristics[1]
            .attributes
            .iter()
            .map(|attribute| texts[attribute.reason_code.unwrap() as usize].as_str())
            .collect();
        assert_eq!(age_codes, ["RC2_1", "RC2_2", "RC2_3", "RC2_4", "RC2_5"]);
    }

    #[test]
    fn refuses_complex_partial_scores_naming_them() {
        let message = error_of(include_str!("../../../fixtures/pmml/dmg_sample_complex_partial_score.pmml"));
        assert!(message.contains("ComplexPartialScore in attribute 2 of characteristic \"incomeScore\""), "{message}");
    }

    #[test]
    fn categories_follow_the_dictionary_and_invalid_value_treatment() {
        let attributes = r#"<Attribute partialScore="1"><SimplePredicate field="color" operator="equal" value="red"/></Attribute>
            <Attribute partialScore="2"><SimplePredicate field="color" operator="equal" value="purple"/></Attribute>
            <Attribute partialScore="3"><True/></Attribute>"#;
        let model = load(with_attributes(attributes).as_bytes()).unwrap();
        let categories = Some(vec!["red".to_string(), "green".into(), "blue".into()]);
        assert_eq!(
            model.inputs[1].kind,
            FeatureKind::Categorical { categories: categories.clone(), unknown: UnknownCategory::Error }
        );
        // "purple" is not a valid value: no input can take it.
        assert_eq!(
            scorecard(&model).characteristics[0].attributes[1].predicate,
            Predicate::Compare { input: 1, comparison: Comparison::Equal, value: NO_CATEGORY }
        );
        let as_missing = with_attributes(attributes).replace(
            r#"<MiningField name="color"/>"#,
            r#"<MiningField name="color" invalidValueTreatment="asMissing"/>"#,
        );
        let model = load(as_missing.as_bytes()).unwrap();
        assert_eq!(model.inputs[1].kind, FeatureKind::Categorical { categories, unknown: UnknownCategory::Missing });
        let as_value = with_attributes(attributes).replace(
            r#"<MiningField name="color"/>"#,
            r#"<MiningField name="color" invalidValueTreatment="asValue"/>"#,
        );
        assert!(error_of(&as_value).contains("invalidValueTreatment \"asValue\""));
    }

    #[test]
    fn missing_value_replacements_become_values_and_codes() {
        let text = with_attributes(r#"<Attribute partialScore="1"><True/></Attribute>"#)
            .replace(r#"<MiningField name="x"/>"#, r#"<MiningField name="x" missingValueReplacement="2.5"/>"#)
            .replace(r#"<MiningField name="color"/>"#, r#"<MiningField name="color" missingValueReplacement="blue"/>"#);
        let model = load(text.as_bytes()).unwrap();
        let card = scorecard(&model);
        assert_eq!(card.inputs[0].missing_replacement, Some(2.5));
        assert_eq!(card.inputs[1].missing_replacement, Some(2.0));
        let bad = text.replace(r#"missingValueReplacement="blue""#, r#"missingValueReplacement="void""#);
        assert!(
            error_of(&bad).contains("missingValueReplacement \"void\" of field \"color\" is not one of its Values")
        );
    }

    #[test]
    fn set_predicates_read_quoted_entries_and_drop_unknown_categories() {
        let attributes = r#"<Attribute partialScore="1">
              <SimpleSetPredicate field="color" booleanOperator="isNotIn"><Array n="3" type="string">"blue" green "light red"</Array></SimpleSetPredicate>
            </Attribute>
            <Attribute partialScore="2">
              <SimpleSetPredicate field="x" booleanOperator="isIn"><Array type="real">3 1.5 -2 1.5</Array></SimpleSetPredicate>
            </Attribute>
            <Attribute partialScore="3"><False/></Attribute>"#;
        let model = load(with_attributes(attributes).as_bytes()).unwrap();
        let attributes = &scorecard(&model).characteristics[0].attributes;
        assert_eq!(attributes[0].predicate, Predicate::InSet { input: 1, values: vec![1.0, 2.0], negated: true });
        assert_eq!(
            attributes[1].predicate,
            Predicate::InSet { input: 0, values: vec![-2.0, 1.5, 3.0], negated: false }
        );
        assert_eq!(attributes[2].predicate, Predicate::Constant(false));
        assert_eq!(array_entries(r#" a "b c" "say \"hi\"" d\e "#).unwrap(), ["a", "b c", "say \"hi\"", "d\\e"]);
        assert!(array_entries(r#""open"#).unwrap_err().contains("not closed"));
        let wrong_count = with_attributes(
            r#"<Attribute partialScore="1"><SimpleSetPredicate field="x" booleanOperator="isIn"><Array n="5" type="int">1 2</Array></SimpleSetPredicate></Attribute>"#,
        );
        assert!(error_of(&wrong_count).contains("declares n=5 but holds 2 entries"));
    }

    #[test]
    fn huge_arrays_are_refused() {
        let entries = "1 ".repeat(MAX_ARRAY_ENTRIES + 1);
        let text = with_attributes(&format!(
            r#"<Attribute partialScore="1"><SimpleSetPredicate field="x" booleanOperator="isIn"><Array type="int">{entries}</Array></SimpleSetPredicate></Attribute>"#
        ));
        assert!(error_of(&text).contains(&format!("more than {MAX_ARRAY_ENTRIES} entries")));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let depth = 100_000;
        let predicate = format!(
            "{}<True/>{}",
            r#"<CompoundPredicate booleanOperator="and">"#.repeat(depth),
            "</CompoundPredicate>".repeat(depth)
        );
        let text = with_attributes(&format!(r#"<Attribute partialScore="1">{predicate}</Attribute>"#));
        let message = error_of(&text);
        assert!(message.contains(&format!("nest deeper than {MAX_PREDICATE_DEPTH} levels")), "{message}");
        // Just within the limit loads.
        let depth = MAX_PREDICATE_DEPTH - 1;
        let predicate = format!(
            "{}<True/>{}",
            r#"<CompoundPredicate booleanOperator="or">"#.repeat(depth),
            "</CompoundPredicate>".repeat(depth)
        );
        let model =
            load(with_attributes(&format!(r#"<Attribute partialScore="1">{predicate}</Attribute>"#)).as_bytes());
        let model = model.unwrap();
        let card = scorecard(&model);
        assert_eq!(card.truth(&card.characteristics[0].attributes[0].predicate, &[0.0, 0.0]), Truth::True);
    }

    #[test]
    fn reason_ranks_come_from_the_output() {
        let attributes = r#"<Attribute partialScore="1"><True/></Attribute>"#;
        let characteristic =
            format!(r#"<Characteristic reasonCode="R" baselineScore="0">{attributes}</Characteristic>"#);
        let output = r#"<Output><OutputField name="s" feature="predictedValue"/>
            <OutputField name="r2" feature="reasonCode" rank="2"/><OutputField name="r1" feature="reasonCode"/></Output>"#;
        let model = load(document("", output, &characteristic).as_bytes()).unwrap();
        assert_eq!(scorecard(&model).reason_code_columns(), 2);
        // The characteristic has no name: it is named by its position.
        assert_eq!(scorecard(&model).characteristics[0].name, "characteristic 1");
        let model = load(document("", "", &characteristic).as_bytes()).unwrap();
        assert_eq!(scorecard(&model).reason_code_columns(), DEFAULT_REASON_RANKS);
        let model = load(document(r#"useReasonCodes="false""#, output, &characteristic).as_bytes()).unwrap();
        assert_eq!(scorecard(&model).reason_code_columns(), 0);
        assert!(scorecard(&model).reason_codes.is_none());
        let huge = output.replace(r#"rank="2""#, r#"rank="99999999""#);
        assert!(error_of(&document("", &huge, &characteristic)).contains("rank 99999999 is more than"));
        let zero = output.replace(r#"rank="2""#, r#"rank="0""#);
        assert!(error_of(&document("", &zero, &characteristic)).contains("not a positive integer"));
    }

    #[test]
    fn scorecard_attributes_are_read_with_their_defaults() {
        let characteristic = r#"<Characteristic name="c" reasonCode="R"><Attribute partialScore="1"><True/></Attribute></Characteristic>"#;
        let attributes =
            r#"initialScore="7.5" reasonCodeAlgorithm="pointsAbove" baselineScore="3" baselineMethod="mean""#;
        let model = load(document(attributes, "", characteristic).as_bytes()).unwrap();
        let card = scorecard(&model);
        assert_eq!(card.initial_score, 7.5);
        assert_eq!(card.baseline_method, BaselineMethod::Mean);
        assert_eq!(card.characteristics[0].baseline, Some(3.0));
        assert_eq!(card.reason_codes.as_ref().unwrap().algorithm, ReasonCodeAlgorithm::PointsAbove);
        // Without a baseline anywhere, reason codes cannot be ranked.
        let message = error_of(&document("", "", characteristic));
        assert!(message.contains("characteristic \"c\" has no baselineScore"), "{message}");
        let without_code = characteristic.replace(r#" reasonCode="R""#, "");
        let message = error_of(&document(r#"baselineScore="0""#, "", &without_code));
        assert!(message.contains("attribute 1 of characteristic \"c\" (line"), "{message}");
        assert!(message.contains("has no reasonCode"), "{message}");
        // Without reason codes neither is needed.
        assert!(load(document(r#"useReasonCodes="false""#, "", &without_code).as_bytes()).is_ok());
    }

    #[test]
    fn an_unscorable_row_names_the_characteristic() {
        let model = load(
            with_attributes(
                r#"<Attribute partialScore="1"><SimplePredicate field="x" operator="lessThan" value="0"/></Attribute>"#,
            )
            .as_bytes(),
        )
        .unwrap();
        let mut reasons = Vec::new();
        let error = scorecard(&model).evaluate(&[f64::NAN, 0.0], &mut reasons).unwrap_err();
        assert_eq!(error, NoAttributeMatched { characteristic: "c".into(), invalid_input: None });
    }

    #[test]
    fn hostile_and_malformed_documents_get_typed_errors() {
        let good = with_attributes(r#"<Attribute partialScore="1"><True/></Attribute>"#);
        assert!(load(good.as_bytes()).is_ok());
        let cases: Vec<(String, &str)> = vec![
            (good[..good.len() / 2].to_string(), "not well-formed XML"),
            ("".into(), "not well-formed XML"),
            (good.replace("<PMML ", "<pmml ").replace("</PMML>", "</pmml>"), "root element is <pmml>"),
            (good.replace(r#"version="4.4""#, r#"version="3.2""#), "PMML version \"3.2\""),
            (
                r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><PMML version="4.4"/>"#.into(),
                "a DTD",
            ),
            (
                r#"<PMML version="4.4"><DataDictionary/><TreeModel functionName="regression"/></PMML>"#.into(),
                "holds no Scorecard, only TreeModel",
            ),
            (r#"<PMML version="4.4"><DataDictionary/></PMML>"#.into(), "holds no model"),
            (good.replace(r#"<True/>"#, r#"<SimplePredicate field="y" operator="isMissing"/>"#), "refers to field \"y\", which is not a field"),
            (good.replace(r#"<True/>"#, r#"<SimplePredicate field="score" operator="isMissing"/>"#), "\"score\", which is not an active MiningField"),
            (good.replace(r#"partialScore="1""#, r#"partialScore="ten""#), "partialScore of attribute 1 of characteristic \"c\""),
            (good.replace(r#"partialScore="1""#, r#"partialScore="INF""#), "is not finite"),
            (good.replace(r#" partialScore="1""#, ""), "has no partialScore"),
            (good.replace(r#"functionName="regression""#, r#"functionName="classification""#), "functionName is \"classification\""),
            (good.replace(r#"<True/>"#, r#"<SimplePredicate field="x" operator="lessThan" value="abc"/>"#), "is \"abc\", not a number"),
            (good.replace(r#"<True/>"#, r#"<SimplePredicate field="x" operator="between" value="1"/>"#), "operator \"between\""),
            (good.replace(r#"<True/>"#, r#"<SimplePredicate field="color" operator="lessThan" value="red"/>"#), "ordering comparison lessThan on the string field \"color\""),
            (good.replace(r#"<True/>"#, r#"<CompoundPredicate booleanOperator="and"/>"#), "has no predicates"),
            (good.replace(r#"<True/>"#, r#"<CompoundPredicate booleanOperator="nand"><True/></CompoundPredicate>"#), "booleanOperator \"nand\""),
            (good.replace(r#"<True/>"#, r#"<ContainsPredicate/>"#), "has no predicate"),
            (good.replace(r#"<True/>"#, r#"<True/><False/>"#), "more than one predicate"),
            (good.replace(r#"dataType="double""#, r#"dataType="date""#), "data type \"date\" of field \"x\""),
            (good.replace(r#"<MiningField name="x"/>"#, r#"<MiningField name="x" outliers="asExtremeValues"/>"#), "outliers=\"asExtremeValues\""),
            (good.replace(r#"<MiningField name="x"/>"#, r#"<MiningField name="x"/><MiningField name="x"/>"#), "appears twice"),
            (good.replace(r#"<MiningField name="x"/>"#, r#"<MiningField name="w"/>"#), "MiningField \"w\" (line"),
            (good.replace("<MiningSchema>", r#"<Targets><Target field="score" rescaleFactor="2"/></Targets><MiningSchema>"#), "Targets with rescaleFactor"),
            (good.replace(r#"<DataField name="score""#, r#"<DataField name="x" optype="continuous" dataType="double"/><DataField name="score""#), "declared twice"),
            (good.replace(r#"<Characteristic name="c" reasonCode="R" baselineScore="0">"#, r#"<Characteristic name="c" reasonCode="R" baselineScore="0"></Characteristic><Characteristic name="d" reasonCode="R" baselineScore="0">"#), "characteristic \"c\" has no Attribute"),
            (
                good.replace("</Characteristics>", "</Ignored>").replace("<Characteristics>", "<Characteristics/><Ignored>"),
                "has no Characteristic",
            ),
            (good.replace(r#"<Characteristics>"#, "<Ignored>").replace("</Characteristics>", "</Ignored>"), "has no Characteristics"),
        ];
        for (text, expected) in cases {
            let message = error_of(&text);
            assert!(message.starts_with("pmml model"), "{message}");
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
        }
        assert!(load(b"\xFF\xFE<\x00P\x00").unwrap_err().to_string().contains("not UTF-8"));
        assert!(matches!(load(b"<PMML version=\"4.4\"><Scorecard/></PMML>"), Err(ModelError::Malformed { .. })));
    }

    #[test]
    fn numeric_validity_comes_from_intervals_and_values() {
        let text = with_attributes(r#"<Attribute partialScore="1"><True/></Attribute>"#)
            .replace(
                r#"<DataField name="x" optype="continuous" dataType="double"/>"#,
                r#"<DataField name="x" optype="continuous" dataType="integer"><Interval closure="openClosed" leftMargin="0"/><Value value="-5"/></DataField>"#,
            )
            .replace(r#"<MiningField name="x"/>"#, r#"<MiningField name="x" invalidValueTreatment="asIs"/>"#);
        let model = load(text.as_bytes()).unwrap();
        let input = &scorecard(&model).inputs[0];
        assert_eq!(input.invalid, InvalidValue::AsIs);
        assert!(input.validity.whole_numbers);
        assert_eq!(input.validity.values, [-5.0]);
        assert_eq!(
            input.validity.intervals,
            [Interval { low: 0.0, high: f64::INFINITY, low_closed: false, high_closed: true }]
        );
        assert!(input.validity.holds(-5.0) && input.validity.holds(3.0));
        assert!(!input.validity.holds(0.0) && !input.validity.holds(-4.0) && !input.validity.holds(2.5));
        let bad = text.replace(r#"closure="openClosed""#, r#"closure="ajar""#);
        assert!(error_of(&bad).contains("Interval closure \"ajar\""));
        let bad = text.replace(r#"<Value value="-5"/>"#, r#"<Value value="-5" property="missing"/>"#);
        assert!(error_of(&bad).contains("property \"missing\""));
    }
}

#[cfg(test)]
mod robustness {
    use super::load;

    /// Truncations at 200 places and a few hundred seeded byte changes of real scorecards load or fail
    /// with an error; none panics. (A cheap stand-in for the fuzz target, run on every test.)
    #[test]
    fn damaged_scorecards_never_panic() {
        let documents: [&[u8]; 2] = [
            include_bytes!("../../../fixtures/pmml/dmg_sample_scorecard.pmml"),
            include_bytes!("../../../fixtures/pmml/germancredit_points_below.pmml"),
        ];
        // Bytes that steer the parser into attributes, numbers and nesting.
        const REPLACEMENTS: &[u8] = b"<>/\"= 0-9.eE&;x\xC3";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for document in documents {
            for cut in (0..document.len()).step_by(document.len() / 200) {
                let _ = load(&document[..cut]);
            }
            let mut damaged = document.to_vec();
            for _ in 0..300 {
                damaged.copy_from_slice(document);
                for _ in 0..1 + next() % 4 {
                    let at = (next() % damaged.len() as u64) as usize;
                    damaged[at] = REPLACEMENTS[(next() % REPLACEMENTS.len() as u64) as usize];
                }
                if let Ok(model) = load(&damaged) {
                    model.validate().expect("a loaded model is valid");
                }
            }
        }
    }
}
