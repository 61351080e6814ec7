//! `riskserve endpoint scaling set|describe|delete`: a variant's target-tracking policy (min and max
//! instances, target invocations per instance per minute, cooldowns).

use serde_json::{Value, json};

use super::http::segment;
use super::table::{self, cell, show};
use super::{Client, Output, print_json, print_list};

#[derive(Debug, clap::Args)]
pub struct ScalingArgs {
    #[command(subcommand)]
    pub command: ScalingCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ScalingCommand {
    /// Set (create or replace) a variant's policy.
    Set(SetArgs),
    /// Show an endpoint's policies and its latest scaling activities.
    Describe {
        /// The endpoint's name.
        name: String,
    },
    /// Remove a variant's policy; its instance count stays as it is.
    Delete {
        /// The endpoint's name.
        name: String,
        /// The variant.
        #[arg(long)]
        variant: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The endpoint's name.
    pub name: String,
    /// The production variant the policy scales.
    #[arg(long)]
    pub variant: String,
    /// Fewest instances.
    #[arg(long, value_name = "N")]
    pub min: u32,
    /// Most instances.
    #[arg(long, value_name = "N")]
    pub max: u32,
    /// Target invocations per instance per minute.
    #[arg(long, value_name = "T")]
    pub target: f64,
    /// Seconds after a scale-out before another one [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub scale_out_cooldown: Option<f64>,
    /// Seconds after any scaling before a scale-in [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub scale_in_cooldown: Option<f64>,
}

fn policy_path(name: &str, variant: &str) -> String {
    format!("/api/v1/endpoints/{}/variants/{}/scaling-policy", segment(name), segment(variant))
}

/// A number for people: whole numbers without a decimal point.
fn figure(value: &Value) -> String {
    match value.as_f64() {
        Some(number) if number.fract() == 0.0 && number.abs() < 1e15 => format!("{number:.0}"),
        _ => show(value),
    }
}

/// The policy columns of a table.
fn print_policies(output: Output, policies: &[Value]) {
    print_list(
        output,
        policies,
        &[
            ("VARIANT", &|policy| cell(policy, "variant")),
            ("MIN", &|policy| show(&policy["min_instances"])),
            ("MAX", &|policy| show(&policy["max_instances"])),
            ("TARGET/INSTANCE/MIN", &|policy| figure(&policy["target"])),
            ("OUT COOLDOWN s", &|policy| figure(&policy["scale_out_cooldown"])),
            ("IN COOLDOWN s", &|policy| figure(&policy["scale_in_cooldown"])),
        ],
    );
}

/// The endpoint's latest scaling activities as a table (nothing when there are none).
pub fn activities_table(endpoint: &Value) -> String {
    let activities = endpoint.get("scaling_activities").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if activities.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = activities
        .iter()
        .map(|activity| {
            vec![
                cell(activity, "time"),
                cell(activity, "variant"),
                show(&activity["from"]),
                show(&activity["to"]),
                cell(activity, "cause"),
            ]
        })
        .collect();
    table::render(&["SCALED AT", "VARIANT", "FROM", "TO", "CAUSE"], &rows)
}

pub fn run(client: &Client, output: Output, args: &ScalingArgs) -> anyhow::Result<()> {
    match &args.command {
        ScalingCommand::Set(set) => {
            let mut body = json!({"min_instances": set.min, "max_instances": set.max, "target": set.target});
            if let Some(seconds) = set.scale_out_cooldown {
                body["scale_out_cooldown"] = json!(seconds);
            }
            if let Some(seconds) = set.scale_in_cooldown {
                body["scale_in_cooldown"] = json!(seconds);
            }
            let policy = client.put_json(&policy_path(&set.name, &set.variant), &body)?;
            if output == Output::Json {
                print_json(&policy);
            } else {
                print_policies(output, &[policy]);
            }
        }
        ScalingCommand::Describe { name } => {
            let policies = client.get_json(&format!("/api/v1/endpoints/{}/scaling-policies", segment(name)))?;
            let items = table::items(&policies).to_vec();
            if output == Output::Json {
                let endpoint = client.get_json(&format!("/api/v1/endpoints/{}", segment(name)))?;
                print_json(&json!({"policies": items, "scaling_activities": endpoint["scaling_activities"]}));
                return Ok(());
            }
            print_policies(output, &items);
            let endpoint = client.get_json(&format!("/api/v1/endpoints/{}", segment(name)))?;
            let activities = activities_table(&endpoint);
            if !activities.is_empty() {
                println!();
                print!("{activities}");
            }
        }
        ScalingCommand::Delete { name, variant } => {
            client.delete(&policy_path(name, variant))?;
            if output == Output::Json {
                print_json(&json!({"deleted": {"endpoint": name, "variant": variant}}));
            }
        }
    }
    Ok(())
}
