//! The benchmark harness: raw baselines and the system's own figures,
//! measured in the same run on the same machine, so every figure is printed
//! beside the ceiling it is held against.
//!
//! - [`config`]: the flags of `bench run` (where the services and the stack are).
//! - [`stats`]: HDR latency summaries and the [`stats::Measured`] record every
//!   measurement produces.
//! - [`load`]: the load generator, closed loop (max throughput) and open loop
//!   (fixed rate, latency from the intended send time, so a stall is not hidden
//!   by coordinated omission), plus CPU accounting from `/proc`.
//! - [`procstat`]: CPU time and resident memory of processes from `/proc`.
//! - [`fixtures`]: a real event envelope, order bodies and development tokens.
//! - [`baselines`]: rdkafka produce and consume, PostgreSQL upserts and point
//!   reads, Redis GET, an axum handler without I/O, serde_json.
//! - [`system`]: the running services: commands, end to end through the saga,
//!   projection catch-up and lag, query reads, replay rebuild, memory.
//! - [`report`]: the comparisons with their targets, JSON and markdown.
//! - [`clean`]: removes an earlier run's topics, databases and cache keys.
//!
//! `scripts/bench` starts the services and calls `bench run`; the binary in
//! `main.rs` only parses flags and calls [`main`].

pub mod baselines;
pub mod clean;
pub mod config;
pub mod fixtures;
pub mod load;
pub mod procstat;
pub mod report;
pub mod stats;
pub mod system;

use clap::{Parser, Subcommand};

pub use config::RunArgs;

/// Benchmarks of the commerce core against raw baselines.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the baselines and the system benchmarks against running services.
    Run(Box<RunArgs>),
    /// Serve a fixed JSON document without any I/O: the HTTP baseline.
    NoopServer {
        #[arg(long)]
        addr: String,
    },
    /// Remove the topics, databases and cache keys of earlier runs.
    Clean(clean::CleanArgs),
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run(*args).await,
        Command::NoopServer { addr } => baselines::http::serve(&addr).await,
        Command::Clean(args) => clean::clean(&args).await,
    }
}

/// Baselines first, then the system, then the report.
async fn run(args: RunArgs) -> anyhow::Result<()> {
    match args.phases {
        config::Phases::Commands => return system::commands_only(&args).await,
        config::Phases::Rebuild => return system::replay::rebuild_only(&args).await,
        config::Phases::Restore => return system::restore::run(&args).await,
        config::Phases::All => {}
    }
    let started = chrono::Utc::now();
    let baselines = baselines::run(&args).await?;
    let system = system::run(&args, &baselines).await?;
    let results = report::Results::new(&args, started, baselines, system);
    report::write(&args, &results)?;
    println!("{}", report::markdown(&results));
    Ok(())
}
