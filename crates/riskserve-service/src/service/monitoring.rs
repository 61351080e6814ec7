//! Model monitoring's use cases: baselines, outcome uploads, schedules (run by the server: one replica claims each
//! due run), runs over the captured records in the artifact store, stored reports, gauges and audit events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use riskserve_store::{
    MonitorBaselineRecord, MonitorReportRecord, MonitorScheduleRecord, StoreError, now_rfc3339, unix_to_rfc3339,
};
use serde::{Deserialize, Serialize};

use super::{Service, capture_of, unix_millis};
use crate::audit::AuditEvent;
use crate::caller::Resource;
use crate::error::ServiceError;
use crate::metrics::MonitorGauges;
use crate::monitoring::{
    Breach, MonitorSettings, OutcomeIndex, Run, RunResult, Skipped, StoredBaseline, Window, build_baseline,
    capture_file_hour, parse_outcomes,
};
use crate::resources::{DataCapture, List};
use crate::secrets::new_id;

/// Outcomes read from the store at a time while a run builds its join index.
const OUTCOME_PAGE: u32 = 50_000;
/// Capture files read ahead of the statistics.
const FILES_IN_FLIGHT: usize = 8;
/// The most reports a list shows.
const MAX_REPORTS_LISTED: u32 = 1_000;
const HOUR_MILLIS: i64 = 3_600_000;

/// How a baseline is built (`PUT …/monitoring/baseline` query).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct BaselineQuery {
    /// The column of the file holding the observed outcome (1/0, true/false, bad/good); none: no bad rates.
    pub outcome_column: Option<String>,
    /// Quantile bins of numeric features and of the score (default 10).
    pub bins: Option<usize>,
    /// The variant whose model scores the file (default: the one with the largest weight).
    pub variant: Option<String>,
}

/// An endpoint's baseline as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineDescription {
    pub endpoint: String,
    pub created_at: String,
    pub variant: String,
    pub model: String,
    pub outcome_column: Option<String>,
    /// `riskserve_monitor::Baseline`: spec, rows, per-feature bins, the score's bins, bad rates by grade.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub baseline: riskserve_monitor::Baseline,
}

/// What an outcome upload did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomesAccepted {
    /// Outcomes stored (new or replacing an earlier upload of the same key).
    pub accepted: u64,
    /// The endpoint's outcomes in all.
    pub outcomes: u64,
}

/// An endpoint's monitoring schedule.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonitorSchedule {
    pub endpoint: String,
    pub settings: MonitorSettings,
    pub next_run_at: String,
    pub last_run_at: Option<String>,
    pub last_report: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A time range of a report, RFC 3339.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportWindow {
    pub from: String,
    pub to: String,
}

/// One run's report, as stored and answered.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonitorReport {
    pub id: String,
    pub endpoint: String,
    /// `schedule` or `request`.
    pub trigger: String,
    /// `completed`, `no_data` (no captured record in either window) or `failed` (see `error`).
    pub status: String,
    pub started_at: String,
    pub finished_at: String,
    pub window: ReportWindow,
    pub outcome_window: ReportWindow,
    pub baseline_created_at: Option<String>,
    pub settings: MonitorSettings,
    pub files: u64,
    pub records: u64,
    pub rows: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub skipped: Skipped,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub drift: Option<riskserve_monitor::DriftReport>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub outcomes: Option<riskserve_monitor::OutcomeReport>,
    pub outcomes_joined: u64,
    pub outcomes_unmatched: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub breaches: Vec<Breach>,
    pub error: Option<String>,
}

/// A report in a list.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonitorReportSummary {
    pub id: String,
    pub endpoint: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    pub breaches: u32,
}

fn rfc3339(millis: i64) -> String {
    unix_to_rfc3339(millis.div_euclid(1000), u32::try_from(millis.rem_euclid(1000)).unwrap_or(0))
}

