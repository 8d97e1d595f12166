//! How the command API hands commands to the processors and learns their
//! outcome: [`CommandBus`], implemented over Kafka by [`KafkaBus`].
//!
//! Dispatching produces the command to its aggregate's commands topic and
//! waits (bounded) for the processor's reply on the replies topic. A reply
//! that does not come in time is not a failure: the command is durably queued
//! and its outcome will show at `GET /commands/{id}`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events::command::{CommandEnvelope, Principal, Reply, Role};
use events::{AggregateType, KafkaConfig, telemetry};
use hashlink::LinkedHashMap;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

mod remembered;
use remembered::Remembered;

/// What became of a dispatched command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// The processor answered (accepted or rejected).
    Completed(Reply),
    /// The command is durably queued in Kafka but no answer came in time.
    Queued,
}

/// What is known about a command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStatus {
    /// Sent by this instance on behalf of `issued_by`; no reply yet.
    Pending {
        issued_by: Principal,
    },
    Completed(Reply),
    /// Never seen by this instance, or forgotten.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The command may or may not have reached Kafka; a retry with the same
    /// command id is safe (the processor deduplicates).
    #[error("the command log is unavailable: {0}")]
    Unavailable(String),
}

/// The command API's only way to reach the write model.
pub trait CommandBus: Send + Sync + 'static {
    /// Produces `command` and waits up to `wait` for its reply.
    fn dispatch(
        &self,
        command: CommandEnvelope,
        wait: Duration,
    ) -> impl Future<Output = Result<Dispatch, BusError>> + Send;

    fn status(&self, command_id: Uuid) -> CommandStatus;
}

/// A waiter is keyed by command id and fingerprint: a request that reuses an
/// Idempotency-Key for a different body must get its own (refusing) reply,
/// not the original one, and must not replace the original in the cache.
type WaitKey = (Uuid, String);

/// Replies this instance has seen recently, and the commands it still waits for.
#[derive(Default)]
struct Replies {
    waiters: HashMap<WaitKey, Vec<oneshot::Sender<Reply>>>,
    /// Commands sent by this instance whose reply has not arrived, with
    /// who sent them, oldest first.
    pending: LinkedHashMap<Uuid, Principal>,
    /// The first reply seen for each command id (later ones are duplicates or
    /// refusals of a reused key), oldest first.
    recent: LinkedHashMap<Uuid, Remembered>,
}

/// How many replies (and pending command ids) each command API instance
/// remembers for `GET /commands/{id}`.
const REMEMBERED: usize = 100_000;

impl Replies {
    /// Answers the requests waiting for `reply`, and remembers it for the
    /// status URL unless an internal service issued the command: the saga
    /// and the gateway send about twelve commands per order past this API,
    /// none with a status URL (their outcomes are in the saga view), and
    /// remembering them filled the bound with them (about 50 MiB).
    fn record(&mut self, reply: Reply) {
        let key = (reply.command_id, reply.fingerprint.clone());
        for waiter in self.waiters.remove(&key).unwrap_or_default() {
            drop(waiter.send(reply.clone()));
        }
        self.pending.remove(&reply.command_id);
        let internal = reply
            .issued_by
            .as_ref()
            .is_some_and(|issuer| issuer.role == Role::System);
        if !internal && !self.recent.contains_key(&reply.command_id) {
            self.recent.insert(reply.command_id, Remembered::new(reply));
            bound(&mut self.recent);
        }
    }

    fn sent(&mut self, command_id: Uuid, issued_by: Principal) {
        if !self.pending.contains_key(&command_id) {
            self.pending.insert(command_id, issued_by);
            bound(&mut self.pending);
        }
    }
}

/// Forgets the oldest entries past [`REMEMBERED`].
fn bound<V>(map: &mut LinkedHashMap<Uuid, V>) {
    while map.len() > REMEMBERED {
        map.pop_front();
    }
}

/// Where a command processor running in the same process hands the replies
/// of a transaction it has just committed, so a waiting request is answered
/// without waiting for the commit markers and the replies consumer's fetch.
/// The replies consumer still delivers every reply (the first one wins), so
/// a command decided by another instance's processor is answered as before.
#[derive(Clone, Default)]
pub struct ReplySink(Arc<Mutex<Replies>>);

