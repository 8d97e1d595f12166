//! The order fulfilment saga: reacts to events, drives the aggregates through
//! stock, payment and shipping, and compensates on failure.
//!
//! - [`machine`]: the pure state machine (state + input -> state + commands).
//! - `route`: which saga a consumed record is for, and what it tells it.
//! - `apply`: applies inputs to locked sagas and collects the messages they
//!   cause (commands, saga events, operator replies).
//! - [`store`]: the saga database (sagas, outbox, positions, dead letters).
//! - `worker`: the consumer loop, one PostgreSQL transaction per batch.
//! - `publish`: publishes what a transaction put in the outbox right after
//!   its commit.
//! - `relay`: publishes what the hand-off left behind (the recovery path).
//! - [`timer`]: fires deadlines (`FOR UPDATE SKIP LOCKED`) up to the watermark.
//! - `watermark`: how far the worker has read its inputs, in event time.
//! - [`gateway`]: payment provider and carrier adapters, with the sandbox.
//!
//! [`run`] starts the service; [`cli`] is its command line, which `main.rs`
//! only calls.

mod apply;
pub mod cli;
pub mod gateway;
pub mod machine;
pub mod publish;
mod relay;
mod route;
pub mod store;
pub mod timer;
mod watermark;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::KafkaConfig;
use events::service::{self, Health};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use machine::Pace;

/// Everything a saga worker needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub kafka: KafkaConfig,
    /// The saga database (saga rows, outbox, positions); created when missing.
    pub database_url: String,
    /// Consumer group shared by all saga workers of a deployment.
    pub group_id: String,
    /// How long a nominal second of the saga's step timeouts lasts.
    pub pace: Pace,
    /// Use the sandbox payment provider and carrier (tests, demos, the
    /// bench). It approves any `tok_ok` token, so it must be asked for:
    /// without it the service refuses to start, as no real provider is
    /// configured.
    pub sandbox: bool,
    /// How long each sandbox provider and carrier call takes.
    pub sandbox_latency: Duration,
    /// Open (running or compensating) orders a customer may have; a further
    /// order is rejected `too_many_open_orders` before any stock is
    /// reserved. 0: no cap.
    pub max_open_orders: u32,
}

/// The one-line refusal when no provider is configured.
pub const NO_PROVIDER: &str = "no payment provider or carrier is configured: \
     pass --sandbox (SAGAS_SANDBOX=true) to run the sandbox ones, which approve any tok_ok payment";

/// Runs the saga worker, relay, timer and gateway until `shutdown` is
/// cancelled; `listener` serves the health and metrics endpoints.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::ensure!(config.sandbox, NO_PROVIDER);
    let pool = store::connect_and_migrate(&config.database_url)
        .await
        .context("connecting to the saga database")?;
    let kafka = config.kafka.clone();
    kafka
        .ensure_topics(&kafka.all_topics())
        .await
        .context("creating kafka topics")?;
    let topics = route::Topics::new(&kafka);
    let answer_topics = topics.answers();
    let consumer = worker::subscribe(&kafka, &config.group_id, &topics)
        .context("subscribing to the event topics")?;
    let gateway = Arc::new(gateway::Gateway::new(
        gateway::sandbox::Sandbox::new(config.sandbox_latency),
        gateway::sandbox::Sandbox::new(config.sandbox_latency),
        pool.clone(),
        kafka.clone(),
    ));
    // A tenth of a nominal second, so a deadline fires at most 10 % late.
    let tick = Duration::from_millis(u64::from(config.pace.millis_per_second / 10).max(5));

    let producer: rdkafka::producer::FutureProducer = kafka
        .producer()
        .create()
        .context("creating the outbox producer")?;
    let (handoff, handed_off) = publish::channel();

    let tasks = TaskTracker::new();
    tasks.spawn(publish::run(
        handed_off,
        producer.clone(),
        kafka.clone(),
        pool.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(worker::run(
        Arc::new(consumer),
        pool.clone(),
        topics,
        config.pace,
        config.max_open_orders,
        handoff.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(relay::run(
        pool.clone(),
        producer,
        kafka.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(timer::run(
        pool.clone(),
        config.pace,
        tick,
        answer_topics,
        handoff,
        shutdown.clone(),
    ));
    let gateway_group = format!("{}-gateway", config.group_id);
    let gateway_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = gateway::run(gateway, gateway_group, gateway_shutdown).await {
            tracing::error!(error = %e, "the provider gateway stopped");
        }
    });
    tasks.spawn(count_statuses(pool.clone(), shutdown.clone()));
    tasks.close();

    tracing::info!(addr = %listener.local_addr()?, "saga worker listening");
    let served = service::serve(
        listener,
        service::with_ops(axum::Router::new(), "sagas", health(kafka, pool)),
        shutdown,
    )
    .await;
    tasks.wait().await;
    served.context("serving http")
}

fn health(kafka: KafkaConfig, pool: PgPool) -> Health {
    Health::new().kafka(kafka).check("postgres", move || {
        let pool = pool.clone();
        async move { sqlx::query("SELECT 1").execute(&pool).await.map(|_| ()) }
    })
}

/// Publishes how many sagas are unsettled (`sagas{status=running|compensating|needs_attention}`),
/// so parked sagas show on a dashboard and can page someone. Settled sagas
/// are left out: counting them would scan a table that only grows.
async fn count_statuses(pool: PgPool, shutdown: CancellationToken) {
    use machine::SagaStatus;
    let unsettled = [
        SagaStatus::Running,
        SagaStatus::Compensating,
        SagaStatus::NeedsAttention,
    ];
    let names: Vec<&str> = unsettled.iter().map(|s| s.as_str()).collect();
    loop {
        let counts: Result<Vec<(String, i64)>, _> = sqlx::query_as(
            "SELECT status, count(*) FROM sagas WHERE status = ANY($1) GROUP BY status",
        )
        .bind(&names)
        .fetch_all(&pool)
        .await;
        if let Ok(counts) = counts {
            for status in names.iter().copied() {
                let count = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("sagas", "status" => status).set(count as f64);
            }
        }
        // A deadline the timer has not fired a minute after it passed means
        // the timer loop is stuck or far behind.
        let overdue: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FROM saga_deadlines d JOIN sagas s ON s.order_id = d.order_id
             WHERE d.deadline_at < now() - interval '1 minute' AND s.status = ANY($1)",
        )
        .bind(&names)
        .fetch_one(&pool)
        .await;
        if let Ok(overdue) = overdue {
            metrics::gauge!("sagas_overdue").set(overdue as f64);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
