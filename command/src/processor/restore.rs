//! Rebuilds [`PartitionStore`]s when a processor is assigned commands
//! partitions, from the same partitions of three topics: the snapshots
//! (every aggregate's latest state and the checkpoint), the events after the
//! checkpoint (all of them when there is none, as in a deployment that
//! predates snapshots), and the replies inside the deduplication window.
//! Snapshots and replies reach the store's disk half in key order, sorted
//! on the way ([`Keyed`]).

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

mod sorted;

use sorted::{Keyed, Sorter};

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
    let unusable = read_snapshots(kafka, aggregate, partitions, &mut stores, &mut counts, file)?;
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
    read_to_end(kafka, &events_topic, Starts::Offsets(starts), |message| {
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
    let starts = Starts::Newest {
        partitions: partitions.to_vec(),
        since_ms: since.timestamp_millis(),
        // The replies a store remembers are those of its deduplication
        // window up to its capacity. Each transaction adds one commit
        // marker, and holds at least one reply, so twice the capacity in
        // offsets holds at least the newest `capacity` replies. Reading
        // further back only inserted replies that the store's first commit
        // expired (a partition with a day of 500,000 replies was read whole).
        at_most: 2 * limits.dedup_capacity as i64,
    };
    let replies_topic = kafka.replies_topic(aggregate);
    let mut sorter = Sorter::new(file, &replies_topic)?;
    read_to_end(kafka, &replies_topic, starts, |message| {
        let payload = message.payload().unwrap_or_default();
        // Only the key here: the whole reply is decoded once, in key order.
        let key: ReplyKey = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        sorter.push(Keyed {
            partition: message.partition(),
            key: key.command_id.as_bytes().to_vec(),
            offset: message.offset(),
            value: payload.to_vec(),
        })
    })?;
    for record in sorter.sorted()? {
        let record = record?;
        let reply: Reply =
            serde_json::from_slice(&record.value).map_err(|e| record.error(&replies_topic, e))?;
        store_of(&mut stores, record.partition)
            .and_then(|store| store.restore_reply(reply).map_err(|e| e.to_string()))
            .map_err(|e| record.error(&replies_topic, e))?;
        counts.entry(record.partition).or_default().replies += 1;
    }
    for store in stores.values_mut() {
        store.commit()?;
    }
    report(&events_topic, &counts, started);
    Ok(stores)
}

/// Reads the snapshots partitions to their end into the stores, in key
/// order; answers the partitions with a snapshot that cannot be read.
fn read_snapshots(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partitions: &[i32],
    stores: &mut HashMap<i32, PartitionStore>,
    counts: &mut HashMap<i32, Counts>,
    file: &StateFile,
) -> Result<HashSet<i32>, ProcessorError> {
    let mut unusable = HashSet::new();
    let topic = snapshot::topic(kafka, aggregate);
    let starts: Vec<(i32, Offset)> = partitions.iter().map(|p| (*p, Offset::Beginning)).collect();
    let mut sorter = Sorter::new(file, &topic)?;
    read_to_end(kafka, &topic, Starts::Offsets(starts), |message| {
        let partition = message.partition();
        counts.entry(partition).or_default().snapshots += 1;
        let key = message.key().unwrap_or_default();
        let value = message.payload().unwrap_or_default();
        if key != CHECKPOINT_KEY.as_bytes() {
            return sorter.push(Keyed {
                partition,
                key: key.to_vec(),
                offset: message.offset(),
                value: value.to_vec(),
            });
        }
        // Checkpoints in offset order: the last one read is the newest.
        match serde_json::from_slice::<Checkpoint>(value) {
            Ok(c) => store_of(stores, partition)?.set_checkpoint(c.events_offset),
            Err(error) => {
                unreadable(&topic, partition, message.offset(), &error);
                unusable.insert(partition);
            }
        }
        Ok(())
    })?;
    for record in sorter.sorted()? {
        let record = record?;
        if unusable.contains(&record.partition) {
            continue;
        }
        let store = store_of(stores, record.partition).map_err(|e| record.error(&topic, e))?;
        let applied = match std::str::from_utf8(&record.key) {
            Ok(id) => match store.restore_snapshot(id, &record.value) {
                Err(StoreError::Cold(e)) => return Err(record.error(&topic, e)),
                other => other.map_err(|e| e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = applied {
            unreadable(&topic, record.partition, record.offset, &error);
            unusable.insert(record.partition);
        }
    }
    for (partition, store) in stores.iter_mut() {
        if !unusable.contains(partition) {
            store.commit()?;
        }
    }
    Ok(unusable)
}

/// The field of a reply a restore sorts by.
#[derive(serde::Deserialize)]
struct ReplyKey {
    command_id: uuid::Uuid,
}

fn unreadable(topic: &str, partition: i32, offset: i64, error: &dyn std::fmt::Display) {
    tracing::warn!(topic, partition, offset, %error, "unreadable snapshot, folding the partition's events from the beginning");
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
        metrics::gauge!("command_restore_seconds", &labels).set(started.elapsed().as_secs_f64());
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

/// Where [`read_to_end`] starts in each partition.
enum Starts {
    /// At these offsets.
    Offsets(Vec<(i32, Offset)>),
    /// At the first record written at or after `since_ms` (broker time),
    /// but no earlier than `at_most` offsets before the end.
    Newest {
        partitions: Vec<i32>,
        since_ms: i64,
        at_most: i64,
    },
}

/// Feeds every committed record of the partitions from the given starts to
/// `apply`, and returns how many there were.
fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    starts: Starts,
    mut apply: impl FnMut(&BorrowedMessage<'_>) -> Result<(), String>,
) -> Result<u64, ProcessorError> {
    // Assigned, never subscribed: a group id is required but no group is joined.
    let mut config = kafka.consumer("command-processor-restore");
    // The end of a partition shows as a fetch that comes back empty, which
    // the broker holds for the whole wait: three of them per restore, on
    // which the partitions' commands wait.
    config
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<QuietEof> = config.create_with_context(QuietEof)?;
    // A consumer assigned partitions before it knows their leader starts
    // fetching about 500 ms later (librdkafka's debug log shows the wait
    // between the assignment and "start fetching"), three times per
    // restore: 1.6 s for a partition of 30 records. Asking for the topic's
    // metadata first connects it and learns the leader in one round trip.
    consumer.fetch_metadata(Some(topic), TIMEOUT)?;
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
        } => {
            for &partition in &partitions {
                list.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
            }
            // Timestamps become offsets; partitions with nothing newer get End.
            let found = consumer.offsets_for_times(list, TIMEOUT)?;
            list = TopicPartitionList::new();
            for element in found.elements() {
                let (_, high) = consumer.fetch_watermarks(topic, element.partition(), TIMEOUT)?;
                let start = match element.offset() {
                    Offset::Offset(at) => Offset::Offset(at.max(high - at_most)),
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
