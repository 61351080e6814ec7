//! The ONNX importer's errors, one constructor per kind, so every converter names the format the same way.

use crate::error::{Format, ModelError};

pub(crate) fn malformed(message: impl Into<String>) -> ModelError {
    ModelError::malformed(Format::Onnx, message)
}

pub(crate) fn invalid(message: impl Into<String>) -> ModelError {
    ModelError::invalid(Format::Onnx, message)
}

pub(crate) fn unsupported(message: impl Into<String>) -> ModelError {
    ModelError::unsupported(Format::Onnx, message)
}
