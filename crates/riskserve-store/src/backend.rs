//! The database engine behind the metadata: the one interface through which everything engine-specific goes.
//!
//! The rest of the crate sends its SQL through sqlx's `Any` driver and writes it once, in the portable subset that
//! SQLite and PostgreSQL both accept: `$N` placeholders, integers decoded as `i64` (flags stored as 0/1), no
//! engine-specific statements, functions or leniencies. What the engines do differently (connecting, the settings of
//! a fresh connection, how a write transaction starts, the schema's DDL) is a method of [`Backend`] and lives in the
//! engine's own module. SQLite, a file in the data directory, is the embedded default and for now the only engine;
//! a PostgreSQL backend is a second variant and module, not a fork of the queries.

mod sqlite;

use std::path::Path;

use sqlx::AnyPool;
use sqlx::migrate::Migrator;

use crate::StoreError;

/// Which engine a [`Metadata`](crate::Metadata) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file in WAL mode, opened in-process (the embedded default).
    Sqlite,
}

impl Backend {
    /// Opens the embedded database file at `path` (created when absent); the schema is not migrated yet.
    pub(crate) async fn open_file(path: &Path) -> Result<(Backend, AnyPool), StoreError> {
        // Every driver compiled in, once per process (sqlx guards it with a `std::sync::Once`).
        sqlx::any::install_default_drivers();
        Ok((Backend::Sqlite, sqlite::connect(path).await?))
    }

    /// The statement that opens a write transaction: one that takes the write lock before it reads, so that a
    /// read-then-write transaction never fails half-way because another writer got there first.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => sqlite::BEGIN_WRITE,
        }
    }

    /// The schema's history in this engine's DDL.
    pub(crate) fn migrator(self) -> Migrator {
        match self {
            Backend::Sqlite => Migrator::with_migrations(sqlite::migrations()),
        }
    }
}
