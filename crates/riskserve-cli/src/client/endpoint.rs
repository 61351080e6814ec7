//! `riskserve endpoint create|update|delete|list|describe|invoke`: deploy configs and send rows to them.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::endpoint_config::variants_table;
use super::http::{Method, api_error, segment};
use super::table::{self, cell};
use super::{Client, Connection, Output, list_all, parse_tags, print_json, print_list, seconds};

#[derive(Debug, clap::Args)]
pub struct EndpointArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: EndpointCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EndpointCommand {
    /// Deploy an endpoint config as a new endpoint.
    Create(CreateArgs),
    /// Switch an endpoint to another config without dropping a request.
    Update(UpdateArgs),
    /// Delete an endpoint and stop its variants.
    Delete(DeleteArgs),
    /// List the endpoints and their status.
    List,
    /// Show one endpoint: status, config, variants.
    Describe {
        /// The endpoint's name.
        name: String,
    },
    /// Send rows to an endpoint and print its answer as it comes.
    Invoke(InvokeArgs),
    /// Change a serving variant's weight or instance count in place, without a new deployment.
    UpdateVariant(UpdateVariantArgs),
    /// Show an endpoint's per-minute history: invocations, errors, latencies, instances.
    Stats(super::stats::StatsArgs),
    /// Set, describe or delete the autoscaling policies of an endpoint's variants.
    Scaling(super::scaling::ScalingArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpdateVariantArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub name: String,
    /// The production variant to change.
    #[arg(long)]
    pub variant: String,
    /// Its new weight (share of the traffic split by weight).
    #[arg(long, required_unless_present = "instances")]
    pub weight: Option<f64>,
    /// Its new instance count.
    #[arg(long)]
    pub instances: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The endpoint's name: letters, digits and hyphens, at most 63 characters.
    #[arg(long)]
    pub name: String,
    /// The endpoint config to deploy.
    #[arg(long)]
    pub config: String,
    /// A tag (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub name: String,
    /// The endpoint config to switch to.
    #[arg(long)]
    pub config: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The endpoint's name.
    pub name: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Wait until the endpoint is InService (create, update) or gone (delete), showing progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub wait_timeout: f64,
}

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// The endpoint's name.
    pub name: String,
    /// The body's media type: `text/csv` or `application/json`; from the file's extension when omitted.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// The rows to send; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,
    /// The media type wanted for the answer (sent as `Accept`).
    #[arg(long, value_name = "TYPE")]
    pub accept: Option<String>,
    /// Send the rows to this production variant instead of splitting by weight.
    #[arg(long, value_name = "VARIANT")]
    pub target_variant: Option<String>,
    /// Ask for per-feature contributions and reason codes.
    #[arg(long)]
    pub explain: bool,
    /// Print the variant that answered on stderr.
    #[arg(long)]
    pub show_variant: bool,
}

