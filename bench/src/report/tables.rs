//! The markdown tables of the report.

use std::fmt::Write as _;

use super::{Figure, measured, thousands};
use crate::baselines::Baselines;
use crate::stats::Measured;
use crate::system::{Outcome, System};

fn number(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "n/a".into(),
        Some(v) if unit == "ms" || unit == "MiB" => format!("{v:.1} {unit}"),
        Some(v) => format!("{} {unit}", thousands(v)),
    }
}

pub fn figures(figures: &[Figure]) -> String {
    let mut out = String::from(
        "### System figures against their baselines\n\n\
         | figure | measured | baseline | baseline value | ratio | target | met |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let baseline_unit = if f.unit == "ms" { "ms" } else { "/s" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f.name,
            number(f.value, &f.unit),
            f.baseline_name,
            f.baseline
                .map_or("-".into(), |b| number(Some(b), baseline_unit)),
            f.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            f.target,
            match (f.met, &f.note) {
                (_, Some(_)) => "not available",
                (Some(true), _) => "yes",
                (Some(false), _) => "**no**",
                (None, _) => "-",
            }
        );
    }
    out.push('\n');
    out
}

fn latency_cells(m: &Measured) -> String {
    match m.latency_ms {
        Some(l) => format!(
            "{:.2} | {:.2} | {:.2} | {:.2} | {:.1}",
            l.p50, l.p90, l.p99, l.p999, l.max
        ),
        None => "- | - | - | - | -".into(),
    }
}

fn cpu_cells(m: &Measured) -> String {
    let services: Vec<String> = m
        .service_cores
        .iter()
        .filter(|(_, c)| *c >= 0.01)
        .map(|(name, cores)| format!("{name} {cores:.2}"))
        .collect();
    format!(
        "{} | {} | {}",
        m.machine_cores.map_or("-".into(), |c| format!("{c:.2}")),
        m.loadgen_cores.map_or("-".into(), |c| format!("{c:.2}")),
        if services.is_empty() {
            "-".into()
        } else {
            services.join(", ")
        }
    )
}

fn row(out: &mut String, name: &str, m: &Measured) {
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} | {} | {} | {} |",
        m.offered_rate.map_or("max".into(), thousands),
        thousands(m.per_second),
        thousands(m.ops as f64),
        m.errors,
        latency_cells(m),
        cpu_cells(m),
    );
}

const PHASE_HEADER: &str = "| phase | offered /s | achieved /s | ops | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | machine busy cores | load generator cores | service cores |\n\
                            |---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

pub fn baselines(b: &Baselines) -> String {
    let mut out = format!("### Raw baselines (same run)\n\n{PHASE_HEADER}");
    row(&mut out, "rdkafka produce, max", &b.kafka_produce);
    row(&mut out, "rdkafka produce, paced", &b.kafka_produce_paced);
    row(
        &mut out,
        "rdkafka consume (read_committed)",
        &b.kafka_consume,
    );
    row(&mut out, "PostgreSQL batched upsert (rows)", &b.pg_upsert);
    row(&mut out, "PostgreSQL point reads", &b.pg_point_read);
    row(&mut out, "Redis GET", &b.redis_get);
    row(&mut out, "axum handler without I/O", &b.http_noop);
    row(
        &mut out,
        "serde_json envelope encode+decode",
        &b.json_round_trip,
    );
    out.push_str(&notes(&[
        ("rdkafka produce", &b.kafka_produce),
        ("rdkafka consume", &b.kafka_consume),
        ("PostgreSQL upsert", &b.pg_upsert),
        ("Redis GET", &b.redis_get),
        ("serde_json", &b.json_round_trip),
    ]));
    out
}