fn schedule_of(record: MonitorScheduleRecord) -> Result<MonitorSchedule, ServiceError> {
    let settings = serde_json::from_str(&record.settings)
        .map_err(|error| ServiceError::internal(format!("the stored monitoring settings do not decode: {error}")))?;
    Ok(MonitorSchedule {
        endpoint: record.endpoint,
        settings,
        next_run_at: rfc3339(record.next_run_at),
        last_run_at: record.last_run_at.map(rfc3339),
        last_report: record.last_report,
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

fn gauges_of(report: &MonitorReport) -> MonitorGauges {
    let mut breaches = BTreeMap::new();
    for breach in &report.breaches {
        *breaches.entry((breach.metric.clone(), breach.severity.clone())).or_insert(0) += 1;
    }
    MonitorGauges {
        score_psi: report.drift.as_ref().and_then(|drift| drift.score.index),
        feature_csi: report
            .drift
            .iter()
            .flat_map(|drift| &drift.features)
            .filter_map(|feature| feature.stability.index.map(|index| (feature.name.clone(), index)))
            .collect(),
        auc: report.outcomes.as_ref().and_then(|outcomes| outcomes.auc),
        breaches,
        last_run_seconds: unix_millis() as f64 / 1000.0,
    }
}

impl Service {
    /// The endpoint's stored baseline.
    async fn stored_baseline(&self, endpoint: &str) -> Result<(StoredBaseline, String), ServiceError> {
        let record = self.store().metadata.monitor_baseline(endpoint).await?;
        let stored = serde_json::from_str(&record.data)
            .map_err(|error| ServiceError::internal(format!("the stored baseline does not decode: {error}")))?;
        Ok((stored, record.created_at))
    }

    /// Builds the endpoint's baseline from a CSV file scored by one of its serving variants, and stores it
    /// (replacing any earlier one).
    pub async fn put_baseline(
        &self,
        endpoint: &str,
        query: &BaselineQuery,
        body: Bytes,
    ) -> Result<BaselineDescription, ServiceError> {
        self.store().metadata.get_endpoint(endpoint).await?;
        let runtime = self.runtimes().get(endpoint).ok_or_else(|| {
            ServiceError::InvalidState(format!(
                "endpoint {endpoint:?} is not serving: a baseline is scored by its model"
            ))
        })?;
        let variant = match &query.variant {
            Some(name) => Arc::clone(runtime.variant(name).ok_or_else(|| {
                ServiceError::validation(format!("endpoint {endpoint:?} serves no variant {name:?}"))
            })?),
            None => {
                let heaviest = runtime
                    .weights()
                    .iter()
                    .enumerate()
                    .fold(0, |best, (index, weight)| if *weight > runtime.weights()[best] { index } else { best });
                Arc::clone(&runtime.variants[heaviest])
            }
        };
        let bins = query.bins.unwrap_or(10);
        let outcome_column = query.outcome_column.clone();
        let scoring = Arc::clone(&variant);
        let column = outcome_column.clone();
        let baseline =
            tokio::task::spawn_blocking(move || build_baseline(scoring.scorer(), &body, column.as_deref(), bins))
                .await
                .map_err(|error| ServiceError::internal(format!("the baseline task failed: {error}")))??;
        let stored = StoredBaseline {
            variant: variant.name.clone(),
            model: variant.model().to_string(),
            outcome_column,
            outputs: variant.scorer().outputs().to_vec(),
            baseline,
        };
        let data = serde_json::to_string(&stored)
            .map_err(|error| ServiceError::internal(format!("cannot encode the baseline: {error}")))?;
        let record = MonitorBaselineRecord {
            endpoint: endpoint.to_string(),
            data,
            rows: stored.baseline.rows,
            created_at: now_rfc3339(),
        };
        self.store().metadata.put_monitor_baseline(&record).await?;
        Ok(BaselineDescription {
            endpoint: endpoint.to_string(),
            created_at: record.created_at,
            variant: stored.variant,
            model: stored.model,
            outcome_column: stored.outcome_column,
            baseline: stored.baseline,
        })
    }

    /// The endpoint's baseline.
    pub async fn get_baseline(&self, endpoint: &str) -> Result<BaselineDescription, ServiceError> {
        self.store().metadata.get_endpoint(endpoint).await?;
        let (stored, created_at) = self.stored_baseline(endpoint).await?;
        Ok(BaselineDescription {
            endpoint: endpoint.to_string(),
            created_at,
            variant: stored.variant,
            model: stored.model,
            outcome_column: stored.outcome_column,
            baseline: stored.baseline,
        })
    }

    /// Stores ground truth for an endpoint's invocations: CSV (`text/csv`) or JSON Lines
    /// (`application/x-ndjson`, `application/jsonl`), all or nothing.
    pub async fn put_outcomes(
        &self,
        endpoint: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<OutcomesAccepted, ServiceError> {
        self.store().metadata.get_endpoint(endpoint).await?;
        let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let json_lines = match essence.as_str() {
            "text/csv" => false,
            "application/x-ndjson" | "application/jsonl" | "application/jsonlines" | "application/json" => true,
            _ => {
                return Err(ServiceError::UnsupportedMediaType(format!(
                    "outcomes are text/csv or application/x-ndjson (JSON Lines), not {:?}",
                    content_type.unwrap_or("")
                )));
            }
        };
        let outcomes = tokio::task::spawn_blocking(move || parse_outcomes(&body, json_lines))
            .await
            .map_err(|error| ServiceError::internal(format!("the outcome parser failed: {error}")))??;
        self.store().metadata.put_outcomes(endpoint, &outcomes, unix_millis()).await?;
        let total = self.store().metadata.outcome_count(endpoint).await?;
        Ok(OutcomesAccepted { accepted: outcomes.len() as u64, outcomes: total })
    }

    /// The capture an endpoint's current config runs, when it records inputs and outputs.
    async fn monitored_capture(&self, endpoint: &str) -> Result<DataCapture, ServiceError> {
        let record = self.store().metadata.get_endpoint(endpoint).await?;
        let config = self.store().metadata.get_config(&record.config).await?;
        match capture_of(&config) {
            Some(capture) if capture.capture_input && capture.capture_output && capture.sampling_percentage > 0 => {
                Ok(capture)
            }
            _ => Err(ServiceError::InvalidState(format!(
                "endpoint {endpoint:?} does not capture its inputs and outputs (its config {:?} has no data_capture \
                 with both, at a sampling percentage above 0): monitoring reads captured records",
                record.config
            ))),
        }
    }

    /// Sets the endpoint's schedule: the first run is due at once, then every `interval_minutes`.
    pub async fn put_monitor_schedule(
        &self,
        endpoint: &str,
        settings: MonitorSettings,
    ) -> Result<MonitorSchedule, ServiceError> {
        settings.validate()?;
        self.monitored_capture(endpoint).await?;
        self.stored_baseline(endpoint).await.map_err(|error| match error {
            ServiceError::NotFound(_) => ServiceError::InvalidState(format!(
                "endpoint {endpoint:?} has no baseline: create one first (riskserve monitor baseline)"
            )),
            other => other,
        })?;
        let text = serde_json::to_string(&settings)
            .map_err(|error| ServiceError::internal(format!("cannot encode the settings: {error}")))?;
        self.store().metadata.put_monitor_schedule(endpoint, &text, unix_millis()).await?;
        self.get_monitor_schedule(endpoint).await
    }

    pub async fn get_monitor_schedule(&self, endpoint: &str) -> Result<MonitorSchedule, ServiceError> {
        schedule_of(self.store().metadata.monitor_schedule(endpoint).await?)
    }

    pub async fn delete_monitor_schedule(&self, endpoint: &str) -> Result<(), ServiceError> {
        if !self.store().metadata.delete_monitor_schedule(endpoint).await? {
            return Err(ServiceError::NotFound(format!("endpoint {endpoint:?} has no monitoring schedule")));
        }
        Ok(())
    }

    /// Runs the endpoint's monitoring now (with its schedule's settings, or the defaults) and stores the report.
    pub async fn start_monitor_run(&self, endpoint: &str) -> Result<MonitorReport, ServiceError> {
        let settings = match self.store().metadata.monitor_schedule(endpoint).await {
            Ok(record) => schedule_of(record)?.settings,
            Err(StoreError::NotFound(_)) => MonitorSettings::default(),
            Err(error) => return Err(error.into()),
        };
        self.monitored_capture(endpoint).await?;
        self.stored_baseline(endpoint).await?;
        self.monitor_run(endpoint, &settings, "request").await
    }

    /// The endpoint's latest reports, newest first.
    pub async fn list_monitor_reports(
        &self,
        endpoint: &str,
        limit: Option<u32>,
    ) -> Result<List<MonitorReportSummary>, ServiceError> {
        let limit = limit.unwrap_or(20);
        if !(1..=MAX_REPORTS_LISTED).contains(&limit) {
            return Err(ServiceError::validation(format!("limit must be 1 to {MAX_REPORTS_LISTED}, not {limit}")));
        }
        self.store().metadata.get_endpoint(endpoint).await?;
        let items = self
            .store()
            .metadata
            .monitor_reports(endpoint, limit)
            .await?
            .into_iter()
            .map(|record| MonitorReportSummary {
                id: record.id,
                endpoint: record.endpoint,
                started_at: rfc3339(record.started_at),
                finished_at: rfc3339(record.finished_at),
                status: record.status,
                breaches: record.breaches,
            })
            .collect();
        Ok(List { items, next_token: None })
    }

    /// One report, whole (`latest` names the newest).
    pub async fn get_monitor_report(&self, endpoint: &str, id: &str) -> Result<serde_json::Value, ServiceError> {
        let id = if id == "latest" {
            let newest = self.store().metadata.monitor_reports(endpoint, 1).await?;
            newest
                .into_iter()
                .next()
                .ok_or_else(|| ServiceError::NotFound(format!("endpoint {endpoint:?} has no monitoring report")))?
                .id
        } else {
            id.to_string()
        };
        let record = self.store().metadata.monitor_report(endpoint, &id).await?;
        serde_json::from_str(&record.data)
            .map_err(|error| ServiceError::internal(format!("the stored report does not decode: {error}")))
    }

    /// One run: reads the captured files of the windows, joins the outcomes, stores the report, updates the gauges
    /// and audits breaches. A failure is a stored report of status `failed`, not an error, once the run started.
    pub(crate) async fn monitor_run(
        &self,
        endpoint: &str,
        settings: &MonitorSettings,
        trigger: &str,
    ) -> Result<MonitorReport, ServiceError> {
        let started = unix_millis();
        let clock = Instant::now();
        let drift_window = Window { from: started - i64::from(settings.window_hours) * HOUR_MILLIS, to: started };
        let outcome_window =
            Window { from: started - i64::from(settings.outcome_window_days) * 24 * HOUR_MILLIS, to: started };
        let mut report = MonitorReport {
            id: new_id("mr")?,
            endpoint: endpoint.to_string(),
            trigger: trigger.to_string(),
            status: "completed".to_string(),
            started_at: rfc3339(started),
            finished_at: String::new(),
            window: ReportWindow { from: rfc3339(drift_window.from), to: rfc3339(drift_window.to) },
            outcome_window: ReportWindow { from: rfc3339(outcome_window.from), to: rfc3339(outcome_window.to) },
            baseline_created_at: None,
            settings: settings.clone(),
            files: 0,
            records: 0,
            rows: 0,
            skipped: Skipped::default(),
            drift: None,
            outcomes: None,
            outcomes_joined: 0,
            outcomes_unmatched: 0,
            breaches: Vec::new(),
            error: None,
        };
        match self.compute_run(endpoint, settings, drift_window, outcome_window).await {
            Ok((result, baseline_created_at)) => {
                report.baseline_created_at = Some(baseline_created_at);
                if result.records == 0 || result.rows == 0 {
                    report.status = "no_data".to_string();
                }
                report.files = result.files;
                report.records = result.records;
                report.rows = result.rows;
                report.skipped = result.skipped;
                report.drift = Some(result.drift);
                report.outcomes = result.outcomes;
                report.outcomes_joined = result.outcomes_joined;
                report.outcomes_unmatched = result.outcomes_unmatched;
                report.breaches = result.breaches;
            }
            Err(error) => {
                report.status = "failed".to_string();
                report.error = Some(error.to_string());
            }
        }
        let finished = unix_millis();
        report.finished_at = rfc3339(finished);
        let data = serde_json::to_string(&report)
            .map_err(|error| ServiceError::internal(format!("cannot encode the report: {error}")))?;
        self.store()
            .metadata
            .insert_monitor_report(&MonitorReportRecord {
                id: report.id.clone(),
                endpoint: endpoint.to_string(),
                started_at: started,
                finished_at: finished,
                status: report.status.clone(),
                breaches: u32::try_from(report.breaches.len()).unwrap_or(u32::MAX),
                data,
            })
            .await?;
        self.operations()
            .monitors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(endpoint.to_string(), gauges_of(&report));
        crate::logging::event(&format!(
            "monitoring: endpoint {endpoint:?} report {} {}: {} records, {} rows, {} breaches in {:.1} s",
            report.id,
            report.status,
            report.records,
            report.rows,
            report.breaches.len(),
            clock.elapsed().as_secs_f64()
        ));
        if !report.breaches.is_empty() || report.status == "failed" {
            let summary: Vec<serde_json::Value> = report
                .breaches
                .iter()
                .take(20)
                .map(|breach| {
                    serde_json::json!({"metric": breach.metric, "subject": breach.subject, "severity": breach.severity})
                })
                .collect();
            self.audit(AuditEvent {
                time: report.finished_at.clone(),
                request_id: String::new(),
                principal: "monitor".to_string(),
                source: None,
                action: if report.status == "failed" { "monitoring:RunFailed" } else { "monitoring:Breach" }
                    .to_string(),
                resource: Resource::Endpoint(endpoint.to_string()).audit_name(),
                parameters: serde_json::json!({
                    "report": report.id,
                    "trigger": trigger,
                    "breaches": report.breaches.len(),
                    "first_breaches": summary,
                }),
                outcome: "allowed",
                status: 200,
                error_code: None,
                latency_us: u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX),
                urgent: true,
            });
        }
        Ok(report)
    }

    /// The statistics of a run: the outcome index from the store, then every capture file of the windows streamed
    /// through a blocking thread while the next files are read.
    async fn compute_run(
        &self,
        endpoint: &str,
        settings: &MonitorSettings,
        drift_window: Window,
        outcome_window: Window,
    ) -> Result<(RunResult, String), ServiceError> {
        let capture = self.monitored_capture(endpoint).await?;
        let (stored, baseline_created_at) = self.stored_baseline(endpoint).await?;
        let mut index = OutcomeIndex::default();
        let mut after: Option<(String, u32)> = None;
        loop {
            let page = self
                .store()
                .metadata
                .outcomes_page(endpoint, after.as_ref().map(|(id, row)| (id.as_str(), *row)), OUTCOME_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.inference_id.clone(), last.row_index));
            for outcome in page {
                index.add(outcome);
            }
        }
        let earliest = drift_window.from.min(outcome_window.from);
        let prefix = format!("{}/{endpoint}", capture.destination);
        let mut keys: Vec<String> = self
            .store()
            .artifacts
            .list_objects(&prefix)
            .await?
            .into_iter()
            .filter(|(key, _)| {
                capture_file_hour(key).is_some_and(|hour| hour + HOUR_MILLIS > earliest && hour < drift_window.to)
            })
            .map(|(key, _)| key)
            .collect();
        keys.sort();
        let (files, mut received) = tokio::sync::mpsc::channel::<Bytes>(FILES_IN_FLIGHT);
        let settings = settings.clone();
        let statistics = tokio::task::spawn_blocking(move || -> Result<RunResult, ServiceError> {
            let mut run = Run::new(&stored, &settings, drift_window, outcome_window, &mut index)?;
            while let Some(file) = received.blocking_recv() {
                run.add_file(&file);
            }
            Ok(run.finish())
        });
        let artifacts = self.store().artifacts.clone();
        let mut reads = tokio::task::JoinSet::new();
        let mut pending = keys.into_iter();
        let mut failure = None;
        loop {
            while reads.len() < FILES_IN_FLIGHT
                && let Some(key) = pending.next()
            {
                let artifacts = artifacts.clone();
                reads.spawn(async move { artifacts.get_object(&key).await.map_err(|error| (key, error)) });
            }
            let Some(done) = reads.join_next().await else { break };
            match done {
                Ok(Ok(bytes)) => {
                    if files.send(bytes).await.is_err() {
                        break;
                    }
                }
                Ok(Err((key, error))) => {
                    failure = Some(ServiceError::Unavailable(format!("cannot read the capture file {key}: {error}")));
                    break;
                }
                Err(error) => {
                    failure = Some(ServiceError::internal(format!("a capture read failed: {error}")));
                    break;
                }
            }
        }
        drop(files);
        reads.abort_all();
        let result = statistics
            .await
            .map_err(|error| ServiceError::internal(format!("the monitoring task failed: {error}")))??;
        match failure {
            Some(error) => Err(error),
            None => Ok((result, baseline_created_at)),
        }
    }

    /// Starts the scheduler: every `monitor_poll_seconds` it claims the due schedules (one replica wins each) and
    /// runs them one after another.
    pub(crate) fn start_monitoring(&self) {
        let scheduler = self.clone();
        let mut stop = self.operations().stop.subscribe();
        let poll = self.config().monitor_poll_seconds;
        tokio::spawn(async move {
            while crate::operations::pause(&mut stop, poll).await {
                scheduler.monitor_tick().await;
            }
        });
    }

    /// Runs every due schedule this replica claims; a schedule whose endpoint is gone is removed.
    pub(crate) async fn monitor_tick(&self) {
        let schedules = match self.store().metadata.monitor_schedules().await {
            Ok(schedules) => schedules,
            Err(error) => {
                tracing::warn!("monitoring: cannot read the schedules: {error}");
                return;
            }
        };
        let now = unix_millis();
        for schedule in schedules.into_iter().filter(|schedule| schedule.next_run_at <= now) {
            let endpoint = schedule.endpoint.clone();
            let settings: MonitorSettings = match serde_json::from_str(&schedule.settings) {
                Ok(settings) => settings,
                Err(error) => {
                    tracing::warn!("monitoring: the schedule of {endpoint:?} does not decode: {error}");
                    continue;
                }
            };
            let next = now + i64::from(settings.interval_minutes) * 60_000;
            match self.store().metadata.claim_monitor_run(&endpoint, schedule.next_run_at, next).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!("monitoring: cannot claim the run of {endpoint:?}: {error}");
                    continue;
                }
            }
            match self.store().metadata.get_endpoint(&endpoint).await {
                Err(StoreError::NotFound(_)) => {
                    self.stop_schedule_of_deleted(&endpoint).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!("monitoring: cannot read endpoint {endpoint:?}: {error}");
                    continue;
                }
                Ok(_) => {}
            }
            if let Err(error) = self.monitor_run(&endpoint, &settings, "schedule").await {
                tracing::warn!("monitoring: the run of {endpoint:?} could not be stored: {error}");
            }
        }
    }

    /// Removes the schedule of a deleted endpoint and says so in the audit trail (its reports stay).
    pub(crate) async fn stop_schedule_of_deleted(&self, endpoint: &str) {
        match self.store().metadata.delete_monitor_schedule(endpoint).await {
            Ok(false) => return,
            Ok(true) => {}
            Err(error) => {
                tracing::warn!("monitoring: cannot remove the schedule of deleted endpoint {endpoint:?}: {error}");
                return;
            }
        }
        self.operations().monitors.lock().unwrap_or_else(|poison| poison.into_inner()).remove(endpoint);
        crate::logging::event(&format!("monitoring: endpoint {endpoint:?} is deleted; its schedule stops"));
        self.audit(AuditEvent {
            time: now_rfc3339(),
            request_id: String::new(),
            principal: "monitor".to_string(),
            source: None,
            action: "monitoring:StopSchedule".to_string(),
            resource: Resource::Endpoint(endpoint.to_string()).audit_name(),
            parameters: serde_json::json!({"reason": "the endpoint was deleted"}),
            outcome: "allowed",
            status: 200,
            error_code: None,
            latency_us: 0,
            urgent: true,
        });
    }
}
