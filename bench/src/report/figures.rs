//! Each system figure beside its baseline, the ratio and the target.

use serde::{Deserialize, Serialize};

use crate::baselines::Baselines;
use crate::stats::Measured;
use crate::system::commands::LIGHT_RATE;
use crate::system::{Outcome, System};

/// Kafka records one `POST /orders` costs: the command, its event and its
/// reply (the `k` of the composed ceiling). Each is encoded once and decoded
/// once: `2k` JSON operations.
pub const KAFKA_RECORDS_PER_COMMAND: f64 = 3.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: Option<f64>,
    pub unit: String,
    pub baseline_name: String,
    pub baseline: Option<f64>,
    pub ratio: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
    /// Why the figure is missing, when it is.
    pub note: Option<String>,
}

#[derive(Clone, Copy)]
enum Target {
    RatioAtLeast(f64),
    RatioAtMost(f64),
    AtLeast(f64),
    AtMost(f64),
    Info,
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Target::RatioAtLeast(x) => format!("ratio >= {x}"),
            Target::RatioAtMost(x) => format!("ratio <= {x}"),
            Target::AtLeast(x) => format!(">= {} {unit}", super::thousands(x)),
            Target::AtMost(x) => format!("<= {x} {unit}"),
            Target::Info => "-".into(),
        }
    }

    fn met(self, value: Option<f64>, ratio: Option<f64>) -> Option<bool> {
        match self {
            Target::RatioAtLeast(x) => ratio.map(|r| r >= x),
            Target::RatioAtMost(x) => ratio.map(|r| r <= x),
            Target::AtLeast(x) => value.map(|v| v >= x),
            Target::AtMost(x) => value.map(|v| v <= x),
            Target::Info => None,
        }
    }
}

fn figure(
    name: &str,
    value: Result<f64, String>,
    unit: &str,
    baseline: (&str, Option<f64>),
    target: Target,
) -> Figure {
    let (value, note) = match value {
        Ok(v) => (Some(v), None),
        Err(reason) => (None, Some(reason)),
    };
    let ratio = match (value, baseline.1) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    };
    Figure {
        name: name.into(),
        value,
        unit: unit.into(),
        baseline_name: baseline.0.into(),
        baseline: baseline.1,
        ratio,
        target: target.describe(unit),
        met: target.met(value, ratio),
        note,
    }
}

fn rate(outcome: &Outcome) -> Result<f64, String> {
    match outcome {
        Outcome::Measured(m) => Ok(m.per_second),
        Outcome::NotAvailable { reason } => Err(reason.clone()),
    }
}

fn p99(outcome: &Outcome) -> Result<f64, String> {
    match outcome {
        Outcome::Measured(m) => m.p99().ok_or_else(|| "no latency recorded".to_owned()),
        Outcome::NotAvailable { reason } => Err(reason.clone()),
    }
}

fn ok(m: &Measured) -> Outcome {
    Outcome::Measured(m.clone())
}

/// The composed ceiling of `POST /orders`: `1 / (1/http + k/produce + 2k/json)`
/// with `json` the rate of one encode or one decode.
pub fn composed_ceiling(b: &Baselines) -> Option<f64> {
    let json_op = 2.0 * b.json_round_trip.per_second;
    let k = KAFKA_RECORDS_PER_COMMAND;
    let (http, produce) = (b.http_noop.per_second, b.kafka_produce.per_second);
    (http > 0.0 && produce > 0.0 && json_op > 0.0)
        .then(|| 1.0 / (1.0 / http + k / produce + 2.0 * k / json_op))
}

