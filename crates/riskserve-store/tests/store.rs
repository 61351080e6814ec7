//! The store against a real SQLite file and a real artifact folder: transactions, the endpoint
//! status machine's stored transitions, reopening after a "crash", temporary-file collection, and the behaviour
//! `common` shares with the PostgreSQL tests (`postgres.rs`).

mod common;

use std::path::PathBuf;

use common::runtime;
use riskserve_store::{Metadata, Store, StoreError};

/// A scratch data directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("riskserve-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn artifacts_are_content_addressed_idempotent_and_checked() {
    let scratch = Scratch::new("artifacts");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let bytes = bytes::Bytes::from_static(b"{\"learner\": {}}");
        let first = store.artifacts.put(bytes.clone()).await.expect("put");
        let again = store.artifacts.put(bytes.clone()).await.expect("put again");
        assert_eq!(first, again);
        assert_eq!(first.size, bytes.len() as u64);
        assert!(riskserve_store::parse_digest(&first.digest).is_some(), "{}", first.digest);
        assert_eq!(store.artifacts.get(&first.digest).await.expect("get"), bytes);
        assert_eq!(store.artifacts.size(&first.digest).await.expect("size"), Some(bytes.len() as u64));
        assert_eq!(store.artifacts.list().await.expect("list"), vec![first.digest.clone()]);

        let other = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(store.artifacts.get(&other).await, Err(StoreError::NotFound(_))));
        assert_eq!(store.artifacts.size(&other).await.expect("size"), None);
        assert!(matches!(store.artifacts.get("md5:abc").await, Err(StoreError::NotFound(_))));

        // A damaged file is refused rather than served under a digest it no longer has.
        let hex = first.digest.trim_start_matches("sha256:");
        std::fs::write(scratch.0.join("artifacts/sha256").join(hex), b"tampered").expect("tamper");
        assert!(matches!(store.artifacts.get(&first.digest).await, Err(StoreError::Corrupt(_))));
    });
}

#[test]
fn plain_objects_are_written_whole_listed_by_folder_and_kept_apart_from_artifacts() {
    let scratch = Scratch::new("objects");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let objects = &store.artifacts;
        objects.put_object("capture/credit/main/2026/12/04/23/a.jsonl", "{}\n".into()).await.expect("put");
        objects.put_object("capture/credit/main/2026/12/04/23/b.jsonl", "{}\n{}\n".into()).await.expect("put");
        objects.put_object("capture/other/x.jsonl", "x".into()).await.expect("put");
        objects.put_object("capture/other/x.jsonl", "xy".into()).await.expect("replace");
        let listed = objects.list_objects("capture/credit").await.expect("list");
        assert_eq!(
            listed,
            [
                ("capture/credit/main/2026/12/04/23/a.jsonl".to_string(), 3),
                ("capture/credit/main/2026/12/04/23/b.jsonl".to_string(), 6)
            ]
        );
        assert_eq!(objects.list_objects("capture").await.expect("all").len(), 3);
        assert!(objects.list_objects("nothing-here").await.expect("empty").is_empty());
        assert_eq!(objects.get_object("capture/other/x.jsonl").await.expect("get").as_ref(), b"xy");
        assert!(matches!(objects.get_object("capture/none").await, Err(StoreError::NotFound(_))));
        // Nothing staged is left behind, and content-addressed artifacts do not see plain objects.
        assert!(
            std::fs::read_dir(scratch.0.join("artifacts/tmp")).map_or(true, |mut entries| entries.next().is_none())
        );
        assert!(objects.list().await.expect("artifacts").is_empty());
        for bad in ["", "sha256/abc", "tmp/x", "a//b", "../etc/passwd", "a/./b", "a/b c", "a/#1", "/abs"] {
            let error = objects.put_object(bad, "x".into()).await.expect_err(bad);
            assert!(matches!(error, StoreError::Invalid(_)), "{bad}: {error}");
        }
    });
}

