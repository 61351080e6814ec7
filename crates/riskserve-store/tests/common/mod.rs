//! The store's behaviour as functions of an open `Metadata`, so that the same assertions run on every engine
//! (`store.rs`: SQLite files; `postgres.rs`: PostgreSQL schemas).

// Each test crate uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;

use riskserve_store::{
    AccessKeyRecord, ArtifactRef, AuditFilter, AuditRecord, AuditSeal, ConfigRecord, EndpointStatus, MetricMinute,
    ModelRecord, PageRequest, PolicyRecord, ReplicaLoad, ScalingActivityRecord, ScalingPolicyRecord, StoreError,
    TaggedKind, TokenRecord, UsageRecord, UserRecord, VariantRecord, now_rfc3339,
};
use riskserve_store::{Metadata, Page};
use sha2::{Digest, Sha256};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

pub fn model(name: &str, digest: &str) -> ModelRecord {
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

pub fn config(name: &str, models: &[&str]) -> ConfigRecord {
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
        data_capture: String::new(),
    }
}

async fn model_with_time(model: &ModelRecord, metadata: &Metadata) -> ModelRecord {
    let stored = metadata.get_model(&model.name).await.expect("get");
    ModelRecord { created_at: stored.created_at.clone(), ..model.clone() }
}

pub async fn models_and_configs_refuse_duplicates_missing_references_and_in_use_deletes(metadata: &Metadata) {
    let digest = format!("sha256:{}", "a".repeat(64));
    metadata.insert_model(&model("m1", &digest)).await.expect("insert");
    assert!(matches!(metadata.insert_model(&model("m1", &digest)).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(metadata.get_model("m1").await.expect("get"), model_with_time(&model("m1", &digest), metadata).await);
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
    assert!(matches!(metadata.insert_endpoint("e1", "c1", &BTreeMap::new()).await, Err(StoreError::AlreadyExists(_))));
    assert!(matches!(metadata.insert_endpoint("e2", "nope", &BTreeMap::new()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(metadata.delete_model("nope").await, Err(StoreError::NotFound(_))));
}

/// Every model name, page by page of `size`, in the order the store returns them.
async fn all_model_names(metadata: &Metadata, size: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut request = PageRequest { max_results: Some(size), next_token: None };
    loop {
        let page: Page<ModelRecord> = metadata.list_models(&request).await.expect("list");
        assert!(page.items.len() <= size as usize);
        seen.extend(page.items.iter().map(|model| model.name.clone()));
        match page.next_token {
            Some(token) => request.next_token = Some(token),
            None => break,
        }
    }
    seen
}

pub async fn lists_page_in_name_order(metadata: &Metadata) {
    let digest = format!("sha256:{}", "b".repeat(64));
    for name in ["c", "a", "e", "b", "d"] {
        metadata.insert_model(&model(name, &digest)).await.expect("insert");
    }
    assert_eq!(all_model_names(metadata, 2).await, ["a", "b", "c", "d", "e"]);
}

/// Names whose order differs between a byte-wise comparison and a linguistic one (case, punctuation, spaces, accents).
pub const MIXED_NAMES: &[&str] = &[
    "b", "B", "a", "A", "a-b", "a_b", "aB", "ab", "Ab", "A-", "_", "-", "0", "9z", "Z", "z", "é", "e", "E", "a b",
    "a.b", "~", "a~", "a%", "ä", "Éclair", "eclair", "model-10", "model-9", "model_1", "Model-2",
];

/// Paging by name follows the bytes of the names (SQLite's BINARY collation, PostgreSQL's "C"): returns the order
/// seen, which equals the names sorted as bytes.
pub async fn paging_follows_the_bytes_of_names(metadata: &Metadata) -> Vec<String> {
    let digest = format!("sha256:{}", "f".repeat(64));
    for name in MIXED_NAMES {
        metadata.insert_model(&model(name, &digest)).await.expect("insert");
    }
    let mut expected: Vec<String> = MIXED_NAMES.iter().map(|name| name.to_string()).collect();
    expected.sort_by(|left, right| left.as_bytes().cmp(right.as_bytes()));
    for size in [1, 3, 7, 100] {
        assert_eq!(all_model_names(metadata, size).await, expected, "pages of {size}");
    }
    // A page token that is not a stored name continues right after where it would sort.
    let page = metadata
        .list_models(&PageRequest { max_results: Some(2), next_token: Some("a".to_string()) })
        .await
        .expect("list");
    let names: Vec<&str> = page.items.iter().map(|model| model.name.as_str()).collect();
    assert_eq!(names, ["a b", "a%"]);
    expected
}

pub async fn endpoint_transitions_are_stored(metadata: &Metadata) {
    let digest = format!("sha256:{}", "c".repeat(64));
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
}

/// What a new process sees after [`endpoint_transitions_are_stored`]: exactly what was committed.
pub async fn endpoint_transitions_survived(metadata: &Metadata) {
    let endpoint = metadata.get_endpoint("e").await.expect("get");
    assert_eq!(endpoint.status, EndpointStatus::InService);
    assert_eq!(endpoint.live_config.as_deref(), Some("new"));
    assert_eq!(endpoint.failure_reason, None);
    let instances: Vec<u32> =
        endpoint.live_variants.as_ref().expect("variants").iter().map(|variant| variant.instances).collect();
    assert_eq!(instances, [2, 5]);
    let weights: Vec<f64> = endpoint.live_variants.iter().flatten().map(|variant| variant.weight).collect();
    assert_eq!(weights, [1.0, 0.5]);
}

pub async fn a_delete_supersedes_a_running_deployment(metadata: &Metadata) {
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
}

pub fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.to_string(),
        name: name.to_string(),
        roles: vec!["reader".to_string()],
        disabled: false,
        created_at: now_rfc3339(),
    }
}

pub fn key(id: &str, user_id: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: id.to_string(),
        user_id: user_id.to_string(),
        sealed_secret: format!("sealed-{id}"),
        active: true,
        created_at: now_rfc3339(),
    }
}

pub fn token(id: &str, user_id: &str) -> TokenRecord {
    TokenRecord {
        id: id.to_string(),
        user_id: user_id.to_string(),
        token_hash: format!("hash-{id}"),
        active: true,
        created_at: now_rfc3339(),
    }
}

pub async fn identities_round_trip(metadata: &Metadata) {
    assert!(!metadata.has_users().await.expect("query"));
    let alice = user("u1", "alice");
    metadata.insert_user(&alice, &[key("AK1", "u1")], &[token("t1", "u1")]).await.expect("insert");
    assert!(metadata.has_users().await.expect("query"));
    assert_eq!(metadata.get_user("alice").await.expect("get"), alice);
    assert!(matches!(metadata.insert_user(&user("u2", "alice"), &[], &[]).await, Err(StoreError::AlreadyExists(_))));
    assert!(matches!(metadata.get_user("bob").await, Err(StoreError::NotFound(_))));
    // A failed insert leaves nothing behind: the duplicate key id rolls the new user back.
    assert!(metadata.insert_user(&user("u3", "carol"), &[key("AK1", "u3")], &[]).await.is_err());
    assert!(matches!(metadata.get_user("carol").await, Err(StoreError::NotFound(_))));

    let roles = vec!["admin".to_string(), "reader".to_string()];
    let updated = metadata.update_user("alice", Some(&roles), Some(true)).await.expect("update");
    assert_eq!((updated.roles.clone(), updated.disabled), (roles.clone(), true));
    assert_eq!(metadata.get_user("alice").await.expect("get"), updated);
    assert!(matches!(metadata.update_user("bob", None, None).await, Err(StoreError::NotFound(_))));

    // A rotation: new key and token, the old ones deactivated, in one transaction.
    metadata
        .add_credentials(Some(&key("AK2", "u1")), Some(&token("t2", "u1")), Some("AK1"), Some("t1"))
        .await
        .expect("rotate");
    let snapshot = metadata.identity_snapshot().await.expect("snapshot");
    assert_eq!(snapshot.users, vec![updated.clone()]);
    let keys: Vec<(&str, bool)> =
        snapshot.access_keys.iter().map(|key| (key.access_key_id.as_str(), key.active)).collect();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, [("AK1", false), ("AK2", true)]);
    assert_eq!(
        snapshot.access_keys.iter().find(|key| key.access_key_id == "AK2").expect("AK2").sealed_secret,
        "sealed-AK2"
    );
    let mut tokens: Vec<(&str, bool)> = snapshot.tokens.iter().map(|token| (token.id.as_str(), token.active)).collect();
    tokens.sort();
    assert_eq!(tokens, [("t1", false), ("t2", true)]);

    metadata.set_key_active("u1", "AK1", true).await.expect("activate");
    assert!(matches!(metadata.set_key_active("u9", "AK1", true).await, Err(StoreError::NotFound(_))));
    metadata.set_token_active("u1", "t2", false).await.expect("deactivate");
    assert!(matches!(metadata.set_token_active("u1", "t9", false).await, Err(StoreError::NotFound(_))));
    let snapshot = metadata.identity_snapshot().await.expect("snapshot");
    assert!(snapshot.access_keys.iter().all(|key| key.active));
    assert!(snapshot.tokens.iter().all(|token| !token.active));
    metadata.delete_key("u1", "AK1").await.expect("delete key");
    assert!(matches!(metadata.delete_key("u1", "AK1").await, Err(StoreError::NotFound(_))));
    metadata.delete_token("u1", "t1").await.expect("delete token");
    assert!(matches!(metadata.delete_token("u1", "t1").await, Err(StoreError::NotFound(_))));

    let policy = PolicyRecord {
        name: "p".to_string(),
        text: "permit(principal, action, resource);".to_string(),
        description: None,
        created_at: now_rfc3339(),
    };
    metadata.put_policy(&policy).await.expect("policy");
    let replaced = PolicyRecord { text: "forbid(principal, action, resource);".to_string(), ..policy.clone() };
    metadata
        .put_policy(&PolicyRecord { description: Some("no".to_string()), ..replaced.clone() })
        .await
        .expect("again");
    let policies = metadata.identity_snapshot().await.expect("snapshot").policies;
    assert_eq!(policies, vec![PolicyRecord { description: Some("no".to_string()), ..replaced }]);
    metadata.delete_policy("p").await.expect("delete policy");
    assert!(matches!(metadata.delete_policy("p").await, Err(StoreError::NotFound(_))));

    // Deleting a user takes its credentials along.
    metadata.delete_user("alice").await.expect("delete user");
    assert!(matches!(metadata.delete_user("alice").await, Err(StoreError::NotFound(_))));
    let snapshot = metadata.identity_snapshot().await.expect("snapshot");
    assert!(snapshot.users.is_empty() && snapshot.access_keys.is_empty() && snapshot.tokens.is_empty());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The hash chaining an event to the one before (a stand-in for the service's: over the event's fields).
pub fn test_hash(event: &AuditRecord) -> String {
    let text = format!(
        "{}|{}|{}|{}|{}|{}|{}",
        event.seq, event.time, event.principal, event.action, event.resource, event.parameters, event.prev_hash
    );
    hex(&Sha256::digest(text.as_bytes()))
}

/// The hash a seal is known by (what the next seal's `prev_seal` holds).
pub fn seal_hash(seal: &AuditSeal) -> String {
    hex(&Sha256::digest(format!("{}|{}|{}|{}", seal.time, seal.last_seq, seal.last_hash, seal.prev_seal).as_bytes()))
}

pub const GENESIS: &str = "genesis";

/// `count` events continuing the chain after `last_seq` / `last_hash`, by `principal`.
pub fn chain_after(
    last_seq: i64,
    last_hash: Option<String>,
    principal: &str,
    action: &str,
    count: usize,
) -> Vec<AuditRecord> {
    let mut prev = last_hash.unwrap_or_else(|| GENESIS.to_string());
    let mut events = Vec::with_capacity(count);
    for offset in 0..count {
        let mut event = AuditRecord {
            seq: last_seq + 1 + offset as i64,
            time: now_rfc3339(),
            request_id: format!("r-{principal}-{offset}"),
            principal: principal.to_string(),
            source: Some("127.0.0.1".to_string()),
            action: action.to_string(),
            resource: format!("endpoint/e{offset}"),
            parameters: "{\"rows\":1}".to_string(),
            outcome: "allowed".to_string(),
            status: 200,
            error_code: None,
            latency_us: 42,
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        event.hash = test_hash(&event);
        prev = event.hash.clone();
        events.push(event);
    }
    events
}

/// A seal over the end of `events` (or over `last_seq`/`last_hash` when there are none), after `last_seal`.
pub fn seal_after(
    last_seq: i64,
    last_hash: Option<String>,
    last_seal: Option<&AuditSeal>,
    events: &[AuditRecord],
    key: &str,
) -> AuditSeal {
    let (seq, hash) = match events.last() {
        Some(event) => (event.seq, event.hash.clone()),
        None => (last_seq, last_hash.unwrap_or_else(|| GENESIS.to_string())),
    };
    AuditSeal {
        id: 0,
        time: now_rfc3339(),
        last_seq: seq,
        last_hash: hash,
        prev_seal: last_seal.map_or_else(|| GENESIS.to_string(), seal_hash),
        public_key: key.to_string(),
        signature: format!("signed-by-{key}"),
    }
}

/// The stored chain is one unbroken chain of `expected` events, and every seal seals it: returns the principals in
/// sequence order.
pub async fn assert_one_chain(metadata: &Metadata, expected: i64) -> Vec<String> {
    let events = metadata.audit_range(0, 100_000).await.expect("range");
    assert_eq!(events.len() as i64, expected);
    let mut prev = GENESIS.to_string();
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as i64 + 1, "sequence numbers are contiguous");
        assert_eq!(event.prev_hash, prev, "event {} chains to event {}", event.seq, event.seq - 1);
        assert_eq!(test_hash(event), event.hash, "event {} is intact", event.seq);
        prev = event.hash.clone();
    }
    let seals = metadata.audit_seals().await.expect("seals");
    let mut prev_seal = GENESIS.to_string();
    for (index, seal) in seals.iter().enumerate() {
        assert_eq!(seal.id, index as i64 + 1);
        assert_eq!(seal.prev_seal, prev_seal, "seal {} follows seal {}", seal.id, seal.id - 1);
        let sealed = &events[seal.last_seq as usize - 1];
        assert_eq!((sealed.seq, &sealed.hash), (seal.last_seq, &seal.last_hash), "seal {}", seal.id);
        if index > 0 {
            assert!(seal.last_seq >= seals[index - 1].last_seq);
        }
        prev_seal = seal_hash(seal);
    }
    events.into_iter().map(|event| event.principal).collect()
}

