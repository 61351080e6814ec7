//! The operations side's state in memory: metrics, history, usage meter, scaling policies and the autoscaler's
//! control state, with the pacing of the background tasks (`service/operations.rs` runs them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use riskserve_store::ScalingPolicyRecord;
use tokio::sync::watch;

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

/// Everything the operations side keeps in memory.
pub struct Operations {
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
}

impl Operations {
    pub fn new(config: &ServerConfig) -> Operations {
        Operations {
            metrics: Metrics::default(),
            history: History::default(),
            meter: Meter::new(Arc::new(SystemClock)),
            settings: config.autoscaling.clone(),
            prices: config.prices.clone(),
            policies: Mutex::new(Vec::new()),
            control: Mutex::new(ControlState::new()),
            scaling: tokio::sync::Mutex::new(()),
            stop: watch::channel(false).0,
        }
    }

    pub(crate) fn policies(&self) -> std::sync::MutexGuard<'_, Vec<ScalingPolicyRecord>> {
        self.policies.lock().unwrap_or_else(|poison| poison.into_inner())
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
