//! The Open Inference Protocol v2 over REST (KServe, Triton, MLServer; `tritonclient.http`):
//! health, server and model metadata, model readiness and inference with JSON tensors and the
//! binary tensor extension. An endpoint is a model and its variants are the model's versions.
//! Tensors are translated into the native JSON invocation and its answer back into tensors.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use riskserve_service::BodyFormat;
use riskserve_service::ServiceError;
use riskserve_service::{Caller, Resource};
use riskserve_service::{InvocationRequest, Service};

use crate::respond::status_of;

/// The header that gives the length of the JSON part of a binary-extension body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";
/// The name of the one input tensor that holds whole rows.
const ROWS_INPUT: &str = "input";
/// Outputs a request may ask for by name besides `probabilities`.
const NAMED_OUTPUTS: &[&str] = &["probabilities", "score", "grade", "decision", "reasons", "contributions"];

pub fn routes() -> Router<Service> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready_check))
        .route("/v2/models/{model}", get(model_metadata))
        .route("/v2/models/{model}/ready", get(model_ready))
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}", get(version_metadata))
        .route("/v2/models/{model}/versions/{version}/ready", get(version_ready))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer_version))
}

/// An error of the protocol: `{"error": "..."}` with a 4xx (or 5xx) status.
#[derive(Debug, Clone, PartialEq)]
pub struct OipError {
    pub status: StatusCode,
    pub message: String,
}

