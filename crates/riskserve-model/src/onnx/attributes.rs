//! Typed access to ONNX node attributes and constant tensors, with errors that name the node.

use super::errors::{invalid, malformed, unsupported};
use super::proto::{AttributeProto, DATA_LOCATION_EXTERNAL, NodeProto, TensorProto, attribute_type, data_type};
use crate::error::ModelError;

/// A node of the graph with the helpers the converters use.
#[derive(Debug, Clone, Copy)]
pub(super) struct NodeView<'a> {
    pub proto: &'a NodeProto,
    pub index: usize,
}

impl<'a> NodeView<'a> {
    pub fn op_type(&self) -> &'a str {
        self.proto.op_type.as_deref().unwrap_or("")
    }

    /// How error messages name the node: its operator and, when it has one, its name.
    pub fn label(&self) -> String {
        match self.proto.name.as_deref() {
            Some(name) if !name.is_empty() => format!("{} node {name:?}", self.op_type()),
            _ => format!("{} node {}", self.op_type(), self.index),
        }
    }

    pub fn input(&self, position: usize) -> Result<&'a str, ModelError> {
        self.proto
            .input
            .get(position)
            .map(String::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| invalid(format!("{} has no input {position}", self.label())))
    }

    pub fn output(&self, position: usize) -> Option<&'a str> {
        self.proto.output.get(position).map(String::as_str).filter(|name| !name.is_empty())
    }

    /// The attribute called `name`, checking its declared type when the file declares one.
    fn attribute(
        &self,
        name: &str,
        expected: i32,
        expected_name: &str,
    ) -> Result<Option<&'a AttributeProto>, ModelError> {
        let mut found = self.proto.attribute.iter().filter(|attribute| attribute.name.as_deref() == Some(name));
        let Some(attribute) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(malformed(format!("{} has two attributes named {name}", self.label())));
        }
        match attribute.r#type {
            None | Some(0) => Ok(Some(attribute)),
            Some(declared) if declared == expected => Ok(Some(attribute)),
            Some(declared) => Err(malformed(format!(
                "attribute {name} of {} has type {declared}, expected {expected_name}",
                self.label()
            ))),
        }
    }

    pub fn has_attribute(&self, name: &str) -> bool {
        self.proto.attribute.iter().any(|attribute| attribute.name.as_deref() == Some(name))
    }

    pub fn floats(&self, name: &str) -> Result<&'a [f32], ModelError> {
        Ok(self.attribute(name, attribute_type::FLOATS, "FLOATS")?.map_or(&[][..], |attribute| &attribute.floats))
    }

    pub fn ints(&self, name: &str) -> Result<&'a [i64], ModelError> {
        Ok(self.attribute(name, attribute_type::INTS, "INTS")?.map_or(&[][..], |attribute| &attribute.ints))
    }

    pub fn strings(&self, name: &str) -> Result<Vec<&'a str>, ModelError> {
        let Some(attribute) = self.attribute(name, attribute_type::STRINGS, "STRINGS")? else {
            return Ok(Vec::new());
        };
        attribute
            .strings
            .iter()
            .map(|bytes| {
                std::str::from_utf8(bytes).map_err(|_| {
                    malformed(format!("attribute {name} of {} holds a string that is not UTF-8", self.label()))
                })
            })
            .collect()
    }

    pub fn string(&self, name: &str) -> Result<Option<&'a str>, ModelError> {
        let Some(attribute) = self.attribute(name, attribute_type::STRING, "STRING")? else {
            return Ok(None);
        };
        let bytes = attribute.s.as_deref().unwrap_or(&[]);
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| malformed(format!("attribute {name} of {} is not UTF-8", self.label())))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ModelError> {
        Ok(self.attribute(name, attribute_type::INT, "INT")?.map(|attribute| attribute.i.unwrap_or(0)))
    }

    pub fn float(&self, name: &str) -> Result<Option<f32>, ModelError> {
        Ok(self.attribute(name, attribute_type::FLOAT, "FLOAT")?.map(|attribute| attribute.f.unwrap_or(0.0)))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>, ModelError> {
        match self.attribute(name, attribute_type::TENSOR, "TENSOR")? {
            Some(attribute) => {
                let tensor = attribute
                    .t
                    .as_ref()
                    .ok_or_else(|| malformed(format!("attribute {name} of {} holds no tensor", self.label())))?;
                decode_tensor(tensor, &format!("attribute {name} of {}", self.label())).map(Some)
            }
            None => Ok(None),
        }
    }

    /// A float list given either as a FLOATS attribute `name` or as a tensor attribute
    /// `name_as_tensor` (ai.onnx.ml opset 3). The flag tells whether the values are doubles.
    pub fn floats_or_tensor(&self, name: &str) -> Result<(Vec<f64>, bool), ModelError> {
        let plain = self.floats(name)?;
        let tensor_name = format!("{name}_as_tensor");
        match self.tensor(&tensor_name)? {
            Some(tensor) => {
                if !plain.is_empty() {
                    return Err(invalid(format!("{} has both {name} and {tensor_name}", self.label())));
                }
                match tensor.data {
                    TensorData::Float32(values) => Ok((values.into_iter().map(f64::from).collect(), false)),
                    TensorData::Float64(values) => Ok((values, true)),
                    _ => Err(invalid(format!("{tensor_name} of {} is not a float or double tensor", self.label()))),
                }
            }
            None => Ok((plain.iter().map(|value| f64::from(*value)).collect(), false)),
        }
    }
}

