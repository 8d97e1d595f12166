//! The running system, measured through its public APIs: the command API,
//! the query API, the projector's positions, and `/proc` for memory.
//!
//! - `commands`: `POST /orders` at maximum throughput and at fixed rates,
//!   each fixed rate next to raw produce latency at the same rate.
//! - `projection`: event-committed-to-visible lag while commands flow, and the
//!   catch-up rate of a fresh projector over everything the run wrote.
//! - `query`: `GET /orders/{id}` from the cache and from PostgreSQL.
//! - `metrics`: the services' own counters around a phase.
//! - `end_to_end`: `POST /orders` until the order is `confirmed` (needs the saga).
//! - `milestones`: the order, payment, shipment and stock events of the
//!   orders placed end to end, followed on Kafka: completion and per-hop latency.
//! - `replay`: the slot for `replay rebuild` over 1 M events.
//! - `restore`: the command service's memory over many orders and its
//!   restore after a SIGKILL, on a command service of its own.
//! - `child`: starting such a service of a phase's own.

pub mod child;
pub mod commands;
pub mod end_to_end;
pub mod latency;
pub mod metrics;
pub mod milestones;
pub mod projection;
pub mod query;
pub mod replay;
pub mod restore;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use uuid::Uuid;

use crate::baselines::{Baselines, progress};
use crate::config::RunArgs;
use crate::fixtures::{self, Tokens};
use crate::load;
use crate::procstat::{self, Memory};
use crate::stats::Measured;

/// A figure that could be measured, or why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    Measured(Measured),
    NotAvailable { reason: String },
}

impl Outcome {
    pub fn measured(&self) -> Option<&Measured> {
        match self {
            Outcome::Measured(m) => Some(m),
            Outcome::NotAvailable { .. } => None,
        }
    }
}

/// One open-loop rate: the command API and raw produce at the same rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paced {
    pub rate: f64,
    pub command: Measured,
    pub raw_produce: Measured,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct System {
    pub command_max: Measured,
    pub command_paced: Vec<Paced>,
    pub end_to_end_max: Outcome,
    pub end_to_end_paced: Outcome,
    /// Per saga milestone: p50/p99 since `OrderPlaced` and since the previous one.
    #[serde(default)]
    pub end_to_end_hops: Vec<milestones::Hop>,
    pub projection_catch_up: Outcome,
    pub projection_lag: Outcome,
    pub query_hit: Measured,
    pub query_hit_paced: Measured,
    pub query_miss: Measured,
    pub rebuild: Outcome,
    pub memory: Vec<Memory>,
}

