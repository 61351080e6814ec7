//! Importer placeholder for pmml.

use crate::error::{Format, ModelError};
use crate::ir::Model;

/// Not implemented yet.
pub fn load(_bytes: &[u8]) -> Result<Model, ModelError> {
    Err(ModelError::unsupported(Format::Model, "pmml importer not implemented yet"))
}
