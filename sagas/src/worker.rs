//! The saga worker loop: consume the event topics (read_committed) and the
//! operator commands, and apply each batch in one PostgreSQL transaction that
//! updates the sagas, writes the messages they caused to the outbox and moves
//! the positions.
//!
//! Several workers share the partitions in one consumer group. The stored
//! positions decide what is new (Kafka's offsets are only a hint), and saga
//! rows are locked in id order, so two workers that reach the same saga (its
//! order and its catalog events live on different partitions) take turns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::KafkaConfig;
use events::record::{self, Record};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::apply::{Batch, Cause};
use crate::machine::{Input, Pace};
use crate::route::{Routed, Topics};
use crate::store::{self, DeadLetter};

const MAX_BATCH: usize = 500;

pub fn subscribe(
    kafka: &KafkaConfig,
    group_id: &str,
    topics: &Topics,
) -> Result<StreamConsumer, KafkaError> {
    let consumer: StreamConsumer = kafka.consumer(group_id).create()?;
    let topics = topics.all();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// Runs until `shutdown`; a failed batch is retried, never skipped.
pub async fn run(
    consumer: Arc<StreamConsumer>,
    pool: PgPool,
    topics: Topics,
    pace: Pace,
    shutdown: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            batch = record::next_batch(&consumer, MAX_BATCH) => batch,
        };
        let records = match batch {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "kafka consume failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut backoff = Duration::from_millis(50);
        while let Err(e) = apply(&pool, &topics, pace, records.clone()).await {
            tracing::warn!(error = %e, "applying a saga batch failed, retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        record::commit_hint(&consumer, &records);
    }
}

/// Applies one batch: positions, sagas, outbox and dead letters in one commit.
pub async fn apply(
    pool: &PgPool,
    topics: &Topics,
    pace: Pace,
    records: Vec<Record>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = store::claim(&mut tx, records).await?;
    if fresh.is_empty() {
        return tx.commit().await;
    }
    let (routed, dead) = route_all(topics, &fresh);
    let restocks: Vec<Uuid> = routed
        .iter()
        .filter_map(|r| match r {
            Routed::Restocked { command_id, .. } => Some(*command_id),
            _ => None,
        })
        .collect();
    let restocked_by = store::orders_of_commands(&mut tx, &restocks).await?;
    let targets: Vec<Uuid> = routed
        .iter()
        .filter_map(|r| target(r, &restocked_by))
        .collect();
    let locked = store::lock(&mut tx, &targets).await?;
    let mut batch = Batch::new(locked, pace, Utc::now());
    for r in routed {
        feed(&mut tx, &mut batch, r, &restocked_by).await?;
    }
    let changed: Vec<(Uuid, &store::Stored)> = batch
        .changed
        .iter()
        .filter_map(|id| batch.sagas.get(id).map(|s| (*id, s)))
        .collect();
    store::save(&mut tx, &changed).await?;
    store::enqueue(&mut tx, &batch.outbox).await?;
    store::store_dead_letters(&mut tx, &dead).await?;
    store::advance(&mut tx, &fresh).await?;
    tx.commit().await?;
    metrics::counter!("saga_events_consumed_total").increment(fresh.len() as u64);
    Ok(())
}

/// Reads every record; the unreadable ones become dead letters.
fn route_all(topics: &Topics, records: &[Record]) -> (Vec<Routed>, Vec<DeadLetter>) {
    let mut routed = Vec::with_capacity(records.len());
    let mut dead = Vec::new();
    for record in records {
        match topics.route(record) {
            Ok(r) => routed.push(r),
            Err(error) => dead.push(DeadLetter {
                record: record.clone(),
                error,
            }),
        }
    }
    (routed, dead)
}

/// The saga a routed record concerns, if any.
fn target(routed: &Routed, restocked_by: &HashMap<Uuid, Uuid>) -> Option<Uuid> {
    match routed {
        Routed::Start(facts, _) => Some(*facts.order_id.as_uuid()),
        Routed::Feed { order_id, .. } | Routed::Operator { order_id, .. } => Some(*order_id),
        Routed::Restocked { command_id, .. } => restocked_by.get(command_id).copied(),
        Routed::Ignore => None,
    }
}

/// Applies one routed record to the batch's sagas.
async fn feed(
    tx: &mut store::Tx<'_>,
    batch: &mut Batch,
    routed: Routed,
    restocked_by: &HashMap<Uuid, Uuid>,
) -> Result<(), sqlx::Error> {
    match routed {
        Routed::Start(facts, meta) => batch.start(&facts, &Cause::of(&meta)),
        Routed::Feed {
            order_id,
            input,
            meta,
        } => batch.feed(order_id, &input, &Cause::of(&meta)),
        Routed::Restocked {
            command_id,
            sku,
            event,
            meta,
        } => {
            if let Some(order_id) = restocked_by.get(&command_id) {
                let input = Input::Catalog { sku, event };
                batch.feed(*order_id, &input, &Cause::of(&meta));
            }
        }
        // A redelivered operator command was answered before; its reply is
        // already in the outbox.
        Routed::Operator { order_id, envelope } => {
            if store::operator_reply(tx, envelope.command_id)
                .await?
                .is_none()
            {
                let reply = batch.operator(order_id, &envelope);
                store::record_operator_reply(tx, &reply).await?;
            }
        }
        Routed::Ignore => {}
    }
    Ok(())
}
