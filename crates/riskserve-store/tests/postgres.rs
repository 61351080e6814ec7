//! The store against a real PostgreSQL server (`RISKSERVE_TEST_POSTGRES_URL`, which `scripts/with_postgres.sh` sets):
//! the behaviour `store.rs` checks on SQLite, each test in a fresh schema, plus what only a shared server has
//! (replicas writing one audit chain, change notifications, concurrent migrations, an unreachable server).
//!
//! Without the variable a test prints `*** SKIPPED ***` and passes, except under CI (`CI` set), where it fails.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::runtime;
use riskserve_store::{Metadata, StoreError};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgListener};

const URL_VARIABLE: &str = "RISKSERVE_TEST_POSTGRES_URL";

/// The server's URL; `None` (after saying so loudly) when it is not set outside CI; a failure under CI.
fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let message = format!(
                "{URL_VARIABLE} is not set: run the PostgreSQL tests under scripts/with_postgres.sh \
                 (bash scripts/with_postgres.sh cargo test -p riskserve-store)"
            );
            if std::env::var("CI").is_ok_and(|value| !value.is_empty()) {
                panic!("{test}: {message}");
            }
            eprintln!("*** SKIPPED *** {test}: {message}");
            None
        }
    }
}

/// A schema of its own for one test, dropped (with everything in it) when the test ends, passed or not; `url`
/// connects with it as the search path, so the store's tables and its migrations' table land in it.
struct Schema {
    server: String,
    name: String,
    url: String,
}

impl Schema {
    async fn create(test: &str) -> Option<Schema> {
        let server = server_url(test)?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!(
            "t_{}_{}_{}_{}",
            test.chars().take(24).collect::<String>(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos % 1_000_000
        );
        let mut connection = PgConnection::connect(&server).await.expect("connect to the test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut connection)
            .await
            .expect("create schema");
        connection.close().await.expect("close");
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{name}");
        Some(Schema { server, name, url })
    }

    async fn open(&self) -> Metadata {
        Metadata::open_url(&self.url).await.expect("open the schema")
    }

    /// A raw connection in the schema, for what the store does not expose.
    async fn connection(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Dropped inside a runtime: a thread of its own with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            runtime().block_on(async {
                let mut connection = PgConnection::connect(&server).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                    .execute(&mut connection)
                    .await?;
                connection.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}: {dropped:?}", self.name);
        }
    }
}

/// Runs `body` on a fresh schema's store, unless the server is not configured.
fn with_store<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Metadata) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime().block_on(async {
        let Some(schema) = Schema::create(test).await else { return };
        let metadata = schema.open().await;
        body(metadata.clone()).await;
        metadata.close().await;
        drop(schema);
    });
}

#[test]
fn models_and_configs_refuse_duplicates_missing_references_and_in_use_deletes() {
    with_store("crud", |metadata| async move {
        common::models_and_configs_refuse_duplicates_missing_references_and_in_use_deletes(&metadata).await;
    });
}

#[test]
fn lists_page_in_name_order() {
    with_store("pages", |metadata| async move { common::lists_page_in_name_order(&metadata).await });
}

#[test]
fn a_delete_supersedes_a_running_deployment() {
    with_store(
        "supersede",
        |metadata| async move { common::a_delete_supersedes_a_running_deployment(&metadata).await },
    );
}

#[test]
fn identities_round_trip() {
    with_store("identities", |metadata| async move { common::identities_round_trip(&metadata).await });
}

#[test]
fn audit_events_chain_and_filter() {
    with_store("audit", |metadata| async move { common::audit_round_trips(&metadata).await });
}

#[test]
fn operations_tables_round_trip() {
    with_store("operations", |metadata| async move { common::operations_tables_round_trip(&metadata).await });
}

#[test]
fn console_sessions_round_trip() {
    with_store("console", |metadata| async move { common::console_sessions_round_trip(&metadata).await });
}

#[test]
fn monitoring_tables_round_trip() {
    with_store("monitoring", |metadata| async move { common::monitoring_tables_round_trip(&metadata).await });
}

