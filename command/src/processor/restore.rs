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

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use events::command::Reply;
use events::{AggregateType, KafkaConfig, kafka};
use rdkafka::{Message, Offset};

use super::ProcessorError;
use super::cold::StateFile;
use super::snapshot::{self, CHECKPOINT_KEY, Checkpoint};
use super::store::{Limits, PartitionStore, StoreError};

mod logs;
mod read;
mod sorted;

use logs::logs;
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

/// Reads the state of the given partitions of one aggregate type into
/// stores (their disk halves in their files in `dir`, resumed or emptied),
/// one consumer per topic for all of them. Blocking.
pub fn restore(
    kafka: &KafkaConfig,
    aggregate: AggregateType,
    partitions: &[i32],
    limits: Limits,
    dir: &Path,
) -> Result<HashMap<i32, PartitionStore>, ProcessorError> {
    let started = Instant::now();
    let events_topic = kafka.events_topic(aggregate);
    let replies_topic = kafka.replies_topic(aggregate);
    let name = |p: i32| format!("{events_topic}-{p}");
    let mut files = HashMap::new();
    for &p in partitions {
        let file = StateFile::open(dir, &name(p))
            .map_err(|e| ProcessorError::StateDir(dir.to_owned(), e))?;
        files.insert(p, file);
    }
    let open = |p: i32| PartitionStore::open(aggregate, limits, &files[&p], &name(p));
    let logs = logs(kafka, &events_topic, &replies_topic, partitions)?;
    let mut stores = HashMap::new();
    let mut counts: HashMap<i32, Counts> = HashMap::new();
    let mut fresh = Vec::new();
    for &p in partitions {
        let resumed = PartitionStore::reopen(aggregate, limits, &files[&p], &name(p))?
            .filter(|(_, resume)| logs.get(&p).is_some_and(|log| log.resumes(resume)));
        let store = match resumed {
            Some((store, _)) => store,
            None => {
                fresh.push(p);
                open(p)?
            }
        };
        counts.entry(p).or_default().resumed = store.resumed();
        stores.insert(p, store);
    }
    let unusable = read_snapshots(kafka, aggregate, &fresh, &mut stores, &mut counts, dir)?;
    for p in unusable {
        // An unreadable snapshot (a state type changed incompatibly): this
        // partition is folded from its first event instead, and snapshotted anew.
        stores.insert(p, open(p)?);
        counts.insert(p, Counts::default());
    }
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
        // A resumed store's outcomes hold the replies before this.
        after: partitions
            .iter()
            .filter_map(|p| Some((*p, stores.get(p)?.replies_end()?)))
            .collect(),
    };
    let mut sorter = Sorter::new(dir, &replies_topic)?;
    let mut replies_end: HashMap<i32, i64> = HashMap::new();
    read_to_end(kafka, &replies_topic, starts, |message| {
        replies_end.insert(message.partition(), message.offset() + 1);
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
    for (p, store) in stores.iter_mut() {
        let origin = logs.get(p).and_then(|log| log.origin);
        store.restored(origin, replies_end.get(p).copied());
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
    dir: &Path,
) -> Result<HashSet<i32>, ProcessorError> {
    let mut unusable = HashSet::new();
    if partitions.is_empty() {
        return Ok(unusable);
    }
    let topic = snapshot::topic(kafka, aggregate);
    let starts: Vec<(i32, Offset)> = partitions.iter().map(|p| (*p, Offset::Beginning)).collect();
    let mut sorter = Sorter::new(dir, &topic)?;
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