fn notes(items: &[(&str, &Measured)]) -> String {
    let mut out = String::new();
    for (name, m) in items {
        let late = m.started_late_ms.as_ref().map(|l| {
            format!(
                "the load generator started its requests {:.2} ms (p99), at most {:.1} ms, after their scheduled time",
                l.p99, l.max
            )
        });
        let waits = m.slot_waits.map(|(n, longest)| {
            format!(
                "{n} requests were held back because every in-flight slot was taken (sent at most {longest:.1} ms after their scheduled time: waiting for the service's answers, not counted as the generator's lateness)"
            )
        });
        let said: Vec<&str> = m
            .note
            .iter()
            .map(String::as_str)
            .chain(late.as_deref())
            .chain(waits.as_deref())
            .collect();
        if !said.is_empty() {
            let _ = writeln!(out, "- {name}: {}", said.join("; "));
        }
    }
    out.push('\n');
    out
}

pub fn phases(s: &System) -> String {
    let mut out = format!("### System phases\n\n{PHASE_HEADER}");
    let mut noted: Vec<(String, Measured)> = Vec::new();
    let mut add = |out: &mut String, name: String, m: &Measured| {
        row(out, &name, m);
        noted.push((name, m.clone()));
    };
    add(&mut out, "POST /orders, closed loop".into(), &s.command_max);
    for p in &s.command_paced {
        add(
            &mut out,
            "raw produce at the same rate".into(),
            &p.raw_produce,
        );
        add(&mut out, "POST /orders, open loop".into(), &p.command);
    }
    let outcomes = [
        ("projection lag (sampled orders)", &s.projection_lag),
        ("projection catch-up (events)", &s.projection_catch_up),
        ("end to end, closed loop", &s.end_to_end_max),
        ("end to end, open loop", &s.end_to_end_paced),
        ("replay rebuild", &s.rebuild),
    ];
    add(
        &mut out,
        "GET /orders/{id}, cache hit, closed loop".into(),
        &s.query_hit,
    );
    add(
        &mut out,
        "GET /orders/{id}, cache hit, open loop".into(),
        &s.query_hit_paced,
    );
    add(
        &mut out,
        "GET /orders/{id}, cache miss, closed loop".into(),
        &s.query_miss,
    );
    for (name, outcome) in outcomes {
        if let Some(m) = measured(outcome) {
            add(&mut out, name.into(), m);
        }
    }
    let refs: Vec<(&str, &Measured)> = noted.iter().map(|(n, m)| (n.as_str(), m)).collect();
    out.push_str(&notes(&refs));
    out
}

/// Where an order's time goes end to end: each saga milestone since the
/// order was placed and since the milestone before it, from event times.
pub fn hops(s: &System) -> String {
    if s.end_to_end_hops.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "### End to end, per hop (from event times)\n\n         | phase | milestone | orders | since placed p50 | p99 | since previous p50 | p99 |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for h in &s.end_to_end_hops {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            h.phase,
            h.milestone,
            h.orders,
            h.since_placed_p50_ms,
            h.since_placed_p99_ms,
            h.since_previous_p50_ms,
            h.since_previous_p99_ms
        );
    }
    out.push_str("\nA milestone that ran in parallel with the one before it shows 0 since it.\n\n");
    out
}

pub fn memory(s: &System) -> String {
    let mut out = String::from(
        "### Services at the end of the run\n\n\
         | service | resident | peak resident | CPU seconds |\n|---|---|---|---|\n",
    );
    for m in &s.memory {
        let _ = writeln!(
            out,
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} |",
            m.service, m.rss_mib, m.peak_rss_mib, m.cpu_seconds
        );
    }
    out.push('\n');
    out
}

pub fn not_available(s: &System) -> String {
    let items = [
        ("end to end", &s.end_to_end_max),
        ("projection lag", &s.projection_lag),
        ("projection catch-up", &s.projection_catch_up),
        ("replay rebuild", &s.rebuild),
    ];
    let mut out = String::new();
    for (name, outcome) in items {
        if let Outcome::NotAvailable { reason } = outcome {
            let _ = writeln!(out, "- {name}: not available: {reason}");
        }
    }
    if !out.is_empty() {
        out = format!("### Not available in this run\n\n{out}\n");
    }
    out
}
