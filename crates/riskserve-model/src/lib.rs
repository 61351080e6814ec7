//! riskserve's scoring core: one model representation, importers that produce it from XGBoost,
//! LightGBM, ONNX-ML and PMML files, and an evaluator that scores it exactly as the library that
//! trained the model, only faster. No I/O and no async: callers hand in bytes and rows.

pub mod compile;
pub mod error;
pub mod eval;
pub mod forest;
pub mod input;
pub mod ir;
pub mod kernel;
pub mod lightgbm;
pub mod onnx;
pub mod pmml;
pub mod preprocess;
pub mod quantised;
pub mod scorecard;
pub mod shap;
pub mod ubjson;
pub mod xgboost;

pub use compile::{CompileReport, EvaluatorChoice};
pub use error::{Format, InputError, ModelError};
pub use eval::{Predictor, Scratch};
pub use ir::Model;
pub use kernel::{Kernel, KernelChoice};

/// Largest model file accepted, so that no importer is asked to hold absurd inputs.
pub const MAX_MODEL_BYTES: usize = 1 << 30;

/// Tells the format of a model file from its content.
pub fn detect_format(bytes: &[u8]) -> Result<Format, ModelError> {
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace()).map(|start| &bytes[start..]).unwrap_or(&[]);
    if text_start.is_empty() {
        return Err(ModelError::UnknownFormat("the file is empty".into()));
    }
    if text_start.starts_with(b"<") {
        return Ok(Format::Pmml);
    }
    if text_start.starts_with(b"{") {
        // Both XGBoost JSON and UBJSON open with '{'; UBJSON follows it with a type marker or a
        // length-prefixed key ('i', 'U', 'l', 'L', '$', '#'), JSON with whitespace or a quote.
        return Ok(match text_start.get(1) {
            Some(b'"') | Some(b' ') | Some(b'\n') | Some(b'\r') | Some(b'\t') | Some(b'}') => Format::XgboostJson,
            _ => Format::XgboostUbj,
        });
    }
    if text_start.starts_with(b"tree\n") || text_start.starts_with(b"tree\r\n") {
        return Ok(Format::Lightgbm);
    }
    // ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if bytes.first() == Some(&0x08) {
        return Ok(Format::Onnx);
    }
    Err(ModelError::UnknownFormat(
        "not XGBoost JSON or UBJSON, a LightGBM text model, ONNX or PMML; pass --format to say which".into(),
    ))
}

/// Loads a model from its bytes, detecting the format unless it is given. The model is validated.
pub fn load_model(bytes: &[u8], format: Option<Format>) -> Result<Model, ModelError> {
    if bytes.len() > MAX_MODEL_BYTES {
        return Err(ModelError::UnknownFormat(format!(
            "the file has {} bytes, more than the {MAX_MODEL_BYTES} accepted",
            bytes.len()
        )));
    }
    let format = match format {
        Some(format) => format,
        None => detect_format(bytes)?,
    };
    let model = match format {
        Format::XgboostJson => xgboost::load_json(bytes)?,
        Format::XgboostUbj => xgboost::load_ubj(bytes)?,
        Format::Lightgbm => lightgbm::load(bytes)?,
        Format::Onnx => onnx::load(bytes)?,
        Format::Pmml => pmml::load(bytes)?,
        Format::Model => return Err(ModelError::UnknownFormat("no importer reads the format \"model\"".into())),
    };
    model.validate()?;
    Ok(model)
}
