//! The web console at `/console`: its three files (embedded in the binary, served with a strict Content-Security-
//! Policy) and its session routes (sign-in with a token or an access key, the session, sign-out). Pages call the
//! REST API with the session cookie; the authentication middleware turns the cookie into the user's principal and
//! refuses a state-changing request without the session's CSRF token.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use riskserve_service::{AuditEvent, Caller, ConsoleSignIn, Service, ServiceError};
use riskserve_store::now_rfc3339;

use crate::respond::{error_response, json_body, ok};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "riskserve_session";
/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's routes; the authentication middleware lets `/console` and everything under it through (these
/// handlers check the session themselves).
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/app.js", get(script))
        .route("/console/assets/app.css", get(style))
        .route("/console/api/session", post(sign_in).get(current_session))
        .route("/console/api/sign-out", post(sign_out))
}

/// The console's own paths, which need no credentials of the API's kinds.
pub fn is_console_path(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The session cookie's value in a request, when it carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('=').map(str::to_string))
        .filter(|value| !value.is_empty())
}

fn file(content_type: &'static str, body: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX_HTML, "no-store")
}

async fn script() -> Response {
    file("text/javascript; charset=utf-8", APP_JS, "no-cache")
}

async fn style() -> Response {
    file("text/css; charset=utf-8", APP_CSS, "no-cache")
}

/// Whether the request reached us over TLS (through a proxy that says so): the cookie is then `Secure`.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn cookie_header(value: &str, max_age_seconds: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("riskserve_session=; Max-Age=0"))
}

#[allow(clippy::too_many_arguments)]
fn audit(
    service: &Service,
    caller: &Caller,
    principal: &str,
    action: &str,
    outcome: &'static str,
    status: StatusCode,
    error: Option<&ServiceError>,
    started: Instant,
) {
    service.audit(AuditEvent {
        time: now_rfc3339(),
        request_id: caller.request_id.clone(),
        principal: principal.to_string(),
        source: caller.source.map(|address| address.to_string()),
        action: action.to_string(),
        resource: "Console".to_string(),
        parameters: serde_json::json!({}),
        outcome,
        status: status.as_u16(),
        error_code: error.map(|error| error.code().to_string()),
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        urgent: true,
    });
}

/// Signs in with `{"token"}` or `{"access_key_id", "secret_access_key"}`: sets the session cookie and answers the
/// session (principal, roles, CSRF token, expiry). Audited as `console:SignIn`, naming the user (or the access key
/// id claimed); secrets never.
async fn sign_in(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let request: ConsoleSignIn = match json_body(&headers, body) {
        Ok(request) => request,
        Err(error) => return error_response(error),
    };
    let claimed = request.access_key_id.clone().unwrap_or_else(|| "unknown".to_string());
    match service.console_sign_in(request).await {
        Ok((cookie, session)) => {
            audit(&service, &caller, &session.principal, "console:SignIn", "allowed", StatusCode::OK, None, started);
            let max_age = 8 * 3600;
            let mut response = ok(session);
            response.headers_mut().insert(header::SET_COOKIE, cookie_header(&cookie, max_age, over_tls(&headers)));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            let response = error_response(error);
            let outcome = if response.status() == StatusCode::UNAUTHORIZED { "unauthenticated" } else { "failed" };
            audit(&service, &caller, &claimed, "console:SignIn", outcome, response.status(), None, started);
            response
        }
    }
}

/// The session of the request's cookie (401 without one).
async fn current_session(State(service): State<Service>, headers: HeaderMap) -> Response {
    let Some(cookie) = session_cookie(&headers) else {
        return error_response(ServiceError::Unauthenticated {
            code: "unauthenticated",
            message: "no console session: sign in".to_string(),
        });
    };
    match service.console_session(&cookie).await {
        Ok((_, session)) => {
            let mut response = ok(session);
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error_response(error),
    }
}

/// Ends the session (its CSRF token required) and clears the cookie.
async fn sign_out(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let Some(cookie) = session_cookie(&headers) else {
        return error_response(ServiceError::Unauthenticated {
            code: "unauthenticated",
            message: "no console session to end".to_string(),
        });
    };
    let (principal, session) = match service.console_session(&cookie).await {
        Ok(found) => found,
        Err(error) => return error_response(error),
    };
    let csrf = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
    if !session.csrf_matches(csrf) {
        let error = ServiceError::CsrfFailed("sign-out needs the session's X-CSRF-Token".to_string());
        audit(
            &service,
            &caller,
            &principal.name,
            "console:SignOut",
            "denied",
            StatusCode::FORBIDDEN,
            Some(&error),
            started,
        );
        return error_response(error);
    }
    if let Err(error) = service.console_sign_out(&cookie).await {
        return error_response(error);
    }
    audit(&service, &caller, &principal.name, "console:SignOut", "allowed", StatusCode::NO_CONTENT, None, started);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie_header("", 0, over_tls(&headers)));
    response
}