/// What every phase shares.
pub struct Ctx {
    pub args: RunArgs,
    pub http: reqwest::Client,
    pub tokens: Tokens,
    /// Orders the run placed (id, customer index), for reads and lag samples.
    pub orders: Mutex<Vec<(Uuid, usize)>>,
    /// Answers of the command API by status code since the last `take_statuses`.
    pub statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Ctx {
    pub fn count_status(&self, status: u16) {
        if let Ok(mut map) = self.statuses.lock() {
            *map.entry(status).or_default() += 1;
        }
    }

    /// The status counts so far, as `201: 9000, 202: 3`, and resets them.
    pub fn take_statuses(&self) -> String {
        let map = self
            .statuses
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        let parts: Vec<String> = map.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        format!("answers {}", parts.join(", "))
    }
}

fn context(args: &RunArgs) -> anyhow::Result<Arc<Ctx>> {
    Ok(Arc::new(Ctx {
        args: args.clone(),
        http: load::http_client(args.concurrency * 2),
        tokens: Tokens::mint(&args.jwt_secret)?,
        orders: Mutex::new(Vec::new()),
        statuses: Mutex::new(BTreeMap::new()),
    }))
}

/// `--phases commands`: `POST /orders` at `--rates`, with the hops, printed
/// and written to `<out_dir>/<date>-commands.md`.
pub async fn commands_only(args: &RunArgs) -> anyhow::Result<()> {
    let ctx = context(args)?;
    progress("seeding the catalog");
    seed_catalog(&ctx).await?;
    let phase = Duration::from_secs(args.rate_seconds);
    let rates = latency::run(&ctx, &args.rates, phase).await?;
    let text = latency::markdown(&args.invocation, phase, &rates);
    std::fs::create_dir_all(&args.out_dir)?;
    let name = format!(
        "{}-commands.md",
        chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ")
    );
    std::fs::write(args.out_dir.join(name), &text)?;
    println!("{text}");
    Ok(())
}

pub async fn run(args: &RunArgs, baselines: &Baselines) -> anyhow::Result<System> {
    let ctx = context(args)?;
    progress("seeding the catalog");
    seed_catalog(&ctx).await?;
    let (command_max, command_paced, projection_lag) = commands::run(&ctx, baselines).await?;
    progress("waiting for the sagas to settle and the projector to catch up");
    projection::wait_caught_up(&ctx).await?;
    flush_to_disk(&ctx).await;
    let (query_hit, query_hit_paced, query_miss) = query::run(&ctx).await?;
    let projection_catch_up = projection::catch_up(&ctx).await;
    let (end_to_end_max, end_to_end_paced, end_to_end_hops) = end_to_end::run(&ctx).await;
    let rebuild = replay::run(&ctx).await;
    let memory = args
        .services
        .iter()
        .filter_map(|(name, pid)| procstat::memory(name, *pid))
        .collect();
    Ok(System {
        command_max,
        command_paced,
        end_to_end_max,
        end_to_end_paced,
        end_to_end_hops,
        projection_catch_up,
        projection_lag,
        query_hit,
        query_hit_paced,
        query_miss,
        rebuild,
        memory,
    })
}

/// Waits until the sagas of the orders placed so far are done: the command
/// processors decided nothing for two seconds (a saga backlog sends them
/// commands all the time), within `SETTLE_LIMIT`. Without it a phase that
/// follows a command phase (each open-loop rate, the query API) measured
/// the machine still working through thousands of sagas.
pub async fn settle(ctx: &Ctx) {
    let processed = || async {
        metrics::scrape(&ctx.http, &ctx.args.command_url)
            .await
            .get("commands_processed_total")
            .copied()
    };
    let started = tokio::time::Instant::now();
    let (mut before, mut quiet) = (processed().await, 0);
    while quiet < 2 {
        if started.elapsed() > SETTLE_LIMIT {
            progress("the sagas did not settle; measuring anyway");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = processed().await;
        quiet = if now == before { quiet + 1 } else { 0 };
        before = now;
    }
}

/// Writes what the write phases left in memory to disk before the reads
/// are measured: a PostgreSQL checkpoint, then `sync`. Left to PostgreSQL's
/// background writer and the kernel's writeback every 5 s, those pages went
/// out during the reads, and on these machines each writeback stalled every
/// process for 20 to 30 ms, which an open loop of reads took up to a second
/// to work off (BENCHMARKS.md, "What sets the query API's p99"): the read
/// phase measured the write phases before it.
async fn flush_to_disk(ctx: &Ctx) {
    progress("writing the write phases' dirty pages to disk (CHECKPOINT, sync)");
    let checkpoint = async {
        let url = ctx.args.database_url(&ctx.args.views_db);
        let mut connection = sqlx::PgConnection::connect(&url).await?;
        sqlx::query("CHECKPOINT").execute(&mut connection).await?;
        anyhow::Ok(())
    };
    if let Err(e) = checkpoint.await {
        progress(&format!("no checkpoint before the reads: {e:#}"));
    }
    let synced = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status()).await;
    if !matches!(synced, Ok(Ok(status)) if status.success()) {
        progress("sync failed before the reads; measuring anyway");
    }
}

/// Longest wait for the sagas of the command phases to finish.
const SETTLE_LIMIT: Duration = Duration::from_secs(180);

/// Creates the benchmark's SKUs with a billion units each. The
/// Idempotency-Key makes a rerun against the same topics harmless.
async fn seed_catalog(ctx: &Ctx) -> anyhow::Result<()> {
    for i in 0..fixtures::SKUS {
        let sku = fixtures::sku(i);
        let response = ctx
            .http
            .post(format!("{}/catalog/items", ctx.args.command_url))
            .bearer_auth(&ctx.tokens.admin)
            .header("Idempotency-Key", format!("bench-seed-{sku}"))
            .json(&serde_json::json!({
                "sku": sku, "name": format!("Benchmark item {i}"),
                "unit_price": 1000 + i as i64, "currency": "USD", "stock": 1_000_000_000u32
            }))
            .send()
            .await
            .with_context(|| format!("creating {sku}"))?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "creating {sku}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Polls `probe` every `every` until it returns `Some`, or gives up at `limit`.
pub async fn poll<T, F, Fut>(every: Duration, limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// `GET /orders/{id}` as the order's customer, not yet sent.
pub fn order_request(ctx: &Ctx, id: Uuid, customer: usize) -> reqwest::RequestBuilder {
    ctx.http
        .get(format!("{}/orders/{id}", ctx.args.query_url))
        .bearer_auth(ctx.tokens.customer(customer))
}

/// `GET /orders/{id}` as the order's customer: the status code and the body.
pub async fn get_order(ctx: &Ctx, id: Uuid, customer: usize) -> Option<(u16, serde_json::Value)> {
    let response = order_request(ctx, id, customer).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or_default()))
}
