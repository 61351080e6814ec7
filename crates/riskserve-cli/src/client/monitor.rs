//! `riskserve monitor baseline|outcomes|schedule|run|report`: an endpoint's model monitoring over the REST API.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::http::segment;
use super::table::{self, cell, show};
use super::{Client, Connection, Output};

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: MonitorCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MonitorCommand {
    /// Build an endpoint's baseline from a CSV file of training or validation rows, or show the stored one.
    Baseline(BaselineArgs),
    /// Upload observed outcomes, joined to captured invocations on their inference ids.
    Outcomes(OutcomesArgs),
    /// Set, show or delete an endpoint's monitoring schedule.
    Schedule(ScheduleArgs),
    /// Run an endpoint's monitoring once, now, and print its report.
    Run(RunArgs),
    /// List an endpoint's monitoring reports, or print one.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub endpoint: String,
    /// The baseline rows: a CSV file with a header.
    #[arg(long, value_name = "FILE.csv", required_unless_present = "show")]
    pub input: Option<PathBuf>,
    /// The column of the observed outcome, for the bad rate of each grade.
    #[arg(long, value_name = "COLUMN")]
    pub outcome_column: Option<String>,
    /// Quantile bins of numeric features and of the score (the server's default when omitted).
    #[arg(long, value_name = "N")]
    pub bins: Option<u32>,
    /// The production variant to build the baseline for (the server's choice when omitted).
    #[arg(long)]
    pub variant: Option<String>,
    /// Show the stored baseline instead of building one.
    #[arg(long, conflicts_with_all = ["input", "outcome_column", "bins", "variant"])]
    pub show: bool,
}

#[derive(Debug, clap::Args)]
pub struct OutcomesArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub endpoint: String,
    /// The outcomes: CSV with a header, or JSON lines.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The file's format; taken from its extension (.csv; .jsonl, .ndjson, .json) when omitted.
    #[arg(long, value_enum)]
    pub format: Option<OutcomeFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutcomeFormat {
    Csv,
    Jsonl,
}

/// The arguments that set schedule settings; none of them goes with --show or --delete.
const SCHEDULE_FLAGS: [&str; 4] = ["interval_minutes", "window_hours", "outcome_window_days", "settings"];

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub endpoint: String,
    /// Minutes between runs.
    #[arg(long, value_name = "N")]
    pub interval_minutes: Option<u64>,
    /// Hours of captured data each run reads, back from the run.
    #[arg(long, value_name = "H")]
    pub window_hours: Option<u64>,
    /// Days of outcomes each run joins, back from the run.
    #[arg(long, value_name = "D")]
    pub outcome_window_days: Option<u64>,
    /// A JSON file of one object of settings; --interval-minutes, --window-hours and --outcome-window-days
    /// override its keys.
    #[arg(long, value_name = "FILE.json")]
    pub settings: Option<PathBuf>,
    /// Show the schedule instead of setting it.
    #[arg(long, conflicts_with_all = SCHEDULE_FLAGS, conflicts_with = "delete")]
    pub show: bool,
    /// Delete the schedule.
    #[arg(long, conflicts_with_all = SCHEDULE_FLAGS)]
    pub delete: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub endpoint: String,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub endpoint: String,
    /// Print this report (`latest`: the newest) instead of listing them.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// List at most this many reports, newest first.
    #[arg(long, value_name = "N", default_value_t = 20, conflicts_with = "id")]
    pub limit: u32,
}

pub fn run(args: MonitorArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let text = execute(&client, args.connection.output, &args.command)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("cannot write the answer")?;
    stdout.flush().context("cannot write the answer")?;
    Ok(())
}

/// Sends the command's request; the text to print.
fn execute(client: &Client, output: Output, command: &MonitorCommand) -> anyhow::Result<String> {
    match command {
        MonitorCommand::Baseline(args) => baseline(client, output, args),
        MonitorCommand::Outcomes(args) => outcomes(client, output, args),
        MonitorCommand::Schedule(args) => schedule(client, output, args),
        MonitorCommand::Run(args) => {
            let report = client.post_json(&monitoring_path(&args.endpoint, "runs"), &json!({}))?;
            Ok(report_text(output, &report))
        }
        MonitorCommand::Report(args) => report(client, output, args),
    }
}

