//! Invocation metrics per endpoint and variant (SageMaker's measures), recorded with a few atomic
//! additions on the invocation path, and their Prometheus exposition (`prometheus-client`).
//!
//! Counters are cumulative and never reset: the history (per-minute aggregates), the usage meter
//! and the autoscaler read them and keep differences of their own, so recording stays a handful of
//! relaxed atomic additions with no lock. Latencies go to fixed log-linear buckets (four per
//! doubling from 1 µs to about 67 s): exact counts per bucket, so any Prometheus bucket boundary that
//! is a power of two microseconds, and per-minute percentiles, come from the same counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::error::ErrorClass;

/// Buckets per doubling of latency.
const BUCKETS_PER_DOUBLING: usize = 4;
/// Doublings above 1 µs that have buckets: the last finite bound is 2^26 µs (about 67 s).
const DOUBLINGS: usize = 26;
/// Finite buckets plus one for everything beyond the last bound.
pub const LATENCY_BUCKETS: usize = DOUBLINGS * BUCKETS_PER_DOUBLING + 2;

/// The upper bound of bucket `index` in seconds (`f64::INFINITY` for the last): each doubling
/// from 1 µs is split in four equal steps, so bucket `4k + j` ends at `2^k × (1 + j/4)` µs.
pub fn bucket_upper_bound(index: usize) -> f64 {
    if index + 1 >= LATENCY_BUCKETS {
        return f64::INFINITY;
    }
    let doubling = (index / BUCKETS_PER_DOUBLING) as i32;
    let step = (index % BUCKETS_PER_DOUBLING) as f64;
    1e-6 * 2f64.powi(doubling) * (1.0 + step / BUCKETS_PER_DOUBLING as f64)
}

/// The bucket a latency falls in: the first whose upper bound is at least the latency. Integer
/// arithmetic only (it runs twice per request): in quarter microseconds `q = ceil(ns / 250)`, the
/// bounds are `(4 + j) << k`, and the first one at or above `q` comes from the top three bits of `q - 1`.
pub fn bucket_index(latency: Duration) -> usize {
    let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
    let quarters = nanos.div_ceil(250);
    if quarters <= 4 {
        return 0;
    }
    let below = quarters - 1;
    let top_bit = 63 - below.leading_zeros() as usize;
    let shift = top_bit - 2;
    let top_three = (below >> shift) as usize;
    let index = BUCKETS_PER_DOUBLING * shift + top_three - 3;
    index.min(LATENCY_BUCKETS - 1)
}

/// A latency histogram of atomic bucket counts and a sum in nanoseconds.
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    sum_nanos: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_nanos: AtomicU64::new(0) }
    }
}

