//! Importer placeholder for lightgbm.

use crate::error::{Format, ModelError};
use crate::ir::Model;

/// Not implemented yet.
pub fn load(_bytes: &[u8]) -> Result<Model, ModelError> {
    Err(ModelError::unsupported(Format::Model, "lightgbm importer not implemented yet"))
}
