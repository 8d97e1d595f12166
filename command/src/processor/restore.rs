//! Rebuilds a [`PartitionStore`] from the log when a processor is assigned a
//! commands partition: the same partition of the events topic (every event
//! since the beginning) and of the replies topic (the outcomes inside the
//! deduplication window).

use std::time::{Duration, Instant};

use chrono::Utc;
use events::command::Reply;
use events::{AggregateType, KafkaConfig, kafka};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::ProcessorError;
use super::store::PartitionStore;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the transaction timeout: an open transaction of a fenced
/// zombie holds the end of the partition back until the broker aborts it.
const END_WITHIN: Duration = Duration::from_secs(90);

/// Reads the partition's history into a fresh store. Blocking.
pub fn restore(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partition: i32,
    window: Duration,
    capacity: usize,
) -> Result<PartitionStore, ProcessorError> {
    let started = Instant::now();
    let events_topic = kafka.events_topic(aggregate);
    let replies_topic = kafka.replies_topic(aggregate);
    let mut store = PartitionStore::new(aggregate, window, capacity);

    let events = read_to_end(kafka, &events_topic, partition, None, |message| {
        let headers = message.headers().ok_or("no headers")?;
        let meta = kafka::from_headers(headers).map_err(|e| e.to_string())?;
        let payload = message.payload().unwrap_or_default();
        store
            .restore_event(&meta, payload)
            .map_err(|e| e.to_string())?;
        Ok(())
    })?;
    let since = Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let replies = read_to_end(
        kafka,
        &replies_topic,
        partition,
        Some(since.timestamp_millis()),
        |message| {
            let payload = message.payload().unwrap_or_default();
            let reply: Reply = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
            store.restore_reply(reply);
            Ok(())
        },
    )?;
    tracing::info!(
        topic = %events_topic,
        partition,
        events,
        replies,
        aggregates = store.aggregate_count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "restored partition"
    );
    metrics::histogram!("command_processor_restore_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(store)
}

/// Feeds every committed record of one partition (from `since_ms`, a broker
/// timestamp, or from the beginning) to `apply`, and returns how many there were.
fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    since_ms: Option<i64>,
    mut apply: impl FnMut(&BorrowedMessage<'_>) -> Result<(), String>,
) -> Result<u64, ProcessorError> {
    let mut config = kafka.consumer("unused");
    config
        .remove("group.id")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create()?;
    let start = match since_ms {
        None => Offset::Beginning,
        Some(ms) => {
            let mut by_time = TopicPartitionList::new();
            by_time.add_partition_offset(topic, partition, Offset::Offset(ms))?;
            consumer
                .offsets_for_times(by_time, TIMEOUT)?
                .find_partition(topic, partition)
                .map(|p| p.offset())
                .unwrap_or(Offset::Beginning)
        }
    };
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, start)?;
    consumer.assign(&list)?;
    let mut count = 0;
    let deadline = Instant::now() + END_WITHIN;
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            None if Instant::now() >= deadline => {
                return Err(ProcessorError::Restore(format!(
                    "{topic}/{partition}: no end of partition within {END_WITHIN:?}"
                )));
            }
            None => {}
            // With read_committed the end is the last stable offset: it waits
            // for transactions still open on the partition to finish.
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(count),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                apply(&message).map_err(|error| {
                    ProcessorError::Restore(format!(
                        "{topic}/{partition} offset {}: {error}",
                        message.offset()
                    ))
                })?;
                count += 1;
            }
        }
    }
}