impl LatencyHistogram {
    pub fn observe(&self, latency: Duration) {
        if let Some(bucket) = self.buckets.get(bucket_index(latency)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts now (cumulative since the start).
    pub fn snapshot(&self) -> HistogramCounts {
        HistogramCounts {
            buckets: self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect(),
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts at one moment, or the difference between two moments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramCounts {
    /// One count per bucket (`LATENCY_BUCKETS`), not cumulative.
    pub buckets: Vec<u64>,
    pub sum_nanos: u64,
}

impl HistogramCounts {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was added between `earlier` and `self`.
    pub fn since(&self, earlier: &HistogramCounts) -> HistogramCounts {
        HistogramCounts {
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .map(|(index, count)| count.saturating_sub(earlier.buckets.get(index).copied().unwrap_or(0)))
                .collect(),
            sum_nanos: self.sum_nanos.saturating_sub(earlier.sum_nanos),
        }
    }

    pub fn add(&mut self, other: &HistogramCounts) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum_nanos += other.sum_nanos;
    }

    /// The `quantile` (0 to 1) in seconds: the upper bound of the bucket that holds it (so at most
    /// one bucket, 12.5 % to 25 %, above the true value); `None` without observations.
    pub fn quantile(&self, quantile: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let bound = bucket_upper_bound(index);
                // Beyond the last bound the mean is the best figure there is.
                return Some(if bound.is_finite() { bound } else { self.sum_nanos as f64 / 1e9 / total as f64 });
            }
        }
        None
    }
}

/// Stripes of counters: each recording thread adds to its own stripe (its own cache lines), so
/// that requests recording at once on several cores do not fight over one line; readers add the
/// stripes up.
const STRIPES: usize = 8;

/// The stripe of the current thread, assigned once per thread in turn.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

/// One stripe of a variant's counters, aligned so that two stripes never share a cache line.
#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    invocations: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
    /// 503 `overloaded`: every queue was full (also counted in `errors_5xx`).
    rejected: AtomicU64,
    model_latency: LatencyHistogram,
    overhead_latency: LatencyHistogram,
}

/// A counter in stripes (invocations of one principal).
#[derive(Default)]
struct StripedCounter([PaddedCounter; STRIPES]);

#[derive(Default)]
#[repr(align(128))]
struct PaddedCounter(AtomicU64);

impl StripedCounter {
    fn add(&self, stripe: usize) {
        if let Some(counter) = self.0.get(stripe) {
            counter.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|counter| counter.0.load(Ordering::Relaxed)).sum()
    }
}

/// FNV-1a: names are short and chosen by administrators and authenticated callers, so a fast
/// hash serves the invocation path's lookups better than SipHash.
#[derive(Default, Clone, Copy)]
pub struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type NameMap<T> = HashMap<String, T, std::hash::BuildHasherDefault<NameHasher>>;

/// The cumulative measures of one endpoint variant.
#[derive(Default)]
pub struct VariantMetrics {
    stripes: [Stripe; STRIPES],
    /// Seconds the last deployment of the variant took to load its model and start its units (f64 bits).
    setup_seconds: AtomicU64,
    /// Invocations per calling principal, for the usage meter; the map only grows by new principals.
    principals: ArcSwap<NameMap<Arc<StripedCounter>>>,
    principals_writer: Mutex<()>,
}

/// A variant's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantCounts {
    pub invocations: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub rejected: u64,
    pub model_latency: HistogramCounts,
    pub overhead_latency: HistogramCounts,
}

