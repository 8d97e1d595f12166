//! The milestones of the orders the end-to-end phase places, read from the
//! event topics (read_committed, from where they ended when the phase began)
//! instead of polled from the query API, so detecting completion puts no
//! load on what is measured. Each milestone is the `occurred_at` of the
//! event that marks it (the processor's clock), which also gives the time
//! every hop of the saga took.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use events::KafkaConfig;
use events::domain::milestone::{self, Mark, NAMES};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::stats::Recorder;

/// The latency of reaching one milestone, over the orders of one phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hop {
    pub phase: String,
    pub milestone: String,
    pub orders: u64,
    /// From `OrderPlaced` to this milestone.
    pub since_placed_p50_ms: f64,
    pub since_placed_p99_ms: f64,
    /// From the milestone before it in `NAMES`; zero when it came no later
    /// (the two ran in parallel).
    pub since_previous_p50_ms: f64,
    pub since_previous_p99_ms: f64,
}

#[derive(Default)]
struct Tracked {
    at: [Option<DateTime<Utc>>; NAMES.len()],
    /// Confirmed (true) or rejected or cancelled (false), once known.
    outcome: Option<bool>,
    waiters: Vec<oneshot::Sender<bool>>,
}

/// What the watcher has seen, shared with the load generator's tasks.
#[derive(Default)]
pub struct Milestones {
    orders: Mutex<HashMap<Uuid, Tracked>>,
}

