//! The SQLite backend: the only place with SQLite-specific text (connection URL and settings, the write transaction,
//! the migrations' DDL, and its rewrite into PostgreSQL's, the one place outside the PostgreSQL backend allowed the
//! PostgreSQL type words that rewrite produces).

use std::fmt::Write as _;
use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType};
use sqlx::{AnyPool, Executor, SqlSafeStr};

use crate::StoreError;

/// The schema's history; a new migration is appended, never edited (sqlx keeps each one's checksum, and a data
/// directory whose applied migrations no longer match refuses to open).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../migrations/0001_initial.sql")),
    (2, "identities", include_str!("../../migrations/0002_iam.sql")),
    (3, "audit trail", include_str!("../../migrations/0003_audit.sql")),
    (4, "operations", include_str!("../../migrations/0004_operations.sql")),
    (5, "facade documents", include_str!("../../migrations/0005_facade_documents.sql")),
    (6, "replicas", include_str!("../../migrations/0006_replicas.sql")),
    (7, "data capture", include_str!("../../migrations/0007_data_capture.sql")),
    (8, "monitoring", include_str!("../../migrations/0008_monitoring.sql")),
    (9, "console sessions", include_str!("../../migrations/0009_console_sessions.sql")),
];

/// IMMEDIATE takes the write lock at the start, so a read-then-write transaction never fails half-way because
/// another writer got there first.
pub(super) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Run on every new connection. The busy timeout comes first so that switching to WAL waits for other connections
/// too. WAL lets readers run beside the writer; FULL: a transaction that returned is on disk, even if the machine
/// loses power; foreign keys are off in SQLite unless asked for, per connection.
const CONNECTION_SETTINGS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                                   PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";

const MAX_CONNECTIONS: u32 = 4;