impl OipError {
    pub fn bad(message: impl Into<String>) -> OipError {
        OipError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<ServiceError> for OipError {
    fn from(error: ServiceError) -> OipError {
        if let ServiceError::Internal(detail) = &error {
            eprintln!("riskserve: internal error: {detail}");
        }
        let status = match &error {
            ServiceError::InvalidState(_) => StatusCode::BAD_REQUEST,
            _ => status_of(&error),
        };
        OipError { status, message: error.public_message() }
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

fn respond(result: Result<Response, OipError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

// ---- health and metadata ----

async fn live() -> Response {
    axum::Json(json!({"live": true, "ready": true})).into_response()
}

/// Ready once the server has recovered and serves the stored state; not ready (503) while it shuts down.
async fn ready_check(State(service): State<Service>) -> Response {
    let ready = service.ready();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({"live": true, "ready": ready}))).into_response()
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "riskserve",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
    .into_response()
}

async fn model_metadata(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(model): Path<String>,
) -> Response {
    respond(metadata(&service, &caller, &model, None).await)
}

async fn version_metadata(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    respond(metadata(&service, &caller, &model, Some(&version)).await)
}

async fn metadata(
    service: &Service,
    caller: &Caller,
    model: &str,
    version: Option<&str>,
) -> Result<Response, OipError> {
    service.authorize(caller, "sagemaker:DescribeEndpoint", Resource::Endpoint(model.to_string())).await?;
    let endpoint = service.get_endpoint(model).await?;
    if let Some(version) = version
        && !endpoint.variants.iter().any(|variant| variant.name == version)
    {
        return Err(OipError { status: StatusCode::NOT_FOUND, message: no_version(model, version) });
    }
    let signature = service.serving_signature(model, version);
    let (inputs, outputs) = match &signature {
        Some(signature) => (
            json!([{"name": ROWS_INPUT, "datatype": "FP64", "shape": [-1, signature.inputs.len()]}]),
            json!([{"name": "probabilities", "datatype": "FP64", "shape": [-1, -1]}]),
        ),
        None => (json!([]), json!([])),
    };
    let mut answer = json!({
        "name": endpoint.name,
        "versions": endpoint.variants.iter().map(|variant| variant.name.clone()).collect::<Vec<_>>(),
        "platform": "riskserve",
        "inputs": inputs,
        "outputs": outputs,
    });
    if let (Value::Object(members), Some(signature)) = (&mut answer, signature) {
        // The fields in positional order: the columns of `input`, or the names of per-field tensors.
        members.insert("parameters".to_string(), json!({"fields": signature.inputs, "version": signature.variant}));
    }
    Ok(axum::Json(answer).into_response())
}

fn no_version(model: &str, version: &str) -> String {
    format!("model {model:?} has no version {version:?}; its versions are the endpoint's variants")
}

async fn model_ready(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(model): Path<String>,
) -> Response {
    respond(ready(&service, &caller, &model, None).await)
}

async fn version_ready(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    respond(ready(&service, &caller, &model, Some(&version)).await)
}

async fn ready(service: &Service, caller: &Caller, model: &str, version: Option<&str>) -> Result<Response, OipError> {
    service.authorize(caller, "sagemaker:DescribeEndpoint", Resource::Endpoint(model.to_string())).await?;
    if service.serving_signature(model, version).is_some() {
        return Ok(axum::Json(json!({"name": model, "ready": true})).into_response());
    }
    let endpoint = service.get_endpoint(model).await?;
    let message = match version {
        Some(version) if endpoint.variants.iter().all(|variant| variant.name != version) => {
            return Err(OipError { status: StatusCode::NOT_FOUND, message: no_version(model, version) });
        }
        _ => format!("model {model:?} is not ready: the endpoint is {}", endpoint.status),
    };
    Err(OipError::bad(message))
}

// ---- inference ----

async fn infer(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(run_infer(&service, &caller, &model, None, &headers, body).await)
}

async fn infer_version(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(run_infer(&service, &caller, &model, Some(version), &headers, body).await)
}

/// A tensor as it arrived: its data as one flat list.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: String,
    pub data: Vec<Value>,
}

/// An inference request after the binary extension has been undone.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    pub id: Option<String>,
    pub inputs: Vec<Tensor>,
    /// The outputs asked for, and whether each wants binary data.
    pub outputs: Vec<(String, bool)>,
    /// `parameters.binary_data_output`: every output as binary data.
    pub binary_output: bool,
}

async fn run_infer(
    service: &Service,
    caller: &Caller,
    model: &str,
    version: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OipError> {
    // Metrics count from arrival and meter usage by principal, as for native invocations.
    let context = riskserve_service::InvocationContext::now(caller.principal.name.clone());
    service.authorize(caller, "sagemaker:InvokeEndpoint", Resource::Endpoint(model.to_string())).await?;
    let body = body.map_err(|rejection| OipError {
        status: rejection.status(),
        message: format!("cannot read the request body: {}", rejection.body_text()),
    })?;
    let header_length = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<usize>().ok())
                .ok_or_else(|| OipError::bad(format!("{HEADER_LENGTH} must be a whole number of bytes")))?,
        ),
    };
    let request = parse_request(&body, header_length)?;
    let Some(signature) = service.serving_signature(model, version.as_deref()) else {
        let endpoint = service.get_endpoint(model).await?;
        if let Some(version) = &version
            && endpoint.variants.iter().all(|variant| &variant.name != version)
        {
            return Err(OipError { status: StatusCode::NOT_FOUND, message: no_version(model, version) });
        }
        return Err(OipError::bad(format!("model {model:?} is not ready: the endpoint is {}", endpoint.status)));
    };
    for (name, _) in &request.outputs {
        if !NAMED_OUTPUTS.contains(&name.as_str()) {
            return Err(OipError::bad(format!(
                "output {name:?} is unknown; the outputs are {}",
                NAMED_OUTPUTS.join(", ")
            )));
        }
    }
    let rows = rows_of(&request.inputs, &signature.inputs)?;
    let explain = request.outputs.iter().any(|(name, _)| name == "reasons" || name == "contributions");
    let native = serde_json::to_vec(&json!({"instances": rows}))
        .map_err(|error| OipError::from(ServiceError::internal(format!("cannot encode the rows: {error}"))))?;
    let invocation = InvocationRequest {
        body: Bytes::from(native),
        format: BodyFormat::Json,
        target_variant: version,
        explain,
        inference_id: None,
        original_body: None,
    };
    let answered = service.invoke_with(Some(model), invocation, context).await?;
    let predictions: Vec<Map<String, Value>> = serde_json::from_slice::<Value>(&answered.body)
        .ok()
        .and_then(|document| document.get("predictions").and_then(Value::as_array).cloned())
        .map(|items| items.into_iter().filter_map(|item| item.as_object().cloned()).collect())
        .ok_or_else(|| OipError::from(ServiceError::internal("the native answer is not the expected JSON")))?;
    let outputs = output_tensors(&predictions, &request.outputs);
    Ok(encode_response(model, &answered.variant, request.id.as_deref(), outputs, &request))
}

