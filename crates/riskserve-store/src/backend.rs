//! The database engine behind the metadata: the one interface through which everything engine-specific goes.
//!
//! The rest of the crate sends its SQL through sqlx's `Any` driver and writes it once, in the portable subset that
//! SQLite and PostgreSQL both accept: `$N` placeholders, integers decoded as `i64` (flags stored as 0/1), no
//! engine-specific statements, functions or leniencies. What the engines do differently (connecting, the settings of
//! a fresh connection, how a write transaction starts, the schema's DDL, telling other replicas what changed) is a
//! method of [`Backend`] and lives in the engine's own module. SQLite, a file in the data directory, is the embedded
//! default; PostgreSQL, a server that several replicas share, is the second variant and module, not a fork of the
//! queries.

mod postgres;
mod sqlite;

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};

use crate::StoreError;

/// The channel on which every committed state change is announced (PostgreSQL only), with `<table>:<name>` as its
/// payload; see [`Backend::notify`].
pub(crate) const CHANGES_CHANNEL: &str = postgres::CHANGES_CHANNEL;

/// Which engine a [`Metadata`](crate::Metadata) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file in WAL mode, opened in-process (the embedded default).
    Sqlite,
    /// A PostgreSQL server, reached by URL, which several replicas may share.
    Postgres,
}

impl Backend {
    /// Opens the embedded database file at `path` (created when absent); the schema is not migrated yet.
    pub(crate) async fn open_file(path: &Path) -> Result<(Backend, AnyPool), StoreError> {
        // Every driver compiled in, once per process (sqlx guards it with a `std::sync::Once`).
        sqlx::any::install_default_drivers();
        Ok((Backend::Sqlite, sqlite::connect(path).await?))
    }

    /// Connects to the database server `url` names (`postgres://…`); the schema is not migrated yet. Fails within a
    /// few seconds, naming the server (never the password), when it cannot be reached.
    pub(crate) async fn open_url(url: &str) -> Result<(Backend, AnyPool), StoreError> {
        sqlx::any::install_default_drivers();
        if postgres::accepts(url) {
            return Ok((Backend::Postgres, postgres::connect(url).await?));
        }
        Err(StoreError::Invalid(format!(
            "the database URL {:?} is not a postgres:// URL (the embedded database is opened by its file instead)",
            postgres::redact(url)
        )))
    }

    /// Opens a write transaction: one that holds the database's single write lock from its start, so that write
    /// transactions run one at a time and a read-then-write transaction never interleaves with another writer (nor
    /// fails half-way because another writer got there first).
    pub(crate) async fn begin_write(self, pool: &AnyPool) -> Result<Transaction<'static, Any>, StoreError> {
        match self {
            Backend::Sqlite => Ok(pool.begin_with(sqlite::BEGIN_WRITE).await?),
            Backend::Postgres => postgres::begin_write(pool).await,
        }
    }

    /// The schema's history in this engine's DDL, with the table that records what was applied.
    pub(crate) fn migrator(self) -> Migrator {
        match self {
            Backend::Sqlite => Migrator::with_migrations(sqlite::migrations()),
            Backend::Postgres => postgres::migrator(),
        }
    }

    /// Announces, inside `transaction`, that the row `name` of `table` changed: on PostgreSQL a notification on
    /// [`CHANGES_CHANNEL`] that other replicas receive when (and only if) the transaction commits; nothing on SQLite,
    /// which has one process.
    pub(crate) async fn notify(
        self,
        transaction: &mut Transaction<'static, Any>,
        table: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite => Ok(()),
            Backend::Postgres => postgres::notify(transaction, table, name).await,
        }
    }

    /// The URL as messages and `Debug` show it: without its password.
    pub(crate) fn redact_url(self, url: &str) -> String {
        match self {
            Backend::Sqlite => url.to_string(),
            Backend::Postgres => postgres::redact(url),
        }
    }
}
