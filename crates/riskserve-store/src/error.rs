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
    #[error("{0}")]
    Io(String),
    /// A stored value that does not decode: a damaged database, never user input.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}