pub fn compare(b: &Baselines, s: &System) -> Vec<Figure> {
    let mut out = vec![figure(
        "command throughput, POST /orders (max)",
        Ok(s.command_max.per_second),
        "orders/s",
        (
            "composed ceiling 1/(1/http + 3/produce + 6/json)",
            composed_ceiling(b),
        ),
        Target::RatioAtLeast(0.5),
    )];
    for paced in &s.command_paced {
        if paced.rate == LIGHT_RATE {
            out.push(figure(
                &format!("command p50 at {LIGHT_RATE} orders/s (open loop)"),
                paced
                    .command
                    .latency_ms
                    .map(|l| l.p50)
                    .ok_or_else(|| "no latency recorded".to_owned()),
                "ms",
                ("-", None),
                Target::AtMost(5.0),
            ));
        }
        let half = (paced.rate - s.command_max.per_second * 0.5).abs() < 1.5;
        out.push(figure(
            &format!(
                "command p99 at {} orders/s (open loop)",
                super::thousands(paced.rate)
            ),
            p99(&ok(&paced.command)),
            "ms",
            ("raw produce p99 at the same rate", paced.raw_produce.p99()),
            if half {
                Target::RatioAtMost(2.0)
            } else {
                Target::Info
            },
        ));
    }
    out.push(figure(
        "end to end, orders confirmed through the saga (max)",
        rate(&s.end_to_end_max),
        "orders/s",
        ("-", None),
        Target::AtLeast(1000.0),
    ));
    out.push(figure(
        "end to end p99 at half that rate (open loop)",
        p99(&s.end_to_end_paced),
        "ms",
        ("-", None),
        Target::AtMost(250.0),
    ));
    out.push(figure(
        "projection catch-up (fresh projector, whole log)",
        rate(&s.projection_catch_up),
        "events/s",
        ("raw batched upsert rows/s", Some(b.pg_upsert.per_second)),
        Target::RatioAtLeast(0.5),
    ));
    out.push(figure(
        "projection lag p99, 201 to visible in the query API, half load",
        p99(&s.projection_lag),
        "ms",
        ("-", None),
        Target::AtMost(100.0),
    ));
    let hit = s.query_hit.per_second;
    out.push(figure(
        "query API reads, cache hit (max)",
        Ok(hit),
        "reads/s",
        ("axum without I/O", Some(b.http_noop.per_second)),
        Target::RatioAtLeast(0.5),
    ));
    out.push(figure(
        "query API reads, cache hit (max)",
        Ok(hit),
        "reads/s",
        ("raw Redis GET/s", Some(b.redis_get.per_second)),
        Target::RatioAtLeast(0.5),
    ));
    // `bench run --query-rate` fixes the rate to compare builds; the target
    // is for half of the maximum.
    let paced_rate = s.query_hit_paced.offered_rate.unwrap_or_default();
    let half = (paced_rate - (hit * 0.5).round()).abs() < 1.5;
    out.push(figure(
        &if half {
            "query API p99, cache hit, half of max (open loop)".to_owned()
        } else {
            format!(
                "query API p99, cache hit, at {} reads/s (open loop)",
                super::thousands(paced_rate)
            )
        },
        p99(&ok(&s.query_hit_paced)),
        "ms",
        ("axum without I/O p99 at max", b.http_noop.p99()),
        if half {
            Target::AtMost(5.0)
        } else {
            Target::Info
        },
    ));
    out.push(figure(
        "query API reads, cache miss (max)",
        Ok(s.query_miss.per_second),
        "reads/s",
        (
            "raw PostgreSQL point reads/s",
            Some(b.pg_point_read.per_second),
        ),
        Target::Info,
    ));
    let floor = b.kafka_consume.per_second.min(b.pg_upsert.per_second);
    out.push(figure(
        "replay rebuild of the orders view",
        rate(&s.rebuild),
        "events/s",
        ("min(raw consume, raw batched upsert)", Some(floor)),
        Target::RatioAtLeast(0.7),
    ));
    out.push(figure(
        "replay rebuild of the orders view",
        rate(&s.rebuild),
        "events/s",
        ("naive per-event replay", Some(b.naive_replay.per_second)),
        Target::RatioAtLeast(100.0),
    ));
    for m in &s.memory {
        out.push(figure(
            &format!("peak resident memory, {}", m.service),
            Ok(m.peak_rss_mib),
            "MiB",
            ("-", None),
            Target::AtMost(100.0),
        ));
    }
    out
}
