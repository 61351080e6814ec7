//! `riskserve model create|list|describe|delete`: register model artifacts on a server and look at them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::http::segment;
use super::table::{self, cell, show};
use super::{Client, Connection, Output, list_all, parse_tags, print_json, print_list};

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Upload a model's files and register the model; the server checks that it loads and scores.
    Create(CreateArgs),
    /// List the registered models.
    List,
    /// Show one model: artifacts, inputs, outputs, tags.
    Describe {
        /// The model's name.
        name: String,
    },
    /// Delete a model that no live endpoint uses.
    Delete {
        /// The model's name.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The model's name: letters, digits and hyphens, at most 63 characters.
    #[arg(long)]
    pub name: String,
    /// A model file to upload (repeatable); the server stores it under its file name.
    #[arg(long, value_name = "FILE", required_unless_present = "artifact_url")]
    pub artifact: Vec<PathBuf>,
    /// A model file the server reads itself (`file:///abs/path`) instead of an upload.
    #[arg(long, value_name = "URL", conflicts_with = "artifact")]
    pub artifact_url: Option<String>,
    /// The model's format; the server detects it when omitted.
    #[arg(long)]
    pub format: Option<String>,
    /// A pipeline spec (JSON) that turns the model's raw output into probability, score, grade and decision.
    #[arg(long, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,
    /// A tag (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// Free text describing the model.
    #[arg(long)]
    pub description: Option<String>,
}

pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let output = args.connection.output;
    match args.command {
        ModelCommand::Create(create) => {
            let body = create_request(&client, &create)?;
            let model = client.post_json("/api/v1/models", &body)?;
            print_model(output, &model);
        }
        ModelCommand::List => {
            let models = list_all(&client, "/api/v1/models")?;
            print_list(
                output,
                &models,
                &[
                    ("NAME", &|model| cell(model, "name")),
                    ("FORMAT", &|model| cell(model, "format")),
                    ("INPUTS", &|model| count(model, "inputs")),
                    ("PIPELINE", &|model| if model["pipeline"].is_string() { "yes".into() } else { "no".into() }),
                    ("CREATED", &|model| cell(model, "created_at")),
                ],
            );
        }
        ModelCommand::Describe { name } => {
            let model = client.get_json(&format!("/api/v1/models/{}", segment(&name)))?;
            print_model(output, &model);
        }
        ModelCommand::Delete { name } => {
            client.delete(&format!("/api/v1/models/{}", segment(&name)))?;
            if output == Output::Json {
                print_json(&json!({"name": name, "deleted": true}));
            } else {
                eprintln!("model `{name}` deleted");
            }
        }
    }
    Ok(())
}

/// Uploads the artifacts and the pipeline, then builds the POST /api/v1/models body that names them by digest.
fn create_request(client: &Client, args: &CreateArgs) -> anyhow::Result<Value> {
    let mut body = json!({"name": args.name});
    if let Some(url) = &args.artifact_url {
        body["artifact_url"] = Value::String(url.clone());
    } else {
        let mut artifacts = Vec::new();
        for path in &args.artifact {
            let name = file_name(path)?;
            if artifacts.iter().any(|artifact: &Value| artifact["name"] == name) {
                bail!("two artifacts are named `{name}`; file names must differ");
            }
            let digest = upload(client, path)?;
            artifacts.push(json!({"name": name, "digest": digest}));
        }
        body["artifacts"] = Value::Array(artifacts);
    }
    if let Some(format) = &args.format {
        body["format"] = Value::String(format.clone());
    }
    if let Some(pipeline) = &args.pipeline {
        body["pipeline"] = Value::String(upload(client, pipeline)?);
    }
    if !args.tag.is_empty() {
        body["tags"] = parse_tags(&args.tag)?;
    }
    if let Some(description) = &args.description {
        body["description"] = Value::String(description.clone());
    }
    Ok(body)
}

