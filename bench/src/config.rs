//! The flags of `bench run`: where the services and the stack listen, and
//! how long each phase lasts (quick or full).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use events::KafkaConfig;
use events::kafka::KafkaArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// About a minute: one rate per figure, short phases.
    Quick,
    /// Longer phases, several open-loop rates, the 1 M event rebuild.
    Full,
}

/// Which parts of the benchmark `bench run` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phases {
    /// Every baseline and every system figure: the report.
    All,
    /// Only `POST /orders` at `--rates`, with where each order's time goes.
    Commands,
    /// Only the replay rebuild, beside the raw consume, raw upsert and
    /// naive replay baselines it is held against (needs no service).
    Rebuild,
    /// Only the command service's memory over `--orders` orders and its
    /// restore after a SIGKILL, on a command service the phase starts.
    Restore,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[arg(long, value_enum, default_value = "all")]
    pub phases: Phases,
    /// Open-loop rates of `--phases commands`, in orders per second.
    #[arg(long, value_delimiter = ',', default_value = "10,250")]
    pub rates: Vec<f64>,
    /// Seconds per rate of `--phases commands`.
    #[arg(long, default_value_t = 15)]
    pub rate_seconds: u64,
    /// Orders `--phases restore` places before it restarts the command
    /// service (default: 100,000 quick, 1,000,000 full).
    #[arg(long)]
    pub orders: Option<u64>,
    #[arg(long, value_enum, default_value = "quick")]
    pub mode: Mode,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub command_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub query_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8083")]
    pub projections_url: String,
    /// A running service to account memory and CPU to, as `name=pid` (repeatable).
    #[arg(long = "service", value_parser = parse_service)]
    pub services: Vec<(String, u32)>,
    /// The brokers, topic prefix and partitions the services were started
    /// with: the services' own flags (and the raw baselines' topic's).
    #[command(flatten)]
    pub kafka_args: KafkaArgs,
    /// PostgreSQL server, without a database name.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:15432")]
    pub postgres_url: String,
    /// The benchmark's own databases are `<db_prefix>_baseline` and
    /// `<db_prefix>_replay`, dropped and recreated by each run (another
    /// prefix keeps a run off another's on a shared stack).
    #[arg(long, default_value = "bench")]
    pub db_prefix: String,
    /// The views database the projector and the query API were started with.
    #[arg(long, default_value = "bench_views")]
    pub views_db: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:16379")]
    pub redis_url: String,
    #[arg(
        long,
        env = "JWT_SECRET",
        default_value = events::auth::keys::DEVELOPMENT_SECRET
    )]
    pub jwt_secret: String,
    /// Where the release binaries are (a second projector, the replay CLI).
    #[arg(long)]
    pub bin_dir: PathBuf,
    /// Results go to `<out_dir>/<date>.json` and `.md`.
    #[arg(long, default_value = "bench/results")]
    pub out_dir: PathBuf,
    /// The command line that started the run, for the report.
    #[arg(long, default_value = "scripts/bench")]
    pub invocation: String,
    /// Concurrent requests of the closed-loop (max throughput) phases.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Reads per second of the query API's open-loop phase; by default half
    /// of the closed-loop maximum just measured. A fixed rate compares two
    /// builds' latency under the same load.
    #[arg(long)]
    pub query_rate: Option<f64>,
}

fn parse_service(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("expected name=pid, got {text:?}"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("invalid pid in {text:?}"))?;
    Ok((name.to_owned(), pid))
}

impl RunArgs {
    pub fn kafka(&self) -> KafkaConfig {
        self.kafka_args.clone().into()
    }

    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{name}", self.postgres_url)
    }

    /// The URL of the benchmark's own database `<db_prefix>_<name>`.
    pub fn own_database_url(&self, name: &str) -> String {
        self.database_url(&format!("{}_{name}", self.db_prefix))
    }

    pub fn quick(&self) -> bool {
        self.mode == Mode::Quick
    }

    /// The length of a measured phase.
    pub fn phase(&self) -> Duration {
        match self.mode {
            Mode::Quick => Duration::from_secs(3),
            Mode::Full => Duration::from_secs(20),
        }
    }

    /// Records, rows or operations of the fixed-size baselines.
    pub fn records(&self) -> u64 {
        match self.mode {
            Mode::Quick => 50_000,
            Mode::Full => 500_000,
        }
    }
}
