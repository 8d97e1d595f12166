//! The faults, one at a time, each healed before the next: SIGKILL and
//! restart of an instance, SIGSTOP of an instance past the group session
//! timeout (it wakes up a zombie), SIGKILL of the broker, an immediate
//! shutdown of PostgreSQL, a flushed and killed Redis. The stack script
//! brings the stack's parts back, as an operator's supervisor would.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Plan;
use super::cluster::Cluster;
use crate::outage;

#[derive(Debug, Clone)]
enum Fault {
    Kill(String),
    Pause(String),
    Broker,
    Postgres,
    Redis,
}

/// The kinds of fault a plan can ask for first (`CHAOS_FIRST`), by name.
pub(super) const KINDS: [&str; 6] = [
    "kill",
    "kill-projector",
    "pause",
    "broker",
    "postgres",
    "redis",
];

/// When the broker was down: from its SIGKILL until `scripts/stack up` had
/// it answering again.
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Injects `plan.faults` faults, a few seconds apart: first those of the
/// kinds `plan.first` names (the instance drawn from the seed), then drawn
/// from the seed. Answers the broker's outages.
pub async fn run(cluster: &Cluster, plan: &Plan) -> Vec<Outage> {
    let mut outages = Vec::new();
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let names = cluster.names();
    let projectors: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with("projections-"))
        .cloned()
        .collect();
    let started = Instant::now();
    for n in 0..plan.faults {
        tokio::time::sleep(Duration::from_millis(rng.u64(2_000..6_000))).await;
        let kind = match plan.first.get(n) {
            Some(kind) => kind.as_str(),
            None => match rng.u32(0..10) {
                0..=3 => "kill",
                4..=5 => "pause",
                6..=7 => "broker",
                8 => "postgres",
                _ => "redis",
            },
        };
        let mut any = |from: &[String]| from[rng.usize(..from.len())].clone();
        let fault = match kind {
            "kill" => Fault::Kill(any(&names)),
            "kill-projector" => Fault::Kill(any(&projectors)),
            "pause" => Fault::Pause(any(&names)),
            "broker" => Fault::Broker,
            "postgres" => Fault::Postgres,
            "redis" => Fault::Redis,
            other => unreachable!("Plan::from_env checks fault kinds, not {other:?}"),
        };
        eprintln!(
            "chaos: fault {} of {} at {:.1} s: {fault:?}",
            n + 1,
            plan.faults,
            started.elapsed().as_secs_f64()
        );
        let from = Utc::now();
        inject(cluster, &fault, plan.pause).await;
        if matches!(fault, Fault::Broker) {
            outages.push(Outage {
                from,
                to: Utc::now(),
            });
        }
    }
    // Time for the clients to place orders on the healed system too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    outages
}

async fn inject(cluster: &Cluster, fault: &Fault, pause: Duration) {
    match fault {
        Fault::Kill(name) => cluster.kill_and_restart(name).await,
        Fault::Pause(name) => {
            cluster.signal(name, "STOP");
            tokio::time::sleep(pause).await;
            cluster.signal(name, "CONT");
        }
        Fault::Broker => down_for(outage::kill("kafka")).await,
        Fault::Postgres => {
            let stopped = tokio::task::spawn_blocking(outage::stop_postgres).await;
            down_for(stopped.expect("stopping PostgreSQL")).await;
        }
        Fault::Redis => {
            outage::flush_redis();
            down_for(outage::kill("redis")).await;
        }
    }
}

/// Keeps a stack part down for two seconds, then brings it back (the
/// guard runs `scripts/stack up` when dropped, which blocks, so off the
/// runtime's threads).
async fn down_for(guard: outage::RestartOnDrop) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .expect("scripts/stack up");
}