impl VariantMetrics {
    /// Records one invocation that reached this variant: `model` is the time from queueing the job
    /// to its answer (queue, decoding, scoring, encoding), `total` the whole request as the façade
    /// saw it; the overhead is their difference. `failure` is the class of the error answered, if any.
    pub fn record(&self, model: Duration, total: Duration, failure: Option<ErrorClass>) {
        let Some(stripe) = self.stripes.get(stripe()) else { return };
        stripe.invocations.fetch_add(1, Ordering::Relaxed);
        match failure {
            None => {}
            Some(ErrorClass::Client) => {
                stripe.errors_4xx.fetch_add(1, Ordering::Relaxed);
            }
            Some(ErrorClass::Server) => {
                stripe.errors_5xx.fetch_add(1, Ordering::Relaxed);
            }
            Some(ErrorClass::Overloaded) => {
                stripe.errors_5xx.fetch_add(1, Ordering::Relaxed);
                stripe.rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
        // A request refused before the model saw it has no model latency.
        if !model.is_zero() {
            stripe.model_latency.observe(model);
        }
        stripe.overhead_latency.observe(total.saturating_sub(model));
    }

    /// Counts one invocation of `principal` for the usage meter.
    pub fn record_principal(&self, principal: &str) {
        if let Some(counter) = self.principals.load().get(principal) {
            counter.add(stripe());
            return;
        }
        let _serial = self.principals_writer.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut next = NameMap::clone(&self.principals.load());
        next.entry(principal.to_string()).or_default().add(stripe());
        self.principals.store(Arc::new(next));
    }

    /// Cumulative invocations per principal.
    pub fn principal_counts(&self) -> Vec<(String, u64)> {
        self.principals.load().iter().map(|(name, count)| (name.clone(), count.sum())).collect()
    }

    pub fn set_setup_time(&self, setup: Duration) {
        self.setup_seconds.store(setup.as_secs_f64().to_bits(), Ordering::Relaxed);
    }

    pub fn setup_time(&self) -> f64 {
        f64::from_bits(self.setup_seconds.load(Ordering::Relaxed))
    }

    pub fn invocations(&self) -> u64 {
        self.stripes.iter().map(|stripe| stripe.invocations.load(Ordering::Relaxed)).sum()
    }

    pub fn counts(&self) -> VariantCounts {
        let mut counts = VariantCounts::default();
        for stripe in &self.stripes {
            counts.invocations += stripe.invocations.load(Ordering::Relaxed);
            counts.errors_4xx += stripe.errors_4xx.load(Ordering::Relaxed);
            counts.errors_5xx += stripe.errors_5xx.load(Ordering::Relaxed);
            counts.rejected += stripe.rejected.load(Ordering::Relaxed);
            counts.model_latency.add(&stripe.model_latency.snapshot());
            counts.overhead_latency.add(&stripe.overhead_latency.snapshot());
        }
        counts
    }
}

type VariantMap = NameMap<NameMap<Arc<VariantMetrics>>>;

/// Every variant's measures; readers look a variant up without a lock.
#[derive(Default)]
pub struct Metrics {
    variants: ArcSwap<VariantMap>,
    writer: Mutex<()>,
}

impl Metrics {
    /// The measures of a variant, created on first use.
    pub fn variant(&self, endpoint: &str, variant: &str) -> Arc<VariantMetrics> {
        if let Some(found) = self.variants.load().get(endpoint).and_then(|variants| variants.get(variant)) {
            return Arc::clone(found);
        }
        let _serial = self.writer.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut next = VariantMap::clone(&self.variants.load());
        let entry = Arc::clone(
            next.entry(endpoint.to_string())
                .or_default()
                .entry(variant.to_string())
                .or_insert_with(|| Arc::new(VariantMetrics::default())),
        );
        self.variants.store(Arc::new(next));
        entry
    }

    /// The one recording function of the invocation path (every façade goes through
    /// `Service::invoke_with`, which calls it once per request).
    pub fn record_invocation(
        &self,
        endpoint: &str,
        variant: &str,
        model: Duration,
        total: Duration,
        failure: Option<ErrorClass>,
    ) {
        self.variant(endpoint, variant).record(model, total, failure);
    }

    /// Forgets a deleted endpoint's measures (its history and usage stay stored).
    pub fn remove_endpoint(&self, endpoint: &str) {
        let _serial = self.writer.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut next = VariantMap::clone(&self.variants.load());
        if next.remove(endpoint).is_some() {
            self.variants.store(Arc::new(next));
        }
    }

    /// Every variant with measures, as (endpoint, variant, measures), in name order.
    pub fn all(&self) -> Vec<(String, String, Arc<VariantMetrics>)> {
        let map = self.variants.load();
        let mut all: Vec<_> = map
            .iter()
            .flat_map(|(endpoint, variants)| {
                variants.iter().map(move |(variant, metrics)| (endpoint.clone(), variant.clone(), Arc::clone(metrics)))
            })
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }
}

/// What the invocation path knows beyond the request: when the façade received it and who sent it.
#[derive(Debug, Clone)]
pub struct InvocationContext {
    pub received: Instant,
    /// The calling principal's name (`anonymous` without credentials).
    pub principal: String,
}

impl InvocationContext {
    pub fn now(principal: impl Into<String>) -> InvocationContext {
        InvocationContext { received: Instant::now(), principal: principal.into() }
    }
}

/// A serving variant's gauges at scrape time.
#[derive(Debug, Clone)]
pub struct VariantGauges {
    pub endpoint: String,
    pub variant: String,
    pub instances: usize,
    /// Jobs queued or running on its units.
    pub queued: usize,
    /// Invocations per instance per minute over the autoscaler's window (the scaling metric).
    pub invocations_per_instance: Option<f64>,
}

/// The process's own figures, read from `/proc/self`.
#[derive(Debug, Clone, Default)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub start_time_seconds: f64,
}

/// Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every architecture Linux
/// exposes to user space.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

impl ProcessStats {
    /// Reads `/proc/self/stat`, `/proc/self/status` and `/proc/self/fd`; what cannot be read stays 0.
    pub fn read() -> ProcessStats {
        let mut stats = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // The command name may hold spaces and parentheses: fields count from after the last ')'.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // After ')': state is field 3 of stat(5), so field N sits at index N - 3.
                let field = |number: usize| fields.get(number - 3).and_then(|text| text.parse::<f64>().ok());
                let user = field(14).unwrap_or(0.0);
                let system = field(15).unwrap_or(0.0);
                stats.cpu_seconds = (user + system) / CLOCK_TICKS_PER_SECOND;
                stats.threads = field(20).unwrap_or(0.0) as u64;
                stats.virtual_bytes = field(23).unwrap_or(0.0) as u64;
                if let (Some(start_ticks), Some(boot)) = (field(22), boot_time_seconds()) {
                    stats.start_time_seconds = boot + start_ticks / CLOCK_TICKS_PER_SECOND;
                }
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                if let Some(value) = line.strip_prefix("VmRSS:") {
                    let kilobytes = value.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
                    stats.resident_bytes = kilobytes * 1024;
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            stats.open_fds = entries.count() as u64;
        }
        stats
    }
}

fn boot_time_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|line| line.strip_prefix("btime ")).and_then(|value| value.trim().parse().ok())
}

