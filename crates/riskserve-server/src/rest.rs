//! The native REST façade (`/api/v1`), the health routes and the invocation paths (`/endpoints/{name}/invocations`,
//! `/invocations`): handlers only destructure, check the transport (content type, body limit), authorize, call the
//! service and wrap its answer. The OpenAPI document is generated from these annotations.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use riskserve_store::PageRequest;
use serde::Deserialize;
use utoipa::OpenApi;

use riskserve_service::{
    ArtifactDescription, ArtifactInput, ArtifactUploaded, BodyFormat, Caller, CreateEndpoint, CreateEndpointConfig,
    CreateModel, DataCapture, Endpoint, EndpointConfig, InvocationContext, InvocationRequest, List, Model, Resource,
    Service, ServiceError, UpdateEndpoint, Variant, VariantChange,
};

use crate::authenticate::InvocationRecords;
use crate::respond::{
    ErrorBody, ErrorDetail, body_bytes, content_type, created, error_response, json_body, ok, respond,
};

/// The header that picks a variant.
const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";
/// The header that names the variant that answered.
const INVOKED_VARIANT: &str = "x-Amzn-Invoked-Production-Variant";
const ENABLE_EXPLANATIONS: &str = "x-amzn-sagemaker-enable-explanations";

#[derive(OpenApi)]
#[openapi(
    info(title = "riskserve", description = "Managed endpoints for risk classification models"),
    paths(
        upload_artifact,
        create_model,
        list_models,
        get_model,
        get_model_pipeline,
        delete_model,
        create_endpoint_config,
        list_endpoint_configs,
        get_endpoint_config,
        delete_endpoint_config,
        create_endpoint,
        list_endpoints,
        get_endpoint,
        update_endpoint,
        delete_endpoint,
        update_variant,
        invoke_endpoint,
        invoke_only,
        ping,
        healthz,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        ArtifactUploaded,
        ArtifactInput,
        ArtifactDescription,
        CreateModel,
        Model,
        Variant,
        CreateEndpointConfig,
        EndpointConfig,
        DataCapture,
        CreateEndpoint,
        UpdateEndpoint,
        VariantChange,
        Endpoint,
        Outcome,
        Reason,
        Predictions,
        JsonInstances,
    ))
)]
pub struct ApiDoc;

// ---- transport checks shared by the handlers ----

/// The native REST routes and the invocation paths (the artifact upload apart: it has its own body limit).
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/ping", get(ping))
        .route("/healthz", get(healthz))
        .route("/api/v1/models", post(create_model).get(list_models))
        .route("/api/v1/models/{name}", get(get_model).delete(delete_model))
        .route("/api/v1/models/{name}/pipeline", get(get_model_pipeline))
        .route("/api/v1/endpoint-configs", post(create_endpoint_config).get(list_endpoint_configs))
        .route("/api/v1/endpoint-configs/{name}", get(get_endpoint_config).delete(delete_endpoint_config))
        .route("/api/v1/endpoints", post(create_endpoint).get(list_endpoints))
        .route("/api/v1/endpoints/{name}", get(get_endpoint).put(update_endpoint).delete(delete_endpoint))
        .route("/api/v1/endpoints/{name}/variants/{variant}", patch(update_variant))
        .route("/endpoints/{name}/invocations", post(invoke_endpoint))
        .route("/invocations", post(invoke_only))
}

/// The artifact upload, whose body may be as large as `max_artifact_bytes`.
pub fn artifact_routes(max_artifact_bytes: usize) -> Router<Service> {
    Router::new().route("/api/v1/artifacts", put(upload_artifact)).layer(DefaultBodyLimit::max(max_artifact_bytes))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// At most this many items (1 to 100, default 100).
    max_results: Option<u32>,
    /// The `next_token` of the previous page.
    next_token: Option<String>,
}

fn page_request(query: Result<Query<ListQuery>, QueryRejection>) -> Result<PageRequest, ServiceError> {
    let Query(query) =
        query.map_err(|rejection| ServiceError::validation(format!("bad query: {}", rejection.body_text())))?;
    Ok(PageRequest { max_results: query.max_results, next_token: query.next_token })
}

// ---- health ----

