//! Operations use cases: the background tasks (history sampling, metering, the autoscaler's ticks), the
//! Prometheus exposition, endpoint statistics, scaling policies and the cost report.

use std::time::Instant;

use riskserve_store::{ReplicaLoad, ScalingActivityRecord, ScalingPolicyRecord, StoreError, now_rfc3339};

use super::{Service, unix_millis};
use crate::audit::AuditEvent;
use crate::caller::Resource;
use crate::error::ServiceError;
use crate::history::{MetricQuery, MetricSeries, RETENTION_MINUTES};
use crate::metrics::{ServerFigures, VariantGauges, exposition};
use crate::operations::{
    ACTIVITIES_SHOWN, HISTORY_READ_MINUTES, READINGS_PER_FLUSH, READINGS_PER_HISTORY_READ, SAMPLE_SECONDS, duration,
    pause, policy_of,
};
use crate::resources::List;
use crate::scaling::{Policy, PutScalingPolicy, ScalingActivity, ScalingPolicy, decide};
use crate::usage::{CostQuery, CostReport, PrincipalCount, ServingVariant, cost_report, report_window};

/// Milliseconds after which a replica's load report is removed (the replica is gone, or serves the variant no more).
const STALE_REPORT_MILLIS: i64 = 10 * 60 * 1000;

/// How recent a replica's last load report must be for the replica to count as live: three ticks, at least 3 s.
fn live_report_millis(interval_seconds: f64) -> i64 {
    ((interval_seconds * 3.0).max(3.0) * 1000.0) as i64
}

impl Service {
    /// Reads history and policies back and starts the background tasks (at start, after recovery).
    pub(crate) async fn start_operations(&self) -> Result<(), ServiceError> {
        let operations = self.operations();
        operations.history.load(self.store(), operations.meter.now(), self.shares_store()).await?;
        // Policies of endpoints deleted while the server was down (a delete completed by recovery) go too.
        let endpoints: std::collections::HashSet<String> =
            self.store().metadata.all_endpoints().await?.into_iter().map(|endpoint| endpoint.name).collect();
        for policy in self.store().metadata.scaling_policies(None).await? {
            if !endpoints.contains(&policy.endpoint) {
                self.store().metadata.delete_scaling_policy(&policy.endpoint, &policy.variant).await?;
            }
        }
        *operations.policies() = self.store().metadata.scaling_policies(None).await?;
        self.read_meters();
        let sampler = self.clone();
        let mut stop = operations.stop.subscribe();
        tokio::spawn(async move {
            let mut readings = 0u32;
            while pause(&mut stop, SAMPLE_SECONDS).await {
                sampler.sample_history().await;
                sampler.read_meters();
                readings += 1;
                if readings.is_multiple_of(READINGS_PER_FLUSH)
                    && let Err(error) = sampler.operations().meter.flush(sampler.store()).await
                {
                    tracing::warn!("cannot store metered usage: {error}");
                }
                if sampler.shares_store() && readings.is_multiple_of(READINGS_PER_HISTORY_READ) {
                    sampler.read_other_replicas_history().await;
                }
            }
        });
        let scaler = self.clone();
        let mut stop = operations.stop.subscribe();
        let interval = operations.settings.interval_seconds;
        tokio::spawn(async move {
            while pause(&mut stop, interval).await {
                scaler.scale_tick().await;
            }
        });
        Ok(())
    }

    /// Stops the background tasks and stores what they held (at shutdown, before the store closes).
    pub(crate) async fn stop_operations(&self) {
        let operations = self.operations();
        operations.stop.send_replace(true);
        self.sample_history().await;
        let partial = operations.history.finish(&self.serving_variants(), operations.meter.now());
        if let Err(error) = self.store().metadata.put_metric_minutes(&partial).await {
            crate::logging::event(&format!("cannot store the metric history at shutdown: {error}"));
        }
        self.read_meters();
        if let Err(error) = operations.meter.flush(self.store()).await {
            crate::logging::event(&format!("cannot store metered usage at shutdown: {error}"));
        }
    }

