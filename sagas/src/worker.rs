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
use std::time::Instant;

use chrono::Utc;
use events::record::{self, Record};
use events::{KafkaConfig, telemetry};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::apply::{Batch, Cause};
use crate::machine::{Input, Pace};
use crate::publish::Handoff;
use crate::route::{Routed, Topics};
use crate::store::{self, DeadLetter};
use crate::watermark::{self, Ends, Progress};

const MAX_BATCH: usize = 500;

pub fn subscribe(
    kafka: &KafkaConfig,
    group_id: &str,
    topics: &Topics,
) -> Result<StreamConsumer<Progress>, KafkaError> {
    let mut config = kafka.hinting_consumer(group_id);
    config.set("statistics.interval.ms", watermark::STATISTICS_INTERVAL_MS);
    let consumer: StreamConsumer<Progress> = config.create_with_context(Progress::default())?;
    let topics = topics.all();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// Runs until `shutdown`; a failed batch is retried, never skipped.
pub async fn run(
    consumer: Arc<StreamConsumer<Progress>>,
    pool: PgPool,
    topics: Topics,
    pace: Pace,
    max_open: u32,
    handoff: Handoff,
    shutdown: CancellationToken,
) {
    // Without records the watermarks still follow the clock, so deadlines fire.
    let mut marks = watermark::Marks::new(pace);
    let idle = marks.step();
    let mut busy_since = Instant::now();
    loop {
        consumer.context().waiting_after(busy_since.elapsed());
        let batch = tokio::select! {
            batch = record::next_batch_or_wait(&*consumer, MAX_BATCH, &shutdown) => batch,
            () = tokio::time::sleep(idle) => {
                busy_since = Instant::now();
                if let Err(e) = watermark::mark_idle(&pool, &consumer, idle).await {
                    tracing::warn!(error = %e, "moving the saga watermarks failed");
                }
                continue;
            }
        };
        busy_since = Instant::now();
        let Some(records) = batch else {
            return;
        };
        // Observed after the batch was delivered: once the batch commits,
        // everything up to these ends has been applied. At most once a step.
        let ends = marks.due(&consumer);
        let applied = record::retry_until(&shutdown, "applying a saga batch", || {
            apply(&pool, &topics, pace, max_open, records.to_vec(), &ends)
        });
        let Some(committed) = applied.await else {
            return;
        };
        handoff.committed(committed).await;
        record::commit_hint(&consumer, &records);
    }
}

/// Applies one batch: positions, sagas, outbox and dead letters in one
/// commit. Answers the outbox rows it inserted, for the publisher.
pub async fn apply(
    pool: &PgPool,
    topics: &Topics,
    pace: Pace,
    max_open: u32,
    records: Vec<Record>,
    ends: &Ends,
) -> Result<Vec<(i64, store::OutboxMessage)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = store::claim(&mut tx, records).await?;
    if fresh.is_empty() {
        watermark::mark(&mut tx, ends, watermark::step(pace)).await?;
        tx.commit().await?;
        return Ok(Vec::new());
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
    if max_open > 0 {
        // The customers of the batch's new orders, locked and counted.
        let customers: Vec<String> = routed
            .iter()
            .filter_map(|r| match r {
                Routed::Start(facts, _) if !batch.sagas.contains_key(facts.order_id.as_uuid()) => {
                    Some(facts.customer_id.as_str().to_owned())
                }
                _ => None,
            })
            .collect();
        if !customers.is_empty() {
            let open = store::open_orders(&mut tx, &customers).await?;
            batch.limit_open_orders(max_open, open);
        }
    }
    for r in routed {
        feed(&mut tx, &mut batch, r, &restocked_by).await?;
    }
    store::store_dead_letters(&mut tx, &dead).await?;
    let inserted = save(&mut tx, &mut batch, &fresh).await?;
    watermark::mark(&mut tx, ends, watermark::step(pace)).await?;
    tx.commit().await?;
    metrics::counter!("saga_events_consumed_total").increment(fresh.len() as u64);
    Ok(inserted)
}

/// Stores the batch's changed sagas, enqueues the messages they caused and
/// moves the positions past `consumed`, in the transaction of the worker's
/// batch or of the timer's round (which consumed nothing). Answers the
/// outbox rows it inserted, for the publisher.
pub(crate) async fn save(
    tx: &mut store::Tx<'_>,
    batch: &mut Batch,
    consumed: &[Record],
) -> Result<Vec<(i64, store::OutboxMessage)>, sqlx::Error> {
    // An unencodable message rolls the transaction back (sqlx's encode error).
    let messages = batch
        .take_outbox()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let sagas = batch
        .changed
        .iter()
        .filter_map(|id| batch.sagas.get(id).map(|s| (*id, s)))
        .collect();
    let writes = store::Writes {
        sagas,
        messages,
        consumed,
    };
    store::save(tx, writes).await
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

/// The span of one saga step: a child of the event (or operator command)
/// that drives it.
fn step_span(routed: &Routed) -> tracing::Span {
    let (name, traceparent) = match routed {
        Routed::Start(_, meta) | Routed::Feed { meta, .. } | Routed::Restocked { meta, .. } => {
            (meta.event_type.as_str(), meta.traceparent.as_deref())
        }
        Routed::Operator { envelope, .. } => (
            envelope.command.command_type(),
            envelope.traceparent.as_deref(),
        ),
        Routed::Ignore => return tracing::Span::none(),
    };
    let span = tracing::info_span!(
        target: telemetry::TARGET,
        "saga step",
        otel.name = %format_args!("saga on {name}"),
        otel.kind = "consumer",
    );
    telemetry::continue_from(&span, traceparent, None);
    span
}

/// Applies one routed record to the batch's sagas, inside its step span.
async fn feed(
    tx: &mut store::Tx<'_>,
    batch: &mut Batch,
    routed: Routed,
    restocked_by: &HashMap<Uuid, Uuid>,
) -> Result<(), sqlx::Error> {
    let span = step_span(&routed);
    feed_step(tx, batch, routed, restocked_by)
        .instrument(span)
        .await
}

async fn feed_step(
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
                let sequence = meta.sequence;
                let input = Input::Catalog {
                    sku,
                    event,
                    sequence,
                };
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
