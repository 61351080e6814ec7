//! SageMaker's runtime on `POST /endpoints/{name}/invocations` for SageMaker clients: the content
//! types of the built-in XGBoost container (`text/csv`, `text/libsvm`, `application/json`,
//! `application/jsonlines`), its answers (and `SAGEMAKER_INFERENCE_OUTPUT`), the `X-Amzn-SageMaker-*`
//! headers, and SageMaker's error shapes. Requests are translated into the native JSON invocation
//! and its answer back; scoring is the service's.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use riskserve_service::Cell;
use riskserve_service::ServiceError;
use riskserve_service::{BodyFormat, decode_csv};
use riskserve_service::{Caller, Resource};
use riskserve_service::{InvocationRequest, Service};

use crate::respond::status_of;

const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
const TARGET_MODEL: &str = "x-amzn-sagemaker-target-model";
const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";
const ENABLE_EXPLANATIONS: &str = "x-amzn-sagemaker-enable-explanations";
const INVOKED_VARIANT: &str = "x-amzn-invoked-production-variant";

/// The content types of a SageMaker invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Csv,
    Libsvm,
    Json,
    JsonLines,
}

impl Payload {
    /// Reads a `Content-Type` or `Accept` value (parameters ignored); `None` when unknown.
    pub fn parse(value: &str) -> Option<Payload> {
        match value.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "text/csv" => Some(Payload::Csv),
            "text/libsvm" | "text/x-libsvm" => Some(Payload::Libsvm),
            "application/json" => Some(Payload::Json),
            "application/jsonlines" | "application/x-jsonlines" | "application/jsonl" => Some(Payload::JsonLines),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Payload::Csv => "text/csv",
            Payload::Libsvm => "text/libsvm",
            Payload::Json => "application/json",
            Payload::JsonLines => "application/jsonlines",
        }
    }
}

/// Whether a request on the invocation path gets SageMaker's shapes: it is SigV4-signed (as boto3,
/// the AWS CLI and the SageMaker SDK sign every request), or it speaks a content type only the
/// SageMaker runtime takes. Everything else gets the native shapes of `docs/server.md`.
pub fn speaks_sagemaker(headers: &HeaderMap) -> bool {
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256"));
    let sagemaker_only_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(Payload::parse)
        .is_some_and(|payload| matches!(payload, Payload::Libsvm | Payload::JsonLines));
    signed || headers.contains_key("x-amz-date") || sagemaker_only_type
}

/// A SageMaker runtime error.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// For `ModelError`: the status the model's side answered.
    pub original_status: Option<u16>,
    pub retry_after: Option<u32>,
}

impl RuntimeError {
    fn validation(message: impl Into<String>) -> RuntimeError {
        RuntimeError {
            status: StatusCode::BAD_REQUEST,
            kind: "ValidationError",
            message: message.into(),
            original_status: None,
            retry_after: None,
        }
    }
}

impl From<ServiceError> for RuntimeError {
    fn from(error: ServiceError) -> RuntimeError {
        if let ServiceError::Internal(detail) = &error {
            eprintln!("riskserve: internal error: {detail}");
        }
        let message = error.public_message();
        let mut translated = RuntimeError::validation(message);
        match &error {
            ServiceError::Validation(_) | ServiceError::NotFound(_) | ServiceError::UnsupportedMediaType(_) => {}
            ServiceError::PayloadTooLarge(_) => translated.status = StatusCode::PAYLOAD_TOO_LARGE,
            // Rows the model refuses: the model's answer, as a container's 4xx reaches the client.
            ServiceError::InvalidInput(_) | ServiceError::InvalidArtifact(_) => {
                translated.status = StatusCode::FAILED_DEPENDENCY;
                translated.kind = "ModelError";
                translated.original_status = Some(400);
            }
            ServiceError::InvalidState(_) => {
                translated.status = StatusCode::TOO_MANY_REQUESTS;
                translated.kind = "ModelNotReadyException";
            }
            ServiceError::Overloaded { retry_after_seconds, .. } => {
                translated.status = StatusCode::SERVICE_UNAVAILABLE;
                translated.kind = "ServiceUnavailable";
                translated.retry_after = Some(*retry_after_seconds);
            }
            ServiceError::Internal(_) => {
                translated.status = StatusCode::INTERNAL_SERVER_ERROR;
                translated.kind = "InternalFailure";
            }
            _ => {
                translated.status = status_of(&error);
                translated.kind = match status_of(&error) {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "AccessDeniedException",
                    status if status.is_server_error() => "InternalFailure",
                    _ => "ValidationError",
                };
            }
        }
        translated
    }
}

