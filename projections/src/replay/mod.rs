//! The replay CLI's library: rebuilding, verifying and swapping views from
//! the event log, and inspecting and moving the log itself. The binary
//! (`src/bin/replay.rs`) only parses flags and calls [`execute`].
//!
//! - [`cli`]: the commands and flags (clap), shared by the binary and tests.
//! - `run`: dispatches a parsed command and prints its report.
//! - `reader`: reads ranges of the log (read_committed) in batches.
//! - `topics`: partitions, watermarks and timestamps of topics.
//! - `shadow`: the shadow schema a view set is rebuilt into; `keys`: its
//!   tables' keys and indexes.
//! - `rebuild`: replays the log into a shadow at full speed.
//! - `bulk`: a fresh shadow's load, folded in memory, appended without keys.
//! - `swap`: pauses the projectors and swaps a caught-up shadow in.
//! - `verify`: diffs a shadow against the live view.
//! - `history`, `tail`: an aggregate's events, a topic's records.
//! - `exchange`: export to and import from JSON lines.
//! - `letters`: lists, retries and skips dead letters.
//! - `progress`, `output`: progress bars and the table/JSON output.
//!
//! A view set (`dispatch::ViewSet`) is the unit of a rebuild: its tables,
//! its positions and its dead letters move together, so a new view set
//! needs no change here.

mod bulk;
pub mod cli;
mod exchange;
mod history;
mod keys;
mod letters;
mod output;
mod progress;
mod reader;
mod rebuild;
mod run;
mod shadow;
mod swap;
mod tail;
mod topics;
mod verify;

use std::time::Duration;

use chrono::{DateTime, Utc};
use events::KafkaConfig;
use rdkafka::error::KafkaError;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::cache::{self, Cache, CacheError};
use crate::dispatch::{Routes, ViewSet};

pub use cli::Cli;
pub use run::execute;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Done; `verify` found no difference.
    pub const OK: u8 = 0;
    /// `verify` found differences.
    pub const DIFFERENT: u8 = 1;
    /// Bad flags or arguments (clap's own code).
    pub const USAGE: u8 = 2;
    /// Kafka, PostgreSQL or Redis could not be reached; nothing was changed.
    pub const UNAVAILABLE: u8 = 3;
    /// The request was refused (unknown view, timestamp before the log,
    /// busy view, non-empty import target ...); nothing was changed.
    pub const REFUSED: u8 = 4;
    /// The view was swapped but its cache entries could not be invalidated.
    pub const SWAPPED_CACHE_STALE: u8 = 5;
    /// Anything else failed midway; rerunning resumes or restarts cleanly.
    pub const FAILED: u8 = 6;
}

/// Why a replay command failed. `Display` is the one line the binary prints.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("unknown view {name:?} (views: {known})")]
    UnknownView { name: String, known: String },
    #[error("unknown stream {0:?} (streams: catalog, orders, payments, shipments, sagas, probes)")]
    UnknownStream(String),
    #[error("kafka at {brokers} is unreachable: {source}")]
    KafkaUnreachable { brokers: String, source: KafkaError },
    #[error("kafka failed: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Encode(#[from] events::message::EncodeError),
    #[error("the views database is unreachable: {0}")]
    DatabaseUnreachable(sqlx::Error),
    #[error("the views database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis is unreachable: {0}")]
    RedisUnreachable(CacheError),
    #[error("parsing the redis url failed: {0}")]
    RedisUrl(redis::RedisError),
    #[error("--from {from} is before the log of {view} starts ({starts}); use --from-beginning")]
    BeforeLogStart {
        from: DateTime<Utc>,
        view: String,
        starts: String,
    },
    #[error("--from {0:?} is not beginning, end or an RFC 3339 time")]
    BadStart(String),
    #[error("another replay is working on {0}")]
    Busy(String),
    #[error(
        "the shadow of {view} replays from {existing}, not {requested}; add --restart to drop it"
    )]
    ShadowMismatch {
        view: String,
        existing: String,
        requested: String,
    },
    #[error("the shape of table {0} changed since its shadow was made; rebuild with --restart")]
    ShapeChanged(String),
    #[error("the live projector of {view} did not reach the rebuilt position within {waited:?}")]
    LiveBehind { view: String, waited: Duration },
    #[error("reading {topic} partition {partition} stalled at offset {offset} (end {end})")]
    Stalled {
        topic: String,
        partition: i32,
        offset: i64,
        end: i64,
    },
    #[error("swapped {view}, but invalidating its redis entries failed: {source}")]
    CacheNotInvalidated { view: String, source: CacheError },
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    BadLine {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("topic {0} already holds events; import only writes into empty topics")]
    TopicNotEmpty(String),
    #[error("producing to {topic} failed: {source}")]
    Produce { topic: String, source: KafkaError },
    #[error("no dead letter with id {0}")]
    NoSuchDeadLetter(i64),
    #[error("no view set {0} feeds dead letters")]
    UnknownProjection(String),
}

