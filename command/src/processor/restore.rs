//! Rebuilds [`PartitionStore`]s when a processor is assigned commands
//! partitions. A partition whose tables an earlier session on this host
//! left, and that the log has not moved far past, resumes from them: the
//! events from their checkpoint on and the replies after them. Any other
//! is restored into empty tables from the same partitions of three topics:
//! the snapshots (every aggregate's latest state and the checkpoint), the
//! events after the checkpoint (all of them when there is none, as in a
//! deployment that predates snapshots), and the replies inside the
//! deduplication window. Snapshots and replies reach the store's disk half
//! in key order, sorted on the way ([`Keyed`]).

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use events::command::Reply;
use events::{AggregateType, KafkaConfig, kafka};
use rdkafka::{Message, Offset};

use super::ProcessorError;
use super::cold::{StateFile, second_of};
use super::snapshot::{self, CHECKPOINT_KEY, Checkpoint};
use super::store::{Limits, PartitionStore, StoreError};

mod logs;
mod read;
mod sorted;

use logs::log;
use read::{Starts, read_to_end};
use sorted::{Keyed, Sorter};

/// What a restore read per partition, reported as gauges.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    resumed: bool,
    snapshots: u64,
    events_read: u64,
    events_folded: u64,
    replies: u64,
}

/// Reads the state of one partition of an aggregate type into a store (its
/// disk half in the partition's file in `dir`, resumed or emptied).
/// Blocking.
pub fn restore(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partition: i32,
    limits: Limits,
    dir: &Path,
) -> Result<PartitionStore, ProcessorError> {
    let started = Instant::now();
    let events_topic = kafka.events_topic(aggregate);
    let replies_topic = kafka.replies_topic(aggregate);
    let name = format!("{events_topic}-{partition}");
    let file =
        StateFile::open(dir, &name).map_err(|e| ProcessorError::StateDir(dir.to_owned(), e))?;
    let open = || PartitionStore::open(aggregate, limits, &file, &name);
    let log = log(kafka, &events_topic, &replies_topic, partition)?;
    let resumed = PartitionStore::reopen(aggregate, limits, &file, &name)?
        .filter(|store| store.resume().is_some_and(|resume| log.resumes(resume)));
    let mut counts = Counts::default();
    let mut store = match resumed {
        Some(store) => store,
        None => {
            let mut store = open()?;
            if !read_snapshots(kafka, aggregate, partition, &mut store, &mut counts, dir)? {
                // An unreadable snapshot (a state type changed incompatibly):
                // the partition is folded from its first event instead, and
                // snapshotted anew.
                store = open()?;
                counts = Counts::default();
            }
            store
        }
    };
    counts.resumed = store.resumed();
    let start = store.checkpoint().map_or(Offset::Beginning, Offset::Offset);
    let starts = Starts::Offsets(vec![(partition, start)]);
    read_to_end(kafka, &events_topic, starts, |message| {
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
        let folded = store
            .restore_event(message.offset(), &meta, payload)
            .map_err(|e| e.to_string())?;
        counts.events_read += 1;
        counts.events_folded += u64::from(folded);
        Ok(())
    })?;
    let since = Utc::now()
        - chrono::Duration::from_std(limits.dedup_window).unwrap_or(chrono::Duration::MAX);
    let starts = Starts::Newest {
        partitions: vec![partition],
        since_ms: since.timestamp_millis(),
        // The replies a store remembers are those of its deduplication
        // window up to its capacity. Each transaction adds one commit
        // marker, and holds at least one reply, so twice the capacity in
        // offsets holds at least the newest `capacity` replies. Reading
        // further back only inserted replies that the store's first commit
        // expired (a partition with a day of 500,000 replies was read whole).
        at_most: 2 * limits.dedup_capacity as i64,
        // A resumed store's outcomes hold the replies before this.
        after: store
            .replies_end()
            .map(|end| (partition, end))
            .into_iter()
            .collect(),
    };
    let mut sorter = Sorter::new(dir, &replies_topic)?;
    let mut replies_end = None;
    read_to_end(kafka, &replies_topic, starts, |message| {
        replies_end = Some(message.offset() + 1);
        let payload = message.payload().unwrap_or_default();
        // Only the key here: the whole reply is decoded once, in the order
        // the outcomes table keys it (second decided, command id).
        let key: ReplyKey = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        let second = second_of(key.processed_at.timestamp_millis()).to_be_bytes();
        sorter.push(Keyed {
            key: [second.as_slice(), key.command_id.as_bytes()].concat(),
            offset: message.offset(),
            value: payload.to_vec(),
        })
    })?;
    for record in sorter.sorted()? {
        let record = record?;
        let reply: Reply = serde_json::from_slice(&record.value)
            .map_err(|e| record.error(&replies_topic, partition, e))?;
        store
            .restore_reply(reply)
            .map_err(|e| record.error(&replies_topic, partition, e))?;
        counts.replies += 1;
    }
    store.restored(log.origin, replies_end);
    store.commit()?;
    report(&events_topic, partition, &counts, started);
    Ok(store)
}

