//! The request-log middleware: in JSON log mode, every line logged while a request runs carries its request id
//! (the audit trail's) and principal, and one line reports the request when it ends.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use riskserve_service::{Caller, logs_requests};
use tracing::Instrument;

/// The request-log middleware (installed inside authentication, so the `Caller` is known): every
/// line logged while the request runs carries its id, and one line reports it when it ends.
pub async fn log_request(request: Request, next: Next) -> Response {
    if !logs_requests() {
        return next.run(request).await;
    }
    let started = Instant::now();
    let (request_id, principal) = match request.extensions().get::<Caller>() {
        Some(caller) => (caller.request_id.clone(), caller.principal.name.clone()),
        None => (String::new(), String::new()),
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, principal = %principal);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            status,
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        );
    });
    response
}
