//! Turns the preprocessing nodes of an ONNX graph into a [`FeatureProgram`]'s steps: tracks,
//! for every value of the graph, which scratch slots hold it, its per-row shape and element type.

use std::collections::{HashMap, HashSet};

use super::attributes::{NodeView, Tensor, TensorData, decode_tensor};
use super::errors::{invalid, malformed, unsupported};
use super::proto::{GraphProto, TensorProto, data_type};
use crate::error::ModelError;
use crate::preprocess::{Arithmetic, BinaryOperator, CodeColumn, MAX_SCRATCH_SLOTS, Norm, Step};

/// The most input columns a model may declare.
const MAX_INPUT_COLUMNS: usize = 1 << 18;

/// The element type of a value flowing through the preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    F32,
    F64,
    /// Integers of any width, held exactly.
    Integer,
    /// Category codes of string inputs; the slot of a code is the input's own slot, which is
    /// also the index of its feature.
    Codes,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::F32 => "float",
            Kind::F64 => "double",
            Kind::Integer => "integer",
            Kind::Codes => "string",
        }
    }
}

/// A tensor of the graph, per row: which scratch slots hold it and its shape without the batch
/// dimension (row-major, `slots.len()` is the product of `shape`).
#[derive(Debug, Clone)]
pub(super) struct Value {
    pub slots: Vec<u32>,
    pub shape: Vec<usize>,
    pub kind: Kind,
}

impl Value {
    /// The row width of a value that is a plain `[N, k]` (or `[N]`) tensor.
    fn columns(&self, node: &NodeView) -> Result<usize, ModelError> {
        if self.shape.len() > 1 {
            return Err(unsupported(format!("{} reads a tensor of rank {}", node.label(), self.shape.len() + 1)));
        }
        Ok(self.slots.len())
    }
}

/// The categories of one string input: the union of the strings its encoders list.
#[derive(Debug, Default)]
pub(super) struct CategoryUnion {
    pub names: Vec<String>,
    codes: HashMap<String, u32>,
    /// A `OneHotEncoder` with `zeros = 0` reads the input, so onnxruntime refuses unknown strings.
    pub refuse_unknown: bool,
}

impl CategoryUnion {
    fn code(&mut self, name: &str) -> u32 {
        if let Some(code) = self.codes.get(name) {
            return *code;
        }
        let code = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.codes.insert(name.to_owned(), code);
        code
    }
}

/// Where a constant comes from: an initializer or a `Constant` node.
#[derive(Debug, Clone, Copy)]
enum ConstantSource<'a> {
    Initializer(&'a TensorProto),
    Node(NodeView<'a>),
}

/// The state of the conversion: the graph's nodes and constants, the value every evaluated name
/// holds, and the feature program built so far.
pub(super) struct Converter<'a> {
    pub nodes: Vec<NodeView<'a>>,
    constants: HashMap<&'a str, ConstantSource<'a>>,
    producers: HashMap<&'a str, usize>,
    values: HashMap<&'a str, Value>,
    /// For each input column, the categories of a string column (`None` for numbers).
    pub unions: Vec<Option<CategoryUnion>>,
    pub num_inputs: usize,
    /// The first scratch slot not yet written by any step.
    pub next_slot: usize,
    pub steps: Vec<Step>,
}

impl<'a> Converter<'a> {
    /// Indexes the graph's constants and the producer of every value.
    pub(super) fn new(graph: &'a GraphProto, nodes: Vec<NodeView<'a>>) -> Result<Converter<'a>, ModelError> {
        let mut constants = HashMap::new();
        for initializer in &graph.initializer {
            let name = initializer.name.as_deref().unwrap_or("");
            if name.is_empty() {
                return Err(malformed("an initializer has no name"));
            }
            if constants.insert(name, ConstantSource::Initializer(initializer)).is_some() {
                return Err(invalid(format!("initializer {name:?} appears twice")));
            }
        }
        let mut producers = HashMap::new();
        for node in &nodes {
            for output in node.proto.output.iter().filter(|output| !output.is_empty()) {
                if constants.contains_key(output.as_str()) || producers.insert(output.as_str(), node.index).is_some() {
                    return Err(invalid(format!("value {output:?} is produced twice")));
                }
                if node.op_type() == "Constant" {
                    constants.insert(output.as_str(), ConstantSource::Node(*node));
                }
            }
        }

