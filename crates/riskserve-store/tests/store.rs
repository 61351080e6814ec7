//! The store against a real SQLite file and a real artifact folder: transactions, the endpoint
//! status machine's stored transitions, reopening after a "crash", temporary-file collection.

use std::collections::BTreeMap;
use std::path::PathBuf;

use riskserve_store::{
    ArtifactRef, ConfigRecord, EndpointStatus, ModelRecord, PageRequest, Store, StoreError, VariantRecord, now_rfc3339,
};

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn model(name: &str, digest: &str) -> ModelRecord {
    ModelRecord {
        name: name.to_string(),
        format: "xgboost-json".to_string(),
        pipeline: None,
        artifacts: vec![ArtifactRef { name: "model.json".to_string(), digest: digest.to_string(), size: 3 }],
        inputs: vec!["a".to_string(), "b".to_string()],
        outputs: vec!["probability".to_string()],
        tags: BTreeMap::from([("team".to_string(), "risk".to_string())]),
        description: Some("a test model".to_string()),
        created_at: now_rfc3339(),
    }
}

fn config(name: &str, models: &[&str]) -> ConfigRecord {
    ConfigRecord {
        name: name.to_string(),
        variants: models
            .iter()
            .enumerate()
            .map(|(index, model)| VariantRecord {
                name: format!("v{index}"),
                model: model.to_string(),
                weight: 1.0,
                instances: 2,
            })
            .collect(),
        tags: BTreeMap::new(),
        created_at: now_rfc3339(),
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
        let metadata = &store.metadata;
        let digest = format!("sha256:{}", "a".repeat(64));
        metadata.insert_model(&model("m1", &digest)).await.expect("insert");
        assert!(matches!(metadata.insert_model(&model("m1", &digest)).await, Err(StoreError::AlreadyExists(_))));
        assert_eq!(
            metadata.get_model("m1").await.expect("get"),
            model_with_time(&model("m1", &digest), metadata).await
        );
        assert!(matches!(metadata.get_model("nope").await, Err(StoreError::NotFound(_))));

        assert!(matches!(metadata.insert_config(&config("c1", &["missing"])).await, Err(StoreError::NotFound(_))));
        metadata.insert_config(&config("c1", &["m1", "m1"])).await.expect("config");
        assert!(matches!(metadata.insert_config(&config("c1", &["m1"])).await, Err(StoreError::AlreadyExists(_))));
        let stored = metadata.get_config("c1").await.expect("get config");
        assert_eq!(stored.variants.len(), 2);
        assert_eq!(stored.variants[1].instances, 2);

        // A config nobody uses does not pin its model or itself.
        metadata.insert_model(&model("m2", &digest)).await.expect("insert");
        metadata.insert_config(&config("c2", &["m2"])).await.expect("config");
        metadata.delete_config("c2").await.expect("delete unused config");
        metadata.delete_model("m2").await.expect("delete unused model");

        metadata.insert_endpoint("e1", "c1", &BTreeMap::new()).await.expect("endpoint");
        assert!(matches!(metadata.delete_config("c1").await, Err(StoreError::InUse(_))));
        assert!(matches!(metadata.delete_model("m1").await, Err(StoreError::InUse(_))));
        assert!(matches!(
            metadata.insert_endpoint("e1", "c1", &BTreeMap::new()).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(metadata.insert_endpoint("e2", "nope", &BTreeMap::new()).await, Err(StoreError::NotFound(_))));
        assert!(matches!(metadata.delete_model("nope").await, Err(StoreError::NotFound(_))));
    });
}

async fn model_with_time(model: &ModelRecord, metadata: &riskserve_store::Metadata) -> ModelRecord {
    let stored = metadata.get_model(&model.name).await.expect("get");
    ModelRecord { created_at: stored.created_at.clone(), ..model.clone() }
}

#[test]
fn lists_page_in_name_order() {
    let scratch = Scratch::new("pages");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let digest = format!("sha256:{}", "b".repeat(64));
        for name in ["c", "a", "e", "b", "d"] {
            store.metadata.insert_model(&model(name, &digest)).await.expect("insert");
        }
        let mut seen = Vec::new();
        let mut request = PageRequest { max_results: Some(2), next_token: None };
        loop {
            let page = store.metadata.list_models(&request).await.expect("list");
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|model| model.name.clone()));
            match page.next_token {
                Some(token) => request.next_token = Some(token),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    });
}

