//! The replay CLI as a separate process (the same library call as
//! `projections/src/bin/replay.rs`), so tests can SIGKILL a rebuild halfway.

use std::process::ExitCode;

use clap::Parser;
use projections::replay::{Cli, execute};

#[tokio::main]
async fn main() -> ExitCode {
    match execute(Cli::parse()).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
