//! The HTTP application: every façade's routes in one table, behind the request log and the authentication
//! middleware, with the body limits and the OpenAPI document of the native API.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use riskserve_service::{Service, ServiceError};
use utoipa::OpenApi;

use crate::respond::error_response;
use crate::{audit, authenticate, console, iam, monitoring, oip, operations, request_log, rest, sagemaker};

/// The OpenAPI document of the native API (REST and operations routes), as JSON.
pub fn openapi_json() -> String {
    let mut document = rest::ApiDoc::openapi();
    document.merge(<operations::OperationsApi as OpenApi>::openapi());
    document.merge(<monitoring::MonitoringApi as OpenApi>::openapi());
    document.to_pretty_json().unwrap_or_else(|_| "{}".to_string())
}

/// The HTTP application; tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(service: Service) -> Router {
    let max_body = service.config().max_body_bytes;
    let max_artifact = service.config().max_artifact_bytes;
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .merge(rest::routes())
        .merge(sagemaker::routes())
        .merge(oip::routes())
        .merge(iam::routes())
        .merge(audit::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .merge(rest::artifact_routes(max_artifact))
        .merge(operations::routes())
        .merge(monitoring::routes(max_artifact))
        .merge(console::routes())
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn(request_log::log_request))
        .layer(axum::middleware::from_fn_with_state(service.clone(), authenticate::authenticate))
        .with_state(service)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

async fn unknown_route() -> Response {
    error_response(ServiceError::NotFound("no such route".to_string()))
}