/// The container contract's health check, and the readiness check of load balancers and Kubernetes: 200 once the
/// server has recovered and serves the stored state, 503 once it is shutting down.
#[utoipa::path(get, path = "/ping", responses((status = 200, description = "Ready"), (status = 503, description = "Not ready: starting or shutting down")))]
async fn ping(State(service): State<Service>) -> StatusCode {
    if service.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
async fn healthz() -> Response {
    ok(serde_json::json!({"status": "ok"}))
}

// ---- artifacts ----

/// Uploads a model file or pipeline spec; content addressed and idempotent.
#[utoipa::path(put, path = "/api/v1/artifacts", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "Created", body = ArtifactUploaded), (status = 413, description = "payload_too_large", body = ErrorBody)))]
async fn upload_artifact(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:UploadArtifact", Resource::Account).await?;
            Ok(created(service.upload_artifact(body_bytes(body)?).await?))
        }
        .await,
    )
}

// ---- models ----

/// Creates a model once its artifact loads and scores a row.
#[utoipa::path(post, path = "/api/v1/models", request_body = CreateModel,
    responses((status = 201, description = "Created", body = Model), (status = 400, description = "validation_error, invalid_artifact or invalid_input", body = ErrorBody), (status = 404, description = "not_found", body = ErrorBody),
              (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody), (status = 415, description = "unsupported_media_type", body = ErrorBody)))]
async fn create_model(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            let request: CreateModel = json_body(&headers, body)?;
            service.authorize(&caller, "sagemaker:CreateModel", Resource::Model(request.name.clone())).await?;
            Ok(created(service.create_model(request).await?))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/models", params(ListQuery), responses((status = 200, description = "Success", body = List<Model>)))]
async fn list_models(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:ListModels", Resource::Account).await?;
            Ok(ok(service.list_models(&page_request(query)?).await?))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/models/{name}", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = Model), (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_model(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:DescribeModel", Resource::Model(name.clone())).await?;
            Ok(ok(service.get_model(&name).await?))
        }
        .await,
    )
}

/// The model's pipeline file as it was uploaded (features, steps, model, calibration, scaling, grades, decisions,
/// reason codes); 404 for a bare model.
#[utoipa::path(get, path = "/api/v1/models/{name}/pipeline", params(("name" = String, Path)),
    responses((status = 200, description = "The pipeline spec (JSON)", content_type = "application/json"),
              (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_model_pipeline(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:DescribeModel", Resource::Model(name.clone())).await?;
            let spec = service.get_model_pipeline(&name).await?;
            Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], spec).into_response())
        }
        .await,
    )
}

#[utoipa::path(delete, path = "/api/v1/models/{name}", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "not_found", body = ErrorBody), (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody)))]
async fn delete_model(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:DeleteModel", Resource::Model(name.clone())).await?;
            service.delete_model(&name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

// ---- endpoint configs ----

#[utoipa::path(post, path = "/api/v1/endpoint-configs", request_body = CreateEndpointConfig,
    responses((status = 201, description = "Created", body = EndpointConfig), (status = 400, description = "validation_error, invalid_artifact or invalid_input", body = ErrorBody), (status = 404, description = "not_found", body = ErrorBody),
              (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody)))]
async fn create_endpoint_config(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            let request: CreateEndpointConfig = json_body(&headers, body)?;
            service
                .authorize(&caller, "sagemaker:CreateEndpointConfig", Resource::EndpointConfig(request.name.clone()))
                .await?;
            Ok(created(service.create_endpoint_config(request).await?))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/endpoint-configs", params(ListQuery),
    responses((status = 200, description = "Success", body = List<EndpointConfig>)))]
async fn list_endpoint_configs(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:ListEndpointConfigs", Resource::Account).await?;
            Ok(ok(service.list_endpoint_configs(&page_request(query)?).await?))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/endpoint-configs/{name}", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = EndpointConfig), (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_endpoint_config(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service
                .authorize(&caller, "sagemaker:DescribeEndpointConfig", Resource::EndpointConfig(name.clone()))
                .await?;
            Ok(ok(service.get_endpoint_config(&name).await?))
        }
        .await,
    )
}