impl IntoResponse for RuntimeError {
    fn into_response(self) -> Response {
        let mut body = json!({"ErrorCode": self.kind, "message": self.message});
        if let (Value::Object(members), Some(original)) = (&mut body, self.original_status) {
            members.insert("OriginalStatusCode".to_string(), json!(original));
            members.insert("OriginalMessage".to_string(), json!(self.message));
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, RuntimeError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| RuntimeError::validation(format!("the {name} header is not readable text"))),
    }
}

/// `X-Amzn-SageMaker-Enable-Explanations`: SageMaker takes a JMESPath expression such as
/// `` `true` ``; riskserve reads `true` with or without the backquotes.
fn explanations_asked(value: Option<&str>) -> bool {
    value.is_some_and(|value| value.trim().trim_matches('`').trim().eq_ignore_ascii_case("true"))
}

/// Handles one SageMaker invocation.
pub async fn invoke(
    service: &Service,
    caller: &Caller,
    endpoint: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match answer(service, caller, endpoint, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(
    service: &Service,
    caller: &Caller,
    endpoint: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RuntimeError> {
    // Metrics count from arrival and meter usage by principal, as for native invocations.
    let context = riskserve_service::InvocationContext::now(caller.principal.name.clone());
    service.authorize(caller, "sagemaker:InvokeEndpoint", Resource::Endpoint(endpoint.to_string())).await?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RuntimeError::from(ServiceError::PayloadTooLarge("the request body exceeds the server's limit".into()))
        } else {
            RuntimeError::validation(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })?;
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str())?.unwrap_or("text/csv");
    let payload = Payload::parse(content_type).ok_or_else(|| {
        RuntimeError::validation(format!(
            "Content-Type {content_type:?} is not supported; send text/csv, text/libsvm, application/json or \
             application/jsonlines"
        ))
    })?;
    let accept = match header_text(headers, header::ACCEPT.as_str())? {
        None => default_accept(payload),
        Some(value) if value.trim().is_empty() || value.trim() == "*/*" => default_accept(payload),
        // The first type of a list that riskserve answers in.
        Some(value) => value
            .split(',')
            .find_map(|candidate| Payload::parse(candidate).filter(|accept| *accept != Payload::Libsvm))
            .ok_or_else(|| {
                RuntimeError::validation(format!(
                    "Accept {value:?} is not supported; accept text/csv, application/json or application/jsonlines"
                ))
            })?,
    };
    if header_text(headers, TARGET_MODEL)?.is_some() {
        return Err(RuntimeError::validation(
            "X-Amzn-SageMaker-Target-Model is for multi-model endpoints, which riskserve does not serve",
        ));
    }
    let target_variant = header_text(headers, TARGET_VARIANT)?.map(str::to_string);
    let explain = explanations_asked(header_text(headers, ENABLE_EXPLANATIONS)?);
    let Some(signature) = service.serving_signature(endpoint, target_variant.as_deref()) else {
        return Err(not_serving(service, endpoint, target_variant.as_deref()).await);
    };
    let instances = to_instances(&body, payload, &signature.inputs)?;
    let native = serde_json::to_vec(&json!({"instances": instances}))
        .map_err(|error| RuntimeError::from(ServiceError::internal(format!("cannot encode the rows: {error}"))))?;
    let inference_id = header_text(headers, INFERENCE_ID)?.map(str::to_string);
    if let Some(id) = &inference_id {
        riskserve_service::check_inference_id(id)?;
    }
    let request = InvocationRequest {
        body: Bytes::from(native),
        format: BodyFormat::Json,
        target_variant,
        explain,
        inference_id,
        original_body: Some((body.clone(), content_type.to_string())),
    };
    let answered = service.invoke_with(Some(endpoint), request, context).await?;
    let predictions = native_predictions(&answered.body)?;
    let model = service
        .serving_signature(endpoint, Some(&answered.variant))
        .map(|signature| signature.model)
        .unwrap_or(signature.model);
    let selection = crate::sagemaker::selected_outputs(service, &model).await;
    let encoded = encode(&predictions, accept, selection.as_deref().map(Vec::as_slice))?;
    let mut response = encoded.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(accept.content_type()));
    if let Ok(value) = HeaderValue::from_str(&answered.variant) {
        response_headers.insert(HeaderName::from_static(INVOKED_VARIANT), value);
    }
    for echoed in [CUSTOM_ATTRIBUTES, INFERENCE_ID] {
        if let Some(value) = headers.get(echoed) {
            response_headers.insert(HeaderName::from_static(echoed), value.clone());
        }
    }
    Ok(response)
}

