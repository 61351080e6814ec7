//! Errors of the scoring core: one enum for model files, one for input rows.

use std::fmt;

/// Which importer or stage produced an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    XgboostJson,
    XgboostUbj,
    Lightgbm,
    Onnx,
    Pmml,
    /// The model representation itself (checked after every importer).
    Model,
}

impl Format {
    /// The name the CLI's `--format` flag uses.
    pub fn name(self) -> &'static str {
        match self {
            Format::XgboostJson => "xgboost-json",
            Format::XgboostUbj => "xgboost-ubj",
            Format::Lightgbm => "lightgbm",
            Format::Onnx => "onnx",
            Format::Pmml => "pmml",
            Format::Model => "model",
        }
    }

    /// How an error message names the model: "xgboost-json model", or "the model" for the
    /// representation itself.
    pub fn subject(self) -> String {
        match self {
            Format::Model => "the model".to_owned(),
            other => format!("{} model", other.name()),
        }
    }

    /// Parses a `--format` value.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "xgboost-json" => Format::XgboostJson,
            "xgboost-ubj" => Format::XgboostUbj,
            "lightgbm" => Format::Lightgbm,
            "onnx" => Format::Onnx,
            "pmml" => Format::Pmml,
            _ => return None,
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model file that cannot be loaded. Messages name what is wrong and where, never echo secrets
/// (model files hold none) and have no trailing period.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// The bytes are not a well-formed file of the format (truncated, bad syntax, wrong types).
    #[error("{} is malformed: {message}", format.subject())]
    Malformed { format: Format, message: String },
    /// The file is well formed but describes a model that cannot be scored (bad indices, cycles,
    /// NaN thresholds, counts that disagree).
    #[error("{} is invalid: {message}", format.subject())]
    Invalid { format: Format, message: String },
    /// The file uses a feature riskserve does not support; the message names it.
    #[error("{} uses an unsupported feature: {message}", format.subject())]
    Unsupported { format: Format, message: String },
    /// The format could not be told from the content.
    #[error("cannot detect the model format: {0}")]
    UnknownFormat(String),
}

impl ModelError {
    pub fn malformed(format: Format, message: impl Into<String>) -> Self {
        ModelError::Malformed { format, message: message.into() }
    }
    pub fn invalid(format: Format, message: impl Into<String>) -> Self {
        ModelError::Invalid { format, message: message.into() }
    }
    pub fn unsupported(format: Format, message: impl Into<String>) -> Self {
        ModelError::Unsupported { format, message: message.into() }
    }
}

/// An input row that cannot be scored. `row` counts data rows from 1 (the header is not a row);
/// `column` is the column's name when the input has one.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
pub enum InputError {
    #[error("row {row}: expected {expected} columns, found {found}")]
    ColumnCount { row: usize, expected: usize, found: usize },
    #[error("row {row}, column {column:?}: {message}")]
    Cell { row: usize, column: String, message: String },
    #[error("input header: {0}")]
    Header(String),
    #[error("row {row}: {message}")]
    Row { row: usize, message: String },
}
