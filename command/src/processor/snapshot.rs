//! Snapshots: a compacted changelog topic per aggregate type,
//! `<aggregate>.snapshots`, co-partitioned with the commands and events
//! topics. Key: the aggregate id; value: its state and version as JSON
//! ([`Slot::encode`](super::store::Slot::encode)). Each transaction that
//! changes aggregates carries their new states, so the snapshots commit
//! exactly when the events do.
//!
//! Under [`CHECKPOINT_KEY`] the topic also holds a checkpoint: an events
//! offset before which every event is covered by a committed snapshot. A
//! restore reads the snapshots partition to its end, then the events
//! partition from the checkpoint only, skipping events whose sequence a
//! snapshot covers. The offset comes from the delivery reports of events
//! already acknowledged, so it never names an event whose snapshot is not in
//! the same or an earlier transaction.

use events::{AggregateType, KafkaConfig};
use rdkafka::producer::{BaseRecord, Producer};
use serde::{Deserialize, Serialize};

use super::ProcessorError;
use super::store::PartitionStore;
pub use super::store::{CHECKPOINT_KEY, Slot};
use super::txn::{self, TxnProducer};

/// Most aggregates restored from events (not from snapshots) that one
/// transaction snapshots besides the ones it changed: after an upgrade from
/// a deployment without snapshots, the backlog is written a slice at a time.
const BACKFILL_PER_TRANSACTION: usize = 1_000;

/// The checkpoint record's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub events_offset: i64,
}

impl Checkpoint {
    pub fn encode(self) -> Result<Vec<u8>, events::message::EncodeError> {
        events::message::encode(&self)
    }
}

/// The snapshots topic of one aggregate type.
pub fn topic(kafka: &KafkaConfig, aggregate: AggregateType) -> String {
    format!("{}{}.snapshots", kafka.topic_prefix, aggregate.as_str())
}

/// The snapshots topics of every aggregate type that takes commands.
pub fn topics(kafka: &KafkaConfig) -> Vec<String> {
    AggregateType::AGGREGATES
        .into_iter()
        .map(|aggregate| topic(kafka, aggregate))
        .collect()
}

/// Produces, inside the open transaction, the snapshots of what the batch
/// changed in one partition and, when every aggregate of the partition has
/// a snapshot, a checkpoint at the end of the acknowledged events.
pub fn publish(
    producer: &TxnProducer,
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partition: i32,
    store: &mut PartitionStore,
) -> Result<(), ProcessorError> {
    let topic = topic(kafka, aggregate);
    for (id, state) in store.snapshots(BACKFILL_PER_TRANSACTION)? {
        let record = BaseRecord::to(&topic)
            .partition(partition)
            .key(id.as_str())
            .payload(&state);
        txn::send(producer, record)?;
    }
    if !store.fully_snapshotted() {
        return Ok(());
    }
    let events_topic = kafka.events_topic(aggregate);
    let Some(end) = producer.context().delivered_end(&events_topic, partition) else {
        return Ok(());
    };
    if store.checkpoint().is_some_and(|at| at >= end) {
        return Ok(());
    }
    let value = Checkpoint { events_offset: end }.encode()?;
    let record = BaseRecord::to(&topic)
        .partition(partition)
        .key(CHECKPOINT_KEY)
        .payload(&value);
    txn::send(producer, record)?;
    store.set_checkpoint(end);
    Ok(())
}
