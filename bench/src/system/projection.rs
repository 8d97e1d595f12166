//! The projector: how soon a committed order shows in the query API (lag),
//! and how fast a fresh projector folds everything the run wrote (catch-up).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Ctx, Outcome, child, get_order, order_request, poll};
use crate::baselines::progress;
use crate::procstat;
use crate::stats::Measured;

/// Database of the catch-up projector (dropped and recreated each run).
pub const CATCH_UP_DB: &str = "bench_catchup";

type Positions = HashMap<(String, String, i32), i64>;

/// Asks the query API for order `id` with `token`, the consistency token
/// of its 201, until it serves it; false after 10 s. The query API holds
/// each read until its views reach the token, or answers 503 `stale_read`
/// after its own bound (2 s by default), when the read is sent again: a
/// watched order costs the query API a wait, not a read every few
/// milliseconds (those took about 0.3 of PostgreSQL's cores at 250
/// orders/s on the two-core machine, BENCHMARKS.md, "Reads that wait are
/// woken").
pub async fn visible(ctx: &Ctx, id: Uuid, token: &str, customer: usize) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let sent = Instant::now();
        let response = order_request(ctx, id, customer)
            .header("x-consistency-token", token)
            .send()
            .await;
        match response.map(|r| r.status().as_u16()) {
            Ok(200) => return true,
            // Held for the query API's whole bound (`stale_read`): at once.
            Ok(503) if sent.elapsed() >= Duration::from_millis(500) => {}
            // Refused at once (too many waits) or failed: a little later.
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    false
}

async fn positions(pool: &PgPool) -> Positions {
    sqlx::query_as::<_, (String, String, i32, i64)>(
        "SELECT projection, topic, partition, next_offset FROM projection_positions",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|(projection, topic, partition, next)| ((projection, topic, partition), next))
    .collect()
}

/// Waits until the live projector shows the last order placed and its
/// positions have stopped moving for a second.
pub async fn wait_caught_up(ctx: &Ctx) -> anyhow::Result<()> {
    super::settle(ctx).await;
    let last = ctx.orders.lock().ok().and_then(|o| o.last().copied());
    if let Some((id, customer)) = last {
        let seen = poll(
            Duration::from_millis(50),
            Duration::from_secs(120),
            || async {
                get_order(ctx, id, customer)
                    .await
                    .filter(|(s, _)| *s == 200)
            },
        )
        .await;
        anyhow::ensure!(
            seen.is_some(),
            "the projector did not show order {id} within 120 s"
        );
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&ctx.args.database_url(&ctx.args.views_db))
        .await?;
    let mut before = positions(&pool).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = positions(&pool).await;
        if now == before {
            return Ok(());
        }
        before = now;
    }
}

pub async fn catch_up(ctx: &Ctx) -> Outcome {
    progress("projection catch-up (a fresh projector over the whole log)");
    match measure_catch_up(ctx).await {
        Ok(m) => Outcome::Measured(m),
        Err(e) => Outcome::NotAvailable {
            reason: format!("{e:#}"),
        },
    }
}

async fn measure_catch_up(ctx: &Ctx) -> anyhow::Result<Measured> {
    let args = &ctx.args;
    let live = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url(&args.views_db))
        .await?;
    let target = positions(&live).await;
    let url = args.database_url(CATCH_UP_DB);
    if sqlx::Postgres::database_exists(&url).await? {
        sqlx::Postgres::force_drop_database(&url).await?;
    }
    let group = format!(
        "{}catch-up-{}",
        args.kafka_args.topic_prefix,
        Uuid::new_v4()
    );
    let mut child = child::start(
        args,
        "projections",
        "bench-catch-up-projector.log",
        &[
            "--group-id",
            &group,
            "--database-url",
            &url,
            "--redis-url",
            &args.redis_url,
        ],
        // One worker, as `scripts/start` and `scripts/bench` run the projector.
        &[("TOKIO_WORKER_THREADS", "1")],
    )?;
    let pid = child.pid;
    let started = Instant::now();
    let mut pool = None;
    let mut first_progress = None;
    let deadline = started + Duration::from_secs(600);
    let done = loop {
        anyhow::ensure!(Instant::now() < deadline, "not caught up within 600 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
        if pool.is_none() {
            pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .ok();
        }
        let Some(pool) = &pool else { continue };
        let now = positions(pool).await;
        if first_progress.is_none() && now.values().any(|n| *n > 0) {
            first_progress = Some(Instant::now());
        }
        if target
            .iter()
            .all(|(k, v)| now.get(k).is_some_and(|n| n >= v))
        {
            break Instant::now();
        }
    };
    let memory = procstat::memory("projections (catch-up)", pid);
    child.process.kill().await.ok();
    let pool = pool.context("no connection to the catch-up database")?;
    let (events,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM order_timeline)
              + (SELECT coalesce(sum(version), 0) FROM catalog_items)::bigint
              + (SELECT count(*) FROM probes)",
    )
    .fetch_one(&pool)
    .await?;
    let from = first_progress.unwrap_or(started);
    let mut m = Measured::new(events as u64, 0, done - from, None);
    m.note = Some(format!(
        "{events} events from the first stored position to the live projector's positions; \
         {:.1} s from process start (connect, migrate, join the group); peak RSS {:.0} MiB",
        (done - started).as_secs_f64(),
        memory.map_or(0.0, |m| m.peak_rss_mib)
    ));
    Ok(m)
}