impl std::fmt::Debug for ReplySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplySink")
    }
}

impl ReplySink {
    /// Hands over replies whose transaction is committed. Never call it
    /// before `commit_transaction` has succeeded: a 201 means committed.
    pub fn committed(&self, replies: impl IntoIterator<Item = Reply>) {
        let mut state = lock(&self.0);
        for reply in replies {
            state.record(reply);
        }
    }
}

/// [`CommandBus`] over Kafka.
pub struct KafkaBus {
    config: KafkaConfig,
    producer: FutureProducer,
    replies: Arc<Mutex<Replies>>,
}

impl KafkaBus {
    /// Connects, and starts following the replies topics from their current end.
    pub async fn start(
        config: KafkaConfig,
        shutdown: CancellationToken,
    ) -> Result<KafkaBus, KafkaError> {
        KafkaBus::with_sink(config, ReplySink::default(), shutdown).await
    }

    /// [`KafkaBus::start`], also answering from the replies handed to `sink`
    /// by the processor lanes of this process.
    pub async fn with_sink(
        config: KafkaConfig,
        sink: ReplySink,
        shutdown: CancellationToken,
    ) -> Result<KafkaBus, KafkaError> {
        let mut producer_config = config.producer();
        // Fail fast when Kafka is down: the caller gets a 503 and retries with
        // the same Idempotency-Key, which the processor deduplicates.
        producer_config.set("message.timeout.ms", "5000");
        let producer: FutureProducer = producer_config.create()?;
        config.ensure_topics(&config.all_topics()).await?;
        let consumer = follow_replies(&config).await?;
        let replies = sink.0;
        tokio::spawn(read_replies(consumer, replies.clone(), shutdown));
        Ok(KafkaBus {
            config,
            producer,
            replies,
        })
    }
}

/// A consumer assigned to every replies partition at its current end. The end
/// offsets are fetched before returning, so no reply produced afterwards is missed.
/// The partitions are the topics' own, from the broker: topics created before
/// `KAFKA_PARTITIONS` (or its default) changed keep their count.
async fn follow_replies(config: &KafkaConfig) -> Result<StreamConsumer, KafkaError> {
    // Assigned, never subscribed: the group id is required but no group is joined.
    let consumer: StreamConsumer = config.consumer("command-api-replies").create()?;
    let topics: Vec<String> = AggregateType::COMMANDED
        .into_iter()
        .map(|t| config.replies_topic(t))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut list = TopicPartitionList::new();
        for topic in &topics {
            for partition in partitions(&consumer, topic)? {
                let high = end_offset(&consumer, topic, partition)?;
                list.add_partition_offset(topic, partition, Offset::Offset(high))?;
            }
        }
        consumer.assign(&list)?;
        Ok(consumer)
    })
    .await
    .map_err(|_| KafkaError::Canceled)?
}