/// The gauges of an endpoint's latest run on this replica (`/metrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorGauges {
    pub score_psi: Option<f64>,
    pub feature_csi: Vec<(String, f64)>,
    pub auc: Option<f64>,
    /// Breaches by metric and severity.
    pub breaches: std::collections::BTreeMap<(String, String), u64>,
    pub last_run_seconds: f64,
}

/// What the server as a whole shows at scrape time, beyond its variants.
#[derive(Debug, Clone, Default)]
pub struct ServerFigures {
    /// Whether this replica leads the replicas of its store (always, on an embedded one).
    pub leader: bool,
    /// Per endpoint that captured since the start: records captured, dropped, written and failed.
    pub captures: Vec<(String, [u64; 4])>,
    /// Per monitored endpoint, its latest run's gauges on this replica.
    pub monitors: Vec<(String, MonitorGauges)>,
}

/// The outcomes of captured records, in the order of [`ServerFigures::captures`].
const CAPTURE_OUTCOMES: [&str; 4] = ["captured", "dropped", "written", "failed"];

/// Everything one scrape shows, gathered before encoding.
#[derive(Debug)]
struct Scrape {
    variants: Vec<(String, String, VariantCounts, f64)>,
    gauges: Vec<VariantGauges>,
    server: ServerFigures,
    process: ProcessStats,
}

type Labels<'a> = [(&'static str, &'a str); 2];
/// A metric's name, help text and how to read its value.
type Described<T> = (&'static str, &'static str, T);
type CountOf = fn(&VariantCounts) -> u64;
type HistogramOf = fn(&VariantCounts) -> &HistogramCounts;
type GaugeOf = fn(&VariantGauges) -> i64;

fn labels<'a>(endpoint: &'a str, variant: &'a str) -> Labels<'a> {
    [("endpoint", endpoint), ("variant", variant)]
}

