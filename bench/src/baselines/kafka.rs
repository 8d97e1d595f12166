//! rdkafka with the project's own client settings
//! ([`events::KafkaConfig::producer`] and [`events::KafkaConfig::consumer`]),
//! moving records of a real `OrderPlaced`'s size and headers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::KafkaConfig;
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::fixtures;
use crate::load;
use crate::stats::{Measured, Recorder};

/// Records in flight while producing as fast as possible.
const MAX_IN_FLIGHT: usize = 20_000;

/// One event record: key, JSON payload, CloudEvents headers.
#[derive(Clone)]
pub struct Record {
    keys: Arc<Vec<String>>,
    payload: Arc<Vec<u8>>,
    headers: OwnedHeaders,
}

impl Record {
    pub fn order_placed() -> Record {
        let envelope = fixtures::order_placed();
        Record {
            keys: Arc::new(
                (0..4096)
                    .map(|_| uuid::Uuid::new_v4().to_string())
                    .collect(),
            ),
            payload: Arc::new(serde_json::to_vec(&envelope.payload).expect("serializable")),
            headers: events::kafka::to_headers(&envelope.meta),
        }
    }

    /// Key, payload and header bytes of one record.
    pub fn size(&self) -> usize {
        use rdkafka::message::Headers;
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum();
        self.keys[0].len() + self.payload.len() + headers
    }

    async fn send(&self, producer: &FutureProducer, topic: &str, i: u64) -> bool {
        let key = &self.keys[i as usize % self.keys.len()];
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(self.payload.as_slice())
            .headers(self.headers.clone());
        producer.send(record, Duration::from_secs(10)).await.is_ok()
    }
}

pub fn producer(kafka: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    kafka
        .producer()
        .create()
        .context("creating the baseline producer")
}

/// Produces `n` records as fast as the producer takes them: the produce rate,
/// and send-to-ack latencies under saturation.
pub async fn produce_max(kafka: &KafkaConfig, topic: &str, n: u64) -> anyhow::Result<Measured> {
    let producer = producer(kafka)?;
    let record = Record::order_placed();
    let recorder = Recorder::new();
    let started = Instant::now();
    let results = futures::stream::iter(0..n)
        .map(|i| {
            let (producer, record, recorder) = (&producer, &record, &recorder);
            async move {
                let sent = Instant::now();
                let ok = record.send(producer, topic, i).await;
                recorder.record(sent.elapsed());
                ok
            }
        })
        .buffer_unordered(MAX_IN_FLIGHT)
        .collect::<Vec<bool>>()
        .await;
    let ok = results.iter().filter(|ok| **ok).count() as u64;
    Ok(
        Measured::new(ok, n - ok, started.elapsed(), Some(&recorder.snapshot()))
            .with_note(format!("{} bytes per record", record.size())),
    )
}

/// Produces at a fixed rate (open loop): send-to-ack latency at that load.
pub async fn produce_paced(
    kafka: &KafkaConfig,
    topic: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let producer = Arc::new(producer(kafka)?);
    let record = Record::order_placed();
    let topic: Arc<str> = topic.into();
    Ok(
        load::open_loop(rate, duration, MAX_IN_FLIGHT, &[], move |i| {
            let (producer, record, topic) = (producer.clone(), record.clone(), topic.clone());
            async move { record.send(&producer, &topic, i).await }
        })
        .await,
    )
}

/// Reads `n` records of `topic` from the beginning with the project's
/// consumer settings (read_committed); timed from the first record.
pub async fn consume(kafka: &KafkaConfig, topic: &str, n: u64) -> anyhow::Result<Measured> {
    let config = kafka.consumer(&format!("bench-baseline-{}", uuid::Uuid::new_v4()));
    let (topic, partitions) = (topic.to_owned(), kafka.partitions);
    tokio::task::spawn_blocking(move || -> anyhow::Result<Measured> {
        let consumer: BaseConsumer = config.create().context("creating the consumer")?;
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition_offset(&topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&list)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let (mut count, mut bytes, mut first) = (0u64, 0usize, None);
        while count < n && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    first.get_or_insert_with(std::time::Instant::now);
                    bytes += message.payload_len();
                    count += 1;
                }
                Some(Err(e)) => anyhow::bail!("consuming {topic}: {e}"),
                None => {}
            }
        }
        let elapsed = first.map_or(Duration::ZERO, |t| t.elapsed());
        Ok(
            Measured::new(count, n - count, elapsed, None).with_note(format!(
                "{} payload bytes per record",
                bytes / count.max(1) as usize
            )),
        )
    })
    .await?
}