pub async fn audit_round_trips(metadata: &Metadata) {
    assert_eq!(metadata.audit_tail().await.expect("tail"), None);
    // The writer of one process: chain in memory, append with a seal.
    let first = chain_after(0, None, "alice", "InvokeEndpoint", 3);
    let seal = seal_after(0, None, None, &first, "k1");
    metadata.append_audit(&first, Some(&seal)).await.expect("append");
    assert_eq!(metadata.audit_tail().await.expect("tail"), first.last().cloned());
    // The chained append continues the stored head, and sees the last seal.
    let written = metadata
        .append_audit_chained(|head| {
            assert_eq!(head.last_seq, 3);
            assert_eq!(head.last_hash.as_deref(), Some(first[2].hash.as_str()));
            let last_seal = head.last_seal.clone().expect("the first seal");
            assert_eq!((last_seal.id, last_seal.last_seq), (1, 3));
            let events = chain_after(head.last_seq, head.last_hash.clone(), "bob", "CreateEndpoint", 2);
            let seal = seal_after(head.last_seq, head.last_hash, head.last_seal.as_ref(), &events, "k1");
            (events, Some(seal))
        })
        .await
        .expect("chained");
    assert_eq!(written.iter().map(|event| event.seq).collect::<Vec<_>>(), [4, 5]);
    // A batch that does not continue the head is refused, and nothing of it is written.
    let refused =
        metadata.append_audit_chained(|head| (chain_after(head.last_seq + 1, None, "eve", "x", 1), None)).await;
    assert!(matches!(refused, Err(StoreError::InvalidState(_))), "{refused:?}");
    let refused = metadata
        .append_audit_chained(|head| (chain_after(head.last_seq, Some("forged".to_string()), "eve", "x", 1), None))
        .await;
    assert!(matches!(refused, Err(StoreError::InvalidState(_))), "{refused:?}");
    // Nothing to write writes nothing.
    assert_eq!(metadata.append_audit_chained(|_| (Vec::new(), None)).await.expect("empty"), Vec::new());
    assert_eq!(assert_one_chain(metadata, 5).await, ["alice", "alice", "alice", "bob", "bob"]);
    assert_eq!(metadata.audit_seals().await.expect("seals").len(), 2);

    // Filters: each present one must hold; times compare as RFC 3339 text.
    let all = metadata.query_audit(&AuditFilter { limit: 100, ..AuditFilter::default() }).await.expect("query");
    assert_eq!(all.len(), 5);
    let by = |filter: AuditFilter| async move {
        let found = metadata.query_audit(&AuditFilter { limit: 100, ..filter }).await.expect("query");
        found.iter().map(|event| event.seq).collect::<Vec<_>>()
    };
    assert_eq!(by(AuditFilter { principal: Some("bob".to_string()), ..AuditFilter::default() }).await, [4, 5]);
    assert_eq!(
        by(AuditFilter { action: Some("InvokeEndpoint".to_string()), ..AuditFilter::default() }).await,
        [1, 2, 3]
    );
    assert_eq!(by(AuditFilter { resource: Some("endpoint/e1".to_string()), ..AuditFilter::default() }).await, [2, 5]);
    assert_eq!(
        by(AuditFilter { outcome: Some("denied".to_string()), ..AuditFilter::default() }).await,
        Vec::<i64>::new()
    );
    assert_eq!(by(AuditFilter { after_seq: Some(3), ..AuditFilter::default() }).await, [4, 5]);
    let two = metadata.query_audit(&AuditFilter { limit: 2, ..AuditFilter::default() }).await.expect("query");
    assert_eq!(two.len(), 2);
    let since = |time: &str| AuditFilter { since: Some(time.to_string()), ..AuditFilter::default() };
    assert_eq!(by(since("2000-01-01T00:00:00.000Z")).await.len(), 5);
    assert_eq!(by(since("9999-01-01T00:00:00.000Z")).await, Vec::<i64>::new());
    let until = AuditFilter { until: Some("2000-01-01T00:00:00.000Z".to_string()), ..AuditFilter::default() };
    assert_eq!(by(until).await, Vec::<i64>::new());
    assert_eq!(metadata.audit_range(4, 10).await.expect("range").len(), 1);
}

