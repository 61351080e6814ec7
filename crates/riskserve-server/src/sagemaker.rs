//! The SageMaker control plane over JSON 1.1 (`POST /` with `X-Amz-Target: SageMaker.<Operation>`),
//! as boto3's `sagemaker` client and the AWS CLI speak it: each operation authorizes, translates
//! SageMaker's shapes into a service call and the answer back (ARNs, epoch-second times, status
//! values, `NextToken`), and errors into SageMaker's (`__type` and `X-Amzn-ErrorType`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use riskserve_store::{PageRequest, TaggedKind};
use serde_json::{Map, Value, json};

use riskserve_service::Service;
use riskserve_service::ServiceError;
use riskserve_service::model_archive::Framework;
use riskserve_service::{Caller, Resource};
use riskserve_service::{
    ContainerArchive, CreateEndpoint, CreateEndpointConfig, DataCapture, Endpoint, UpdateEndpoint, Variant,
};

use crate::respond::status_of;

/// The façade name under which SageMaker documents are kept.
pub const FACADE: &str = "sagemaker";
const JSON_11: &str = "application/x-amz-json-1.1";
/// The instance type reported for variants whose config did not name one.
const DEFAULT_INSTANCE_TYPE: &str = "ml.m5.large";

/// `POST /`: the JSON 1.1 endpoint.
pub fn routes() -> Router<Service> {
    Router::new().route("/", post(dispatch))
}

/// A SageMaker error: its `__type`, HTTP status and message.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> AwsError {
        AwsError { status, kind, message: message.into() }
    }

    pub fn validation(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    fn serialization(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    /// SageMaker's message for a required member that is absent.
    fn missing(member: &str) -> AwsError {
        AwsError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    }
}

impl From<ServiceError> for AwsError {
    fn from(error: ServiceError) -> AwsError {
        let message = error.public_message();
        if let ServiceError::Internal(detail) = &error {
            eprintln!("riskserve: internal error: {detail}");
        }
        let bad_request = StatusCode::BAD_REQUEST;
        match &error {
            // SageMaker answers a missing resource with ValidationException and 400; botocore's
            // endpoint_deleted waiter relies on it.
            ServiceError::NotFound(_)
            | ServiceError::Validation(_)
            | ServiceError::InvalidArtifact(_)
            | ServiceError::InvalidInput(_)
            | ServiceError::AlreadyExists(_)
            | ServiceError::InvalidState(_)
            | ServiceError::PayloadTooLarge(_)
            | ServiceError::UnsupportedMediaType(_) => AwsError::new(bad_request, "ValidationException", message),
            ServiceError::InUse(_) => AwsError::new(bad_request, "ResourceInUse", message),
            ServiceError::Overloaded { .. } => AwsError::new(bad_request, "ThrottlingException", message),
            ServiceError::Internal(_) => AwsError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", message),
            ServiceError::Unavailable(_) => {
                AwsError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
            }
            // Errors added after this façade (authentication, authorization) map by status.
            #[allow(unreachable_patterns)]
            _ => match status_of(&error) {
                StatusCode::UNAUTHORIZED => AwsError::new(status_of(&error), "UnrecognizedClientException", message),
                StatusCode::FORBIDDEN => AwsError::new(status_of(&error), "AccessDeniedException", message),
                status if status.is_server_error() => AwsError::new(status, "InternalFailure", message),
                status => AwsError::new(status, "ValidationException", message),
            },
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = json!({"__type": self.kind, "message": self.message});
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(JSON_11));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        response
    }
}

type Answer = Result<Value, AwsError>;

async fn dispatch(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = caller.request_id.clone();
    let mut response = match handle(&service, &caller, &headers, body).await {
        Ok(value) => {
            let mut response = value.to_string().into_response();
            response.headers_mut().insert("content-type", HeaderValue::from_static(JSON_11));
            response
        }
        Err(error) => error.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// The operation a request names, from `X-Amz-Target: SageMaker.<Operation>`.
pub fn operation(headers: &HeaderMap) -> Result<&str, AwsError> {
    let target = headers.get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or("");
    match target.strip_prefix("SageMaker.") {
        Some(operation) if !operation.is_empty() => Ok(operation),
        _ => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("X-Amz-Target {target:?} names no SageMaker operation; send SageMaker.<Operation>"),
        )),
    }
}

/// Parses a JSON 1.1 body into its top-level object (an empty body is an empty object).
pub fn parse_input(body: &[u8]) -> Result<Map<String, Value>, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(AwsError::serialization("the request body must be a JSON object")),
        Err(error) => Err(AwsError::serialization(format!("the request body is not valid JSON: {error}"))),
    }
}

