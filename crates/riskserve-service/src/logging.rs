//! Logs: plain lines by default; with `log_format = "json"` one JSON object per line (the HTTP façade adds one
//! per request, with its request id). Server messages go through [`event`], so that in JSON mode they are JSON
//! lines too, inside the span of the request they happened in.

use std::sync::OnceLock;

use serde::Deserialize;

/// How the server writes its log on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain lines (`riskserve: ...`), no line per request.
    #[default]
    Text,
    /// JSON lines (timestamp, level, message, fields, the request's span), one per request too.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?} is unknown; use text or json")),
        }
    }
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the log writer once per process (later calls keep the first format).
pub fn init(format: LogFormat) {
    if FORMAT.set(format).is_err() {
        return;
    }
    if format == LogFormat::Json {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .finish();
        // Another subscriber (a test's, an embedding program's) wins; riskserve then logs through it.
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// A server message: a JSON line in JSON mode (inside the current request's span), else a plain
/// `riskserve: ...` line as before.
pub fn event(message: &str) {
    if json() {
        tracing::info!("{message}");
    } else {
        eprintln!("riskserve: {message}");
    }
}

/// Whether requests get a log line each.
pub fn logs_requests() -> bool {
    json()
}
