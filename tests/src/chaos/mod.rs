//! The chaos run: two instances of every service, orders on every sandbox
//! path (and contention on a scarce SKU) placed through the public API by
//! clients that retry ambiguous answers with the same Idempotency-Key, while
//! a nemesis kills, pauses and restarts instances, the broker, PostgreSQL
//! and Redis. At the end, [`checks`] counts what went wrong; every count
//! must be zero.
//!
//! - `cluster`: the service processes, started, killed, paused, restarted.
//! - `nemesis`: the faults, drawn from a seeded generator.
//! - `clients`: the orders and the saga state each path must end in.
//! - [`checks`]: the table of invariants read back from the log, the saga
//!   store, the views and the cache.

pub mod checks;
mod clients;
mod cluster;
mod nemesis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use cluster::Binaries;

use crate::TestEnv;

/// How long and how hard a run is.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    /// Faults the nemesis injects before the clients stop placing orders.
    pub faults: usize,
    /// How long a paused instance sleeps: past the session timeout (10 s),
    /// and in the long run past the transaction timeout (30 s) too.
    pub pause: Duration,
    /// The saga service's pace (1,000 is production's).
    pub pace_ms: u32,
    /// The kinds of the first faults (`kill`, `kill-projector`, `pause`,
    /// `broker`, `postgres`, `redis`), so a short
    /// run still covers the faults that matter; the rest are drawn.
    pub first: Vec<String>,
}

impl Plan {
    /// From `CHAOS_SEED`, `CHAOS_FAULTS`, `CHAOS_PAUSE_SECONDS`,
    /// `CHAOS_PACE_MS` and `CHAOS_FIRST` (comma-separated fault kinds), with
    /// the short run's values as defaults.
    pub fn from_env() -> Plan {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = var("CHAOS_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let first: Vec<String> = std::env::var("CHAOS_FIRST")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|kind| !kind.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(unknown) = first.iter().find(|k| !nemesis::KINDS.contains(&k.as_str())) {
            panic!(
                "CHAOS_FIRST: unknown fault kind {unknown:?} (one of {:?})",
                nemesis::KINDS
            );
        }
        Plan {
            seed,
            faults: var("CHAOS_FAULTS").unwrap_or(6) as usize,
            pause: Duration::from_secs(var("CHAOS_PAUSE_SECONDS").unwrap_or(12)),
            pace_ms: var("CHAOS_PACE_MS").unwrap_or(250) as u32,
            first,
        }
    }
}

/// Runs the plan and answers the table of what went wrong.
pub async fn run(env: &TestEnv, binaries: Binaries, plan: &Plan) -> checks::Table {
    eprintln!(
        "chaos: seed {} (replay with CHAOS_SEED={})",
        plan.seed, plan.seed
    );
    let cluster = Arc::new(cluster::Cluster::start(env, binaries, plan.pace_ms).await);
    let shop = clients::Clients::new(&cluster).await;
    let placing = Arc::new(AtomicBool::new(true));
    let orders = {
        let (shop, placing) = (shop.clone(), placing.clone());
        tokio::spawn(async move { shop.place_while(&placing).await })
    };
    let outages = nemesis::run(&cluster, plan).await;
    placing.store(false, Ordering::Relaxed);
    let orders = orders.await.expect("the clients");
    cluster.heal().await;
    eprintln!("chaos: {} orders acknowledged; checking", orders.len());
    checks::check(env, &cluster, &orders, &outages).await
}