async fn handle(
    service: &Service,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let operation = operation(headers)?.to_string();
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AwsError::new(StatusCode::PAYLOAD_TOO_LARGE, "ValidationException", "the request body exceeds the limit")
        } else {
            AwsError::serialization(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })?;
    let input = parse_input(&body)?;
    let facade = Facade { service, caller, input: &input };
    match operation.as_str() {
        "CreateModel" => facade.create_model().await,
        "DescribeModel" => facade.describe_model().await,
        "ListModels" => facade.list_models().await,
        "DeleteModel" => facade.delete_model().await,
        "CreateEndpointConfig" => facade.create_endpoint_config().await,
        "DescribeEndpointConfig" => facade.describe_endpoint_config().await,
        "ListEndpointConfigs" => facade.list_endpoint_configs().await,
        "DeleteEndpointConfig" => facade.delete_endpoint_config().await,
        "CreateEndpoint" => facade.create_endpoint().await,
        "DescribeEndpoint" => facade.describe_endpoint().await,
        "ListEndpoints" => facade.list_endpoints().await,
        "UpdateEndpoint" => facade.update_endpoint().await,
        "UpdateEndpointWeightsAndCapacities" => facade.update_weights_and_capacities().await,
        "DeleteEndpoint" => facade.delete_endpoint().await,
        "AddTags" => facade.add_tags().await,
        "ListTags" => facade.list_tags().await,
        "DeleteTags" => facade.delete_tags().await,
        other => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("riskserve does not implement the SageMaker operation {other:?}"),
        )),
    }
}

// ---- reading members ----

fn member<'a>(input: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    input.get(name).filter(|value| !value.is_null())
}

fn required_str<'a>(input: &'a Map<String, Value>, name: &str) -> Result<&'a str, AwsError> {
    optional_str(input, name)?.ok_or_else(|| AwsError::missing(name))
}

fn optional_str<'a>(input: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, AwsError> {
    match member(input, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(AwsError::serialization(format!("{name} must be a string"))),
    }
}

fn optional_number(input: &Map<String, Value>, name: &str) -> Result<Option<f64>, AwsError> {
    match member(input, name) {
        None => Ok(None),
        Some(Value::Number(number)) => Ok(number.as_f64()),
        Some(_) => Err(AwsError::serialization(format!("{name} must be a number"))),
    }
}

fn optional_count(input: &Map<String, Value>, name: &str) -> Result<Option<u32>, AwsError> {
    match optional_number(input, name)? {
        None => Ok(None),
        Some(number) if number.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&number) => {
            Ok(Some(number as u32))
        }
        Some(number) => Err(AwsError::validation(format!("{name} must be a whole number, got {number}"))),
    }
}

fn optional_list<'a>(input: &'a Map<String, Value>, name: &str) -> Result<&'a [Value], AwsError> {
    match member(input, name) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(AwsError::serialization(format!("{name} must be a list"))),
    }
}

fn object<'a>(value: &'a Value, place: &str) -> Result<&'a Map<String, Value>, AwsError> {
    value.as_object().ok_or_else(|| AwsError::serialization(format!("{place} must be an object")))
}

/// `DataCaptureConfig` as riskserve's data capture: `EnableCapture` (default true), `InitialSamplingPercentage`,
/// `CaptureOptions` (`Input`, `Output`), and the key part of `DestinationS3Uri` as the folder in the artifact store.
fn data_capture_of(input: &Map<String, Value>) -> Result<Option<DataCapture>, AwsError> {
    let Some(config) = member(input, "DataCaptureConfig") else { return Ok(None) };
    let config = object(config, "DataCaptureConfig")?;
    match member(config, "EnableCapture") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(None),
        Some(_) => return Err(AwsError::serialization("DataCaptureConfig.EnableCapture must be a boolean")),
    }
    let sampling_percentage = optional_count(config, "InitialSamplingPercentage")?
        .ok_or_else(|| AwsError::missing("DataCaptureConfig.InitialSamplingPercentage"))?;
    let uri = optional_str(config, "DestinationS3Uri")?
        .ok_or_else(|| AwsError::missing("DataCaptureConfig.DestinationS3Uri"))?;
    let Some(rest) = uri.strip_prefix("s3://") else {
        return Err(AwsError::validation(format!("DataCaptureConfig.DestinationS3Uri {uri:?} is not an s3:// URI")));
    };
    let key = rest.split_once('/').map_or("", |(_, key)| key.trim_matches('/'));
    let destination = if key.is_empty() { riskserve_service::default_capture_destination() } else { key.to_string() };
    let options = optional_list(config, "CaptureOptions")?;
    if options.is_empty() {
        return Err(AwsError::missing("DataCaptureConfig.CaptureOptions"));
    }
    let (mut capture_input, mut capture_output) = (false, false);
    for (index, option) in options.iter().enumerate() {
        let place = format!("DataCaptureConfig.CaptureOptions.{}", index + 1);
        let option = object(option, &place)?;
        match required_str(option, "CaptureMode").map_err(|_| AwsError::missing(&format!("{place}.CaptureMode")))? {
            "Input" => capture_input = true,
            "Output" => capture_output = true,
            "InputAndOutput" => (capture_input, capture_output) = (true, true),
            other => {
                return Err(AwsError::validation(format!(
                    "{place}.CaptureMode {other:?} is not one of Input, Output, InputAndOutput"
                )));
            }
        }
    }
    Ok(Some(DataCapture { sampling_percentage, capture_input, capture_output, destination }))
}

