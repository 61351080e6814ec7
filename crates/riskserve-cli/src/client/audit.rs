//! `riskserve audit query|verify|public-key`: the audit trail, filtered and paginated, and its integrity check.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;

use super::http::segment;
use super::table::cell;
use super::{Connection, Output, print_json, print_list};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Events oldest first, filtered; every filter given must hold.
    Query {
        /// At or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// A user name.
        #[arg(long)]
        principal: Option<String>,
        /// e.g. sagemaker:InvokeEndpoint.
        #[arg(long)]
        action: Option<String>,
        /// e.g. Endpoint/credit.
        #[arg(long)]
        resource: Option<String>,
        /// allowed, denied, failed or unauthenticated.
        #[arg(long)]
        outcome: Option<String>,
        /// At most this many events (following pages as needed).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Check the hash chain and the signed seals; names the first broken link (exit status 1 when broken).
    Verify {
        /// Check a data directory directly, without a server (e.g. a backup).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The trusted public key (hex, from `audit public-key`); with --data-dir, else the key of the seals.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// The Ed25519 public key that verifies the seals, to keep apart from the server.
    PublicKey,
}

pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    match args.command {
        AuditCommand::Query { since, until, principal, action, resource, outcome, limit } => {
            let client = args.connection.client()?;
            let mut filters: Vec<String> = Vec::new();
            for (name, value) in [
                ("since", since),
                ("until", until),
                ("principal", principal),
                ("action", action),
                ("resource", resource),
                ("outcome", outcome),
            ] {
                if let Some(value) = value {
                    filters.push(format!("{name}={}", segment(&value)));
                }
            }
            let mut events: Vec<Value> = Vec::new();
            let mut next_token: Option<String> = None;
            while events.len() < limit {
                let mut query = filters.clone();
                query.push(format!("max_results={}", (limit - events.len()).min(1000)));
                if let Some(token) = &next_token {
                    query.push(format!("next_token={}", segment(token)));
                }
                let page = client.get_json(&format!("/api/v1/audit-events?{}", query.join("&")))?;
                let items = page.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                events.extend(items.iter().cloned());
                next_token = page.get("next_token").and_then(Value::as_str).map(str::to_string);
                if next_token.is_none() || items.is_empty() {
                    break;
                }
            }
            print_list(
                output,
                &events,
                &[
                    ("SEQ", &|event| cell(event, "seq")),
                    ("TIME", &|event| cell(event, "time")),
                    ("PRINCIPAL", &|event| cell(event, "principal")),
                    ("SOURCE", &|event| cell(event, "source")),
                    ("ACTION", &|event| cell(event, "action")),
                    ("RESOURCE", &|event| cell(event, "resource")),
                    ("OUTCOME", &|event| cell(event, "outcome")),
                    ("STATUS", &|event| cell(event, "status")),
                    ("US", &|event| cell(event, "latency_us")),
                ],
            );
        }
        AuditCommand::Verify { data_dir, public_key } => {
            let report = match data_dir {
                Some(dir) => {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("cannot start the async runtime")?;
                    let report = runtime
                        .block_on(riskserve_server::verify_data_dir(&dir, public_key.as_deref()))
                        .map_err(|error| anyhow::anyhow!("cannot verify {}: {error}", dir.display()))?;
                    serde_json::to_value(report)?
                }
                None => args.connection.client()?.get_json("/api/v1/audit/verify")?,
            };
            let ok = report.get("ok").and_then(Value::as_bool).unwrap_or(false);
            if output == Output::Json {
                print_json(&report);
            } else if ok {
                println!(
                    "ok: {} events, {} seals; events up to {} are sealed",
                    cell(&report, "events"),
                    cell(&report, "seals"),
                    cell(&report, "last_sealed_seq")
                );
            } else {
                println!("BROKEN: {}", cell(&report, "problem"));
            }
            if !ok {
                bail!("the audit trail does not verify");
            }
        }
        AuditCommand::PublicKey => {
            let key = args.connection.client()?.get_json("/api/v1/audit/public-key")?;
            if output == Output::Json {
                print_json(&key);
            } else {
                println!("{}", cell(&key, "public_key"));
            }
        }
    }
    Ok(())
}