/// Why an endpoint has nothing to answer with (read from the store: this is not the hot path).
async fn not_serving(service: &Service, endpoint: &str, variant: Option<&str>) -> RuntimeError {
    match (variant, service.serving_signature(endpoint, None)) {
        (Some(variant), Some(_)) => {
            RuntimeError::validation(format!("endpoint {endpoint:?} has no variant {variant:?}"))
        }
        _ if matches!(service.get_endpoint(endpoint).await, Err(ServiceError::NotFound(_))) => {
            RuntimeError::validation(format!(
                "Endpoint {endpoint} of account {} not found.",
                service.config().account_id
            ))
        }
        _ => {
            let config = service.config();
            RuntimeError {
                status: StatusCode::TOO_MANY_REQUESTS,
                kind: "ModelNotReadyException",
                message: format!(
                    "endpoint {endpoint:?} of account {} is not in service yet (it is being created, or it \
                     has failed)",
                    config.account_id
                ),
                original_status: None,
                retry_after: None,
            }
        }
    }
}

fn default_accept(payload: Payload) -> Payload {
    match payload {
        Payload::Libsvm => Payload::Csv,
        other => other,
    }
}

/// The rows of a body as native JSON instances (lists of values in the model's field order, or
/// objects of fields).
pub fn to_instances(body: &[u8], payload: Payload, fields: &[String]) -> Result<Vec<Value>, RuntimeError> {
    match payload {
        Payload::Csv => {
            let rows = decode_csv(body, fields)?;
            Ok(rows
                .into_iter()
                .map(|row| Value::Array(row.into_iter().map(|cell| cell_value(&cell)).collect()))
                .collect())
        }
        Payload::Libsvm => libsvm_rows(body, fields.len()),
        Payload::Json => {
            let document: Value = serde_json::from_slice(body)
                .map_err(|error| RuntimeError::validation(format!("the JSON body is malformed: {error}")))?;
            let rows = match document {
                Value::Object(mut members) => match members.remove("instances") {
                    Some(Value::Array(rows)) => rows,
                    Some(_) => return Err(RuntimeError::validation("\"instances\" must be a list of rows")),
                    None if members.contains_key("features") => vec![Value::Object(members)],
                    None => {
                        return Err(RuntimeError::validation(
                            "the JSON body has no \"instances\" member (nor \"features\")",
                        ));
                    }
                },
                // A list of rows, or one row of values.
                Value::Array(items) if items.iter().all(|item| item.is_array() || item.is_object()) => items,
                Value::Array(values) => vec![Value::Array(values)],
                _ => return Err(RuntimeError::validation("the JSON body must be an object or a list")),
            };
            rows.into_iter().enumerate().map(|(index, row)| json_row(row, index + 1)).collect()
        }
        Payload::JsonLines => {
            let text = std::str::from_utf8(body).map_err(|error| {
                RuntimeError::validation(format!("the JSON Lines body is not UTF-8 (byte {})", error.valid_up_to()))
            })?;
            let mut rows = Vec::new();
            for (index, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let row: Value = serde_json::from_str(line)
                    .map_err(|error| RuntimeError::validation(format!("JSON Lines line {}: {error}", index + 1)))?;
                rows.push(json_row(row, index + 1)?);
            }
            if rows.is_empty() {
                return Err(RuntimeError::validation("the JSON Lines body holds no rows"));
            }
            Ok(rows)
        }
    }
}

