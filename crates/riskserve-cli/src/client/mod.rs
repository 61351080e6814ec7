//! Client commands (`model`, `endpoint-config`, `endpoint`): talk to a riskserve server over its native REST API.

pub mod audit;
pub mod cost;
pub mod endpoint;
pub mod endpoint_config;
#[cfg(test)]
mod fake_server;
mod http;
pub mod iam;
pub mod model;
pub mod monitor;
mod scaling;
mod stats;
mod table;

use std::time::Duration;

use anyhow::bail;
use serde_json::Value;

pub use http::{Client, ClientError};

/// Where the server is and how to print its answers; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, global = true, env = "RISKSERVE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How to print answers: aligned columns for people, or the server's JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Give up on a single request after this many seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 300.0)]
    pub request_timeout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

impl Connection {
    /// A client for this server; `RISKSERVE_TOKEN`, when set, is sent as a bearer token, else the token of the
    /// profile file (see [`profile_token`]).
    pub fn client(&self) -> anyhow::Result<Client> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            bail!("--url must start with http:// or https://, got `{}`", self.url);
        }
        let timeout = seconds(self.request_timeout, "--request-timeout")?;
        let token = std::env::var("RISKSERVE_TOKEN").ok().filter(|token| !token.is_empty()).or_else(profile_token);
        Ok(Client::new(&self.url, token, timeout))
    }
}

/// The token of the profile file: `RISKSERVE_TOKEN_FILE`, else `$XDG_CONFIG_HOME/riskserve/token` (or
/// `~/.config/riskserve/token`), when it exists; its first line.
fn profile_token() -> Option<String> {
    let path = match std::env::var_os("RISKSERVE_TOKEN_FILE") {
        Some(path) => std::path::PathBuf::from(path),
        None => {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".config")))?;
            config.join("riskserve").join("token")
        }
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().next().map(|line| line.trim().to_string()).filter(|token| !token.is_empty())
}

/// A positive, finite number of seconds as a duration; `flag` names where it came from.
pub fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{flag} must be a positive number of seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// Prints a JSON value for scripts: pretty, one trailing newline.
pub fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// Every item of a paginated list, following `next_token` until the server says there is no more.
pub fn list_all(client: &Client, path: &str) -> Result<Vec<Value>, ClientError> {
    let mut items = Vec::new();
    let mut next_token: Option<String> = None;
    // A server that keeps handing out tokens without items would loop forever; the bound stops that.
    for _ in 0..100_000 {
        let page_path = match &next_token {
            Some(token) => format!("{path}?next_token={}", http::segment(token)),
            None => path.to_string(),
        };
        let page = client.get_json(&page_path)?;
        let page_items = table::items(&page);
        items.extend(page_items.iter().cloned());
        next_token = page.get("next_token").and_then(Value::as_str).map(str::to_string);
        if next_token.is_none() || page_items.is_empty() {
            break;
        }
    }
    Ok(items)
}

/// A table column: its header and how to show one item in it.
pub type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// Prints a list: the items as a JSON array for scripts, else a table of `columns`.
pub fn print_list(output: Output, items: &[Value], columns: &[Column]) {
    match output {
        Output::Json => print_json(&Value::Array(items.to_vec())),
        Output::Table => {
            let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
            let rows: Vec<Vec<String>> =
                items.iter().map(|item| columns.iter().map(|(_, cell)| cell(item)).collect()).collect();
            print!("{}", table::render(&headers, &rows));
        }
    }
}

/// `KEY=VALUE` tags as a JSON object; a repeated key is an error.
pub fn parse_tags(tags: &[String]) -> anyhow::Result<Value> {
    let mut object = serde_json::Map::new();
    for tag in tags {
        let Some((key, value)) = tag.split_once('=') else {
            bail!("--tag `{tag}` must be KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--tag `{tag}` has an empty key");
        }
        if object.insert(key.to_string(), Value::String(value.to_string())).is_some() {
            bail!("--tag `{key}` is given twice");
        }
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_an_object() {
        let tags = parse_tags(&["team=risk".into(), "note=a=b".into(), "empty=".into()]).unwrap();
        assert_eq!(tags, serde_json::json!({"team": "risk", "note": "a=b", "empty": ""}));
    }

    #[test]
    fn bad_tags_are_named() {
        assert_eq!(parse_tags(&["team".into()]).unwrap_err().to_string(), "--tag `team` must be KEY=VALUE");
        assert_eq!(parse_tags(&["=x".into()]).unwrap_err().to_string(), "--tag `=x` has an empty key");
        assert_eq!(parse_tags(&["a=1".into(), "a=2".into()]).unwrap_err().to_string(), "--tag `a` is given twice");
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(seconds(1.5, "--x").unwrap(), Duration::from_millis(1500));
        assert!(seconds(0.0, "--x").is_err());
        assert!(seconds(f64::NAN, "--x").is_err());
        assert!(seconds(-1.0, "--x").is_err());
    }

    #[test]
    fn urls_need_a_scheme() {
        let connection = Connection { url: "127.0.0.1:8080".into(), output: Output::Table, request_timeout: 1.0 };
        assert_eq!(
            connection.client().err().unwrap().to_string(),
            "--url must start with http:// or https://, got `127.0.0.1:8080`"
        );
    }
}