#[utoipa::path(delete, path = "/api/v1/endpoint-configs/{name}", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "not_found", body = ErrorBody), (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody)))]
async fn delete_endpoint_config(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service
                .authorize(&caller, "sagemaker:DeleteEndpointConfig", Resource::EndpointConfig(name.clone()))
                .await?;
            service.delete_endpoint_config(&name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

// ---- endpoints ----

/// Creates an endpoint; it deploys in the background (status `Creating`, then `InService` or `Failed`).
#[utoipa::path(post, path = "/api/v1/endpoints", request_body = CreateEndpoint,
    responses((status = 201, description = "Created", body = Endpoint), (status = 400, description = "validation_error, invalid_artifact or invalid_input", body = ErrorBody), (status = 404, description = "not_found", body = ErrorBody),
              (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody)))]
async fn create_endpoint(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            let request: CreateEndpoint = json_body(&headers, body)?;
            service.authorize(&caller, "sagemaker:CreateEndpoint", Resource::Endpoint(request.name.clone())).await?;
            Ok(created(service.create_endpoint(request).await?))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/endpoints", params(ListQuery), responses((status = 200, description = "Success", body = List<Endpoint>)))]
async fn list_endpoints(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:ListEndpoints", Resource::Account).await?;
            Ok(ok(service.list_endpoints(&page_request(query)?).await?))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/endpoints/{name}", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = Endpoint), (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_endpoint(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:DescribeEndpoint", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.get_endpoint(&name).await?))
        }
        .await,
    )
}

/// Moves an endpoint to another config blue/green (status `Updating`); a failure rolls back.
#[utoipa::path(put, path = "/api/v1/endpoints/{name}", params(("name" = String, Path)), request_body = UpdateEndpoint,
    responses((status = 200, description = "Success", body = Endpoint), (status = 404, description = "not_found", body = ErrorBody), (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody)))]
async fn update_endpoint(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:UpdateEndpoint", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.update_endpoint(&name, json_body(&headers, body)?).await?))
        }
        .await,
    )
}

/// Deletes an endpoint (status `Deleting`, then gone).
#[utoipa::path(delete, path = "/api/v1/endpoints/{name}", params(("name" = String, Path)),
    responses((status = 202, description = "Accepted: the endpoint is Deleting", body = Endpoint), (status = 404, description = "not_found", body = ErrorBody)))]
async fn delete_endpoint(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "sagemaker:DeleteEndpoint", Resource::Endpoint(name.clone())).await?;
            Ok((StatusCode::ACCEPTED, axum::Json(service.delete_endpoint(&name).await?)).into_response())
        }
        .await,
    )
}

/// Changes a serving variant's weight and/or instance count in place, without a deployment.
#[utoipa::path(patch, path = "/api/v1/endpoints/{name}/variants/{variant}",
    params(("name" = String, Path), ("variant" = String, Path)), request_body = VariantChange,
    responses((status = 200, description = "Success", body = Endpoint),
              (status = 400, description = "validation_error", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody),
              (status = 409, description = "invalid_state: the endpoint is not InService", body = ErrorBody)))]
async fn update_variant(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((name, variant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            let resource = Resource::Endpoint(name.clone());
            service.authorize(&caller, "sagemaker:UpdateEndpointWeightsAndCapacities", resource).await?;
            Ok(ok(service.update_variant(&name, &variant, json_body(&headers, body)?).await?))
        }
        .await,
    )
}

// ---- invocations ----

/// A JSON invocation: rows by position or by field name.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
struct JsonInstances {
    /// `[[v, ...], ...]` in the model's field order, or `[{"field": v, ...}, ...]`.
    instances: Vec<serde_json::Value>,
}

/// A JSON answer.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
struct Predictions {
    predictions: Vec<Outcome>,
}

/// The answer for one row; members the model or pipeline does not produce are absent.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
struct Outcome {
    /// The model's raw output columns, as `riskserve score` prints them.
    values: Vec<f64>,
    probability: Option<f64>,
    score: Option<f64>,
    grade: Option<String>,
    decision: Option<String>,
    /// Feature name to its contribution in margin space, plus `bias` (with explanations).
    contributions: Option<std::collections::BTreeMap<String, f64>>,
    /// The principal reasons, most adverse first (with explanations).
    reasons: Option<Vec<Reason>>,
}