    /// Forgets a deleted endpoint: its scaling policies and live measures go (its history and
    /// metered usage stay for reports).
    pub(crate) async fn endpoint_deleted(&self, endpoint: &str) {
        let operations = self.operations();
        let _serial = operations.scaling.lock().await;
        let policies: Vec<ScalingPolicyRecord> =
            operations.policies().iter().filter(|policy| policy.endpoint == endpoint).cloned().collect();
        for policy in policies {
            if let Err(error) = self.store().metadata.delete_scaling_policy(endpoint, &policy.variant).await {
                tracing::warn!("cannot delete the scaling policy of deleted endpoint {endpoint:?}: {error}");
            }
        }
        operations.policies().retain(|policy| policy.endpoint != endpoint);
        operations.control().retain(|(name, _), _| name != endpoint);
        // The meter and the history take their last reading of it first.
        self.read_meters();
        self.sample_history().await;
        operations.metrics.remove_endpoint(endpoint);
        self.stop_schedule_of_deleted(endpoint).await;
    }

    /// Every serving variant with its instance count.
    fn serving_variants(&self) -> Vec<(String, String, usize)> {
        self.runtimes()
            .all()
            .iter()
            .flat_map(|endpoint| {
                endpoint
                    .variants
                    .iter()
                    .map(|variant| (endpoint.name.clone(), variant.name.clone(), variant.instances()))
            })
            .collect()
    }

    async fn sample_history(&self) {
        let operations = self.operations();
        let serving = self.serving_variants();
        let finished = operations.history.sample(&operations.metrics, &serving, operations.meter.now());
        if finished.is_empty() {
            return;
        }
        let oldest = finished.iter().map(|row| row.minute).min().unwrap_or(0) - RETENTION_MINUTES;
        let metadata = &self.store().metadata;
        if let Err(error) = metadata.put_metric_minutes(&finished).await {
            tracing::warn!("cannot store the metric history: {error}");
        }
        if self.is_leader()
            && let Err(error) = metadata.prune_metric_minutes(oldest).await
        {
            tracing::warn!("cannot prune the metric history: {error}");
        }
    }

    /// One reading of the usage meter: instance counts now, invocations per principal so far.
    fn read_meters(&self) {
        let operations = self.operations();
        let serving: Vec<ServingVariant> = self
            .serving_variants()
            .into_iter()
            .map(|(endpoint, variant, instances)| ServingVariant { endpoint, variant, instances })
            .collect();
        let principals: Vec<PrincipalCount> = operations
            .metrics
            .all()
            .into_iter()
            .flat_map(|(endpoint, variant, measures)| {
                measures.principal_counts().into_iter().map(move |(principal, invocations)| PrincipalCount {
                    endpoint: endpoint.clone(),
                    variant: variant.clone(),
                    principal,
                    invocations,
                })
            })
            .collect();
        operations.meter.read(&serving, &principals);
    }

    /// One decision per policed variant (see `scaling` for the algorithm).
    /// Whether other replicas may share this server's store (a database server rather than an embedded file).
    fn shares_store(&self) -> bool {
        self.store().metadata.is_shared()
    }

    /// Writes this replica's open minute and reads what the other replicas wrote of the last minutes into the
    /// history, so that queries sum them.
    async fn read_other_replicas_history(&self) {
        let history = &self.operations().history;
        if let Err(error) = self.store().metadata.put_metric_minutes(&history.open_rows()).await {
            tracing::warn!("cannot store the open minute of the metric history: {error}");
        }
        let since = (self.operations().meter.now() / 60.0).floor() as i64 - HISTORY_READ_MINUTES;
        if let Err(error) = history.read_others(self.store(), since, true).await {
            tracing::warn!("cannot read the other replicas' metric history: {error}");
        }
    }

