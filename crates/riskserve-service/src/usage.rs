//! Usage and cost: metering of instance-seconds (per endpoint and variant) and invocations (per
//! endpoint, variant and calling principal), stored per minute with the endpoint's tags, and the
//! cost report that prices them with the configured price table.
//!
//! The meter reads a [`Clock`], so a test can drive time by hand and check figures exactly.
//! Instance-seconds are the count observed at one meter reading times the time until the next
//! reading, split at minute boundaries; the meter reads every second, and right after every
//! change the autoscaler makes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use riskserve_store::{Store, UsageRecord, unix_to_rfc3339};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
#[cfg(test)]
use crate::history::parse_time;
use crate::history::{parse_moment, unix_seconds_now};

/// Where the meter reads the time: seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now(&self) -> f64;
}

/// The system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        unix_seconds_now()
    }
}

/// Prices (`[prices]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PriceTable {
    /// The currency the prices are in, as shown in reports.
    pub currency: String,
    /// Price of one instance running for an hour.
    pub instance_hour: f64,
    /// Price of a million invocations.
    pub million_invocations: f64,
}

impl Default for PriceTable {
    fn default() -> PriceTable {
        PriceTable { currency: "USD".to_string(), instance_hour: 0.10, million_invocations: 0.40 }
    }
}

impl PriceTable {
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [("instance_hour", self.instance_hour), ("million_invocations", self.million_invocations)]
        {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("prices.{name} must be a finite number not below 0, got {value}"));
            }
        }
        Ok(())
    }
}

/// A serving variant as the meter sees it at one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingVariant {
    pub endpoint: String,
    pub variant: String,
    pub instances: usize,
}

/// Cumulative invocations of one principal on one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalCount {
    pub endpoint: String,
    pub variant: String,
    pub principal: String,
    pub invocations: u64,
}

type UsageKey = (i64, String, String, String);

#[derive(Default)]
struct MeterState {
    last_reading: Option<f64>,
    /// Instances of each variant at the last reading: what ran until this one.
    instances: HashMap<(String, String), usize>,
    /// Invocation counts at the last reading.
    invocations: HashMap<(String, String, String), u64>,
    /// Usage not yet stored: (minute, endpoint, variant, principal) → (instance-seconds, invocations).
    pending: BTreeMap<UsageKey, (f64, u64)>,
}

/// The usage meter.
pub struct Meter {
    clock: Arc<dyn Clock>,
    state: Mutex<MeterState>,
}

impl Meter {
    pub fn new(clock: Arc<dyn Clock>) -> Meter {
        Meter { clock, state: Mutex::new(MeterState::default()) }
    }

    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// One reading: the instances that ran since the last reading become instance-seconds (split
    /// at minute boundaries), new invocations are counted in the current minute.
    pub fn read(&self, serving: &[ServingVariant], principals: &[PrincipalCount]) {
        let now = self.clock.now();
        let mut state = self.lock();
        if let Some(last) = state.last_reading.filter(|last| *last < now) {
            let ran: Vec<((String, String), usize)> =
                state.instances.iter().map(|(key, count)| (key.clone(), *count)).collect();
            for ((endpoint, variant), count) in ran {
                if count == 0 {
                    continue;
                }
                let mut from = last;
                while from < now {
                    let minute = (from / 60.0).floor();
                    let until = ((minute + 1.0) * 60.0).min(now);
                    let entry = state
                        .pending
                        .entry((minute as i64, endpoint.clone(), variant.clone(), String::new()))
                        .or_default();
                    entry.0 += count as f64 * (until - from);
                    from = until;
                }
            }
        }
        if state.last_reading.is_none_or(|last| last <= now) {
            state.last_reading = Some(now);
        }
        state.instances = serving
            .iter()
            .map(|variant| ((variant.endpoint.clone(), variant.variant.clone()), variant.instances))
            .collect();
        let minute = (now / 60.0).floor() as i64;
        for count in principals {
            let key = (count.endpoint.clone(), count.variant.clone(), count.principal.clone());
            let before = state.invocations.insert(key, count.invocations).unwrap_or(0);
            let added = count.invocations.saturating_sub(before);
            if added > 0 {
                let entry = state
                    .pending
                    .entry((minute, count.endpoint.clone(), count.variant.clone(), count.principal.clone()))
                    .or_default();
                entry.1 += added;
            }
        }
    }