#[test]
fn endpoint_transitions_are_stored_and_survive_a_reopen() {
    let scratch = Scratch::new("endpoints");
    let digest = format!("sha256:{}", "c".repeat(64));
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let metadata = &store.metadata;
        metadata.insert_model(&model("m", &digest)).await.expect("model");
        metadata.insert_config(&config("old", &["m"])).await.expect("config");
        metadata.insert_config(&config("new", &["m", "m"])).await.expect("config");

        let created = metadata.insert_endpoint("e", "old", &BTreeMap::new()).await.expect("endpoint");
        assert_eq!(created.status, EndpointStatus::Creating);
        assert_eq!(created.live_config, None);
        // An update is refused while the first deployment runs.
        assert!(matches!(metadata.begin_update("e", "new").await, Err(StoreError::InvalidState(_))));
        let variants = metadata.get_config("old").await.expect("config").variants;
        assert!(metadata.finish_deploy("e", created.generation, &variants).await.expect("finish"));
        let serving = metadata.get_endpoint("e").await.expect("get");
        assert_eq!(serving.status, EndpointStatus::InService);
        assert_eq!(serving.live_config.as_deref(), Some("old"));
        assert_eq!(serving.live_variants.as_deref(), Some(variants.as_slice()));

        // A failed update rolls back to the live config and keeps the reason.
        let updating = metadata.begin_update("e", "new").await.expect("update");
        assert_eq!(updating.status, EndpointStatus::Updating);
        assert_eq!(updating.config, "new");
        assert!(matches!(metadata.delete_config("new").await, Err(StoreError::InUse(_))));
        assert_eq!(
            metadata.fail_deploy("e", updating.generation, "model m did not load").await.expect("fail"),
            Some(EndpointStatus::RollingBack)
        );
        assert!(metadata.finish_rollback("e", updating.generation).await.expect("rollback"));
        let rolled_back = metadata.get_endpoint("e").await.expect("get");
        assert_eq!(rolled_back.status, EndpointStatus::InService);
        assert_eq!(rolled_back.config, "old");
        assert_eq!(rolled_back.failure_reason.as_deref(), Some("model m did not load"));

        // A successful update makes the new config live.
        let updating = metadata.begin_update("e", "new").await.expect("update");
        let new_variants = metadata.get_config("new").await.expect("config").variants;
        assert!(metadata.finish_deploy("e", updating.generation, &new_variants).await.expect("finish"));
        metadata.set_live_variant("e", "v1", Some(0.5), Some(5)).await.expect("variant");
        metadata.close().await;
    });
    // A new process sees exactly what was committed.
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("reopen");
        let endpoint = store.metadata.get_endpoint("e").await.expect("get");
        assert_eq!(endpoint.status, EndpointStatus::InService);
        assert_eq!(endpoint.live_config.as_deref(), Some("new"));
        assert_eq!(endpoint.failure_reason, None);
        let instances: Vec<u32> =
            endpoint.live_variants.as_ref().expect("variants").iter().map(|variant| variant.instances).collect();
        assert_eq!(instances, [2, 5]);
        let weights: Vec<f64> = endpoint.live_variants.iter().flatten().map(|variant| variant.weight).collect();
        assert_eq!(weights, [1.0, 0.5]);
    });
}

#[test]
fn a_delete_supersedes_a_running_deployment() {
    let scratch = Scratch::new("supersede");
    runtime().block_on(async {
        let store = Store::open(&scratch.0).await.expect("open");
        let metadata = &store.metadata;
        metadata.insert_model(&model("m", &format!("sha256:{}", "d".repeat(64)))).await.expect("model");
        metadata.insert_config(&config("c", &["m"])).await.expect("config");
        let created = metadata.insert_endpoint("e", "c", &BTreeMap::new()).await.expect("endpoint");
        let deleting = metadata.begin_delete("e").await.expect("delete");
        assert_eq!(deleting.status, EndpointStatus::Deleting);
        assert!(deleting.generation > created.generation);
        // The deployment that was running finds its request superseded and records nothing.
        assert!(!metadata.finish_deploy("e", created.generation, &[]).await.expect("finish"));
        assert_eq!(metadata.fail_deploy("e", created.generation, "late").await.expect("fail"), None);
        assert_eq!(metadata.get_endpoint("e").await.expect("get").status, EndpointStatus::Deleting);
        // Deleting twice is accepted; the row goes once.
        assert_eq!(metadata.begin_delete("e").await.expect("again").generation, deleting.generation);
        assert!(metadata.finish_delete("e").await.expect("finish delete"));
        assert!(!metadata.finish_delete("e").await.expect("finish delete again"));
        assert!(matches!(metadata.get_endpoint("e").await, Err(StoreError::NotFound(_))));
        // The config is free again.
        metadata.delete_config("c").await.expect("delete config");
    });
}
