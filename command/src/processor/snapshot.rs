//! Snapshots: a compacted changelog topic per aggregate type,
//! `<aggregate>.snapshots`, co-partitioned with the commands and events
//! topics. Key: the aggregate id; value: its state and version as JSON
//! ([`Slot::encode`](super::store::Slot::encode)), written inside the
//! lane's transactions, so a snapshot commits exactly when the events before
//! it do. A changed aggregate is snapshotted once its first unsnapshotted
//! event is [`SNAPSHOT_LAG`] offsets old, not in every transaction.
//!
//! Under [`CHECKPOINT_KEY`] the topic also holds a checkpoint: an events
//! offset before which every event is covered by a committed snapshot (the
//! lowest offset an aggregate is still pending from). A restore reads the
//! snapshots partition to its end, then the events partition from the
//! checkpoint only, skipping events whose sequence a snapshot covers. The
//! offsets come from the delivery reports of events already acknowledged
//! before a transaction, so the checkpoint never passes an event whose
//! snapshot is not in the same or an earlier transaction.

use std::collections::HashMap;

use events::{AggregateType, KafkaConfig};
use rdkafka::producer::{BaseRecord, Producer};
use serde::{Deserialize, Serialize};

use super::ProcessorError;
pub use super::store::{CHECKPOINT_KEY, Slot, SnapshotPlan};
use super::store::{PartitionStore, StoreError};
use super::txn::{self, TxnProducer};

/// How far behind the end of its events partition a changed aggregate's
/// snapshot may lag. An aggregate is snapshotted once its first unsnapshotted
/// event is this many offsets old, not in every transaction that changes
/// it, so a restore folds at most about this many events after the
/// snapshots, and an order that lives for a few events is usually written
/// once, when it is done.
pub const SNAPSHOT_LAG: i64 = 10_000;

/// Most snapshot records one transaction carries besides its own work (a
/// backlog after an upgrade from a deployment without snapshots is written
/// a slice at a time).
const MOST_PER_TRANSACTION: usize = 1_000;

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

/// The partitions a transaction changed, each with the end of its events
/// acknowledged before the transaction wrote to it (none when this session
/// has written none): where the transaction's own events start at the
/// earliest.
#[derive(Debug, Default)]
pub struct Touched(HashMap<(AggregateType, i32), Option<i64>>);

impl Touched {
    /// Records that the transaction writes to `partition` of `aggregate`'s
    /// topics; call before its events are produced.
    pub fn note(
        &mut self,
        producer: &TxnProducer,
        kafka: &KafkaConfig,
        aggregate: AggregateType,
        partition: i32,
    ) {
        self.0.entry((aggregate, partition)).or_insert_with(|| {
            let events = kafka.events_topic(aggregate);
            producer.context().delivered_end(&events, partition)
        });
    }

    /// Writes the changed partitions' state to their tables once the
    /// transaction has committed, with where their events and replies now
    /// end (the delivery reports of this session's records).
    pub fn commit(
        &self,
        producer: &TxnProducer,
        kafka: &KafkaConfig,
        stores: &mut HashMap<(AggregateType, i32), PartitionStore>,
    ) -> Result<(), StoreError> {
        for &(aggregate, partition) in self.0.keys() {
            if let Some(store) = stores.get_mut(&(aggregate, partition)) {
                let delivered = |topic: String| producer.context().delivered(&topic, partition);
                let replies = delivered(kafka.replies_topic(aggregate));
                store.advance(
                    delivered(kafka.events_topic(aggregate)),
                    replies.map(|d| d.end),
                );
                store.commit()?;
            }
        }
        Ok(())
    }
}

/// Produces, inside the open transaction, the snapshots and checkpoints of
/// every partition the transaction changed.
pub fn publish(
    producer: &TxnProducer,
    kafka: &KafkaConfig,
    touched: &Touched,
    stores: &mut HashMap<(AggregateType, i32), PartitionStore>,
) -> Result<(), ProcessorError> {
    for (&(aggregate, partition), before) in &touched.0 {
        if let Some(store) = stores.get_mut(&(aggregate, partition)) {
            publish_partition(producer, kafka, aggregate, partition, *before, store)?;
        }
    }
    Ok(())
}

/// Produces, inside the open transaction, the snapshots of the partition's
/// aggregates that are due ([`SNAPSHOT_LAG`]) and, when they let the
/// checkpoint move by a good part of that lag, the new checkpoint. Without
/// a `before` ([`Touched`]), the events start after where the restore ended.
fn publish_partition(
    producer: &TxnProducer,
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partition: i32,
    before: Option<i64>,
    store: &mut PartitionStore,
) -> Result<(), ProcessorError> {
    let topic = topic(kafka, aggregate);
    let first_offset = before.unwrap_or_else(|| store.restored_end());
    let plan = SnapshotPlan {
        first_offset,
        due_before: first_offset - SNAPSHOT_LAG,
        most: MOST_PER_TRANSACTION,
    };
    let records = store.snapshots(plan)?;
    for (id, state) in &records {
        let record = BaseRecord::to(&topic)
            .partition(partition)
            .key(id.as_str())
            .payload(state);
        txn::send(producer, record)?;
    }
    let covered = store.covered_before(first_offset);
    let moved = covered - store.checkpoint().unwrap_or(0);
    // A checkpoint alone would add the snapshots partition to the
    // transaction (one more produce and one more marker), so it rides along
    // with snapshots, or waits until it moves far enough to matter.
    if moved <= 0 || (records.is_empty() && moved < SNAPSHOT_LAG / 4) {
        return Ok(());
    }
    let value = Checkpoint {
        events_offset: covered,
    }
    .encode()?;
    let record = BaseRecord::to(&topic)
        .partition(partition)
        .key(CHECKPOINT_KEY)
        .payload(&value);
    txn::send(producer, record)?;
    store.set_checkpoint(covered);
    Ok(())
}