/// Reads a request body: JSON, or with `header_length` the binary extension (the JSON header,
/// then each input's raw bytes in order of the inputs that give `binary_data_size`).
pub fn parse_request(body: &[u8], header_length: Option<usize>) -> Result<InferRequest, OipError> {
    let (head, mut binary) = match header_length {
        None => (body, &[][..]),
        Some(length) => {
            let head = body.get(..length).ok_or_else(|| {
                OipError::bad(format!("{HEADER_LENGTH} is {length}, but the body holds only {} bytes", body.len()))
            })?;
            (head, body.get(length..).unwrap_or(&[]))
        }
    };
    let head = nan_to_null(head);
    let document: Value = serde_json::from_slice(&head)
        .map_err(|error| OipError::bad(format!("the request JSON is malformed: {error}")))?;
    let Value::Object(document) = document else {
        return Err(OipError::bad("the request must be a JSON object"));
    };
    let id = document.get("id").and_then(Value::as_str).map(str::to_string);
    let Some(Value::Array(inputs)) = document.get("inputs") else {
        return Err(OipError::bad("the request has no \"inputs\" list"));
    };
    if inputs.is_empty() {
        return Err(OipError::bad("\"inputs\" is empty"));
    }
    let mut tensors = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let input = input.as_object().ok_or_else(|| OipError::bad(format!("inputs[{index}] must be an object")))?;
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| OipError::bad(format!("inputs[{index}] has no \"name\"")))?
            .to_string();
        let datatype = input
            .get("datatype")
            .and_then(Value::as_str)
            .ok_or_else(|| OipError::bad(format!("input {name:?} has no \"datatype\"")))?
            .to_string();
        let shape: Vec<usize> = input
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|dims| dims.iter().map(|dim| dim.as_u64().and_then(|dim| usize::try_from(dim).ok())).collect())
            .ok_or_else(|| OipError::bad(format!("input {name:?}: \"shape\" must be a list of whole numbers")))?;
        let count = shape
            .iter()
            .try_fold(1usize, |product, dim| product.checked_mul(*dim))
            .filter(|count| *count <= 1 << 26)
            .ok_or_else(|| OipError::bad(format!("input {name:?}: the shape {shape:?} is too large")))?;
        let binary_size = input
            .get("parameters")
            .and_then(|parameters| parameters.get("binary_data_size"))
            .map(|size| size.as_u64().and_then(|size| usize::try_from(size).ok()))
            .map(|size| size.ok_or_else(|| OipError::bad(format!("input {name:?}: bad binary_data_size"))))
            .transpose()?;
        let data = match binary_size {
            Some(size) => {
                if header_length.is_none() {
                    return Err(OipError::bad(format!(
                        "input {name:?} gives binary_data_size but the request has no {HEADER_LENGTH} header"
                    )));
                }
                let bytes = binary.get(..size).ok_or_else(|| {
                    OipError::bad(format!(
                        "input {name:?}: binary_data_size is {size}, but only {} bytes are left",
                        binary.len()
                    ))
                })?;
                binary = binary.get(size..).unwrap_or(&[]);
                decode_binary(bytes, &datatype, count, &name)?
            }
            None => {
                let data = input.get("data").ok_or_else(|| OipError::bad(format!("input {name:?} has no \"data\"")))?;
                let mut flat = Vec::with_capacity(count);
                flatten(data, &mut flat, 0).map_err(|message| OipError::bad(format!("input {name:?}: {message}")))?;
                check_json_data(&flat, &datatype, &name)?;
                flat
            }
        };
        if data.len() != count {
            return Err(OipError::bad(format!(
                "input {name:?}: the shape {shape:?} holds {count} elements, the data {}",
                data.len()
            )));
        }
        tensors.push(Tensor { name, shape, datatype, data });
    }
    if !binary.is_empty() {
        return Err(OipError::bad(format!("{} bytes of binary data follow the inputs unused", binary.len())));
    }
    let binary_output = document
        .get("parameters")
        .and_then(|parameters| parameters.get("binary_data_output"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut outputs = Vec::new();
    if let Some(requested) = document.get("outputs") {
        let requested = requested.as_array().ok_or_else(|| OipError::bad("\"outputs\" must be a list"))?;
        for (index, output) in requested.iter().enumerate() {
            let name = output
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| OipError::bad(format!("outputs[{index}] has no \"name\"")))?;
            let binary = output
                .get("parameters")
                .and_then(|parameters| parameters.get("binary_data"))
                .and_then(Value::as_bool)
                .unwrap_or(binary_output);
            outputs.push((name.to_string(), binary));
        }
    }
    Ok(InferRequest { id, inputs: tensors, outputs, binary_output })
}

