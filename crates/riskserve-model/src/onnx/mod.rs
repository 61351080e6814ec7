//! ONNX-ML importer: converts the graphs skl2onnx and onnxmltools write for scikit-learn, XGBoost
//! and LightGBM models into the native representation, preprocessing included.
//!
//! # What is read
//! A graph must hold exactly one model operator (`TreeEnsembleClassifier`,
//! `TreeEnsembleRegressor`, `LinearClassifier`, `LinearRegressor`, from `ai.onnx.ml`). The nodes
//! that compute its input become a [`FeatureProgram`]: `Scaler`, `OneHotEncoder`, `Imputer`,
//! `Normalizer`, `Binarizer`, `LabelEncoder`, `ArrayFeatureExtractor` (`ai.onnx.ml`) and
//! `Cast`, `Concat`, `Identity`, `Reshape`, `Flatten`, `Gather` of constant columns, `Constant`,
//! and `Add`/`Sub`/`Mul`/`Div` with a constant operand (standard domain). Tree nodes may compare
//! with `BRANCH_LEQ`, `BRANCH_LT`, `BRANCH_GTE`, `BRANCH_GT`, and `BRANCH_EQ` on category codes
//! (onnxmltools' categorical splits); `BRANCH_NEQ` is refused. After the model operator only what
//! leaves the probabilities unchanged is accepted: `ZipMap`, `Identity`, `Cast`, an L1
//! `Normalizer` of probabilities that already sum to one, and multiplication or division by 1.
//! Anything else is refused, naming every unsupported operator ("unsupported operators: MatMul,
//! Relu") or attribute value ("post_transform PROBIT").
//!
//! The answer is what onnxruntime reports: a binary classifier's positive-class probability
//! (`probabilities[:, 1]`), every class's probability for more classes, a regressor's value.
//! Tree ensembles score in `f32` for float inputs and `f64` for double inputs, as onnxruntime
//! does; preprocessing repeats onnxruntime's `f32` arithmetic exactly.
//!
//! # Input names
//! Every graph input that is not an initializer is a tensor of shape `[N, k]` (or `[N]`, read as
//! `k = 1`) with a fixed `k`. Its columns become the model's inputs, in graph order:
//! - an input with one column keeps the input's name (skl2onnx names DataFrame columns this
//!   way: inputs `age`, `income`, `purpose` give features `age`, `income`, `purpose`);
//! - an input with `k > 1` columns gives `NAME_0` ... `NAME_{k-1}` (skl2onnx's `float_input` of
//!   shape `[N, 5]` gives `float_input_0` ... `float_input_4`).
//!
//! Numeric tensors (float, double, int32, int64) give numeric features; a value is handed to the
//! graph as onnxruntime's caller would (rounded to `f32` for a float tensor). A string tensor gives
//! a categorical feature whose categories are the strings its `OneHotEncoder` and `LabelEncoder`
//! nodes list, in order of first appearance. A string none of them lists is an unknown category:
//! it encodes as onnxruntime encodes an unknown string (all zeros for `OneHotEncoder`, the default
//! value for `LabelEncoder`), or is refused when a `OneHotEncoder` has `zeros = 0`.

mod attributes;
mod errors;
mod linear;
mod preprocessing;
mod proto;
mod trees;

use std::collections::{HashMap, HashSet};

use prost::Message;

use self::attributes::NodeView;
use self::errors::{invalid, malformed, unsupported};
use self::preprocessing::{Converter, Kind};
use self::proto::{GraphProto, data_type};
use self::trees::Converted;
use crate::error::{Format, ModelError};
use crate::ir::{Feature, FeatureKind, Model, ModelBody, Precision, UnknownCategory};
use crate::preprocess::{FeatureProgram, Step};

/// Standard-domain operators the importer understands.
const STANDARD_OPERATORS: &[&str] =
    &["Add", "Cast", "Concat", "Constant", "Div", "Flatten", "Gather", "Identity", "Mul", "Reshape", "Sub"];

