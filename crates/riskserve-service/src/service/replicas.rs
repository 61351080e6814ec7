//! Replicas that share a PostgreSQL store: each serves every endpoint, following committed changes from the
//! database's change feed (within milliseconds) and a full reconciliation every few seconds (which heals a missed
//! notification); one leader, chosen by an advisory lock, runs the autoscaler, audit sealing and history upkeep, and
//! finishes deployments that a crashed replica left behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use riskserve_store::{ChangeFeed, EndpointStatus, Leadership, StoreError, VariantRecord};

use super::Service;
use crate::logging::event;
use crate::operations::pause;
use crate::runtime::EndpointRuntime;

/// Seconds between two full reconciliations: the bound on how long a missed notification stays unseen.
pub const RECONCILE_SECONDS: f64 = 5.0;
/// Seconds between two leadership checks: the bound (plus PostgreSQL noticing a dead connection, immediate for a
/// killed process) on how long the replicas go without a leader.
pub const LEADERSHIP_SECONDS: f64 = 2.0;
/// Seconds after its last change that a deployment still in progress counts as abandoned by a crashed replica, and
/// the leader runs it again (deployments are idempotent by generation).
pub const ABANDONED_DEPLOYMENT_SECONDS: i64 = 60;

/// Whether two variant lists serve the same models under the same names (so only weights and counts differ).
fn same_variants(runtime: &EndpointRuntime, wanted: &[VariantRecord]) -> bool {
    runtime.variants.len() == wanted.len()
        && runtime
            .variants
            .iter()
            .zip(wanted)
            .all(|(serving, wanted)| serving.name == wanted.name && serving.model() == wanted.model)
}

