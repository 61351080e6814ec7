//! `riskserve cost report`: metered usage (instance-hours, invocations) priced with the server's
//! price table, by endpoint, variant, tag or principal.

use serde_json::Value;

use super::http::segment;
use super::table::{self, cell};
use super::{Connection, Output, print_json};

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: CostCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CostCommand {
    /// Usage and cost between two times, grouped.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// How to group the lines.
    #[arg(long, value_parser = ["endpoint", "variant", "tag", "principal"], default_value = "endpoint")]
    pub by: String,
    /// Start: RFC 3339, YYYY-MM-DD, or a duration before --to (24h, 7d) [default: 24h].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End (exclusive): RFC 3339 or YYYY-MM-DD [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

/// A bare duration (`24h`) means that long before the end, as the server reads `-24h`.
fn moment(text: &str) -> String {
    let is_duration = text.len() > 1
        && text.ends_with(['s', 'm', 'h', 'd'])
        && text.get(..text.len() - 1).is_some_and(|number| number.bytes().all(|byte| byte.is_ascii_digit()));
    if is_duration { format!("-{text}") } else { text.to_string() }
}

fn money(value: &Value) -> String {
    value.as_f64().map_or_else(|| "-".to_string(), |value| format!("{value:.4}"))
}

fn number(value: &Value, decimals: usize) -> String {
    value.as_f64().map_or_else(|| "-".to_string(), |value| format!("{value:.decimals$}"))
}

pub fn run(args: CostArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let CostCommand::Report(report) = args.command;
    let mut parts = vec![format!("by={}", segment(&report.by))];
    if let Some(from) = &report.from {
        parts.push(format!("from={}", segment(&moment(from))));
    }
    if let Some(to) = &report.to {
        parts.push(format!("to={}", segment(&moment(to))));
    }
    let answer = client.get_json(&format!("/api/v1/cost?{}", parts.join("&")))?;
    if args.connection.output == Output::Json {
        print_json(&answer);
        return Ok(());
    }
    let prices = &answer["prices"];
    println!(
        "{} to {}, by {}; {} {} an instance-hour, {} a million invocations",
        cell(&answer, "from"),
        cell(&answer, "to"),
        cell(&answer, "by"),
        cell(prices, "currency"),
        number(&prices["instance_hour"], 4),
        number(&prices["million_invocations"], 4)
    );
    let line = |value: &Value| {
        vec![
            cell(value, "key"),
            number(&value["instance_hours"], 3),
            number(&value["invocations"], 0),
            money(&value["instance_cost"]),
            money(&value["invocation_cost"]),
            money(&value["cost"]),
        ]
    };
    let mut rows: Vec<Vec<String>> =
        answer["lines"].as_array().map(Vec::as_slice).unwrap_or(&[]).iter().map(line).collect();
    rows.push(
        line(&answer["total"])
            .into_iter()
            .enumerate()
            .map(|(index, cell)| if index == 0 { "TOTAL".into() } else { cell })
            .collect(),
    );
    let key = report.by.to_uppercase();
    print!(
        "{}",
        table::render(&[&key, "INSTANCE-HOURS", "INVOCATIONS", "INSTANCE COST", "INVOCATION COST", "COST"], &rows)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_durations_count_back() {
        assert_eq!(moment("24h"), "-24h");
        assert_eq!(moment("7d"), "-7d");
        assert_eq!(moment("2026-11-28"), "2026-11-28");
        assert_eq!(moment("h"), "h");
    }
}