/// Paging by name orders as SQLite does (the bytes of the names), also in a database whose own collation is
/// linguistic (`with_postgres.sh` creates one with ICU en-US), because every text column of the schema is "C".
#[test]
fn paging_follows_the_bytes_of_names_as_on_sqlite() {
    runtime().block_on(async {
        let Some(schema) = Schema::create("bytewise").await else { return };
        let metadata = schema.open().await;
        let order = common::paging_follows_the_bytes_of_names(&metadata).await;

        // The same names through SQLite, for the record: one order on both engines.
        let folder = std::env::temp_dir().join(format!("riskserve-pg-bytewise-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("mkdir");
        let sqlite = Metadata::open(&folder.join("riskserve.db")).await.expect("open sqlite");
        assert_eq!(common::paging_follows_the_bytes_of_names(&sqlite).await, order);
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&folder);

        let mut connection = schema.connection().await;
        let (linguistic,): (bool,) =
            sqlx::query_as("SELECT 'a' < 'B'").fetch_one(&mut connection).await.expect("collation probe");
        eprintln!(
            "the database's own collation is {}",
            if linguistic { "linguistic ('a' < 'B'): the columns' \"C\" made the difference" } else { "byte-wise" }
        );
        // Every text column of the schema compares byte for byte, whatever the database's default (sqlx's table of
        // applied migrations is sqlx's, not the schema's).
        let columns: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, collation_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND data_type = 'text' AND table_name <> 'riskserve_migrations'
             ORDER BY table_name, column_name",
        )
        .fetch_all(&mut connection)
        .await
        .expect("columns");
        assert!(columns.len() > 40, "{columns:?}");
        let other: Vec<_> = columns.iter().filter(|(_, _, collation)| collation.as_deref() != Some("C")).collect();
        assert!(other.is_empty(), "text columns without the C collation: {other:?}");
        connection.close().await.expect("close");
        metadata.close().await;
    });
}

#[test]
fn endpoint_transitions_are_stored_and_survive_a_reopen_whose_migrations_do_nothing() {
    runtime().block_on(async {
        let Some(schema) = Schema::create("reopen").await else { return };
        let metadata = schema.open().await;
        assert_eq!(metadata.database_url().as_deref(), Some(schema.url.as_str()));
        common::endpoint_transitions_are_stored(&metadata).await;
        metadata.close().await;

        let mut connection = schema.connection().await;
        let before = applied(&mut connection).await;
        assert_eq!(before.iter().map(|(version, ..)| *version).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(before.iter().all(|(_, success, _)| *success));

        // A new process: the migrations are all applied already, and the data is as committed.
        let metadata = schema.open().await;
        common::endpoint_transitions_survived(&metadata).await;
        assert_eq!(applied(&mut connection).await, before);
        // The store keeps its history in a table of its own, not in sqlx's default one.
        let (default_table,): (Option<String>,) = sqlx::query_as("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(&mut connection)
            .await
            .expect("probe");
        assert_eq!(default_table, None);
        connection.close().await.expect("close");
        metadata.close().await;
    });
}

async fn applied(connection: &mut PgConnection) -> Vec<(i64, bool, Vec<u8>)> {
    sqlx::query_as("SELECT version, success, checksum FROM riskserve_migrations ORDER BY version")
        .fetch_all(connection)
        .await
        .expect("migrations table")
}

/// Replicas starting at once on an empty schema: sqlx's migrator lock lets one apply each migration; all open.
#[test]
fn replicas_starting_at_once_apply_each_migration_once() {
    runtime().block_on(async {
        let Some(schema) = Schema::create("startup").await else { return };
        let (a, b, c, d) = tokio::join!(
            Metadata::open_url(&schema.url),
            Metadata::open_url(&schema.url),
            Metadata::open_url(&schema.url),
            Metadata::open_url(&schema.url)
        );
        let handles = [a, b, c, d].map(|opened| opened.expect("every replica opens"));
        let mut connection = schema.connection().await;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM riskserve_migrations")
            .fetch_one(&mut connection)
            .await
            .expect("count");
        assert_eq!(count, 9);
        assert!(!handles[0].has_users().await.expect("query"));
        connection.close().await.expect("close");
        for handle in &handles {
            handle.close().await;
        }
    });
}

/// Two handles on one database, as two replicas: their chained audit batches form one unbroken chain, and racing
/// read-then-write inserts conflict as `AlreadyExists`, never half-way.
#[test]
fn two_replicas_write_one_audit_chain_and_conflict_cleanly() {
    runtime().block_on(async {
        let Some(schema) = Schema::create("replicas").await else { return };
        let (first, second) = (schema.open().await, schema.open().await);
        common::concurrent_chained_appends_make_one_chain(&first, &second).await;
        common::racing_inserts_of_one_name_conflict_cleanly(&first, &second).await;
        first.close().await;
        second.close().await;
    });
}

/// The next notification on the changes channel whose payload names something of this test (other tests' schemas
/// share the database, and with it the channel), or `None` after `wait`.
async fn next_change(listener: &mut PgListener, mark: &str, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notification = tokio::time::timeout_at(deadline, listener.recv()).await.ok()?.expect("receive");
        assert_eq!(notification.channel(), Metadata::CHANGES_CHANNEL);
        if notification.payload().contains(mark) {
            return Some(notification.payload().to_string());
        }
    }
}

#[test]
fn committed_changes_are_announced_and_rolled_back_ones_are_not() {
    runtime().block_on(async {
        let Some(schema) = Schema::create("notify").await else { return };
        let metadata = schema.open().await;
        let url = metadata.database_url().expect("a server URL");
        let mut listener = PgListener::connect(&url).await.expect("listener");
        listener.listen(Metadata::CHANGES_CHANNEL).await.expect("listen");
        let mark = schema.name.clone();
        let named = |what: &str| format!("{mark}-{what}");
        let wait = Duration::from_secs(5);

        // One transaction, three rows: announced in order at commit.
        let user = common::user(&named("u1"), &named("alice"));
        let key = common::key(&named("AK1"), &user.id);
        let token = common::token(&named("t1"), &user.id);
        metadata.insert_user(&user, std::slice::from_ref(&key), std::slice::from_ref(&token)).await.expect("user");
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("users:{}", named("alice"))));
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("access_keys:{}", named("AK1"))));
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("tokens:{}", named("t1"))));

        // A transaction that announced its user and then failed (the key id is taken) rolls the announcement back.
        let failed =
            metadata.insert_user(&common::user(&named("u2"), &named("bob")), std::slice::from_ref(&key), &[]).await;
        assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
        assert!(matches!(metadata.get_user(&named("bob")).await, Err(StoreError::NotFound(_))));
        // So is a read-then-write refused before it wrote.
        assert!(matches!(metadata.insert_user(&user, &[], &[]).await, Err(StoreError::AlreadyExists(_))));

        // The next announcement is the next committed change, not the rolled-back one.
        let digest = format!("sha256:{}", "1".repeat(64));
        metadata.insert_model(&common::model(&named("m"), &digest)).await.expect("model");
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("models:{}", named("m"))));
        metadata.insert_config(&common::config(&named("c"), &[&named("m")])).await.expect("config");
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("endpoint_configs:{}", named("c"))));
        let endpoint = metadata.insert_endpoint(&named("e"), &named("c"), &Default::default()).await.expect("endpoint");
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("endpoints:{}", named("e"))));
        // A superseded deployment changes nothing and announces nothing; a scaling policy is endpoint/variant.
        metadata.begin_delete(&named("e")).await.expect("delete");
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("endpoints:{}", named("e"))));
        assert!(!metadata.finish_deploy(&named("e"), endpoint.generation, &[]).await.expect("finish"));
        let policy = riskserve_store::ScalingPolicyRecord {
            endpoint: named("e"),
            variant: "v0".to_string(),
            min_instances: 1,
            max_instances: 2,
            target: 10.0,
            scale_out_cooldown: 1.0,
            scale_in_cooldown: 1.0,
            created_at: String::new(),
            updated_at: String::new(),
        };
        metadata.put_scaling_policy(&policy).await.expect("policy");
        assert_eq!(next_change(&mut listener, &mark, wait).await, Some(format!("scaling_policies:{}/v0", named("e"))));
        assert_eq!(next_change(&mut listener, &mark, Duration::from_millis(300)).await, None);
        listener.unlisten_all().await.expect("unlisten");
        metadata.close().await;
    });
}