fn cell_value(cell: &Cell<'_>) -> Value {
    match cell {
        Cell::Missing => Value::Null,
        Cell::Number(number) => json!(number),
        Cell::Bool(flag) => Value::Bool(*flag),
        Cell::Text(text) => Value::String(text.to_string()),
    }
}

/// One JSON row: a list of values, an object of fields, or the XGBoost container's
/// `{"features": [...]}`.
fn json_row(row: Value, number: usize) -> Result<Value, RuntimeError> {
    match row {
        Value::Array(_) => Ok(row),
        Value::Object(mut members) => match members.remove("features") {
            Some(features @ Value::Array(_)) if members.is_empty() => Ok(features),
            Some(_) => Err(RuntimeError::validation(format!(
                "row {number}: \"features\" must be a list of values and the row's only member"
            ))),
            None => Ok(Value::Object(members)),
        },
        _ => Err(RuntimeError::validation(format!("row {number}: expected a list of values or an object of fields"))),
    }
}

/// `text/libsvm`: one row a line, `[label] index:value ...` with zero-based feature indices; an
/// absent feature is missing. A leading token without a colon is the label, and ignored.
pub fn libsvm_rows(body: &[u8], width: usize) -> Result<Vec<Value>, RuntimeError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        RuntimeError::validation(format!("the libsvm body is not UTF-8 (byte {})", error.valid_up_to()))
    })?;
    let mut rows = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        let line_number = line_index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut row = vec![Value::Null; width];
        for (position, token) in line.split_whitespace().enumerate() {
            let Some((index, value)) = token.split_once(':') else {
                if position == 0 {
                    continue;
                }
                return Err(RuntimeError::validation(format!(
                    "libsvm line {line_number}: {token:?} is not index:value"
                )));
            };
            let index: usize = index.parse().map_err(|_| {
                RuntimeError::validation(format!("libsvm line {line_number}: {index:?} is not a feature index"))
            })?;
            let value: f64 = value.parse().map_err(|_| {
                RuntimeError::validation(format!(
                    "libsvm line {line_number}, feature {index}: {value:?} is not a number"
                ))
            })?;
            let Some(slot) = row.get_mut(index) else {
                return Err(RuntimeError::validation(format!(
                    "libsvm line {line_number}: feature index {index} is past the model's {width} features \
                     (indices count from 0)"
                )));
            };
            *slot = serde_json::Number::from_f64(value).map(Value::Number).ok_or_else(|| {
                RuntimeError::validation(format!("libsvm line {line_number}, feature {index}: values must be finite"))
            })?;
        }
        rows.push(Value::Array(row));
    }
    if rows.is_empty() {
        return Err(RuntimeError::validation("the libsvm body holds no rows"));
    }
    Ok(rows)
}

fn native_predictions(body: &[u8]) -> Result<Vec<Map<String, Value>>, RuntimeError> {
    let broken = || RuntimeError::from(ServiceError::internal("the native answer is not the expected JSON"));
    let document: Value = serde_json::from_slice(body).map_err(|_| broken())?;
    let Some(Value::Array(items)) = document.get("predictions") else { return Err(broken()) };
    items.iter().map(|item| item.as_object().cloned().ok_or_else(broken)).collect()
}