/// `Tags: [{Key, Value}]` as a map; `place` names the member in messages.
fn tags_of(input: &Map<String, Value>, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    for (index, tag) in optional_list(input, name)?.iter().enumerate() {
        let tag = object(tag, &format!("{name}.{}", index + 1))?;
        let key =
            required_str(tag, "Key").map_err(|_| AwsError::missing(&format!("{name}.{}.member.Key", index + 1)))?;
        let value = optional_str(tag, "Value")?.unwrap_or("");
        tags.insert(key.to_string(), value.to_string());
    }
    Ok(tags)
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(tags.iter().map(|(key, value)| json!({"Key": key, "Value": value})).collect())
}

fn page_of(input: &Map<String, Value>) -> Result<PageRequest, AwsError> {
    let max_results = optional_count(input, "MaxResults")?;
    if let Some(count) = max_results
        && !(1..=100).contains(&count)
    {
        return Err(AwsError::validation(format!("MaxResults must be between 1 and 100, got {count}")));
    }
    Ok(PageRequest { max_results, next_token: optional_str(input, "NextToken")?.map(str::to_string) })
}

/// An RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS[.fff]Z`) as epoch seconds, as SageMaker sends times.
pub fn epoch_seconds(rfc3339: &str) -> f64 {
    let parse = || -> Option<f64> {
        let number = |range: std::ops::Range<usize>| rfc3339.get(range)?.parse::<i64>().ok();
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        let fraction = rfc3339
            .get(19..)
            .and_then(|rest| rest.strip_prefix('.'))
            .map(|rest| rest.trim_end_matches('Z'))
            .and_then(|digits| format!("0.{digits}").parse::<f64>().ok())
            .unwrap_or(0.0);
        // Howard Hinnant's days-from-civil.
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month_index = (month + 9) % 12;
        let day_of_year = (153 * month_index + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        Some((days * 86_400 + hour * 3600 + minute * 60 + second) as f64 + fraction)
    };
    parse().unwrap_or(0.0)
}

// ---- ARNs ----

/// `arn:aws:sagemaker:{region}:{account}:{kind}/{name}`.
pub fn arn(service: &Service, kind: TaggedKind, name: &str) -> String {
    let config = service.config();
    format!("arn:aws:sagemaker:{}:{}:{}/{name}", config.region, config.account_id, arn_kind(kind))
}

fn arn_kind(kind: TaggedKind) -> &'static str {
    match kind {
        TaggedKind::Model => "model",
        TaggedKind::EndpointConfig => "endpoint-config",
        TaggedKind::Endpoint => "endpoint",
    }
}

/// The resource an ARN names (any region and account: names are unique in a server).
pub fn parse_arn(text: &str) -> Result<(TaggedKind, String), AwsError> {
    let resource = text
        .strip_prefix("arn:")
        .and_then(|rest| rest.splitn(5, ':').nth(4).filter(|_| rest.split(':').nth(1) == Some("sagemaker")))
        .ok_or_else(|| AwsError::validation(format!("{text:?} is not a SageMaker ARN")))?;
    let (kind, name) =
        resource.split_once('/').ok_or_else(|| AwsError::validation(format!("the ARN {text:?} names no resource")))?;
    let kind = match kind {
        "model" => TaggedKind::Model,
        "endpoint-config" => TaggedKind::EndpointConfig,
        "endpoint" => TaggedKind::Endpoint,
        other => {
            return Err(AwsError::validation(format!(
                "the ARN {text:?} names a {other}; riskserve tags models, endpoint configs and endpoints"
            )));
        }
    };
    Ok((kind, name.to_string()))
}

fn authorization_resource(kind: TaggedKind, name: &str) -> Resource {
    match kind {
        TaggedKind::Model => Resource::Model(name.to_string()),
        TaggedKind::EndpointConfig => Resource::EndpointConfig(name.to_string()),
        TaggedKind::Endpoint => Resource::Endpoint(name.to_string()),
    }
}

// ---- model outputs as the built-in XGBoost container selects them ----

/// The `SAGEMAKER_INFERENCE_OUTPUT` keys of the models created through this façade, by model
/// name, so the runtime reads them from memory (filled on first use, dropped on changes).
#[derive(Default)]
pub struct OutputSelections {
    by_model: Mutex<BTreeMap<String, Option<Arc<Vec<String>>>>>,
}

impl OutputSelections {
    fn forget(&self, service: &Service, model: &str) {
        self.by_model.lock().unwrap_or_else(|poison| poison.into_inner()).remove(&selection_key(service, model));
    }
}

/// The process-wide selections (one server per process in practice; keyed by model name).
pub fn output_selections() -> &'static OutputSelections {
    static SELECTIONS: std::sync::OnceLock<OutputSelections> = std::sync::OnceLock::new();
    SELECTIONS.get_or_init(OutputSelections::default)
}