pub fn run(args: EndpointArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let output = args.connection.output;
    match args.command {
        EndpointCommand::Create(create) => {
            let mut body = json!({"name": create.name, "config": create.config});
            if !create.tag.is_empty() {
                body["tags"] = parse_tags(&create.tag)?;
            }
            let endpoint = client.post_json("/api/v1/endpoints", &body)?;
            let endpoint = if create.wait.wait {
                let timeout = seconds(create.wait.wait_timeout, "--wait-timeout")?;
                wait(&client, &create.name, &Goal::Serving { config: &create.config }, timeout)?.unwrap_or(endpoint)
            } else {
                endpoint
            };
            print_endpoint(output, &endpoint);
        }
        EndpointCommand::Update(update) => {
            let endpoint = client.put_json(&path(&update.name), &json!({"config": update.config}))?;
            let endpoint = if update.wait.wait {
                let timeout = seconds(update.wait.wait_timeout, "--wait-timeout")?;
                wait(&client, &update.name, &Goal::Serving { config: &update.config }, timeout)?.unwrap_or(endpoint)
            } else {
                endpoint
            };
            print_endpoint(output, &endpoint);
        }
        EndpointCommand::Delete(delete) => {
            let answer = client.delete(&path(&delete.name))?;
            if delete.wait.wait {
                let timeout = seconds(delete.wait.wait_timeout, "--wait-timeout")?;
                // The progress lines on stderr already end with `deleted`.
                wait(&client, &delete.name, &Goal::Gone, timeout)?;
                if output == Output::Json {
                    print_json(&json!({"name": delete.name, "deleted": true}));
                }
            } else {
                match output {
                    Output::Json if answer.is_object() => print_json(&answer),
                    Output::Json => print_json(&json!({"name": delete.name, "status": "Deleting"})),
                    Output::Table => eprintln!("endpoint `{}` is being deleted", delete.name),
                }
            }
        }
        EndpointCommand::List => {
            let endpoints = list_all(&client, "/api/v1/endpoints")?;
            print_list(
                output,
                &endpoints,
                &[
                    ("NAME", &|endpoint| cell(endpoint, "name")),
                    ("STATUS", &|endpoint| cell(endpoint, "status")),
                    ("CONFIG", &|endpoint| cell(endpoint, "config")),
                    ("UPDATED", &|endpoint| cell(endpoint, "updated_at")),
                ],
            );
        }
        EndpointCommand::Describe { name } => {
            let endpoint = client.get_json(&path(&name))?;
            print_endpoint(output, &endpoint);
        }
        EndpointCommand::Invoke(invoke) => run_invoke(&client, &invoke)?,
        EndpointCommand::Stats(stats) => super::stats::run(&client, output, &stats)?,
        EndpointCommand::Scaling(scaling) => super::scaling::run(&client, output, &scaling)?,
        EndpointCommand::UpdateVariant(update) => {
            let mut body = json!({});
            if let Some(weight) = update.weight {
                body["weight"] = json!(weight);
            }
            if let Some(instances) = update.instances {
                body["instances"] = json!(instances);
            }
            let path = format!("{}/variants/{}", path(&update.name), segment(&update.variant));
            print_endpoint(output, &client.patch_json(&path, &body)?);
        }
    }
    Ok(())
}

fn path(name: &str) -> String {
    format!("/api/v1/endpoints/{}", segment(name))
}

/// What `--wait` waits for.
enum Goal<'a> {
    /// InService with this config (an update that rolled back is InService with the old one: a failure).
    Serving { config: &'a str },
    /// The endpoint no longer exists.
    Gone,
}

