//! The service layer's one error type, with its stable codes and the class of fault each one is.

use riskserve_store::StoreError;

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
    /// The database or the artifact store cannot be reached right now (503; invocations keep serving from memory).
    #[error("{0}")]
    Unavailable(String),
    /// A fault on the server's side; the message is logged, never sent.
    #[error("{0}")]
    Internal(String),
    /// Missing, malformed, unknown or invalid credentials (401); `code` says which.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The caller is authenticated but no policy allows the action (403).
    #[error("{0}")]
    AccessDenied(String),
    /// A state-changing request of a console session without its CSRF token (403).
    #[error("{0}")]
    CsrfFailed(String),
}

/// Whose fault a failure is, as metrics count it (SageMaker's 4XX and 5XX errors; refusals under load apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request was wrong or not allowed (a 4xx answer).
    Client,
    /// The chosen variant had no room (a 5xx answer that asks the client to retry).
    Overloaded,
    /// The server failed (a 5xx answer).
    Server,
}

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
            ServiceError::Unavailable(_) => "store_unavailable",
            ServiceError::Internal(_) => "internal",
            ServiceError::Unauthenticated { code, .. } => code,
            ServiceError::AccessDenied(_) => "access_denied",
            ServiceError::CsrfFailed(_) => "csrf_failed",
        }
    }

    /// Whose fault the failure is; each façade's status mapping agrees with it (tested there).
    pub fn class(&self) -> ErrorClass {
        match self {
            ServiceError::Validation(_)
            | ServiceError::InvalidArtifact(_)
            | ServiceError::InvalidInput(_)
            | ServiceError::NotFound(_)
            | ServiceError::AlreadyExists(_)
            | ServiceError::InUse(_)
            | ServiceError::InvalidState(_)
            | ServiceError::PayloadTooLarge(_)
            | ServiceError::UnsupportedMediaType(_)
            | ServiceError::Unauthenticated { .. }
            | ServiceError::AccessDenied(_)
            | ServiceError::CsrfFailed(_) => ErrorClass::Client,
            ServiceError::Overloaded { .. } => ErrorClass::Overloaded,
            ServiceError::Unavailable(_) | ServiceError::Internal(_) => ErrorClass::Server,
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
        if error.is_unavailable() && !matches!(error, StoreError::Unavailable(_)) {
            return ServiceError::Unavailable(format!(
                "the metadata database is out of reach ({error}); invocations keep serving, retry the change later"
            ));
        }
        match error {
            StoreError::NotFound(message) => ServiceError::NotFound(message),
            StoreError::AlreadyExists(message) => ServiceError::AlreadyExists(message),
            StoreError::InUse(message) => ServiceError::InUse(message),
            StoreError::InvalidState(message) => ServiceError::InvalidState(message),
            StoreError::Invalid(message) => ServiceError::Validation(message),
            StoreError::Unavailable(message) => ServiceError::Unavailable(message),
            other @ (StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Artifact(_)
            | StoreError::Io(_)
            | StoreError::Corrupt(_)) => ServiceError::Internal(other.to_string()),
        }
    }
}
