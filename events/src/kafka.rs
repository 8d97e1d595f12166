//! The Kafka mapping: topic names, client settings, and (in `headers`) the
//! CloudEvents headers that carry an [`EventMeta`](crate::EventMeta).
//!
//! Every producer and consumer in the project is configured here, so the traps
//! of librdkafka (partitioner, idempotence, read_committed, latency
//! defaults) are dealt with once.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::envelope::AggregateType;

mod headers;

pub use headers::{HeaderError, from_headers, to_headers};

/// Command-line flags (and environment variables) of every service that talks to Kafka.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long = "kafka-brokers",
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:19092"
    )]
    pub brokers: String,
    /// Prefix of every topic name (to run several deployments on one cluster).
    #[arg(long = "topic-prefix", env = "TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions of each commands and events topic when the service creates it.
    #[arg(
        long = "kafka-partitions",
        env = "KAFKA_PARTITIONS",
        default_value_t = PARTITIONS
    )]
    pub partitions: i32,
}

impl From<KafkaArgs> for KafkaConfig {
    fn from(args: KafkaArgs) -> KafkaConfig {
        KafkaConfig {
            brokers: args.brokers,
            topic_prefix: args.topic_prefix,
            partitions: args.partitions,
        }
    }
}

/// Partitions per topic unless configured: two, since a transaction and a
/// fetch cost the broker per partition they name, and two still let two
/// members of every group share the work (ARCHITECTURE.md, `kafka`).
pub const PARTITIONS: i32 = 2;