/// One principal reason for an outcome.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
struct Reason {
    code: String,
    feature: String,
    text: String,
    contribution: f64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InvokeQuery {
    /// `true` asks for explanations (as the `X-Amzn-SageMaker-Enable-Explanations` header does).
    explain: Option<bool>,
}

/// The error answer of the invocation path. SageMaker's own error shapes arrive with the
/// SageMaker façade; this is the one function that will change.
fn invocation_error(error: ServiceError) -> Response {
    error_response(error)
}

async fn invoke(
    service: &Service,
    caller: &Caller,
    endpoint: Option<&str>,
    query: Result<Query<InvokeQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received = std::time::Instant::now();
    let result = async {
        let resource = match endpoint {
            Some(name) => Resource::Endpoint(name.to_string()),
            None => Resource::Endpoint(service.only_serving_endpoint().unwrap_or_default()),
        };
        service.authorize(caller, "sagemaker:InvokeEndpoint", resource).await?;
        let body = body_bytes(body)?;
        let format = BodyFormat::from_content_type(content_type(headers))?;
        let Query(query) =
            query.map_err(|rejection| ServiceError::validation(format!("bad query: {}", rejection.body_text())))?;
        let header_explain = headers
            .get(ENABLE_EXPLANATIONS)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let target_variant = match headers.get(TARGET_VARIANT) {
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| ServiceError::validation("the target variant header is not readable text"))?
                    .to_string(),
            ),
            None => None,
        };
        let inference_id = match headers.get(INFERENCE_ID) {
            Some(value) => {
                let id = value
                    .to_str()
                    .map_err(|_| ServiceError::validation("the inference id header is not readable text"))?;
                riskserve_service::check_inference_id(id)?;
                Some(id.to_string())
            }
            None => None,
        };
        let request = InvocationRequest {
            body,
            format,
            target_variant,
            explain: header_explain || query.explain.unwrap_or(false),
            inference_id,
            original_body: None,
        };
        let context = InvocationContext { received, principal: caller.principal.name.clone() };
        service.invoke_with(endpoint, request, context).await
    }
    .await;
    match result {
        Ok(answer) => {
            // CSV answers one line a record; the audit trail counts them (never reads them).
            let records = (answer.content_type == "text/csv")
                .then(|| InvocationRecords(answer.body.iter().filter(|byte| **byte == b'\n').count()));
            let mut response = answer.body.into_response();
            if let Some(records) = records {
                response.extensions_mut().insert(records);
            }
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
            if let Ok(value) = HeaderValue::from_str(&answer.variant) {
                headers.insert(INVOKED_VARIANT, value);
            }
            response
        }
        Err(error) => invocation_error(error),
    }
}

/// Scores rows on an endpoint (SageMaker runtime path). `text/csv`: no header, one row a line,
/// answer one line a row; `application/json`: `{"instances": [...]}`, answer `{"predictions": [...]}`.
#[utoipa::path(post, path = "/endpoints/{name}/invocations", params(("name" = String, Path), InvokeQuery),
    request_body(content((String = "text/csv"), (JsonInstances = "application/json"))),
    responses((status = 200, description = "One answer per row", content((String = "text/csv"), (Predictions = "application/json"))),
              (status = 400, description = "validation_error, invalid_artifact or invalid_input", body = ErrorBody), (status = 404, description = "not_found", body = ErrorBody), (status = 409, description = "already_exists, in_use or invalid_state", body = ErrorBody),
              (status = 413, description = "payload_too_large", body = ErrorBody), (status = 415, description = "unsupported_media_type", body = ErrorBody), (status = 503, description = "overloaded (with Retry-After)", body = ErrorBody)))]
async fn invoke_endpoint(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    query: Result<Query<InvokeQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // SageMaker clients get SageMaker's shapes (docs/clients.md says who counts as one).
    if crate::sagemaker_runtime::speaks_sagemaker(&headers) {
        return crate::sagemaker_runtime::invoke(&service, &caller, &name, &headers, body).await;
    }
    invoke(&service, &caller, Some(&name), query, &headers, body).await
}

/// The container contract's invocation path: the only endpoint in service answers.
#[utoipa::path(post, path = "/invocations", params(InvokeQuery),
    request_body(content((String = "text/csv"), (JsonInstances = "application/json"))),
    responses((status = 200, description = "One answer per row"), (status = 400, description = "validation_error, invalid_artifact or invalid_input", body = ErrorBody)))]
async fn invoke_only(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<InvokeQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    invoke(&service, &caller, None, query, &headers, body).await
}