/// The values of a constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TensorData {
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    /// Every integer and boolean type, widened.
    Integer(Vec<i64>),
    Strings(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tensor {
    pub dims: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn len(&self) -> usize {
        match &self.data {
            TensorData::Float32(values) => values.len(),
            TensorData::Float64(values) => values.len(),
            TensorData::Integer(values) => values.len(),
            TensorData::Strings(values) => values.len(),
        }
    }

    /// The values as `f64` when the tensor is numeric.
    pub fn numbers(&self) -> Option<Vec<f64>> {
        match &self.data {
            TensorData::Float32(values) => Some(values.iter().map(|value| f64::from(*value)).collect()),
            TensorData::Float64(values) => Some(values.clone()),
            TensorData::Integer(values) => Some(values.iter().map(|value| *value as f64).collect()),
            TensorData::Strings(_) => None,
        }
    }
}

/// Decodes a constant tensor. The element count its dimensions claim must match the data it
/// holds, so a file cannot make the importer allocate more than the file itself carries.
pub(super) fn decode_tensor(tensor: &TensorProto, what: &str) -> Result<Tensor, ModelError> {
    if tensor.data_location == Some(DATA_LOCATION_EXTERNAL) {
        return Err(unsupported(format!("{what} stores its data in an external file")));
    }
    let mut dims = Vec::with_capacity(tensor.dims.len());
    let mut count: usize = 1;
    for dim in &tensor.dims {
        let dim = usize::try_from(*dim).map_err(|_| invalid(format!("{what} has a negative dimension {dim}")))?;
        count = count.checked_mul(dim).ok_or_else(|| invalid(format!("{what} claims more elements than can exist")))?;
        dims.push(dim);
    }
    let element_type = tensor.data_type.unwrap_or(0);
    let raw = tensor.raw_data.as_deref();
    let data = match element_type {
        data_type::FLOAT => TensorData::Float32(match raw {
            Some(raw) => fixed_width(raw, count, 4, what)?
                .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
                .collect(),
            None => tensor.float_data.clone(),
        }),
        data_type::DOUBLE => TensorData::Float64(match raw {
            Some(raw) => fixed_width(raw, count, 8, what)?
                .map(|bytes| f64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])))
                .collect(),
            None => tensor.double_data.clone(),
        }),
        data_type::INT64 => TensorData::Integer(match raw {
            Some(raw) => fixed_width(raw, count, 8, what)?
                .map(|bytes| i64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])))
                .collect(),
            None => tensor.int64_data.clone(),
        }),
        data_type::INT32
        | data_type::INT16
        | data_type::INT8
        | data_type::UINT16
        | data_type::UINT8
        | data_type::BOOL => TensorData::Integer(match raw {
            Some(raw) => {
                let width = match element_type {
                    data_type::INT32 => 4,
                    data_type::INT16 | data_type::UINT16 => 2,
                    _ => 1,
                };
                fixed_width(raw, count, width, what)?
                    .map(|bytes| match (element_type, bytes) {
                        (data_type::INT32, [a, b, c, d]) => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
                        (data_type::INT16, [a, b]) => i64::from(i16::from_le_bytes([*a, *b])),
                        (data_type::UINT16, [a, b]) => i64::from(u16::from_le_bytes([*a, *b])),
                        (data_type::INT8, [a]) => i64::from(*a as i8),
                        (_, [a]) => i64::from(*a),
                        _ => 0,
                    })
                    .collect()
            }
            None => tensor.int32_data.iter().map(|value| i64::from(*value)).collect(),
        }),
        data_type::UINT32 | data_type::UINT64 => TensorData::Integer(match raw {
            Some(raw) => {
                let width = if element_type == data_type::UINT32 { 4 } else { 8 };
                fixed_width(raw, count, width, what)?
                    .map(|bytes| {
                        let mut wide = [0u8; 8];
                        wide[..bytes.len()].copy_from_slice(bytes);
                        u64::from_le_bytes(wide).min(i64::MAX as u64) as i64
                    })
                    .collect()
            }
            None => tensor.uint64_data.iter().map(|value| (*value).min(i64::MAX as u64) as i64).collect(),
        }),
        data_type::STRING => TensorData::Strings(
            tensor
                .string_data
                .iter()
                .map(|bytes| {
                    String::from_utf8(bytes.clone())
                        .map_err(|_| malformed(format!("{what} holds a string that is not UTF-8")))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(unsupported(format!("{what} has element type {other}"))),
    };
    let tensor = Tensor { dims, data };
    if tensor.len() != count {
        return Err(invalid(format!("{what} claims {count} elements but holds {}", tensor.len())));
    }
    Ok(tensor)
}

/// Splits raw little-endian data into `count` elements of `width` bytes, checking the length.
fn fixed_width<'a>(
    raw: &'a [u8],
    count: usize,
    width: usize,
    what: &str,
) -> Result<std::slice::ChunksExact<'a, u8>, ModelError> {
    match count.checked_mul(width) {
        Some(expected) if expected == raw.len() => Ok(raw.chunks_exact(width)),
        _ => Err(invalid(format!("{what} claims {count} elements but holds {} bytes of data", raw.len()))),
    }
}