/// Polls the endpoint until the goal is reached, printing each status change on stderr; the last description
/// read (`None` once gone).
fn wait(client: &Client, name: &str, goal: &Goal, timeout: Duration) -> anyhow::Result<Option<Value>> {
    let start = Instant::now();
    let mut last_status = String::new();
    let mut last_report = start;
    // Deploying a small model takes milliseconds, so polling starts fast and backs off.
    let mut pause = Duration::from_millis(5);
    loop {
        let status = match client.get_json(&path(name)) {
            Err(error) if error.is_not_found() => match goal {
                Goal::Gone => {
                    progress(name, "deleted", start);
                    return Ok(None);
                }
                Goal::Serving { .. } => bail!("endpoint `{name}` disappeared while waiting for it to be InService"),
            },
            Err(error) => return Err(error.into()),
            Ok(endpoint) => {
                let status = endpoint.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string();
                if status != last_status {
                    progress(name, &status, start);
                    last_report = Instant::now();
                } else if last_report.elapsed() >= Duration::from_secs(10) {
                    progress(name, &format!("still {status}"), start);
                    last_report = Instant::now();
                }
                let reason = endpoint.get("failure_reason").and_then(Value::as_str).unwrap_or("no reason given");
                if let Goal::Serving { config } = goal {
                    match status.as_str() {
                        "InService" if endpoint.get("config").and_then(Value::as_str) == Some(config) => {
                            return Ok(Some(endpoint));
                        }
                        "InService" => {
                            bail!("endpoint `{name}` rolled back to config `{}`: {reason}", cell(&endpoint, "config"))
                        }
                        "Failed" => bail!("endpoint `{name}` failed: {reason}"),
                        _ => {}
                    }
                }
                status
            }
        };
        last_status = status;
        if start.elapsed() >= timeout {
            let seconds = timeout.as_secs_f64();
            let seconds = if seconds < 10.0 { format!("{seconds:.1}") } else { format!("{seconds:.0}") };
            bail!("endpoint `{name}` is still {last_status} after {seconds} s (--wait-timeout)");
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

fn progress(name: &str, status: &str, start: Instant) {
    eprintln!("endpoint `{name}`: {status} ({:.2} s)", start.elapsed().as_secs_f64());
}

fn print_endpoint(output: Output, endpoint: &Value) {
    if output == Output::Json {
        print_json(endpoint);
        return;
    }
    print!(
        "{}",
        table::render_pairs(&[
            ("name", cell(endpoint, "name")),
            ("status", cell(endpoint, "status")),
            ("config", cell(endpoint, "config")),
            ("failure", cell(endpoint, "failure_reason")),
            ("created", cell(endpoint, "created_at")),
            ("updated", cell(endpoint, "updated_at")),
        ])
    );
    println!();
    print!("{}", variants_table(endpoint));
    let activities = super::scaling::activities_table(endpoint);
    if !activities.is_empty() {
        println!();
        print!("{activities}");
    }
}

/// The media type a body file's extension implies.
fn content_type_of(body: &std::path::Path) -> Option<&'static str> {
    match body.extension().and_then(|extension| extension.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Some("text/csv"),
        Some("json") => Some("application/json"),
        _ => None,
    }
}

fn run_invoke(client: &Client, args: &InvokeArgs) -> anyhow::Result<()> {
    let content_type = match (&args.content_type, content_type_of(&args.body)) {
        (Some(content_type), _) => content_type.as_str(),
        (None, Some(content_type)) => content_type,
        (None, None) => bail!("--content-type is needed: {} has no .csv or .json extension", args.body.display()),
    };
    let body = if args.body.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).context("cannot read the body from standard input")?;
        bytes
    } else {
        std::fs::read(&args.body).with_context(|| format!("cannot read {}", args.body.display()))?
    };
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(accept) = &args.accept {
        headers.push(("Accept", accept));
    }
    if let Some(variant) = &args.target_variant {
        headers.push(("X-Amzn-SageMaker-Target-Variant", variant));
    }
    if args.explain {
        headers.push(("X-Amzn-SageMaker-Enable-Explanations", "true"));
    }
    let path = format!("/endpoints/{}/invocations", segment(&args.name));
    let answer = client.send(Method::Post, &path, Some((content_type, &body)), &headers)?;
    if !(200..300).contains(&answer.status) {
        return Err(api_error(&answer).into());
    }
    if args.show_variant {
        eprintln!("variant: {}", answer.variant.as_deref().unwrap_or("-"));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&answer.body).context("cannot write the answer")?;
    // A terminal gets a final newline so the prompt does not land on the answer's last line; pipes get the bytes.
    if stdout.is_terminal() && !answer.body.ends_with(b"\n") {
        stdout.write_all(b"\n").context("cannot write the answer")?;
    }
    stdout.flush().context("cannot write the answer")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The endpoint commands as the binary parses them.
    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        endpoint: EndpointArgs,
    }

    fn parse(arguments: &[&str]) -> Result<EndpointArgs, clap::Error> {
        use clap::Parser;
        Command::try_parse_from(std::iter::once("endpoint").chain(arguments.iter().copied()))
            .map(|parsed| parsed.endpoint)
    }

    #[test]
    fn the_contract_commands_parse() {
        let parsed = parse(&["describe", "credit", "--output", "json", "--url", "http://h:1"]).unwrap();
        assert_eq!(parsed.connection.output, Output::Json);
        assert_eq!(parsed.connection.url, "http://h:1");
        assert!(matches!(parsed.command, EndpointCommand::Describe { name } if name == "credit"));
        let parsed = parse(&["create", "--name", "credit", "--config", "c1", "--wait"]).unwrap();
        let EndpointCommand::Create(create) = parsed.command else { panic!("create") };
        assert_eq!((create.name.as_str(), create.config.as_str(), create.wait.wait), ("credit", "c1", true));
        assert_eq!(create.wait.wait_timeout, 600.0);
        let parsed = parse(&["update", "--name", "credit", "--config", "c2"]).unwrap();
        assert!(matches!(parsed.command, EndpointCommand::Update(update) if !update.wait.wait));
        let parsed = parse(&["delete", "credit", "--wait", "--wait-timeout", "5"]).unwrap();
        assert!(matches!(parsed.command, EndpointCommand::Delete(delete) if delete.wait.wait_timeout == 5.0));
        let parsed = parse(&["invoke", "credit", "--content-type", "text/csv", "--body", "rows.csv"]).unwrap();
        let EndpointCommand::Invoke(invoke) = parsed.command else { panic!("invoke") };
        assert_eq!(invoke.content_type.as_deref(), Some("text/csv"));
        assert_eq!(invoke.body, PathBuf::from("rows.csv"));
        assert_eq!(parse(&["list"]).unwrap().connection.output, Output::Table);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(parse(&["create", "--name", "credit"]).is_err(), "no --config");
        assert!(parse(&["describe"]).is_err(), "no name");
        assert!(parse(&["list", "--output", "yaml"]).is_err());
        assert!(parse(&["update-variant", "--name", "e", "--variant", "v"]).is_err(), "nothing to change");
    }

    /// `wait` against a server that answers `answers` to its successive GETs.
    fn wait_on(answers: Vec<(u16, &'static str)>, goal: &Goal, timeout: Duration) -> anyhow::Result<Option<Value>> {
        let (url, server) = super::super::fake_server::serve(answers.clone());
        let client = Client::new(&url, None, Duration::from_secs(10));
        let result = wait(&client, "credit", goal, timeout);
        // A timeout leaves answers unasked for; the server thread then waits for them, so it is not joined.
        if result.is_ok() {
            let requests = server.join().unwrap();
            assert!(
                requests.iter().all(|request| request.method == "GET" && request.path == "/api/v1/endpoints/credit")
            );
        }
        result
    }

    #[test]
    fn waiting_ends_in_service_on_the_wanted_config() {
        let answers = vec![
            (200, r#"{"name": "credit", "status": "Creating", "config": "c1"}"#),
            (200, r#"{"name": "credit", "status": "InService", "config": "c1"}"#),
        ];
        let endpoint = wait_on(answers, &Goal::Serving { config: "c1" }, Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(endpoint["status"], "InService");
    }

    #[test]
    fn an_update_that_rolled_back_is_an_error_naming_the_reason() {
        let answers = vec![
            (200, r#"{"name": "credit", "status": "Updating", "config": "c1"}"#),
            (200, r#"{"name": "credit", "status": "RollingBack", "config": "c1"}"#),
            (200, r#"{"name": "credit", "status": "InService", "config": "c1", "failure_reason": "model m: boom"}"#),
        ];
        let error = wait_on(answers, &Goal::Serving { config: "c2" }, Duration::from_secs(10)).unwrap_err();
        assert_eq!(error.to_string(), "endpoint `credit` rolled back to config `c1`: model m: boom");
    }

    #[test]
    fn a_failed_endpoint_is_an_error_naming_the_reason() {
        let answers = vec![(200, r#"{"name": "credit", "status": "Failed", "config": "c1", "failure_reason": "no"}"#)];
        let error = wait_on(answers, &Goal::Serving { config: "c1" }, Duration::from_secs(10)).unwrap_err();
        assert_eq!(error.to_string(), "endpoint `credit` failed: no");
    }

    #[test]
    fn waiting_for_a_deletion_ends_at_not_found() {
        let answers = vec![
            (200, r#"{"name": "credit", "status": "Deleting", "config": "c1"}"#),
            (404, r#"{"error": {"code": "not_found", "message": "endpoint \"credit\" does not exist"}}"#),
        ];
        assert!(wait_on(answers, &Goal::Gone, Duration::from_secs(10)).unwrap().is_none());
    }

    #[test]
    fn waiting_gives_up_after_its_timeout() {
        let answers = vec![(200, r#"{"name": "credit", "status": "Creating", "config": "c1"}"#); 1000];
        let error = wait_on(answers, &Goal::Serving { config: "c1" }, Duration::from_millis(100)).unwrap_err();
        assert_eq!(error.to_string(), "endpoint `credit` is still Creating after 0.1 s (--wait-timeout)");
    }

    #[test]
    fn body_extensions_imply_media_types() {
        assert_eq!(content_type_of(Path::new("rows.csv")), Some("text/csv"));
        assert_eq!(content_type_of(Path::new("rows.JSON")), Some("application/json"));
        assert_eq!(content_type_of(Path::new("rows.txt")), None);
        assert_eq!(content_type_of(Path::new("-")), None);
    }
}
