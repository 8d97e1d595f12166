//! Command processors: the single writer of each events partition.
//!
//! A processor runs several *lanes*. Each lane is a member of the consumer
//! group over the commands topics with its own transactional id, so each
//! holds its own subset of the partitions and fences its own zombie. When a
//! lane is assigned a partition it waits until the partition's previous
//! owner has no transaction open (its committed offsets read as stable),
//! then restores that partition's aggregates from their snapshots and the
//! events after them ([`restore`]); then it loops: poll a batch of commands,
//! decide each one against the partition's state ([`store`]: the hot
//! aggregates in memory, all of them on local disk), and in one Kafka
//! transaction produce the events, the replies and the changed aggregates'
//! new states ([`snapshot`]), and commit the command offsets with the
//! group's metadata (KIP-447), which fences a zombie that lost the partition.
//!
//! Lanes exist because a transaction is a chain of broker round trips that
//! leaves the processor idle: while one lane waits for its commit, the others
//! decide and produce, so transactions overlap instead of queueing.
//!
//! Each lane runs on its own OS thread because librdkafka's transaction calls
//! block. Any failure inside a transaction ends the lane's session: its
//! producer, consumer and state in memory are dropped and its partitions
//! taken up again exactly as after a crash (resumed from their files, or
//! restored from the log), so there is one recovery path and it is always
//! exercised.

mod cold;
mod consumer;
mod decide;
mod restore;
mod slot;
pub mod snapshot;
pub mod store;
mod txn;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use events::command::CommandEnvelope;
use events::{AggregateType, KafkaConfig, kafka, telemetry};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use consumer::RebalanceLog;
use store::{Decision, Limits, PartitionStore, StoreError};
use txn::{Deliveries, Phases, TxnProducer};

const TXN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than a transaction may stay open (its timeout plus the broker's
/// 10 s sweep for expired transactions).
const STABLE_WITHIN: Duration = Duration::from_secs(90);

/// Settings of one processor instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub kafka: KafkaConfig,
    /// Shared by every processor instance of a deployment.
    pub group_id: String,
    /// Stable per instance, so a restarted instance fences its predecessor;
    /// each lane appends its number.
    pub transactional_id: String,
    /// Lanes of this instance: group members whose transactions overlap.
    pub lanes: usize,
    /// Most commands decided in one transaction.
    pub max_batch: usize,
    /// How long a command id is remembered for deduplication.
    pub dedup_window: Duration,
    /// Most command ids remembered per partition.
    pub dedup_capacity: usize,
    /// Most aggregates per partition kept in memory.
    pub hot_aggregates: usize,
    /// Where the instance keeps its partitions' state on disk (a cache of
    /// the log, one file per partition, which a restart resumes from).
    pub state_dir: PathBuf,
    /// The command API of this process, handed each committed transaction's
    /// replies (see [`crate::bus::ReplySink`]).
    pub replies: Option<crate::bus::ReplySink>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("restoring state failed: {0}")]
    Restore(String),
    #[error("the consumer has no group metadata")]
    NoGroupMetadata,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("state directory {0}: {1}")]
    StateDir(PathBuf, std::io::Error),
    #[error(transparent)]
    Encode(#[from] events::message::EncodeError),
}

/// A running processor: its lanes.
pub struct Processor {
    threads: Vec<std::thread::JoinHandle<()>>,
    ready: Vec<Arc<AtomicBool>>,
}

impl Processor {
    /// True once every lane has joined the group and restored every
    /// partition it was assigned (possibly none), so commands are decided
    /// without waiting for a restore.
    pub fn is_ready(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let ready = self.ready.clone();
        move || ready.iter().all(|lane| lane.load(Ordering::Relaxed))
    }

    /// Waits for the lanes to finish (after `shutdown` was cancelled).
    pub fn join(self) {
        for thread in self.threads {
            drop(thread.join());
        }
    }
}

/// Starts the processor's lanes, each on its own thread; they run until `shutdown`.
pub fn spawn(config: ProcessorConfig, shutdown: CancellationToken) -> std::io::Result<Processor> {
    let mut processor = Processor {
        threads: Vec::new(),
        ready: Vec::new(),
    };
    // The instance's lanes keep their partitions' files in one folder: a
    // restarted instance's lanes are given its partitions afresh.
    let state = config.state_dir.join(&config.transactional_id);
    cold::sweep(&state)?;
    for lane in 0..config.lanes.max(1) {
        let ready = Arc::new(AtomicBool::new(false));
        let config = ProcessorConfig {
            transactional_id: format!("{}-{lane}", config.transactional_id),
            ..config.clone()
        };
        let (flag, shutdown, state) = (ready.clone(), shutdown.clone(), state.clone());
        let thread = std::thread::Builder::new()
            .name(format!("command-lane-{lane}"))
            .spawn(move || run(config, shutdown, flag, state))?;
        processor.threads.push(thread);
        processor.ready.push(ready);
    }
    Ok(processor)
}

