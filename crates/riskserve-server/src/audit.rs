//! The audit-trail routes (`/api/v1/audit-events`, `/api/v1/audit/verify`, `/api/v1/audit/public-key`).

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use riskserve_service::{AuditQuery, Caller, Resource, Service, ServiceError};

use crate::respond::answer;

/// The audit routes, merged into the native API's router.
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/api/v1/audit-events", get(query_events))
        .route("/api/v1/audit/verify", get(verify_events))
        .route("/api/v1/audit/public-key", get(public_key))
}

async fn query_events(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    answer(
        StatusCode::OK,
        async {
            service.authorize(&caller, "audit:Query", Resource::AuditTrail).await?;
            let Query(query) =
                query.map_err(|rejection| ServiceError::validation(format!("bad query: {}", rejection.body_text())))?;
            service.query_audit(query).await
        }
        .await,
    )
}

async fn verify_events(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    answer(
        StatusCode::OK,
        async {
            service.authorize(&caller, "audit:Verify", Resource::AuditTrail).await?;
            service.verify_audit().await
        }
        .await,
    )
}

async fn public_key(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    answer(
        StatusCode::OK,
        async {
            service.authorize(&caller, "audit:GetPublicKey", Resource::AuditTrail).await?;
            Ok(serde_json::json!({"algorithm": "Ed25519", "public_key": service.audit_public_key()}))
        }
        .await,
    )
}
