//! The `riskserve` command line as a library: the binary's `main` and the Python package's console script both
//! call [`run_from_args`].

mod bench;
mod client;
mod compile;
mod demo;
mod rows;
mod score;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Deploy and score risk classification models.
#[derive(Debug, Parser)]
#[command(name = "riskserve", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score the rows of a CSV file with a model or a pipeline; write the outputs as CSV or JSON lines.
    Score(score::ScoreArgs),
    /// Measure scoring throughput on the rows of a CSV file.
    Bench(bench::BenchArgs),
    /// Compile a model's trees and print the evaluator chosen, its memory per node and the compile time as JSON.
    Compile(compile::CompileArgs),
    /// Run the server: managed endpoints over HTTP, with embedded storage.
    Serve(serve::ServeArgs),
    /// Register, list, describe and delete models on a riskserve server.
    Model(client::model::ModelArgs),
    /// Create, list, describe and delete endpoint configs (production variants) on a riskserve server.
    EndpointConfig(client::endpoint_config::EndpointConfigArgs),
    /// Deploy, update, delete, describe and invoke endpoints on a riskserve server.
    Endpoint(client::endpoint::EndpointArgs),
    /// Run the server with the German Credit examples deployed, and print how to invoke them.
    Demo(demo::DemoArgs),
    /// Usage and cost reports of a riskserve server (instance-hours, invocations, priced).
    Cost(client::cost::CostArgs),
    /// Users, roles, access keys, bearer tokens and Cedar policies of a riskserve server.
    Iam(client::iam::IamArgs),
    /// Query the audit trail and verify its hash chain and signed seals.
    Audit(client::audit::AuditArgs),
    /// Model monitoring of an endpoint: baseline, outcomes, schedule, runs and their reports (drift, calibration).
    Monitor(client::monitor::MonitorArgs),
}

/// Arguments every command that loads a model shares.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The model file (XGBoost JSON or UBJSON, LightGBM text, ONNX, PMML).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The model's format; detected from the content when omitted.
    #[arg(long, value_parser = ["xgboost-json", "xgboost-ubj", "lightgbm", "onnx", "pmml"])]
    pub format: Option<String>,
    /// The rows: a CSV file with a header; an empty cell is a missing value.
    #[arg(long, value_name = "ROWS.csv")]
    pub input: PathBuf,
}

/// Parses `args` (the program name first, as `std::env::args_os` gives them) and runs the command; returns the
/// process exit status (0 on success, 2 for a usage error as clap reports it, 1 for a failed command).
pub fn run_from_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors to stderr with status 2.
            let _ = error.print();
            return error.exit_code();
        }
    };
    let result = match cli.command {
        Command::Score(args) => score::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Model(args) => client::model::run(args),
        Command::EndpointConfig(args) => client::endpoint_config::run(args),
        Command::Endpoint(args) => client::endpoint::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Cost(args) => client::cost::run(args),
        Command::Iam(args) => client::iam::run(args),
        Command::Audit(args) => client::audit::run(args),
        Command::Monitor(args) => client::monitor::run(args),
    };
    match result {
        Ok(()) => 0,
        // A reader that stopped early (`riskserve score ... | head`) is not a failure.
        Err(error) if is_broken_pipe(&error) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    }
}

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().is_some_and(|json| json.io_error_kind() == Some(BrokenPipe))
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|csv| matches!(csv.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe))
    })
}
