//! `riskserve demo`: the embedded server with the German Credit example endpoints deployed, ready to invoke.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::{Client, ClientError};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the metadata database and the artifacts; what is already deployed there is kept.
    #[arg(long, value_name = "DIR", default_value = "./riskserve-data")]
    pub data_dir: PathBuf,
}

/// One example of `examples/german-credit`, embedded so that the demo runs from anywhere.
struct Example {
    /// The name of its model, endpoint config and endpoint.
    name: &'static str,
    what: &'static str,
    /// The model file, under the name the pipeline spec gives it.
    artifact: (&'static str, &'static [u8]),
    pipeline: &'static [u8],
    /// Rows with a header, in the pipeline's field names; the first one goes into the printed invocation.
    input: &'static str,
}

const EXAMPLES: [Example; 2] = [
    Example {
        name: "german-credit-xgboost",
        what: "XGBoost, calibrated probability, score, grade, decision, reason codes",
        artifact: ("model.json", include_bytes!("../../../examples/german-credit/xgboost/model.json")),
        pipeline: include_bytes!("../../../examples/german-credit/xgboost/pipeline.json"),
        input: include_str!("../../../examples/german-credit/xgboost/input.csv"),
    },
    Example {
        name: "german-credit-scorecard",
        what: "PMML scorecard, points, grade, decision, reason codes",
        artifact: ("scorecard.pmml", include_bytes!("../../../examples/german-credit/scorecard/scorecard.pmml")),
        pipeline: include_bytes!("../../../examples/german-credit/scorecard/pipeline.json"),
        input: include_str!("../../../examples/german-credit/scorecard/input.csv"),
    },
];

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut config = riskserve_server::ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        ..riskserve_server::ServerConfig::default()
    };
    let token = demo_token(&args.data_dir)?;
    config.auth.bootstrap.token = Some(token.clone());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    // The server runs (and handles Ctrl-C) on its own thread; this one deploys over HTTP like any client.
    let server = std::thread::spawn(move || runtime.block_on(riskserve_server::serve(config)));
    let host = if args.listen.ip().is_unspecified() { "127.0.0.1".to_string() } else { args.listen.ip().to_string() };
    let url = match args.listen {
        SocketAddr::V4(_) => format!("http://{host}:{}", args.listen.port()),
        SocketAddr::V6(_) => format!("http://[{host}]:{}", args.listen.port()),
    };
    let client = Client::new(&url, Some(token.clone()), Duration::from_secs(60));
    let start = Instant::now();
    loop {
        if server.is_finished() {
            return match server.join() {
                Ok(Ok(())) => bail!("the server stopped before it was ready"),
                Ok(Err(error)) => Err(error),
                Err(_) => bail!("the server thread panicked"),
            };
        }
        if client.get_json("/healthz").is_ok() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("the server did not answer {url}/healthz within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for example in &EXAMPLES {
        deploy(&client, example).with_context(|| format!("cannot deploy the example `{}`", example.name))?;
    }
    print!("{}", instructions(&url, &token, &args.data_dir));
    match server.join() {
        Ok(result) => result,
        Err(_) => bail!("the server thread panicked"),
    }
}