/// Two handles (two processes, two replicas) append batches at once with `append_audit_chained`: one unbroken chain.
pub async fn concurrent_chained_appends_make_one_chain(first: &Metadata, second: &Metadata) {
    const BATCHES: usize = 25;
    const EVENTS: usize = 4;
    async fn writer(metadata: &Metadata, name: &str) {
        for batch in 0..BATCHES {
            let name = name.to_string();
            let written = metadata
                .append_audit_chained(move |head| {
                    let events = chain_after(head.last_seq, head.last_hash.clone(), &name, "InvokeEndpoint", EVENTS);
                    let seal = (batch % 5 == 4)
                        .then(|| seal_after(head.last_seq, head.last_hash, head.last_seal.as_ref(), &events, &name));
                    (events, seal)
                })
                .await
                .expect("append");
            assert_eq!(written.len(), EVENTS);
        }
    }
    tokio::join!(writer(first, "replica-a"), writer(second, "replica-b"));
    let principals = assert_one_chain(first, (2 * BATCHES * EVENTS) as i64).await;
    assert_eq!(principals.iter().filter(|principal| *principal == "replica-a").count(), BATCHES * EVENTS);
    // Each batch is contiguous: a batch's events are never interleaved with another's.
    for batch in principals.chunks(EVENTS) {
        assert!(batch.iter().all(|principal| *principal == batch[0]), "{batch:?}");
    }
    let switches =
        principals.chunks(EVENTS).collect::<Vec<_>>().windows(2).filter(|pair| pair[0][0] != pair[1][0]).count();
    eprintln!("the two writers took turns {switches} times");
    assert_eq!(second.audit_seals().await.expect("seals").len(), 10);
}