/// Power-of-two boundaries in microseconds, as Prometheus buckets: every fourth internal bound,
/// each with the count since the previous one (the encoder makes them cumulative).
fn prometheus_buckets(counts: &HistogramCounts) -> Vec<(f64, u64)> {
    let mut since_previous = 0;
    let mut buckets = Vec::with_capacity(DOUBLINGS + 2);
    for (index, count) in counts.buckets.iter().enumerate() {
        since_previous += count;
        if index % BUCKETS_PER_DOUBLING == 0 || index + 1 == counts.buckets.len() {
            buckets.push((bucket_upper_bound(index), since_previous));
            since_previous = 0;
        }
    }
    buckets
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters: [Described<CountOf>; 4] = [
            ("riskserve_invocations", "Invocations that reached a variant (SageMaker's Invocations)", |c| {
                c.invocations
            }),
            ("riskserve_invocation_4xx_errors", "Invocations answered with a 4xx status", |c| c.errors_4xx),
            ("riskserve_invocation_5xx_errors", "Invocations answered with a 5xx status", |c| c.errors_5xx),
            ("riskserve_rejected_requests", "Invocations refused with 503 because every queue was full", |c| {
                c.rejected
            }),
        ];
        for (name, help, value) in counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (endpoint, variant, counts, _) in &self.variants {
                metric
                    .encode_family(&labels(endpoint, variant))?
                    .encode_counter::<NoLabelSet, _, u64>(&value(counts), None)?;
            }
        }
        let histograms: [Described<HistogramOf>; 2] = [
            (
                "riskserve_model_latency_seconds",
                "Time from queueing an invocation to its answer: queue, decoding, scoring, encoding (SageMaker's ModelLatency)",
                |c| &c.model_latency,
            ),
            (
                "riskserve_overhead_latency_seconds",
                "Total request time minus model latency (SageMaker's OverheadLatency)",
                |c| &c.overhead_latency,
            ),
        ];
        for (name, help, value) in histograms {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (endpoint, variant, counts, _) in &self.variants {
                let histogram = value(counts);
                metric.encode_family(&labels(endpoint, variant))?.encode_histogram::<NoLabelSet>(
                    histogram.sum_nanos as f64 / 1e9,
                    histogram.count(),
                    &prometheus_buckets(histogram),
                    None,
                )?;
            }
        }
        let mut setup = encoder.encode_descriptor(
            "riskserve_model_setup_seconds",
            "Time the variant's last deployment took to load its model and start its instances (SageMaker's ModelSetupTime)",
            None,
            MetricType::Gauge,
        )?;
        for (endpoint, variant, _, seconds) in &self.variants {
            setup.encode_family(&labels(endpoint, variant))?.encode_gauge(seconds)?;
        }
        let gauges: [Described<GaugeOf>; 2] = [
            ("riskserve_instances", "Instances (worker units) a serving variant runs now", |g| g.instances as i64),
            ("riskserve_queue_depth", "Invocations queued or running on a serving variant's instances", |g| {
                g.queued as i64
            }),
        ];
        for (name, help, value) in gauges {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for gauge in &self.gauges {
                metric.encode_family(&labels(&gauge.endpoint, &gauge.variant))?.encode_gauge(&value(gauge))?;
            }
        }
        let mut per_instance = encoder.encode_descriptor(
            "riskserve_invocations_per_instance_per_minute",
            "Invocations per instance per minute over the autoscaler's window (SageMaker's InvocationsPerInstance)",
            None,
            MetricType::Gauge,
        )?;
        for gauge in &self.gauges {
            if let Some(value) = gauge.invocations_per_instance {
                per_instance.encode_family(&labels(&gauge.endpoint, &gauge.variant))?.encode_gauge(&value)?;
            }
        }
        encoder
            .encode_descriptor(
                "riskserve_replica_leader",
                "Whether this replica leads the replicas of its store",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::from(self.server.leader))?;
        let mut captured = encoder.encode_descriptor(
            "riskserve_data_capture_records",
            "Captured invocation records by outcome: queued (captured), dropped (the queue was full), written to the \
             artifact store, or failed (the store refused their file)",
            None,
            MetricType::Counter,
        )?;
        for (endpoint, counts) in &self.server.captures {
            for (outcome, count) in CAPTURE_OUTCOMES.iter().zip(counts) {
                captured
                    .encode_family(&[("endpoint", endpoint.as_str()), ("outcome", outcome)])?
                    .encode_counter::<NoLabelSet, _, u64>(count, None)?;
            }
        }
        self.encode_monitors(&mut encoder)?;
        let process = &self.process;
        encoder
            .encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the process",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&process.cpu_seconds, None)?;
        let process_gauges: [(&str, &str, u64); 4] = [
            ("process_resident_memory_bytes", "Resident memory of the process", process.resident_bytes),
            ("process_virtual_memory_bytes", "Virtual memory of the process", process.virtual_bytes),
            ("process_threads", "Threads of the process", process.threads),
            ("process_open_fds", "Open file descriptors of the process", process.open_fds),
        ];
        for (name, help, value) in process_gauges {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)?;
        }
        encoder
            .encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&process.start_time_seconds)?;
        Ok(())
    }
}

