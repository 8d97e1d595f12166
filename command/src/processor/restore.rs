//! Rebuilds [`PartitionStore`]s when a processor is assigned commands
//! partitions, from the same partitions of three topics: the snapshots
//! (every aggregate's latest state and the checkpoint), the events after the
//! checkpoint (all of them when there is none, as in a deployment that
//! predates snapshots), and the replies inside the deduplication window.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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
use super::cold::StateFile;
use super::snapshot::{self, CHECKPOINT_KEY, Checkpoint};
use super::store::{Limits, PartitionStore, StoreError};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the transaction timeout: an open transaction of a fenced
/// zombie holds the end of the partition back until the broker aborts it.
const END_WITHIN: Duration = Duration::from_secs(90);

/// What a restore read per partition, reported as gauges.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    snapshots: u64,
    events_read: u64,
    events_folded: u64,
    replies: u64,
}

/// Reads the state of the given partitions of one aggregate type into fresh
/// stores (their disk halves in the lane's state file), one consumer per
/// topic for all of them. Blocking.
pub fn restore(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partitions: &[i32],
    limits: Limits,
    file: &Arc<StateFile>,
) -> Result<HashMap<i32, PartitionStore>, ProcessorError> {
    let started = Instant::now();
    let open = |p: i32| {
        let name = format!("{}-{p}", aggregate.as_str());
        PartitionStore::open(aggregate, limits, file, &name)
    };
    let mut stores = HashMap::new();
    for &p in partitions {
        stores.insert(p, open(p)?);
    }
    let mut counts: HashMap<i32, Counts> = HashMap::new();
    let unusable = read_snapshots(kafka, aggregate, partitions, &mut stores, &mut counts)?;
    for p in unusable {
        // An unreadable snapshot (a state type changed incompatibly): this
        // partition is folded from its first event instead, and snapshotted anew.
        stores.remove(&p);
        stores.insert(p, open(p)?);
        counts.insert(p, Counts::default());
    }
    let events_topic = kafka.events_topic(aggregate);
    let starts: Vec<(i32, Offset)> = partitions
        .iter()
        .map(
            |p| match stores.get(p).and_then(PartitionStore::checkpoint) {
                Some(offset) => (*p, Offset::Offset(offset)),
                None => (*p, Offset::Beginning),
            },
        )
        .collect();
    read_to_end(kafka, &events_topic, &starts, false, |message| {
        // A record without a valid envelope names no aggregate, so it
        // cannot be part of any aggregate's history: someone else wrote it
        // (the projectors dead-letter it). Failing here would stop the
        // partition for good, so it is skipped and counted. An envelope
        // whose payload does not decode does name its aggregate and still
        // fails the restore: skipping it would reuse its sequence number.
        let meta = match message.headers().map(kafka::from_headers) {
            Some(Ok(meta)) => meta,
            invalid => {
                tracing::warn!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    error = ?invalid.map(|r| r.err()),
                    "a record without a valid envelope in an events topic skipped"
                );
                metrics::counter!("command_restore_foreign_records_total").increment(1);
                return Ok(());
            }
        };
        let payload = message.payload().unwrap_or_default();
        let folded = store_of(&mut stores, message.partition())?
            .restore_event(message.offset(), &meta, payload)
            .map_err(|e| e.to_string())?;
        let count = counts.entry(message.partition()).or_default();
        count.events_read += 1;
        count.events_folded += u64::from(folded);
        Ok(())
    })?;
    let since = Utc::now()
        - chrono::Duration::from_std(limits.dedup_window).unwrap_or(chrono::Duration::MAX);
    let starts: Vec<(i32, Offset)> = partitions
        .iter()
        .map(|p| (*p, Offset::Offset(since.timestamp_millis())))
        .collect();
    read_to_end(
        kafka,
        &kafka.replies_topic(aggregate),
        &starts,
        true,
        |message| {
            let payload = message.payload().unwrap_or_default();
            let reply: Reply = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
            store_of(&mut stores, message.partition())?
                .restore_reply(reply)
                .map_err(|e| e.to_string())?;
            counts.entry(message.partition()).or_default().replies += 1;
            Ok(())
        },
    )?;
    for store in stores.values_mut() {
        store.commit()?;
    }
    report(&events_topic, &counts, started);
    Ok(stores)
}

