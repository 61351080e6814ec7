//! The service layer's one error type, its stable codes, and their HTTP statuses (in one place).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use riskserve_store::StoreError;
use serde::Serialize;

/// Why a request failed. Every variant has a stable code that clients may match on; messages
/// name what is wrong and where, without a trailing period.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidArtifact(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Every queue of the chosen variant is full; retry after `retry_after_seconds`.
    #[error("{message}")]
    Overloaded { message: String, retry_after_seconds: u32 },
    /// A fault on the server's side; the message is logged, never sent.
    #[error("{0}")]
    Internal(String),
    /// Missing, malformed, unknown or invalid credentials (401); `code` says which.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The caller is authenticated but no policy allows the action (403).
    #[error("{0}")]
    AccessDenied(String),
}

/// The stable code of an error answer, kept on the response for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl ServiceError {
    pub fn validation(message: impl Into<String>) -> ServiceError {
        ServiceError::Validation(message.into())
    }

    pub fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError::Internal(message.into())
    }

    /// The stable code of the error, as the REST API writes it.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Validation(_) => "validation_error",
            ServiceError::InvalidArtifact(_) => "invalid_artifact",
            ServiceError::InvalidInput(_) => "invalid_input",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::AlreadyExists(_) => "already_exists",
            ServiceError::InUse(_) => "in_use",
            ServiceError::InvalidState(_) => "invalid_state",
            ServiceError::PayloadTooLarge(_) => "payload_too_large",
            ServiceError::UnsupportedMediaType(_) => "unsupported_media_type",
            ServiceError::Overloaded { .. } => "overloaded",
            ServiceError::Internal(_) => "internal",
            ServiceError::Unauthenticated { code, .. } => code,
            ServiceError::AccessDenied(_) => "access_denied",
        }
    }

    /// The HTTP status of the native REST API (and of the SageMaker runtime path, until its own
    /// error shapes arrive).
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::Validation(_) | ServiceError::InvalidArtifact(_) | ServiceError::InvalidInput(_) => {
                StatusCode::BAD_REQUEST
            }
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::AlreadyExists(_) | ServiceError::InUse(_) | ServiceError::InvalidState(_) => {
                StatusCode::CONFLICT
            }
            ServiceError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServiceError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ServiceError::AccessDenied(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The message a client may see: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            ServiceError::Internal(_) => "internal error; the server log has the details".to_string(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            StoreError::NotFound(message) => ServiceError::NotFound(message),
            StoreError::AlreadyExists(message) => ServiceError::AlreadyExists(message),
            StoreError::InUse(message) => ServiceError::InUse(message),
            StoreError::InvalidState(message) => ServiceError::InvalidState(message),
            other @ (StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Artifact(_)
            | StoreError::Io(_)
            | StoreError::Corrupt(_)) => ServiceError::Internal(other.to_string()),
        }
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
    /// invalid_state, payload_too_large, unsupported_media_type, overloaded, internal.
    pub code: String,
    pub message: String,
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        if let ServiceError::Internal(message) = &self {
            eprintln!("riskserve: internal error: {message}");
        }
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_string(), message: self.public_message() } };
        let mut response = (self.status(), axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code()));
        if let ServiceError::Overloaded { retry_after_seconds, .. } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        response
    }
}
