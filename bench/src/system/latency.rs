//! `bench run --phases commands`: only `POST /orders`, open loop at the
//! given rates (`--rates 10,250`), each beside raw produce at the same rate,
//! with where one order's time goes, read from the command service's own
//! `/metrics` before and after each rate:
//!
//! - `produce`: the command API's produce of the command until Kafka's ack;
//! - `poll age`: how old a command record is when a processor lane polls it;
//! - the lane's transaction phases (begin, produce, offsets, acks, commit);
//! - `reply age`: how old a reply record is when the command API reads it
//!   (from its produce inside the transaction: the rest of the transaction,
//!   the commit markers and the reply consumer's fetch);
//! - `reply`: the command API's wait from the command's ack to the reply;
//! - `lag`: from the 201 of sampled orders until the query API serves them
//!   (the projection lag at that rate, as the full run measures it at half load);
//! - the projector's batches, from its own `/metrics`: how long applying and
//!   committing one took, its wait for the cache refresher and the cache
//!   write, and how old its oldest record was when it was fetched, committed
//!   and cached (from the record's append to the log).
//!
//! The saga worker's own commands go through the same processors and
//! replies topics, so the per-hop figures cover them too. Means come from
//! the deltas of `_sum` and `_count`, medians from the deltas of the
//! histogram buckets (interpolated within a bucket).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::commands::{LagWatch, paced_orders};
use super::{Ctx, Outcome, metrics};
use crate::baselines::{self, kafka, progress};
use crate::stats::Measured;

/// One rate: the orders, raw produce, and the hops in milliseconds.
pub struct Rate {
    pub rate: f64,
    pub command: Measured,
    pub raw_produce: Measured,
    /// (hop, mean ms, median ms if known)
    pub hops: Vec<(String, f64, Option<f64>)>,
    pub transactions: f64,
    pub commands_per_transaction: f64,
    pub statuses: String,
    /// The projection lag of the orders sampled at this rate.
    pub lag: Outcome,
}

/// Which service's `/metrics` a hop is read from.
#[derive(Clone, Copy)]
enum Service {
    Command,
    Projections,
}

/// A hop's row label, metric, label filter and service.
type Hop = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    Service,
);

/// The series of the hops, in path order: (label, metric, label filter,
/// service). The projector's rows are per batch: its phases, and how old
/// the batch's oldest record was when it was fetched, committed to
/// PostgreSQL and written to the cache.
const HOPS: [Hop; 16] = [
    (
        "API produce to ack",
        "command_dispatch_phase_seconds",
        Some(("phase", "produce")),
        Service::Command,
    ),
    (
        "poll age",
        "command_poll_age_seconds",
        None,
        Service::Command,
    ),
    (
        "txn begin",
        "command_txn_phase_seconds",
        Some(("phase", "begin")),
        Service::Command,
    ),
    (
        "txn produce",
        "command_txn_phase_seconds",
        Some(("phase", "produce")),
        Service::Command,
    ),
    (
        "txn offsets",
        "command_txn_phase_seconds",
        Some(("phase", "offsets")),
        Service::Command,
    ),
    (
        "txn acks",
        "command_txn_phase_seconds",
        Some(("phase", "acks")),
        Service::Command,
    ),
    (
        "txn commit",
        "command_txn_phase_seconds",
        Some(("phase", "commit")),
        Service::Command,
    ),
    (
        "txn store (after the reply; the lane's next poll waits)",
        "command_txn_phase_seconds",
        Some(("phase", "store")),
        Service::Command,
    ),
    (
        "reply age",
        "command_reply_age_seconds",
        None,
        Service::Command,
    ),
    (
        "API ack to reply",
        "command_dispatch_phase_seconds",
        Some(("phase", "reply")),
        Service::Command,
    ),
    (
        "projector: oldest record's age when fetched",
        "projection_record_age_seconds",
        Some(("at", "fetched")),
        Service::Projections,
    ),
    (
        "projector: batch applied and committed",
        "projection_batch_phase_seconds",
        Some(("phase", "apply")),
        Service::Projections,
    ),
    (
        "projector: oldest record's age when committed",
        "projection_record_age_seconds",
        Some(("at", "committed")),
        Service::Projections,
    ),
    (
        "projector: wait for the cache refresher",
        "projection_batch_phase_seconds",
        Some(("phase", "handoff")),
        Service::Projections,
    ),
    (
        "projector: cache write",
        "projection_batch_phase_seconds",
        Some(("phase", "cache")),
        Service::Projections,
    ),
    (
        "projector: oldest record's age when cached",
        "projection_record_age_seconds",
        Some(("at", "cached")),
        Service::Projections,
    ),
];

