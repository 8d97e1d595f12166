//! Rebuilds [`PartitionStore`]s from the log when a processor is assigned
//! commands partitions: the same partitions of the events topic (every event
//! since the beginning) and of the replies topic (the outcomes inside the
//! deduplication window).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use events::command::Reply;
use events::{AggregateType, KafkaConfig, kafka};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::ProcessorError;
use super::store::PartitionStore;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the transaction timeout: an open transaction of a fenced
/// zombie holds the end of the partition back until the broker aborts it.
const END_WITHIN: Duration = Duration::from_secs(90);

/// Reads the history of the given partitions of one aggregate type into fresh
/// stores, one consumer per topic for all of them. Blocking.
pub fn restore(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partitions: &[i32],
    window: Duration,
    capacity: usize,
) -> Result<HashMap<i32, PartitionStore>, ProcessorError> {
    let started = Instant::now();
    let mut stores: HashMap<i32, PartitionStore> = partitions
        .iter()
        .map(|p| (*p, PartitionStore::new(aggregate, window, capacity)))
        .collect();
    let events_topic = kafka.events_topic(aggregate);
    let events = read_to_end(kafka, &events_topic, partitions, None, |message| {
        let headers = message.headers().ok_or("no headers")?;
        let meta = kafka::from_headers(headers).map_err(|e| e.to_string())?;
        let payload = message.payload().unwrap_or_default();
        store_of(&mut stores, message.partition())?
            .restore_event(&meta, payload)
            .map_err(|e| e.to_string())
    })?;
    let since = Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let replies_topic = kafka.replies_topic(aggregate);
    let replies = read_to_end(
        kafka,
        &replies_topic,
        partitions,
        Some(since.timestamp_millis()),
        |message| {
            let payload = message.payload().unwrap_or_default();
            let reply: Reply = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
            store_of(&mut stores, message.partition())?.restore_reply(reply);
            Ok(())
        },
    )?;
    tracing::info!(
        topic = %events_topic,
        ?partitions,
        events,
        replies,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "restored partitions"
    );
    metrics::histogram!("command_processor_restore_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(stores)
}

fn store_of(
    stores: &mut HashMap<i32, PartitionStore>,
    partition: i32,
) -> Result<&mut PartitionStore, String> {
    stores
        .get_mut(&partition)
        .ok_or_else(|| format!("a record of unassigned partition {partition}"))
}

/// Feeds every committed record of the partitions (from `since_ms`, a broker
/// timestamp, or from the beginning) to `apply`, and returns how many there were.
fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: &[i32],
    since_ms: Option<i64>,
    mut apply: impl FnMut(&BorrowedMessage<'_>) -> Result<(), String>,
) -> Result<u64, ProcessorError> {
    // Assigned, never subscribed: a group id is required but no group is joined.
    let mut config = kafka.consumer("command-processor-restore");
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer<QuietEof> = config.create_with_context(QuietEof)?;
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        let offset = match since_ms {
            None => Offset::Beginning,
            Some(ms) => Offset::Offset(ms),
        };
        list.add_partition_offset(topic, partition, offset)?;
    }
    if since_ms.is_some() {
        // Timestamps become offsets; partitions with nothing newer get End.
        list = consumer.offsets_for_times(list, TIMEOUT)?;
    }
    consumer.assign(&list)?;
    let mut open: HashSet<i32> = partitions.iter().copied().collect();
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
            // With read_committed the end is the last stable offset: it waits
            // for transactions still open on the partition to finish.
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

/// Reaching the end of a partition is what a restore waits for, not an
/// error worth logging (librdkafka also reports it as a client error).
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!(%error, reason, "kafka client error during restore");
        }
    }
}

impl ConsumerContext for QuietEof {}