/// `/api/v1/endpoints/{endpoint}/monitoring/{rest}`, the endpoint's name percent-encoded.
fn monitoring_path(endpoint: &str, rest: &str) -> String {
    format!("/api/v1/endpoints/{}/monitoring/{rest}", segment(endpoint))
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Pretty JSON with one trailing newline, as `print_json` prints it.
fn json_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// The query string of a baseline upload: only the parameters given, percent-encoded; empty when none is.
fn baseline_query(args: &BaselineArgs) -> String {
    let mut parts = Vec::new();
    if let Some(column) = &args.outcome_column {
        parts.push(format!("outcome_column={}", segment(column)));
    }
    if let Some(bins) = args.bins {
        parts.push(format!("bins={bins}"));
    }
    if let Some(variant) = &args.variant {
        parts.push(format!("variant={}", segment(variant)));
    }
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

fn baseline(client: &Client, output: Output, args: &BaselineArgs) -> anyhow::Result<String> {
    let path = monitoring_path(&args.endpoint, "baseline");
    let answer = if args.show {
        client.get_json(&path)?
    } else {
        let Some(input) = &args.input else {
            bail!("--input FILE.csv is needed to build a baseline (or --show to see the stored one)");
        };
        let rows = read_file(input)?;
        client.put_bytes(&format!("{path}{}", baseline_query(args)), "text/csv", &rows)?
    };
    Ok(match output {
        Output::Json => json_text(&answer),
        Output::Table => baseline_summary(&args.endpoint, &answer),
    })
}

/// Rows, each feature's kind and missing share, each grade's rows and bad rate. The baseline may be the answer
/// itself or its `baseline` member.
fn baseline_summary(endpoint: &str, answer: &Value) -> String {
    let baseline = answer.get("baseline").filter(|baseline| baseline.is_object()).unwrap_or(answer);
    let rows = answer.get("rows").or_else(|| baseline.get("rows")).unwrap_or(&Value::Null);
    let mut text = format!("baseline of {endpoint}: {} rows", figure(rows));
    if let Some(bins) = baseline.get("spec").and_then(|spec| spec.get("bins")).filter(|bins| !bins.is_null()) {
        text.push_str(&format!(", {} bins", figure(bins)));
    }
    if let Some(created) = answer.get("created_at").and_then(Value::as_str) {
        text.push_str(&format!(", built {created}"));
    }
    text.push('\n');
    let features: Vec<Vec<String>> = members(baseline, "features")
        .iter()
        .map(|feature| {
            let missing = feature
                .get("distribution")
                .and_then(|distribution| distribution.get("missing_proportion"))
                .or_else(|| feature.get("missing_proportion"))
                .unwrap_or(&Value::Null);
            vec![cell(feature, "name"), cell(feature, "kind"), figure(missing)]
        })
        .collect();
    text.push('\n');
    text.push_str(&table::render(&["FEATURE", "KIND", "MISSING"], &features));
    let grades: Vec<Vec<String>> = members(baseline, "grades")
        .iter()
        .map(|grade| vec![cell(grade, "grade"), figure(&grade["rows"]), figure(&grade["bad_rate"])])
        .collect();
    if !grades.is_empty() {
        text.push('\n');
        text.push_str(&table::render(&["GRADE", "ROWS", "BAD RATE"], &grades));
    }
    text
}

/// The media type of an outcomes file: `--format`, else its extension's.
fn outcomes_content_type(input: &Path, format: Option<OutcomeFormat>) -> anyhow::Result<&'static str> {
    let extension = input.extension().and_then(|extension| extension.to_str()).map(str::to_ascii_lowercase);
    let format = match (format, extension.as_deref()) {
        (Some(format), _) => format,
        (None, Some("csv")) => OutcomeFormat::Csv,
        (None, Some("jsonl" | "ndjson" | "json")) => OutcomeFormat::Jsonl,
        (None, _) => {
            bail!("--format csv|jsonl is needed: {} has no .csv, .jsonl, .ndjson or .json extension", input.display())
        }
    };
    Ok(match format {
        OutcomeFormat::Csv => "text/csv",
        OutcomeFormat::Jsonl => "application/x-ndjson",
    })
}

fn outcomes(client: &Client, output: Output, args: &OutcomesArgs) -> anyhow::Result<String> {
    let content_type = outcomes_content_type(&args.input, args.format)?;
    let body = read_file(&args.input)?;
    let answer = client.post_bytes(&monitoring_path(&args.endpoint, "outcomes"), content_type, &body)?;
    Ok(match output {
        Output::Json => json_text(&answer),
        Output::Table => format!(
            "accepted {} outcomes ({} stored for endpoint {})\n",
            figure(&answer["accepted"]),
            figure(&answer["outcomes"]),
            args.endpoint
        ),
    })
}

/// The schedule's JSON body: the settings file's object, with the keys of the flags given replaced.
fn schedule_settings(args: &ScheduleArgs) -> anyhow::Result<Value> {
    let mut settings = match &args.settings {
        Some(path) => {
            let bytes = read_file(path)?;
            let parsed: Value =
                serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
            match parsed {
                Value::Object(object) => object,
                _ => bail!("{} must hold a JSON object of schedule settings", path.display()),
            }
        }
        None => Map::new(),
    };
    for (key, value) in [
        ("interval_minutes", args.interval_minutes),
        ("window_hours", args.window_hours),
        ("outcome_window_days", args.outcome_window_days),
    ] {
        if let Some(value) = value {
            settings.insert(key.to_string(), json!(value));
        }
    }
    Ok(Value::Object(settings))
}

fn schedule(client: &Client, output: Output, args: &ScheduleArgs) -> anyhow::Result<String> {
    let path = monitoring_path(&args.endpoint, "schedule");
    let answer = if args.show {
        client.get_json(&path)?
    } else if args.delete {
        client.delete(&path)?;
        return Ok(match output {
            Output::Json => json_text(&json!({"deleted": {"endpoint": args.endpoint, "schedule": true}})),
            Output::Table => format!("deleted the monitoring schedule of {}\n", args.endpoint),
        });
    } else {
        client.put_json(&path, &schedule_settings(args)?)?
    };
    Ok(match output {
        Output::Json => json_text(&answer),
        Output::Table => schedule_summary(&answer),
    })
}

/// The endpoint, each setting on its own line, and the run times.
fn schedule_summary(schedule: &Value) -> String {
    let mut pairs: Vec<(String, String)> = vec![("endpoint".into(), cell(schedule, "endpoint"))];
    if let Some(settings) = schedule.get("settings").and_then(Value::as_object) {
        pairs.extend(settings.iter().map(|(key, value)| (key.clone(), figure(value))));
    }
    let last_report = match schedule.get("last_report") {
        Some(report @ Value::Object(_)) if report.get("id").is_some() => {
            format!("{} ({})", cell(report, "id"), cell(report, "status"))
        }
        Some(report) => show(report),
        None => "-".into(),
    };
    pairs.extend([
        ("next run".into(), cell(schedule, "next_run_at")),
        ("last run".into(), cell(schedule, "last_run_at")),
        ("last report".into(), last_report),
        ("created".into(), cell(schedule, "created_at")),
        ("updated".into(), cell(schedule, "updated_at")),
    ]);
    let pairs: Vec<(&str, String)> = pairs.iter().map(|(key, value)| (key.as_str(), value.clone())).collect();
    table::render_pairs(&pairs)
}

fn report(client: &Client, output: Output, args: &ReportArgs) -> anyhow::Result<String> {
    if let Some(id) = &args.id {
        let report = client.get_json(&monitoring_path(&args.endpoint, &format!("reports/{}", segment(id))))?;
        return Ok(report_text(output, &report));
    }
    let list = client.get_json(&format!("{}?limit={}", monitoring_path(&args.endpoint, "reports"), args.limit))?;
    let items = table::items(&list);
    Ok(match output {
        Output::Json => json_text(&Value::Array(items.to_vec())),
        Output::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    let breaches = match &item["breaches"] {
                        Value::Array(breaches) => breaches.len().to_string(),
                        other => figure(other),
                    };
                    vec![cell(item, "id"), cell(item, "started_at"), cell(item, "status"), breaches]
                })
                .collect();
            table::render(&["ID", "STARTED", "STATUS", "BREACHES"], &rows)
        }
    })
}

