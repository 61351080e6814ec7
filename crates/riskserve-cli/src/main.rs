//! The `riskserve` binary: command-line entry point.

use std::process::ExitCode;

fn main() -> ExitCode {
    let status = riskserve_cli::run_from_args(std::env::args_os());
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