        Ok(Converter {
            nodes,
            constants,
            producers,
            values: HashMap::new(),
            unions: Vec::new(),
            num_inputs: 0,
            next_slot: 0,
            steps: Vec::new(),
        })
    }

    /// Declares one feature per input column and places the columns in slots `0..num_inputs`.
    /// Returns the feature names and, for float inputs, the slot holding each value rounded to
    /// f32 (keyed by the raw slot).
    pub(super) fn declare_inputs(
        &mut self,
        graph: &'a GraphProto,
    ) -> Result<(Vec<String>, HashMap<u32, u32>), ModelError> {
        let mut names = Vec::new();
        let mut declared = Vec::new();
        for value_info in &graph.input {
            let name = value_info.name.as_deref().unwrap_or("");
            if name.is_empty() {
                return Err(malformed("a graph input has no name"));
            }
            if self.constants.contains_key(name) {
                // Older files list initializers among the inputs.
                continue;
            }
            if self.producers.contains_key(name) {
                return Err(invalid(format!("input {name:?} is also produced by a node")));
            }
            let tensor = value_info
                .r#type
                .as_ref()
                .and_then(|value_type| value_type.tensor_type.as_ref())
                .ok_or_else(|| unsupported(format!("input {name:?} is not a tensor")))?;
            let kind = match tensor.elem_type.unwrap_or(0) {
                data_type::FLOAT => Kind::F32,
                data_type::DOUBLE => Kind::F64,
                data_type::INT64 | data_type::INT32 => Kind::Integer,
                data_type::STRING => Kind::Codes,
                other => return Err(unsupported(format!("input {name:?} has element type {other}"))),
            };
            let dims = &tensor.shape.as_ref().ok_or_else(|| unsupported(format!("input {name:?} has no shape")))?.dim;
            let (width, shape) = match dims.as_slice() {
                [_] => (1, vec![]),
                [_, columns] => match columns.dim_value {
                    Some(width) if width >= 1 && width as usize <= MAX_INPUT_COLUMNS => {
                        (width as usize, vec![width as usize])
                    }
                    _ => return Err(unsupported(format!("input {name:?} has no fixed number of columns"))),
                },
                _ => {
                    return Err(unsupported(format!(
                        "input {name:?} has rank {}; riskserve reads [N, k] inputs",
                        dims.len()
                    )));
                }
            };
            if self.num_inputs + width > MAX_INPUT_COLUMNS {
                return Err(unsupported(format!("the model has more than {MAX_INPUT_COLUMNS} input columns")));
            }
            let start = self.num_inputs as u32;
            for column in 0..width {
                names.push(if width == 1 { name.to_owned() } else { format!("{name}_{column}") });
                self.unions.push((kind == Kind::Codes).then(CategoryUnion::default));
            }
            self.num_inputs += width;
            declared.push((name, Value { slots: (start..start + width as u32).collect(), shape, kind }));
        }
        self.next_slot = self.num_inputs;
        // onnxruntime receives float tensors: round each float column once, up front.
        let float_slots: Vec<u32> = declared
            .iter()
            .filter(|(_, value)| value.kind == Kind::F32)
            .flat_map(|(_, value)| value.slots.clone())
            .collect();
        let mut rounded_of = HashMap::new();
        if !float_slots.is_empty() {
            let output = self.allocate(float_slots.len())?;
            for (offset, slot) in float_slots.iter().enumerate() {
                rounded_of.insert(*slot, output + offset as u32);
            }
            self.steps.push(Step::RoundToF32 { inputs: float_slots, output });
        }
        for (name, mut value) in declared {
            if value.kind == Kind::F32 {
                value.slots = value.slots.iter().map(|slot| rounded_of.get(slot).copied().unwrap_or(*slot)).collect();
            }
            if self.values.insert(name, value).is_some() {
                return Err(invalid(format!("input {name:?} is declared twice")));
            }
        }
        Ok((names, rounded_of))
    }

    /// Reserves `count` fresh slots.
    pub(super) fn allocate(&mut self, count: usize) -> Result<u32, ModelError> {
        let start = self.next_slot;
        match start.checked_add(count) {
            Some(end) if end <= MAX_SCRATCH_SLOTS => {
                self.next_slot = end;
                Ok(start as u32)
            }
            _ => Err(unsupported(format!("the preprocessing needs more than {MAX_SCRATCH_SLOTS} values"))),
        }
    }

    /// The nodes `value` depends on, in an order where each follows its inputs' producers.
    pub(super) fn dependencies(&self, value: &str) -> Result<Vec<usize>, ModelError> {
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            New,
            Open,
            Done,
        }
        let mut state = vec![State::New; self.nodes.len()];
        let mut order = Vec::new();
        let mut stack: Vec<(usize, bool)> = Vec::new();
        let need =
            |name: &str, user: &str, stack: &mut Vec<(usize, bool)>, state: &[State]| -> Result<(), ModelError> {
                if self.values.contains_key(name) || self.constants.contains_key(name) {
                    return Ok(());
                }
                match self.producers.get(name) {
                    Some(producer) => match state[*producer] {
                        State::New => {
                            stack.push((*producer, false));
                            Ok(())
                        }
                        State::Open => {
                            Err(invalid(format!("the graph has a cycle through {}", self.nodes[*producer].label())))
                        }
                        State::Done => Ok(()),
                    },
                    None => Err(invalid(format!("value {name:?} read by {user} is never produced"))),
                }
            };
        need(value, "the model", &mut stack, &state)?;
        while let Some((index, expanded)) = stack.pop() {
            if expanded {
                state[index] = State::Done;
                order.push(index);
                continue;
            }
            match state[index] {
                State::Done => continue,
                State::Open => {
                    return Err(invalid(format!("the graph has a cycle through {}", self.nodes[index].label())));
                }
                State::New => {}
            }
            state[index] = State::Open;
            stack.push((index, true));
            let node = self.nodes[index];
            let label = node.label();
            for input in node.proto.input.iter().filter(|input| !input.is_empty()) {
                need(input, &label, &mut stack, &state)?;
            }
        }
        Ok(order)
    }

    pub(super) fn value(&self, name: &str, node: &NodeView) -> Result<Value, ModelError> {
        if let Some(value) = self.values.get(name) {
            return Ok(value.clone());
        }
        if self.constants.contains_key(name) {
            return Err(unsupported(format!("{} reads the constant {name:?} as data", node.label())));
        }
        Err(invalid(format!("value {name:?} read by {} is never produced", node.label())))
    }

    pub(super) fn constant(&self, name: &str) -> Result<Option<Tensor>, ModelError> {
        match self.constants.get(name) {
            Some(ConstantSource::Initializer(tensor)) => {
                decode_tensor(tensor, &format!("initializer {name:?}")).map(Some)
            }
            Some(ConstantSource::Node(node)) => match node.tensor("value")? {
                Some(tensor) => Ok(Some(tensor)),
                None => Err(unsupported(format!("{} has no tensor value", node.label()))),
            },
            None => Ok(None),
        }
    }

    fn integer_constant(&self, node: &NodeView, position: usize) -> Result<Vec<i64>, ModelError> {
        let name = node.input(position)?;
        match self.constant(name)? {
            Some(Tensor { data: TensorData::Integer(values), .. }) => Ok(values),
            Some(_) => Err(invalid(format!("input {name:?} of {} is not an integer tensor", node.label()))),
            None => Err(unsupported(format!("{} needs input {name:?} to be a constant", node.label()))),
        }
    }

    fn set_output(&mut self, node: &NodeView<'a>, value: Value) {
        if let Some(name) = node.output(0) {
            self.values.insert(name, value);
        }
    }

    /// Adds the steps one preprocessing node performs.
    pub(super) fn evaluate(&mut self, node: NodeView<'a>) -> Result<(), ModelError> {
        let label = node.label();
        match node.op_type() {
            "Constant" => Ok(()),
            "Identity" => {
                let value = self.value(node.input(0)?, &node)?;
                self.set_output(&node, value);
                Ok(())
            }
            "Flatten" => {
                let mut value = self.value(node.input(0)?, &node)?;
                let axis = node.int("axis")?.unwrap_or(1);
                if axis != 1 {
                    return Err(unsupported(format!("{label}: axis {axis}")));
                }
                value.shape = vec![value.slots.len()];
                self.set_output(&node, value);
                Ok(())
            }
            "Reshape" => {
                let mut value = self.value(node.input(0)?, &node)?;
                let target = self.integer_constant(&node, 1)?;
                value.shape = reshape(&target, value.slots.len()).ok_or_else(|| {
                    unsupported(format!("{label} reshapes rows of {} values to {target:?}", value.slots.len()))
                })?;
                self.set_output(&node, value);
                Ok(())
            }
            "Cast" => self.cast(node),
            "Concat" => self.concat(node),
            "ArrayFeatureExtractor" => {
                let value = self.value(node.input(0)?, &node)?;
                let width = value.columns(&node)?;
                if value.shape.is_empty() {
                    return Err(unsupported(format!("{label} reads a one-dimensional tensor")));
                }
                let indices = self.integer_constant(&node, 1)?;
                let slots = indices
                    .iter()
                    .map(|index| {
                        usize::try_from(*index)
                            .ok()
                            .and_then(|index| value.slots.get(index).copied())
                            .ok_or_else(|| invalid(format!("{label} extracts column {index} of {width}")))
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                let shape = vec![slots.len()];
                self.set_output(&node, Value { slots, shape, kind: value.kind });
                Ok(())
            }
            "Gather" => {
                // skl2onnx selects integer columns with Gather along axis 1.
                let value = self.value(node.input(0)?, &node)?;
                let width = value.columns(&node)?;
                let axis = node.int("axis")?.unwrap_or(0);
                if value.shape.is_empty() || (axis != 1 && axis != -1) {
                    return Err(unsupported(format!("{label} gathers along axis {axis}")));
                }
                let name = node.input(1)?;
                let indices = match self.constant(name)? {
                    Some(Tensor { dims, data: TensorData::Integer(indices) }) => (dims, indices),
                    Some(_) => return Err(invalid(format!("input {name:?} of {label} is not an integer tensor"))),
                    None => return Err(unsupported(format!("{label} needs input {name:?} to be a constant"))),
                };
                let (dims, indices) = indices;
                let slots = indices
                    .iter()
                    .map(|index| {
                        let position = if *index < 0 { *index + width as i64 } else { *index };
                        usize::try_from(position)
                            .ok()
                            .and_then(|position| value.slots.get(position).copied())
                            .ok_or_else(|| invalid(format!("{label} gathers column {index} of {width}")))
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                self.set_output(&node, Value { slots, shape: dims, kind: value.kind });
                Ok(())
            }
            "Scaler" => {
                let value = self.value(node.input(0)?, &node)?;
                let width = value.columns(&node)?;
                let arithmetic = match value.kind {
                    Kind::F32 | Kind::Integer => Arithmetic::F32,
                    Kind::F64 => Arithmetic::F64,
                    Kind::Codes => return Err(unsupported(format!("{label} reads strings"))),
                };
                let offsets = node.floats("offset")?;
                let scales = node.floats("scale")?;
                if scales.is_empty() || scales.len() != offsets.len() {
                    return Err(invalid(format!("{label} has {} offsets and {} scales", offsets.len(), scales.len())));
                }
                let offsets = broadcast(&label, "offsets", offsets, width)?;
                let scales = broadcast(&label, "scales", scales, width)?;
                let output = self.allocate(width)?;
                self.steps.push(Step::Scale { inputs: value.slots.clone(), output, offsets, scales, arithmetic });
                self.set_output(&node, fresh(output, value.shape, Kind::F32));
                Ok(())
            }
            "Imputer" => {
                let value = self.value(node.input(0)?, &node)?;
                let width = value.columns(&node)?;
                let (imputed, replaced): (Vec<f64>, f64) = match value.kind {
                    Kind::F32 => (
                        node.floats("imputed_value_floats")?.iter().map(|value| f64::from(*value)).collect(),
                        f64::from(node.float("replaced_value_float")?.unwrap_or(0.0)),
                    ),
                    Kind::Integer => (
                        node.ints("imputed_value_int64s")?.iter().map(|value| *value as f64).collect(),
                        node.int("replaced_value_int64")?.unwrap_or(0) as f64,
                    ),
                    other => return Err(unsupported(format!("{label} reads {} tensors", other.name()))),
                };
                // onnxruntime uses one value per column when there are as many as columns, and
                // the first value for every column otherwise.
                let values = match imputed.len() {
                    0 => return Err(invalid(format!("{label} has no imputed values"))),
                    length if length == width => imputed,
                    _ => vec![imputed[0]; width],
                };
                let output = self.allocate(width)?;
                self.steps.push(Step::Impute { inputs: value.slots.clone(), output, replaced, values });
                self.set_output(&node, fresh(output, value.shape, value.kind));
                Ok(())
            }
            "Normalizer" => {
                let value = self.value(node.input(0)?, &node)?;
                let width = value.columns(&node)?;
                if value.kind == Kind::Codes {
                    return Err(unsupported(format!("{label} reads strings")));
                }
                let norm = match node.string("norm")?.unwrap_or("MAX") {
                    "MAX" => Norm::Max,
                    "L1" => Norm::L1,
                    "L2" => Norm::L2,
                    other => return Err(unsupported(format!("{label}: norm {other}"))),
                };
                let output = self.allocate(width)?;
                self.steps.push(Step::Normalize { inputs: value.slots.clone(), output, norm });
                self.set_output(&node, fresh(output, value.shape, Kind::F32));
                Ok(())
            }
            "Binarizer" => {
                let value = self.value(node.input(0)?, &node)?;
                let width = value.slots.len();
                if value.kind == Kind::Codes {
                    return Err(unsupported(format!("{label} reads strings")));
                }
                let threshold = node.float("threshold")?.ok_or_else(|| invalid(format!("{label} has no threshold")))?;
                let output = self.allocate(width)?;
                self.steps.push(Step::Binarize {
                    inputs: value.slots.clone(),
                    output,
                    threshold: f64::from(threshold),
                });
                self.set_output(&node, fresh(output, value.shape, value.kind));
                Ok(())
            }
            "OneHotEncoder" => self.one_hot(node),
            "LabelEncoder" => self.label_encoder(node),
            "Add" | "Sub" | "Mul" | "Div" => self.arithmetic(node),
            _ => Err(unsupported(format!("{label} before the model"))),
        }
    }

    fn cast(&mut self, node: NodeView<'a>) -> Result<(), ModelError> {
        let label = node.label();
        let value = self.value(node.input(0)?, &node)?;
        let to = node.int("to")?.ok_or_else(|| invalid(format!("{label} has no target type")))?;
        if value.kind == Kind::Codes {
            return Err(unsupported(format!("{label} casts strings")));
        }
        let (kind, step) = match (to as i32, value.kind) {
            (data_type::FLOAT, Kind::F32) => (Kind::F32, None),
            (data_type::FLOAT, _) => (Kind::F32, Some(false)),
            (data_type::DOUBLE, _) => (Kind::F64, None),
            (data_type::INT64 | data_type::INT32, Kind::Integer) => (Kind::Integer, None),
            (data_type::INT64 | data_type::INT32, _) => (Kind::Integer, Some(true)),
            (data_type::STRING, _) => return Err(unsupported(format!("{label} casts to strings"))),
            (other, _) => return Err(unsupported(format!("{label} casts to element type {other}"))),
        };
        let slots = match step {
            None => value.slots,
            Some(truncate) => {
                let output = self.allocate(value.slots.len())?;
                let count = value.slots.len() as u32;
                self.steps.push(if truncate {
                    Step::Truncate { inputs: value.slots, output }
                } else {
                    Step::RoundToF32 { inputs: value.slots, output }
                });
                (output..output + count).collect()
            }
        };
        self.set_output(&node, Value { slots, shape: value.shape, kind });
        Ok(())
    }

    fn concat(&mut self, node: NodeView<'a>) -> Result<(), ModelError> {
        let label = node.label();
        let parts = node
            .proto
            .input
            .iter()
            .filter(|input| !input.is_empty())
            .map(|input| self.value(input, &node))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = parts.first() else {
            return Err(invalid(format!("{label} has no inputs")));
        };
        let rank = first.shape.len() + 1;
        let axis = node.int("axis")?.ok_or_else(|| invalid(format!("{label} has no axis")))?;
        let axis = if axis < 0 { axis + rank as i64 } else { axis };
        if axis == 0 {
            return Err(unsupported(format!("{label} concatenates along the batch axis")));
        }
        let axis = usize::try_from(axis - 1)
            .ok()
            .filter(|axis| *axis < rank - 1)
            .ok_or_else(|| invalid(format!("{label}: axis is outside rank {rank}")))?;
        for part in &parts {
            if part.kind != first.kind {
                return Err(invalid(format!("{label} joins {} and {} tensors", first.kind.name(), part.kind.name())));
            }
            let same_shape = part.shape.len() == first.shape.len()
                && part
                    .shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(dimension, (a, b))| dimension == axis || a == b);
            if !same_shape {
                return Err(invalid(format!("{label} joins tensors of shapes {:?} and {:?}", first.shape, part.shape)));
            }
        }
        let outer: usize = first.shape[..axis].iter().product();
        // Concatenating a value with itself doubles it without a step; cap the size so that a
        // chain of such nodes cannot exhaust memory.
        let total = parts.iter().try_fold(0usize, |total, part| total.checked_add(part.slots.len()));
        let total = total
            .filter(|total| *total <= MAX_SCRATCH_SLOTS)
            .ok_or_else(|| unsupported(format!("{label} builds rows of more than {MAX_SCRATCH_SLOTS} values")))?;
        let mut slots = Vec::with_capacity(total);
        for block in 0..outer {
            for part in &parts {
                let inner: usize = part.shape[axis..].iter().product();
                slots.extend_from_slice(&part.slots[block * inner..(block + 1) * inner]);
            }
        }
        let mut shape = first.shape.clone();
        shape[axis] = parts.iter().map(|part| part.shape[axis]).sum();
        let kind = first.kind;
        self.set_output(&node, Value { slots, shape, kind });
        Ok(())
    }

    fn one_hot(&mut self, node: NodeView<'a>) -> Result<(), ModelError> {
        let label = node.label();
        let value = self.value(node.input(0)?, &node)?;
        value.columns(&node)?;
        let strings = node.strings("cats_strings")?;
        let integers = node.ints("cats_int64s")?;
        let zeros = node.int("zeros")?.unwrap_or(1);
        let width = match (strings.len(), integers.len()) {
            (0, 0) => return Err(invalid(format!("{label} lists no categories"))),
            (_, 0) => strings.len(),
            (0, _) => integers.len(),
            _ => return Err(invalid(format!("{label} lists both string and integer categories"))),
        };
        let width = u32::try_from(width).map_err(|_| unsupported(format!("{label} lists too many categories")))?;
        let output = self.allocate(value.slots.len().saturating_mul(width as usize))?;
        let step = match value.kind {
            Kind::Codes if !strings.is_empty() => {
                let columns = value
                    .slots
                    .iter()
                    .map(|slot| {
                        let union = self.union(*slot)?;
                        if zeros == 0 {
                            union.refuse_unknown = true;
                        }
                        let codes: Vec<u32> = strings.iter().map(|name| union.code(name)).collect();
                        // onnxruntime keeps the last position of a repeated category.
                        let mut by_code: HashMap<u32, u32> = HashMap::new();
                        for (position, code) in codes.iter().enumerate() {
                            by_code.insert(*code, position as u32);
                        }
                        Ok(CodeColumn { input: *slot, entries: sorted_entries(by_code) })
                    })
                    .collect::<Result<Vec<_>, ModelError>>()?;
                Step::OneHotCodes { columns, width, output }
            }
            Kind::F32 | Kind::F64 | Kind::Integer if !integers.is_empty() => {
                let mut by_value: HashMap<i64, u32> = HashMap::new();
                for (position, category) in integers.iter().enumerate() {
                    by_value.insert(*category, position as u32);
                }
                let mut categories: Vec<(i64, u32)> = by_value.into_iter().collect();
                categories.sort_unstable();
                Step::OneHotNumbers { inputs: value.slots.clone(), categories, width, output }
            }
            kind => {
                return Err(invalid(format!(
                    "{label} lists {} categories for a {} input",
                    if strings.is_empty() { "integer" } else { "string" },
                    kind.name()
                )));
            }
        };
        self.steps.push(step);
        let mut shape = value.shape;
        shape.push(width as usize);
        self.set_output(&node, fresh(output, shape, Kind::F32));
        Ok(())
    }

    fn label_encoder(&mut self, node: NodeView<'a>) -> Result<(), ModelError> {
        let label = node.label();
        let value = self.value(node.input(0)?, &node)?;
        if node.has_attribute("values_strings") {
            return Err(unsupported(format!("{label} produces strings")));
        }
        // Keys: strings or numbers, from the opset 1, 2 or 4 attributes.
        let classes = node.strings("classes_strings")?;
        let key_strings = node.strings("keys_strings")?;
        let key_integers = node.ints("keys_int64s")?;
        let key_floats = node.floats("keys_floats")?;
        let key_tensor = node.tensor("keys_tensor")?;
        let value_integers = node.ints("values_int64s")?;
        let value_floats = node.floats("values_floats")?;
        let value_tensor = node.tensor("values_tensor")?;
        let default_tensor = node.tensor("default_tensor")?;

        enum Keys {
            Strings(Vec<String>),
            Numbers(Vec<f64>),
        }
        let (keys, values, kind, default) = if !classes.is_empty() {
            // Opset 1: a string becomes its index among the classes.
            let default = node.int("default_int64")?.unwrap_or(-1) as f64;
            let values = (0..classes.len()).map(|index| index as f64).collect();
            (Keys::Strings(classes.iter().map(|name| (*name).to_owned()).collect()), values, Kind::Integer, default)
        } else {
            let keys = match (key_strings.is_empty(), key_integers.is_empty(), key_floats.is_empty(), key_tensor) {
                (false, true, true, None) => Keys::Strings(key_strings.iter().map(|name| (*name).to_owned()).collect()),
                (true, false, true, None) => Keys::Numbers(key_integers.iter().map(|key| *key as f64).collect()),
                (true, true, false, None) => Keys::Numbers(key_floats.iter().map(|key| f64::from(*key)).collect()),
                (true, true, true, Some(tensor)) => match tensor.data {
                    TensorData::Strings(names) => Keys::Strings(names),
                    _ => Keys::Numbers(tensor.numbers().unwrap_or_default()),
                },
                _ => return Err(invalid(format!("{label} needs exactly one list of keys"))),
            };
            let (values, kind) = match (value_integers.is_empty(), value_floats.is_empty(), value_tensor) {
                (false, true, None) => {
                    (value_integers.iter().map(|value| *value as f64).collect::<Vec<_>>(), Kind::Integer)
                }
                (true, false, None) => (value_floats.iter().map(|value| f64::from(*value)).collect(), Kind::F32),
                (true, true, Some(tensor)) => {
                    let kind = match &tensor.data {
                        TensorData::Float32(_) => Kind::F32,
                        TensorData::Float64(_) => Kind::F64,
                        TensorData::Integer(_) => Kind::Integer,
                        TensorData::Strings(_) => return Err(unsupported(format!("{label} produces strings"))),
                    };
                    (tensor.numbers().unwrap_or_default(), kind)
                }
                _ => return Err(invalid(format!("{label} needs exactly one list of numeric values"))),
            };
            let default =
                match default_tensor.and_then(|tensor| tensor.numbers()).and_then(|numbers| numbers.first().copied()) {
                    Some(default) => default,
                    None => match kind {
                        Kind::Integer => node.int("default_int64")?.unwrap_or(-1) as f64,
                        _ => f64::from(node.float("default_float")?.unwrap_or(-0.0)),
                    },
                };
            (keys, values, kind, default)
        };
        let key_count = match &keys {
            Keys::Strings(names) => names.len(),
            Keys::Numbers(numbers) => numbers.len(),
        };
        if key_count != values.len() {
            return Err(invalid(format!("{label} has {key_count} keys and {} values", values.len())));
        }
        let output = self.allocate(value.slots.len())?;
        let step = match (keys, value.kind) {
            (Keys::Strings(names), Kind::Codes) => {
                let columns = value
                    .slots
                    .iter()
                    .map(|slot| {
                        let union = self.union(*slot)?;
                        let codes: Vec<u32> = names.iter().map(|name| union.code(name)).collect();
                        // onnxruntime keeps the first value of a repeated key.
                        let mut by_code: HashMap<u32, u32> = HashMap::new();
                        for (index, code) in codes.iter().enumerate() {
                            by_code.entry(*code).or_insert(index as u32);
                        }
                        Ok(CodeColumn { input: *slot, entries: sorted_entries(by_code) })
                    })
                    .collect::<Result<Vec<_>, ModelError>>()?;
                Step::LabelCodes { columns, values, default, output }
            }
            (Keys::Numbers(numbers), Kind::F32 | Kind::F64 | Kind::Integer) => {
                let mut nan_value = None;
                let mut pairs: Vec<(f64, f64)> = Vec::with_capacity(numbers.len());
                let mut seen = HashSet::new();
                for (key, mapped) in numbers.iter().zip(&values) {
                    if key.is_nan() {
                        nan_value = nan_value.or(Some(*mapped));
                    } else if seen.insert((if *key == 0.0 { 0.0 } else { *key }).to_bits()) {
                        pairs.push((*key, *mapped));
                    }
                }
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                Step::LabelNumbers { inputs: value.slots.clone(), keys: pairs, nan_value, default, output }
            }
            (Keys::Strings(_), kind) => {
                return Err(invalid(format!("{label} has string keys for a {} input", kind.name())));
            }
            (Keys::Numbers(_), _) => return Err(invalid(format!("{label} has numeric keys for a string input"))),
        };
        self.steps.push(step);
        self.set_output(&node, fresh(output, value.shape, kind));
        Ok(())
    }

    fn arithmetic(&mut self, node: NodeView<'a>) -> Result<(), ModelError> {
        let label = node.label();
        let operator = match node.op_type() {
            "Add" => BinaryOperator::Add,
            "Sub" => BinaryOperator::Subtract,
            "Mul" => BinaryOperator::Multiply,
            _ => BinaryOperator::Divide,
        };
        let (left, right) = (node.input(0)?, node.input(1)?);
        let (data, constant, constant_first) = match (self.constant(left)?, self.constant(right)?) {
            (None, Some(constant)) => (left, constant, false),
            (Some(constant), None) => (right, constant, true),
            (Some(_), Some(_)) => return Err(unsupported(format!("{label} combines two constants"))),
            (None, None) => return Err(unsupported(format!("{label} combines two computed tensors"))),
        };
        let value = self.value(data, &node)?;
        let width = value.columns(&node)?;
        let arithmetic = match (value.kind, &constant.data) {
            (Kind::F32, TensorData::Float32(_)) => Arithmetic::F32,
            (Kind::F64, TensorData::Float64(_)) => Arithmetic::F64,
            (kind, _) => {
                return Err(unsupported(format!("{label}: arithmetic on {} tensors with this constant", kind.name())));
            }
        };
        let numbers = constant.numbers().unwrap_or_default();
        let broadcasts = match constant.dims.as_slice() {
            [] | [1] | [1, 1] => numbers.len() == 1,
            [columns] | [1, columns] => *columns == width,
            _ => false,
        };
        if !broadcasts {
            return Err(unsupported(format!(
                "{label}: a constant of shape {:?} over rows of {width} values",
                constant.dims
            )));
        }
        let constants = if numbers.len() == 1 { vec![numbers[0]; width] } else { numbers };
        let output = self.allocate(width)?;
        self.steps.push(Step::Binary {
            operator,
            inputs: value.slots.clone(),
            output,
            constants,
            constant_first,
            arithmetic,
        });
        self.set_output(&node, fresh(output, value.shape, value.kind));
        Ok(())
    }

    /// The category union of the string input whose codes live in `slot`.
    fn union(&mut self, slot: u32) -> Result<&mut CategoryUnion, ModelError> {
        self.unions
            .get_mut(slot as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| invalid(format!("slot {slot} does not hold a string input")))
    }
}

/// An encoder column's (code, position) pairs, sorted by code.
fn sorted_entries(by_code: HashMap<u32, u32>) -> Vec<(u32, u32)> {
    let mut entries: Vec<(u32, u32)> = by_code.into_iter().collect();
    entries.sort_unstable();
    entries
}

/// A value written by a step into fresh slots starting at `output`.
fn fresh(output: u32, shape: Vec<usize>, kind: Kind) -> Value {
    let count: usize = shape.iter().product();
    Value { slots: (output..output + count as u32).collect(), shape, kind }
}

/// Expands a per-column attribute of length 1 or `width` to `width` values.
fn broadcast(label: &str, what: &str, values: &[f32], width: usize) -> Result<Vec<f64>, ModelError> {
    match values.len() {
        1 => Ok(vec![f64::from(values[0]); width]),
        length if length == width => Ok(values.iter().map(|value| f64::from(*value)).collect()),
        length => Err(invalid(format!("{label} has {length} {what} for {width} columns"))),
    }
}

/// The per-row shape after `Reshape` to `target`, whose first dimension must keep the batch
/// (`-1` or `0`), or `None` when the target does not keep rows of `count` values intact.
fn reshape(target: &[i64], count: usize) -> Option<Vec<usize>> {
    let (first, rest) = target.split_first()?;
    let mut shape = Vec::with_capacity(rest.len());
    let mut inferred = None;
    for (position, dimension) in rest.iter().enumerate() {
        match *dimension {
            -1 if inferred.is_none() && *first == 0 => {
                inferred = Some(position);
                shape.push(1);
            }
            dimension if dimension >= 1 => shape.push(usize::try_from(dimension).ok()?),
            _ => return None,
        }
    }
    if *first != -1 && *first != 0 {
        return None;
    }
    let known = shape.iter().try_fold(1usize, |product, dimension| product.checked_mul(*dimension))?;
    if let Some(position) = inferred {
        if known == 0 || !count.is_multiple_of(known) {
            return None;
        }
        shape[position] = count / known;
    }
    (shape.iter().product::<usize>() == count).then_some(shape)
}