/// PUTs a file's bytes to the content-addressed artifact store; returns its `sha256:…` digest.
fn upload(client: &Client, path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let answer = client
        .put_bytes("/api/v1/artifacts", "application/octet-stream", &bytes)
        .with_context(|| format!("cannot upload {}", path.display()))?;
    match answer.get("digest").and_then(Value::as_str) {
        Some(digest) => Ok(digest.to_string()),
        None => bail!("the server's answer to the upload of {} has no digest: {answer}", path.display()),
    }
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    match path.file_name().and_then(|name| name.to_str()) {
        Some(name) => Ok(name.to_string()),
        None => bail!("{} has no file name the server can store it under", path.display()),
    }
}

fn count(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_array).map_or("-".to_string(), |items| items.len().to_string())
}

fn print_model(output: Output, model: &Value) {
    if output == Output::Json {
        print_json(model);
        return;
    }
    print!(
        "{}",
        table::render_pairs(&[
            ("name", cell(model, "name")),
            ("format", cell(model, "format")),
            ("pipeline", cell(model, "pipeline")),
            ("inputs", cell(model, "inputs")),
            ("outputs", cell(model, "outputs")),
            ("tags", cell(model, "tags")),
            ("description", cell(model, "description")),
            ("created", cell(model, "created_at")),
        ])
    );
    let artifacts = model.get("artifacts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if !artifacts.is_empty() {
        let rows: Vec<Vec<String>> = artifacts
            .iter()
            .map(|artifact| vec![cell(artifact, "name"), show(&artifact["size"]), cell(artifact, "digest")])
            .collect();
        println!();
        print!("{}", table::render(&["ARTIFACT", "SIZE", "DIGEST"], &rows));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_uploads_every_file_then_names_them_by_digest() {
        let directory = std::env::temp_dir().join(format!("riskserve-client-model-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("model.json"), b"model bytes").unwrap();
        std::fs::write(directory.join("pipeline.json"), b"pipeline bytes").unwrap();
        let (url, server) = super::super::fake_server::serve(vec![
            (201, r#"{"digest": "sha256:aa", "size": 11}"#),
            (201, r#"{"digest": "sha256:bb", "size": 14}"#),
        ]);
        let client = Client::new(&url, None, std::time::Duration::from_secs(10));
        let args = CreateArgs {
            name: "credit".into(),
            artifact: vec![directory.join("model.json")],
            artifact_url: None,
            format: Some("xgboost-json".into()),
            pipeline: Some(directory.join("pipeline.json")),
            tag: vec!["team=risk".into()],
            description: Some("text".into()),
        };
        let body = create_request(&client, &args).unwrap();
        let uploads = server.join().unwrap();
        std::fs::remove_dir_all(&directory).unwrap();
        assert_eq!(uploads.len(), 2);
        for (upload, bytes) in uploads.iter().zip([&b"model bytes"[..], &b"pipeline bytes"[..]]) {
            assert_eq!((upload.method.as_str(), upload.path.as_str()), ("PUT", "/api/v1/artifacts"));
            assert_eq!(upload.body, bytes);
        }
        assert_eq!(
            body,
            json!({
                "name": "credit",
                "artifacts": [{"name": "model.json", "digest": "sha256:aa"}],
                "format": "xgboost-json",
                "pipeline": "sha256:bb",
                "tags": {"team": "risk"},
                "description": "text",
            })
        );
    }

    #[test]
    fn an_artifact_url_uploads_nothing() {
        let client = Client::new("http://127.0.0.1:9", None, std::time::Duration::from_secs(1));
        let args = CreateArgs {
            name: "credit".into(),
            artifact: Vec::new(),
            artifact_url: Some("file:///models/credit.json".into()),
            format: None,
            pipeline: None,
            tag: Vec::new(),
            description: None,
        };
        let body = create_request(&client, &args).unwrap();
        assert_eq!(body, json!({"name": "credit", "artifact_url": "file:///models/credit.json"}));
    }

    #[test]
    fn artifacts_are_stored_under_their_file_names() {
        assert_eq!(file_name(Path::new("/tmp/models/credit.json")).unwrap(), "credit.json");
        assert!(file_name(Path::new("/")).is_err());
    }
}
