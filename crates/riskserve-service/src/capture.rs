//! Data capture off the hot path: the invocation thread decides by an exact counter whether to capture, and hands
//! the request and answer to a bounded queue (never waiting: a full queue counts a dropped record); a writer task
//! turns batches into SageMaker's JSON Lines capture records in the artifact store under
//! `{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use riskserve_store::{ArtifactStore, unix_to_rfc3339};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::resources::DataCapture;

/// Records waiting to be written, per endpoint: beyond this a record is dropped (and counted), never waited for.
pub const QUEUE_RECORDS: usize = 10_000;
/// The most records in one written file.
const BATCH_RECORDS: usize = 1_000;
/// How long a record waits for others before its batch is written.
const BATCH_SECONDS: f64 = 1.0;

/// What happened to an endpoint's captured records since the server started (kept across its deployments).
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Handed to the queue.
    pub captured: AtomicU64,
    /// Not captured because the queue was full.
    pub dropped: AtomicU64,
    /// Written to the artifact store.
    pub written: AtomicU64,
    /// Lost because the artifact store refused their file.
    pub failed: AtomicU64,
}

impl CaptureCounters {
    /// Captured, dropped, written and failed, in that order.
    pub fn counts(&self) -> [u64; 4] {
        [&self.captured, &self.dropped, &self.written, &self.failed].map(|count| count.load(Ordering::Relaxed))
    }
}

/// One captured invocation, as the invocation thread hands it over.
pub struct CaptureRecord {
    pub variant: Arc<str>,
    pub input: Option<(Bytes, String)>,
    pub output: Option<(Bytes, String)>,
    /// The caller's `X-Amzn-SageMaker-Inference-Id`, which outcomes are later joined on.
    pub inference_id: Option<String>,
    pub time: SystemTime,
}

/// An endpoint runtime's data capture: its settings, the sampling counter and the queue to its writer.
pub struct Capture {
    pub settings: DataCapture,
    seen: AtomicU64,
    queue: mpsc::Sender<CaptureRecord>,
    counters: Arc<CaptureCounters>,
}

impl Capture {
    /// Starts the writer of `endpoint`'s records; it ends (its task handle completes) once the capture is dropped
    /// and everything queued is written.
    pub fn start(
        endpoint: &str,
        settings: DataCapture,
        artifacts: ArtifactStore,
        counters: Arc<CaptureCounters>,
        replica: &str,
    ) -> (Capture, tokio::task::JoinHandle<()>) {
        let (queue, records) = mpsc::channel(QUEUE_RECORDS);
        let writer = Writer {
            endpoint: endpoint.to_string(),
            destination: settings.destination.clone(),
            replica: replica.to_string(),
            artifacts,
            counters: Arc::clone(&counters),
            files: 0,
        };
        let handle = tokio::spawn(writer.run(records));
        (Capture { settings, seen: AtomicU64::new(0), queue, counters }, handle)
    }

    /// A capture whose queue the caller drains (benchmarks, tests): no writer runs.
    pub fn detached(settings: DataCapture) -> (Capture, mpsc::Receiver<CaptureRecord>) {
        let (queue, records) = mpsc::channel(QUEUE_RECORDS);
        (Capture { settings, seen: AtomicU64::new(0), queue, counters: Arc::default() }, records)
    }

    /// Records captured, dropped, written and failed so far.
    pub fn counts(&self) -> [u64; 4] {
        self.counters.counts()
    }

    /// Whether this invocation is captured: exactly `sampling_percentage` of every 100 consecutive ones (the n-th
    /// is captured when ⌊n·p/100⌋ moves), with no randomness on the hot path.
    pub fn samples(&self) -> bool {
        let percentage = u64::from(self.settings.sampling_percentage.min(100));
        if percentage == 0 {
            return false;
        }
        let seen = self.seen.fetch_add(1, Ordering::Relaxed);
        (seen + 1) * percentage / 100 != seen * percentage / 100
    }