/// `ai.onnx.ml` operators the importer understands.
const MACHINE_LEARNING_OPERATORS: &[&str] = &[
    "ArrayFeatureExtractor",
    "Binarizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
];

const MODEL_OPERATORS: &[&str] =
    &["TreeEnsembleClassifier", "TreeEnsembleRegressor", "LinearClassifier", "LinearRegressor"];

/// Loads an ONNX-ML model file.
pub fn load(bytes: &[u8]) -> Result<Model, ModelError> {
    let model =
        proto::ModelProto::decode(bytes).map_err(|error| malformed(format!("not an ONNX protobuf: {error}")))?;
    let graph = model.graph.as_ref().ok_or_else(|| malformed("the file has no graph"))?;
    convert_graph(graph)
}

fn convert_graph(graph: &GraphProto) -> Result<Model, ModelError> {
    let nodes: Vec<NodeView> = graph.node.iter().enumerate().map(|(index, proto)| NodeView { proto, index }).collect();
    check_operators(&nodes)?;

    let mut converter = Converter::new(graph, nodes)?;
    let (features, float_inputs) = converter.declare_inputs(graph)?;

    let models: Vec<NodeView> =
        converter.nodes.iter().copied().filter(|node| MODEL_OPERATORS.contains(&node.op_type())).collect();
    let body_node = match models.as_slice() {
        [one] => *one,
        [] => {
            return Err(unsupported(
                "the graph has no model operator (TreeEnsembleClassifier, TreeEnsembleRegressor, LinearClassifier, LinearRegressor)",
            ));
        }
        several => {
            let names: Vec<String> = several.iter().map(NodeView::label).collect();
            return Err(unsupported(format!("the graph has several model operators: {}", names.join(", "))));
        }
    };
    let body_input = body_node.input(0)?;
    let order = converter.dependencies(body_input)?;
    for index in &order {
        let node = converter.nodes[*index];
        converter.evaluate(node)?;
    }

    let input = converter.value(body_input, &body_node)?;
    if input.kind == Kind::Codes {
        return Err(unsupported(format!("strings feed {} directly", body_node.label())));
    }
    if input.shape.len() != 1 {
        return Err(unsupported(format!(
            "{} reads a tensor of rank {}; riskserve reads [N, k] model inputs",
            body_node.label(),
            input.shape.len() + 1
        )));
    }
    let num_features = input.slots.len();
    let converted = match body_node.op_type() {
        "TreeEnsembleClassifier" | "TreeEnsembleRegressor" => {
            let precision = if input.kind == Kind::F64 { Precision::F64 } else { Precision::F32 };
            trees::convert(body_node, num_features, precision)?
        }
        _ => linear::convert(body_node, num_features)?,
    };
    check_after_model(&converter, body_node, &order, &converted)?;

    // The body reads the value's slots; a linear model needs them as onnxruntime's f32.
    let mut output = input.slots.clone();
    let is_linear = matches!(converted.body, ModelBody::Linear(_));
    if is_linear && input.kind != Kind::F32 {
        let rounded = converter.allocate(output.len())?;
        converter.steps.push(Step::RoundToF32 { inputs: output.clone(), output: rounded });
        output = (rounded..rounded + output.len() as u32).collect();
    }

    // Without preprocessing, a tree ensemble in f32 reads the raw inputs directly: the evaluator
    // rounds them to f32 itself.
    let reads_inputs_in_order = output.len() == converter.num_inputs
        && output
            .iter()
            .enumerate()
            .all(|(index, slot)| float_inputs.get(&(index as u32)).copied().unwrap_or(index as u32) == *slot);
    let only_input_rounding = converter.steps.len() <= usize::from(!float_inputs.is_empty());
    let f32_trees = matches!(&converted.body, ModelBody::Trees(ensemble) if ensemble.precision == Precision::F32);
    let preprocess = if reads_inputs_in_order && only_input_rounding && (f32_trees || converter.steps.is_empty()) {
        None
    } else {
        Some(FeatureProgram {
            num_inputs: converter.num_inputs,
            scratch_len: converter.next_slot,
            steps: converter.steps,
            output,
        })
    };

    let inputs = features
        .into_iter()
        .zip(converter.unions)
        .map(|(name, union)| match union {
            None => Feature::numeric(name),
            Some(union) => Feature {
                name,
                kind: FeatureKind::Categorical {
                    categories: Some(union.names),
                    unknown: if union.refuse_unknown { UnknownCategory::Error } else { UnknownCategory::Missing },
                },
                missing: crate::ir::MissingRule::AsIs,
            },
        })
        .collect();
    Ok(Model { inputs, preprocess, body: converted.body, output: converted.output, source: Format::Onnx })
}

