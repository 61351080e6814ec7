//! What every façade shares on the HTTP side: the HTTP status of each service error (in one exhaustive match),
//! the native JSON error body, reading request bodies and JSON, and wrapping a use case's result as an answer.

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use riskserve_service::{BodyFormat, ServiceError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The stable code of an error answer, kept on the response for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The HTTP status of the native REST API (and of the SageMaker runtime path for clients that are not SageMaker's).
pub fn status_of(error: &ServiceError) -> StatusCode {
    match error {
        ServiceError::Validation(_) | ServiceError::InvalidArtifact(_) | ServiceError::InvalidInput(_) => {
            StatusCode::BAD_REQUEST
        }
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::AlreadyExists(_) | ServiceError::InUse(_) | ServiceError::InvalidState(_) => StatusCode::CONFLICT,
        ServiceError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ServiceError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ServiceError::Overloaded { .. } | ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ServiceError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        ServiceError::AccessDenied(_) | ServiceError::CsrfFailed(_) => StatusCode::FORBIDDEN,
    }
}

/// The JSON error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code: validation_error, invalid_artifact, invalid_input, not_found, already_exists, in_use,
    /// invalid_state, payload_too_large, unsupported_media_type, overloaded, store_unavailable, internal.
    pub code: String,
    pub message: String,
}

/// The native answer of an error: its status, the JSON body, `Retry-After` when overloaded; internal details go
/// to the log only.
pub fn error_response(error: ServiceError) -> Response {
    if let ServiceError::Internal(message) = &error {
        eprintln!("riskserve: internal error: {message}");
    }
    let body = ErrorBody { error: ErrorDetail { code: error.code().to_string(), message: error.public_message() } };
    let mut response = (status_of(&error), axum::Json(body)).into_response();
    response.extensions_mut().insert(ErrorCode(error.code()));
    match &error {
        ServiceError::Overloaded { retry_after_seconds, .. } => {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        ServiceError::Unavailable(_) => {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
        }
        _ => {}
    }
    response
}

/// The request body, or the error that says why it could not be read (413 past the limit).
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ServiceError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServiceError::PayloadTooLarge("the request body exceeds the server's limit".to_string())
        } else {
            ServiceError::validation(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok())
}

/// A JSON request body: `application/json`, parsed with errors naming the line and column.
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ServiceError> {
    let body = body_bytes(body)?;
    match BodyFormat::from_content_type(content_type(headers)) {
        Ok(BodyFormat::Json) => {}
        Ok(BodyFormat::Csv) | Err(_) => {
            return Err(ServiceError::UnsupportedMediaType(format!(
                "Content-Type {:?} is not supported here; send application/json",
                content_type(headers).unwrap_or("")
            )));
        }
    }
    serde_json::from_slice(&body)
        .map_err(|error| ServiceError::validation(format!("the JSON body is malformed: {error}")))
}

pub fn created<T: Serialize>(value: T) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

pub fn ok<T: Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

/// A handler's answer, or its error's.
pub fn respond(result: Result<Response, ServiceError>) -> Response {
    result.unwrap_or_else(error_response)
}

/// A handler's result as an answer: the value as JSON with `status`, or the error's answer.
pub fn answer<T: Serialize>(status: StatusCode, result: Result<T, ServiceError>) -> Response {
    match result {
        Ok(value) => (status, axum::Json(value)).into_response(),
        Err(error) => error_response(error),
    }
}

/// A handler's result with no body: 204, or the error's answer.
pub fn no_content(result: Result<(), ServiceError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(error),
    }
}

/// A query string as `T`, or a validation error naming what is wrong with it.
pub fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ServiceError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ServiceError::validation(format!("bad query: {}", rejection.body_text())))
}

#[cfg(test)]
mod tests {
    use riskserve_service::ErrorClass;

    use super::*;

    /// Every error's HTTP status agrees with the class the service's metrics count it as.
    #[test]
    fn statuses_agree_with_error_classes() {
        let errors = [
            ServiceError::Validation(String::new()),
            ServiceError::InvalidArtifact(String::new()),
            ServiceError::InvalidInput(String::new()),
            ServiceError::NotFound(String::new()),
            ServiceError::AlreadyExists(String::new()),
            ServiceError::InUse(String::new()),
            ServiceError::InvalidState(String::new()),
            ServiceError::PayloadTooLarge(String::new()),
            ServiceError::UnsupportedMediaType(String::new()),
            ServiceError::Overloaded { message: String::new(), retry_after_seconds: 1 },
            ServiceError::Internal(String::new()),
            ServiceError::Unavailable(String::new()),
            ServiceError::Unauthenticated { code: "unauthenticated", message: String::new() },
            ServiceError::AccessDenied(String::new()),
            ServiceError::CsrfFailed(String::new()),
        ];
        for error in errors {
            let status = status_of(&error);
            match error.class() {
                ErrorClass::Client => assert!(status.is_client_error(), "{error:?} → {status}"),
                ErrorClass::Overloaded => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error:?}"),
                ErrorClass::Server => assert!(status.is_server_error(), "{error:?} → {status}"),
            }
        }
    }
}
