//! The operations routes (`/metrics`, `/api/v1/endpoints/{name}/metrics`, scaling policies, `/api/v1/cost`), their
//! OpenAPI document, and the open metrics listener.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use riskserve_service::{
    Caller, CostLine, CostQuery, CostReport, Datapoint, EXPOSITION_CONTENT_TYPE, List, MetricQuery, MetricSeries,
    PriceTable, PutScalingPolicy, Resource, ScalingActivity, ScalingPolicy, Service,
};
use utoipa::OpenApi;

use crate::respond::{ErrorBody, json_body, ok, query_of, respond};

#[derive(OpenApi)]
#[openapi(
    paths(metrics, endpoint_metrics, list_scaling_policies, put_scaling_policy, delete_scaling_policy, cost),
    components(schemas(
        MetricSeries,
        Datapoint,
        ScalingPolicy,
        PutScalingPolicy,
        ScalingActivity,
        CostReport,
        CostLine,
        PriceTable
    ))
)]
pub struct OperationsApi;

/// The routes of the operations side (authenticated like every other route).
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/endpoints/{name}/metrics", get(endpoint_metrics))
        .route("/api/v1/endpoints/{name}/scaling-policies", get(list_scaling_policies))
        .route(
            "/api/v1/endpoints/{name}/variants/{variant}/scaling-policy",
            put(put_scaling_policy).delete(delete_scaling_policy),
        )
        .route("/api/v1/cost", get(cost))
}

/// The open metrics listener (`metrics_listen`): `GET /metrics` only, without credentials, for a
/// Prometheus on a trusted network.
pub fn open_metrics_router(service: Service) -> Router {
    Router::new().route("/metrics", get(open_metrics)).with_state(service)
}

fn exposition_response(service: &Service) -> Response {
    ([(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)], service.metrics_text()).into_response()
}

async fn open_metrics(State(service): State<Service>) -> Response {
    exposition_response(&service)
}

/// Prometheus metrics of every endpoint variant and of the process (text format 0.0.4); needs `metrics:Read`.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
    (status = 403, description = "access_denied", body = ErrorBody)))]
async fn metrics(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    respond(
        async {
            service.authorize(&caller, "metrics:Read", Resource::Account).await?;
            Ok(exposition_response(&service))
        }
        .await,
    )
}

/// Per-minute history of an endpoint (kept 25 hours), as one statistic per period.
#[utoipa::path(get, path = "/api/v1/endpoints/{name}/metrics", params(("name" = String, Path), MetricQuery),
    responses((status = 200, description = "Success", body = MetricSeries), (status = 400, description = "validation_error", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody)))]
async fn endpoint_metrics(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    query: Result<Query<MetricQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "metrics:Read", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.endpoint_metrics(&name, &query_of(query)?).await?))
        }
        .await,
    )
}

/// The scaling policies of an endpoint's variants.
#[utoipa::path(get, path = "/api/v1/endpoints/{name}/scaling-policies", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = List<ScalingPolicy>), (status = 404, description = "not_found", body = ErrorBody)))]
async fn list_scaling_policies(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "autoscaling:DescribeScalingPolicies", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.list_scaling_policies(&name).await?))
        }
        .await,
    )
}

/// Sets a variant's target-tracking policy: min and max instances, target invocations per instance per minute, cooldowns.
#[utoipa::path(put, path = "/api/v1/endpoints/{name}/variants/{variant}/scaling-policy",
    params(("name" = String, Path), ("variant" = String, Path)), request_body = PutScalingPolicy,
    responses((status = 200, description = "Success", body = ScalingPolicy), (status = 400, description = "validation_error", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody)))]
async fn put_scaling_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((name, variant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "autoscaling:PutScalingPolicy", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.put_scaling_policy(&name, &variant, json_body(&headers, body)?).await?))
        }
        .await,
    )
}

/// Deletes a variant's scaling policy; its instance count stays as it is.
#[utoipa::path(delete, path = "/api/v1/endpoints/{name}/variants/{variant}/scaling-policy",
    params(("name" = String, Path), ("variant" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "not_found", body = ErrorBody)))]
async fn delete_scaling_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((name, variant)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "autoscaling:DeleteScalingPolicy", Resource::Endpoint(name.clone())).await?;
            service.delete_scaling_policy(&name, &variant).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// Usage and cost between two times, by endpoint, variant, tag or principal, at the configured prices.
#[utoipa::path(get, path = "/api/v1/cost", params(CostQuery),
    responses((status = 200, description = "Success", body = CostReport), (status = 400, description = "validation_error", body = ErrorBody)))]
async fn cost(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<CostQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "cost:Read", Resource::Account).await?;
            Ok(ok(service.cost_report(&query_of(query)?).await?))
        }
        .await,
    )
}
