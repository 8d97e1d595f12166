//! Projectors: fold the event log into read models in PostgreSQL (and the
//! Redis cache) that the query API serves.
//!
//! - `consumer`: the batch loop (read_committed, one transaction per batch).
//! - `dispatch`: which view set each topic feeds; applies a batch to all of them.
//! - [`views`]: the business views, each a pure fold plus its bulk SQL.
//! - [`documents`]: the JSON the query API serves for the hot views.
//! - [`cache`]: the Redis cache of those documents, version-guarded.
//! - `refresh`: writes the documents committed batches changed to the cache, off the batch loop.
//! - `lag`: how far each projection is behind the log (metrics, readiness details).
//! - `operator`: admins' endpoints: `GET /lag`, dead-letter retry and skip.
//! - `positions`: per-partition positions stored with the view rows.
//! - `record`: a detached Kafka record.
//! - [`dead_letters`]: records a projection could not apply.
//! - `hold`: holds an aggregate's later records back behind its dead letter.
//! - [`probes`]: the pipeline-probe view.
//! - [`db`]: the views database and its migrations (`migrations/`).
//! - `pause`: the lock that pauses projectors between batches for a swap.
//! - [`read`]: the read side the query API uses (rows, documents, read
//!   queries, cache lookups), re-exported with no writer among them.
//! - [`replay`]: the replay CLI (rebuild, verify, swap, history, tail,
//!   export/import, dead letters); `src/bin/replay.rs` is its shim.
//!
//! [`run`] starts the service; [`cli`] is its command line, which `main.rs`
//! only calls.

pub mod cache;
pub mod cli;
mod consumer;
pub mod db;
pub mod dead_letters;
mod dispatch;
pub mod documents;
mod hold;
mod lag;
mod operator;
mod pause;
mod positions;
pub mod probes;
pub mod read;
mod record;
mod refresh;
pub mod replay;
pub mod views;

pub use dispatch::{Mode, ViewSet};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use events::KafkaConfig;
use events::service::{self, Health};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a projector instance needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub kafka: KafkaConfig,
    /// Consumer group shared by all projector instances of a deployment.
    pub group_id: String,
    pub database_url: String,
    pub redis_url: String,
    /// Token keys (for the operator endpoints) and the key that signs the
    /// order entries of the cache (the query API checks them).
    pub auth: events::auth::AuthConfig,
}

impl Config {
    /// The configuration the command line's flags describe; the binary and
    /// the tests' processes both build it here.
    pub fn new(
        kafka: KafkaConfig,
        group_id: impl Into<String>,
        views: events::args::ViewsArgs,
        auth: events::auth::AuthConfig,
    ) -> Config {
        Config {
            kafka,
            group_id: group_id.into(),
            database_url: views.database_url,
            redis_url: views.redis_url,
            auth,
        }
    }
}

/// Longest one cache call of the projector may take.
const CACHE_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the projector until `shutdown` is cancelled; `listener` serves the
/// health and metrics endpoints and the operator endpoints.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = db::connect_and_migrate(&config.database_url)
        .await
        .context("connecting to the views database")?;
    let namespace = cache::namespace_for(&config.database_url);
    let refresher_cache = cache::Cache::new(&config.redis_url, namespace.clone(), CACHE_TIMEOUT)
        .context("parsing the redis url")?
        .with_signing(&config.auth.signing);
    let health_cache = cache::Cache::new(&config.redis_url, namespace, CACHE_TIMEOUT)
        .context("parsing the redis url")?;
    config
        .kafka
        .ensure_topics(&config.kafka.all_topics())
        .await
        .context("creating kafka topics")?;
    let routes = dispatch::Routes::new(&config.kafka);
    let consumer = consumer::subscribe(&config.kafka, &config.group_id, &routes.topics())
        .context("subscribing to the event topics")?;
    let consumer = Arc::new(consumer);
    let lag_report = Arc::new(Mutex::new(lag::Report::new()));

    let tasks = TaskTracker::new();
    tasks.spawn(lag::run(
        consumer.clone(),
        pool.clone(),
        routes.clone(),
        lag_report.clone(),
        shutdown.clone(),
    ));
    let hinted = consumer.clone();
    let (refresher, refreshing) = refresh::Refresher::spawn(
        refresher_cache,
        pool.clone(),
        Box::new(move |hints: consumer::Hints| hints.commit(&hinted)),
    );
    tasks.spawn(consumer::run(
        consumer,
        pool.clone(),
        routes,
        refresher,
        shutdown.clone(),
    ));
    // Ends once the batch loop has stopped and its last batches are written.
    tasks.spawn(refreshing);
    tasks.close();

    let operator = operator::router(operator::OperatorState {
        verifier: Arc::new(
            events::auth::JwtVerifier::new(&config.auth).context("loading the token keys")?,
        ),
        lag: lag_report.clone(),
        target: replay::Target {
            kafka: config.kafka.clone(),
            database_url: config.database_url.clone(),
            redis_url: config.redis_url.clone(),
        },
    });
    let check_pool = pool.clone();
    let health = Health::new()
        .kafka(config.kafka.clone())
        .check("postgres", move || {
            let pool = check_pool.clone();
            async move { sqlx::query("SELECT 1").execute(&pool).await.map(|_| ()) }
        })
        .check("redis", {
            let cache = std::sync::Arc::new(health_cache);
            move || {
                let cache = cache.clone();
                async move { cache.ping().await }
            }
        })
        .details(move || {
            let report = lag_report.lock().map(|r| r.clone()).unwrap_or_default();
            serde_json::json!({ "projections": report })
        });
    tracing::info!(addr = %listener.local_addr()?, "projector listening");
    let served = service::serve(
        listener,
        service::with_ops(operator, "projections", health),
        shutdown,
    )
    .await;
    tasks.wait().await;
    served.context("serving http")
}