impl Scrape {
    /// The latest monitoring run's figures per endpoint: score PSI, feature CSI, AUC, breaches, when it ran.
    fn encode_monitors(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let monitors = &self.server.monitors;
        let mut psi = encoder.encode_descriptor(
            "riskserve_monitor_score_psi",
            "Population stability index of the score against the baseline, latest monitoring run",
            None,
            MetricType::Gauge,
        )?;
        for (endpoint, gauges) in monitors {
            if let Some(value) = gauges.score_psi {
                psi.encode_family(&[("endpoint", endpoint.as_str())])?.encode_gauge(&value)?;
            }
        }
        let mut csi = encoder.encode_descriptor(
            "riskserve_monitor_feature_csi",
            "Characteristic stability index of a feature against the baseline, latest monitoring run",
            None,
            MetricType::Gauge,
        )?;
        for (endpoint, gauges) in monitors {
            for (feature, value) in &gauges.feature_csi {
                csi.encode_family(&[("endpoint", endpoint.as_str()), ("feature", feature.as_str())])?
                    .encode_gauge(value)?;
            }
        }
        let mut auc = encoder.encode_descriptor(
            "riskserve_monitor_auc",
            "Area under the ROC curve on matured outcomes, latest monitoring run",
            None,
            MetricType::Gauge,
        )?;
        for (endpoint, gauges) in monitors {
            if let Some(value) = gauges.auc {
                auc.encode_family(&[("endpoint", endpoint.as_str())])?.encode_gauge(&value)?;
            }
        }
        let mut breaches = encoder.encode_descriptor(
            "riskserve_monitor_breaches",
            "Alert bands the latest monitoring run crossed, by metric and severity (warning, alert)",
            None,
            MetricType::Gauge,
        )?;
        for (endpoint, gauges) in monitors {
            for ((metric, severity), count) in &gauges.breaches {
                let labels =
                    [("endpoint", endpoint.as_str()), ("metric", metric.as_str()), ("severity", severity.as_str())];
                breaches.encode_family(&labels)?.encode_gauge(&i64::try_from(*count).unwrap_or(i64::MAX))?;
            }
        }
        let mut last = encoder.encode_descriptor(
            "riskserve_monitor_last_run_timestamp_seconds",
            "When the latest monitoring run of the endpoint finished, seconds since the Unix epoch",
            None,
            MetricType::Gauge,
        )?;
        for (endpoint, gauges) in monitors {
            last.encode_family(&[("endpoint", endpoint.as_str())])?.encode_gauge(&gauges.last_run_seconds)?;
        }
        Ok(())
    }
}

