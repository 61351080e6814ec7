//! Importer placeholder for XGBoost.

use crate::error::{Format, ModelError};
use crate::ir::Model;

/// Not implemented yet.
pub fn load_json(_bytes: &[u8]) -> Result<Model, ModelError> {
    Err(ModelError::unsupported(Format::XgboostJson, "not implemented yet"))
}

/// Not implemented yet.
pub fn load_ubj(_bytes: &[u8]) -> Result<Model, ModelError> {
    Err(ModelError::unsupported(Format::XgboostUbj, "not implemented yet"))
}
