//! The audit trail: events hash-chained in order by one writer task, written in batches (control-plane
//! events at once, invocations within a quarter second), sealed at intervals with Ed25519-signed digests;
//! verification that names the first broken link; redaction of what must never be recorded.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use riskserve_store::{AuditHead, AuditRecord, AuditSeal, Metadata, now_rfc3339};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::error::ServiceError;
use crate::secrets::{MasterKey, random_bytes, write_private};

/// The hash before the first event and the seal before the first seal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How long an invocation event may wait before its batch is written (the loss bound after a crash).
const BATCH_WINDOW: Duration = Duration::from_millis(250);
/// Largest batch written in one transaction.
const MAX_BATCH: usize = 2048;

/// One event before it is chained (the writer assigns its sequence number and hashes).
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub time: String,
    pub request_id: String,
    pub principal: String,
    pub source: Option<String>,
    pub action: String,
    pub resource: String,
    /// A JSON object: secrets redacted, never a payload.
    pub parameters: serde_json::Value,
    /// `allowed`, `denied`, `failed` (allowed but the call failed) or `unauthenticated`.
    pub outcome: &'static str,
    pub status: u16,
    pub error_code: Option<String>,
    pub latency_us: u64,
    /// Written without waiting for a batch window (control-plane calls, failed authentications).
    pub urgent: bool,
}

/// The hash of an event: SHA-256 over a JSON array of every stored field but the hash itself.
pub fn event_hash(record: &AuditRecord) -> String {
    let fields = serde_json::json!([
        record.seq,
        record.time,
        record.request_id,
        record.principal,
        record.source,
        record.action,
        record.resource,
        record.parameters,
        record.outcome,
        record.status,
        record.error_code,
        record.latency_us,
        record.prev_hash,
    ]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// The message a seal signs.
pub fn seal_message(seal: &AuditSeal) -> String {
    format!("riskserve-audit-seal-v1\n{}\n{}\n{}\n{}", seal.time, seal.last_seq, seal.last_hash, seal.prev_seal)
}

enum Message {
    Event(Box<AuditEvent>),
    /// Write what is queued and seal; answer when done (tests, `verify`).
    Flush(oneshot::Sender<()>),
    /// Write, seal, close the database and stop; answer when done (a clean shutdown).
    Close(oneshot::Sender<()>),
}

/// The handle every request path uses: sending never waits on the database.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::UnboundedSender<Message>,
    /// Wakes the writer before its batch window ends (urgent events, flushes); invocation events never wake it,
    /// so the hot path costs one channel push.
    wake: std::sync::Arc<tokio::sync::Notify>,
    public_key: VerifyingKey,
    /// Whether this process seals at intervals (the leader of replicas; always on an embedded store).
    sealing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AuditLog {
    /// Loads (or creates, sealed with the master key) the signing key and starts the writer task.
    pub async fn start(
        metadata: Metadata,
        data_dir: &Path,
        master: &MasterKey,
        seal_interval: Duration,
    ) -> Result<AuditLog, ServiceError> {
        let shared = metadata.database_url();
        let key = signing_key(data_dir, master, shared.is_some())?;
        let public_key = key.verifying_key();
        let (sender, receiver) = mpsc::unbounded_channel();
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            metadata,
            key,
            seal_interval,
            sealing: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        let sealing = writer.sealing.clone();
        // The writer runs on its own thread and runtime, with its own connections: chaining and writing a batch
        // of thousands of events takes milliseconds of CPU that must not hold up the request workers.
        let database = data_dir.join("riskserve.db");
        let thread_wake = wake.clone();
        let (ready, started) = oneshot::channel();
        std::thread::Builder::new()
            .name("riskserve-audit".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(ServiceError::internal(format!("no audit runtime: {error}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let own = match &shared {
                        Some(url) => Metadata::open_url(url).await,
                        None => Metadata::open(&database).await,
                    };
                    match own {
                        Ok(own) => {
                            let _ = ready.send(Ok(()));
                            Writer { metadata: own, ..writer }.run(receiver, thread_wake).await;
                        }
                        Err(error) => {
                            let _ = ready.send(Err(error.into()));
                        }
                    }
                });
            })
            .map_err(|error| ServiceError::internal(format!("cannot start the audit writer: {error}")))?;
        started.await.map_err(|_| ServiceError::internal("the audit writer stopped at start"))??;
        Ok(AuditLog { sender, wake, public_key, sealing })
    }

    /// Queues an event; never blocks.
    pub fn record(&self, event: AuditEvent) {
        let urgent = event.urgent;
        // The writer only stops after shutdown, when losing an event is no longer possible to avoid.
        let _ = self.sender.send(Message::Event(Box::new(event)));
        if urgent {
            self.wake.notify_one();
        }
    }

    /// Writes everything queued so far and seals it.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            self.wake.notify_one();
            let _ = wait.await;
        }
    }

    /// Writes and seals everything queued, then stops the writer (a clean shutdown); later events are dropped.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Close(done)).is_ok() {
            self.wake.notify_one();
            let _ = wait.await;
        }
    }

    /// Seals at intervals, or not (replicas that do not lead leave it to the leader; flushes still seal).
    pub fn set_sealing(&self, sealing: bool) {
        self.sealing.store(sealing, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key.as_bytes())
    }
}