/// The keys a model's `Environment.SAGEMAKER_INFERENCE_OUTPUT` selects (lower case, in order),
/// or `None` when it selects none.
pub async fn selected_outputs(service: &Service, model: &str) -> Option<Arc<Vec<String>>> {
    // Several servers may share a process (tests): their models are told apart by data folder.
    let key = selection_key(service, model);
    if let Some(known) = output_selections().by_model.lock().unwrap_or_else(|poison| poison.into_inner()).get(&key) {
        return known.clone();
    }
    let selection = match service.get_model(model).await {
        Ok(found) => {
            service.facade_document(FACADE, TaggedKind::Model, model, &found.created_at).await.ok().flatten().and_then(
                |document| {
                    let environment = document.pointer("/PrimaryContainer/Environment/SAGEMAKER_INFERENCE_OUTPUT")?;
                    let keys: Vec<String> = environment
                        .as_str()?
                        .split(',')
                        .map(|key| key.trim().to_ascii_lowercase())
                        .filter(|key| !key.is_empty())
                        .collect();
                    (!keys.is_empty()).then(|| Arc::new(keys))
                },
            )
        }
        Err(_) => return None,
    };
    output_selections().by_model.lock().unwrap_or_else(|poison| poison.into_inner()).insert(key, selection.clone());
    selection
}

fn selection_key(service: &Service, model: &str) -> String {
    format!("{}\n{model}", service.config().data_dir.display())
}

/// The keys `SAGEMAKER_INFERENCE_OUTPUT` may hold.
const OUTPUT_KEYS: &[&str] =
    &["predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores", "predicted_score"];

// ---- the operations ----

struct Facade<'a> {
    service: &'a Service,
    caller: &'a Caller,
    input: &'a Map<String, Value>,
}