/// The partitions of `topic`, retried while a just-created topic is not in
/// the broker's metadata yet.
fn partitions(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>, KafkaError> {
    let mut attempts = 0;
    loop {
        let found = events::kafka::partitions_of(consumer, topic, Duration::from_secs(10))?;
        if !found.is_empty() || attempts >= 50 {
            return Ok(found);
        }
        attempts += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The partition's end, retried while a just-created topic has no leader yet.
fn end_offset(consumer: &StreamConsumer, topic: &str, partition: i32) -> Result<i64, KafkaError> {
    let mut attempts = 0;
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok((_, high)) => return Ok(high),
            Err(e) if attempts < 50 => {
                tracing::debug!(error = %e, topic, partition, "waiting for the partition leader");
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

async fn read_replies(
    consumer: StreamConsumer,
    replies: Arc<Mutex<Replies>>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => match message.payload().map(serde_json::from_slice::<Reply>) {
                Some(Ok(reply)) => {
                    record_age("command_reply_age_seconds", message.timestamp());
                    lock(&replies).record(reply)
                }
                _ => tracing::warn!(
                    topic = message.topic(),
                    offset = message.offset(),
                    "undecodable reply"
                ),
            },
            Err(e) => {
                tracing::warn!(error = %e, "reading replies failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Records how long ago a record was created (its producer's timestamp,
/// millisecond precision): one hop of a command's path in `/metrics`.
pub fn record_age(metric: &'static str, timestamp: rdkafka::Timestamp) {
    if let Some(created) = timestamp.to_millis() {
        let now = chrono::Utc::now().timestamp_millis();
        metrics::histogram!(metric).record((now - created).max(0) as f64 / 1000.0);
    }
}

fn lock(replies: &Mutex<Replies>) -> std::sync::MutexGuard<'_, Replies> {
    // A panic while holding this lock cannot leave the maps inconsistent in a
    // way that matters (worst case a reply is missing), so poisoning is ignored.
    replies
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The command API's share of a dispatch, in
/// `command_dispatch_phase_seconds{phase}`: `produce` until the command is
/// acknowledged by Kafka, `reply` from then until the reply (or the wait's end).
fn dispatch_phase(phase: &'static str, elapsed: Duration) {
    metrics::histogram!("command_dispatch_phase_seconds", "phase" => phase)
        .record(elapsed.as_secs_f64());
}

impl CommandBus for KafkaBus {
    async fn dispatch(
        &self,
        command: CommandEnvelope,
        wait: Duration,
    ) -> Result<Dispatch, BusError> {
        let started = Instant::now();
        let command_id = command.command_id;
        let topic = self.config.commands_topic(command.command.aggregate_type());
        let span = tracing::info_span!(
            target: telemetry::TARGET,
            "command produce",
            otel.name = %format_args!("{topic} publish"),
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = %topic,
            command.id = %command_id,
            command.name = command.command.command_type(),
        );
        let mut command = command;
        // The processor's decide span becomes a child of this one.
        command.traceparent = telemetry::context_of(&span)
            .map(|(parent, _)| parent)
            .or(command.traceparent);
        let headers = span.in_scope(|| {
            telemetry::kafka_headers(OwnedHeaders::new(), command.traceparent.as_deref())
        });
        let payload =
            serde_json::to_vec(&command).map_err(|e| BusError::Unavailable(e.to_string()))?;
        let key: WaitKey = (command_id, command.fingerprint.clone());
        // Register before producing: the reply may arrive before `send` returns.
        let (tx, rx) = oneshot::channel();
        {
            let mut replies = lock(&self.replies);
            if let Some(remembered) = replies.recent.get(&command_id)
                && remembered.has_fingerprint(&command.fingerprint)
            {
                return Ok(Dispatch::Completed(remembered.reply(command_id)));
            }
            replies.waiters.entry(key.clone()).or_default().push(tx);
        }
        let record = FutureRecord::to(&topic)
            .key(command.aggregate_id.as_str())
            .payload(&payload)
            .headers(headers);
        let sent = self
            .producer
            .send(record, Duration::from_secs(5))
            .instrument(span)
            .await;
        {
            let mut replies = lock(&self.replies);
            if let Err((e, _)) = sent {
                replies.waiters.remove(&key);
                return Err(BusError::Unavailable(e.to_string()));
            }
            replies.sent(command_id, command.issued_by.clone());
        }
        let acked = Instant::now();
        dispatch_phase("produce", acked - started);
        let outcome = tokio::time::timeout(wait, rx).await;
        dispatch_phase("reply", acked.elapsed());
        // A reply that comes later still lands in `recent` for the status URL;
        // the waiter itself is no longer needed.
        lock(&self.replies).waiters.remove(&key);
        match outcome {
            Ok(Ok(reply)) => Ok(Dispatch::Completed(reply)),
            _ => Ok(Dispatch::Queued),
        }
    }

    fn status(&self, command_id: Uuid) -> CommandStatus {
        let replies = lock(&self.replies);
        if let Some(remembered) = replies.recent.get(&command_id) {
            CommandStatus::Completed(remembered.reply(command_id))
        } else if let Some(issued_by) = replies.pending.get(&command_id) {
            CommandStatus::Pending {
                issued_by: issued_by.clone(),
            }
        } else {
            CommandStatus::Unknown
        }
    }
}

#[cfg(test)]
mod tests;