    /// Stores this replica's invocation counts of every serving variant, for the leader's autoscaler.
    async fn report_loads(&self) {
        let operations = self.operations();
        let reported_at = unix_millis();
        let loads: Vec<ReplicaLoad> = self
            .serving_variants()
            .into_iter()
            .map(|(endpoint, variant, _)| ReplicaLoad {
                replica: operations.replica.clone(),
                invocations: operations.metrics.variant(&endpoint, &variant).invocations(),
                endpoint,
                variant,
                reported_at,
            })
            .collect();
        if let Err(error) = self.store().metadata.report_replica_loads(&loads).await {
            tracing::warn!("cannot report this replica's load: {error}");
        }
    }

    /// A variant's invocations per minute for the autoscaler: on an embedded store this server's own rate; on a
    /// shared one the mean over the live replicas (each runs the variant's instance count, so the rate per
    /// instance is the same either way), each replica's rate measured from its successive reports. `None` while
    /// no window spans enough time yet, or when the reports cannot be read.
    async fn variant_rate(&self, endpoint: &str, variant: &str, now: Instant) -> Option<f64> {
        let operations = self.operations();
        let window = duration(operations.settings.window_seconds);
        let key = (endpoint.to_string(), variant.to_string());
        if !self.shares_store() {
            let count = operations.metrics.variant(endpoint, variant).invocations();
            return operations.control().entry(key).or_default().window.rate(now, count, window);
        }
        let live_since = unix_millis() - live_report_millis(operations.settings.interval_seconds);
        let loads = match self.store().metadata.replica_loads(endpoint, variant, live_since).await {
            Ok(loads) => loads,
            Err(error) => {
                tracing::warn!(endpoint, variant, "cannot read the replicas' load: {error}");
                return None;
            }
        };
        let mut control = operations.control();
        let state = control.entry(key).or_default();
        state.replicas.retain(|replica, _| loads.iter().any(|load| load.replica == *replica));
        let rates: Vec<f64> = loads
            .iter()
            .filter_map(|load| {
                state.replicas.entry(load.replica.clone()).or_default().rate(now, load.invocations, window)
            })
            .collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
    }

    async fn scale_tick(&self) {
        if self.shares_store() {
            self.report_loads().await;
        }
        // Replicas scale as one: the leader decides, the others follow the stored counts.
        if !self.is_leader() {
            return;
        }
        let operations = self.operations();
        let _serial = operations.scaling.lock().await;
        let policies = operations.policies().clone();
        if self.shares_store() {
            let before = unix_millis() - STALE_REPORT_MILLIS;
            if let Err(error) = self.store().metadata.prune_replica_loads(before).await {
                tracing::warn!("cannot prune the replicas' load reports: {error}");
            }
        }
        for record in policies {
            let Some(current) = self.serving_instances(&record.endpoint, &record.variant) else { continue };
            let current = u32::try_from(current).unwrap_or(u32::MAX);
            let now = Instant::now();
            let rate = self.variant_rate(&record.endpoint, &record.variant, now).await;
            let policy = Policy {
                min: record.min_instances,
                max: record.max_instances,
                target: record.target,
                scale_out_cooldown: duration(record.scale_out_cooldown),
                scale_in_cooldown: duration(record.scale_in_cooldown),
            };
            let key = (record.endpoint.clone(), record.variant.clone());
            let decision = {
                let mut control = operations.control();
                let state = control.entry(key.clone()).or_default();
                state.per_instance = rate.map(|rate| rate / f64::from(current.max(1)));
                decide(&policy, current, rate, operations.settings.tolerance, state.last, now)
            };
            let Some(decision) = decision else { continue };
            if let Err(error) = self.set_instances(&record.endpoint, &record.variant, decision.to).await {
                tracing::warn!(
                    endpoint = %record.endpoint, variant = %record.variant,
                    "cannot scale from {current} to {}: {error}", decision.to
                );
                continue;
            }
            // The meter sees the new capacity from now on, not from its next reading.
            self.read_meters();
            if let Some(state) = operations.control().get_mut(&key) {
                if decision.to > current {
                    state.last.scale_out = Some(now);
                } else {
                    state.last.scale_in = Some(now);
                }
            }
            let activity = ScalingActivityRecord {
                endpoint: record.endpoint.clone(),
                variant: record.variant.clone(),
                time: now_rfc3339(),
                from_instances: current,
                to_instances: decision.to,
                cause: decision.cause.clone(),
            };
            crate::logging::event(&format!(
                "autoscaling: endpoint {:?} variant {:?} from {current} to {} instances: {}",
                record.endpoint, record.variant, decision.to, decision.cause
            ));
            if let Err(error) = self.store().metadata.insert_scaling_activity(&activity).await {
                tracing::warn!("cannot record a scaling activity: {error}");
            }
            self.audit(AuditEvent {
                time: activity.time.clone(),
                request_id: String::new(),
                principal: "autoscaler".to_string(),
                source: None,
                action: "autoscaling:Scale".to_string(),
                resource: Resource::Endpoint(record.endpoint.clone()).audit_name(),
                parameters: serde_json::json!({
                    "variant": record.variant,
                    "from": current,
                    "to": decision.to,
                    "cause": decision.cause,
                }),
                outcome: "allowed",
                status: 200,
                error_code: None,
                latency_us: 0,
                urgent: true,
            });
        }
    }

