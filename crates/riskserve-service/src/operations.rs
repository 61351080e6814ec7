//! The operations side's state in memory: metrics, history, usage meter, scaling policies and the autoscaler's
//! control state, with the pacing of the background tasks (`service/operations.rs` runs them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use riskserve_store::ScalingPolicyRecord;
use tokio::sync::watch;

use crate::capture::CaptureCounters;
use crate::config::ServerConfig;
use crate::history::History;
use crate::metrics::Metrics;
use crate::scaling::{AutoscalingSettings, ControlState, ScalingPolicy};
use crate::usage::{Meter, PriceTable, SystemClock};

/// How many scaling activities an endpoint's description shows.
pub(crate) const ACTIVITIES_SHOWN: u32 = 20;
/// Seconds between two readings of the history and the usage meter.
pub(crate) const SAMPLE_SECONDS: f64 = 1.0;
/// Readings between two writes of metered usage to the store.
pub(crate) const READINGS_PER_FLUSH: u32 = 10;

/// Readings between two exchanges of the metric history with the other replicas (on a shared store): this
/// replica writes its open minute and reads theirs, so a query sums them within about twice this many seconds.
pub(crate) const READINGS_PER_HISTORY_READ: u32 = 5;
/// Minutes back that a read of the other replicas' history covers: a replica writes a minute within seconds of
/// its end, so two minutes catch every row written since the last read.
pub(crate) const HISTORY_READ_MINUTES: i64 = 2;

/// A name for this server process, unique among the replicas sharing a store: the host's name (a pod's name on
/// Kubernetes), the process id and random bits, so that a restarted replica never writes over its earlier rows.
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')).collect())
        .filter(|name: &String| !name.is_empty())
        .unwrap_or_else(|| "riskserve".to_string());
    let mut random = [0u8; 4];
    // Without randomness the process id still tells apart replicas on one host and restarts of one.
    let _ = getrandom::fill(&mut random);
    format!("{host}-{}-{}", std::process::id(), hex::encode(random))
}

/// Everything the operations side keeps in memory.
pub struct Operations {
    /// This server's name among replicas ([`replica_name`]).
    pub replica: String,
    pub metrics: Metrics,
    pub history: History,
    pub meter: Meter,
    pub(crate) settings: AutoscalingSettings,
    pub(crate) prices: PriceTable,
    /// The scaling policies, as stored (the controller reads them every tick).
    pub(crate) policies: Mutex<Vec<ScalingPolicyRecord>>,
    pub(crate) control: Mutex<ControlState>,
    /// Serialises scaling decisions with policy changes.
    pub(crate) scaling: tokio::sync::Mutex<()>,
    pub(crate) stop: watch::Sender<bool>,
    /// Data capture counters by endpoint, kept across its deployments.
    pub(crate) captures: Mutex<std::collections::BTreeMap<String, Arc<CaptureCounters>>>,
    /// The gauges of each endpoint's latest monitoring run on this replica.
    pub(crate) monitors: Mutex<std::collections::BTreeMap<String, crate::metrics::MonitorGauges>>,
    /// The data capture writers still running (awaited at shutdown, so queued records are written).
    pub(crate) capture_writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Operations {
    pub fn new(config: &ServerConfig) -> Operations {
        let replica = replica_name();
        Operations {
            history: History::new(&replica),
            replica,
            metrics: Metrics::default(),
            meter: Meter::new(Arc::new(SystemClock)),
            settings: config.autoscaling.clone(),
            prices: config.prices.clone(),
            policies: Mutex::new(Vec::new()),
            control: Mutex::new(ControlState::new()),
            scaling: tokio::sync::Mutex::new(()),
            stop: watch::channel(false).0,
            captures: Mutex::default(),
            monitors: Mutex::default(),
            capture_writers: Mutex::default(),
        }
    }

    pub(crate) fn policies(&self) -> std::sync::MutexGuard<'_, Vec<ScalingPolicyRecord>> {
        self.policies.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The capture counters of `endpoint`, created at its first capture.
    pub(crate) fn capture_counters(&self, endpoint: &str) -> Arc<CaptureCounters> {
        let mut captures = self.captures.lock().unwrap_or_else(|poison| poison.into_inner());
        Arc::clone(captures.entry(endpoint.to_string()).or_default())
    }

    /// Keeps a capture writer's handle (forgetting those that finished).
    pub(crate) fn keep_capture_writer(&self, handle: tokio::task::JoinHandle<()>) {
        let mut writers = self.capture_writers.lock().unwrap_or_else(|poison| poison.into_inner());
        writers.retain(|writer| !writer.is_finished());
        writers.push(handle);
    }

    /// Waits (at most `limit`) for every capture writer to write what it holds; call once the runtimes are gone.
    pub(crate) async fn finish_capture_writers(&self, limit: Duration) {
        let writers = std::mem::take(&mut *self.capture_writers.lock().unwrap_or_else(|poison| poison.into_inner()));
        let _ = tokio::time::timeout(limit, async {
            for writer in writers {
                let _ = writer.await;
            }
        })
        .await;
    }

    pub(crate) fn control(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.control.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

pub(crate) fn policy_of(record: &ScalingPolicyRecord) -> ScalingPolicy {
    ScalingPolicy {
        endpoint: record.endpoint.clone(),
        variant: record.variant.clone(),
        min_instances: record.min_instances,
        max_instances: record.max_instances,
        target: record.target,
        scale_out_cooldown: record.scale_out_cooldown,
        scale_in_cooldown: record.scale_in_cooldown,
        created_at: record.created_at.clone(),
        updated_at: record.updated_at.clone(),
    }
}

pub(crate) fn duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

/// Sleeps `seconds`, or less when the server stops; false once it stops.
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, seconds: f64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration(seconds)) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}
