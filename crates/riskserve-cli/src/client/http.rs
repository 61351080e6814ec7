//! The HTTP side of the client commands: one blocking agent, the server's JSON errors turned into `code: message`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Answers larger than this are refused rather than buffered (lists and invocation answers are far smaller).
const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// What went wrong with one request: the server said no, or it could not be reached at all.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error status; `code` is its stable error code.
    Api { status: u16, code: String, message: String },
    /// No answer: connection refused, timeout, unreadable answer.
    Transport { url: String, reason: String },
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api { code, message, .. } => write!(formatter, "{code}: {message}"),
            ClientError::Transport { url, reason } => write!(formatter, "cannot reach riskserve at {url}: {reason}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A raw answer: status, the answering variant, and the body bytes.
pub struct Answer {
    pub status: u16,
    pub variant: Option<String>,
    pub body: Vec<u8>,
}

/// One server: its base URL, the bearer token when one is set, and a connection-reusing agent.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `url` is the server's base URL (`http://host:port`); `token` is sent as `Authorization: Bearer`.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            // Error statuses carry the server's JSON error, which is read rather than turned into a bare status.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        Client { agent, base: url.trim_end_matches('/').to_string(), token: token.filter(|token| !token.is_empty()) }
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let answer = self.send(Method::Get, path, None, &[])?;
        json_or_error(answer, &self.url(path))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = body.to_string().into_bytes();
        let answer = self.send(Method::Post, path, Some(("application/json", &bytes)), &[])?;
        json_or_error(answer, &self.url(path))
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = body.to_string().into_bytes();
        let answer = self.send(Method::Put, path, Some(("application/json", &bytes)), &[])?;
        json_or_error(answer, &self.url(path))
    }

    pub fn patch_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = body.to_string().into_bytes();
        let answer = self.send(Method::Patch, path, Some(("application/json", &bytes)), &[])?;
        json_or_error(answer, &self.url(path))
    }

    pub fn put_bytes(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value, ClientError> {
        let answer = self.send(Method::Put, path, Some((content_type, body)), &[])?;
        json_or_error(answer, &self.url(path))
    }

    pub fn post_bytes(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value, ClientError> {
        let answer = self.send(Method::Post, path, Some((content_type, body)), &[])?;
        json_or_error(answer, &self.url(path))
    }

    /// Deletes; the answer's JSON body when it has one (202 carries the endpoint), else `Value::Null`.
    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        let answer = self.send(Method::Delete, path, None, &[])?;
        json_or_error(answer, &self.url(path))
    }

    /// Sends any request and returns the raw answer, error statuses included.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ClientError> {
        let url = self.url(path);
        let transport = |error: ureq::Error| ClientError::Transport { url: url.clone(), reason: error.to_string() };
        let authorization = self.token.as_ref().map(|token| format!("Bearer {token}"));
        let response = match method {
            Method::Get | Method::Delete => {
                let mut request = if method == Method::Get { self.agent.get(&url) } else { self.agent.delete(&url) };
                if let Some(authorization) = &authorization {
                    request = request.header("Authorization", authorization);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            Method::Post | Method::Put | Method::Patch => {
                let mut request = match method {
                    Method::Post => self.agent.post(&url),
                    Method::Put => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                if let Some(authorization) = &authorization {
                    request = request.header("Authorization", authorization);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let (content_type, bytes) = body.unwrap_or(("application/octet-stream", &[]));
                request.header("Content-Type", content_type).send(bytes)
            }
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response.headers().get(name).and_then(|value| value.to_str().ok()).map(|value| value.to_string())
        };
        let variant = header("x-amzn-invoked-production-variant");
        let mut response = response;
        let body = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES).read_to_vec().map_err(transport)?;
        Ok(Answer { status, variant, body })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// The answer's JSON on success (`Value::Null` for an empty body), else the server's error.
fn json_or_error(answer: Answer, url: &str) -> Result<Value, ClientError> {
    if !(200..300).contains(&answer.status) {
        return Err(api_error(&answer));
    }
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&answer.body).map_err(|error| ClientError::Transport {
        url: url.to_string(),
        reason: format!("the answer is not JSON ({error})"),
    })
}

/// The server's `{"error": {"code", "message"}}`; any other error body is summarised with its status.
pub fn api_error(answer: &Answer) -> ClientError {
    let parsed: Option<(String, String)> = serde_json::from_slice::<Value>(&answer.body).ok().and_then(|value| {
        let error = value.get("error")?;
        let code = error.get("code")?.as_str()?.to_string();
        let message = error.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        Some((code, message))
    });
    match parsed {
        Some((code, message)) => ClientError::Api { status: answer.status, code, message },
        None => {
            let text = String::from_utf8_lossy(&answer.body);
            let text = text.trim();
            let mut summary: String = text.chars().take(200).collect();
            if summary.len() < text.len() {
                summary.push('…');
            }
            let message = if summary.is_empty() { format!("HTTP {}", answer.status) } else { summary };
            ClientError::Api { status: answer.status, code: format!("http_{}", answer.status), message }
        }
    }
}

/// One path segment, percent-encoded so that any name reaches the server as typed (the server judges it).
pub fn segment(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, variant: None, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn server_errors_read_as_code_and_message() {
        let error =
            api_error(&answer(404, r#"{"error": {"code": "not_found", "message": "endpoint `x` does not exist"}}"#));
        assert_eq!(error.to_string(), "not_found: endpoint `x` does not exist");
        assert!(error.is_not_found());
    }

    #[test]
    fn other_error_bodies_keep_their_status() {
        assert_eq!(api_error(&answer(405, "")).to_string(), "http_405: HTTP 405");
        assert_eq!(api_error(&answer(502, "bad gateway\n")).to_string(), "http_502: bad gateway");
        let long = "x".repeat(500);
        let message = api_error(&answer(500, &long)).to_string();
        assert!(message.ends_with('…') && message.len() < 300, "{message}");
    }

    #[test]
    fn success_bodies_are_json_or_nothing() {
        assert_eq!(json_or_error(answer(204, ""), "u").unwrap(), Value::Null);
        assert_eq!(json_or_error(answer(200, r#"{"a": 1}"#), "u").unwrap()["a"], 1);
        let error = json_or_error(answer(200, "<html>"), "http://h/x").unwrap_err();
        assert!(
            error.to_string().starts_with("cannot reach riskserve at http://h/x: the answer is not JSON"),
            "{error}"
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("credit-v2"), "credit-v2");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn base_url_loses_its_trailing_slash() {
        let client = Client::new("http://127.0.0.1:9/", Some(String::new()), Duration::from_secs(1));
        assert_eq!(client.url("/api/v1/models"), "http://127.0.0.1:9/api/v1/models");
        assert!(client.token.is_none());
    }

    #[test]
    fn requests_carry_the_bearer_token_and_their_body() {
        let (url, server) = super::super::fake_server::serve(vec![(201, r#"{"name": "m"}"#), (204, "")]);
        let client = Client::new(&url, Some("t0k3n".into()), Duration::from_secs(10));
        let created = client.post_json("/api/v1/models", &serde_json::json!({"name": "m"})).unwrap();
        assert_eq!(created["name"], "m");
        assert_eq!(client.delete("/api/v1/models/m").unwrap(), Value::Null);
        let requests = server.join().unwrap();
        assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("POST", "/api/v1/models"));
        assert_eq!(requests[0].header("authorization"), Some("Bearer t0k3n"));
        assert_eq!(requests[0].header("content-type"), Some("application/json"));
        assert_eq!(requests[0].json(), serde_json::json!({"name": "m"}));
        assert_eq!((requests[1].method.as_str(), requests[1].path.as_str()), ("DELETE", "/api/v1/models/m"));
        assert_eq!(requests[1].header("authorization"), Some("Bearer t0k3n"));
    }

    #[test]
    fn no_token_no_authorization_header() {
        let (url, server) =
            super::super::fake_server::serve(vec![(404, r#"{"error": {"code": "not_found", "message": "no"}}"#)]);
        let client = Client::new(&url, None, Duration::from_secs(10));
        let error = client.get_json("/api/v1/endpoints/x").unwrap_err();
        assert!(error.is_not_found());
        assert_eq!(server.join().unwrap()[0].header("authorization"), None);
    }

    #[test]
    fn unreachable_servers_are_named() {
        // Port 9 (discard) is closed on loopback in test environments; the error must name the URL.
        let client = Client::new("http://127.0.0.1:9", None, Duration::from_secs(5));
        let error = client.get_json("/api/v1/models").unwrap_err();
        assert!(error.to_string().starts_with("cannot reach riskserve at http://127.0.0.1:9/api/v1/models"), "{error}");
    }
}
