//! The order fulfilment saga: reacts to events, drives the aggregates through
//! stock, payment and shipping, and compensates on failure.
//!
//! The saga's state machine, worker, outbox relay and deadline timer land with
//! the saga work; for now the service connects to its dependencies and
//! reports their health.
//!
//! [`run`] starts the service; the binary in `main.rs` only parses flags.

pub mod machine;
use anyhow::Context;
use events::KafkaConfig;
use events::service::{self, Health};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything a saga worker needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub kafka: KafkaConfig,
    /// The saga database (saga rows, outbox, positions); created when missing.
    pub database_url: String,
}

/// Runs the saga worker until `shutdown` is cancelled; `listener` serves the
/// health and metrics endpoints.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = config.database_url.as_str();
    if !sqlx::Postgres::database_exists(url)
        .await
        .context("connecting to postgres")?
    {
        // Losing a creation race against another instance is fine.
        drop(sqlx::Postgres::create_database(url).await);
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .context("connecting to the saga database")?;
    let kafka = config.kafka.clone();
    let health = Health::new()
        .check("kafka", move || {
            let kafka = kafka.clone();
            async move { kafka.check().await }
        })
        .check("postgres", move || {
            let pool = pool.clone();
            async move { sqlx::query("SELECT 1").execute(&pool).await.map(|_| ()) }
        });
    tracing::info!(addr = %listener.local_addr()?, "saga worker listening");
    service::serve(
        listener,
        service::with_ops(axum::Router::new(), "sagas", health),
        shutdown,
    )
    .await
    .context("serving http")
}
