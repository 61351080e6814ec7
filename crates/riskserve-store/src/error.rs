//! The store's one error type.

/// Why a store operation failed. `NotFound`, `AlreadyExists`, `InUse` and `InvalidState` are the
/// caller's problem and carry a message that names the resource; the others are internal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("artifact store error: {0}")]
    Artifact(#[from] object_store::Error),
    /// The caller named something the store cannot use (an `s3://` URL that is not one, a bucket of the wrong shape).
    #[error("{0}")]
    Invalid(String),
    /// The database or the object store cannot be reached; the message names which and where (never a password).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Io(String),
    /// A stored value that does not decode: a damaged database, never user input.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the failure is the database or the object store being out of reach (a lost connection, a pool that
    /// timed out), which the caller answers with 503 and may retry, rather than a fault of the request or the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(error) => matches!(
                error,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}