fn run(
    config: ProcessorConfig,
    shutdown: CancellationToken,
    ready: Arc<AtomicBool>,
    state: PathBuf,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let started = Instant::now();
        let outcome = Session::start(&config, ready.clone(), &state)
            .and_then(|mut session| session.run(&shutdown));
        ready.store(false, Ordering::Relaxed);
        match outcome {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "command processor session failed, restarting");
                metrics::counter!("command_processor_restarts_total").increment(1);
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(100);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One life of a processor: a consumer, a transactional producer, and the
/// state of the partitions it owns.
struct Session<'a> {
    config: &'a ProcessorConfig,
    consumer: BaseConsumer<RebalanceLog>,
    producer: TxnProducer,
    topics: HashMap<String, AggregateType>,
    stores: HashMap<(AggregateType, i32), PartitionStore>,
    /// The folder of the instance's partition files.
    state: PathBuf,
    ready: Arc<AtomicBool>,
}

impl<'a> Session<'a> {
    fn start(
        config: &'a ProcessorConfig,
        ready: Arc<AtomicBool>,
        state: &Path,
    ) -> Result<Session<'a>, ProcessorError> {
        let producer: TxnProducer = config
            .kafka
            .transactional_producer(&config.transactional_id)
            .create_with_context(Deliveries::default())?;
        producer.init_transactions(TXN_TIMEOUT)?;
        let consumer = consumer::create(config)?;
        let topics: HashMap<String, AggregateType> = AggregateType::AGGREGATES
            .into_iter()
            .map(|t| (config.kafka.commands_topic(t), t))
            .collect();
        let names: Vec<&str> = topics.keys().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        Ok(Session {
            config,
            consumer,
            producer,
            topics,
            stores: HashMap::new(),
            state: state.to_owned(),
            ready,
        })
    }

    fn run(&mut self, shutdown: &CancellationToken) -> Result<(), ProcessorError> {
        while !shutdown.is_cancelled() {
            let batch = consumer::poll_batch(&self.consumer, self.config.max_batch)?;
            self.apply_rebalances()?;
            let batch: Vec<OwnedMessage> = batch
                .into_iter()
                .filter(|m| self.owns(m.topic(), m.partition()))
                .collect();
            if !batch.is_empty() {
                self.process(&batch)?;
            }
        }
        Ok(())
    }

    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.topics
            .get(topic)
            .is_some_and(|t| self.stores.contains_key(&(*t, partition)))
    }

    /// Restores newly assigned partitions (in parallel, one thread each)
    /// and forgets revoked ones.
    fn apply_rebalances(&mut self) -> Result<(), ProcessorError> {
        let changes = std::mem::take(
            &mut *self
                .consumer
                .context()
                .changes
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if changes.is_empty() {
            return Ok(());
        }
        let mut assigned: HashMap<AggregateType, Vec<i32>> = HashMap::new();
        let mut gained = TopicPartitionList::new();
        for change in changes {
            for (topic, partition) in change.partitions {
                let Some(&aggregate) = self.topics.get(&topic) else {
                    continue;
                };
                let wanted = assigned.entry(aggregate).or_default();
                self.stores.remove(&(aggregate, partition));
                if change.assigned {
                    wanted.push(partition);
                    gained.add_partition(&topic, partition);
                } else {
                    wanted.retain(|p| *p != partition);
                }
            }
        }
        // The partitions' previous owner may still have a transaction open
        // (a paused zombie, or a lane that lost them while committing) that
        // commits or aborts after this point, and a restore reads only up
        // to the last stable offset. That transaction holds the commands'
        // offsets together with the events, and a read_committed consumer
        // asks for stable offsets only (KIP-447), so once the gained
        // partitions' committed offsets can be read, it has ended and the
        // restore sees all it wrote. Without this wait a restore could end
        // before events whose commands are then skipped, and the next
        // command would reuse their sequence numbers.
        if gained.count() > 0 {
            self.consumer.committed_offsets(gained, STABLE_WITHIN)?;
        }
        let config = self.config;
        let limits = Limits {
            dedup_window: config.dedup_window,
            dedup_capacity: config.dedup_capacity,
            hot_aggregates: config.hot_aggregates,
        };
        let dir = self.state.as_path();
        let restored: Vec<_> = std::thread::scope(|scope| {
            // A thread per partition: each restores into a file of its own.
            let handles: Vec<_> = assigned
                .into_iter()
                .flat_map(|(aggregate, partitions)| {
                    partitions.into_iter().map(move |p| (aggregate, p))
                })
                .map(|(aggregate, partition)| {
                    scope.spawn(move || {
                        let store =
                            restore::restore(&config.kafka, aggregate, partition, limits, dir);
                        ((aggregate, partition), store)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        for joined in restored {
            let (key, store) =
                joined.map_err(|_| ProcessorError::Restore("a restore thread panicked".into()))?;
            self.stores.insert(key, store?);
        }
        metrics::gauge!("command_processor_partitions", "lane" => self.config.transactional_id.clone())
            .set(self.stores.len() as f64);
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Decides a batch and publishes it in one transaction.
    fn process(&mut self, batch: &[OwnedMessage]) -> Result<(), ProcessorError> {
        let started = Instant::now();
        let txn_span = txn::span(batch.len());
        let mut phases = Phases::start();
        self.producer.begin_transaction()?;
        phases.mark("begin");
        let mut offsets: HashMap<(&str, i32), i64> = HashMap::new();
        let mut produced = 0usize;
        let (mut touched, kafka) = (snapshot::Touched::default(), &self.config.kafka);
        let mut replies = Vec::new();
        for message in batch {
            let next = offsets
                .entry((message.topic(), message.partition()))
                .or_insert(0);
            *next = (*next).max(message.offset() + 1);
            let Some((aggregate, decision, span)) = self.decide(message)? else {
                continue;
            };
            touched.note(&self.producer, kafka, aggregate, message.partition());
            produced += decision.events.len();
            span.in_scope(|| self.publish(message.partition(), &decision))?;
            if self.config.replies.is_some() {
                replies.push(decision.reply);
            }
            if let Some((traceparent, _)) = telemetry::context_of(&span) {
                telemetry::link_to(&txn_span, Some(&traceparent));
            }
        }
        snapshot::publish(&self.producer, kafka, &touched, &mut self.stores)?;
        phases.mark("produce");
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        let metadata = self
            .consumer
            .group_metadata()
            .ok_or(ProcessorError::NoGroupMetadata)?;
        let result = self
            .producer
            .send_offsets_to_transaction(&list, &metadata, TXN_TIMEOUT)
            .inspect(|()| phases.mark("offsets"))
            .and_then(|()| txn::wait_acks(&self.producer, TXN_TIMEOUT))
            .inspect(|()| phases.mark("acks"))
            .and_then(|()| self.producer.commit_transaction(TXN_TIMEOUT))
            .inspect(|()| phases.mark("commit"));
        txn_span.record("events", produced);
        if let Err(e) = result {
            txn::failed(&txn_span, &e);
            // Best effort: the next session's init_transactions aborts it anyway.
            drop(self.producer.abort_transaction(TXN_TIMEOUT));
            return Err(e.into());
        }
        if let Some(sink) = &self.config.replies {
            sink.committed(replies);
        }
        // Only committed state reaches the disk.
        touched.commit(&self.producer, kafka, &mut self.stores)?;
        phases.mark("store");
        metrics::counter!("commands_processed_total").increment(batch.len() as u64);
        metrics::counter!("events_appended_total").increment(produced as u64);
        metrics::histogram!("command_batch_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn decide(
        &mut self,
        message: &OwnedMessage,
    ) -> Result<Option<(AggregateType, Decision, tracing::Span)>, StoreError> {
        let Some(&aggregate) = self.topics.get(message.topic()) else {
            return Ok(None);
        };
        let Some(store) = self.stores.get_mut(&(aggregate, message.partition())) else {
            return Ok(None);
        };
        match serde_json::from_slice::<CommandEnvelope>(message.payload().unwrap_or_default()) {
            Ok(envelope) => {
                let span = decide::span(message, &envelope);
                let decision = span.in_scope(|| store.handle(&envelope, Utc::now()))?;
                Ok(Some((aggregate, decision, span)))
            }
            Err(e) => {
                // Without a decodable envelope there is no command id to
                // answer; the record is skipped and counted.
                tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), error = %e, "undecodable command skipped");
                metrics::counter!("commands_malformed_total").increment(1);
                Ok(None)
            }
        }
    }

    /// Produces a decision's events (inside its decide span, whose context
    /// they carry) and reply to the command's partition of
    /// the events and replies topics (co-partitioned with the commands topic).
    fn publish(&self, partition: i32, decision: &Decision) -> Result<(), ProcessorError> {
        let aggregate = decision.reply.aggregate_type;
        let events_topic = self.config.kafka.events_topic(aggregate);
        for event in &decision.events {
            let record = BaseRecord::to(&events_topic)
                .partition(partition)
                .key(event.meta.aggregate_id.as_str())
                .payload(&event.payload)
                .headers(kafka::to_headers(&event.meta));
            self.send(record)?;
        }
        let replies_topic = self.config.kafka.replies_topic(aggregate);
        let reply = events::message::encode(&decision.reply)?;
        let record = BaseRecord::to(&replies_topic)
            .partition(partition)
            .key(decision.reply.aggregate_id.as_str())
            .payload(&reply);
        self.send(record)
    }

    fn send(&self, record: BaseRecord<'_, str, Vec<u8>>) -> Result<(), ProcessorError> {
        Ok(txn::send(&self.producer, record)?)
    }
}
