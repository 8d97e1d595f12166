//! Reading a restore's topics: every committed record of some partitions
//! from given starts to their ends.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use events::KafkaConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::processor::ProcessorError;

pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the transaction timeout: an open transaction of a fenced
/// zombie holds the end of the partition back until the broker aborts it.
pub(super) const END_WITHIN: Duration = Duration::from_secs(90);

/// Where [`read_to_end`] starts in each partition.
pub(super) enum Starts {
    /// At these offsets.
    Offsets(Vec<(i32, Offset)>),
    /// At the first record written at or after `since_ms` (broker time),
    /// but no earlier than `at_most` offsets before the end.
    Newest {
        partitions: Vec<i32>,
        since_ms: i64,
        at_most: i64,
        /// Nor before these offsets.
        after: HashMap<i32, i64>,
    },
}

/// Feeds every committed record of the partitions from the given starts to
/// `apply`, and returns how many there were.
pub(super) fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    starts: Starts,
    mut apply: impl FnMut(&BorrowedMessage<'_>) -> Result<(), String>,
) -> Result<u64, ProcessorError> {
    let consumer = consumer(kafka, topic)?;
    let mut list = TopicPartitionList::new();
    let partitions: Vec<i32> = match starts {
        Starts::Offsets(starts) => {
            for (partition, offset) in &starts {
                list.add_partition_offset(topic, *partition, *offset)?;
            }
            starts.iter().map(|(p, _)| *p).collect()
        }
        Starts::Newest {
            partitions,
            since_ms,
            at_most,
            after,
        } => {
            for &partition in &partitions {
                list.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
            }
            // Timestamps become offsets; partitions with nothing newer get End.
            let found = consumer.offsets_for_times(list, TIMEOUT)?;
            list = TopicPartitionList::new();
            for element in found.elements() {
                let (_, high) = consumer.fetch_watermarks(topic, element.partition(), TIMEOUT)?;
                let floor = after.get(&element.partition()).copied().unwrap_or(0);
                let start = match element.offset() {
                    Offset::Offset(at) => Offset::Offset(at.max(high - at_most).max(floor)),
                    other => other,
                };
                list.add_partition_offset(topic, element.partition(), start)?;
            }
            partitions
        }
    };
    consumer.assign(&list)?;
    let mut open: HashSet<i32> = partitions.into_iter().collect();
    let mut count = 0;
    let deadline = Instant::now() + END_WITHIN;
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            None if Instant::now() >= deadline => {
                return Err(ProcessorError::Restore(format!(
                    "{topic} {open:?}: no end of partition within {END_WITHIN:?}"
                )));
            }
            None => {}
            // With read_committed the end is the last stable offset, which
            // stops before a transaction still open: the session waits for
            // the previous owner's last transaction to end before restoring
            // (see `apply_rebalances`), so none of its own remains open.
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                apply(&message).map_err(|error| {
                    ProcessorError::Restore(format!(
                        "{topic}/{} offset {}: {error}",
                        message.partition(),
                        message.offset()
                    ))
                })?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// A consumer of `topic` for a restore, which reports each partition's end.
pub(super) fn consumer(
    kafka: &KafkaConfig,
    topic: &str,
) -> Result<BaseConsumer<QuietEof>, ProcessorError> {
    // Assigned, never subscribed: a group id is required but no group is joined.
    let mut config = kafka.consumer("command-processor-restore");
    // The end of a partition shows as a fetch that comes back empty, which
    // the broker holds for the whole wait: several of them per restore, on
    // which the partitions' commands wait.
    config
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<QuietEof> = config.create_with_context(QuietEof)?;
    // A consumer assigned partitions before it knows their leader starts
    // fetching about 500 ms later (librdkafka's debug log shows the wait
    // between the assignment and "start fetching"), several times per
    // restore: 1.6 s for a partition of 30 records. Asking for the topic's
    // metadata first connects it and learns the leader in one round trip.
    consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    Ok(consumer)
}

/// Reaching the end of a partition is what a restore waits for, not an
/// error worth logging (librdkafka also reports it as a client error).
pub(super) struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!(%error, reason, "kafka client error during restore");
        }
    }
}

impl ConsumerContext for QuietEof {}