impl Facade<'_> {
    async fn authorize(&self, operation: &str, resource: Resource) -> Result<(), AwsError> {
        Ok(self.service.authorize(self.caller, &format!("sagemaker:{operation}"), resource).await?)
    }

    // ---- models ----

    async fn create_model(&self) -> Answer {
        let name = required_str(self.input, "ModelName")?;
        self.authorize("CreateModel", Resource::Model(name.to_string())).await?;
        let tags = tags_of(self.input, "Tags")?;
        let containers: Vec<&Map<String, Value>> = match member(self.input, "PrimaryContainer") {
            Some(primary) => {
                if !optional_list(self.input, "Containers")?.is_empty() {
                    return Err(AwsError::validation("give PrimaryContainer or Containers, not both"));
                }
                vec![object(primary, "PrimaryContainer")?]
            }
            None => optional_list(self.input, "Containers")?
                .iter()
                .enumerate()
                .map(|(index, container)| object(container, &format!("Containers.{}", index + 1)))
                .collect::<Result<_, _>>()?,
        };
        if containers.is_empty() {
            return Err(AwsError::missing("PrimaryContainer"));
        }
        let mut archives = Vec::with_capacity(containers.len());
        for (index, container) in containers.iter().enumerate() {
            let place = if containers.len() == 1 {
                "PrimaryContainer".to_string()
            } else {
                format!("Containers.{}", index + 1)
            };
            if let Some(mode) = optional_str(container, "Mode")?
                && mode != "SingleModel"
            {
                return Err(AwsError::validation(format!(
                    "{place}.Mode {mode:?} is not supported; riskserve serves SingleModel containers"
                )));
            }
            let image = required_str(container, "Image").map_err(|_| AwsError::missing(&format!("{place}.Image")))?;
            let framework =
                Framework::from_image(image).map_err(|message| AwsError::validation(format!("{place}: {message}")))?;
            let Some(url) = optional_str(container, "ModelDataUrl")? else {
                return Err(AwsError::validation(format!(
                    "{place}.ModelDataUrl is required: riskserve containers serve a model archive"
                )));
            };
            archives.push(ContainerArchive { place, framework, model_data_url: url.to_string() });
        }
        let mut document = Map::new();
        for key in ["PrimaryContainer", "Containers", "ExecutionRoleArn", "EnableNetworkIsolation"] {
            if let Some(value) = member(self.input, key) {
                document.insert(key.to_string(), value.clone());
            }
        }
        if let Some(keys) = document
            .get("PrimaryContainer")
            .and_then(|primary| primary.pointer("/Environment/SAGEMAKER_INFERENCE_OUTPUT"))
            .and_then(Value::as_str)
            && let Some(unknown) = keys
                .split(',')
                .map(|key| key.trim().to_ascii_lowercase())
                .find(|key| !OUTPUT_KEYS.contains(&key.as_str()))
        {
            return Err(AwsError::validation(format!(
                "PrimaryContainer.Environment.SAGEMAKER_INFERENCE_OUTPUT names {unknown:?}; the keys are {}",
                OUTPUT_KEYS.join(", ")
            )));
        }
        let model = self.service.create_model_from_archives(name, archives, tags).await?;
        self.service
            .put_facade_document(FACADE, TaggedKind::Model, &model.name, &model.created_at, &Value::Object(document))
            .await?;
        output_selections().forget(self.service, &model.name);
        Ok(json!({"ModelArn": arn(self.service, TaggedKind::Model, &model.name)}))
    }

    async fn describe_model(&self) -> Answer {
        let name = required_str(self.input, "ModelName")?;
        self.authorize("DescribeModel", Resource::Model(name.to_string())).await?;
        let model = self.service.get_model(name).await?;
        let document =
            self.service.facade_document(FACADE, TaggedKind::Model, name, &model.created_at).await?.unwrap_or_default();
        let mut answer = json!({
            "ModelName": model.name,
            "ModelArn": arn(self.service, TaggedKind::Model, &model.name),
            "CreationTime": epoch_seconds(&model.created_at),
            "EnableNetworkIsolation": false,
        });
        if let (Value::Object(answer), Value::Object(document)) = (&mut answer, document) {
            answer.extend(document);
            if !answer.contains_key("PrimaryContainer") && !answer.contains_key("Containers") {
                // A model made through the native API: its files stand for the archive.
                let digest = model.artifacts.first().map(|artifact| artifact.digest.clone()).unwrap_or_default();
                answer.insert(
                    "PrimaryContainer".to_string(),
                    json!({"Image": format!("riskserve/{}", model.format), "ModelDataUrl": digest, "Environment": {}}),
                );
            }
        }
        Ok(answer)
    }

    async fn list_models(&self) -> Answer {
        self.authorize("ListModels", Resource::Account).await?;
        let contains = optional_str(self.input, "NameContains")?.map(str::to_ascii_lowercase);
        let (models, next_token) = filtered_page(
            page_of(self.input)?,
            |model: &riskserve_service::Model| {
                contains.as_ref().is_none_or(|part| model.name.to_ascii_lowercase().contains(part))
            },
            |model| model.name.as_str(),
            |page| async move { self.service.list_models(&page).await },
        )
        .await?;
        let models: Vec<Value> = models
            .iter()
            .map(|model| {
                json!({
                    "ModelName": model.name,
                    "ModelArn": arn(self.service, TaggedKind::Model, &model.name),
                    "CreationTime": epoch_seconds(&model.created_at),
                })
            })
            .collect();
        Ok(with_token(json!({"Models": models}), next_token))
    }

    async fn delete_model(&self) -> Answer {
        let name = required_str(self.input, "ModelName")?;
        self.authorize("DeleteModel", Resource::Model(name.to_string())).await?;
        self.service.delete_model(name).await?;
        output_selections().forget(self.service, name);
        Ok(json!({}))
    }

    // ---- endpoint configs ----

    async fn create_endpoint_config(&self) -> Answer {
        let name = required_str(self.input, "EndpointConfigName")?;
        self.authorize("CreateEndpointConfig", Resource::EndpointConfig(name.to_string())).await?;
        let tags = tags_of(self.input, "Tags")?;
        let given = optional_list(self.input, "ProductionVariants")?;
        if given.is_empty() {
            return Err(AwsError::missing("ProductionVariants"));
        }
        let max_instances = self.service.config().max_instances;
        let mut variants = Vec::with_capacity(given.len());
        for (index, variant) in given.iter().enumerate() {
            let place = format!("ProductionVariants.{}", index + 1);
            let variant = object(variant, &place)?;
            let variant_name =
                required_str(variant, "VariantName").map_err(|_| AwsError::missing(&format!("{place}.VariantName")))?;
            let model =
                required_str(variant, "ModelName").map_err(|_| AwsError::missing(&format!("{place}.ModelName")))?;
            let instances = optional_count(variant, "InitialInstanceCount")?.unwrap_or(1);
            if instances > max_instances {
                return Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "ResourceLimitExceeded",
                    format!(
                        "{place}.InitialInstanceCount {instances} is over this server's limit of {max_instances} \
                         instances per variant"
                    ),
                ));
            }
            if member(variant, "ServerlessConfig").is_some() {
                return Err(AwsError::validation(format!(
                    "{place}.ServerlessConfig is not supported; give InitialInstanceCount"
                )));
            }
            let weight = optional_number(variant, "InitialVariantWeight")?.unwrap_or(1.0);
            variants.push(Variant { name: variant_name.to_string(), model: model.to_string(), weight, instances });
        }
        // Every model must exist before the config does (SageMaker checks it at creation).
        for variant in &variants {
            if let Err(ServiceError::NotFound(_)) = self.service.get_model(&variant.model).await {
                return Err(AwsError::validation(format!("Could not find model \"{}\"", variant.model)));
            }
        }
        if member(self.input, "ShadowProductionVariants").is_some() {
            return Err(AwsError::validation("ShadowProductionVariants are not supported yet"));
        }
        let config = self
            .service
            .create_endpoint_config(CreateEndpointConfig {
                name: name.to_string(),
                variants,
                tags,
                data_capture: data_capture_of(self.input)?,
            })
            .await?;
        let mut document = Map::new();
        for key in ["ProductionVariants", "DataCaptureConfig", "KmsKeyId", "ExplainerConfig"] {
            if let Some(value) = member(self.input, key) {
                document.insert(key.to_string(), value.clone());
            }
        }
        self.service
            .put_facade_document(
                FACADE,
                TaggedKind::EndpointConfig,
                &config.name,
                &config.created_at,
                &Value::Object(document),
            )
            .await?;
        Ok(json!({"EndpointConfigArn": arn(self.service, TaggedKind::EndpointConfig, &config.name)}))
    }

    async fn describe_endpoint_config(&self) -> Answer {
        let name = required_str(self.input, "EndpointConfigName")?;
        self.authorize("DescribeEndpointConfig", Resource::EndpointConfig(name.to_string())).await?;
        let config = self.service.get_endpoint_config(name).await?;
        let document = self
            .service
            .facade_document(FACADE, TaggedKind::EndpointConfig, name, &config.created_at)
            .await?
            .unwrap_or_default();
        let given = document.get("ProductionVariants").and_then(Value::as_array);
        let variants: Vec<Value> = config
            .variants
            .iter()
            .map(|variant| {
                let instance_type = given
                    .and_then(|list| {
                        list.iter().find(|item| item.get("VariantName").and_then(Value::as_str) == Some(&variant.name))
                    })
                    .and_then(|item| item.get("InstanceType"))
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_INSTANCE_TYPE);
                json!({
                    "VariantName": variant.name,
                    "ModelName": variant.model,
                    "InitialInstanceCount": variant.instances,
                    "InstanceType": instance_type,
                    "InitialVariantWeight": variant.weight,
                })
            })
            .collect();
        let mut answer = json!({
            "EndpointConfigName": config.name,
            "EndpointConfigArn": arn(self.service, TaggedKind::EndpointConfig, &config.name),
            "ProductionVariants": variants,
            "CreationTime": epoch_seconds(&config.created_at),
        });
        if let (Value::Object(answer), Some(capture)) = (&mut answer, document.get("DataCaptureConfig")) {
            answer.insert("DataCaptureConfig".to_string(), capture.clone());
        }
        Ok(answer)
    }

    async fn list_endpoint_configs(&self) -> Answer {
        self.authorize("ListEndpointConfigs", Resource::Account).await?;
        let contains = optional_str(self.input, "NameContains")?.map(str::to_ascii_lowercase);
        let (configs, next_token) = filtered_page(
            page_of(self.input)?,
            |config: &riskserve_service::EndpointConfig| {
                contains.as_ref().is_none_or(|part| config.name.to_ascii_lowercase().contains(part))
            },
            |config| config.name.as_str(),
            |page| async move { self.service.list_endpoint_configs(&page).await },
        )
        .await?;
        let configs: Vec<Value> = configs
            .iter()
            .map(|config| {
                json!({
                    "EndpointConfigName": config.name,
                    "EndpointConfigArn": arn(self.service, TaggedKind::EndpointConfig, &config.name),
                    "CreationTime": epoch_seconds(&config.created_at),
                })
            })
            .collect();
        Ok(with_token(json!({"EndpointConfigs": configs}), next_token))
    }

    async fn delete_endpoint_config(&self) -> Answer {
        let name = required_str(self.input, "EndpointConfigName")?;
        self.authorize("DeleteEndpointConfig", Resource::EndpointConfig(name.to_string())).await?;
        self.service.delete_endpoint_config(name).await?;
        Ok(json!({}))
    }

    // ---- endpoints ----

    async fn create_endpoint(&self) -> Answer {
        let name = required_str(self.input, "EndpointName")?;
        let config = required_str(self.input, "EndpointConfigName")?;
        self.authorize("CreateEndpoint", Resource::Endpoint(name.to_string())).await?;
        let tags = tags_of(self.input, "Tags")?;
        let endpoint = self
            .service
            .create_endpoint(CreateEndpoint { name: name.to_string(), config: config.to_string(), tags })
            .await?;
        Ok(json!({"EndpointArn": arn(self.service, TaggedKind::Endpoint, &endpoint.name)}))
    }

    async fn describe_endpoint(&self) -> Answer {
        let name = required_str(self.input, "EndpointName")?;
        self.authorize("DescribeEndpoint", Resource::Endpoint(name.to_string())).await?;
        let endpoint = self.service.get_endpoint(name).await?;
        Ok(describe(self.service, &endpoint))
    }

    async fn list_endpoints(&self) -> Answer {
        self.authorize("ListEndpoints", Resource::Account).await?;
        let contains = optional_str(self.input, "NameContains")?.map(str::to_ascii_lowercase);
        let status = optional_str(self.input, "StatusEquals")?;
        let (endpoints, next_token) = filtered_page(
            page_of(self.input)?,
            |endpoint: &Endpoint| {
                contains.as_ref().is_none_or(|part| endpoint.name.to_ascii_lowercase().contains(part))
                    && status.is_none_or(|wanted| endpoint.status == wanted)
            },
            |endpoint| endpoint.name.as_str(),
            |page| async move { self.service.list_endpoints(&page).await },
        )
        .await?;
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|endpoint| {
                json!({
                    "EndpointName": endpoint.name,
                    "EndpointArn": arn(self.service, TaggedKind::Endpoint, &endpoint.name),
                    "CreationTime": epoch_seconds(&endpoint.created_at),
                    "LastModifiedTime": epoch_seconds(&endpoint.updated_at),
                    "EndpointStatus": endpoint.status,
                })
            })
            .collect();
        Ok(with_token(json!({"Endpoints": endpoints}), next_token))
    }

    async fn update_endpoint(&self) -> Answer {
        let name = required_str(self.input, "EndpointName")?;
        let config = required_str(self.input, "EndpointConfigName")?;
        self.authorize("UpdateEndpoint", Resource::Endpoint(name.to_string())).await?;
        if member(self.input, "DeploymentConfig").is_some() {
            return Err(AwsError::validation(
                "DeploymentConfig is not supported: riskserve updates blue/green with all-at-once traffic shifting",
            ));
        }
        self.service.update_endpoint(name, UpdateEndpoint { config: config.to_string() }).await?;
        Ok(json!({"EndpointArn": arn(self.service, TaggedKind::Endpoint, name)}))
    }

    async fn update_weights_and_capacities(&self) -> Answer {
        let name = required_str(self.input, "EndpointName")?;
        self.authorize("UpdateEndpointWeightsAndCapacities", Resource::Endpoint(name.to_string())).await?;
        let changes = optional_list(self.input, "DesiredWeightsAndCapacities")?;
        if changes.is_empty() {
            return Err(AwsError::missing("DesiredWeightsAndCapacities"));
        }
        let max_instances = self.service.config().max_instances;
        let mut parsed = Vec::with_capacity(changes.len());
        for (index, change) in changes.iter().enumerate() {
            let place = format!("DesiredWeightsAndCapacities.{}", index + 1);
            let change = object(change, &place)?;
            let variant =
                required_str(change, "VariantName").map_err(|_| AwsError::missing(&format!("{place}.VariantName")))?;
            let weight = optional_number(change, "DesiredWeight")?;
            let instances = optional_count(change, "DesiredInstanceCount")?;
            if let Some(count) = instances
                && count > max_instances
            {
                return Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "ResourceLimitExceeded",
                    format!("{place}.DesiredInstanceCount {count} is over this server's limit of {max_instances}"),
                ));
            }
            parsed.push((variant.to_string(), riskserve_service::VariantChange { weight, instances }));
        }
        // Every variant is checked before any changes, so a bad name leaves the endpoint as it was.
        let endpoint = self.service.get_endpoint(name).await?;
        if let Some((unknown, _)) =
            parsed.iter().find(|(variant, _)| endpoint.variants.iter().all(|serving| &serving.name != variant))
        {
            return Err(AwsError::validation(format!("endpoint {name:?} has no variant {unknown:?}")));
        }
        for (variant, change) in parsed {
            self.service.update_variant(name, &variant, change).await?;
        }
        Ok(json!({"EndpointArn": arn(self.service, TaggedKind::Endpoint, name)}))
    }

    async fn delete_endpoint(&self) -> Answer {
        let name = required_str(self.input, "EndpointName")?;
        self.authorize("DeleteEndpoint", Resource::Endpoint(name.to_string())).await?;
        self.service.delete_endpoint(name).await?;
        Ok(json!({}))
    }

    // ---- tags ----

    async fn tagged_resource(&self, operation: &str) -> Result<(TaggedKind, String), AwsError> {
        let (kind, name) = parse_arn(required_str(self.input, "ResourceArn")?)?;
        self.authorize(operation, authorization_resource(kind, &name)).await?;
        Ok((kind, name))
    }

    async fn add_tags(&self) -> Answer {
        let (kind, name) = self.tagged_resource("AddTags").await?;
        let tags = tags_of(self.input, "Tags")?;
        if tags.is_empty() {
            return Err(AwsError::missing("Tags"));
        }
        self.service.change_tags(kind, &name, &tags, &[]).await?;
        Ok(json!({"Tags": tag_list(&tags)}))
    }

    async fn list_tags(&self) -> Answer {
        let (kind, name) = self.tagged_resource("ListTags").await?;
        let tags = self.service.tags_of(kind, &name).await?;
        let page = page_of(self.input)?;
        let limit = page.max_results.unwrap_or(50) as usize;
        let after = page.next_token.unwrap_or_default();
        let remaining: BTreeMap<String, String> =
            tags.into_iter().filter(|(key, _)| after.is_empty() || *key > after).collect();
        let shown: BTreeMap<String, String> =
            remaining.iter().take(limit).map(|(k, v)| (k.clone(), v.clone())).collect();
        let next = (remaining.len() > limit).then(|| shown.keys().next_back().cloned()).flatten();
        Ok(with_token(json!({"Tags": tag_list(&shown)}), next))
    }

    async fn delete_tags(&self) -> Answer {
        let (kind, name) = self.tagged_resource("DeleteTags").await?;
        let keys: Vec<String> = optional_list(self.input, "TagKeys")?
            .iter()
            .map(|key| {
                key.as_str().map(str::to_string).ok_or_else(|| AwsError::serialization("TagKeys must be strings"))
            })
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(AwsError::missing("TagKeys"));
        }
        self.service.change_tags(kind, &name, &BTreeMap::new(), &keys).await?;
        Ok(json!({}))
    }
}

