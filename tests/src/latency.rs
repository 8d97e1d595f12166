//! Where an order's time goes on its way to `confirmed`: the milestones of
//! each order read back from the event log (the processors' `occurred_at`),
//! as offsets from its `OrderPlaced`, so a test can check their order (the
//! pivot rule) and print the per-hop latency.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::domain::milestone::{self, Mark};
use rdkafka::Message;

use crate::{TestEnv, read_topic};

pub use events::domain::milestone::NAMES as MILESTONES;

/// When each milestone of one order happened (the last line's, for stock).
pub type Timeline = HashMap<&'static str, DateTime<Utc>>;

/// The timelines of `order_ids`, from the four event streams.
pub async fn timelines(env: &TestEnv, order_ids: &[String]) -> HashMap<String, Timeline> {
    let mut by_order: HashMap<String, Timeline> = order_ids
        .iter()
        .map(|id| (id.clone(), Timeline::new()))
        .collect();
    for stream in milestone::STREAMS {
        for message in read_topic(&env.kafka, &env.kafka.events_topic(stream)).await {
            let meta = events::kafka::from_headers(message.headers().expect("headers"))
                .expect("envelope headers");
            let mark = milestone::mark(&meta, message.payload().expect("payload"));
            let Some(Mark {
                order_id,
                milestone: Some(index),
                ..
            }) = mark
            else {
                continue;
            };
            if let Some(timeline) = by_order.get_mut(&order_id.to_string()) {
                let at = timeline
                    .entry(MILESTONES[index])
                    .or_insert(meta.occurred_at);
                *at = (*at).max(meta.occurred_at);
            }
        }
    }
    by_order
}

/// Milliseconds from `placed` to `milestone` in each timeline that has both.
pub fn offsets(timelines: &HashMap<String, Timeline>, milestone: &str) -> Vec<i64> {
    let mut offsets: Vec<i64> = timelines
        .values()
        .filter_map(|t| Some((*t.get(milestone)? - *t.get("placed")?).num_milliseconds()))
        .collect();
    offsets.sort_unstable();
    offsets
}

/// The value below which `q` (0..=1) of the sorted `values` lie.
pub fn quantile(values: &[i64], q: f64) -> Option<i64> {
    let last = values.len().checked_sub(1)?;
    values.get(((last as f64) * q).round() as usize).copied()
}

/// One line per milestone: p50 and p99 milliseconds after `placed`.
pub fn report(timelines: &HashMap<String, Timeline>) -> String {
    let mut lines = Vec::new();
    for milestone in MILESTONES.iter().skip(1) {
        let offsets = offsets(timelines, milestone);
        let (p50, p99) = (quantile(&offsets, 0.5), quantile(&offsets, 0.99));
        if let (Some(p50), Some(p99)) = (p50, p99) {
            lines.push(format!(
                "{milestone:>10}: p50 {p50:>6} ms  p99 {p99:>6} ms  (n={})",
                offsets.len()
            ));
        }
    }
    lines.join("\n")
}