/// A closed port: the error comes within seconds, names the server and says PostgreSQL is unreachable, and never
/// shows the password. Needs no server, so it always runs.
#[test]
fn an_unreachable_server_is_reported_quickly_without_the_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let password = "do-not-print-me";
    let url = format!("postgres://riskserve:{password}@127.0.0.1:{port}/riskserve");
    runtime().block_on(async {
        let started = Instant::now();
        let error = Metadata::open_url(&url).await.expect_err("nothing listens there");
        let elapsed = started.elapsed();
        let message = error.to_string();
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}: {message}");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(message.contains("PostgreSQL") && message.contains("unreachable"), "{message}");
        assert!(!message.contains(password) && !format!("{error:?}").contains(password), "{message}");
        eprintln!("after {elapsed:?}: {message}");

        // A URL that is not one, or of another engine, is refused without connecting, and without the password.
        let error = Metadata::open_url(&format!("mysql://root:{password}@127.0.0.1/x")).await.expect_err("refused");
        assert!(matches!(error, StoreError::Invalid(_)) && !error.to_string().contains(password), "{error:?}");
        let error =
            Metadata::open_url(&format!("postgres://u:{password}@127.0.0.1:notaport/x")).await.expect_err("bad");
        assert!(!error.to_string().contains(password), "{error}");
    });
}

/// `Debug` of a store on a server shows its URL without the password.
#[test]
fn debug_output_hides_the_password() {
    runtime().block_on(async {
        let Some(schema) = Schema::create("debug").await else { return };
        let metadata = schema.open().await;
        let password = schema
            .server
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(user_info, _)| user_info.split_once(':').map(|(_, password)| password.to_string()));
        let shown = format!("{metadata:?}");
        assert!(shown.contains("<redacted>") || password.is_none(), "{shown}");
        if let Some(password) = password.filter(|password| !password.is_empty()) {
            assert!(!shown.contains(&password), "{shown}");
        }
        metadata.close().await;
    });
}