/// A page of at most `page.max_results` items that `keep` accepts, read from as many service
/// pages as it takes (filters such as NameContains must not leave pages short); the token is
/// the name of the last item read.
async fn filtered_page<T, Fetch, Future>(
    page: PageRequest,
    keep: impl Fn(&T) -> bool,
    name_of: impl Fn(&T) -> &str,
    mut fetch: Fetch,
) -> Result<(Vec<T>, Option<String>), AwsError>
where
    Fetch: FnMut(PageRequest) -> Future,
    Future: std::future::Future<Output = Result<riskserve_service::List<T>, ServiceError>>,
{
    let wanted = page.max_results.unwrap_or(100) as usize;
    let mut token = page.next_token;
    let mut kept = Vec::new();
    loop {
        let request = PageRequest { max_results: Some(100), next_token: token.clone() };
        let listed = fetch(request).await?;
        let mut exhausted = listed.next_token.is_none();
        let count = listed.items.len();
        for (index, item) in listed.items.into_iter().enumerate() {
            token = Some(name_of(&item).to_string());
            if keep(&item) {
                kept.push(item);
                if kept.len() == wanted {
                    exhausted = exhausted && index + 1 == count;
                    return Ok((kept, if exhausted { None } else { token }));
                }
            }
        }
        if exhausted {
            return Ok((kept, None));
        }
    }
}