/// tritonclient writes a numpy NaN as the bare token `NaN`, which JSON lacks; outside strings it
/// becomes `null`, the missing value.
pub fn nan_to_null(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !text.windows(3).any(|window| window == b"NaN") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped, mut index) = (false, false, 0);
    while let Some(&byte) = text.get(index) {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if text.get(index..index + 3) == Some(b"NaN".as_slice()) {
            out.extend_from_slice(b"null");
            index += 3;
            continue;
        }
        out.push(byte);
        index += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn flatten(value: &Value, into: &mut Vec<Value>, depth: usize) -> Result<(), String> {
    if depth > 8 {
        return Err("the data nests deeper than 8 levels".to_string());
    }
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, into, depth + 1)?;
            }
            Ok(())
        }
        other => {
            into.push(other.clone());
            Ok(())
        }
    }
}

fn check_json_data(data: &[Value], datatype: &str, name: &str) -> Result<(), OipError> {
    let fits = |value: &Value| match datatype {
        "BOOL" => value.is_boolean(),
        "BYTES" => value.is_string(),
        "FP32" | "FP64" => value.is_number() || value.is_null(),
        "INT8" | "INT16" | "INT32" | "INT64" => value.is_i64(),
        "UINT8" | "UINT16" | "UINT32" | "UINT64" => value.is_u64(),
        _ => false,
    };
    if !is_datatype(datatype) {
        return Err(unsupported_datatype(datatype, name));
    }
    match data.iter().position(|value| !fits(value)) {
        Some(position) => Err(OipError::bad(format!(
            "input {name:?}: element {position} ({}) is not of datatype {datatype}",
            data.get(position).map(Value::to_string).unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

fn is_datatype(datatype: &str) -> bool {
    matches!(
        datatype,
        "BOOL"
            | "BYTES"
            | "FP32"
            | "FP64"
            | "INT8"
            | "INT16"
            | "INT32"
            | "INT64"
            | "UINT8"
            | "UINT16"
            | "UINT32"
            | "UINT64"
    )
}

fn unsupported_datatype(datatype: &str, name: &str) -> OipError {
    OipError::bad(format!(
        "input {name:?}: datatype {datatype:?} is not supported; use FP32, FP64, INT8-64, UINT8-64, BOOL or BYTES"
    ))
}

/// Decodes a binary tensor (little-endian, row-major; BYTES as 4-byte lengths then bytes).
pub fn decode_binary(bytes: &[u8], datatype: &str, count: usize, name: &str) -> Result<Vec<Value>, OipError> {
    let width = match datatype {
        "BOOL" | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" => 2,
        "FP32" | "INT32" | "UINT32" => 4,
        "FP64" | "INT64" | "UINT64" => 8,
        "BYTES" => return decode_bytes(bytes, count, name),
        other => return Err(unsupported_datatype(other, name)),
    };
    if bytes.len() != count.saturating_mul(width) {
        return Err(OipError::bad(format!(
            "input {name:?}: {count} elements of {datatype} take {} bytes, {} were given",
            count.saturating_mul(width),
            bytes.len()
        )));
    }
    let number = |value: f64| serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
    Ok(bytes
        .chunks_exact(width)
        .map(|chunk| {
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(chunk);
            match datatype {
                "BOOL" => Value::Bool(chunk.first().copied().unwrap_or(0) != 0),
                "INT8" => json!(i8::from_le_bytes([raw[0]])),
                "UINT8" => json!(raw[0]),
                "INT16" => json!(i16::from_le_bytes([raw[0], raw[1]])),
                "UINT16" => json!(u16::from_le_bytes([raw[0], raw[1]])),
                "INT32" => json!(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
                "UINT32" => json!(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
                // NaN (the missing value of numpy matrices) becomes a missing cell.
                "FP32" => number(f64::from(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))),
                "FP64" => number(f64::from_le_bytes(raw)),
                "INT64" => json!(i64::from_le_bytes(raw)),
                _ => json!(u64::from_le_bytes(raw)),
            }
        })
        .collect())
}

fn decode_bytes(mut bytes: &[u8], count: usize, name: &str) -> Result<Vec<Value>, OipError> {
    let mut values = Vec::with_capacity(count.min(bytes.len() / 4 + 1));
    while !bytes.is_empty() {
        let (length, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| OipError::bad(format!("input {name:?}: a BYTES element's length is cut short")))?;
        let length = u32::from_le_bytes(*length) as usize;
        let element = rest.get(..length).ok_or_else(|| {
            OipError::bad(format!(
                "input {name:?}: BYTES element {} claims {length} bytes, {} are left",
                values.len(),
                rest.len()
            ))
        })?;
        let text = std::str::from_utf8(element)
            .map_err(|_| OipError::bad(format!("input {name:?}: BYTES element {} is not UTF-8", values.len())))?;
        values.push(Value::String(text.to_string()));
        bytes = rest.get(length..).unwrap_or(&[]);
        if values.len() > count {
            break;
        }
    }
    Ok(values)
}

/// Turns input tensors into native rows: one tensor of whole rows (`[batch, fields]`, or `[fields]`
/// for one row) in field order, or one tensor per field (`[batch]` or `[batch, 1]`) named by it.
pub fn rows_of(inputs: &[Tensor], fields: &[String]) -> Result<Vec<Value>, OipError> {
    let whole_rows = matches!(inputs, [only] if !fields.contains(&only.name)
        || (fields.len() > 1 && only.shape.len() == 2 && only.shape.get(1) == Some(&fields.len())));
    if !whole_rows && inputs.iter().all(|input| fields.contains(&input.name)) {
        let batch = inputs.first().and_then(|input| input.shape.first()).copied().unwrap_or(0);
        for input in inputs {
            let single_column = input.shape.len() == 1 || (input.shape.len() == 2 && input.shape.get(1) == Some(&1));
            if input.shape.first() != Some(&batch) || !single_column {
                return Err(OipError::bad(format!(
                    "input {:?}: a per-field tensor has shape [{batch}] or [{batch}, 1], got {:?}",
                    input.name, input.shape
                )));
            }
        }
        let mut rows = vec![Map::new(); batch];
        for input in inputs {
            for (row, value) in rows.iter_mut().zip(&input.data) {
                row.insert(input.name.clone(), value.clone());
            }
        }
        return Ok(rows.into_iter().map(Value::Object).collect());
    }
    let [input] = inputs else {
        let names: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
        return Err(OipError::bad(format!(
            "inputs {} are not all fields of the model; send one tensor of rows named {ROWS_INPUT:?} with shape \
             [batch, {}], or one tensor per field named by it",
            names.join(", "),
            fields.len()
        )));
    };
    let width = fields.len();
    let batch = match input.shape.as_slice() {
        [columns] if *columns == width => 1,
        [batch, columns] if *columns == width => *batch,
        other => {
            return Err(OipError::bad(format!(
                "input {:?}: the shape must be [batch, {width}] (the model's {width} fields), got {other:?}",
                input.name
            )));
        }
    };
    Ok((0..batch)
        .map(|row| Value::Array(input.data.get(row * width..(row + 1) * width).unwrap_or(&[]).to_vec()))
        .collect())
}

/// An output tensor: name, datatype, shape and flat data.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<Value>,
    pub binary: bool,
}

fn output_tensors(predictions: &[Map<String, Value>], requested: &[(String, bool)]) -> Vec<OutputTensor> {
    let wanted: Vec<(String, bool)> =
        if requested.is_empty() { vec![("probabilities".to_string(), false)] } else { requested.to_vec() };
    let batch = predictions.len();
    wanted
        .into_iter()
        .map(|(name, binary)| {
            let column = |key: &str| -> Vec<Value> {
                predictions.iter().map(|prediction| prediction.get(key).cloned().unwrap_or(Value::Null)).collect()
            };
            let text_column = |key: &str| -> Vec<Value> {
                column(key)
                    .into_iter()
                    .map(|value| match value {
                        Value::String(text) => Value::String(text),
                        Value::Null => Value::String(String::new()),
                        other => Value::String(other.to_string()),
                    })
                    .collect()
            };
            let (datatype, shape, data) = match name.as_str() {
                "score" => ("FP64", vec![batch], column("score")),
                "grade" => ("BYTES", vec![batch], text_column("grade")),
                "decision" => ("BYTES", vec![batch], text_column("decision")),
                "reasons" => ("BYTES", vec![batch], text_column("reasons")),
                "contributions" => ("BYTES", vec![batch], text_column("contributions")),
                _ => {
                    // A pipeline's calibrated probability, else the model's own values.
                    let rows: Vec<Vec<Value>> = predictions
                        .iter()
                        .map(|prediction| match prediction.get("probability") {
                            Some(probability) => vec![probability.clone()],
                            None => prediction.get("values").and_then(Value::as_array).cloned().unwrap_or_default(),
                        })
                        .collect();
                    let width = rows.first().map_or(0, Vec::len);
                    ("FP64", vec![batch, width], rows.into_iter().flatten().collect())
                }
            };
            OutputTensor { name, datatype, shape, data, binary }
        })
        .collect()
}

fn encode_response(
    model: &str,
    version: &str,
    id: Option<&str>,
    outputs: Vec<OutputTensor>,
    request: &InferRequest,
) -> Response {
    let binary_wanted = outputs.iter().any(|output| output.binary) || request.binary_output;
    let mut tail = Vec::new();
    let described: Vec<Value> = outputs
        .iter()
        .map(|output| {
            let mut tensor = json!({"name": output.name, "datatype": output.datatype, "shape": output.shape});
            if let Value::Object(members) = &mut tensor {
                if output.binary || request.binary_output {
                    let bytes = encode_binary(output);
                    members.insert("parameters".to_string(), json!({"binary_data_size": bytes.len()}));
                    tail.extend(bytes);
                } else {
                    members.insert("data".to_string(), Value::Array(output.data.clone()));
                }
            }
            tensor
        })
        .collect();
    let mut head = json!({"model_name": model, "model_version": version, "outputs": described});
    if let (Value::Object(members), Some(id)) = (&mut head, id) {
        members.insert("id".to_string(), json!(id));
    }
    let head = head.to_string().into_bytes();
    if !binary_wanted {
        return ([(header::CONTENT_TYPE, "application/json")], head).into_response();
    }
    let head_length = head.len();
    let mut body = head;
    body.extend(tail);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(HEADER_LENGTH, HeaderValue::from(head_length));
    response
}

/// An output's raw bytes for the binary extension.
pub fn encode_binary(output: &OutputTensor) -> Vec<u8> {
    let mut bytes = Vec::new();
    for value in &output.data {
        if output.datatype == "BYTES" {
            let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
            bytes.extend((text.len() as u32).to_le_bytes());
            bytes.extend(text.as_bytes());
        } else {
            bytes.extend(value.as_f64().unwrap_or(f64::NAN).to_le_bytes());
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_request(values: &[f64], shape: [usize; 2]) -> (Vec<u8>, usize) {
        let data: Vec<u8> = values.iter().flat_map(|value| value.to_le_bytes()).collect();
        let head = json!({"inputs": [{"name": "input", "datatype": "FP64", "shape": shape,
            "parameters": {"binary_data_size": data.len()}}],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}]})
        .to_string();
        let mut body = head.clone().into_bytes();
        body.extend(&data);
        (body, head.len())
    }

    #[test]
    fn binary_tensors_become_rows() {
        let (body, length) = binary_request(&[1.0, f64::NAN, 3.0, 4.0], [2, 2]);
        let request = parse_request(&body, Some(length)).expect("request");
        assert_eq!(request.outputs, vec![("probabilities".to_string(), true)]);
        let fields = vec!["a".to_string(), "b".to_string()];
        let rows = rows_of(&request.inputs, &fields).expect("rows");
        assert_eq!(rows, vec![json!([1.0, null]), json!([3.0, 4.0])]);
    }

    #[test]
    fn json_tensors_per_field_and_mismatches_are_named() {
        let body = br#"{"inputs": [{"name": "a", "datatype": "FP64", "shape": [2], "data": [1, 2]},
                                   {"name": "b", "datatype": "BYTES", "shape": [2, 1], "data": [["x"], ["y"]]}]}"#;
        let request = parse_request(body, None).expect("request");
        let fields = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            rows_of(&request.inputs, &fields).expect("rows"),
            vec![json!({"a": 1, "b": "x"}), json!({"a": 2, "b": "y"})]
        );
        let wrong_type = br#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "data": ["x", 1]}]}"#;
        let error = parse_request(wrong_type, None).expect_err("datatype");
        assert!(error.message.contains("\"input\"") && error.message.contains("FP32"), "{}", error.message);
        let wrong_shape = br#"{"inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 2], "data": [1, 2, 3]}]}"#;
        let error = parse_request(wrong_shape, None).expect_err("shape");
        assert!(error.message.contains("holds 4 elements"), "{}", error.message);
        let request = parse_request(
            br#"{"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}"#,
            None,
        )
        .expect("ok");
        let error = rows_of(&request.inputs, &fields).expect_err("width");
        assert!(error.message.contains("[batch, 2]"), "{}", error.message);
    }

    #[test]
    fn truncated_and_oversized_binary_bodies_never_panic() {
        let (body, length) = binary_request(&[1.0, 2.0, 3.0, 4.0], [2, 2]);
        for cut in 0..body.len() {
            let _ = parse_request(&body[..cut], Some(length));
            let _ = parse_request(&body, Some(cut));
        }
        for claimed in [length + 1, body.len() + 1, usize::MAX] {
            assert!(parse_request(&body, Some(claimed)).is_err());
        }
        let mut flipped = body.clone();
        for index in 0..flipped.len() {
            flipped[index] ^= 0xff;
            let _ = parse_request(&flipped, Some(length));
            flipped[index] ^= 0xff;
        }
        let huge = br#"{"inputs": [{"name": "input", "datatype": "FP64", "shape": [4294967296, 4294967296], "parameters": {"binary_data_size": 8}}]}"#;
        assert!(parse_request(huge, Some(huge.len())).is_err());
        for bytes in [&[5u8, 0, 0][..], &[9, 0, 0, 0, b'a'], &[1, 0, 0, 0, 0xff], &[0xff, 0xff, 0xff, 0xff]] {
            assert!(decode_binary(bytes, "BYTES", 1, "x").is_err());
        }
    }

    #[test]
    fn nan_tokens_are_missing_values_outside_strings() {
        assert_eq!(
            &*nan_to_null(br#"{"data": [1.0, NaN], "name": "NaN \"NaN\""}"#),
            br#"{"data": [1.0, null], "name": "NaN \"NaN\""}"#
        );
        assert_eq!(&*nan_to_null(b"NaN"), b"null");
    }

    #[test]
    fn outputs_encode_as_json_or_binary() {
        let predictions = vec![json!({"values": [0.25]}).as_object().cloned().expect("object")];
        let tensors = output_tensors(&predictions, &[]);
        assert_eq!(tensors[0].shape, vec![1, 1]);
        assert_eq!(encode_binary(&tensors[0]), 0.25f64.to_le_bytes().to_vec());
        let text = OutputTensor {
            name: "grade".into(),
            datatype: "BYTES",
            shape: vec![1],
            data: vec![json!("A")],
            binary: true,
        };
        assert_eq!(encode_binary(&text), vec![1, 0, 0, 0, b'A']);
    }
}