    /// Takes the usage not yet stored, as rows with the endpoints' tags (`tags` by endpoint name).
    pub fn take_pending(&self, tags: &HashMap<String, String>) -> Vec<UsageRecord> {
        let pending = std::mem::take(&mut self.lock().pending);
        pending
            .into_iter()
            .map(|((minute, endpoint, variant, principal), (instance_seconds, invocations))| UsageRecord {
                minute,
                tags: tags.get(&endpoint).cloned().unwrap_or_else(|| "{}".to_string()),
                endpoint,
                variant,
                principal,
                instance_seconds,
                invocations,
            })
            .collect()
    }

    /// Stores what is pending (the endpoints' current tags go with it).
    pub async fn flush(&self, store: &Store) -> Result<(), ServiceError> {
        if self.lock().pending.is_empty() {
            return Ok(());
        }
        let tags: HashMap<String, String> = store
            .metadata
            .all_endpoints()
            .await?
            .into_iter()
            .map(|endpoint| (endpoint.name, serde_json::to_string(&endpoint.tags).unwrap_or_else(|_| "{}".into())))
            .collect();
        let rows = self.take_pending(&tags);
        if let Err(error) = store.metadata.add_usage(&rows).await {
            // Put the rows back so the next flush tries again.
            let mut state = self.lock();
            for row in rows {
                let entry = state.pending.entry((row.minute, row.endpoint, row.variant, row.principal)).or_default();
                entry.0 += row.instance_seconds;
                entry.1 += row.invocations;
            }
            return Err(error.into());
        }
        Ok(())
    }
}

/// The query of `GET /api/v1/cost`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    /// endpoint (default), variant, tag or principal.
    pub by: Option<String>,
    /// RFC 3339, `YYYY-MM-DD`, or a duration before `to` (`-24h`, `-7d`); default 24 hours before `to`.
    pub from: Option<String>,
    /// RFC 3339, `YYYY-MM-DD`, or a duration before now (exclusive); default now.
    pub to: Option<String>,
}

/// One line of a cost report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostLine {
    /// The endpoint, `endpoint/variant`, `key=value` tag, or principal name; `(capacity)` holds the
    /// instance time in a report by principal, `(untagged)` endpoints without tags.
    pub key: String,
    pub instance_seconds: f64,
    pub instance_hours: f64,
    pub invocations: u64,
    pub instance_cost: f64,
    pub invocation_cost: f64,
    pub cost: f64,
}

/// A cost report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostReport {
    pub by: String,
    /// RFC 3339, whole minutes.
    pub from: String,
    pub to: String,
    pub prices: PriceTable,
    pub lines: Vec<CostLine>,
    /// Each instance-second and invocation once (a report by tag may count an endpoint under
    /// several tags; the total does not).
    pub total: CostLine,
}

impl CostLine {
    fn add(&mut self, instance_seconds: f64, invocations: u64) {
        self.instance_seconds += instance_seconds;
        self.invocations += invocations;
    }

    fn price(&mut self, prices: &PriceTable) {
        self.instance_hours = self.instance_seconds / 3600.0;
        self.instance_cost = self.instance_hours * prices.instance_hour;
        self.invocation_cost = self.invocations as f64 / 1e6 * prices.million_invocations;
        self.cost = self.instance_cost + self.invocation_cost;
    }
}

/// The minutes `[from, to)` of a cost query, as minutes since the epoch.
pub fn report_window(query: &CostQuery, now: f64) -> Result<(i64, i64), ServiceError> {
    let to = match &query.to {
        Some(text) => parse_moment(text, "to", now as i64)?.div_euclid(60),
        None => (now / 60.0).floor() as i64 + 1,
    };
    let from = match &query.from {
        Some(text) => parse_moment(text, "from", to * 60)?.div_euclid(60),
        None => to - 24 * 60,
    };
    if from >= to {
        return Err(ServiceError::validation("from must be before to"));
    }
    Ok((from, to))
}