/// Opens (creating when absent) the database file at `path`, every connection with [`CONNECTION_SETTINGS`].
pub(super) async fn connect(path: &Path) -> Result<AnyPool, StoreError> {
    let url = database_url(path)?;
    let pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection.execute(CONNECTION_SETTINGS).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

/// The `sqlite://` URL the `Any` driver opens `path` from (read-write, created when missing).
///
/// The folder is made absolute and canonical first (it exists: the caller created it), so that the URL parser has
/// no `.` or `..` segment to fold and no relative path to mistake for a host. Every byte but unreserved ones and `/`
/// is percent-encoded, `%` included (sqlx's own `to_url_lossy` leaves `%` as it is, and decoding then turns a
/// literal `%41` in a folder name into `A`); SQLite's URL parsing decodes it back byte for byte.
fn database_url(path: &Path) -> Result<String, StoreError> {
    let absolute = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            // A folder that does not exist is left to SQLite, which reports it as it always did.
            std::fs::canonicalize(parent).map(|parent| parent.join(name)).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    };
    let text = absolute.to_str().ok_or_else(|| {
        StoreError::Io(format!("the database path {} is not valid UTF-8, which a database URL needs", path.display()))
    })?;
    let mut url = String::with_capacity(text.len() + 24);
    url.push_str("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// The migrations as sqlx runs them, their SQL byte for byte as in the files.
pub(super) fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(*version, (*description).into(), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect()
}

/// The migrations with their DDL rewritten for PostgreSQL, so that the SQLite files stay the one source of truth
/// of the schema: ` STRICT` dropped, `INTEGER PRIMARY KEY AUTOINCREMENT` → `BIGSERIAL PRIMARY KEY`, `INTEGER` →
/// `BIGINT` (the `Any` driver decodes both as `i64`), `REAL` → `DOUBLE PRECISION`, `BLOB` → `BYTEA`, and `TEXT` →
/// `TEXT COLLATE "C"`: text compares byte for byte as SQLite's BINARY collation does, so that paging by name
/// (`name > $1 ORDER BY name`) and RFC 3339 time filters order rows alike on both engines, whatever the PostgreSQL
/// database's locale. Only whole upper-case words outside `--` comments change; comments, names (a column called
/// `text`), constraints and defaults stay as they are.
///
/// The PostgreSQL backend records each result's checksum when it applies it: this rewrite is part of the schema's
/// history there and must not change for an existing migration.
pub(super) fn postgres_migrations() -> Vec<(i64, &'static str, String)> {
    MIGRATIONS.iter().map(|(version, description, sql)| (*version, *description, postgres_ddl(sql))).collect()
}

/// One migration's DDL rewritten for PostgreSQL (see [`postgres_migrations`]).
fn postgres_ddl(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 8);
    for line in sql.split_inclusive('\n') {
        let (code, comment) = line.split_at(line.find("--").unwrap_or(line.len()));
        let code = code.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY");
        let mut word = String::new();
        for character in code.chars() {
            if character.is_ascii_alphanumeric() || character == '_' {
                word.push(character);
            } else {
                push_postgres_word(&mut out, &mut word);
                out.push(character);
            }
        }
        push_postgres_word(&mut out, &mut word);
        out.push_str(comment);
    }
    out
}

fn push_postgres_word(out: &mut String, word: &mut String) {
    match word.as_str() {
        "INTEGER" => out.push_str("BIGINT"),
        "REAL" => out.push_str("DOUBLE PRECISION"),
        "BLOB" => out.push_str("BYTEA"),
        "TEXT" => out.push_str("TEXT COLLATE \"C\""),
        // `) STRICT;` becomes `);`.
        "STRICT" => {
            if out.ends_with(' ') {
                out.pop();
            }
        }
        other => out.push_str(other),
    }
    word.clear();
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::str::FromStr;

    use sqlx::any::AnyConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};

    use super::{CONNECTION_SETTINGS, MIGRATIONS, connect, database_url, postgres_ddl, postgres_migrations};

    /// A scratch folder removed when the test ends.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!("riskserve-backend-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("scratch folder");
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
    }

    const AWKWARD_NAMES: &[&str] = &["with space", "hash#and?query", "percent%41and%", "é ü", "a&b=c+d;e", "x:y@z"];

    #[test]
    fn the_url_names_exactly_the_file() {
        let scratch = Scratch::new("url");
        for name in AWKWARD_NAMES {
            let folder = scratch.0.join(name);
            std::fs::create_dir_all(&folder).expect("folder");
            let file = folder.join("riskserve.db");
            let url = database_url(&file).expect("url");
            // The way the `Any` driver reads it: a URL first, then SQLite's options from that URL.
            let any = AnyConnectOptions::from_str(&url).expect("a valid URL");
            let options = SqliteConnectOptions::from_url(&any.database_url).expect("options");
            let expected = std::fs::canonicalize(&folder).expect("canonical").join("riskserve.db");
            assert_eq!(options.get_filename(), expected, "{url}");
        }
        // A `..` after a folder whose name holds `?`: the file is the one the filesystem means.
        let winding = scratch.0.join("hash#and?query").join("..").join("with space").join("riskserve.db");
        let any = AnyConnectOptions::from_str(&database_url(&winding).expect("url")).expect("a valid URL");
        let options = SqliteConnectOptions::from_url(&any.database_url).expect("options");
        let expected = std::fs::canonicalize(scratch.0.join("with space")).expect("canonical").join("riskserve.db");
        assert_eq!(options.get_filename(), expected);
    }

    #[test]
    fn a_data_directory_with_awkward_characters_opens_and_reopens() {
        let scratch = Scratch::new("open");
        runtime().block_on(async {
            for name in AWKWARD_NAMES {
                let data_dir = scratch.0.join(name);
                let store = crate::Store::open(&data_dir).await.expect("open");
                assert!(!store.metadata.has_users().await.expect("query"));
                store.metadata.close().await;
                assert!(data_dir.join("riskserve.db").is_file(), "{}", data_dir.display());
                let store = crate::Store::open(&data_dir).await.expect("reopen");
                store.metadata.close().await;
                // Nothing was created beside the data directory under a mangled name.
                let entries = std::fs::read_dir(&data_dir).expect("list").count();
                assert!(entries >= 2, "{entries}");
            }
            let created: Vec<String> = std::fs::read_dir(&scratch.0)
                .expect("list")
                .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(created.len(), AWKWARD_NAMES.len(), "{created:?}");
        });
    }

    #[test]
    fn every_connection_gets_the_settings() {
        let scratch = Scratch::new("settings");
        // What `Backend::open_file` does before it connects.
        sqlx::any::install_default_drivers();
        runtime().block_on(async {
            let pool = connect(&scratch.0.join("riskserve.db")).await.expect("connect");
            // Hold several connections at once so that more than the first one is checked.
            let mut held = Vec::new();
            for _ in 0..3 {
                let mut connection = pool.acquire().await.expect("acquire");
                for (pragma, expected) in
                    [("journal_mode", "wal"), ("synchronous", "2"), ("foreign_keys", "1"), ("busy_timeout", "10000")]
                {
                    let sql = format!("PRAGMA {pragma}");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *connection).await.expect("pragma");
                    let value = match row.try_get::<String, _>(0) {
                        Ok(text) => text,
                        Err(_) => row.try_get::<i64, _>(0).expect("an integer").to_string(),
                    };
                    assert_eq!(value, expected, "{pragma}");
                }
                held.push(connection);
            }
            drop(held);
            pool.close().await;
        });
        assert!(CONNECTION_SETTINGS.starts_with("PRAGMA busy_timeout"));
    }

    fn words(text: &str) -> Vec<&str> {
        text.split(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
            .filter(|word| !word.is_empty())
            .collect()
    }

    fn count(text: &str, word: &str) -> usize {
        words(text).iter().filter(|candidate| **candidate == word).count()
    }

    /// The part of a migration that is not `--` comments.
    fn code(sql: &str) -> String {
        sql.lines().map(|line| &line[..line.find("--").unwrap_or(line.len())]).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_postgres_ddl_of_every_migration_keeps_the_schema_without_sqlite_types() {
        let rewritten = postgres_migrations();
        assert_eq!(rewritten.len(), MIGRATIONS.len());
        let mut all = String::new();
        for ((version, description, sqlite), (pg_version, pg_description, postgres)) in
            MIGRATIONS.iter().zip(&rewritten)
        {
            assert_eq!((version, description), (pg_version, pg_description));
            let (before, after) = (code(sqlite), code(postgres));
            for gone in ["STRICT", "AUTOINCREMENT", "INTEGER", "REAL", "BLOB", "WITHOUT", "ROWID"] {
                assert_eq!(count(&after, gone), 0, "{gone} left in migration {version}:\n{postgres}");
            }
            let autoincrement = count(&before, "AUTOINCREMENT");
            assert_eq!(count(&after, "BIGSERIAL"), autoincrement, "migration {version}");
            assert_eq!(count(&after, "BIGINT"), count(&before, "INTEGER") - autoincrement, "migration {version}");
            assert_eq!(count(&after, "DOUBLE"), count(&before, "REAL"), "migration {version}");
            assert_eq!(count(&after, "PRECISION"), count(&before, "REAL"), "migration {version}");
            assert_eq!(count(&after, "BYTEA"), count(&before, "BLOB"), "migration {version}");
            // Every text column compares byte for byte; nothing else gets a collation.
            assert_eq!(count(&after, "TEXT"), count(&before, "TEXT"), "migration {version}");
            assert_eq!(after.matches("TEXT COLLATE \"C\"").count(), count(&before, "TEXT"), "migration {version}");
            assert_eq!(count(&after, "COLLATE"), count(&before, "TEXT"), "migration {version}");
            assert_eq!(count(&before, "COLLATE"), 0, "migration {version}");
            // Each table loses its STRICT and nothing else: the statement ends right after the column list.
            assert_eq!(count(&before, "STRICT"), sqlite.matches("CREATE TABLE").count(), "migration {version}");
            assert_eq!(postgres.matches("CREATE TABLE").count(), postgres.matches("\n);").count(), "{postgres}");
            // Every word other than the rewritten types is kept, in order, comments included.
            let keep = |word: &&str| !["STRICT", "AUTOINCREMENT", "INTEGER", "REAL", "BLOB"].contains(word);
            let kept: Vec<&str> = words(sqlite).into_iter().filter(keep).collect();
            let new = ["BIGSERIAL", "BIGINT", "DOUBLE", "PRECISION", "BYTEA", "COLLATE", "C"];
            let left: Vec<&str> = words(postgres).into_iter().filter(|word| !new.contains(word)).collect();
            assert_eq!(kept, left, "migration {version}");
            assert_eq!(sqlite.lines().count(), postgres.lines().count(), "migration {version}");
            all.push_str(postgres);
        }
        for expected in [
            "    seq BIGINT PRIMARY KEY NOT NULL,\n",
            "    id BIGINT PRIMARY KEY NOT NULL,\n",
            "    id BIGSERIAL PRIMARY KEY,\n",
            "    disabled BIGINT NOT NULL DEFAULT 0,\n",
            "    active BIGINT NOT NULL DEFAULT 1,\n",
            "    weight DOUBLE PRECISION NOT NULL,\n",
            "    latency_us BIGINT NOT NULL,\n",
            "    PRIMARY KEY (minute, endpoint, variant, principal)\n);",
            "    sealed_secret TEXT COLLATE \"C\" NOT NULL,  -- hex of nonce || ChaCha20-Poly1305 ciphertext \
             under the master key\n",
            "    name TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,\n",
            "    text TEXT COLLATE \"C\" NOT NULL,\n",
            "    config TEXT COLLATE \"C\" NOT NULL REFERENCES endpoint_configs(name),\n",
            "    time TEXT COLLATE \"C\" NOT NULL,\n",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
    }

    #[test]
    fn the_rewrite_changes_whole_words_outside_comments_only() {
        let sql = "CREATE TABLE t (\n    interval INTEGER NOT NULL, -- an INTEGER, REAL, TEXT or BLOB\n    \
                   realm REAL,\n    b BLOB,\n    text TEXT,\n    texts TEXT NOT NULL\n) STRICT;\n";
        assert_eq!(
            postgres_ddl(sql),
            "CREATE TABLE t (\n    interval BIGINT NOT NULL, -- an INTEGER, REAL, TEXT or BLOB\n    \
             realm DOUBLE PRECISION,\n    b BYTEA,\n    text TEXT COLLATE \"C\",\n    \
             texts TEXT COLLATE \"C\" NOT NULL\n);\n"
        );
    }
}