    /// The Prometheus exposition (`GET /metrics`).
    pub fn metrics_text(&self) -> String {
        let operations = self.operations();
        let control = operations.control();
        let mut gauges: Vec<VariantGauges> = self
            .runtimes()
            .all()
            .iter()
            .flat_map(|endpoint| {
                endpoint.variants.iter().map(|variant| VariantGauges {
                    endpoint: endpoint.name.clone(),
                    variant: variant.name.clone(),
                    instances: variant.instances(),
                    queued: variant.pending_jobs(),
                    invocations_per_instance: control
                        .get(&(endpoint.name.clone(), variant.name.clone()))
                        .and_then(|state| state.per_instance),
                })
            })
            .collect();
        drop(control);
        gauges.sort_by(|a, b| (&a.endpoint, &a.variant).cmp(&(&b.endpoint, &b.variant)));
        let captures = operations
            .captures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .map(|(endpoint, counters)| (endpoint.clone(), counters.counts()))
            .collect();
        let monitors = operations
            .monitors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .map(|(endpoint, gauges)| (endpoint.clone(), gauges.clone()))
            .collect();
        exposition(&operations.metrics, gauges, ServerFigures { leader: self.is_leader(), captures, monitors })
    }

    /// Per-period statistics of an endpoint's history.
    pub async fn endpoint_metrics(&self, endpoint: &str, query: &MetricQuery) -> Result<MetricSeries, ServiceError> {
        self.store().metadata.get_endpoint(endpoint).await?;
        let operations = self.operations();
        operations.history.query(endpoint, query, operations.meter.now())
    }