    /// Queues a record without waiting; a full queue drops it and counts the drop.
    pub fn offer(&self, record: CaptureRecord) {
        match self.queue.try_send(record) {
            Ok(()) => self.counters.captured.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counters.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Writes one endpoint's records in batches.
struct Writer {
    endpoint: String,
    destination: String,
    replica: String,
    artifacts: ArtifactStore,
    counters: Arc<CaptureCounters>,
    files: u64,
}

impl Writer {
    async fn run(mut self, mut records: mpsc::Receiver<CaptureRecord>) {
        let mut batch = Vec::with_capacity(BATCH_RECORDS);
        loop {
            let Some(first) = records.recv().await else { break };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(BATCH_SECONDS);
            while batch.len() < BATCH_RECORDS {
                match tokio::time::timeout_at(deadline, records.recv()).await {
                    Ok(Some(record)) => batch.push(record),
                    Ok(None) | Err(_) => break,
                }
            }
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    /// One file per variant and hour of the batch.
    async fn write(&mut self, batch: Vec<CaptureRecord>) {
        let mut files: BTreeMap<(Arc<str>, String), (String, u64)> = BTreeMap::new();
        for record in batch {
            let (seconds, millis) = unix_parts(record.time);
            let moment = unix_to_rfc3339(seconds, millis);
            let hour = format!("{}/{}/{}/{}", &moment[0..4], &moment[5..7], &moment[8..10], &moment[11..13]);
            let line = capture_line(&record, &moment);
            let file = files.entry((Arc::clone(&record.variant), hour)).or_default();
            file.0.push_str(&line);
            file.0.push('\n');
            file.1 += 1;
        }
        for ((variant, hour), (text, count)) in files {
            self.files += 1;
            let (seconds, millis) = unix_parts(SystemTime::now());
            let stamp = unix_to_rfc3339(seconds, millis);
            let key = format!(
                "{}/{}/{variant}/{hour}/{}-{}-{}.jsonl",
                self.destination,
                self.endpoint,
                stamp[14..23].replace([':', '.'], "-"),
                self.replica,
                self.files
            );
            match self.artifacts.put_object(&key, Bytes::from(text)).await {
                Ok(()) => self.counters.written.fetch_add(count, Ordering::Relaxed),
                Err(error) => {
                    crate::logging::event(&format!(
                        "cannot write {count} captured records of endpoint {:?} to {key}: {error}",
                        self.endpoint
                    ));
                    self.counters.failed.fetch_add(count, Ordering::Relaxed)
                }
            };
        }
    }
}

fn unix_parts(time: SystemTime) -> (i64, u32) {
    let elapsed = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    (i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX), elapsed.subsec_millis())
}

/// SageMaker's `encoding` of a body: CSV or JSON for text of those types, else BASE64.
fn encoded(body: &Bytes, content_type: &str, mode: &str) -> Value {
    let text = std::str::from_utf8(body).ok();
    let (encoding, data) = match text {
        Some(text) if content_type.contains("csv") => ("CSV", text.to_string()),
        Some(text) if content_type.contains("json") => ("JSON", text.to_string()),
        _ => ("BASE64", BASE64.encode(body)),
    };
    json!({"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding})
}

/// One record as SageMaker writes it: `captureData` with `endpointInput`/`endpointOutput`, `eventMetadata` with
/// `eventId`, `inferenceId` (when the caller gave one) and `inferenceTime`, and `eventVersion` "0".
pub fn capture_line(record: &CaptureRecord, time: &str) -> String {
    let mut capture = serde_json::Map::new();
    if let Some((body, content_type)) = &record.input {
        capture.insert("endpointInput".into(), encoded(body, content_type, "INPUT"));
    }
    if let Some((body, content_type)) = &record.output {
        capture.insert("endpointOutput".into(), encoded(body, content_type, "OUTPUT"));
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("eventId".into(), Value::String(event_id()));
    if let Some(id) = &record.inference_id {
        metadata.insert("inferenceId".into(), Value::String(id.clone()));
    }
    metadata.insert("inferenceTime".into(), Value::String(time.to_string()));
    json!({"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}).to_string()
}

/// A random (version 4) UUID.
fn event_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: still unique within the process.
        static FALLBACK: AtomicU64 = AtomicU64::new(1);
        bytes[..8].copy_from_slice(&FALLBACK.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        bytes[8..].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(percentage: u32) -> DataCapture {
        DataCapture {
            sampling_percentage: percentage,
            capture_input: true,
            capture_output: true,
            destination: "data-capture".into(),
        }
    }

    #[test]
    fn sampling_takes_exactly_the_percentage_of_every_hundred() {
        for percentage in [0, 1, 7, 33, 50, 99, 100] {
            let (queue, _records) = mpsc::channel(1);
            let capture =
                Capture { settings: settings(percentage), seen: AtomicU64::new(0), queue, counters: Arc::default() };
            for round in 0..3 {
                let taken = (0..100).filter(|_| capture.samples()).count();
                assert_eq!(taken, percentage as usize, "{percentage} % in round {round}");
            }
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (queue, _records) = mpsc::channel(2);
        let counters = Arc::new(CaptureCounters::default());
        let capture = Capture { settings: settings(100), seen: AtomicU64::new(0), queue, counters: counters.clone() };
        for _ in 0..5 {
            capture.offer(CaptureRecord {
                variant: "main".into(),
                input: None,
                output: None,
                inference_id: None,
                time: SystemTime::now(),
            });
        }
        assert_eq!(counters.captured.load(Ordering::Relaxed), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn records_have_sagemakers_shape() {
        let record = CaptureRecord {
            variant: "main".into(),
            input: Some((Bytes::from_static(b"1,2,3\n"), "text/csv".into())),
            output: Some((Bytes::from_static(b"{\"p\":0.5}"), "application/json".into())),
            inference_id: Some("loan-42".into()),
            time: SystemTime::now(),
        };
        let line: Value = serde_json::from_str(&capture_line(&record, "2026-12-04T23:00:00.000Z")).unwrap();
        assert_eq!(line["captureData"]["endpointInput"]["data"], "1,2,3\n");
        assert_eq!(line["captureData"]["endpointInput"]["encoding"], "CSV");
        assert_eq!(line["captureData"]["endpointInput"]["mode"], "INPUT");
        assert_eq!(line["captureData"]["endpointInput"]["observedContentType"], "text/csv");
        assert_eq!(line["captureData"]["endpointOutput"]["encoding"], "JSON");
        assert_eq!(line["captureData"]["endpointOutput"]["mode"], "OUTPUT");
        assert_eq!(line["eventMetadata"]["inferenceId"], "loan-42");
        assert_eq!(line["eventMetadata"]["inferenceTime"], "2026-12-04T23:00:00.000Z");
        assert_eq!(line["eventMetadata"]["eventId"].as_str().unwrap().len(), 36);
        assert_eq!(line["eventVersion"], "0");
        let binary = CaptureRecord { input: Some((Bytes::from_static(&[0xff, 0, 1]), "text/csv".into())), ..record };
        let line: Value = serde_json::from_str(&capture_line(&binary, "t")).unwrap();
        assert_eq!(line["captureData"]["endpointInput"]["encoding"], "BASE64");
        assert_eq!(line["captureData"]["endpointInput"]["data"], BASE64.encode([0xff, 0, 1]));
    }
}