fn report_text(output: Output, report: &Value) -> String {
    match output {
        Output::Json => json_text(report),
        Output::Table => report_summary(report),
    }
}

/// The array member `key` of `value` (empty when absent or not an array).
fn members<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A number for people: integers whole, others to 4 significant digits (scientific below 0.0001 or from a
/// million); null as `-`.
fn figure(value: &Value) -> String {
    match value {
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(integer), _, _) => integer.to_string(),
            (None, Some(integer), _) => integer.to_string(),
            (None, None, Some(real)) => significant(real),
            _ => number.to_string(),
        },
        other => show(other),
    }
}

fn significant(real: f64) -> String {
    if real == 0.0 {
        return "0".into();
    }
    if !real.is_finite() || (real.fract() == 0.0 && real.abs() < 1e15) {
        return format!("{real:.0}");
    }
    let magnitude = real.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{real:.3e}");
    }
    let decimals = usize::try_from(3 - magnitude).unwrap_or(0);
    format!("{real:.decimals$}")
}

/// `FROM to TO` of a window, `-` when there is none.
fn window(value: &Value) -> String {
    if value.is_object() { format!("{} to {}", cell(value, "from"), cell(value, "to")) } else { "-".into() }
}

/// `0.01235 (stable)` of a stability index; `-` when it has none.
fn stability(value: &Value) -> String {
    let index = figure(&value["index"]);
    match value["band"].as_str() {
        Some(band) => format!("{index} ({band})"),
        None => index,
    }
}

fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

/// A report for people: what was read, drift, outcome statistics with calibration per grade, and the breaches.
fn report_summary(report: &Value) -> String {
    let skipped = &report["skipped"];
    let mut text = table::render_pairs(&[
        ("report", cell(report, "id")),
        ("endpoint", cell(report, "endpoint")),
        ("status", cell(report, "status")),
        ("started", cell(report, "started_at")),
        ("finished", cell(report, "finished_at")),
        ("window", window(&report["window"])),
        ("outcome window", window(&report["outcome_window"])),
        ("files", figure(&report["files"])),
        ("records", figure(&report["records"])),
        ("rows", figure(&report["rows"])),
        (
            "skipped",
            format!(
                "{} malformed, {} without input, {} without output",
                figure(&skipped["malformed"]),
                figure(&skipped["without_input"]),
                figure(&skipped["without_output"])
            ),
        ),
        ("outcomes joined", figure(&report["outcomes_joined"])),
        ("outcomes unmatched", figure(&report["outcomes_unmatched"])),
        ("error", cell(report, "error")),
    ]);
    text.push('\n');
    text.push_str(&drift_summary(&report["drift"]));
    text.push('\n');
    text.push_str(&outcomes_summary(&report["outcomes"]));
    text.push('\n');
    text.push_str(&breaches_summary(members(report, "breaches")));
    text
}

fn drift_summary(drift: &Value) -> String {
    if !drift.is_object() {
        return "drift: -\n".into();
    }
    let no_data = if drift["no_data"].as_bool() == Some(true) { " (no data)" } else { "" };
    let mut text = format!("drift: {} rows{no_data}\n", figure(&drift["rows"]));
    text.push_str(&format!("score PSI: {}\n", stability(&drift["score"])));
    let features: Vec<Vec<String>> = members(drift, "features")
        .iter()
        .map(|feature| {
            vec![
                cell(feature, "name"),
                cell(feature, "kind"),
                figure(&feature["stability"]["index"]),
                cell(&feature["stability"], "band"),
                figure(&feature["missing_rate"]),
                figure(&feature["below_min_rate"]),
                figure(&feature["above_max_rate"]),
                figure(&feature["unseen_rate"]),
            ]
        })
        .collect();
    if !features.is_empty() {
        text.push_str(&table::render(
            &["FEATURE", "KIND", "CSI", "BAND", "MISSING", "BELOW MIN", "ABOVE MAX", "UNSEEN"],
            &features,
        ));
    }
    text
}