/// The Ed25519 key that signs seals: `<data_dir>/audit-signing.key`, sealed with the master key; replicas of a
/// shared store derive it from the master key they share instead, so that one public key verifies every seal.
fn signing_key(data_dir: &Path, master: &MasterKey, shared: bool) -> Result<SigningKey, ServiceError> {
    if shared {
        return Ok(SigningKey::from_bytes(&master.derive("riskserve-audit-signing-key-v1")));
    }
    let path = data_dir.join("audit-signing.key");
    let seed = if path.exists() {
        let sealed = std::fs::read_to_string(&path)
            .map_err(|error| ServiceError::internal(format!("cannot read {}: {error}", path.display())))?;
        master.open(sealed.trim(), "audit-signing-key")?
    } else {
        let seed = random_bytes::<32>()?;
        write_private(&path, master.seal(&seed, "audit-signing-key")?.as_bytes())?;
        seed.to_vec()
    };
    let seed: [u8; 32] =
        seed.try_into().map_err(|_| ServiceError::internal("the audit signing key is not 32 bytes"))?;
    Ok(SigningKey::from_bytes(&seed))
}

struct Writer {
    metadata: Metadata,
    key: SigningKey,
    seal_interval: Duration,
    sealing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Events kept for the next write when a write fails (the database is out of reach), before the oldest go.
const MAX_PENDING: usize = 100_000;

impl Writer {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Message>, wake: std::sync::Arc<tokio::sync::Notify>) {
        let mut batch: Vec<AuditEvent> = Vec::new();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut next_seal = tokio::time::Instant::now() + self.seal_interval;
        loop {
            // Sleep a batch window unless something urgent (a control-plane event, a flush) arrives first.
            tokio::select! {
                () = tokio::time::sleep(BATCH_WINDOW) => {}
                () = wake.notified() => {}
            }
            let mut seal_now =
                tokio::time::Instant::now() >= next_seal && self.sealing.load(std::sync::atomic::Ordering::Relaxed);
            let mut closed = false;
            loop {
                match receiver.try_recv() {
                    Ok(Message::Event(event)) => batch.push(*event),
                    Ok(Message::Flush(done)) => {
                        waiters.push(done);
                        seal_now = true;
                    }
                    Ok(Message::Close(done)) => {
                        waiters.push(done);
                        seal_now = true;
                        closed = true;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        seal_now = true;
                        break;
                    }
                }
                if batch.len() >= MAX_BATCH {
                    self.write(&mut batch, false).await;
                }
            }
            if !batch.is_empty() || seal_now {
                self.write(&mut batch, seal_now).await;
            }
            if seal_now {
                next_seal = tokio::time::Instant::now() + self.seal_interval;
            }
            if closed {
                self.metadata.close().await;
            }
            for waiter in waiters.drain(..) {
                let _ = waiter.send(());
            }
            if closed {
                return;
            }
        }
    }