impl ReplayError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        use ReplayError::*;
        match self {
            KafkaUnreachable { .. } | DatabaseUnreachable(_) | RedisUnreachable(_) => {
                exit::UNAVAILABLE
            }
            UnknownView { .. }
            | UnknownStream(_)
            | BadStart(_)
            | BeforeLogStart { .. }
            | Busy(_)
            | ShadowMismatch { .. }
            | ShapeChanged(_)
            | TopicNotEmpty(_)
            | NoSuchDeadLetter(_)
            | UnknownProjection(_)
            | RedisUrl(_) => exit::REFUSED,
            CacheNotInvalidated { .. } => exit::SWAPPED_CACHE_STALE,
            Kafka(_)
            | Database(_)
            | LiveBehind { .. }
            | Stalled { .. }
            | File { .. }
            | BadLine { .. }
            | Encode(_)
            | Produce { .. } => exit::FAILED,
        }
    }
}

/// Where the replay finds the log, the views and the cache.
#[derive(Debug, Clone)]
pub struct Target {
    pub kafka: KafkaConfig,
    pub database_url: String,
    pub redis_url: String,
}

/// The connections of one command, opened on first use.
pub(crate) struct Context {
    pub target: Target,
    pub routes: Routes,
    pool: Option<PgPool>,
}

impl Context {
    pub fn new(target: Target) -> Context {
        Context {
            routes: Routes::new(&target.kafka),
            target,
            pool: None,
        }
    }

    pub fn kafka(&self) -> &KafkaConfig {
        &self.target.kafka
    }

    /// The views database; an unreachable one is a one-line error.
    pub async fn pool(&mut self) -> Result<PgPool, ReplayError> {
        if let Some(pool) = &self.pool {
            return Ok(pool.clone());
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&self.target.database_url)
            .await
            .map_err(ReplayError::DatabaseUnreachable)?;
        self.pool = Some(pool.clone());
        Ok(pool)
    }

    /// Fails with a one-line error when the brokers do not answer.
    pub async fn check_kafka(&self) -> Result<(), ReplayError> {
        self.kafka()
            .check()
            .await
            .map_err(|source| ReplayError::KafkaUnreachable {
                brokers: self.kafka().brokers.clone(),
                source,
            })
    }

    /// The cache of this views database, checked to answer.
    pub async fn cache(&self) -> Result<Cache, ReplayError> {
        let namespace = cache::namespace_for(&self.target.database_url);
        let cache = Cache::new(&self.target.redis_url, namespace, Duration::from_secs(5))
            .map_err(ReplayError::RedisUrl)?;
        cache.ping().await.map_err(ReplayError::RedisUnreachable)?;
        Ok(cache)
    }

    /// The topics feeding `set`.
    pub fn topics(&self, set: ViewSet) -> Vec<String> {
        self.routes.view_sets().remove(&set).unwrap_or_default()
    }
}

/// Applies the dead letter `id` (and the held-back records of its
/// aggregate) again: the projector service's operator endpoint, exactly
/// what `replay dead-letters retry <id>` does. Answers (applied, failing).
pub async fn retry_dead_letter(target: Target, id: i64) -> Result<(u64, u64), ReplayError> {
    let done = letters::retry(&mut Context::new(target), Some(&[id])).await?;
    Ok((done.applied, done.failing))
}

/// Gives up on the dead letter `id`, as `replay dead-letters skip <id>` does.
pub async fn skip_dead_letter(target: Target, id: i64) -> Result<u64, ReplayError> {
    letters::skip(&mut Context::new(target), Some(&[id])).await
}

/// The view set named `name`, or a one-line error listing the known ones.
pub fn view_set(name: &str) -> Result<ViewSet, ReplayError> {
    ViewSet::parse(name).ok_or_else(|| ReplayError::UnknownView {
        name: name.to_owned(),
        known: ViewSet::ALL.map(ViewSet::projection).join(", "),
    })
}