fn outcomes_summary(outcomes: &Value) -> String {
    if !outcomes.is_object() {
        return "outcomes: -\n".into();
    }
    let mut text = format!(
        "outcomes: {} rows, {} bad, {} good\nAUC {}  Gini {}  KS {}  Brier {}\n",
        figure(&outcomes["rows"]),
        figure(&outcomes["bad"]),
        figure(&outcomes["good"]),
        figure(&outcomes["auc"]),
        figure(&outcomes["gini"]),
        figure(&outcomes["ks"]),
        figure(&outcomes["brier"]),
    );
    let grades: Vec<Vec<String>> = members(outcomes, "grades")
        .iter()
        .map(|grade| {
            let interval = match (&grade["interval_lower"], &grade["interval_upper"]) {
                (Value::Null, Value::Null) => "-".to_string(),
                (lower, upper) => format!("{}–{}", figure(lower), figure(upper)),
            };
            vec![
                cell(grade, "grade"),
                figure(&grade["rows"]),
                figure(&grade["bad"]),
                figure(&grade["observed_bad_rate"]),
                figure(&grade["mean_predicted"]),
                figure(&grade["baseline_bad_rate"]),
                interval,
                figure(&grade["p_value"]),
                yes_no(&grade["breach"]),
            ]
        })
        .collect();
    if !grades.is_empty() {
        text.push_str(&table::render(
            &["GRADE", "ROWS", "BAD", "OBSERVED", "PREDICTED", "BASELINE", "INTERVAL", "P-VALUE", "BREACH"],
            &grades,
        ));
    }
    let fairness = &outcomes["fairness"];
    let groups = members(fairness, "groups");
    if !groups.is_empty() {
        let below = groups.iter().filter(|group| group["four_fifths_breach"].as_bool() == Some(true)).count();
        text.push_str(&format!(
            "fairness: {} groups (reference {}), demographic parity ratio {}, equalized odds difference {}, \
             {below} below four-fifths\n",
            groups.len(),
            cell(fairness, "reference_group"),
            figure(&fairness["demographic_parity_ratio"]),
            figure(&fairness["equalized_odds_difference"]),
        ));
    }
    text
}

