//! The model monitoring routes (`/api/v1/endpoints/{name}/monitoring/…`: baseline, outcomes, schedule, runs,
//! reports) and their OpenAPI document.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use riskserve_service::{
    BaselineDescription, BaselineQuery, Caller, FairnessSettings, List, MonitorReport, MonitorReportSummary,
    MonitorSchedule, MonitorSettings, OutcomesAccepted, ReportWindow, Resource, Service, ServiceError,
};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::respond::{ErrorBody, body_bytes, content_type, json_body, ok, query_of, respond};

#[derive(OpenApi)]
#[openapi(
    paths(
        put_baseline,
        get_baseline,
        put_outcomes,
        put_schedule,
        get_schedule,
        delete_schedule,
        start_run,
        list_reports,
        get_report
    ),
    components(schemas(
        BaselineDescription,
        OutcomesAccepted,
        MonitorSchedule,
        MonitorSettings,
        FairnessSettings,
        MonitorReport,
        MonitorReportSummary,
        ReportWindow
    ))
)]
pub struct MonitoringApi;

/// The monitoring routes; the two uploads (a baseline file, outcomes) may be as large as an artifact.
pub fn routes(max_upload_bytes: usize) -> Router<Service> {
    let uploads = Router::new()
        .route("/api/v1/endpoints/{name}/monitoring/baseline", put(put_baseline).get(get_baseline))
        .route("/api/v1/endpoints/{name}/monitoring/outcomes", post(put_outcomes))
        .layer(DefaultBodyLimit::max(max_upload_bytes));
    Router::new()
        .route(
            "/api/v1/endpoints/{name}/monitoring/schedule",
            put(put_schedule).get(get_schedule).delete(delete_schedule),
        )
        .route("/api/v1/endpoints/{name}/monitoring/runs", post(start_run))
        .route("/api/v1/endpoints/{name}/monitoring/reports", get(list_reports))
        .route("/api/v1/endpoints/{name}/monitoring/reports/{id}", get(get_report))
        .merge(uploads)
}

/// Builds the endpoint's baseline from a CSV file with a header (every input field of the model, and optionally an
/// outcome column), scored by the endpoint's serving model; replaces any earlier baseline.
#[utoipa::path(put, path = "/api/v1/endpoints/{name}/monitoring/baseline", params(("name" = String, Path), BaselineQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "Success", body = BaselineDescription),
              (status = 400, description = "validation_error or invalid_input, naming the line", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody),
              (status = 409, description = "invalid_state: the endpoint is not serving", body = ErrorBody)))]
async fn put_baseline(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    query: Result<Query<BaselineQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:PutBaseline", Resource::Endpoint(name.clone())).await?;
            let query = query_of(query)?;
            let essence = content_type(&headers).unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
            if !essence.eq_ignore_ascii_case("text/csv") {
                return Err(ServiceError::UnsupportedMediaType(format!(
                    "a baseline file is text/csv, not {:?}",
                    content_type(&headers).unwrap_or("")
                )));
            }
            Ok(ok(service.put_baseline(&name, &query, body_bytes(body)?).await?))
        }
        .await,
    )
}

/// The endpoint's baseline.
#[utoipa::path(get, path = "/api/v1/endpoints/{name}/monitoring/baseline", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = BaselineDescription), (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_baseline(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:DescribeBaseline", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.get_baseline(&name).await?))
        }
        .await,
    )
}

/// Uploads ground truth keyed by inference id (and row): CSV with a header `inference_id,bad[,row][,attribute]` or
/// JSON Lines of the same keys. All or nothing; a malformed line is refused with its number.
#[utoipa::path(post, path = "/api/v1/endpoints/{name}/monitoring/outcomes", params(("name" = String, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "Success", body = OutcomesAccepted),
              (status = 400, description = "validation_error naming the line", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody),
              (status = 415, description = "unsupported_media_type", body = ErrorBody)))]
async fn put_outcomes(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:PutOutcomes", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.put_outcomes(&name, content_type(&headers), body_bytes(body)?).await?))
        }
        .await,
    )
}

/// Sets the endpoint's monitoring schedule (the first run is due at once). The endpoint must capture its inputs
/// and outputs and have a baseline.
#[utoipa::path(put, path = "/api/v1/endpoints/{name}/monitoring/schedule", params(("name" = String, Path)),
    request_body = MonitorSettings,
    responses((status = 200, description = "Success", body = MonitorSchedule),
              (status = 400, description = "validation_error", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody),
              (status = 409, description = "invalid_state: no capture or no baseline", body = ErrorBody)))]
async fn put_schedule(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:PutSchedule", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.put_monitor_schedule(&name, json_body(&headers, body)?).await?))
        }
        .await,
    )
}

/// The endpoint's monitoring schedule.
#[utoipa::path(get, path = "/api/v1/endpoints/{name}/monitoring/schedule", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = MonitorSchedule), (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_schedule(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:DescribeSchedule", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.get_monitor_schedule(&name).await?))
        }
        .await,
    )
}

/// Stops the endpoint's monitoring schedule (its reports stay).
#[utoipa::path(delete, path = "/api/v1/endpoints/{name}/monitoring/schedule", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "not_found", body = ErrorBody)))]
async fn delete_schedule(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:DeleteSchedule", Resource::Endpoint(name.clone())).await?;
            service.delete_monitor_schedule(&name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// Runs the endpoint's monitoring now and answers its report (also stored).
#[utoipa::path(post, path = "/api/v1/endpoints/{name}/monitoring/runs", params(("name" = String, Path)),
    responses((status = 200, description = "Success", body = MonitorReport),
              (status = 404, description = "not_found: no endpoint or no baseline", body = ErrorBody),
              (status = 409, description = "invalid_state: no capture", body = ErrorBody)))]
async fn start_run(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:StartRun", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.start_monitor_run(&name).await?))
        }
        .await,
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportsQuery {
    /// At most this many reports, newest first (1 to 1000, default 20).
    limit: Option<u32>,
}

/// The endpoint's latest monitoring reports, newest first.
#[utoipa::path(get, path = "/api/v1/endpoints/{name}/monitoring/reports", params(("name" = String, Path), ReportsQuery),
    responses((status = 200, description = "Success", body = List<MonitorReportSummary>),
              (status = 400, description = "validation_error", body = ErrorBody), (status = 404, description = "not_found", body = ErrorBody)))]
async fn list_reports(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    query: Result<Query<ReportsQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:ListReports", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.list_monitor_reports(&name, query_of(query)?.limit).await?))
        }
        .await,
    )
}

/// One monitoring report, whole (`latest`: the newest).
#[utoipa::path(get, path = "/api/v1/endpoints/{name}/monitoring/reports/{id}", params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Success", body = MonitorReport), (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_report(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            service.authorize(&caller, "monitoring:DescribeReport", Resource::Endpoint(name.clone())).await?;
            Ok(ok(service.get_monitor_report(&name, &id).await?))
        }
        .await,
    )
}