/// Reads the snapshots partition to its end into the store, in key order;
/// answers false when a snapshot cannot be read.
fn read_snapshots(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partition: i32,
    store: &mut PartitionStore,
    counts: &mut Counts,
    dir: &Path,
) -> Result<bool, ProcessorError> {
    let topic = snapshot::topic(kafka, aggregate);
    let mut sorter = Sorter::new(dir, &topic)?;
    let mut usable = true;
    let starts = Starts::Offsets(vec![(partition, Offset::Beginning)]);
    read_to_end(kafka, &topic, starts, |message| {
        counts.snapshots += 1;
        let key = message.key().unwrap_or_default();
        let value = message.payload().unwrap_or_default();
        if key != CHECKPOINT_KEY.as_bytes() {
            return sorter.push(Keyed {
                key: key.to_vec(),
                offset: message.offset(),
                value: value.to_vec(),
            });
        }
        // Checkpoints in offset order: the last one read is the newest.
        match serde_json::from_slice::<Checkpoint>(value) {
            Ok(c) => store.set_checkpoint(c.events_offset),
            Err(error) => {
                unreadable(&topic, partition, message.offset(), &error);
                usable = false;
            }
        }
        Ok(())
    })?;
    if !usable {
        return Ok(false);
    }
    for record in sorter.sorted()? {
        let record = record?;
        let applied = match std::str::from_utf8(&record.key) {
            Ok(id) => match store.restore_snapshot(id, &record.value) {
                Err(StoreError::Cold(e)) => return Err(record.error(&topic, partition, e)),
                other => other.map_err(|e| e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = applied {
            unreadable(&topic, partition, record.offset, &error);
            return Ok(false);
        }
    }
    store.commit()?;
    Ok(true)
}

/// The fields of a reply a restore sorts by.
#[derive(serde::Deserialize)]
struct ReplyKey {
    command_id: uuid::Uuid,
    processed_at: chrono::DateTime<chrono::Utc>,
}

fn unreadable(topic: &str, partition: i32, offset: i64, error: &dyn std::fmt::Display) {
    tracing::warn!(topic, partition, offset, %error, "unreadable snapshot, folding the partition's events from the beginning");
}

fn report(events_topic: &str, partition: i32, count: &Counts, started: Instant) {
    tracing::info!(
        topic = %events_topic,
        partition,
        resumed = count.resumed,
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
    metrics::gauge!("command_restore_resumed", &labels).set(f64::from(u8::from(count.resumed)));
    metrics::gauge!("command_restore_snapshots", &labels).set(count.snapshots as f64);
    metrics::gauge!("command_restore_events_read", &labels).set(count.events_read as f64);
    metrics::gauge!("command_restore_events_folded", &labels).set(count.events_folded as f64);
    metrics::gauge!("command_restore_seconds", &labels).set(started.elapsed().as_secs_f64());
    metrics::histogram!("command_processor_restore_seconds")
        .record(started.elapsed().as_secs_f64());
}