/// Refuses a graph with operators outside the supported set, naming each once.
fn check_operators(nodes: &[NodeView]) -> Result<(), ModelError> {
    let mut unknown: Vec<String> = Vec::new();
    for node in nodes {
        let op_type = node.op_type();
        let domain = node.proto.domain.as_deref().unwrap_or("");
        let supported = match domain {
            "" | "ai.onnx" => STANDARD_OPERATORS.contains(&op_type),
            "ai.onnx.ml" => MACHINE_LEARNING_OPERATORS.contains(&op_type),
            _ => false,
        };
        if !supported {
            let name = match domain {
                "" | "ai.onnx" | "ai.onnx.ml" => op_type.to_owned(),
                _ => format!("{domain}.{op_type}"),
            };
            if !unknown.contains(&name) {
                unknown.push(name);
            }
        }
    }
    if unknown.is_empty() { Ok(()) } else { Err(unsupported(format!("unsupported operators: {}", unknown.join(", ")))) }
}

/// Checks that what the graph does after the model leaves its probabilities unchanged.
fn check_after_model(
    converter: &Converter,
    body: NodeView,
    before: &[usize],
    converted: &Converted,
) -> Result<(), ModelError> {
    let scores_position = if body.op_type().ends_with("Classifier") { 1 } else { 0 };
    let Some(scores) = body.output(scores_position) else {
        return Ok(());
    };
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for node in &converter.nodes {
        for input in &node.proto.input {
            consumers.entry(input.as_str()).or_default().push(node.index);
        }
    }
    let before: HashSet<usize> = before.iter().copied().collect();
    let mut visited = HashSet::new();
    let mut pending = vec![scores];
    while let Some(name) = pending.pop() {
        for index in consumers.get(name).into_iter().flatten() {
            if !visited.insert(*index) {
                continue;
            }
            let node = converter.nodes[*index];
            let label = node.label();
            if before.contains(index) || *index == body.index {
                return Err(invalid(format!("the graph has a cycle through {label}")));
            }
            let allowed = match node.op_type() {
                "Identity" | "ZipMap" => true,
                "Cast" => matches!(node.int("to")?.map(|to| to as i32), Some(data_type::FLOAT | data_type::DOUBLE)),
                "Normalizer" => node.string("norm")? == Some("L1") && converted.probabilities_normalized,
                // Multiplying by one or dividing by one (onnxmltools' LightGBM converter).
                "Mul" | "Div" => {
                    let other = match node.proto.input.as_slice() {
                        [first, second] if first == name => Some(second),
                        [first, second] if second == name && node.op_type() == "Mul" => Some(first),
                        _ => None,
                    };
                    match other {
                        Some(other) => converter
                            .constant(other)?
                            .and_then(|tensor| tensor.numbers())
                            .is_some_and(|numbers| numbers.iter().all(|number| *number == 1.0)),
                        None => false,
                    }
                }
                _ => false,
            };
            if !allowed {
                let reason = if node.op_type() == "Normalizer" {
                    " (probabilities that do not sum to one, such as one-vs-rest logistic regression)"
                } else {
                    ""
                };
                return Err(unsupported(format!("{label} changes the model's scores{reason}")));
            }
            pending.extend(node.proto.output.iter().map(String::as_str).filter(|output| !output.is_empty()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