impl Milestones {
    /// Starts following the order, payment, shipment and catalog events
    /// from their current ends; runs until the process ends.
    pub async fn start(kafka: KafkaConfig) -> anyhow::Result<Arc<Milestones>> {
        let consumer: StreamConsumer = kafka
            .consumer("bench-milestones")
            .create()
            .context("creating the milestone consumer")?;
        let consumer = Arc::new(consumer);
        let ends = {
            let (consumer, kafka) = (consumer.clone(), kafka.clone());
            tokio::task::spawn_blocking(move || ends(&consumer, &kafka)).await??
        };
        consumer
            .assign(&ends)
            .context("assigning the event topics")?;
        let milestones = Arc::new(Milestones::default());
        let watcher = milestones.clone();
        tokio::spawn(async move {
            loop {
                match consumer.recv().await {
                    Ok(message) => watcher.observe(&message),
                    Err(e) => {
                        eprintln!("bench: reading milestones failed: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(milestones)
    }

    /// Waits until `order` is confirmed (true) or rejected (false), at most `limit`.
    pub async fn outcome(&self, order: Uuid, limit: Duration) -> Option<bool> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut orders = self.orders.lock().unwrap_or_else(|p| p.into_inner());
            let tracked = orders.entry(order).or_default();
            if let Some(outcome) = tracked.outcome {
                return Some(outcome);
            }
            tracked.waiters.push(sender);
        }
        tokio::time::timeout(limit, receiver).await.ok()?.ok()
    }

    fn observe(&self, message: &rdkafka::message::BorrowedMessage<'_>) {
        let Some(headers) = message.headers() else {
            return;
        };
        let (Ok(meta), Some(payload)) = (events::kafka::from_headers(headers), message.payload())
        else {
            return;
        };
        let Some(Mark {
            order_id: order,
            milestone,
            outcome,
        }) = milestone::mark(&meta, payload)
        else {
            return;
        };
        let mut orders = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        let tracked = orders.entry(order).or_default();
        if let Some(index) = milestone {
            let at = tracked.at[index].get_or_insert(meta.occurred_at);
            *at = (*at).max(meta.occurred_at);
        }
        if let Some(outcome) = outcome.filter(|_| tracked.outcome.is_none()) {
            tracked.outcome = Some(outcome);
            for waiter in tracked.waiters.drain(..) {
                // A waiter that gave up no longer listens.
                let _ = waiter.send(outcome);
            }
        }
    }

    /// Per milestone, over the confirmed orders among `orders`: the time
    /// since `OrderPlaced` and since the previous milestone.
    pub fn hops(&self, phase: &str, orders: &[Uuid]) -> Vec<Hop> {
        let tracked = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        let since_placed: Vec<Recorder> = NAMES.iter().map(|_| Recorder::new()).collect();
        let since_previous: Vec<Recorder> = NAMES.iter().map(|_| Recorder::new()).collect();
        for order in orders {
            let Some(t) = tracked.get(order).filter(|t| t.outcome == Some(true)) else {
                continue;
            };
            let Some(placed) = t.at[0] else { continue };
            for index in 1..NAMES.len() {
                let (Some(at), Some(previous)) = (t.at[index], t.at[index - 1]) else {
                    continue;
                };
                since_placed[index].record(millis(at - placed));
                since_previous[index].record(millis(at - previous));
            }
        }
        let mut hops = Vec::new();
        for index in 1..NAMES.len() {
            let placed = since_placed[index].snapshot();
            let previous = since_previous[index].snapshot();
            let (Some(p), Some(q)) = (
                crate::stats::Latency::of(&placed),
                crate::stats::Latency::of(&previous),
            ) else {
                continue;
            };
            hops.push(Hop {
                phase: phase.to_owned(),
                milestone: NAMES[index].to_owned(),
                orders: p.count,
                since_placed_p50_ms: p.p50,
                since_placed_p99_ms: p.p99,
                since_previous_p50_ms: q.p50,
                since_previous_p99_ms: q.p99,
            });
        }
        hops
    }
}

fn millis(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

/// The current end of every partition of the watched topics.
fn ends(consumer: &StreamConsumer, kafka: &KafkaConfig) -> anyhow::Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for stream in milestone::STREAMS {
        let topic = kafka.events_topic(stream);
        for partition in 0..kafka.partitions {
            let (_, high) = consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                .with_context(|| format!("reading the end of {topic}/{partition}"))?;
            list.add_partition_offset(&topic, partition, Offset::Offset(high))?;
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(milestones: &Milestones, offsets_ms: [i64; NAMES.len()], outcome: bool) -> Uuid {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut tracked = Tracked {
            outcome: Some(outcome),
            ..Tracked::default()
        };
        for (at, offset) in tracked.at.iter_mut().zip(offsets_ms) {
            *at = Some(t0 + chrono::Duration::milliseconds(offset));
        }
        let id = Uuid::new_v4();
        milestones.orders.lock().unwrap().insert(id, tracked);
        id
    }

    #[test]
    fn hops_are_measured_from_placed_and_from_the_milestone_before() {
        let m = Milestones::default();
        // Scheduled before authorized: the two ran in parallel.
        let a = order(&m, [0, 10, 20, 40, 30, 60, 70, 70], true);
        let b = order(&m, [0, 10, 20, 40, 30, 60, 70, 70], true);
        let rejected = order(&m, [0, 500, 500, 500, 500, 500, 500, 500], false);
        let hops = m.hops("closed loop", &[a, b, rejected]);
        let hop = |name: &str| hops.iter().find(|h| h.milestone == name).unwrap();
        assert_eq!(hops.len(), NAMES.len() - 1);
        assert_eq!(hop("confirmed").orders, 2, "only confirmed orders count");
        assert!((hop("confirmed").since_placed_p50_ms - 70.0).abs() < 0.1);
        assert!((hop("captured").since_previous_p50_ms - 30.0).abs() < 0.1);
        assert!(hop("scheduled").since_previous_p99_ms < 0.01);
    }

    #[tokio::test]
    async fn a_waiter_learns_an_outcome_seen_before_it_asked() {
        let m = Milestones::default();
        let id = order(&m, [0; NAMES.len()], true);
        assert_eq!(m.outcome(id, Duration::from_millis(10)).await, Some(true));
        let unknown = Uuid::new_v4();
        assert_eq!(m.outcome(unknown, Duration::from_millis(10)).await, None);
    }
}