#[test]
fn unfinished_uploads_are_collected_at_start_and_finished_ones_kept() {
    let scratch = Scratch::new("collect");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let kept = store.artifacts.put(bytes::Bytes::from_static(b"kept")).await.expect("put");
        // What a crash in the middle of uploads leaves behind: a temporary file not yet renamed,
        // and the local object store's own staging file.
        std::fs::create_dir_all(scratch.0.join("artifacts/tmp")).expect("mkdir");
        std::fs::write(scratch.0.join("artifacts/tmp/abc-1-0"), b"half").expect("write");
        std::fs::write(scratch.0.join("artifacts/sha256/def#1"), b"half").expect("write");
        drop(store);
        let store = Store::open(&scratch.0).await.expect("reopen");
        assert_eq!(store.artifacts.collect_temporary().await.expect("collect"), 2);
        assert!(!scratch.0.join("artifacts/tmp/abc-1-0").exists());
        assert!(!scratch.0.join("artifacts/sha256/def#1").exists());
        assert_eq!(store.artifacts.list().await.expect("list"), vec![kept.digest.clone()]);
        assert_eq!(store.artifacts.get(&kept.digest).await.expect("get").as_ref(), b"kept");
    });
}

#[test]
fn models_and_configs_refuse_duplicates_missing_references_and_in_use_deletes() {
    let scratch = Scratch::new("crud");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::models_and_configs_refuse_duplicates_missing_references_and_in_use_deletes(&store.metadata).await;
    });
}

#[test]
fn lists_page_in_name_order() {
    let scratch = Scratch::new("pages");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::lists_page_in_name_order(&store.metadata).await;
    });
}

#[test]
fn paging_follows_the_bytes_of_names() {
    let scratch = Scratch::new("bytewise");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let order = common::paging_follows_the_bytes_of_names(&store.metadata).await;
        // The order the PostgreSQL test compares with.
        assert_eq!(order.first().map(String::as_str), Some("-"));
        assert_eq!(order.last().map(String::as_str), Some("é"));
    });
}

#[test]
fn endpoint_transitions_are_stored_and_survive_a_reopen() {
    let scratch = Scratch::new("endpoints");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::endpoint_transitions_are_stored(&store.metadata).await;
        store.metadata.close().await;
    });
    // A new process sees exactly what was committed.
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("reopen");
        common::endpoint_transitions_survived(&store.metadata).await;
    });
}

#[test]
fn a_delete_supersedes_a_running_deployment() {
    let scratch = Scratch::new("supersede");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::a_delete_supersedes_a_running_deployment(&store.metadata).await;
    });
}

#[test]
fn identities_round_trip() {
    let scratch = Scratch::new("identities");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::identities_round_trip(&store.metadata).await;
    });
}

#[test]
fn audit_events_chain_and_filter() {
    let scratch = Scratch::new("audit");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::audit_round_trips(&store.metadata).await;
    });
}

#[test]
fn operations_tables_round_trip() {
    let scratch = Scratch::new("operations");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::operations_tables_round_trip(&store.metadata).await;
    });
}

#[test]
fn console_sessions_round_trip() {
    let scratch = Scratch::new("console");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::console_sessions_round_trip(&store.metadata).await;
    });
}

#[test]
fn monitoring_tables_round_trip() {
    let scratch = Scratch::new("monitoring");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        common::monitoring_tables_round_trip(&store.metadata).await;
    });
}

/// Two handles on one file (as the service's audit writer has its own): the write lock orders their transactions.
#[test]
fn two_handles_on_one_file_write_one_audit_chain_and_conflict_cleanly() {
    let scratch = Scratch::new("two-handles");
    runtime().block_on(async {
        std::fs::create_dir_all(&scratch.0).expect("mkdir");
        let first = Metadata::open(&scratch.0.join("riskserve.db")).await.expect("open");
        let second = Metadata::open(&scratch.0.join("riskserve.db")).await.expect("open again");
        assert_eq!(first.database_url(), None);
        common::concurrent_chained_appends_make_one_chain(&first, &second).await;
        common::racing_inserts_of_one_name_conflict_cleanly(&first, &second).await;
    });
}