    /// Sets (creates or replaces) the scaling policy of a variant of an endpoint.
    pub async fn put_scaling_policy(
        &self,
        endpoint: &str,
        variant: &str,
        request: PutScalingPolicy,
    ) -> Result<ScalingPolicy, ServiceError> {
        let record = self.store().metadata.get_endpoint(endpoint).await?;
        let known = record.live_variants.iter().flatten().any(|candidate| candidate.name == variant)
            || self
                .store()
                .metadata
                .get_config(&record.config)
                .await
                .is_ok_and(|config| config.variants.iter().any(|candidate| candidate.name == variant));
        if !known {
            return Err(ServiceError::NotFound(format!("endpoint {endpoint:?} has no variant {variant:?}")));
        }
        let limit = self.config().max_instances;
        if request.min_instances == 0 || request.min_instances > request.max_instances || request.max_instances > limit
        {
            return Err(ServiceError::validation(format!(
                "min_instances and max_instances must satisfy 1 <= min <= max <= {limit}, got min {} and max {}",
                request.min_instances, request.max_instances
            )));
        }
        if !(request.target.is_finite() && request.target > 0.0) {
            return Err(ServiceError::validation(format!(
                "target (invocations per instance per minute) must be a positive number, got {}",
                request.target
            )));
        }
        for (name, value) in
            [("scale_out_cooldown", request.scale_out_cooldown), ("scale_in_cooldown", request.scale_in_cooldown)]
        {
            if !(value.is_finite() && (0.0..=86_400.0).contains(&value)) {
                return Err(ServiceError::validation(format!("{name} must be 0 to 86400 seconds, got {value}")));
            }
        }
        let operations = self.operations();
        let _serial = operations.scaling.lock().await;
        let policy = ScalingPolicyRecord {
            endpoint: endpoint.to_string(),
            variant: variant.to_string(),
            min_instances: request.min_instances,
            max_instances: request.max_instances,
            target: request.target,
            scale_out_cooldown: request.scale_out_cooldown,
            scale_in_cooldown: request.scale_in_cooldown,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let metadata = &self.store().metadata;
        metadata.put_scaling_policy(&policy).await?;
        let stored = metadata.scaling_policies(None).await?;
        let answer = stored
            .iter()
            .find(|candidate| candidate.endpoint == endpoint && candidate.variant == variant)
            .map(policy_of)
            .ok_or_else(|| ServiceError::internal("the stored scaling policy is missing"))?;
        *operations.policies() = stored;
        Ok(answer)
    }

    pub async fn list_scaling_policies(&self, endpoint: &str) -> Result<List<ScalingPolicy>, ServiceError> {
        self.store().metadata.get_endpoint(endpoint).await?;
        let policies = self.store().metadata.scaling_policies(Some(endpoint)).await?;
        Ok(List { items: policies.iter().map(policy_of).collect(), next_token: None })
    }

    pub async fn delete_scaling_policy(&self, endpoint: &str, variant: &str) -> Result<(), ServiceError> {
        let operations = self.operations();
        let _serial = operations.scaling.lock().await;
        self.store().metadata.delete_scaling_policy(endpoint, variant).await?;
        *operations.policies() = self.store().metadata.scaling_policies(None).await?;
        operations.control().remove(&(endpoint.to_string(), variant.to_string()));
        Ok(())
    }

    /// The endpoint's latest scaling activities, oldest first (its description shows them).
    pub(crate) async fn scaling_activities(&self, endpoint: &str) -> Result<Vec<ScalingActivity>, ServiceError> {
        let records = match self.store().metadata.recent_scaling_activities(endpoint, ACTIVITIES_SHOWN).await {
            Ok(records) => records,
            Err(StoreError::NotFound(_)) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(records
            .into_iter()
            .map(|record| ScalingActivity {
                variant: record.variant,
                time: record.time,
                from: record.from_instances,
                to: record.to_instances,
                cause: record.cause,
            })
            .collect())
    }

    /// Usage priced with the configured price table, grouped by endpoint, variant, tag or principal.
    pub async fn cost_report(&self, query: &CostQuery) -> Result<CostReport, ServiceError> {
        let operations = self.operations();
        let by = query.by.as_deref().unwrap_or("endpoint");
        let window = report_window(query, operations.meter.now())?;
        // What the meter holds is stored first, so the report includes the last seconds.
        self.read_meters();
        operations.meter.flush(self.store()).await?;
        let rows = self.store().metadata.usage_between(window.0, window.1).await?;
        cost_report(&rows, by, window, &operations.prices)
    }

    /// Reads the scaling policies back from the store (another replica may have changed them).
    pub(crate) async fn reload_scaling_policies(&self) -> Result<(), ServiceError> {
        let policies = self.store().metadata.scaling_policies(None).await?;
        let _serial = self.operations().scaling.lock().await;
        *self.operations().policies() = policies;
        Ok(())
    }
}