/// Reads the snapshots partitions to their end into the stores; answers the
/// partitions with a snapshot that cannot be read.
fn read_snapshots(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partitions: &[i32],
    stores: &mut HashMap<i32, PartitionStore>,
    counts: &mut HashMap<i32, Counts>,
) -> Result<HashSet<i32>, ProcessorError> {
    let mut unusable = HashSet::new();
    let starts: Vec<(i32, Offset)> = partitions.iter().map(|p| (*p, Offset::Beginning)).collect();
    read_to_end(
        kafka,
        &snapshot::topic(kafka, aggregate),
        &starts,
        false,
        |message| {
            let partition = message.partition();
            if unusable.contains(&partition) {
                return Ok(());
            }
            let store = store_of(stores, partition)?;
            let key = message.key().unwrap_or_default();
            let value = message.payload().unwrap_or_default();
            let applied = match std::str::from_utf8(key) {
                Ok(CHECKPOINT_KEY) => serde_json::from_slice::<Checkpoint>(value)
                    .map(|c| store.set_checkpoint(c.events_offset))
                    .map_err(|e| e.to_string()),
                Ok(id) => match store.restore_snapshot(id, value) {
                    Err(StoreError::Cold(e)) => return Err(e.to_string()),
                    other => other.map_err(|e| e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = applied {
                tracing::warn!(topic = message.topic(), partition, offset = message.offset(), %error, "unreadable snapshot, folding the partition's events from the beginning");
                unusable.insert(partition);
            }
            counts.entry(partition).or_default().snapshots += 1;
            Ok(())
        },
    )?;
    for (partition, store) in stores.iter_mut() {
        if !unusable.contains(partition) {
            store.commit()?;
        }
    }
    Ok(unusable)
}

fn report(events_topic: &str, counts: &HashMap<i32, Counts>, started: Instant) {
    for (partition, count) in counts {
        tracing::info!(
            topic = %events_topic,
            partition,
            snapshots = count.snapshots,
            events_read = count.events_read,
            events_folded = count.events_folded,
            replies = count.replies,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "restored partition"
        );
        let labels = [
            ("topic", events_topic.to_owned()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!("command_restore_snapshots", &labels).set(count.snapshots as f64);
        metrics::gauge!("command_restore_events_read", &labels).set(count.events_read as f64);
        metrics::gauge!("command_restore_events_folded", &labels).set(count.events_folded as f64);
    }
    metrics::histogram!("command_processor_restore_seconds")
        .record(started.elapsed().as_secs_f64());
}

fn store_of(
    stores: &mut HashMap<i32, PartitionStore>,
    partition: i32,
) -> Result<&mut PartitionStore, String> {
    stores
        .get_mut(&partition)
        .ok_or_else(|| format!("a record of unassigned partition {partition}"))
}

/// Feeds every committed record of the partitions from the given starts
/// (broker timestamps in ms when `times`) to `apply`, and returns how many
/// there were.
fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    starts: &[(i32, Offset)],
    times: bool,
    mut apply: impl FnMut(&BorrowedMessage<'_>) -> Result<(), String>,
) -> Result<u64, ProcessorError> {
    // Assigned, never subscribed: a group id is required but no group is joined.
    let mut config = kafka.consumer("command-processor-restore");
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer<QuietEof> = config.create_with_context(QuietEof)?;
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in starts {
        list.add_partition_offset(topic, partition, offset)?;
    }
    if times {
        // Timestamps become offsets; partitions with nothing newer get End.
        list = consumer.offsets_for_times(list, TIMEOUT)?;
    }
    consumer.assign(&list)?;
    let mut open: HashSet<i32> = starts.iter().map(|(p, _)| *p).collect();
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
