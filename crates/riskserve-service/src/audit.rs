//! The audit trail: events hash-chained in order by one writer task, written in batches (control-plane
//! events at once, invocations within a quarter second), sealed at intervals with Ed25519-signed digests;
//! verification that names the first broken link; redaction of what must never be recorded.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use riskserve_store::{AuditRecord, AuditSeal, Metadata, now_rfc3339};
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
}

impl AuditLog {
    /// Loads (or creates, sealed with the master key) the signing key and starts the writer task.
    pub async fn start(
        metadata: Metadata,
        data_dir: &Path,
        master: &MasterKey,
        seal_interval: Duration,
    ) -> Result<AuditLog, ServiceError> {
        let key = signing_key(data_dir, master)?;
        let public_key = key.verifying_key();
        let tail = metadata.audit_tail().await?;
        let seals = metadata.audit_seals().await?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            metadata,
            key,
            next_seq: tail.as_ref().map_or(1, |record| record.seq + 1),
            last_hash: tail.map_or_else(|| GENESIS.to_string(), |record| record.hash),
            last_sealed_seq: seals.last().map_or(0, |seal| seal.last_seq),
            prev_seal: seals
                .last()
                .map_or_else(|| GENESIS.to_string(), |seal| hex::encode(Sha256::digest(seal_message(seal)))),
            seal_interval,
        };
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
                    match Metadata::open(&database).await {
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
        Ok(AuditLog { sender, wake, public_key })
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

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key.as_bytes())
    }
}

/// The Ed25519 key that signs seals: `<data_dir>/audit-signing.key`, sealed with the master key.
fn signing_key(data_dir: &Path, master: &MasterKey) -> Result<SigningKey, ServiceError> {
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
    next_seq: i64,
    last_hash: String,
    last_sealed_seq: i64,
    prev_seal: String,
    seal_interval: Duration,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Message>, wake: std::sync::Arc<tokio::sync::Notify>) {
        let mut batch: Vec<AuditRecord> = Vec::new();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut next_seal = tokio::time::Instant::now() + self.seal_interval;
        loop {
            // Sleep a batch window unless something urgent (a control-plane event, a flush) arrives first.
            tokio::select! {
                () = tokio::time::sleep(BATCH_WINDOW) => {}
                () = wake.notified() => {}
            }
            let mut seal_now = tokio::time::Instant::now() >= next_seal;
            let mut closed = false;
            loop {
                match receiver.try_recv() {
                    Ok(Message::Event(event)) => batch.push(self.chain(*event)),
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

    /// Writes `batch` (and a seal over everything written, when asked and there is something new) in one
    /// transaction, then empties it.
    async fn write(&mut self, batch: &mut Vec<AuditRecord>, seal: bool) {
        let seal = if seal && self.next_seq - 1 > self.last_sealed_seq { self.seal() } else { None };
        if batch.is_empty() && seal.is_none() {
            return;
        }
        match self.metadata.append_audit(batch, seal.as_ref()).await {
            // The chain in memory already moved on; a restart continues from what is stored.
            Err(error) => eprintln!("riskserve: cannot write {} audit events: {error}", batch.len()),
            Ok(()) => {
                if let Some(seal) = &seal {
                    self.last_sealed_seq = seal.last_seq;
                    self.prev_seal = hex::encode(Sha256::digest(seal_message(seal)));
                }
            }
        }
        batch.clear();
    }

    fn chain(&mut self, event: AuditEvent) -> AuditRecord {
        let mut record = AuditRecord {
            seq: self.next_seq,
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
            prev_hash: std::mem::take(&mut self.last_hash),
            hash: String::new(),
        };
        record.hash = event_hash(&record);
        self.last_hash = record.hash.clone();
        self.next_seq += 1;
        record
    }

    fn seal(&self) -> Option<AuditSeal> {
        let mut seal = AuditSeal {
            id: 0,
            time: now_rfc3339(),
            last_seq: self.next_seq - 1,
            last_hash: self.last_hash.clone(),
            prev_seal: self.prev_seal.clone(),
            public_key: hex::encode(self.key.verifying_key().as_bytes()),
            signature: String::new(),
        };
        seal.signature = hex::encode(self.key.sign(seal_message(&seal).as_bytes()).to_bytes());
        Some(seal)
    }
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