fn values_of(prediction: &Map<String, Value>) -> Vec<f64> {
    prediction
        .get("values")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// A bare model answers `values` only; a pipeline adds its named outputs.
fn is_pipeline(prediction: &Map<String, Value>) -> bool {
    ["probability", "score", "grade", "decision"].iter().any(|key| prediction.contains_key(*key))
}

/// The keys `SAGEMAKER_INFERENCE_OUTPUT` selects, for one row, as the built-in XGBoost container
/// computes them: one value is a binary probability (a pipeline's `probability` when it has one),
/// several are class probabilities.
pub fn selected(prediction: &Map<String, Value>, keys: &[String]) -> Map<String, Value> {
    let values = values_of(prediction);
    let probability = prediction.get("probability").and_then(Value::as_f64);
    let probabilities: Vec<f64> = match (probability, values.as_slice()) {
        (Some(p), _) | (None, &[p]) => vec![1.0 - p, p],
        (None, many) => many.to_vec(),
    };
    let (label, best) =
        probabilities.iter().enumerate().fold((0usize, f64::NEG_INFINITY), |(at, best), (index, value)| {
            if *value > best { (index, *value) } else { (at, best) }
        });
    let binary = probabilities.len() == 2 && (probability.is_some() || values.len() == 1);
    let positive = probabilities.get(1).copied().unwrap_or(f64::NAN);
    let mut output = Map::new();
    for key in keys {
        let value = match key.as_str() {
            "predicted_label" => json!(if binary { usize::from(positive > 0.5) } else { label }),
            "labels" => json!((0..probabilities.len()).collect::<Vec<_>>()),
            "probability" | "raw_score" => json!(if binary { positive } else { best }),
            "probabilities" | "raw_scores" => json!(probabilities),
            "predicted_score" => json!(values.first().copied().or(probability)),
            _ => Value::Null,
        };
        output.insert(key.clone(), value);
    }
    output
}

/// Encodes the answer as the built-in XGBoost container does: selected outputs when the model
/// names them; else a bare model's values (CSV: one line of single values joined by commas, or a
/// line per row; JSON: `{"predictions": [{"score": v}]}`), or a pipeline's outcomes.
pub fn encode(
    predictions: &[Map<String, Value>],
    accept: Payload,
    selection: Option<&[String]>,
) -> Result<Vec<u8>, RuntimeError> {
    let objects: Vec<Map<String, Value>> = predictions
        .iter()
        .map(|prediction| match selection {
            Some(keys) => selected(prediction, keys),
            None if is_pipeline(prediction) => {
                let mut outcome = prediction.clone();
                outcome.remove("values");
                outcome
            }
            None => {
                let values = values_of(prediction);
                let score = if values.len() == 1 { json!(values[0]) } else { json!(values) };
                let mut outcome = Map::new();
                outcome.insert("score".to_string(), score);
                // Explanations asked of a bare model come along.
                for key in ["contributions", "reasons"] {
                    if let Some(value) = prediction.get(key) {
                        outcome.insert(key.to_string(), value.clone());
                    }
                }
                outcome
            }
        })
        .collect();
    Ok(match accept {
        Payload::Json => json!({"predictions": objects}).to_string().into_bytes(),
        Payload::JsonLines => {
            let mut text = String::new();
            for object in objects {
                text.push_str(&Value::Object(object).to_string());
                text.push('\n');
            }
            text.into_bytes()
        }
        Payload::Csv | Payload::Libsvm => {
            let lines: Vec<String> = objects.iter().map(|object| csv_line(object, selection)).collect();
            let single = selection.is_none() && predictions.iter().all(|p| !is_pipeline(p) && values_of(p).len() == 1);
            if single { lines.join(",") } else { lines.join("\n") }.into_bytes()
        }
    })
}

fn csv_line(object: &Map<String, Value>, selection: Option<&[String]>) -> String {
    let order: Vec<String> = match selection {
        Some(keys) => keys.to_vec(),
        None => ["score", "probability", "grade", "decision"]
            .iter()
            .filter(|key| object.contains_key(**key))
            .map(|key| key.to_string())
            .collect(),
    };
    // A pipeline's CSV follows the native column order: probability, score, grade, decision.
    let order = if selection.is_none() && object.contains_key("probability") {
        ["probability", "score", "grade", "decision"]
            .iter()
            .filter(|key| object.contains_key(**key))
            .map(|key| key.to_string())
            .collect()
    } else {
        order
    };
    let cells: Vec<String> = order
        .iter()
        .map(|key| match object.get(key) {
            Some(Value::Array(items)) => {
                let inner: Vec<String> = items.iter().map(Value::to_string).collect();
                format!("\"[{}]\"", inner.join(", "))
            }
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => "nan".to_string(),
            Some(other) => other.to_string(),
        })
        .collect();
    cells.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(count: usize) -> Vec<String> {
        (0..count).map(|index| format!("f{index}")).collect()
    }

    #[test]
    fn every_content_type_becomes_the_same_rows() {
        let expected = vec![json!(["1", null, "3"]), json!(["4", "5", null])];
        assert_eq!(to_instances(b"1,,3\n4,5,\n", Payload::Csv, &fields(3)).expect("csv"), expected);
        let libsvm = to_instances(b"0 0:1 2:3\n1 0:4 1:5\n", Payload::Libsvm, &fields(3)).expect("libsvm");
        assert_eq!(libsvm, vec![json!([1.0, null, 3.0]), json!([4.0, 5.0, null])]);
        let json_body = br#"{"instances": [{"features": [1, null, 3]}, [4, 5, null]]}"#;
        assert_eq!(
            to_instances(json_body, Payload::Json, &fields(3)).expect("json"),
            vec![json!([1, null, 3]), json!([4, 5, null])]
        );
        assert_eq!(to_instances(b"[1, 2, 3]", Payload::Json, &fields(3)).expect("one row"), vec![json!([1, 2, 3])]);
        let lines = to_instances(b"[1, null, 3]\n{\"features\": [4, 5, null]}\n\n", Payload::JsonLines, &fields(3));
        assert_eq!(lines.expect("jsonlines"), vec![json!([1, null, 3]), json!([4, 5, null])]);
    }

    #[test]
    fn bad_rows_are_named() {
        let error = libsvm_rows(b"1 0:1\n1 7:2\n", 3).expect_err("index");
        assert!(error.message.contains("line 2") && error.message.contains("index 7"), "{}", error.message);
        let error = libsvm_rows(b"1 0:x\n", 3).expect_err("value");
        assert!(error.message.contains("\"x\""), "{}", error.message);
        let error = to_instances(b"[1]\n{oops\n", Payload::JsonLines, &fields(1)).expect_err("line");
        assert!(error.message.contains("line 2"), "{}", error.message);
        assert!(to_instances(b"{\"rows\": []}", Payload::Json, &fields(1)).is_err());
        assert!(to_instances(b"\xff", Payload::Libsvm, &fields(1)).is_err());
    }

    #[test]
    fn answers_follow_the_xgboost_container() {
        let bare = |value: f64| json!({"values": [value]}).as_object().cloned().expect("object");
        let rows = vec![bare(0.25), bare(0.75)];
        assert_eq!(encode(&rows, Payload::Csv, None).expect("csv"), b"0.25,0.75");
        assert_eq!(
            String::from_utf8(encode(&rows, Payload::Json, None).expect("json")).expect("utf8"),
            r#"{"predictions":[{"score":0.25},{"score":0.75}]}"#
        );
        let keys = vec!["predicted_label".to_string(), "probabilities".to_string()];
        assert_eq!(
            encode(&rows, Payload::Csv, Some(&keys)).expect("selected"),
            b"0,\"[0.75, 0.25]\"\n1,\"[0.25, 0.75]\""
        );
        let lines = String::from_utf8(encode(&rows, Payload::JsonLines, Some(&keys)).expect("lines")).expect("utf8");
        assert_eq!(
            lines,
            "{\"predicted_label\":0,\"probabilities\":[0.75,0.25]}\n{\"predicted_label\":1,\"probabilities\":[0.25,0.75]}\n"
        );
        let multi = [json!({"values": [0.1, 0.7, 0.2]}).as_object().cloned().expect("object")];
        let chosen = selected(&multi[0], &["predicted_label".into(), "probability".into()]);
        assert_eq!(Value::Object(chosen), json!({"predicted_label": 1, "probability": 0.7}));
    }

    #[test]
    fn errors_take_sagemaker_shapes() {
        let cases = [
            (ServiceError::InvalidInput("row 1".into()), "ModelError", 424),
            (ServiceError::InvalidState("Creating".into()), "ModelNotReadyException", 429),
            (ServiceError::Validation("bad".into()), "ValidationError", 400),
            (ServiceError::Overloaded { message: "full".into(), retry_after_seconds: 1 }, "ServiceUnavailable", 503),
        ];
        for (error, kind, status) in cases {
            let translated = RuntimeError::from(error);
            assert_eq!((translated.kind, translated.status.as_u16()), (kind, status));
        }
        assert!(
            explanations_asked(Some("`true`"))
                && explanations_asked(Some("TRUE"))
                && !explanations_asked(Some("`false`"))
        );
    }

    #[test]
    fn sagemaker_clients_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        assert!(!speaks_sagemaker(&headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"));
        assert!(speaks_sagemaker(&headers));
        let mut libsvm = HeaderMap::new();
        libsvm.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/libsvm"));
        assert!(speaks_sagemaker(&libsvm));
    }
}