impl Service {
    /// Whether this replica leads (always, on an embedded store).
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::Relaxed)
    }

    /// Starts following the shared store (nothing to do on an embedded one).
    pub(crate) fn start_replication(&self) {
        let Some(url) = self.store().metadata.database_url() else { return };
        self.inner.leader.store(false, Ordering::Relaxed);
        let follower = self.clone();
        let feed_url = url.clone();
        let mut stop = self.operations().stop.subscribe();
        tokio::spawn(async move {
            loop {
                match ChangeFeed::connect(&feed_url).await {
                    Ok(mut feed) => loop {
                        tokio::select! {
                            next = feed.next() => match next {
                                Ok(Some(change)) => follower.apply_change(&change.table, &change.name).await,
                                // Notifications may have been lost with the connection: look at everything.
                                Ok(None) => follower.reconcile_all().await,
                                Err(error) => {
                                    event(&format!("the change feed stopped: {error}"));
                                    break;
                                }
                            },
                            _ = stop.changed() => return,
                        }
                    },
                    Err(error) => event(&format!("cannot follow the store's changes: {error}")),
                }
                if !pause(&mut stop, 1.0).await {
                    return;
                }
            }
        });
        let reconciler = self.clone();
        let mut stop = self.operations().stop.subscribe();
        tokio::spawn(async move {
            while pause(&mut stop, RECONCILE_SECONDS).await {
                reconciler.reconcile_all().await;
            }
        });
        let candidate = self.clone();
        let mut stop = self.operations().stop.subscribe();
        tokio::spawn(async move {
            let mut leadership = Leadership::new(&url);
            loop {
                let leads = leadership.check().await;
                let led = candidate.inner.leader.swap(leads, Ordering::Relaxed);
                if leads != led {
                    event(if leads { "this replica leads now" } else { "this replica no longer leads" });
                    candidate.security().audit().set_sealing(leads);
                }
                if leads {
                    candidate.finish_abandoned_deployments().await;
                }
                if !pause(&mut stop, LEADERSHIP_SECONDS).await {
                    leadership.resign().await;
                    return;
                }
            }
        });
    }

    /// Follows one committed change.
    async fn apply_change(&self, table: &str, name: &str) {
        let result = match table {
            "endpoints" => self.follow(name).await,
            "users" | "access_keys" | "tokens" | "policies" | "identities" => self.follow_identities().await,
            "scaling_policies" => self.reload_scaling_policies().await,
            // Models and configs are read when a deployment needs them; tags may have changed: decide afresh.
            _ => {
                self.security().invalidate();
                Ok(())
            }
        };
        if let Err(error) = result {
            event(&format!("cannot follow a change of {table} {name:?}: {error}"));
        }
    }

    /// Brings every endpoint's runtime in line with the store (the fallback for missed notifications).
    pub(crate) async fn reconcile_all(&self) {
        let records = match self.store().metadata.all_endpoints().await {
            Ok(records) => records,
            Err(error) => {
                event(&format!("cannot reconcile with the store: {error}"));
                return;
            }
        };
        // The listing only names the endpoints to look at: each one is read again under the switch (see
        // `follow`), since a deployment of this replica may have moved on since the listing was read.
        let mut names: Vec<String> = records.into_iter().map(|record| record.name).collect();
        for serving in self.runtimes().all() {
            if !names.contains(&serving.name) {
                names.push(serving.name.clone());
            }
        }
        for name in names {
            if let Err(error) = self.follow(&name).await {
                event(&format!("cannot reconcile endpoint {name:?}: {error}"));
            }
        }
        if let Err(error) = self.follow_identities().await {
            event(&format!("cannot reload identities: {error}"));
        }
        if let Err(error) = self.reload_scaling_policies().await {
            event(&format!("cannot reload scaling policies: {error}"));
        }
    }

    /// Serves what the stored endpoint says serves now (its live variants), or stops serving it. The record is read
    /// under the switch that this replica's deployments hold from committing an outcome to installing its runtime,
    /// so a record read earlier (a notification, a listing) can never undo a deployment that finished since.
    async fn follow(&self, name: &str) -> Result<(), crate::error::ServiceError> {
        let _switch = self.inner.switch.lock().await;
        let record = match self.store().metadata.get_endpoint(name).await {
            Ok(record) => Some(record),
            Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        };
        let wanted = record.as_ref().and_then(|record| match record.status {
            EndpointStatus::InService | EndpointStatus::Updating | EndpointStatus::RollingBack => {
                record.live_variants.clone()
            }
            EndpointStatus::Creating | EndpointStatus::Deleting | EndpointStatus::Failed => None,
        });
        let serving = self.runtimes().get(name);
        let Some(wanted) = wanted else {
            if serving.is_some() {
                self.runtimes().remove(name);
            }
            return Ok(());
        };
        let live_config = record.as_ref().and_then(|record| record.live_config.as_deref());
        // Configs never change: the same config and models mean only weights and counts can differ.
        if let Some(serving) = serving.as_deref()
            && serving.config.as_deref() == live_config
            && same_variants(serving, &wanted)
        {
            // The same models: counts and weights change in place.
            for (variant, wanted) in serving.variants.iter().zip(&wanted) {
                if variant.instances() != wanted.instances as usize
                    && let Err(error) = variant.set_instances(wanted.instances)
                {
                    event(&format!("cannot run {} instances of {name:?}/{}: {error}", wanted.instances, wanted.name));
                }
            }
            let weights: Vec<f64> = wanted.iter().map(|variant| variant.weight).collect();
            if serving.weights() != weights.as_slice() {
                self.runtimes().install(Arc::new(serving.with_weights(weights)));
            }
            return Ok(());
        }
        let capture = self.capture_of_config(live_config).await;
        match self.build_runtime(name, &wanted, live_config, capture).await {
            Ok(runtime) => self.runtimes().install(runtime),
            Err(reason) => event(&format!("cannot serve endpoint {name:?} as the store says it serves: {reason}")),
        }
        Ok(())
    }

    /// Deployments and deletions left in progress for longer than [`ABANDONED_DEPLOYMENT_SECONDS`] (their replica
    /// crashed) run again, as recovery runs them at start.
    async fn finish_abandoned_deployments(&self) {
        let Ok(records) = self.store().metadata.all_endpoints().await else { return };
        let now = crate::history::unix_seconds_now() as i64;
        for record in records {
            let transitional = matches!(
                record.status,
                EndpointStatus::Creating
                    | EndpointStatus::Updating
                    | EndpointStatus::RollingBack
                    | EndpointStatus::Deleting
            );
            let changed = crate::history::parse_time(&record.updated_at, "updated_at").unwrap_or(now);
            if transitional && now - changed > ABANDONED_DEPLOYMENT_SECONDS {
                event(&format!(
                    "finishing the {} of endpoint {:?} that another replica left",
                    record.status.as_str(),
                    record.name
                ));
                if let Err(error) = self.recover_one(record).await {
                    event(&format!("cannot finish it: {error}"));
                }
            }
        }
    }
}