/// The media type of [`exposition`]'s text.
pub const EXPOSITION_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The Prometheus text exposition of every variant's measures, the serving variants' gauges, the server's and
/// the process's figures.
pub fn exposition(metrics: &Metrics, gauges: Vec<VariantGauges>, server: ServerFigures) -> String {
    let variants = metrics
        .all()
        .into_iter()
        .map(|(endpoint, variant, measures)| {
            let setup = measures.setup_time();
            (endpoint, variant, measures.counts(), setup)
        })
        .collect();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { variants, gauges, server, process: ProcessStats::read() }));
    let mut text = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).is_err() {
        text.clear();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_bounds() {
        assert_eq!(bucket_index(Duration::from_nanos(0)), 0);
        assert_eq!(bucket_index(Duration::from_nanos(1000)), 0);
        assert_eq!(bucket_index(Duration::from_nanos(1001)), 1);
        assert_eq!(bucket_index(Duration::from_micros(2)), 4);
        assert_eq!(bucket_index(Duration::from_secs(3600)), LATENCY_BUCKETS - 1);
        for nanos in [1_u64, 999, 1_500, 77_777, 1_000_000, 123_456_789, 60_000_000_000] {
            let latency = Duration::from_nanos(nanos);
            let index = bucket_index(latency);
            assert!(latency.as_secs_f64() <= bucket_upper_bound(index) * (1.0 + 1e-12), "{nanos} ns in {index}");
            if index > 0 {
                assert!(latency.as_secs_f64() > bucket_upper_bound(index - 1) * (1.0 - 1e-12), "{nanos} ns");
            }
        }
    }

    #[test]
    fn the_integer_index_is_the_first_bound_at_or_above() {
        let reference = |latency: Duration| {
            (0..LATENCY_BUCKETS)
                .find(|index| latency.as_nanos() as f64 <= bucket_upper_bound(*index) * 1e9 + 1e-6)
                .unwrap_or(LATENCY_BUCKETS - 1)
        };
        let mut nanos = 1u64;
        let mut checked = 0;
        while nanos < 200_000_000_000 {
            for candidate in [nanos - 1, nanos, nanos + 1] {
                let latency = Duration::from_nanos(candidate);
                assert_eq!(bucket_index(latency), reference(latency), "{candidate} ns");
                checked += 1;
            }
            nanos = nanos + nanos / 17 + 1;
        }
        for bound in (0..LATENCY_BUCKETS - 1).map(|index| (bucket_upper_bound(index) * 1e9).round() as u64) {
            for candidate in [bound - 1, bound, bound + 1] {
                let latency = Duration::from_nanos(candidate);
                assert_eq!(bucket_index(latency), reference(latency), "{candidate} ns near a bound");
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let histogram = LatencyHistogram::default();
        for _ in 0..98 {
            histogram.observe(Duration::from_micros(100));
        }
        histogram.observe(Duration::from_millis(10));
        histogram.observe(Duration::from_millis(10));
        let counts = histogram.snapshot();
        assert_eq!(counts.count(), 100);
        let p50 = counts.quantile(0.5).unwrap();
        assert!((100e-6..100e-6 * 1.19).contains(&p50), "{p50}");
        let p99 = counts.quantile(0.99).unwrap();
        assert!((10e-3..10e-3 * 1.19).contains(&p99), "{p99}");
        assert_eq!(HistogramCounts::default().quantile(0.5), None);
    }

    #[test]
    fn the_exposition_names_each_variant() {
        let metrics = Metrics::default();
        metrics.record_invocation("credit", "main", Duration::from_micros(50), Duration::from_micros(80), None);
        metrics.record_invocation(
            "credit",
            "main",
            Duration::ZERO,
            Duration::from_micros(5),
            Some(ErrorClass::Overloaded),
        );
        metrics.record_invocation(
            "credit",
            "main",
            Duration::from_micros(50),
            Duration::from_micros(60),
            Some(ErrorClass::Client),
        );
        let gauges = vec![VariantGauges {
            endpoint: "credit".into(),
            variant: "main".into(),
            instances: 3,
            queued: 0,
            invocations_per_instance: Some(12.5),
        }];
        let server =
            ServerFigures { leader: true, captures: vec![("credit".into(), [5, 1, 4, 0])], ..ServerFigures::default() };
        let text = exposition(&metrics, gauges, server);
        for line in [
            "riskserve_replica_leader 1",
            "riskserve_data_capture_records_total{endpoint=\"credit\",outcome=\"captured\"} 5",
            "riskserve_data_capture_records_total{endpoint=\"credit\",outcome=\"dropped\"} 1",
            "riskserve_data_capture_records_total{endpoint=\"credit\",outcome=\"written\"} 4",
            "riskserve_data_capture_records_total{endpoint=\"credit\",outcome=\"failed\"} 0",
            "riskserve_invocations_total{endpoint=\"credit\",variant=\"main\"} 3",
            "riskserve_invocation_4xx_errors_total{endpoint=\"credit\",variant=\"main\"} 1",
            "riskserve_invocation_5xx_errors_total{endpoint=\"credit\",variant=\"main\"} 1",
            "riskserve_rejected_requests_total{endpoint=\"credit\",variant=\"main\"} 1",
            "riskserve_model_latency_seconds_count{endpoint=\"credit\",variant=\"main\"} 2",
            "riskserve_overhead_latency_seconds_count{endpoint=\"credit\",variant=\"main\"} 3",
            "riskserve_instances{endpoint=\"credit\",variant=\"main\"} 3",
            "riskserve_invocations_per_instance_per_minute{endpoint=\"credit\",variant=\"main\"} 12.5",
            "riskserve_model_latency_seconds_bucket{endpoint=\"credit\",variant=\"main\",le=\"+Inf\"} 2",
            "riskserve_model_latency_seconds_bucket{endpoint=\"credit\",variant=\"main\",le=\"6.4e-05\"} 2",
            "riskserve_model_latency_seconds_bucket{endpoint=\"credit\",variant=\"main\",le=\"3.2e-05\"} 0",
        ] {
            assert!(text.lines().any(|candidate| candidate == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }
}
