//! `GET /orders/{id}` as the order's customer: from the Redis cache (max,
//! then open loop at half of it or at `--query-rate`), then with the orders
//! evicted from the cache so every read falls through to PostgreSQL. A read
//! PostgreSQL answers caches the order again, so the miss phase reads each
//! order once: every order placed, in a stride, not only the newest, and it
//! ends when they run out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use uuid::Uuid;

use super::Ctx;
use crate::baselines::progress;
use crate::load;
use crate::stats::Measured;

/// Concurrent readers of the closed-loop phases (as in the baselines).
const READERS: usize = 32;

/// Most requests in flight in the open-loop phase, like a front end's
/// connection pool. Requests beyond it wait, and the wait counts in their
/// latency. Unbounded, a stall of the machine turned into thousands of new
/// connections and the query API never recovered within the phase (see
/// BENCHMARKS.md).
const OPEN_LOOP_CONNECTIONS: usize = 256;

#[derive(Default)]
struct Served {
    cache: AtomicU64,
    postgres: AtomicU64,
}

impl Served {
    fn take(&self) -> String {
        let cache = self.cache.swap(0, Ordering::Relaxed);
        let postgres = self.postgres.swap(0, Ordering::Relaxed);
        let total = (cache + postgres).max(1);
        format!(
            "{:.1}% served from the cache, {:.1}% from PostgreSQL",
            100.0 * cache as f64 / total as f64,
            100.0 * postgres as f64 / total as f64
        )
    }
}

pub async fn run(ctx: &Arc<Ctx>) -> anyhow::Result<(Measured, Measured, Measured)> {
    let placed: Vec<(Uuid, usize)> = ctx
        .orders
        .lock()
        .map(|o| o.iter().rev().copied().collect())
        .unwrap_or_default();
    anyhow::ensure!(!placed.is_empty(), "no orders were placed to read");
    let served = Arc::new(Served::default());
    let reader = |orders: Arc<Vec<(Uuid, usize)>>| {
        let (ctx, served) = (ctx.clone(), served.clone());
        move |i: u64| {
            let (ctx, served) = (ctx.clone(), served.clone());
            let (id, customer) = orders[(i as usize).wrapping_mul(7919) % orders.len()];
            async move { read_order(&ctx, &served, id, customer).await }
        }
    };
    let newest = Arc::new(placed.iter().take(50_000).copied().collect::<Vec<_>>());
    let read = reader(newest);
    let phase = ctx.args.phase();
    let services = &ctx.args.services;

    progress("query api: cache hits (closed loop)");
    let hit = load::closed_loop(READERS, phase / 5, phase, services, read.clone()).await;
    let hit = hit.with_note(served.take());
    let rate = ctx
        .args
        .query_rate
        .unwrap_or(hit.per_second * 0.5)
        .round()
        .max(1.0);
    progress(&format!("query api: cache hits at {rate}/s (open loop)"));
    // A p99 of 3 seconds' reads is the worst 1 % of them: one stall of
    // another process on these shared cores decides it. Ten seconds at least.
    let paced = phase.max(Duration::from_secs(10));
    let hit_paced =
        load::open_loop(rate, paced, OPEN_LOOP_CONNECTIONS, services, read.clone()).await;
    let hit_paced = hit_paced.with_note(served.take());

    progress("query api: cache misses (closed loop)");
    evict(ctx, &placed).await?;
    // The warm-up's reads use up orders too, so it only opens the
    // connections.
    let orders = placed.len() as u64;
    let read = reader(Arc::new(placed));
    let warmup = (phase / 5).min(Duration::from_secs(1));
    let miss = load::closed_loop_upto(READERS, warmup, phase, orders, services, read).await;
    let miss = miss.with_note(served.take());
    Ok((hit, hit_paced, miss))
}

async fn read_order(ctx: &Ctx, served: &Served, id: Uuid, customer: usize) -> bool {
    let Ok(response) = ctx
        .http
        .get(format!("{}/orders/{id}", ctx.args.query_url))
        .bearer_auth(ctx.tokens.customer(customer))
        .send()
        .await
    else {
        return false;
    };
    let counter = match response.headers().get("x-served-from") {
        Some(v) if v == "cache" => &served.cache,
        _ => &served.postgres,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    response.status().is_success() && response.bytes().await.is_ok()
}

/// Deletes the orders' cache entries (the projector rewrites an entry only
/// when the order changes, and a read only the order it read).
async fn evict(ctx: &Ctx, orders: &[(Uuid, usize)]) -> anyhow::Result<()> {
    let client = redis::Client::open(ctx.args.redis_url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    for chunk in orders.chunks(1000) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|(id, _)| format!("{}:order:{id}", ctx.args.views_db))
            .collect();
        let _: usize = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
    }
    Ok(())
}