/// Racing inserts of one name from two handles: exactly one wins and the others see `AlreadyExists` (the
/// read-then-write runs under the write lock, so no insert fails on the unique key instead).
pub async fn racing_inserts_of_one_name_conflict_cleanly(first: &Metadata, second: &Metadata) {
    let digest = format!("sha256:{}", "e".repeat(64));
    let candidate = model("contested", &digest);
    let attempt = |metadata: &Metadata| {
        let candidate = candidate.clone();
        let metadata = metadata.clone();
        async move { metadata.insert_model(&candidate).await }
    };
    let results =
        tokio::join!(attempt(first), attempt(second), attempt(first), attempt(second), attempt(first), attempt(second));
    let results = [results.0, results.1, results.2, results.3, results.4, results.5];
    let wins = results.iter().filter(|result| result.is_ok()).count();
    let conflicts = results.iter().filter(|result| matches!(result, Err(StoreError::AlreadyExists(_)))).count();
    assert_eq!((wins, conflicts), (1, 5), "{results:?}");
}

pub async fn operations_tables_round_trip(metadata: &Metadata) {
    // Metric minutes: a replica's minute written twice keeps the later data; replicas keep their own rows.
    let minute = |endpoint: &str, minute: i64, replica: &str, data: &str| MetricMinute {
        endpoint: endpoint.to_string(),
        variant: "v0".to_string(),
        minute,
        replica: replica.to_string(),
        data: data.to_string(),
    };
    metadata
        .put_metric_minutes(&[minute("e", 10, "a", "{\"n\":1}"), minute("e", 11, "a", "{\"n\":2}")])
        .await
        .expect("put");
    metadata
        .put_metric_minutes(&[
            minute("e", 11, "a", "{\"n\":3}"),
            minute("d", 11, "a", "{}"),
            minute("e", 11, "b", "{\"n\":4}"),
        ])
        .await
        .expect("put again");
    metadata.put_metric_minutes(&[]).await.expect("nothing");
    assert_eq!(
        metadata.metric_minutes_since(11, None).await.expect("since"),
        [minute("d", 11, "a", "{}"), minute("e", 11, "a", "{\"n\":3}"), minute("e", 11, "b", "{\"n\":4}")]
    );
    assert_eq!(
        metadata.metric_minutes_since(11, Some("a")).await.expect("others"),
        [minute("e", 11, "b", "{\"n\":4}")]
    );
    assert_eq!(metadata.prune_metric_minutes(11).await.expect("prune"), 1);
    assert_eq!(metadata.metric_minutes_since(0, None).await.expect("since").len(), 3);

    // Replica loads: a report replaces the replica's last one; old reports are pruned.
    let load = |replica: &str, invocations: u64, reported_at: i64| ReplicaLoad {
        replica: replica.to_string(),
        endpoint: "e".to_string(),
        variant: "v0".to_string(),
        invocations,
        reported_at,
    };
    metadata.report_replica_loads(&[load("a", 10, 1_000), load("b", 5, 1_000)]).await.expect("report");
    metadata.report_replica_loads(&[load("a", 25, 2_000)]).await.expect("report again");
    metadata.report_replica_loads(&[]).await.expect("nothing");
    assert_eq!(metadata.replica_loads("e", "v0", 0).await.expect("loads"), [load("a", 25, 2_000), load("b", 5, 1_000)]);
    assert_eq!(metadata.replica_loads("e", "v0", 1_500).await.expect("fresh"), [load("a", 25, 2_000)]);
    assert!(metadata.replica_loads("e", "other", 0).await.expect("none").is_empty());
    assert_eq!(metadata.prune_replica_loads(1_500).await.expect("prune"), 1);
    assert_eq!(metadata.replica_loads("e", "v0", 0).await.expect("loads"), [load("a", 25, 2_000)]);

    // Usage adds up per key.
    let usage = |principal: &str, seconds: f64, invocations: u64| UsageRecord {
        minute: 100,
        endpoint: "e".to_string(),
        variant: "v0".to_string(),
        principal: principal.to_string(),
        tags: "{\"team\":\"risk\"}".to_string(),
        instance_seconds: seconds,
        invocations,
    };
    metadata.add_usage(&[usage("", 60.0, 0), usage("alice", 0.0, 3)]).await.expect("usage");
    metadata.add_usage(&[usage("", 30.5, 0), usage("alice", 0.0, 4)]).await.expect("usage again");
    assert_eq!(metadata.usage_between(100, 101).await.expect("usage"), [usage("", 90.5, 0), usage("alice", 0.0, 7)]);
    assert!(metadata.usage_between(101, 200).await.expect("usage").is_empty());

    // Scaling policies: replaced in place, keeping their creation time.
    let policy = |endpoint: &str, variant: &str, max: u32| ScalingPolicyRecord {
        endpoint: endpoint.to_string(),
        variant: variant.to_string(),
        min_instances: 1,
        max_instances: max,
        target: 100.5,
        scale_out_cooldown: 60.0,
        scale_in_cooldown: 300.0,
        created_at: String::new(),
        updated_at: String::new(),
    };
    metadata.put_scaling_policy(&policy("e", "v1", 4)).await.expect("policy");
    metadata.put_scaling_policy(&policy("e", "v0", 4)).await.expect("policy");
    metadata.put_scaling_policy(&policy("f", "v0", 4)).await.expect("policy");
    let created = metadata.scaling_policies(Some("e")).await.expect("policies")[0].created_at.clone();
    metadata.put_scaling_policy(&policy("e", "v0", 8)).await.expect("replace");
    let policies = metadata.scaling_policies(Some("e")).await.expect("policies");
    assert_eq!(policies.iter().map(|policy| policy.variant.as_str()).collect::<Vec<_>>(), ["v0", "v1"]);
    assert_eq!((policies[0].max_instances, policies[0].target), (8, 100.5));
    assert_eq!(policies[0].created_at, created);
    assert_eq!(metadata.scaling_policies(None).await.expect("all").len(), 3);
    metadata.delete_scaling_policy("e", "v1").await.expect("delete");
    assert!(matches!(metadata.delete_scaling_policy("e", "v1").await, Err(StoreError::NotFound(_))));
    for (index, to) in [2, 3, 5].into_iter().enumerate() {
        let activity = ScalingActivityRecord {
            endpoint: "e".to_string(),
            variant: "v0".to_string(),
            time: now_rfc3339(),
            from_instances: if index == 0 { 1 } else { [2, 3][index - 1] },
            to_instances: to,
            cause: format!("step {index}"),
        };
        metadata.insert_scaling_activity(&activity).await.expect("activity");
    }
    let recent = metadata.recent_scaling_activities("e", 2).await.expect("recent");
    assert_eq!(recent.iter().map(|activity| activity.to_instances).collect::<Vec<_>>(), [3, 5]);

    // Façade documents and tags.
    let digest = format!("sha256:{}", "9".repeat(64));
    metadata.insert_model(&model("tagged", &digest)).await.expect("model");
    metadata.put_facade_document("sagemaker", TaggedKind::Model, "tagged", "t0", "{\"a\":1}").await.expect("doc");
    metadata.put_facade_document("sagemaker", TaggedKind::Model, "tagged", "t1", "{\"a\":2}").await.expect("again");
    let document = metadata.get_facade_document("sagemaker", TaggedKind::Model, "tagged").await.expect("get");
    let document = document.expect("a document");
    assert_eq!((document.resource_created_at.as_str(), document.document.as_str()), ("t1", "{\"a\":2}"));
    assert_eq!(metadata.get_facade_document("oip", TaggedKind::Model, "tagged").await.expect("get"), None);
    let add = BTreeMap::from([("stage".to_string(), "prod".to_string()), ("team".to_string(), "credit".to_string())]);
    let tags = metadata.change_tags(TaggedKind::Model, "tagged", &add, &[]).await.expect("tags");
    assert_eq!(tags, add);
    let tags = metadata.change_tags(TaggedKind::Model, "tagged", &BTreeMap::new(), &["stage".to_string()]).await;
    assert_eq!(tags.expect("tags"), BTreeMap::from([("team".to_string(), "credit".to_string())]));
    assert_eq!(metadata.get_model("tagged").await.expect("get").tags.len(), 1);
    let missing = metadata.change_tags(TaggedKind::Endpoint, "nope", &add, &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub async fn monitoring_tables_round_trip(metadata: &Metadata) {
    use riskserve_store::{MonitorBaselineRecord, MonitorReportRecord, OutcomeRecord};
    // Baselines: replaced whole.
    assert!(matches!(metadata.monitor_baseline("credit").await, Err(StoreError::NotFound(_))));
    for (data, rows) in [("{\"v\":1}", 10), ("{\"v\":2}", 20)] {
        let record =
            MonitorBaselineRecord { endpoint: "credit".into(), data: data.into(), rows, created_at: now_rfc3339() };
        metadata.put_monitor_baseline(&record).await.expect("baseline");
    }
    let baseline = metadata.monitor_baseline("credit").await.expect("read baseline");
    assert_eq!((baseline.data.as_str(), baseline.rows), ("{\"v\":2}", 20));

    // Schedules: one claim of a due run wins, the second (same due time) loses.
    metadata.put_monitor_schedule("credit", "{\"interval_minutes\":60}", 1_000).await.expect("schedule");
    assert!(metadata.claim_monitor_run("credit", 1_000, 61_000).await.expect("claim"));
    assert!(!metadata.claim_monitor_run("credit", 1_000, 61_000).await.expect("second claim"));
    let schedule = metadata.monitor_schedule("credit").await.expect("read schedule");
    assert_eq!((schedule.next_run_at, schedule.last_run_at), (61_000, Some(1_000)));
    assert_eq!(metadata.monitor_schedules().await.expect("all").len(), 1);

    // Outcomes: a later upload of a key replaces it; pages follow the key order and cover every row once.
    let outcome = |id: &str, row: u32, bad: bool, attribute: Option<&str>| OutcomeRecord {
        inference_id: id.into(),
        row_index: row,
        bad,
        attribute: attribute.map(str::to_string),
    };
    let many: Vec<OutcomeRecord> =
        (0..1_234).map(|i| outcome(&format!("id-{i:05}"), i % 3, i % 4 == 0, None)).collect();
    metadata.put_outcomes("credit", &many, 5).await.expect("outcomes");
    metadata.put_outcomes("credit", &[outcome("id-00001", 1, true, Some("f"))], 6).await.expect("replace");
    metadata.put_outcomes("other", &[outcome("id-00001", 1, false, None)], 6).await.expect("other endpoint");
    assert_eq!(metadata.outcome_count("credit").await.expect("count"), 1_234);
    let mut read = Vec::new();
    let mut after: Option<(String, u32)> = None;
    loop {
        let page = metadata
            .outcomes_page("credit", after.as_ref().map(|(id, row)| (id.as_str(), *row)), 500)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.inference_id.clone(), last.row_index));
        read.extend(page);
    }
    assert_eq!(read.len(), 1_234);
    assert_eq!(read[1], outcome("id-00001", 1, true, Some("f")));
    assert!(read.windows(2).all(|pair| pair[0].inference_id < pair[1].inference_id));

    // Reports: newest first, listed without their documents; the schedule names the last one.
    for (id, started) in [("r1", 100), ("r2", 200)] {
        let report = MonitorReportRecord {
            id: id.into(),
            endpoint: "credit".into(),
            started_at: started,
            finished_at: started + 5,
            status: "completed".into(),
            breaches: 2,
            data: "{\"ok\":true}".into(),
        };
        metadata.insert_monitor_report(&report).await.expect("report");
    }
    let listed = metadata.monitor_reports("credit", 10).await.expect("list");
    assert_eq!(listed.iter().map(|report| report.id.as_str()).collect::<Vec<_>>(), ["r2", "r1"]);
    assert!(listed[0].data.is_empty());
    assert_eq!(metadata.monitor_report("credit", "r1").await.expect("one").data, "{\"ok\":true}");
    assert!(matches!(metadata.monitor_report("other", "r1").await, Err(StoreError::NotFound(_))));
    assert_eq!(metadata.monitor_schedule("credit").await.expect("schedule").last_report.as_deref(), Some("r2"));

    assert!(metadata.delete_monitor_schedule("credit").await.expect("delete"));
    assert!(!metadata.delete_monitor_schedule("credit").await.expect("delete again"));
}

pub async fn console_sessions_round_trip(metadata: &Metadata) {
    use riskserve_store::ConsoleSessionRecord;
    let created_at = now_rfc3339();
    let session = |hash: &str, expires_at: i64| ConsoleSessionRecord {
        id_hash: hash.into(),
        user_id: "u-1".into(),
        csrf_token: "csrf".into(),
        created_at: created_at.clone(),
        expires_at,
    };
    metadata.insert_console_session(&session("live", 2_000)).await.expect("insert");
    metadata.insert_console_session(&session("old", 1_000)).await.expect("insert");
    assert!(metadata.insert_console_session(&session("live", 3_000)).await.is_err(), "one row per cookie");
    assert_eq!(metadata.console_session("live", 1_500).await.expect("read"), Some(session("live", 2_000)));
    assert_eq!(metadata.console_session("live", 2_000).await.expect("read"), None, "expired at its end");
    assert_eq!(metadata.console_session("old", 1_500).await.expect("read"), None);
    assert_eq!(metadata.delete_expired_console_sessions(1_500).await.expect("prune"), 1);
    assert!(metadata.delete_console_session("live").await.expect("sign out"));
    assert!(!metadata.delete_console_session("live").await.expect("again"));
}