/// Creates what is missing of one example: model (with its pipeline), endpoint config, endpoint; waits until the
/// endpoint serves.
fn deploy(client: &Client, example: &Example) -> anyhow::Result<()> {
    let name = example.name;
    if !exists(client, &format!("/api/v1/models/{name}"))? {
        let (file_name, bytes) = example.artifact;
        let artifact = upload(client, bytes)?;
        let pipeline = upload(client, example.pipeline)?;
        let body = json!({
            "name": name,
            "artifacts": [{"name": file_name, "digest": artifact}],
            "pipeline": pipeline,
            "description": format!("German Credit example: {}", example.what),
            "tags": {"example": "german-credit"},
        });
        client.post_json("/api/v1/models", &body)?;
    }
    if !exists(client, &format!("/api/v1/endpoint-configs/{name}"))? {
        client.post_json(
            "/api/v1/endpoint-configs",
            &json!({"name": name, "variants": [{"name": "main", "model": name, "weight": 1.0, "instances": 1}]}),
        )?;
    }
    if !exists(client, &format!("/api/v1/endpoints/{name}"))? {
        client.post_json("/api/v1/endpoints", &json!({"name": name, "config": name}))?;
    }
    let start = Instant::now();
    loop {
        let endpoint = client.get_json(&format!("/api/v1/endpoints/{name}"))?;
        match endpoint.get("status").and_then(Value::as_str) {
            Some("InService") => return Ok(()),
            Some("Failed") => bail!(
                "endpoint `{name}` failed: {}",
                endpoint.get("failure_reason").and_then(Value::as_str).unwrap_or("no reason given")
            ),
            _ if start.elapsed() > Duration::from_secs(120) => bail!("endpoint `{name}` is not InService after 120 s"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn exists(client: &Client, path: &str) -> anyhow::Result<bool> {
    match client.get_json(path) {
        Ok(_) => Ok(true),
        Err(error) if error.is_not_found() => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn upload(client: &Client, bytes: &[u8]) -> Result<String, ClientError> {
    let answer = client.put_bytes("/api/v1/artifacts", "application/octet-stream", bytes)?;
    Ok(answer.get("digest").and_then(Value::as_str).unwrap_or_default().to_string())
}

/// The administrator's token of the demo: `RISKSERVE_ADMIN_TOKEN` or `RISKSERVE_TOKEN` when set, else the one
/// kept in `<data-dir>/demo-token` (made at the first start, readable by its owner only), so that a second start
/// of the same data directory knows it.
fn demo_token(data_dir: &std::path::Path) -> anyhow::Result<String> {
    for name in ["RISKSERVE_ADMIN_TOKEN", "RISKSERVE_TOKEN"] {
        if let Some(token) = std::env::var(name).ok().filter(|token| !token.is_empty()) {
            return Ok(token);
        }
    }
    let path = data_dir.join("demo-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let token = riskserve_server::new_token().map_err(|error| anyhow::anyhow!("cannot make a token: {error}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// What to paste: a CSV and a JSON invocation of each example, on one line each, with the bearer token.
fn instructions(url: &str, token: &str, data_dir: &std::path::Path) -> String {
    let mut text = format!("\nriskserve demo: the German Credit examples are served at {url}\n");
    for example in &EXAMPLES {
        text.push_str(&format!("  endpoint {:<24}  {}\n", example.name, example.what));
    }
    let Some(example) = EXAMPLES.first() else { return text };
    let mut lines = example.input.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let row = lines.next().unwrap_or_default();
    let invocations = format!("{url}/endpoints/{}/invocations", example.name);
    text.push_str(&format!(
        "\nThe administrator's bearer token (kept in {}; RISKSERVE_TOKEN for the CLI):\n  {token}\n",
        data_dir.join("demo-token").display()
    ));
    text.push_str(&format!("\nThe web console: {url}/console (sign in with the token above)\n"));
    let authorization = shell_quote(&format!("Authorization: Bearer {token}"));
    text.push_str("\nScore one applicant (CSV: probability, score, grade, decision):\n");
    text.push_str(&format!(
        "  curl -s {} -H {authorization} -H 'Content-Type: text/csv' --data-binary {}\n",
        shell_quote(&invocations),
        shell_quote(row)
    ));
    let named = named_row(&header, row);
    text.push_str("\nThe same applicant as JSON, with reason codes:\n");
    text.push_str(&format!(
        "  curl -s {} -H {authorization} -H 'Content-Type: application/json' -d {}\n",
        shell_quote(&format!("{invocations}?explain=true")),
        shell_quote(&json!({"instances": [named]}).to_string())
    ));
    text.push_str(&format!(
        "\nMore: RISKSERVE_TOKEN={token} riskserve endpoint list --url {url}; the API is described at \
         {url}/api/v1/openapi.json\n"
    ));
    text.push_str("Serving until Ctrl-C\n");
    text
}

/// One CSV row as a JSON object by field name (numbers as numbers, empty cells left out).
fn named_row(header: &[&str], row: &str) -> Value {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(row.as_bytes());
    let mut object = serde_json::Map::new();
    if let Some(Ok(record)) = reader.records().next() {
        for (field, cell) in header.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            // Whole numbers print as integers (`67`, not `67.0`): the line is read by people before a server.
            let value = match (cell.parse::<i64>(), cell.parse::<f64>()) {
                (Ok(whole), _) => json!(whole),
                (_, Ok(number)) if number.is_finite() => json!(number),
                _ => json!(cell),
            };
            object.insert(field.to_string(), value);
        }
    }
    Value::Object(object)
}

/// Single-quoted for POSIX shells: a `'` inside becomes `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn rows_become_named_objects() {
        let row = named_row(&["a", "b", "c", "d"], "x y,12,\"p, q\",0.5");
        assert_eq!(row, json!({"a": "x y", "b": 12, "c": "p, q", "d": 0.5}));
        assert_eq!(named_row(&["a", "b"], ",1"), json!({"b": 1}));
    }

    #[test]
    fn instructions_hold_one_line_curl_invocations() {
        let text = instructions("http://127.0.0.1:8080", "rsk_t0k3n", std::path::Path::new("data"));
        let curls: Vec<&str> = text.lines().filter(|line| line.trim_start().starts_with("curl ")).collect();
        assert_eq!(curls.len(), 2, "{text}");
        assert!(curls[0].contains("'http://127.0.0.1:8080/endpoints/german-credit-xgboost/invocations'"));
        assert!(curls.iter().all(|curl| curl.contains("-H 'Authorization: Bearer rsk_t0k3n'")), "{text}");
        assert!(text.contains("The web console: http://127.0.0.1:8080/console (sign in with the token above)"));
    }
}
