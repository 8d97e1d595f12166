//! The replay CLI: parses flags and runs `projections::replay`; an error is
//! one line on stderr and a non-zero exit code (see `replay --help`).

use std::process::ExitCode;

use clap::Parser;
use projections::replay::{Cli, execute};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
