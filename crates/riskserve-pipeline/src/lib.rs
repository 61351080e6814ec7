//! Inference pipelines: a feature schema, preprocessing steps, one or several models, calibration,
//! score scaling, a master scale, decisions and reason codes, compiled once into a flat program.
//! No I/O and no async: callers hand in the spec's bytes, the model files' bytes and rows.

pub mod spec;

/// The JSON Schema of the pipeline file format, as committed in `schemas/pipeline.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(spec::PipelineSpec);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
