//! The PostgreSQL backend: the only place with PostgreSQL-specific text (connecting, the global write lock, the
//! change notifications, the migrations' table).
//!
//! Several replicas may share one database, so two things the embedded engine gives by construction are made
//! explicit here. Writers run one at a time: every write transaction takes one transaction-level advisory lock
//! before its first read ([`begin_write`]). And every state change announces itself to the other replicas with a
//! notification sent in its own transaction ([`notify`]), which PostgreSQL delivers at commit and drops on rollback.
//! Text compares byte for byte: the derived DDL gives every text column the "C" collation, so paging by name and
//! time filters on RFC 3339 text order rows exactly as the embedded engine does, whatever the database's locale.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, SqlSafeStr, Transaction};

use crate::StoreError;

/// The channel of the change notifications; the payload is `<table>:<name>`.
pub(crate) const CHANGES_CHANNEL: &str = "riskserve_changes";

/// The key of the advisory lock every write transaction holds: one fixed 64-bit number ("riskwrit" in ASCII) that
/// nothing else in the database locks (sqlx's migrator derives its own key from the database name; the replicas'
/// leader lock has another).
const WRITE_LOCK_KEY: i64 = 0x7269_736b_7772_6974;

/// READ COMMITTED, whatever the server's default: each statement sees everything committed before it started, so the
/// reads that follow the lock see every write that finished before this transaction got the lock. (Under REPEATABLE
/// READ or SERIALIZABLE the snapshot would be taken by the lock statement itself, before it waited, and the reads
/// after it could miss the writer it waited for.)
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Waits until no other write transaction holds the lock, then holds it until this one commits or rolls back
/// (PostgreSQL releases a transaction-level advisory lock by itself, also when the connection dies).
const TAKE_WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";

const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// A notification's payload must stay under 8000 bytes; a longer one names only the table.
const MAX_PAYLOAD: usize = 7999;

/// Run on every new connection: a lock wait (the write lock, a row lock) gives up after 10 s with an error instead of
/// waiting forever behind a stuck writer, as the embedded engine's busy timeout does.
const CONNECTION_SETTINGS: &str = "SET lock_timeout = '10s'";

/// How long opening waits for the server before it reports it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_CONNECTIONS: u32 = 8;

/// The table in which sqlx's migrator records the applied migrations: riskserve's own, so that a database (or schema)
/// that another sqlx application migrates too keeps the two histories apart.
const MIGRATIONS_TABLE: &str = "riskserve_migrations";

/// Whether `url` names a PostgreSQL server.
pub(super) fn accepts(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Connects to `url`: first one probe connection within [`CONNECT_TIMEOUT`] (so that an unreachable server is
/// reported in seconds, naming the server but never the password), then the pool, every connection with
/// [`CONNECTION_SETTINGS`].
pub(super) async fn connect(url: &str) -> Result<AnyPool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|error| {
        StoreError::Invalid(format!("the database URL {:?} is not a valid PostgreSQL URL: {error}", redact(url)))
    })?;
    let probe = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|error| unreachable(&options, error))?;
    probe.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        // A lost server fails a call within seconds (503 store_unavailable), not after sqlx's default 30 s.
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection.execute(CONNECTION_SETTINGS).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|error| unreachable(&options, error))?;
    Ok(pool)
}

/// Where the server is, as messages name it: `host:port` (or the socket folder), database and user.
fn place(options: &PgConnectOptions) -> String {
    let server = match options.get_socket() {
        Some(socket) => format!("the socket in {}", socket.display()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    let database = options.get_database().unwrap_or(options.get_username());
    format!("{server} (database {database:?}, user {:?})", options.get_username())
}

/// The error of a failed connection, naming the server. sqlx's messages carry no password.
fn unreachable(options: &PgConnectOptions, error: sqlx::Error) -> StoreError {
    let seconds = CONNECT_TIMEOUT.as_secs();
    match error {
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "PostgreSQL at {} is unreachable: no connection within {seconds} s (is the server running and listening \
             there?)",
            place(options)
        )),
        sqlx::Error::Io(error) => {
            StoreError::Unavailable(format!("PostgreSQL at {} is unreachable: {error}", place(options)))
        }
        sqlx::Error::Database(error) => {
            StoreError::Unavailable(format!("PostgreSQL at {} refused the connection: {error}", place(options)))
        }
        other => StoreError::Unavailable(format!("cannot connect to PostgreSQL at {}: {other}", place(options))),
    }
}