    /// Chains `batch` onto the stored chain and writes it (and a seal over everything written, when asked and
    /// there is something new) in one write transaction, which reads the chain's head itself: replicas sharing a
    /// database extend one chain. The batch empties once written; after a failed write it is kept for the next.
    async fn write(&mut self, batch: &mut Vec<AuditEvent>, seal: bool) {
        let key = &self.key;
        let events = batch.clone();
        let written = self
            .metadata
            .append_audit_chained(move |head: AuditHead| {
                let mut seq = head.last_seq;
                let mut last_hash = head.last_hash.unwrap_or_else(|| GENESIS.to_string());
                let records: Vec<AuditRecord> = events
                    .into_iter()
                    .map(|event| {
                        seq += 1;
                        let record = chain(event, seq, std::mem::take(&mut last_hash));
                        last_hash = record.hash.clone();
                        record
                    })
                    .collect();
                let last_sealed = head.last_seal.as_ref().map_or(0, |seal| seal.last_seq);
                let prev_seal = head
                    .last_seal
                    .as_ref()
                    .map_or_else(|| GENESIS.to_string(), |seal| hex::encode(Sha256::digest(seal_message(seal))));
                let seal = (seal && seq > last_sealed).then(|| sign(key, seq, last_hash, prev_seal));
                (records, seal)
            })
            .await;
        match written {
            Ok(_) => batch.clear(),
            Err(error) => {
                eprintln!(
                    "riskserve: cannot write {} audit events yet (kept for the next write): {error}",
                    batch.len()
                );
                if batch.len() > MAX_PENDING {
                    let dropped = batch.len() - MAX_PENDING;
                    batch.drain(..dropped);
                    eprintln!("riskserve: {dropped} audit events dropped: the database stayed out of reach");
                }
            }
        }
    }
}

/// An event as the record that follows `prev_hash` at `seq`.
fn chain(event: AuditEvent, seq: i64, prev_hash: String) -> AuditRecord {
    let mut record = AuditRecord {
        seq,
        time: event.time,
        request_id: event.request_id,
        principal: event.principal,
        source: event.source,
        action: event.action,
        resource: event.resource,
        parameters: event.parameters.to_string(),
        outcome: event.outcome.to_string(),
        status: i64::from(event.status),
        error_code: event.error_code,
        latency_us: i64::try_from(event.latency_us).unwrap_or(i64::MAX),
        prev_hash,
        hash: String::new(),
    };
    record.hash = event_hash(&record);
    record
}

/// A seal over the chain up to `last_seq` (whose hash is `last_hash`), following the seal whose digest is
/// `prev_seal`, signed with `key`.
fn sign(key: &SigningKey, last_seq: i64, last_hash: String, prev_seal: String) -> AuditSeal {
    let mut seal = AuditSeal {
        id: 0,
        time: now_rfc3339(),
        last_seq,
        last_hash,
        prev_seal,
        public_key: hex::encode(key.verifying_key().as_bytes()),
        signature: String::new(),
    };
    seal.signature = hex::encode(key.sign(seal_message(&seal).as_bytes()).to_bytes());
    seal
}

// ---- verification ----

/// What `verify` found: the first broken link, if any.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReport {
    pub ok: bool,
    pub events: i64,
    pub seals: usize,
    /// The last event a valid seal covers.
    pub last_sealed_seq: i64,
    /// The first problem, naming the event or seal.
    pub problem: Option<String>,
    /// The sequence number of the first broken event, when the problem is an event.
    pub broken_seq: Option<i64>,
}

