//! The replay CLI's commands and flags. They live in the library so the
//! binary stays a shim and tests can run exactly what an operator types.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use events::KafkaArgs;

/// Rebuild, verify and swap read models from the event log; inspect, tail,
/// export and import the log; resolve dead letters.
///
/// Views are rebuilt per view set (`catalog`, `orders`, `probes`): the
/// tables fed by the same topics, with their positions and dead letters.
/// A rebuild replays the log into a shadow schema (`replay_<view>`) while
/// the projector and the query API keep serving the live tables; `--swap`
/// then pauses the projectors between two batches, catches the shadow up to
/// their position and swaps the tables in one transaction.
///
/// Exit codes: 0 done (verify: no difference), 1 verify found differences,
/// 2 bad usage, 3 Kafka/PostgreSQL/Redis unreachable (nothing changed),
/// 4 refused (unknown view, timestamp before the log, busy ...; nothing
/// changed), 5 swapped but the Redis cache could not be invalidated,
/// 6 failed midway (rerun to resume).
#[derive(Debug, Parser)]
#[command(name = "replay", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  replay rebuild orders --swap            rebuild the order views and switch to them
  replay rebuild --all                    rebuild every view set into shadows, no swap
  replay verify catalog                   diff a fresh rebuild against the live view
  replay history orders 0193...-...       an order's events with their envelopes
  replay tail catalog --from beginning --no-follow --output json
  replay export --to events.jsonl         every event topic, as JSON lines
  replay dead-letters list";

#[derive(Debug, Args)]
pub struct Global {
    /// The views database.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:15432/commerce"
    )]
    pub database_url: String,
    /// The Redis cache (invalidated after a swap).
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:16379"
    )]
    pub redis_url: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Output for people (`table`) or scripts (`json`: one JSON object per
    /// line, reports included).
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// No progress bars and no report; only errors (on stderr) and the exit code.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the log into shadow tables of a view set; `--swap` switches
    /// the live view to them once they have caught up. An interrupted
    /// rebuild resumes where it stopped when run again.
    Rebuild(RebuildArgs),
    /// Rebuild a view set into its shadow and diff it against the live
    /// view; prints the differing keys, exits 1 when there are any.
    Verify(VerifyArgs),
    /// The events of one aggregate in order, with their envelopes.
    History(HistoryArgs),
    /// Print the records of a topic (a stream name such as `orders`, or a
    /// full topic name).
    Tail(TailArgs),
    /// Write every event of the log to a JSON lines file.
    Export(ExportArgs),
    /// Append the events of a JSON lines file to empty event topics (a new
    /// cluster or topic prefix).
    Import(ImportArgs),
    /// Print the AsyncAPI 3.0 document of the topics, generated from the
    /// event and command types (`replay asyncapi > events/asyncapi.json`).
    Asyncapi,
    /// Inspect and resolve the records projectors could not apply.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The view set to rebuild (catalog, orders, probes).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub view: Option<String>,
    /// Rebuild every view set, one after the other.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub from: FromArgs,
    /// Switch the live view to the rebuilt tables once they have caught up.
    #[arg(long)]
    pub swap: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Debug, Args)]
pub struct FromArgs {
    /// Replay the whole log (the default).
    #[arg(long, conflicts_with = "from")]
    pub from_beginning: bool,
    /// Replay only the records appended at or after this time (RFC 3339);
    /// refused when it is before the log starts.
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct Tuning {
    /// Drop an existing shadow and start over instead of resuming it.
    #[arg(long)]
    pub restart: bool,
    /// Records per shadow transaction.
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: usize,
    /// One transaction per event (for comparison only: much slower).
    #[arg(long)]
    pub naive: bool,
}

impl Tuning {
    pub fn batch(&self) -> usize {
        if self.naive {
            1
        } else {
            self.batch_size.max(1)
        }
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The view set to verify (catalog, orders, probes).
    pub view: String,
    /// Differing keys printed at most (all are counted).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Keep the shadow afterwards (a later `rebuild --swap` resumes it).
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The aggregate's stream: catalog, orders, payments, shipments, sagas.
    pub aggregate_type: String,
    /// The aggregate id (a SKU, or an order id for orders, payments, shipments).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// A stream name (`orders` means its events topic) or a full topic name.
    pub topic: String,
    /// Where to start: `beginning`, `end` or an RFC 3339 time.
    #[arg(long, default_value = "end")]
    pub from: String,
    /// Stop at the end of the log instead of waiting for new records.
    #[arg(long)]
    pub no_follow: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub max: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The JSON lines file to write.
    #[arg(long)]
    pub to: PathBuf,
    /// Only these streams (repeatable); all event streams by default.
    #[arg(long = "stream")]
    pub streams: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The JSON lines file written by `export`.
    #[arg(long)]
    pub from: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// The dead letters, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Apply dead-lettered records again (after a fix): every dead letter of
    /// the named records' aggregates, in log order, up to the first that
    /// still fails.
    Retry(Selection),
    /// Give up on dead-lettered records: remove them without applying. The
    /// records held back behind them stay until retried.
    Skip(Selection),
}

#[derive(Debug, Args)]
pub struct Selection {
    /// Dead letter ids (from `list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<i64>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
}