fn with_token(mut answer: Value, next_token: Option<String>) -> Value {
    if let (Value::Object(members), Some(token)) = (&mut answer, next_token) {
        members.insert("NextToken".to_string(), Value::String(token));
    }
    answer
}

/// DescribeEndpoint's answer for an endpoint.
pub fn describe(service: &Service, endpoint: &Endpoint) -> Value {
    let variants: Vec<Value> = endpoint
        .variants
        .iter()
        .map(|variant| {
            json!({
                "VariantName": variant.name,
                "DeployedImages": [],
                "CurrentWeight": variant.weight,
                "DesiredWeight": variant.weight,
                "CurrentInstanceCount": variant.instances,
                "DesiredInstanceCount": variant.instances,
            })
        })
        .collect();
    let mut answer = json!({
        "EndpointName": endpoint.name,
        "EndpointArn": arn(service, TaggedKind::Endpoint, &endpoint.name),
        "EndpointConfigName": endpoint.config,
        "ProductionVariants": variants,
        "EndpointStatus": endpoint.status,
        "CreationTime": epoch_seconds(&endpoint.created_at),
        "LastModifiedTime": epoch_seconds(&endpoint.updated_at),
    });
    if let (Value::Object(members), Some(reason)) = (&mut answer, &endpoint.failure_reason) {
        members.insert("FailureReason".to_string(), Value::String(reason.clone()));
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_become_epoch_seconds() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00.000Z"), 0.0);
        assert_eq!(epoch_seconds("2026-11-28T19:33:25.500Z"), 1_795_894_405.5);
        assert_eq!(epoch_seconds("2000-03-01T00:00:00Z"), 951_868_800.0);
        assert_eq!(epoch_seconds("garbage"), 0.0);
    }

    #[test]
    fn arns_name_their_resource() {
        assert_eq!(
            parse_arn("arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/credit-v2"),
            Ok((TaggedKind::EndpointConfig, "credit-v2".to_string()))
        );
        assert_eq!(parse_arn("arn:aws:sagemaker:r:1:endpoint/x"), Ok((TaggedKind::Endpoint, "x".to_string())));
        for bad in
            ["", "arn:aws:s3:::bucket/key", "arn:aws:sagemaker:r:1:training-job/x", "arn:aws:sagemaker:r:1:model"]
        {
            assert_eq!(parse_arn(bad).map_err(|error| error.kind), Err("ValidationException"), "{bad}");
        }
    }

    #[test]
    fn targets_and_bodies_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(operation(&headers).map_err(|error| error.kind), Err("UnknownOperationException"));
        headers.insert("x-amz-target", HeaderValue::from_static("SageMaker.ListModels"));
        assert_eq!(operation(&headers).ok(), Some("ListModels"));
        headers.insert("x-amz-target", HeaderValue::from_static("DynamoDB_20120810.ListTables"));
        assert!(operation(&headers).is_err());
        assert_eq!(parse_input(b"").map(|input| input.len()), Ok(0));
        for bad in [&b"{"[..], b"[1]", b"\"x\"", b"{\"a\": }", b"\xff\xfe"] {
            assert_eq!(parse_input(bad).map_err(|error| error.kind), Err("SerializationException"));
        }
    }

    #[test]
    fn members_are_named_when_missing_or_mistyped() {
        let input =
            parse_input(br#"{"A": "x", "B": 3, "N": null, "Tags": [{"Key": "k"}, {"Value": "v"}]}"#).expect("input");
        assert_eq!(required_str(&input, "A"), Ok("x"));
        let error = required_str(&input, "N").expect_err("null is missing");
        assert!(error.message.contains("'N'"), "{}", error.message);
        assert_eq!(required_str(&input, "B").map_err(|error| error.kind), Err("SerializationException"));
        let error = tags_of(&input, "Tags").expect_err("second tag has no key");
        assert!(error.message.contains("Tags.2.member.Key"), "{}", error.message);
        assert_eq!(optional_count(&input, "B"), Ok(Some(3)));
    }

    #[test]
    fn service_errors_become_sagemaker_errors() {
        let cases = [
            (ServiceError::NotFound("x".into()), "ValidationException", 400),
            (ServiceError::InUse("x".into()), "ResourceInUse", 400),
            (ServiceError::AlreadyExists("x".into()), "ValidationException", 400),
            (ServiceError::Internal("x".into()), "InternalFailure", 500),
        ];
        for (error, kind, status) in cases {
            let translated = AwsError::from(error);
            assert_eq!((translated.kind, translated.status.as_u16()), (kind, status));
        }
        let response = AwsError::validation("m").into_response();
        assert_eq!(
            response.headers().get("x-amzn-errortype").and_then(|value| value.to_str().ok()),
            Some("ValidationException")
        );
    }
}