/// Checks the whole chain and every seal against `public_key` (hex; the trusted key).
pub async fn verify(metadata: &Metadata, public_key: &str) -> Result<VerifyReport, ServiceError> {
    let mut report =
        VerifyReport { ok: true, events: 0, seals: 0, last_sealed_seq: 0, problem: None, broken_seq: None };
    let fail = |report: &mut VerifyReport, seq: Option<i64>, message: String| {
        if report.ok {
            report.ok = false;
            report.problem = Some(message);
            report.broken_seq = seq;
        }
    };
    let mut expected = 1i64;
    let mut prev = GENESIS.to_string();
    let mut hashes: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    loop {
        let chunk = metadata.audit_range(expected - 1, 1000).await?;
        let Some(last) = chunk.last() else { break };
        let last_seq = last.seq;
        for record in chunk {
            if record.seq != expected {
                fail(
                    &mut report,
                    Some(expected),
                    format!(
                        "event {expected} is missing: the trail jumps from event {} to event {}",
                        expected - 1,
                        record.seq
                    ),
                );
                expected = record.seq;
            }
            if record.prev_hash != prev {
                fail(
                    &mut report,
                    Some(record.seq),
                    format!(
                        "event {}: its previous hash does not match event {} (deleted, inserted or reordered)",
                        record.seq,
                        record.seq - 1
                    ),
                );
            }
            if event_hash(&record) != record.hash {
                fail(
                    &mut report,
                    Some(record.seq),
                    format!("event {} was altered: its contents do not match its hash", record.seq),
                );
            }
            prev = record.hash.clone();
            hashes.insert(record.seq, record.hash);
            report.events += 1;
            expected += 1;
        }
        expected = expected.max(last_seq + 1);
    }
    let last_event = expected - 1;
    let seals = metadata.audit_seals().await?;
    if seals.is_empty() && public_key.is_empty() {
        return Ok(report);
    }
    let trusted = hex::decode(public_key)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| ServiceError::validation("the public key must be 64 hexadecimal digits of an Ed25519 key"))?;
    report.seals = seals.len();
    let mut prev_seal = GENESIS.to_string();
    for (index, seal) in seals.iter().enumerate() {
        let number = index + 1;
        let signature = hex::decode(&seal.signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
            .map(|bytes| Signature::from_bytes(&bytes));
        let signed =
            signature.is_some_and(|signature| trusted.verify(seal_message(seal).as_bytes(), &signature).is_ok());
        if !signed {
            fail(
                &mut report,
                None,
                format!(
                    "seal {number} (events up to {}): its signature does not verify with the public key",
                    seal.last_seq
                ),
            );
        } else if seal.prev_seal != prev_seal {
            fail(
                &mut report,
                None,
                format!("seal {number}: it does not follow seal {} (a seal was removed or reordered)", number - 1),
            );
        } else if seal.last_seq > last_event {
            fail(
                &mut report,
                Some(last_event + 1),
                format!(
                    "the trail was truncated: events {} to {} are missing (seal {number} covers events up to {}, the trail \
                     ends at event {last_event})",
                    last_event + 1,
                    seal.last_seq,
                    seal.last_seq
                ),
            );
        } else if hashes.get(&seal.last_seq) != Some(&seal.last_hash) {
            fail(
                &mut report,
                Some(seal.last_seq),
                format!("seal {number}: event {} does not have the hash the seal signed", seal.last_seq),
            );
        } else if report.ok {
            report.last_sealed_seq = seal.last_seq;
        }
        prev_seal = hex::encode(Sha256::digest(seal_message(seal)));
    }
    Ok(report)
}

/// Verifies the trail of a data directory without a server (a backup, or a stopped server). The trusted key is
/// `public_key` (hex); without it, the key recorded in the first seal, which proves the chain unchanged since it
/// was sealed only if the first seal itself is trusted.
pub async fn verify_data_dir(data_dir: &Path, public_key: Option<&str>) -> Result<VerifyReport, ServiceError> {
    if !data_dir.join("riskserve.db").exists() {
        return Err(ServiceError::NotFound(format!("{} holds no riskserve.db", data_dir.display())));
    }
    let metadata = Metadata::open(&data_dir.join("riskserve.db")).await?;
    let key = match public_key {
        Some(key) => key.to_string(),
        None => match metadata.audit_seals().await?.first() {
            Some(seal) => seal.public_key.clone(),
            None => String::new(),
        },
    };
    let report = verify(&metadata, &key).await;
    metadata.close().await;
    report
}

/// Query values whose names suggest a secret are replaced.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if ["secret", "token", "password", "signature", "credential"]
                    .iter()
                    .any(|word| name.to_ascii_lowercase().contains(word)) =>
            {
                format!("{name}=<redacted>")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}