/// `url` without its password, whether in the user part (`user:password@`) or in a `password=` parameter.
pub(super) fn redact(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) =
                rest.split_once('/').map_or((rest, None), |(authority, path)| (authority, Some(path)));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{user}:<redacted>@{host}"),
                    None => format!("{user_info}@{host}"),
                },
                None => authority.to_string(),
            };
            match path {
                Some(path) => format!("{scheme}://{authority}/{path}"),
                None => format!("{scheme}://{authority}"),
            }
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=<redacted>"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// `BEGIN` (READ COMMITTED), then the write lock as the transaction's first statement. Holding one lock across all
/// writers is what the embedded engine's single writer gives: a transaction that reads and then writes what it read
/// (the audit chain's head, an endpoint's generation, a name that must be free) never interleaves with another
/// one, on this replica or any other. A failed lock wait (the lock timeout) rolls the transaction back when it drops.
pub(super) async fn begin_write(pool: &AnyPool) -> Result<Transaction<'static, Any>, StoreError> {
    let mut transaction = pool.begin_with(BEGIN_WRITE).await?;
    sqlx::query(TAKE_WRITE_LOCK).bind(WRITE_LOCK_KEY).execute(&mut *transaction).await?;
    Ok(transaction)
}

/// Sends `<table>:<name>` on [`CHANGES_CHANNEL`] inside `transaction`: delivered to every listener when it commits,
/// never when it rolls back; notifications of one transaction arrive in order, and those of several in commit order.
pub(super) async fn notify(
    transaction: &mut Transaction<'static, Any>,
    table: &str,
    name: &str,
) -> Result<(), StoreError> {
    let mut payload = format!("{table}:{name}");
    if payload.len() > MAX_PAYLOAD {
        // Too long for a notification: the listener reloads the whole table.
        payload = format!("{table}:");
    }
    sqlx::query(NOTIFY).bind(CHANGES_CHANNEL).bind(payload).execute(&mut **transaction).await?;
    Ok(())
}

/// The migrations, their DDL derived from the embedded engine's files (the one source of truth of the schema), applied
/// by sqlx's migrator, recorded in [`MIGRATIONS_TABLE`]. sqlx's PostgreSQL migrator holds a session advisory lock
/// (keyed by the database name) while it checks and applies them, so replicas that start at once apply each
/// migration once: the others wait, then find it applied. Each migration runs in its own transaction.
pub(super) fn migrator() -> Migrator {
    let migrations = super::sqlite::postgres_migrations()
        .into_iter()
        .map(|(version, description, sql)| {
            Migration::new(version, description.into(), MigrationType::Simple, AssertSqlSafe(sql).into_sql_str(), false)
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

#[cfg(test)]
mod tests {
    use super::{MIGRATIONS_TABLE, migrator, redact};

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/riskserve"), "postgres://app:<redacted>@db:5432/riskserve");
        assert_eq!(redact("postgres://app@db/riskserve"), "postgres://app@db/riskserve");
        assert_eq!(redact("postgresql://db:5432"), "postgresql://db:5432");
        assert_eq!(redact("postgres://a:b:c@d/e"), "postgres://a:<redacted>@d/e");
        let both = redact("postgres://u:p%40ss@h/d?sslmode=disable&password=hunter2&options=-c%20x%3Dy");
        assert_eq!(both, "postgres://u:<redacted>@h/d?sslmode=disable&password=<redacted>&options=-c%20x%3Dy");
        assert!(!both.contains("hunter2") && !both.contains("p%40ss"), "{both}");
    }

    #[test]
    fn the_migrator_applies_the_derived_ddl_under_its_own_table_and_lock() {
        let migrator = migrator();
        assert_eq!(migrator.table_name, MIGRATIONS_TABLE);
        assert!(migrator.locking, "replicas starting at once must apply each migration once");
        let versions: Vec<i64> = migrator.iter().map(|migration| migration.version).collect();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        for migration in migrator.iter() {
            assert!(migration.sql.as_str().contains("COLLATE \"C\""), "{}", migration.sql.as_str());
            assert!(!migration.no_tx);
        }
    }
}
