//! Built-in metric history: per-minute aggregates of every variant, kept in memory for a bounded
//! number of minutes (25 hours by default), written to the store as each minute closes (one row per
//! replica) and read back at start, summed with what other replicas sharing the store counted, and
//! queried by period and statistic so that charts need no external system.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use riskserve_store::{MetricMinute, Store, unix_to_rfc3339};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::metrics::{HistogramCounts, LATENCY_BUCKETS, Metrics, VariantCounts, VariantMetrics};

/// Minutes of history kept: a day and an hour, so "the last 24 hours" is always complete.
pub const RETENTION_MINUTES: i64 = 25 * 60;

/// One minute of one variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteAggregate {
    pub invocations: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub rejected: u64,
    /// Instances times the seconds they ran within the minute (60 × the average count).
    pub instance_seconds: f64,
    /// Seconds of the minute the variant served (60, or less in its first and last minutes).
    #[serde(default)]
    pub serving_seconds: f64,
    pub model_latency: SparseHistogram,
    pub overhead_latency: SparseHistogram,
}

/// A histogram's non-empty buckets, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseHistogram {
    /// (bucket index, count).
    pub buckets: Vec<(u16, u64)>,
    pub sum_nanos: u64,
}

impl SparseHistogram {
    fn from_counts(counts: &HistogramCounts) -> SparseHistogram {
        SparseHistogram {
            buckets: counts
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(index, count)| (index as u16, *count))
                .collect(),
            sum_nanos: counts.sum_nanos,
        }
    }

    fn add_to(&self, counts: &mut HistogramCounts) {
        if counts.buckets.len() < LATENCY_BUCKETS {
            counts.buckets.resize(LATENCY_BUCKETS, 0);
        }
        for (index, count) in &self.buckets {
            if let Some(slot) = counts.buckets.get_mut(usize::from(*index)) {
                *slot += count;
            }
        }
        counts.sum_nanos += self.sum_nanos;
    }
}

impl MinuteAggregate {
    /// Adds what another replica counted in the same minute: the counts add up, as do instance-seconds (capacity
    /// of all replicas), while the seconds served overlap: the minute was served for as long as the longest did.
    fn merge_concurrent(&mut self, other: &MinuteAggregate) {
        let serving_seconds = self.serving_seconds.max(other.serving_seconds);
        self.merge(other);
        self.serving_seconds = serving_seconds;
    }

    /// Adds a later part of the same minute (the same server, or one that ran before it).
    fn merge(&mut self, other: &MinuteAggregate) {
        self.invocations += other.invocations;
        self.errors_4xx += other.errors_4xx;
        self.errors_5xx += other.errors_5xx;
        self.rejected += other.rejected;
        self.instance_seconds += other.instance_seconds;
        self.serving_seconds += other.serving_seconds;
        for (mine, theirs) in
            [(&mut self.model_latency, &other.model_latency), (&mut self.overhead_latency, &other.overhead_latency)]
        {
            let mut counts = HistogramCounts::default();
            mine.add_to(&mut counts);
            theirs.add_to(&mut counts);
            *mine = SparseHistogram::from_counts(&counts);
        }
    }

    fn from_counts(counts: &VariantCounts, instance_seconds: f64, serving_seconds: f64) -> MinuteAggregate {
        MinuteAggregate {
            invocations: counts.invocations,
            errors_4xx: counts.errors_4xx,
            errors_5xx: counts.errors_5xx,
            rejected: counts.rejected,
            instance_seconds,
            serving_seconds,
            model_latency: SparseHistogram::from_counts(&counts.model_latency),
            overhead_latency: SparseHistogram::from_counts(&counts.overhead_latency),
        }
    }
}

fn counts_since(now: &VariantCounts, earlier: &VariantCounts) -> VariantCounts {
    VariantCounts {
        invocations: now.invocations.saturating_sub(earlier.invocations),
        errors_4xx: now.errors_4xx.saturating_sub(earlier.errors_4xx),
        errors_5xx: now.errors_5xx.saturating_sub(earlier.errors_5xx),
        rejected: now.rejected.saturating_sub(earlier.rejected),
        model_latency: now.model_latency.since(&earlier.model_latency),
        overhead_latency: now.overhead_latency.since(&earlier.overhead_latency),
    }
}

