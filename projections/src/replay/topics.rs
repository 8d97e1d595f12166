//! What the brokers know about topics: partitions, watermarks, the offsets
//! of a time and when a log starts. librdkafka's calls block, so each runs
//! on a blocking thread with a short-lived consumer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use events::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One partition of a topic and the range of offsets it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub topic: String,
    pub partition: i32,
    /// The first offset still in the log (the low watermark).
    pub low: i64,
    /// The offset the next record will get (the high watermark).
    pub high: i64,
}

async fn blocking<T: Send + 'static>(
    kafka: &KafkaConfig,
    work: impl FnOnce(BaseConsumer) -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    let config = kafka.consumer("replay");
    tokio::task::spawn_blocking(move || work(config.create()?))
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

/// Every partition of `topics` with its watermarks; a missing topic has none.
pub async fn extents(kafka: &KafkaConfig, topics: &[String]) -> Result<Vec<Extent>, KafkaError> {
    let topics = topics.to_vec();
    blocking(kafka, move |consumer| {
        let mut extents = Vec::new();
        for topic in topics {
            for partition in events::kafka::partitions_of(&consumer, &topic, TIMEOUT)? {
                let (low, high) = consumer.fetch_watermarks(&topic, partition, TIMEOUT)?;
                extents.push(Extent {
                    topic: topic.clone(),
                    partition,
                    low,
                    high,
                });
            }
        }
        extents.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(extents)
    })
    .await
}

/// The first offset of each extent appended at or after `at` (its high
/// watermark when nothing is).
pub async fn offsets_at(
    kafka: &KafkaConfig,
    extents: &[Extent],
    at: DateTime<Utc>,
) -> Result<Vec<i64>, KafkaError> {
    let extents = extents.to_vec();
    blocking(kafka, move |consumer| {
        let mut list = TopicPartitionList::new();
        for e in &extents {
            list.add_partition_offset(
                &e.topic,
                e.partition,
                Offset::Offset(at.timestamp_millis()),
            )?;
        }
        let found = consumer.offsets_for_times(list, TIMEOUT)?;
        Ok(extents
            .iter()
            .map(|e| {
                match found
                    .find_partition(&e.topic, e.partition)
                    .map(|p| p.offset())
                {
                    Some(Offset::Offset(n)) => n,
                    _ => e.high,
                }
            })
            .collect())
    })
    .await
}

/// When the first record still in the log was appended, over all `extents`
/// (`None` when they are all empty).
pub async fn log_start(
    kafka: &KafkaConfig,
    extents: &[Extent],
) -> Result<Option<DateTime<Utc>>, KafkaError> {
    let extents: Vec<Extent> = extents.iter().filter(|e| e.high > e.low).cloned().collect();
    blocking(kafka, move |consumer| {
        let mut first: Option<DateTime<Utc>> = None;
        for e in extents {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&e.topic, e.partition, Offset::Offset(e.low))?;
            consumer.assign(&list)?;
            // Only committed records count; a partition holding nothing
            // else has no first record.
            let Some(message) = consumer.poll(TIMEOUT).transpose()? else {
                continue;
            };
            let at = message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis);
            first = match (first, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    })
    .await
}

/// The partition Kafka's default (murmur2) partitioner puts `key` in, as
/// every producer of this project does (`partitioner=murmur2_random`).
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    let hash = murmur2(key) & 0x7fff_ffff;
    hash % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() == 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // The cases of Kafka's own UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data), expected, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn partitions_are_never_negative() {
        for key in ["a", "b", "SKU-1", "0193aaaa-0000-7000-8000-000000000001"] {
            let p = partition_of(key.as_bytes(), 8);
            assert!((0..8).contains(&p));
        }
    }
}