fn breaches_summary(breaches: &[Value]) -> String {
    if breaches.is_empty() {
        return "no breaches\n".into();
    }
    let rows: Vec<Vec<String>> = breaches
        .iter()
        .map(|breach| {
            vec![
                cell(breach, "metric"),
                cell(breach, "subject"),
                figure(&breach["value"]),
                figure(&breach["threshold"]),
                cell(breach, "severity"),
            ]
        })
        .collect();
    format!(
        "breaches: {}\n{}",
        breaches.len(),
        table::render(&["METRIC", "SUBJECT", "VALUE", "THRESHOLD", "SEVERITY"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::super::fake_server::{self, Recorded};
    use super::*;
    use std::time::Duration;

    /// The monitor commands as the binary parses them.
    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        monitor: MonitorArgs,
    }

    fn parse(arguments: &[&str]) -> Result<MonitorArgs, clap::Error> {
        use clap::Parser;
        Command::try_parse_from(std::iter::once("monitor").chain(arguments.iter().copied()))
            .map(|parsed| parsed.monitor)
    }

    /// Parses `arguments` and runs them against a fake server answering `answers`; the printed text and the
    /// requests the server got.
    fn execute_on(arguments: &[&str], answers: Vec<(u16, &'static str)>) -> (anyhow::Result<String>, Vec<Recorded>) {
        let parsed = parse(arguments).expect("the command line parses");
        let (url, server) = fake_server::serve(answers);
        let client = Client::new(&url, None, Duration::from_secs(10));
        let result = execute(&client, parsed.connection.output, &parsed.command);
        (result, server.join().expect("the fake server ends"))
    }

    /// A file of this test's own under the temporary folder, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!("riskserve-monitor-cli-{}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }

        fn text(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Whether a line of `text` has exactly these whitespace-separated words (aligned columns read as words).
    fn has_line(text: &str, words: &[&str]) -> bool {
        text.lines().any(|line| line.split_whitespace().eq(words.iter().copied()))
    }

    const BASELINE: &str = r#"{"endpoint": "credit", "rows": 5000, "created_at": "2026-12-07T10:00:00Z",
        "baseline": {"spec": {"bins": 10, "features": [], "grades": ["A", "B"]}, "rows": 5000,
          "features": [
            {"kind": "numeric", "name": "age", "distribution": {"missing_proportion": 0.0123456}},
            {"kind": "categorical", "name": "purpose", "distribution": {"missing_proportion": 0}}],
          "grades": [{"grade": "A", "rows": 3000, "with_outcome": 3000, "bad": 30, "bad_rate": 0.01},
                     {"grade": "B", "rows": 2000, "with_outcome": 0, "bad": 0, "bad_rate": null}]}}"#;

    const REPORT: &str = r#"{"id": "r-7", "endpoint": "credit", "status": "completed",
        "started_at": "2026-12-07T12:00:00Z", "finished_at": "2026-12-07T12:00:03Z",
        "window": {"from": "2026-12-06T12:00:00Z", "to": "2026-12-07T12:00:00Z"},
        "outcome_window": {"from": "2026-09-08T12:00:00Z", "to": "2026-12-07T12:00:00Z"},
        "files": 24, "records": 1200, "rows": 1190,
        "skipped": {"malformed": 4, "without_input": 3, "without_output": 3},
        "drift": {"rows": 1190, "no_data": false,
          "score": {"index": 0.301234, "band": "major_shift", "bins": []},
          "features": [
            {"name": "age", "kind": "numeric", "stability": {"index": 0.0123456, "band": "stable", "bins": []},
             "missing_rate": 0, "below_min_rate": 0.00084, "above_max_rate": 0, "unseen_rate": null},
            {"name": "purpose", "kind": "categorical", "stability": {"index": null, "band": null, "bins": []},
             "missing_rate": 0.5, "below_min_rate": null, "above_max_rate": null, "unseen_rate": 0.125}]},
        "outcomes": {"rows": 800, "bad": 60, "good": 740, "auc": 0.78123, "gini": 0.56246, "ks": 0.4321,
          "brier": null,
          "grades": [
            {"grade": "A", "rows": 500, "bad": 10, "observed_bad_rate": 0.02, "mean_predicted": 0.025,
             "baseline_bad_rate": 0.03, "interval_lower": 0.0103, "interval_upper": 0.0358, "p_value": 0.4873,
             "breach": false},
            {"grade": "B", "rows": 300, "bad": 50, "observed_bad_rate": 0.16667, "mean_predicted": 0.08,
             "baseline_bad_rate": null, "interval_lower": 0.1271, "interval_upper": 0.2129,
             "p_value": 0.0000012, "breach": true}],
          "fairness": {"rows": 0, "reference_group": null, "groups": []}},
        "outcomes_joined": 800, "outcomes_unmatched": 12,
        "breaches": [{"metric": "psi", "subject": "score", "value": 0.301234, "threshold": 0.25,
                      "severity": "critical"},
                     {"metric": "calibration", "subject": "B", "value": 0.0000012, "threshold": 0.05,
                      "severity": "warning"}],
        "error": null}"#;

    #[test]
    fn the_contract_commands_parse() {
        let parsed = parse(&["baseline", "--endpoint", "credit", "--input", "rows.csv", "--bins", "0"]).unwrap();
        let MonitorCommand::Baseline(baseline) = parsed.command else { panic!("baseline") };
        assert_eq!((baseline.input, baseline.bins, baseline.show), (Some(PathBuf::from("rows.csv")), Some(0), false));
        let parsed = parse(&["baseline", "--endpoint", "credit", "--show", "--output", "json"]).unwrap();
        assert_eq!(parsed.connection.output, Output::Json);
        assert!(matches!(parsed.command, MonitorCommand::Baseline(baseline) if baseline.show));
        let parsed = parse(&["outcomes", "--endpoint", "credit", "--input", "o.txt", "--format", "jsonl"]).unwrap();
        assert!(matches!(parsed.command, MonitorCommand::Outcomes(o) if o.format == Some(OutcomeFormat::Jsonl)));
        let parsed = parse(&["schedule", "--endpoint", "credit", "--delete"]).unwrap();
        assert!(matches!(parsed.command, MonitorCommand::Schedule(schedule) if schedule.delete && !schedule.show));
        let parsed = parse(&["report", "--endpoint", "credit"]).unwrap();
        assert!(matches!(parsed.command, MonitorCommand::Report(report) if report.limit == 20 && report.id.is_none()));
        assert!(parse(&["run", "--endpoint", "credit"]).is_ok());
    }

    #[test]
    fn conflicting_flags_are_usage_errors() {
        use clap::error::ErrorKind::{ArgumentConflict, MissingRequiredArgument};
        let kind = |arguments: &[&str]| parse(arguments).map(|_| ()).unwrap_err().kind();
        assert_eq!(kind(&["baseline", "--endpoint", "e", "--show", "--input", "rows.csv"]), ArgumentConflict);
        assert_eq!(kind(&["baseline", "--endpoint", "e", "--show", "--bins", "5"]), ArgumentConflict);
        assert_eq!(kind(&["baseline", "--endpoint", "e"]), MissingRequiredArgument);
        assert_eq!(kind(&["schedule", "--endpoint", "e", "--delete", "--window-hours", "2"]), ArgumentConflict);
        assert_eq!(kind(&["schedule", "--endpoint", "e", "--delete", "--settings", "s.json"]), ArgumentConflict);
        assert_eq!(kind(&["schedule", "--endpoint", "e", "--show", "--interval-minutes", "5"]), ArgumentConflict);
        assert_eq!(kind(&["schedule", "--endpoint", "e", "--show", "--delete"]), ArgumentConflict);
        assert_eq!(kind(&["report", "--endpoint", "e", "--id", "r-1", "--limit", "5"]), ArgumentConflict);
        assert_eq!(kind(&["outcomes", "--endpoint", "e"]), MissingRequiredArgument);
    }

    #[test]
    fn a_baseline_uploads_the_csv_with_only_the_given_parameters() {
        let input = TempFile::new("baseline.csv", b"age,purpose,bad\n30,car,0\n");
        let input_text = input.text();
        let (printed, requests) = execute_on(
            &[
                "baseline",
                "--endpoint",
                "credit eu",
                "--input",
                input_text,
                "--outcome-column",
                "bad flag",
                "--bins",
                "0",
                "--variant",
                "main",
            ],
            vec![(200, BASELINE)],
        );
        let printed = printed.unwrap();
        let request = &requests[0];
        assert_eq!(request.method, "PUT");
        assert_eq!(
            request.path,
            "/api/v1/endpoints/credit%20eu/monitoring/baseline?outcome_column=bad%20flag&bins=0&variant=main"
        );
        assert_eq!(request.header("content-type"), Some("text/csv"));
        assert_eq!(request.body, b"age,purpose,bad\n30,car,0\n");
        assert!(printed.starts_with("baseline of credit eu: 5000 rows, 10 bins, built 2026-12-07T10:00:00Z\n"));
        assert!(has_line(&printed, &["age", "numeric", "0.01235"]), "{printed}");
        assert!(has_line(&printed, &["purpose", "categorical", "0"]), "{printed}");
        assert!(has_line(&printed, &["A", "3000", "0.01000"]), "{printed}");
        assert!(has_line(&printed, &["B", "2000", "-"]), "{printed}");

        let (_, requests) =
            execute_on(&["baseline", "--endpoint", "credit", "--input", input_text], vec![(200, BASELINE)]);
        assert_eq!(requests[0].path, "/api/v1/endpoints/credit/monitoring/baseline");
        let (_, requests) = execute_on(
            &["baseline", "--endpoint", "credit", "--input", input_text, "--variant", "a&b=c"],
            vec![(200, BASELINE)],
        );
        assert_eq!(requests[0].path, "/api/v1/endpoints/credit/monitoring/baseline?variant=a%26b%3Dc");
    }

    #[test]
    fn show_gets_the_stored_baseline_and_json_prints_it_as_received() {
        let (printed, requests) =
            execute_on(&["baseline", "--endpoint", "credit", "--show", "--output", "json"], vec![(200, BASELINE)]);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("GET", "/api/v1/endpoints/credit/monitoring/baseline")
        );
        assert!(requests[0].body.is_empty());
        let printed: Value = serde_json::from_str(&printed.unwrap()).unwrap();
        assert_eq!(printed, serde_json::from_str::<Value>(BASELINE).unwrap());
    }

    #[test]
    fn a_baseline_answer_without_a_wrapper_is_read_as_the_baseline() {
        let answer = json!({"rows": 10, "spec": {"bins": 4}, "features": [
            {"kind": "numeric", "name": "x", "missing_proportion": 0.25}], "grades": []});
        let text = baseline_summary("credit", &answer);
        assert!(text.starts_with("baseline of credit: 10 rows, 4 bins\n"), "{text}");
        assert!(has_line(&text, &["x", "numeric", "0.2500"]), "{text}");
        assert!(!text.contains("GRADE"), "{text}");
    }

    #[test]
    fn outcomes_are_posted_with_the_type_of_their_file() {
        let csv = TempFile::new("outcomes.csv", b"inference_id,bad\na-1,1\n");
        let (printed, requests) = execute_on(
            &["outcomes", "--endpoint", "credit", "--input", csv.text()],
            vec![(200, r#"{"accepted": 1200, "outcomes": 3400}"#)],
        );
        assert_eq!(printed.unwrap(), "accepted 1200 outcomes (3400 stored for endpoint credit)\n");
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("POST", "/api/v1/endpoints/credit/monitoring/outcomes")
        );
        assert_eq!(requests[0].header("content-type"), Some("text/csv"));
        assert_eq!(requests[0].body, b"inference_id,bad\na-1,1\n");

        let lines = TempFile::new("outcomes.ndjson", b"{\"inference_id\": \"a-1\", \"bad\": true}\n");
        let (_, requests) = execute_on(
            &["outcomes", "--endpoint", "credit", "--input", lines.text()],
            vec![(200, r#"{"accepted": 1, "outcomes": 1}"#)],
        );
        assert_eq!(requests[0].header("content-type"), Some("application/x-ndjson"));
        assert_eq!(requests[0].body, b"{\"inference_id\": \"a-1\", \"bad\": true}\n");

        let (_, requests) = execute_on(
            &["outcomes", "--endpoint", "credit", "--input", csv.text(), "--format", "jsonl"],
            vec![(200, r#"{"accepted": 1, "outcomes": 1}"#)],
        );
        assert_eq!(requests[0].header("content-type"), Some("application/x-ndjson"));
    }

    #[test]
    fn outcome_formats_follow_the_extension_unless_given() {
        assert_eq!(outcomes_content_type(Path::new("o.CSV"), None).unwrap(), "text/csv");
        for name in ["o.jsonl", "o.ndjson", "o.json"] {
            assert_eq!(outcomes_content_type(Path::new(name), None).unwrap(), "application/x-ndjson");
        }
        assert_eq!(outcomes_content_type(Path::new("o.jsonl"), Some(OutcomeFormat::Csv)).unwrap(), "text/csv");
        assert_eq!(
            outcomes_content_type(Path::new("o.txt"), None).unwrap_err().to_string(),
            "--format csv|jsonl is needed: o.txt has no .csv, .jsonl, .ndjson or .json extension"
        );
    }

    const SCHEDULE: &str = r#"{"endpoint": "credit",
        "settings": {"interval_minutes": 60, "window_hours": 24, "outcome_window_days": 90, "psi_major": 0.25},
        "next_run_at": "2026-12-07T13:00:00Z", "last_run_at": null,
        "last_report": null, "created_at": "2026-12-07T12:00:00Z", "updated_at": "2026-12-07T12:00:00Z"}"#;

    #[test]
    fn schedule_flags_override_the_settings_file() {
        let settings =
            TempFile::new("settings.json", br#"{"interval_minutes": 5, "window_hours": 1, "alerts": {"psi": 0.2}}"#);
        let (printed, requests) = execute_on(
            &[
                "schedule",
                "--endpoint",
                "credit",
                "--settings",
                settings.text(),
                "--window-hours",
                "24",
                "--outcome-window-days",
                "90",
            ],
            vec![(200, SCHEDULE)],
        );
        let request = &requests[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("PUT", "/api/v1/endpoints/credit/monitoring/schedule")
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.json(),
            json!({"interval_minutes": 5, "window_hours": 24, "outcome_window_days": 90, "alerts": {"psi": 0.2}})
        );
        let printed = printed.unwrap();
        assert!(has_line(&printed, &["interval_minutes", "60"]), "{printed}");
        assert!(has_line(&printed, &["psi_major", "0.2500"]), "{printed}");
        assert!(has_line(&printed, &["next", "run", "2026-12-07T13:00:00Z"]), "{printed}");
        assert!(has_line(&printed, &["last", "run", "-"]), "{printed}");

        let (_, requests) =
            execute_on(&["schedule", "--endpoint", "credit", "--interval-minutes", "15"], vec![(200, SCHEDULE)]);
        assert_eq!(requests[0].json(), json!({"interval_minutes": 15}));
    }

    #[test]
    fn a_settings_file_must_hold_an_object() {
        let settings = TempFile::new("settings-list.json", b"[1, 2]");
        let args = ScheduleArgs {
            endpoint: "credit".into(),
            interval_minutes: None,
            window_hours: None,
            outcome_window_days: None,
            settings: Some(settings.0.clone()),
            show: false,
            delete: false,
        };
        assert_eq!(
            schedule_settings(&args).unwrap_err().to_string(),
            format!("{} must hold a JSON object of schedule settings", settings.text())
        );
        let broken = TempFile::new("settings-broken.json", b"{");
        let args = ScheduleArgs { settings: Some(broken.0.clone()), ..args };
        assert_eq!(schedule_settings(&args).unwrap_err().to_string(), format!("{} is not JSON", broken.text()));
    }

    #[test]
    fn schedule_show_gets_and_delete_deletes() {
        let (_, requests) = execute_on(&["schedule", "--endpoint", "credit", "--show"], vec![(200, SCHEDULE)]);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("GET", "/api/v1/endpoints/credit/monitoring/schedule")
        );
        let (printed, requests) = execute_on(&["schedule", "--endpoint", "credit", "--delete"], vec![(204, "")]);
        assert_eq!(printed.unwrap(), "deleted the monitoring schedule of credit\n");
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("DELETE", "/api/v1/endpoints/credit/monitoring/schedule")
        );
    }

    #[test]
    fn a_run_posts_an_empty_object_and_prints_the_report() {
        let (printed, requests) = execute_on(&["run", "--endpoint", "credit"], vec![(201, REPORT)]);
        let request = &requests[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/api/v1/endpoints/credit/monitoring/runs")
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json(), json!({}));
        assert!(printed.unwrap().contains("score PSI: 0.3012 (major_shift)\n"));
    }

    #[test]
    fn reports_are_listed_with_their_limit() {
        const LIST: &str = r#"{"items": [
            {"id": "r-7", "endpoint": "credit", "started_at": "2026-12-07T12:00:00Z",
             "finished_at": "2026-12-07T12:00:03Z", "status": "completed", "breaches": 2},
            {"id": "r-6", "endpoint": "credit", "started_at": "2026-12-07T11:00:00Z",
             "finished_at": null, "status": "no_data", "breaches": 0}]}"#;
        let (printed, requests) = execute_on(&["report", "--endpoint", "credit"], vec![(200, LIST)]);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("GET", "/api/v1/endpoints/credit/monitoring/reports?limit=20")
        );
        let printed = printed.unwrap();
        assert!(has_line(&printed, &["ID", "STARTED", "STATUS", "BREACHES"]), "{printed}");
        assert!(has_line(&printed, &["r-7", "2026-12-07T12:00:00Z", "completed", "2"]), "{printed}");
        assert!(has_line(&printed, &["r-6", "2026-12-07T11:00:00Z", "no_data", "0"]), "{printed}");

        let (printed, requests) =
            execute_on(&["report", "--endpoint", "credit", "--limit", "3", "--output", "json"], vec![(200, LIST)]);
        assert_eq!(requests[0].path, "/api/v1/endpoints/credit/monitoring/reports?limit=3");
        let printed: Value = serde_json::from_str(&printed.unwrap()).unwrap();
        assert_eq!(printed, serde_json::from_str::<Value>(LIST).unwrap()["items"]);
    }

    #[test]
    fn one_report_is_fetched_by_its_id() {
        let (printed, requests) =
            execute_on(&["report", "--endpoint", "credit", "--id", "latest"], vec![(200, REPORT)]);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("GET", "/api/v1/endpoints/credit/monitoring/reports/latest")
        );
        assert!(printed.unwrap().starts_with("report"));
        let (printed, requests) =
            execute_on(&["report", "--endpoint", "credit", "--id", "r/7", "--output", "json"], vec![(200, REPORT)]);
        assert_eq!(requests[0].path, "/api/v1/endpoints/credit/monitoring/reports/r%2F7");
        let printed: Value = serde_json::from_str(&printed.unwrap()).unwrap();
        assert_eq!(printed, serde_json::from_str::<Value>(REPORT).unwrap());
    }

    #[test]
    fn a_report_reads_as_a_summary() {
        let text = report_summary(&serde_json::from_str(REPORT).unwrap());
        assert!(has_line(&text, &["status", "completed"]), "{text}");
        assert!(has_line(&text, &["window", "2026-12-06T12:00:00Z", "to", "2026-12-07T12:00:00Z"]), "{text}");
        assert!(has_line(&text, &["records", "1200"]), "{text}");
        assert!(has_line(&text, &["rows", "1190"]), "{text}");
        assert!(
            has_line(&text, &["skipped", "4", "malformed,", "3", "without", "input,", "3", "without", "output"]),
            "{text}"
        );
        assert!(has_line(&text, &["error", "-"]), "{text}");
        assert!(text.contains("\nscore PSI: 0.3012 (major_shift)\n"), "{text}");
        assert!(has_line(&text, &["age", "numeric", "0.01235", "stable", "0", "0.0008400", "0", "-"]), "{text}");
        assert!(has_line(&text, &["purpose", "categorical", "-", "-", "0.5000", "-", "-", "0.1250"]), "{text}");
        assert!(text.contains("\nAUC 0.7812  Gini 0.5625  KS 0.4321  Brier -\n"), "{text}");
        assert!(
            has_line(&text, &["A", "500", "10", "0.02000", "0.02500", "0.03000", "0.01030–0.03580", "0.4873", "no"]),
            "{text}"
        );
        assert!(
            has_line(&text, &["B", "300", "50", "0.1667", "0.08000", "-", "0.1271–0.2129", "1.200e-6", "yes"]),
            "{text}"
        );
        assert!(!text.contains("fairness"), "no groups, no fairness line: {text}");
        assert!(text.contains("\nbreaches: 2\n"), "{text}");
        assert!(has_line(&text, &["psi", "score", "0.3012", "0.2500", "critical"]), "{text}");
        assert!(has_line(&text, &["calibration", "B", "1.200e-6", "0.05000", "warning"]), "{text}");
        assert!(!text.contains("no breaches"), "{text}");
    }

    #[test]
    fn a_report_without_data_shows_dashes_and_no_breaches() {
        let report = json!({"id": "r-8", "endpoint": "credit", "status": "failed", "started_at": "t0",
            "finished_at": null, "window": null, "outcome_window": null, "files": 0, "records": 0, "rows": 0,
            "skipped": {"malformed": 0, "without_input": 0, "without_output": 0}, "drift": null,
            "outcomes": null, "outcomes_joined": 0, "outcomes_unmatched": 0, "breaches": [],
            "error": "the capture folder cannot be read"});
        let text = report_summary(&report);
        assert!(has_line(&text, &["finished", "-"]), "{text}");
        assert!(has_line(&text, &["window", "-"]), "{text}");
        assert!(has_line(&text, &["error", "the", "capture", "folder", "cannot", "be", "read"]), "{text}");
        assert!(text.contains("\ndrift: -\n"), "{text}");
        assert!(text.contains("\noutcomes: -\n"), "{text}");
        assert!(text.ends_with("\nno breaches\n"), "{text}");

        let drift = json!({"rows": 0, "no_data": true, "score": {"index": null, "band": null, "bins": []},
            "features": []});
        assert_eq!(drift_summary(&drift), "drift: 0 rows (no data)\nscore PSI: -\n");
    }

    #[test]
    fn fairness_is_summarised_when_there_are_groups() {
        let outcomes = json!({"rows": 10, "bad": 1, "good": 9, "auc": null, "gini": null, "ks": null,
            "brier": 0.1, "grades": [], "fairness": {"rows": 10, "reference_group": "m",
            "groups": [{"group": "f", "four_fifths_breach": true}, {"group": "m", "four_fifths_breach": false}],
            "demographic_parity_ratio": 0.75, "equalized_odds_difference": 0.1}});
        let text = outcomes_summary(&outcomes);
        assert!(text.contains("AUC -  Gini -  KS -  Brier 0.1000\n"), "{text}");
        assert!(
            text.contains(
                "fairness: 2 groups (reference m), demographic parity ratio 0.7500, equalized odds difference \
                 0.1000, 1 below four-fifths\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_input_is_named_before_anything_is_sent() {
        let missing = std::env::temp_dir().join("riskserve-monitor-cli-no-such-dir").join("rows.csv");
        // Nothing listens on port 9: a request would fail as `cannot reach riskserve`, not as the file.
        let client = Client::new("http://127.0.0.1:9", None, Duration::from_secs(1));
        let command = |arguments: &[&str]| parse(arguments).unwrap().command;
        let path = missing.to_str().unwrap();
        for arguments in [
            &["baseline", "--endpoint", "credit", "--input", path][..],
            &["outcomes", "--endpoint", "credit", "--input", path][..],
            &["schedule", "--endpoint", "credit", "--settings", path][..],
        ] {
            let error = execute(&client, Output::Table, &command(arguments)).unwrap_err();
            assert_eq!(error.to_string(), format!("cannot read {path}"), "{arguments:?}");
            assert!(format!("{error:#}").contains("No such file"), "{error:#}");
        }
    }

    #[test]
    fn server_errors_keep_their_code_and_message() {
        let (result, _) = execute_on(
            &["baseline", "--endpoint", "credit", "--show"],
            vec![(404, r#"{"error": {"code": "not_found", "message": "endpoint `credit` has no baseline"}}"#)],
        );
        assert_eq!(result.unwrap_err().to_string(), "not_found: endpoint `credit` has no baseline");
    }

    #[test]
    fn figures_keep_four_significant_digits() {
        assert_eq!(figure(&json!(1200)), "1200");
        assert_eq!(figure(&json!(1.0)), "1");
        assert_eq!(figure(&json!(0.0)), "0");
        assert_eq!(figure(&json!(0.5)), "0.5000");
        assert_eq!(figure(&json!(0.0123456)), "0.01235");
        assert_eq!(figure(&json!(123.456)), "123.5");
        assert_eq!(figure(&json!(-0.301234)), "-0.3012");
        assert_eq!(figure(&json!(0.0000012)), "1.200e-6");
        assert_eq!(figure(&json!(1234567.5)), "1.235e6");
        assert_eq!(figure(&Value::Null), "-");
    }
}