/// Where the brokers are and how this deployment names its topics.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    /// Prepended to every topic name; tests use a fresh prefix each.
    pub topic_prefix: String,
    /// Partitions of every commands and events topic (they are co-partitioned).
    pub partitions: i32,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            topic_prefix: String::new(),
            partitions: PARTITIONS,
        }
    }

    pub fn events_topic(&self, aggregate: AggregateType) -> String {
        format!("{}{}.events", self.topic_prefix, aggregate.as_str())
    }

    pub fn commands_topic(&self, aggregate: AggregateType) -> String {
        format!("{}{}.commands", self.topic_prefix, aggregate.as_str())
    }

    pub fn replies_topic(&self, aggregate: AggregateType) -> String {
        format!("{}{}.replies", self.topic_prefix, aggregate.as_str())
    }

    /// Every topic of the system: events of every stream, and commands and
    /// replies of the aggregates that take commands.
    pub fn all_topics(&self) -> Vec<String> {
        let events = AggregateType::ALL.into_iter().map(|t| self.events_topic(t));
        let commands = AggregateType::COMMANDED
            .into_iter()
            .flat_map(|t| [self.commands_topic(t), self.replies_topic(t)]);
        events.chain(commands).collect()
    }

    /// Common settings of every client.
    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.keepalive.enable", "true")
            .set("reconnect.backoff.max.ms", "1000");
        config
    }

    /// An idempotent producer with low-latency batching. Java's murmur2
    /// partitioner, so every Kafka tool agrees where a key lives.
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .set("batch.size", "262144")
            .set("max.in.flight.requests.per.connection", "5")
            // Records are small JSON and batches a few records (linger 2 ms);
            // lz4 framing then saves little, and the broker, which shares
            // these cores, would decompress every batch to validate it.
            .set("compression.type", "none")
            .set("message.timeout.ms", "30000");
        overrides(&mut config);
        config
    }

    /// A transactional producer's settings; `transactional_id` must be stable
    /// per processor instance so a restarted instance fences its zombie.
    pub fn transactional_producer(&self, transactional_id: &str) -> ClientConfig {
        let mut config = self.producer();
        // A new transaction right after a commit is refused with
        // CONCURRENT_TRANSACTIONS until the broker has written the previous
        // markers; librdkafka retries after retry.backoff.ms, whose 100 ms
        // default would cap a processor at a few transactions per second.
        config
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", "30000")
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100");
        overrides(&mut config);
        config
    }

    /// A consumer that sees only committed transactions and never commits
    /// offsets on its own: positions are stored next to the effects.
    pub fn consumer(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group_id)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            // A fetch waits on the broker until data arrives (a commit
            // marker completes a read_committed fetch at once), so the wait
            // bound costs no latency; a short one only makes every idle
            // consumer send a fetch every few milliseconds to a broker that
            // shares the machine's cores.
            .set("fetch.wait.max.ms", "100")
            .set("fetch.queue.backoff.ms", "5")
            // librdkafka prefetches up to 64 MiB per consumer, fetched up to
            // 1 MiB per partition: working off a backlog, the saga service
            // held about 105 MB of prefetched records in its two consumers.
            // A few MiB already hold several of the largest batches any
            // reader takes (1,000 records); the queue is overshot by at most
            // one fetch, so that is bounded too (BENCHMARKS.md, "Prefetch
            // bounded").
            .set("queued.max.messages.kbytes", "4096")
            .set("max.partition.fetch.bytes", "262144")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        overrides(&mut config);
        config
    }

    /// A [`consumer`](Self::consumer) whose offsets in Kafka are only a hint
    /// of where to start fetching (its positions live in PostgreSQL): the
    /// application stores them after each batch ([`crate::record::commit_hint`],
    /// no request) and librdkafka commits the latest stored ones once a
    /// second, instead of one offset commit, and one write to the broker's
    /// offsets log, per batch.
    pub fn hinting_consumer(&self, group_id: &str) -> ClientConfig {
        let mut config = self.consumer(group_id);
        config
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000");
        overrides(&mut config);
        config
    }

    /// A [`consumer`](Self::consumer) for a reader that applies what it reads
    /// in batches, one database transaction each (the projector): the broker
    /// holds each fetch until a megabyte has arrived or `wait` has passed,
    /// instead of answering at every commit marker. At a low rate the
    /// projector otherwise ran one PostgreSQL transaction per Kafka
    /// transaction it read (BENCHMARKS.md, "Projector fetches held, reply memory,
    /// and the cache race").
    pub fn batching_consumer(&self, group_id: &str, wait: Duration) -> ClientConfig {
        let mut config = self.consumer(group_id);
        config
            .set("fetch.min.bytes", "1048576")
            .set("fetch.wait.max.ms", wait.as_millis().to_string());
        overrides(&mut config);
        config
    }

    /// Creates the topics that do not exist yet; existing ones are left as they are.
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), KafkaError> {
        let specs: Vec<NewTopic> = topics
            .iter()
            .map(|name| {
                NewTopic::new(name, self.partitions, TopicReplication::Fixed(1))
                    .set("retention.ms", retention_ms(name))
                    .set("retention.bytes", "-1")
            })
            .collect();
        self.create_topics(&specs).await
    }

    /// Creates changelog topics that do not exist yet: compacted, with small
    /// segments and an eager cleaner, so a reader of a partition finds about
    /// one record per key rather than every version ever written.
    pub async fn ensure_compacted_topics(&self, topics: &[String]) -> Result<(), KafkaError> {
        let specs: Vec<NewTopic> = topics
            .iter()
            .map(|name| {
                NewTopic::new(name, self.partitions, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "compact")
                    .set("segment.ms", "60000")
                    .set("segment.bytes", "16777216")
                    .set("min.cleanable.dirty.ratio", "0.1")
            })
            .collect();
        self.create_topics(&specs).await
    }

    async fn create_topics(&self, specs: &[NewTopic<'_>]) -> Result<(), KafkaError> {
        let admin: AdminClient<DefaultClientContext> = self.base().create()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(specs, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                        tracing::error!(%topic, %code, "creating topic failed");
                    });
                }
            }
        }
        Ok(())
    }

    /// Deletes every topic whose name starts with this config's prefix (the
    /// clean-up of tests and of the benchmark); how many there were. A
    /// prefix shorter than three characters deletes nothing: it could name
    /// topics that are not the caller's.
    pub async fn delete_prefixed_topics(&self) -> Result<usize, KafkaError> {
        if self.topic_prefix.len() < 3 {
            return Ok(0);
        }
        let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(self.base().create()?);
        let (lookup, prefix) = (admin.clone(), self.topic_prefix.clone());
        // The metadata call blocks.
        let topics: Vec<String> = tokio::task::spawn_blocking(move || {
            let metadata = lookup
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))?;
            Ok::<_, KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .map(|t| t.name().to_owned())
                    .filter(|name| name.starts_with(&prefix))
                    .collect(),
            )
        })
        .await
        .map_err(|_| KafkaError::Canceled)??;
        if !topics.is_empty() {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            admin.delete_topics(&names, &AdminOptions::new()).await?;
        }
        Ok(topics.len())
    }

    /// Asks the cluster for its metadata: the readiness check of every service.
    pub async fn check(&self) -> Result<(), KafkaError> {
        let config = self.base();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            consumer
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|_| ())
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }
}

/// The partitions of `topic` as the broker reports them, none while the topic
/// does not exist. Topics keep the count they were created with, whatever
/// [`KafkaConfig::partitions`] says now, so whoever walks a topic's
/// partitions asks here. The call blocks.
pub fn partitions_of<C, X>(
    consumer: &X,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError>
where
    C: rdkafka::consumer::ConsumerContext + 'static,
    X: Consumer<C>,
{
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// librdkafka settings from `KAFKA_CLIENT_OVERRIDES` (`key=value,key=value`),
/// applied last to every producer and consumer: for measuring a setting
/// without a rebuild. A key the client type does not know is ignored by
/// librdkafka with a warning.
fn overrides(config: &mut ClientConfig) {
    let Ok(text) = std::env::var("KAFKA_CLIENT_OVERRIDES") else {
        return;
    };
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        if let Some((key, value)) = pair.split_once('=') {
            config.set(key.trim(), value.trim());
        }
    }
}

/// Events are the record and are kept forever. Commands and replies are
/// transport: a processor reads replies back only for its deduplication
/// window (a day), so a week leaves room for long outages.
fn retention_ms(topic: &str) -> &'static str {
    if topic.ends_with(".commands") || topic.ends_with(".replies") {
        "604800000"
    } else {
        "-1"
    }
}

#[cfg(test)]
mod tests;