/// Prices stored usage and groups it by `by`.
pub fn cost_report(
    rows: &[UsageRecord],
    by: &str,
    window: (i64, i64),
    prices: &PriceTable,
) -> Result<CostReport, ServiceError> {
    let mut lines: BTreeMap<String, CostLine> = BTreeMap::new();
    let mut total = CostLine { key: "total".to_string(), ..CostLine::default() };
    for row in rows {
        let keys: Vec<String> = match by {
            "endpoint" => vec![row.endpoint.clone()],
            "variant" => vec![format!("{}/{}", row.endpoint, row.variant)],
            "principal" => {
                vec![if row.principal.is_empty() { "(capacity)".to_string() } else { row.principal.clone() }]
            }
            "tag" => {
                let tags: BTreeMap<String, String> = serde_json::from_str(&row.tags).unwrap_or_default();
                if tags.is_empty() {
                    vec!["(untagged)".to_string()]
                } else {
                    tags.iter().map(|(key, value)| format!("{key}={value}")).collect()
                }
            }
            other => {
                return Err(ServiceError::validation(format!(
                    "by {other:?} is unknown; use endpoint, variant, tag or principal"
                )));
            }
        };
        for key in keys {
            lines
                .entry(key.clone())
                .or_insert_with(|| CostLine { key, ..CostLine::default() })
                .add(row.instance_seconds, row.invocations);
        }
        total.add(row.instance_seconds, row.invocations);
    }
    let mut lines: Vec<CostLine> = lines.into_values().collect();
    for line in &mut lines {
        line.price(prices);
    }
    total.price(prices);
    Ok(CostReport {
        by: by.to_string(),
        from: unix_to_rfc3339(window.0 * 60, 0),
        to: unix_to_rfc3339(window.1 * 60, 0),
        prices: prices.clone(),
        lines,
        total,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock the test sets by hand.
    #[derive(Default)]
    struct HandClock(AtomicU64);

    impl HandClock {
        fn set(&self, seconds: f64) {
            self.0.store(seconds.to_bits(), Ordering::SeqCst);
        }
    }

    impl Clock for HandClock {
        fn now(&self) -> f64 {
            f64::from_bits(self.0.load(Ordering::SeqCst))
        }
    }

    fn serving(endpoint: &str, variant: &str, instances: usize) -> ServingVariant {
        ServingVariant { endpoint: endpoint.into(), variant: variant.into(), instances }
    }

    fn count(endpoint: &str, principal: &str, invocations: u64) -> PrincipalCount {
        PrincipalCount { endpoint: endpoint.into(), variant: "main".into(), principal: principal.into(), invocations }
    }

    /// A day of two endpoints, priced by hand:
    /// - `cards` (tag team=cards): 2 instances for 90 minutes, then 5 for 30 minutes, then 1 for an
    ///   hour = 3 + 2.5 + 1 = 6.5 instance-hours; alice calls it 600,000 times, bob 400,000.
    /// - `loans` (untagged): 3 instances for 3 hours = 9 instance-hours; bob calls it 250,000 times.
    ///
    /// At 0.25 an instance-hour and 2.00 a million invocations: cards 1.625 + 2.00 = 3.625;
    /// loans 2.25 + 0.50 = 2.75; alice 1.20; bob 0.80 + 0.50 = 1.30; capacity 3.875.
    #[tokio::test]
    async fn a_hand_computed_day_costs_what_the_report_says() {
        let dir = std::env::temp_dir().join(format!("riskserve-usage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).await.unwrap();
        let clock = Arc::new(HandClock::default());
        let meter = Meter::new(clock.clone());
        // Start at 10:00:30 so that readings fall between minute boundaries.
        let start = parse_time("2026-11-28T10:00:30Z", "start").unwrap() as f64;
        let minutes = |count: f64| start + count * 60.0;
        clock.set(start);
        meter.read(&[serving("cards", "main", 2), serving("loans", "main", 3)], &[]);
        clock.set(minutes(45.0));
        meter.read(
            &[serving("cards", "main", 2), serving("loans", "main", 3)],
            &[count("cards", "alice", 600_000), count("loans", "bob", 100_000)],
        );
        clock.set(minutes(90.0));
        meter.read(
            &[serving("cards", "main", 5), serving("loans", "main", 3)],
            &[count("cards", "alice", 600_000), count("cards", "bob", 400_000), count("loans", "bob", 250_000)],
        );
        clock.set(minutes(120.0));
        meter.read(&[serving("cards", "main", 1), serving("loans", "main", 3)], &[]);
        clock.set(minutes(180.0));
        meter.read(&[serving("loans", "main", 0)], &[]);
        let tags = HashMap::from([
            ("cards".to_string(), r#"{"team":"cards"}"#.to_string()),
            ("loans".to_string(), "{}".to_string()),
        ]);
        store.metadata.add_usage(&meter.take_pending(&tags)).await.unwrap();
        let window =
            report_window(&CostQuery { by: None, from: Some("2026-11-28".into()), to: Some("2026-11-29".into()) }, 0.0)
                .unwrap();
        let rows = store.metadata.usage_between(window.0, window.1).await.unwrap();
        let prices = PriceTable { currency: "EUR".into(), instance_hour: 0.25, million_invocations: 2.0 };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;

        let report = cost_report(&rows, "endpoint", window, &prices).unwrap();
        let figures: Vec<(&str, f64, u64, f64)> = report
            .lines
            .iter()
            .map(|line| (line.key.as_str(), line.instance_hours, line.invocations, line.cost))
            .collect();
        assert_eq!(figures.len(), 2, "{figures:?}");
        assert_eq!((figures[0].0, figures[0].2), ("cards", 1_000_000));
        assert!(close(figures[0].1, 6.5) && close(figures[0].3, 3.625), "{figures:?}");
        assert_eq!((figures[1].0, figures[1].2), ("loans", 250_000));
        assert!(close(figures[1].1, 9.0) && close(figures[1].3, 2.75), "{figures:?}");
        assert!(close(report.total.cost, 6.375), "{:?}", report.total);
        assert_eq!(report.from, "2026-11-28T00:00:00.000Z");

        let report = cost_report(&rows, "principal", window, &prices).unwrap();
        let costs: Vec<(&str, f64)> = report.lines.iter().map(|line| (line.key.as_str(), line.cost)).collect();
        assert_eq!(costs.iter().map(|(key, _)| *key).collect::<Vec<_>>(), ["(capacity)", "alice", "bob"]);
        assert!(close(costs[0].1, 3.875) && close(costs[1].1, 1.2) && close(costs[2].1, 1.3), "{costs:?}");

        let report = cost_report(&rows, "tag", window, &prices).unwrap();
        let costs: Vec<(&str, f64)> = report.lines.iter().map(|line| (line.key.as_str(), line.cost)).collect();
        assert_eq!(costs.iter().map(|(key, _)| *key).collect::<Vec<_>>(), ["(untagged)", "team=cards"]);
        assert!(close(costs[0].1, 2.75) && close(costs[1].1, 3.625), "{costs:?}");

        // A window of the first hour only: cards 2 × 59.5 min, loans 3 × 59.5 min (10:00:30 to 11:00).
        let first_hour = (window.0 + 600, window.0 + 660);
        let rows = store.metadata.usage_between(first_hour.0, first_hour.1).await.unwrap();
        let report = cost_report(&rows, "endpoint", first_hour, &prices).unwrap();
        assert!(close(report.lines[0].instance_seconds, 2.0 * 3570.0), "{:?}", report.lines);
        assert!(close(report.lines[1].instance_seconds, 3.0 * 3570.0), "{:?}", report.lines);

        let error = cost_report(&rows, "team", first_hour, &prices).unwrap_err().to_string();
        assert!(error.contains("by \"team\" is unknown"), "{error}");
        store.metadata.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