/// The open minute of one variant: counts at its start, instance-seconds so far.
struct OpenMinute {
    measures: Arc<VariantMetrics>,
    start_counts: VariantCounts,
    instance_seconds: f64,
    serving_seconds: f64,
}

#[derive(Default)]
struct State {
    /// The minute being accumulated (minutes since the epoch).
    open_minute: i64,
    open: HashMap<(String, String), OpenMinute>,
    closed: HashMap<(String, String), VecDeque<(i64, MinuteAggregate)>>,
    /// What other replicas (and earlier runs of this server) counted, summed per minute, as last read from the store.
    others: HashMap<(String, String), BTreeMap<i64, MinuteAggregate>>,
    /// Whether those served at the same time as this server (replicas) rather than before it (earlier runs).
    concurrent_others: bool,
    /// When instances were last sampled (seconds since the epoch).
    last_sample: Option<f64>,
}

/// The history of every variant.
#[derive(Default)]
pub struct History {
    state: Mutex<State>,
    /// The name under which this server writes its rows (see [`MetricMinute::replica`]).
    replica: String,
}

pub fn unix_seconds_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// A history whose rows carry `replica` (unique to this server process).
    pub fn new(replica: &str) -> History {
        History { state: Mutex::default(), replica: replica.to_string() }
    }

    /// Reads the stored minutes of the retention window back into memory (at start).
    pub async fn load(&self, store: &Store, now: f64, concurrent: bool) -> Result<(), ServiceError> {
        let since = (now / 60.0).floor() as i64 - RETENTION_MINUTES;
        self.read_others(store, since, concurrent).await
    }

    /// Reads again what other servers wrote from minute `since` on (they write a minute as it closes), replacing
    /// what was read of those minutes before. `concurrent`: they are replicas serving at the same time (a shared
    /// store), not earlier runs of this server (an embedded one).
    pub async fn read_others(&self, store: &Store, since: i64, concurrent: bool) -> Result<(), ServiceError> {
        let minutes = store.metadata.metric_minutes_since(since, Some(&self.replica)).await?;
        self.replace_others(since, minutes, concurrent);
        Ok(())
    }

    /// Replaces what is known of the other servers' minutes from `since` on with `minutes` (their stored rows).
    fn replace_others(&self, since: i64, minutes: Vec<MetricMinute>, concurrent: bool) {
        let mut state = self.lock();
        state.concurrent_others = concurrent;
        for series in state.others.values_mut() {
            series.retain(|minute, _| *minute < since);
        }
        for row in minutes {
            // A row that no longer decodes is skipped: history is a convenience, never a reason not to start.
            let Ok(aggregate) = serde_json::from_str::<MinuteAggregate>(&row.data) else { continue };
            let series = state.others.entry((row.endpoint, row.variant)).or_default();
            match series.entry(row.minute) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(aggregate);
                }
                std::collections::btree_map::Entry::Occupied(mut slot) if concurrent => {
                    slot.get_mut().merge_concurrent(&aggregate);
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => slot.get_mut().merge(&aggregate),
            }
        }
        state.others.retain(|_, series| !series.is_empty());
    }

    /// Samples every variant at `now` (seconds since the epoch): adds instance-seconds to the open
    /// minute, and when a minute boundary has passed closes the open minute and returns its rows to
    /// store. `serving` holds (endpoint, variant, instances) of every serving variant.
    pub fn sample(&self, metrics: &Metrics, serving: &[(String, String, usize)], now: f64) -> Vec<MetricMinute> {
        let minute = (now / 60.0).floor() as i64;
        let mut state = self.lock();
        Self::accumulate(&mut state, serving, now);
        let mut finished = Vec::new();
        let all = metrics.all();
        if state.open_minute != minute {
            let closing = state.open_minute;
            // A first sample has no minute behind it.
            finished = self.close(&mut state, closing, minute, closing != 0);
            state.open_minute = minute;
            // Forgotten variants (deleted endpoints) stop once their last minute is closed.
            state
                .open
                .retain(|key, _| all.iter().any(|(endpoint, variant, _)| key.0 == *endpoint && key.1 == *variant));
        }
        // A variant seen for the first time (or whose measures were replaced) counts from zero:
        // measures are created with the server, or with the variant.
        for (endpoint, variant, measures) in all {
            let key = (endpoint, variant);
            let known = state.open.get(&key).is_some_and(|open| Arc::ptr_eq(&open.measures, &measures));
            if !known {
                state.open.insert(
                    key,
                    OpenMinute {
                        measures,
                        start_counts: VariantCounts::default(),
                        instance_seconds: 0.0,
                        serving_seconds: 0.0,
                    },
                );
            }
        }
        finished
    }

    /// Closes the open minute early (at shutdown): its rows so far, to store. A restart within the
    /// same minute adds to them.
    pub fn finish(&self, serving: &[(String, String, usize)], now: f64) -> Vec<MetricMinute> {
        let mut state = self.lock();
        Self::accumulate(&mut state, serving, now);
        let minute = state.open_minute;
        if minute == 0 {
            return Vec::new();
        }
        self.close(&mut state, minute, minute, true)
    }

    /// The open minute of every variant so far, as rows to store: replicas sharing a store write them every few
    /// seconds, so that the others see the current minute (and a killed replica loses seconds, not a minute).
    pub fn open_rows(&self) -> Vec<MetricMinute> {
        let state = self.lock();
        if state.open_minute == 0 {
            return Vec::new();
        }
        let mut rows = Vec::new();
        for (key, open) in &state.open {
            let counts = counts_since(&open.measures.counts(), &open.start_counts);
            let aggregate = MinuteAggregate::from_counts(&counts, open.instance_seconds, open.serving_seconds);
            if aggregate.invocations == 0 && aggregate.instance_seconds == 0.0 {
                continue;
            }
            rows.push(MetricMinute {
                endpoint: key.0.clone(),
                variant: key.1.clone(),
                minute: state.open_minute,
                replica: self.replica.clone(),
                data: serde_json::to_string(&aggregate).unwrap_or_default(),
            });
        }
        rows
    }

    /// Adds the instance-seconds since the last sample to the open minute (the interval ends now,
    /// so it belongs to the minute still open).
    fn accumulate(state: &mut State, serving: &[(String, String, usize)], now: f64) {
        let elapsed = state.last_sample.map_or(0.0, |last| (now - last).clamp(0.0, 120.0));
        state.last_sample = Some(now);
        for (endpoint, variant, instances) in serving {
            if let Some(open) = state.open.get_mut(&(endpoint.clone(), variant.clone())) {
                open.instance_seconds += *instances as f64 * elapsed;
                open.serving_seconds += elapsed;
            }
        }
    }

    /// Ends minute `closing` of every variant (merged with what is already kept of that minute)
    /// and opens the next where it ends; `keep` false drops what was counted.
    fn close(&self, state: &mut State, closing: i64, current: i64, keep: bool) -> Vec<MetricMinute> {
        let mut finished = Vec::new();
        let open = std::mem::take(&mut state.open);
        for (key, open_minute) in open {
            let now_counts = open_minute.measures.counts();
            let counts = counts_since(&now_counts, &open_minute.start_counts);
            let aggregate =
                MinuteAggregate::from_counts(&counts, open_minute.instance_seconds, open_minute.serving_seconds);
            // The next minute starts where this one ends.
            state.open.insert(
                key.clone(),
                OpenMinute {
                    measures: open_minute.measures,
                    start_counts: now_counts,
                    instance_seconds: 0.0,
                    serving_seconds: 0.0,
                },
            );
            // Idle minutes need no row.
            if !keep || (aggregate.invocations == 0 && aggregate.instance_seconds == 0.0) {
                continue;
            }
            let series = state.closed.entry(key.clone()).or_default();
            let merged = match series.back_mut() {
                Some((last, kept)) if *last == closing => {
                    kept.merge(&aggregate);
                    kept.clone()
                }
                _ => {
                    series.push_back((closing, aggregate.clone()));
                    aggregate
                }
            };
            while series.front().is_some_and(|(oldest, _)| *oldest < current - RETENTION_MINUTES) {
                series.pop_front();
            }
            finished.push(MetricMinute {
                endpoint: key.0,
                variant: key.1,
                minute: closing,
                replica: self.replica.clone(),
                data: serde_json::to_string(&merged).unwrap_or_default(),
            });
        }
        state.closed.retain(|_, series| series.back().is_some_and(|(last, _)| *last >= current - RETENTION_MINUTES));
        for series in state.others.values_mut() {
            series.retain(|minute, _| *minute >= current - RETENTION_MINUTES);
        }
        state.others.retain(|_, series| !series.is_empty());
        finished
    }

    /// The minutes of `endpoint` (one variant, or all summed) in `[from, to)`, the open one included, with what other
    /// servers counted.
    fn minutes(&self, endpoint: &str, variant: Option<&str>, from: i64, to: i64) -> BTreeMap<i64, Combined> {
        let state = self.lock();
        let wanted = |key: &(String, String)| key.0 == endpoint && variant.is_none_or(|name| key.1 == name);
        // Each variant's minutes first (this server's and the others' of the same minute merged), then the variants
        // side by side.
        let mut per_variant: HashMap<&(String, String), BTreeMap<i64, MinuteAggregate>> = HashMap::new();
        let mut add = |key, minute: i64, aggregate: &MinuteAggregate| {
            let series = per_variant.entry(key).or_default();
            match series.get_mut(&minute) {
                Some(kept) if state.concurrent_others => kept.merge_concurrent(aggregate),
                Some(kept) => kept.merge(aggregate),
                None => {
                    series.insert(minute, aggregate.clone());
                }
            }
        };
        for (key, series) in state.others.iter().filter(|(key, _)| wanted(key)) {
            for (minute, aggregate) in series.iter().filter(|(minute, _)| (from..to).contains(*minute)) {
                add(key, *minute, aggregate);
            }
        }
        for (key, series) in state.closed.iter().filter(|(key, _)| wanted(key)) {
            for (minute, aggregate) in series.iter().filter(|(minute, _)| (from..to).contains(minute)) {
                add(key, *minute, aggregate);
            }
        }
        if (from..to).contains(&state.open_minute) {
            for (key, open) in state.open.iter().filter(|(key, _)| wanted(key)) {
                let counts = counts_since(&open.measures.counts(), &open.start_counts);
                let aggregate = MinuteAggregate::from_counts(&counts, open.instance_seconds, open.serving_seconds);
                if aggregate.invocations > 0 || aggregate.instance_seconds > 0.0 {
                    add(key, state.open_minute, &aggregate);
                }
            }
        }
        let mut combined: BTreeMap<i64, Combined> = BTreeMap::new();
        for series in per_variant.into_values() {
            for (minute, aggregate) in series {
                combined.entry(minute).or_default().add(&aggregate);
            }
        }
        combined
    }

    /// Answers `GET /api/v1/endpoints/{name}/metrics`.
    pub fn query(&self, endpoint: &str, query: &MetricQuery, now: f64) -> Result<MetricSeries, ServiceError> {
        let metric = Metric::parse(&query.metric)?;
        let stat = Stat::parse(query.stat.as_deref().unwrap_or(metric.default_stat()))?;
        if !metric.allows(stat) {
            return Err(ServiceError::validation(format!(
                "stat {:?} does not apply to metric {:?}; use one of {}",
                stat.name(),
                metric.name(),
                metric.stats().iter().map(|stat| stat.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        let period = query.period.unwrap_or(60);
        if period == 0 || !period.is_multiple_of(60) || period > 86_400 {
            return Err(ServiceError::validation(format!(
                "period must be a multiple of 60 seconds up to 86400, got {period}"
            )));
        }
        let now_minute = (now / 60.0).floor() as i64;
        let end = match &query.end {
            Some(text) => parse_moment(text, "end", now as i64)?.div_euclid(60),
            None => now_minute + 1,
        };
        let start = match &query.start {
            Some(text) => parse_moment(text, "start", end * 60)?.div_euclid(60),
            None => end - 60,
        };
        if start >= end {
            return Err(ServiceError::validation("start must be before end"));
        }
        let period_minutes = period / 60;
        // Periods are aligned on multiples of the period since the epoch, as CloudWatch aligns them.
        let first = start.div_euclid(period_minutes as i64) * period_minutes as i64;
        let minutes = self.minutes(endpoint, query.variant.as_deref(), first, end);
        let mut periods: BTreeMap<i64, (Combined, u32)> = BTreeMap::new();
        for (minute, combined) in minutes {
            let bucket = minute.div_euclid(period_minutes as i64) * period_minutes as i64;
            let entry = periods.entry(bucket).or_default();
            entry.0.merge(&combined);
            entry.1 += 1;
        }
        let datapoints = periods
            .into_iter()
            .filter_map(|(minute, (combined, _))| {
                metric
                    .value(&combined, stat, period_minutes)
                    .map(|value| Datapoint { timestamp: unix_to_rfc3339(minute * 60, 0), value })
            })
            .collect();
        Ok(MetricSeries {
            endpoint: endpoint.to_string(),
            variant: query.variant.clone(),
            metric: metric.name().to_string(),
            stat: stat.name().to_string(),
            unit: metric.unit().to_string(),
            period,
            datapoints,
        })
    }
}

/// Minutes of one or more variants added together.
#[derive(Debug, Clone, Default)]
struct Combined {
    invocations: u64,
    errors_4xx: u64,
    errors_5xx: u64,
    rejected: u64,
    instance_seconds: f64,
    serving_seconds: f64,
    model_latency: HistogramCounts,
    overhead_latency: HistogramCounts,
}

impl Combined {
    fn add(&mut self, minute: &MinuteAggregate) {
        self.invocations += minute.invocations;
        self.errors_4xx += minute.errors_4xx;
        self.errors_5xx += minute.errors_5xx;
        self.rejected += minute.rejected;
        self.instance_seconds += minute.instance_seconds;
        // Variants of one minute serve side by side: the minute covers the longest of them.
        self.serving_seconds = self.serving_seconds.max(minute.serving_seconds);
        minute.model_latency.add_to(&mut self.model_latency);
        minute.overhead_latency.add_to(&mut self.overhead_latency);
    }

    fn merge(&mut self, other: &Combined) {
        self.invocations += other.invocations;
        self.errors_4xx += other.errors_4xx;
        self.errors_5xx += other.errors_5xx;
        self.rejected += other.rejected;
        self.instance_seconds += other.instance_seconds;
        self.serving_seconds += other.serving_seconds;
        self.model_latency.add(&other.model_latency);
        self.overhead_latency.add(&other.overhead_latency);
    }
}

/// The query string of the metrics route.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    /// invocations, invocations_per_instance, model_latency, overhead_latency, errors_4xx, errors_5xx,
    /// rejected or instances.
    pub metric: String,
    /// sum, avg, p50 or p99 (which apply depends on the metric); the metric's usual one when absent.
    pub stat: Option<String>,
    /// Seconds per datapoint: a multiple of 60 (default 60).
    pub period: Option<u32>,
    /// RFC 3339, `YYYY-MM-DD`, or a duration before `end` (`-90m`, `-24h`); default an hour before `end`.
    pub start: Option<String>,
    /// RFC 3339, `YYYY-MM-DD`, or a duration before now (`-5m`); default now.
    pub end: Option<String>,
    /// One variant; all of the endpoint's added together when absent.
    pub variant: Option<String>,
}

/// The answer of the metrics route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricSeries {
    pub endpoint: String,
    pub variant: Option<String>,
    pub metric: String,
    pub stat: String,
    /// count, microseconds or instances.
    pub unit: String,
    pub period: u32,
    /// One per period with data, oldest first.
    pub datapoints: Vec<Datapoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Datapoint {
    /// The period's start, RFC 3339.
    pub timestamp: String,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Invocations,
    InvocationsPerInstance,
    ModelLatency,
    OverheadLatency,
    Errors4xx,
    Errors5xx,
    Rejected,
    Instances,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    Sum,
    Avg,
    P50,
    P99,
}

const METRIC_NAMES: &str = "invocations, invocations_per_instance, model_latency, overhead_latency, errors_4xx, errors_5xx, rejected, instances";

impl Stat {
    fn parse(text: &str) -> Result<Stat, ServiceError> {
        Ok(match text {
            "sum" => Stat::Sum,
            "avg" => Stat::Avg,
            "p50" => Stat::P50,
            "p99" => Stat::P99,
            other => {
                return Err(ServiceError::validation(format!("stat {other:?} is unknown; use sum, avg, p50 or p99")));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Stat::Sum => "sum",
            Stat::Avg => "avg",
            Stat::P50 => "p50",
            Stat::P99 => "p99",
        }
    }
}

impl Metric {
    fn parse(text: &str) -> Result<Metric, ServiceError> {
        Ok(match text {
            "invocations" => Metric::Invocations,
            "invocations_per_instance" => Metric::InvocationsPerInstance,
            "model_latency" => Metric::ModelLatency,
            "overhead_latency" => Metric::OverheadLatency,
            "errors_4xx" => Metric::Errors4xx,
            "errors_5xx" => Metric::Errors5xx,
            "rejected" => Metric::Rejected,
            "instances" => Metric::Instances,
            other => {
                return Err(ServiceError::validation(format!("metric {other:?} is unknown; use {METRIC_NAMES}")));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Invocations => "invocations",
            Metric::InvocationsPerInstance => "invocations_per_instance",
            Metric::ModelLatency => "model_latency",
            Metric::OverheadLatency => "overhead_latency",
            Metric::Errors4xx => "errors_4xx",
            Metric::Errors5xx => "errors_5xx",
            Metric::Rejected => "rejected",
            Metric::Instances => "instances",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::ModelLatency | Metric::OverheadLatency => "microseconds",
            Metric::Instances => "instances",
            Metric::Invocations
            | Metric::InvocationsPerInstance
            | Metric::Errors4xx
            | Metric::Errors5xx
            | Metric::Rejected => "count",
        }
    }

    fn stats(self) -> &'static [Stat] {
        match self {
            Metric::ModelLatency | Metric::OverheadLatency => &[Stat::Avg, Stat::P50, Stat::P99],
            Metric::Instances => &[Stat::Avg],
            Metric::Invocations
            | Metric::InvocationsPerInstance
            | Metric::Errors4xx
            | Metric::Errors5xx
            | Metric::Rejected => &[Stat::Sum, Stat::Avg],
        }
    }

    fn default_stat(self) -> &'static str {
        match self {
            Metric::ModelLatency | Metric::OverheadLatency | Metric::Instances => "avg",
            Metric::Invocations
            | Metric::InvocationsPerInstance
            | Metric::Errors4xx
            | Metric::Errors5xx
            | Metric::Rejected => "sum",
        }
    }

    fn allows(self, stat: Stat) -> bool {
        self.stats().contains(&stat)
    }

    /// The statistic of one period: sums over the period, `avg` of counts per minute.
    fn value(self, combined: &Combined, stat: Stat, period_minutes: u32) -> Option<f64> {
        let minutes = f64::from(period_minutes.max(1));
        let per_period = |count: f64| if stat == Stat::Avg { count / minutes } else { count };
        // Over the time the endpoint served (a minute still open, or a variant's first minute, is shorter).
        let average_instances =
            if combined.serving_seconds > 0.0 { combined.instance_seconds / combined.serving_seconds } else { 0.0 };
        let served_minutes = combined.serving_seconds / 60.0;
        match self {
            Metric::Invocations => Some(per_period(combined.invocations as f64)),
            Metric::Errors4xx => Some(per_period(combined.errors_4xx as f64)),
            Metric::Errors5xx => Some(per_period(combined.errors_5xx as f64)),
            Metric::Rejected => Some(per_period(combined.rejected as f64)),
            Metric::Instances => (average_instances > 0.0).then_some(average_instances),
            Metric::InvocationsPerInstance => (average_instances > 0.0).then(|| {
                let per_instance = combined.invocations as f64 / average_instances;
                if stat == Stat::Avg { per_instance / served_minutes.max(1.0 / 60.0) } else { per_instance }
            }),
            Metric::ModelLatency | Metric::OverheadLatency => {
                let histogram =
                    if self == Metric::ModelLatency { &combined.model_latency } else { &combined.overhead_latency };
                let seconds = match stat {
                    Stat::P50 => histogram.quantile(0.5),
                    Stat::P99 => histogram.quantile(0.99),
                    Stat::Avg | Stat::Sum => {
                        let count = histogram.count();
                        (count > 0).then(|| histogram.sum_nanos as f64 / 1e9 / count as f64)
                    }
                }?;
                Some((seconds * 1e6 * 1000.0).round() / 1000.0)
            }
        }
    }
}

/// Seconds since the epoch of a time, or of a duration before `reference` written `-90m`, `-1h`,
/// `-7d` (units s, m, h, d).
pub fn parse_moment(text: &str, what: &str, reference: i64) -> Result<i64, ServiceError> {
    let Some(offset) = text.trim().strip_prefix('-') else { return parse_time(text, what) };
    let bad = || {
        ServiceError::validation(format!(
            "{what} {text:?} is not a duration before now; use a number and a unit of s, m, h or d, as -90m or -24h"
        ))
    };
    let unit_at = offset.find(|character: char| !character.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = offset.split_at(unit_at);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number.checked_mul(unit_seconds).and_then(|seconds| reference.checked_sub(seconds)).ok_or_else(bad)
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-28T19:00:00Z`, an offset, fractions) or a
/// date (`2026-11-28`, midnight UTC); `what` names the parameter in the error.
pub fn parse_time(text: &str, what: &str) -> Result<i64, ServiceError> {
    let bad = || {
        ServiceError::validation(format!(
            "{what} {text:?} is not a time; use RFC 3339 (2026-11-28T19:00:00Z) or a date (2026-11-28)"
        ))
    };
    let number = |part: Option<&str>| -> Result<i64, ServiceError> {
        let part = part.ok_or_else(bad)?;
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let text = text.trim();
    let (date, clock) = match text.split_once(['T', 't', ' ']) {
        Some((date, clock)) => (date, Some(clock)),
        None => (text, None),
    };
    let mut date_parts = date.split('-');
    let year = number(date_parts.next())?;
    let month = number(date_parts.next())?;
    let day = number(date_parts.next())?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) || year > 9999 {
        return Err(bad());
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(clock) = clock {
        let (clock, offset) = if let Some(stripped) = clock.strip_suffix(['Z', 'z']) {
            (stripped, 0)
        } else if let Some(at) = clock.rfind(['+', '-']) {
            let (clock, zone) = clock.split_at(at);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let mut zone_parts = zone.get(1..).unwrap_or("").split(':');
            let hours = number(zone_parts.next())?;
            let minutes = number(zone_parts.next())?;
            (clock, sign * (hours * 3600 + minutes * 60))
        } else {
            return Err(bad());
        };
        let whole = clock.split('.').next().unwrap_or("");
        let mut clock_parts = whole.split(':');
        let hour = number(clock_parts.next())?;
        let minute = number(clock_parts.next())?;
        let second = number(clock_parts.next())?;
        if clock_parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
            return Err(bad());
        }
        seconds += hour * 3600 + minute * 60 + second - offset;
    }
    Ok(seconds)
}

/// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_parse_as_rfc_3339_or_dates() {
        assert_eq!(parse_time("1970-01-01", "start").unwrap(), 0);
        assert_eq!(parse_time("2023-11-14T22:13:20Z", "start").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("2023-11-14T23:13:20.500+01:00", "start").unwrap(), 1_700_000_000);
        assert_eq!(unix_to_rfc3339(parse_time("2000-02-29T00:00:00Z", "x").unwrap(), 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_moment("-90m", "start", 10_000).unwrap(), 10_000 - 5400);
        assert_eq!(parse_moment("-2d", "start", 200_000).unwrap(), 200_000 - 172_800);
        assert_eq!(parse_moment("1970-01-02", "start", 5).unwrap(), 86_400);
        for bad in ["-", "-5", "-5w", "-m", "-99999999999999999d"] {
            let error = parse_moment(bad, "start", 0).unwrap_err().to_string();
            assert!(error.contains("not a duration"), "{bad}: {error}");
        }
        for bad in ["", "yesterday", "2023-13-01", "2023-11-14T22:13", "2023-11-14T22:13:20", "2023-1x-01"] {
            let error = parse_time(bad, "start").unwrap_err().to_string();
            assert!(error.starts_with("start "), "{error}");
        }
    }

    #[test]
    fn minutes_close_and_answer_by_period() {
        let metrics = Metrics::default();
        let history = History::default();
        let serving = vec![("credit".to_string(), "main".to_string(), 2)];
        let base = 1_700_000_000.0 - 1_700_000_000.0 % 3600.0;
        // A deployment creates the variant's measures (its setup time) before it serves.
        metrics.variant("credit", "main");
        history.sample(&metrics, &serving, base);
        history.sample(&metrics, &serving, base);
        for minute in 0..3 {
            for _ in 0..(10 * (minute + 1)) {
                metrics.record_invocation(
                    "credit",
                    "main",
                    Duration::from_micros(100),
                    Duration::from_micros(110),
                    None,
                );
            }
            for second in 1..=60 {
                let rows = history.sample(&metrics, &serving, base + f64::from(minute * 60 + second));
                if second == 60 {
                    assert_eq!(rows.len(), 1, "minute {minute}");
                }
            }
        }
        let query = |metric: &str, stat: &str, period: u32| MetricQuery {
            metric: metric.into(),
            stat: Some(stat.into()),
            period: Some(period),
            start: Some(unix_to_rfc3339(base as i64, 0)),
            end: Some(unix_to_rfc3339(base as i64 + 3 * 60, 0)),
            variant: None,
        };
        let series = history.query("credit", &query("invocations", "sum", 60), base + 181.0).unwrap();
        let values: Vec<f64> = series.datapoints.iter().map(|point| point.value).collect();
        assert_eq!(values, vec![10.0, 20.0, 30.0]);
        let series = history.query("credit", &query("invocations", "sum", 180), base + 181.0).unwrap();
        assert_eq!(series.datapoints.len(), 1);
        assert_eq!(series.datapoints[0].value, 60.0);
        let series = history.query("credit", &query("instances", "avg", 60), base + 181.0).unwrap();
        assert!(series.datapoints.iter().all(|point| (point.value - 2.0).abs() < 1e-9), "{series:?}");
        let series = history.query("credit", &query("model_latency", "p50", 60), base + 181.0).unwrap();
        assert!(series.datapoints.iter().all(|point| (100.0..119.0).contains(&point.value)), "{series:?}");
        let error = history.query("credit", &query("invocations", "p99", 60), base).unwrap_err().to_string();
        assert!(error.contains("use one of sum, avg"), "{error}");
        let error = history.query("credit", &query("latency", "avg", 60), base).unwrap_err().to_string();
        assert!(error.contains("metric \"latency\" is unknown"), "{error}");
        let error = history.query("credit", &query("invocations", "sum", 90), base).unwrap_err().to_string();
        assert!(error.contains("multiple of 60"), "{error}");
    }

    #[test]
    fn minutes_of_other_replicas_add_up_and_a_read_replaces_what_it_covers() {
        let base = 1_700_000_000.0 - 1_700_000_000.0 % 3600.0;
        let serving = vec![("credit".to_string(), "main".to_string(), 1)];
        let replicas: Vec<(Metrics, History)> =
            ["a", "b", "c"].iter().map(|name| (Metrics::default(), History::new(name))).collect();
        let mut rows_of = Vec::new();
        for (index, (metrics, history)) in replicas.iter().enumerate() {
            metrics.variant("credit", "main");
            history.sample(metrics, &serving, base);
            for _ in 0..(index + 1) * 5 {
                metrics.record_invocation("credit", "main", Duration::from_micros(50), Duration::from_micros(60), None);
            }
            let rows = history.sample(metrics, &serving, base + 60.0);
            assert!(rows.iter().all(|row| row.replica == ["a", "b", "c"][index]), "{rows:?}");
            rows_of.push(rows);
        }
        let (_, first) = &replicas[0];
        let others: Vec<MetricMinute> = rows_of[1..].iter().flatten().cloned().collect();
        let minute = (base / 60.0) as i64;
        first.replace_others(minute, others.clone(), true);
        let query = MetricQuery {
            metric: "invocations".into(),
            stat: Some("sum".into()),
            period: Some(60),
            start: Some(unix_to_rfc3339(base as i64, 0)),
            end: Some(unix_to_rfc3339(base as i64 + 60, 0)),
            variant: None,
        };
        let total = |history: &History| -> Vec<f64> {
            history.query("credit", &query, base + 61.0).unwrap().datapoints.iter().map(|point| point.value).collect()
        };
        assert_eq!(total(first), vec![5.0 + 10.0 + 15.0]);
        // Three replicas of one instance each served the whole minute side by side.
        let value = |metric: &str, stat: &str| -> f64 {
            let query = MetricQuery { metric: metric.into(), stat: Some(stat.into()), ..query.clone() };
            first.query("credit", &query, base + 61.0).unwrap().datapoints[0].value
        };
        assert!((value("instances", "avg") - 3.0).abs() < 1e-9);
        assert!((value("invocations_per_instance", "sum") - 10.0).abs() < 1e-9);
        // A read replaces the minutes it covers (a replica rewrote its row), never adding a row twice.
        first.replace_others(minute, others.clone(), true);
        assert_eq!(total(first), vec![30.0]);
        first.replace_others(minute, others[..1].to_vec(), true);
        assert_eq!(total(first), vec![15.0]);
        // A read from a later minute keeps what it does not cover.
        first.replace_others(minute + 1, Vec::new(), true);
        assert_eq!(total(first), vec![15.0]);
        // Earlier runs of an embedded server served one after the other: their seconds add up.
        first.replace_others(minute, others[..1].to_vec(), false);
        assert!((value("instances", "avg") - 1.0).abs() < 1e-9);
    }
}
