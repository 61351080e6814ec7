//! Integration tests of the pipeline crate: the committed JSON Schema and the documented examples.

use std::path::PathBuf;

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed schema is what the Rust types produce; `RISKSERVE_BLESS=1` rewrites it.
#[test]
fn committed_schema_matches_the_types() {
    let path = repository_root().join("schemas/pipeline.schema.json");
    let generated = riskserve_pipeline::json_schema();
    if std::env::var_os("RISKSERVE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("the schema path has a folder")).expect("create schemas/");
        std::fs::write(&path, &generated).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).expect("schemas/pipeline.schema.json exists");
    assert_eq!(committed, generated, "schemas/pipeline.schema.json is stale; rerun with RISKSERVE_BLESS=1");
}

/// Every ```json block of docs/pipeline.md that holds a whole pipeline parses.
#[test]
fn documented_pipelines_parse() {
    let text = std::fs::read_to_string(repository_root().join("docs/pipeline.md")).expect("docs/pipeline.md");
    let mut parsed = 0;
    for block in text.split("```json").skip(1) {
        let Some((body, _)) = block.split_once("```") else { continue };
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        if value.get("version").is_some() {
            let spec: Result<riskserve_pipeline::spec::PipelineSpec, _> = serde_json::from_value(value);
            spec.unwrap_or_else(|e| panic!("{e}: {body}"));
            parsed += 1;
        } else if value.get("step").is_some() {
            let step: Result<riskserve_pipeline::spec::StepSpec, _> = serde_json::from_value(value);
            step.unwrap_or_else(|e| panic!("{e}: {body}"));
            parsed += 1;
        }
    }
    assert!(parsed >= 2, "docs/pipeline.md has too few examples");
}
