//! `riskserve endpoint stats NAME`: an endpoint's per-minute history (invocations, errors, latencies,
//! instances) from the server's built-in history, as a table per period or as the server's JSON.

use anyhow::bail;
use serde_json::{Map, Value};

use super::http::segment;
use super::table;
use super::{Client, Output, print_json};

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The endpoint's name.
    pub name: String,
    /// One metric only (invocations, invocations_per_instance, model_latency, overhead_latency, errors_4xx,
    /// errors_5xx, rejected, instances); without it, a table of the usual ones.
    #[arg(long)]
    pub metric: Option<String>,
    /// With --metric: sum, avg, p50 or p99.
    #[arg(long, requires = "metric")]
    pub stat: Option<String>,
    /// Seconds per row: a multiple of 60.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub period: u32,
    /// How far back: a duration (90m, 24h, 2d) before --end.
    #[arg(long, value_name = "DURATION", default_value = "1h", conflicts_with = "start")]
    pub last: String,
    /// Start time: RFC 3339 or YYYY-MM-DD (instead of --last).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// End time: RFC 3339 or YYYY-MM-DD; default now.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// One variant; the endpoint's variants added together by default.
    #[arg(long)]
    pub variant: Option<String>,
}

/// The columns of the default table: (header, metric, stat).
const COLUMNS: [(&str, &str, &str); 8] = [
    ("INVOCATIONS", "invocations", "sum"),
    ("4XX", "errors_4xx", "sum"),
    ("5XX", "errors_5xx", "sum"),
    ("PER INSTANCE", "invocations_per_instance", "sum"),
    ("INSTANCES", "instances", "avg"),
    ("MODEL P50 µs", "model_latency", "p50"),
    ("MODEL P99 µs", "model_latency", "p99"),
    ("OVERHEAD P50 µs", "overhead_latency", "p50"),
];

fn query(args: &StatsArgs, metric: &str, stat: Option<&str>) -> String {
    let mut parts = vec![format!("metric={}", segment(metric)), format!("period={}", args.period)];
    if let Some(stat) = stat {
        parts.push(format!("stat={}", segment(stat)));
    }
    match &args.start {
        Some(start) => parts.push(format!("start={}", segment(start))),
        None => parts.push(format!("start=-{}", segment(&args.last))),
    }
    if let Some(end) = &args.end {
        parts.push(format!("end={}", segment(end)));
    }
    if let Some(variant) = &args.variant {
        parts.push(format!("variant={}", segment(variant)));
    }
    format!("/api/v1/endpoints/{}/metrics?{}", segment(&args.name), parts.join("&"))
}

fn points(series: &Value) -> Vec<(String, f64)> {
    series
        .get("datapoints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|point| Some((point.get("timestamp")?.as_str()?.to_string(), point.get("value")?.as_f64()?)))
        .collect()
}

/// A figure for people: whole numbers bare, others with up to two decimals.
fn figure(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.2}") }
}

/// `2026-11-28T19:05:00.000Z` as `2026-11-28 19:05`.
fn minute_of(timestamp: &str) -> String {
    timestamp.get(..16).map_or_else(|| timestamp.to_string(), |minute| minute.replacen('T', " ", 1))
}

pub fn run(client: &Client, output: Output, args: &StatsArgs) -> anyhow::Result<()> {
    if args.period == 0 || !args.period.is_multiple_of(60) {
        bail!("--period must be a positive multiple of 60 seconds, got {}", args.period);
    }
    if let Some(metric) = &args.metric {
        let series = client.get_json(&query(args, metric, args.stat.as_deref()))?;
        if output == Output::Json {
            print_json(&series);
        } else {
            let header = format!(
                "{} ({}, {})",
                metric.to_uppercase(),
                table::cell(&series, "stat"),
                table::cell(&series, "unit")
            );
            let rows: Vec<Vec<String>> =
                points(&series).into_iter().map(|(time, value)| vec![minute_of(&time), figure(value)]).collect();
            print!("{}", table::render(&["TIME (UTC)", &header], &rows));
        }
        return Ok(());
    }
    let mut all = Map::new();
    let mut by_time: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (index, (header, metric, stat)) in COLUMNS.iter().enumerate() {
        let series = client.get_json(&query(args, metric, Some(stat)))?;
        for (time, value) in points(&series) {
            by_time.entry(time).or_insert_with(|| vec!["-".to_string(); COLUMNS.len()])[index] = figure(value);
        }
        all.insert(format!("{metric}_{stat}"), series);
        let _ = header;
    }
    if output == Output::Json {
        print_json(&Value::Object(all));
        return Ok(());
    }
    let mut headers = vec!["TIME (UTC)"];
    headers.extend(COLUMNS.iter().map(|(header, _, _)| *header));
    let rows: Vec<Vec<String>> =
        by_time.into_iter().map(|(time, cells)| std::iter::once(minute_of(&time)).chain(cells).collect()).collect();
    if rows.is_empty() {
        println!("no invocations or instances recorded for `{}` in this window", args.name);
        return Ok(());
    }
    print!("{}", table::render(&headers, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_times_read_well() {
        assert_eq!(figure(12.0), "12");
        assert_eq!(figure(12.345), "12.35");
        assert_eq!(minute_of("2026-11-28T19:05:00.000Z"), "2026-11-28 19:05");
        assert_eq!(minute_of("short"), "short");
    }

    #[test]
    fn queries_carry_the_window() {
        let args = StatsArgs {
            name: "credit".into(),
            metric: None,
            stat: None,
            period: 300,
            last: "24h".into(),
            start: None,
            end: Some("2026-11-28T10:00:00+01:00".into()),
            variant: Some("main".into()),
        };
        assert_eq!(
            query(&args, "model_latency", Some("p99")),
            "/api/v1/endpoints/credit/metrics?metric=model_latency&period=300&stat=p99&start=-24h\
             &end=2026-11-28T10%3A00%3A00%2B01%3A00&variant=main"
        );
    }
}
