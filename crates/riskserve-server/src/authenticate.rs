//! The authentication middleware: every request but the health routes must carry valid credentials (checked by
//! the service: bearer token or AWS SigV4, whose body is read here to be hashed and put back); each gets a
//! `Caller` extension, and each but the health routes becomes an audit event with its outcome.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use riskserve_service::{
    AuditEvent, AuthFailure, Caller, Credentials, PendingSignature, Principal, Service, ServiceError, SignedParts,
    redact_query, request_id,
};
use riskserve_store::now_rfc3339;

use crate::respond::{ErrorCode, error_response};

/// The number of records an invocation scored, set by the invocation path for its audit event.
#[derive(Debug, Clone, Copy)]
pub struct InvocationRecords(pub usize);

/// The routes that answer without credentials.
fn is_public(path: &str) -> bool {
    matches!(path, "/ping" | "/healthz" | "/v2/health/live" | "/v2/health/ready")
        || crate::console::is_console_path(path)
}

/// A console session's principal, for a request that carries the session cookie and no `Authorization`; a
/// state-changing request must also carry the session's CSRF token. `None` when the request has no cookie.
async fn console_principal(
    service: &Service,
    headers: &axum::http::HeaderMap,
    method: &Method,
) -> Option<Result<Principal, AuthFailure>> {
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let cookie = crate::console::session_cookie(headers)?;
    let safe = matches!(*method, Method::GET | Method::HEAD);
    let given = headers.get(crate::console::CSRF_HEADER).and_then(|value| value.to_str().ok());
    Some(match service.console_session(&cookie).await {
        Err(error) => Err(AuthFailure { error, claimed: String::new() }),
        Ok((principal, session)) => {
            if safe || session.csrf_matches(given) {
                Ok((*principal).clone())
            } else {
                Err(AuthFailure {
                    error: ServiceError::CsrfFailed(
                        "a console request that changes state needs the session's X-CSRF-Token header".to_string(),
                    ),
                    claimed: principal.name.clone(),
                })
            }
        }
    })
}

/// The invocation paths: SageMaker's (`/invocations`, `/endpoints/{name}/invocations`) and the Open Inference
/// Protocol's (`/v2/models/{name}[/versions/{version}]/infer`). Their events are batched, and they change nothing
/// that cached decisions depend on.
fn is_invocation(path: &str) -> bool {
    path.ends_with("/invocations") || (path.starts_with("/v2/models/") && path.ends_with("/infer"))
}

/// Checks the request's credentials through the service; a SigV4 request's body is read (to hash it) and put back.
async fn authenticate_request(service: &Service, request: Request) -> Result<(Principal, Request), AuthFailure> {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|value| value.as_bytes());
    let pending = match service.credentials(authorization)? {
        Credentials::Known(principal) => return Ok(((*principal).clone(), request)),
        Credentials::Signed(pending) => pending,
    };
    let declared = request.headers().get("x-amz-content-sha256").map(|value| value.to_str().unwrap_or("").to_string());
    let (parts, body) = request.into_parts();
    let (bytes, body) = if PendingSignature::signs_payload(declared.as_deref()) {
        let limit = service.config().max_body_bytes.max(service.config().max_artifact_bytes);
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| AuthFailure {
            error: ServiceError::PayloadTooLarge("the request body exceeds the server's limit".to_string()),
            claimed: pending.claimed().to_string(),
        })?;
        (Some(bytes.clone()), Body::from(bytes))
    } else {
        (None, body)
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .chain(
            // HTTP/2 and some clients carry the host in the URI rather than a header.
            parts
                .headers
                .get(header::HOST)
                .is_none()
                .then(|| parts.uri.authority().map(|a| ("host".to_string(), a.to_string())))
                .flatten(),
        )
        .collect();
    let signed = SignedParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
        declared_payload_hash: declared.as_deref(),
    };
    let principal = pending.verify(&signed, bytes.as_deref())?;
    Ok(((*principal).clone(), Request::from_parts(parts, body)))
}

/// The authentication middleware: every request but the health routes must carry valid credentials;
/// each gets a `Caller` extension, and each (but the health routes) becomes an audit event.
pub async fn authenticate(State(service): State<Service>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let path = request.uri().path().to_string();
    let disabled = service.access_control_disabled();
    if is_public(&path) || disabled {
        let principal = if disabled { Service::benchmark_principal() } else { Principal::anonymous() };
        request.extensions_mut().insert(Caller::new(request_id(), principal, source));
        return next.run(request).await;
    }
    let request_id = request_id();
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_string);
    let authenticated = match console_principal(&service, request.headers(), &method).await {
        Some(found) => found.map(|principal| (principal, request)),
        None => authenticate_request(&service, request).await,
    };
    let (principal, mut request) = match authenticated {
        Ok(found) => found,
        Err(AuthFailure { error, claimed }) => {
            let code = error.code().to_string();
            let response = error_response(error);
            service.audit(AuditEvent {
                time: now_rfc3339(),
                request_id,
                principal: if claimed.is_empty() { "unknown".to_string() } else { claimed },
                source: source.map(|address| address.to_string()),
                action: "auth:Authenticate".to_string(),
                resource: path.clone(),
                parameters: serde_json::json!({"method": method.as_str(), "path": path}),
                outcome: "unauthenticated",
                status: response.status().as_u16(),
                error_code: Some(code),
                latency_us: started.elapsed().as_micros() as u64,
                urgent: true,
            });
            return response;
        }
    };
    let principal_name = principal.name.clone();
    let caller = Caller::new(request_id.clone(), principal, source);
    let decision = caller.decision();
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    let (action, resource, allowed) =
        decision.take().unwrap_or_else(|| (format!("http:{}", method.as_str()), path.clone(), true));
    let status = response.status();
    let invocation = is_invocation(&path);
    let mut parameters = serde_json::Map::new();
    parameters.insert("method".into(), method.as_str().into());
    parameters.insert("path".into(), path.clone().into());
    if let Some(query) = &query {
        parameters.insert("query".into(), redact_query(query).into());
    }
    if let Some(variant) = response.headers().get("x-amzn-invoked-production-variant").and_then(|v| v.to_str().ok()) {
        parameters.insert("variant".into(), variant.into());
    }
    if let Some(records) = response.extensions().get::<InvocationRecords>() {
        parameters.insert("records".into(), records.0.into());
    }
    let outcome = if !allowed {
        "denied"
    } else if status.is_client_error() || status.is_server_error() {
        "failed"
    } else {
        "allowed"
    };
    if allowed && status.is_success() && !invocation && method != Method::GET && method != Method::HEAD {
        // Tags, identities or policies may have changed: decisions are made afresh. (A refused change changed
        // nothing; keeping the cache also keeps invocations answering from memory while the database is away.)
        service.invalidate_decisions();
    }
    service.audit(AuditEvent {
        time: now_rfc3339(),
        request_id,
        principal: principal_name,
        source: source.map(|address| address.to_string()),
        action,
        resource,
        parameters: serde_json::Value::Object(parameters),
        outcome,
        status: status.as_u16(),
        error_code: response.extensions().get::<ErrorCode>().map(|code| code.0.to_string()),
        latency_us: started.elapsed().as_micros() as u64,
        urgent: !invocation,
    });
    response
}
