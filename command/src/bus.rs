//! How the command API hands commands to the processors and learns their
//! outcome: [`CommandBus`], implemented over Kafka by [`KafkaBus`].
//!
//! Dispatching produces the command to its aggregate's commands topic and
//! waits (bounded) for the processor's reply on the replies topic. A reply
//! that does not come in time is not a failure: the command is durably queued
//! and its outcome will show at `GET /commands/{id}`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::command::{CommandEnvelope, Reply};
use events::{AggregateType, KafkaConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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
    Pending,
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

/// Replies this instance has seen recently, and the commands it still waits for.
#[derive(Default)]
struct Replies {
    waiters: HashMap<Uuid, Vec<oneshot::Sender<Reply>>>,
    recent: HashMap<Uuid, Reply>,
    order: VecDeque<Uuid>,
}

/// How many recent replies each command API instance remembers for
/// `GET /commands/{id}`.
const RECENT_REPLIES: usize = 100_000;

impl Replies {
    fn record(&mut self, reply: Reply) {
        if let Some(waiters) = self.waiters.remove(&reply.command_id) {
            for waiter in waiters {
                drop(waiter.send(reply.clone()));
            }
        }
        if self
            .recent
            .insert(reply.command_id, reply.clone())
            .is_none()
        {
            self.order.push_back(reply.command_id);
        }
        while self.order.len() > RECENT_REPLIES {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
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
        let mut producer_config = config.producer();
        // Fail fast when Kafka is down: the caller gets a 503 and retries with
        // the same Idempotency-Key, which the processor deduplicates.
        producer_config.set("message.timeout.ms", "5000");
        let producer: FutureProducer = producer_config.create()?;
        let consumer = follow_replies(&config).await?;
        let replies = Arc::new(Mutex::new(Replies::default()));
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
async fn follow_replies(config: &KafkaConfig) -> Result<StreamConsumer, KafkaError> {
    let mut consumer_config = config.consumer("command-api-replies");
    consumer_config.remove("group.id");
    let consumer: StreamConsumer = consumer_config.create()?;
    let topics: Vec<String> = AggregateType::COMMANDED
        .into_iter()
        .map(|t| config.replies_topic(t))
        .collect();
    let partitions = config.partitions;
    tokio::task::spawn_blocking(move || {
        let mut list = TopicPartitionList::new();
        for topic in &topics {
            for partition in 0..partitions {
                let (_, high) =
                    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
                list.add_partition_offset(topic, partition, Offset::Offset(high))?;
            }
        }
        consumer.assign(&list)?;
        Ok(consumer)
    })
    .await
    .map_err(|_| KafkaError::Canceled)?
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
                Some(Ok(reply)) => lock(&replies).record(reply),
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

fn lock(replies: &Mutex<Replies>) -> std::sync::MutexGuard<'_, Replies> {
    // A panic while holding this lock cannot leave the maps inconsistent in a
    // way that matters (worst case a reply is missing), so poisoning is ignored.
    replies
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CommandBus for KafkaBus {
    async fn dispatch(
        &self,
        command: CommandEnvelope,
        wait: Duration,
    ) -> Result<Dispatch, BusError> {
        let command_id = command.command_id;
        let topic = self.config.commands_topic(command.command.aggregate_type());
        let payload =
            serde_json::to_vec(&command).map_err(|e| BusError::Unavailable(e.to_string()))?;
        // Register before producing: the reply may arrive before `send` returns.
        let (tx, rx) = oneshot::channel();
        {
            let mut replies = lock(&self.replies);
            if let Some(reply) = replies.recent.get(&command_id) {
                return Ok(Dispatch::Completed(reply.clone()));
            }
            replies.waiters.entry(command_id).or_default().push(tx);
        }
        let record = FutureRecord::to(&topic)
            .key(command.aggregate_id.as_str())
            .payload(&payload);
        if let Err((e, _)) = self.producer.send(record, Duration::from_secs(5)).await {
            lock(&self.replies).waiters.remove(&command_id);
            return Err(BusError::Unavailable(e.to_string()));
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(reply)) => Ok(Dispatch::Completed(reply)),
            _ => Ok(Dispatch::Queued),
        }
    }

    fn status(&self, command_id: Uuid) -> CommandStatus {
        let replies = lock(&self.replies);
        if let Some(reply) = replies.recent.get(&command_id) {
            CommandStatus::Completed(reply.clone())
        } else if replies.waiters.contains_key(&command_id) {
            CommandStatus::Pending
        } else {
            CommandStatus::Unknown
        }
    }
}