pub async fn run(ctx: &Arc<Ctx>, rates: &[f64], phase: Duration) -> anyhow::Result<Vec<Rate>> {
    let args = &ctx.args;
    let topic = baselines::topic(args);
    args.kafka()
        .ensure_topics(std::slice::from_ref(&topic))
        .await?;
    progress("commands: warm-up at 50/s");
    paced_orders(ctx, 50.0, Duration::from_secs(2), None).await;
    ctx.take_statuses();
    let mut out = Vec::new();
    for &rate in rates {
        progress(&format!("commands: raw produce at {rate}/s"));
        let raw_produce = kafka::produce_paced(&args.kafka(), &topic, rate, phase).await?;
        progress(&format!("commands: open loop at {rate}/s"));
        let before = metrics::scrape_command_and_projector(ctx).await;
        let watch = LagWatch::default();
        let command = paced_orders(ctx, rate, phase, Some(watch.clone())).await;
        let lag = watch.finish(rate, phase).await;
        let after = metrics::scrape_command_and_projector(ctx).await;
        let hops = HOPS
            .iter()
            .map(|(label, metric, filter, service)| {
                let (before, after) = match service {
                    Service::Command => (&before.0, &after.0),
                    Service::Projections => (&before.1, &after.1),
                };
                let delta = |name: &str| metrics::delta(before, after, name);
                let series = |suffix: &str, extra: &str| {
                    let filter = filter
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .unwrap_or_default();
                    let all = [filter.as_str(), extra]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(",");
                    if all.is_empty() {
                        format!("{metric}{suffix}")
                    } else {
                        format!("{metric}{suffix}{{{all}}}")
                    }
                };
                let count = delta(&series("_count", ""));
                let mean = if count > 0.0 {
                    1000.0 * delta(&series("_sum", "")) / count
                } else {
                    f64::NAN
                };
                let median = median(count, |le| {
                    delta(&series("_bucket", &format!("le=\"{le}\"")))
                });
                (label.to_string(), mean, median)
            })
            .collect();
        let delta = |name: &str| metrics::delta(&before.0, &after.0, name);
        let transactions = delta("command_batch_seconds_count");
        out.push(Rate {
            rate,
            command,
            raw_produce,
            hops,
            transactions,
            commands_per_transaction: delta("commands_processed_total") / transactions.max(1.0),
            statuses: ctx.take_statuses(),
            lag,
        });
    }
    Ok(out)
}

/// The services' histogram bounds (`events::service::metrics_handle`), seconds.
const BOUNDS: [&str; 13] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5",
];

/// The median in milliseconds, interpolated within the bucket that holds it,
/// from the count and each cumulative bucket's delta (`le` bound -> count).
fn median(count: f64, bucket: impl Fn(&str) -> f64) -> Option<f64> {
    if count <= 0.0 {
        return None;
    }
    let (mut lower, mut below) = (0.0, 0.0);
    for le in BOUNDS {
        let upper: f64 = le.parse().ok()?;
        let cumulative = bucket(le);
        if cumulative >= count / 2.0 {
            let inside = (cumulative - below).max(1e-9);
            return Some(1000.0 * (lower + (upper - lower) * (count / 2.0 - below) / inside));
        }
        (lower, below) = (upper, cumulative);
    }
    None
}

/// The rates as a markdown report.
pub fn markdown(invocation: &str, phase: Duration, rates: &[Rate]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# POST /orders latency by hop\n\n`{invocation}`, {} s per rate, {}\n",
        phase.as_secs(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let _ = writeln!(
        s,
        "| rate | orders/s | p50 | p90 | p99 | raw produce p50 / p99 | lag p50 / p99 | machine cores | transactions (commands each) | answers |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rates {
        let l = r.command.latency_ms;
        let raw = r.raw_produce.latency_ms;
        let lag = r.lag.measured().and_then(|m| m.latency_ms);
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {} | {} | {} / {} | {} / {} | {} | {:.0} ({:.1}) | {} |",
            r.rate,
            r.command.per_second,
            ms(l.map(|l| l.p50)),
            ms(l.map(|l| l.p90)),
            ms(l.map(|l| l.p99)),
            ms(raw.map(|l| l.p50)),
            ms(raw.map(|l| l.p99)),
            ms(lag.map(|l| l.p50)),
            ms(lag.map(|l| l.p99)),
            ms(r.command.machine_cores),
            r.transactions,
            r.commands_per_transaction,
            r.statuses,
        );
    }
    let _ = writeln!(s, "\nPer hop, ms: mean (median) over the phase\n");
    let header: Vec<String> = rates.iter().map(|r| format!("{}/s", r.rate)).collect();
    let _ = writeln!(
        s,
        "| hop | {} |\n|---|{}",
        header.join(" | "),
        "---|".repeat(rates.len())
    );
    let by_hop: HashMap<&str, Vec<String>> = HOPS
        .iter()
        .map(|(label, ..)| {
            let cells = rates
                .iter()
                .map(|r| {
                    r.hops
                        .iter()
                        .find(|(l, ..)| l == label)
                        .map_or("-".into(), |(_, mean, median)| {
                            format!("{mean:.1} ({})", ms(*median))
                        })
                })
                .collect();
            (*label, cells)
        })
        .collect();
    for (label, ..) in HOPS {
        let _ = writeln!(s, "| {label} | {} |", by_hop[label].join(" | "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_interpolated_within_its_bucket() {
        // 10 values: 4 under 1 ms, 6 more under 2.5 ms: the 5th is in (1, 2.5].
        let m = median(10.0, |le| match le {
            "0.0005" => 0.0,
            "0.001" => 4.0,
            _ => 10.0,
        })
        .unwrap();
        assert!((m - 1.25).abs() < 1e-6, "{m}");
        assert_eq!(median(0.0, |_| 0.0), None);
    }
}
