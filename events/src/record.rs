//! A consumed Kafka record, detached from the consumer so a batch can be
//! retried against PostgreSQL without fetching it again, and the pieces
//! every consumer loop shares (the saga worker, the provider gateway, the
//! projector): take a batch, retry its effect until it is durable, commit
//! the offset hint.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Header, Headers};
use tokio_util::sync::CancellationToken;

use crate::EventMeta;
use crate::kafka::{self, HeaderError};

#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Option<CopiedHeaders>,
    pub payload: Option<Vec<u8>>,
    /// When the broker appended the record.
    pub appended_at: Option<DateTime<Utc>>,
}

impl Record {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Record {
        Record {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers: message.headers().map(CopiedHeaders::of),
            payload: message.payload().map(<[u8]>::to_vec),
            appended_at: message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
        }
    }

    /// The envelope metadata from the record's CloudEvents headers.
    pub fn meta(&self) -> Result<EventMeta, HeaderError> {
        match &self.headers {
            Some(headers) => kafka::from_headers(headers),
            None => Err(HeaderError::Missing("ce_id")),
        }
    }
}

/// A record's headers copied out of librdkafka into one buffer, read
/// through rdkafka's [`Headers`] like any other. Detaching them the
/// librdkafka way (`BorrowedHeaders::detach`) allocates each of a record's
/// fifteen or so headers on its own, and frees each again: a fifth of a
/// rebuild's CPU went to copying records out of the consumer and dropping
/// them.
#[derive(Debug, Clone)]
pub struct CopiedHeaders {
    /// Each header's key, then its value.
    bytes: Vec<u8>,
    /// Per header, where its key ends and where its value ends in `bytes`
    /// (`None`: no value), each starting where the one before ended.
    ends: Vec<(u32, Option<u32>)>,
}

impl CopiedHeaders {
    pub fn of<H: Headers>(headers: &H) -> CopiedHeaders {
        // An envelope's header is about 50 bytes: a name and an id or a time.
        let count = headers.count();
        let mut copied = CopiedHeaders {
            bytes: Vec::with_capacity(count * 64),
            ends: Vec::with_capacity(count),
        };
        for header in headers.iter() {
            copied.push(header.key, header.value);
        }
        copied
    }

    fn push(&mut self, key: &str, value: Option<&[u8]>) {
        self.bytes.extend_from_slice(key.as_bytes());
        let key_end = self.end();
        let value_end = value.map(|v| {
            self.bytes.extend_from_slice(v);
            self.end()
        });
        self.ends.push((key_end, value_end));
    }

    fn end(&self) -> u32 {
        u32::try_from(self.bytes.len()).expect("a Kafka record is smaller than 4 GiB")
    }
}

impl Headers for CopiedHeaders {
    fn count(&self) -> usize {
        self.ends.len()
    }

    fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>> {
        let (key_end, value_end) = *self.ends.get(idx)?;
        let start = match idx.checked_sub(1) {
            Some(before) => {
                let (key_end, value_end) = self.ends[before];
                value_end.unwrap_or(key_end)
            }
            None => 0,
        };
        let key = &self.bytes[start as usize..key_end as usize];
        Some(Header {
            // Copied from a `&str`.
            key: std::str::from_utf8(key).ok()?,
            value: value_end.map(|end| &self.bytes[key_end as usize..end as usize]),
        })
    }
}

/// Waits for one record, then takes whatever else is already buffered, up
/// to `max` records.
pub async fn next_batch<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    max: usize,
) -> Result<Vec<Record>, rdkafka::error::KafkaError> {
    use futures::FutureExt;
    let first = consumer.recv().await?;
    let mut records = vec![Record::from_message(&first)];
    drop(first);
    while records.len() < max {
        match consumer.recv().now_or_never() {
            Some(Ok(message)) => records.push(Record::from_message(&message)),
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(records)
}

/// The next batch ([`next_batch`]), or `None` once `shutdown` is cancelled.
/// A Kafka error is logged and followed by a 200 ms pause before the next
/// try, so a consumer loop only ever sees records.
pub async fn next_batch_or_wait<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    max: usize,
    shutdown: &CancellationToken,
) -> Option<Vec<Record>> {
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return None,
            // Only the wait for a first record is cancelled here, which loses nothing.
            batch = next_batch(consumer, max) => batch,
        };
        match batch {
            Ok(records) => return Some(records),
            Err(e) => {
                tracing::warn!(error = %e, "kafka consume failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Runs `attempt` until it succeeds, waiting 50 ms after the first failure
/// and twice as long after each next one, up to 5 s; every failure is
/// logged as `{what} failed, retrying`. `None` once `shutdown` is cancelled
/// during a wait. For a consumer loop's batch, which is retried, never
/// skipped: the loop must not move past a batch whose effect is not durable.
pub async fn retry_until<T, E, F, Fut>(
    shutdown: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        match attempt().await {
            Ok(done) => return Some(done),
            Err(e) => tracing::warn!(error = %e, "{what} failed, retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Stores the offsets after `records` for the next automatic commit of a
/// [`hinting_consumer`](crate::KafkaConfig::hinting_consumer). Consumers that
/// keep their positions in PostgreSQL use Kafka's offsets only as a hint of
/// where to start fetching, so a lost hint costs a re-read, nothing more.
pub fn commit_hint<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    records: &[Record],
) {
    use rdkafka::consumer::Consumer;
    use std::collections::HashMap;
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for r in records {
        let entry = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *entry = (*entry).max(r.offset + 1);
    }
    let mut list = rdkafka::TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        let offset = rdkafka::Offset::Offset(offset);
        if let Err(e) = list.add_partition_offset(topic, partition, offset) {
            tracing::debug!(error = %e, "building the offset hint failed");
            return;
        }
    }
    // A partition revoked since the batch was read refuses its offset; its
    // new owner hints for it.
    if let Err(e) = consumer.store_offsets(&list) {
        tracing::debug!(error = %e, "storing the offset hint failed");
    }
}

/// Counts a consumer group rebalance of `consumer` (the service's consumer
/// name) in `kafka_consumer_rebalances_total{consumer, kind}`; frequent ones
/// mean members keep joining and leaving (crashes, slow polls).
pub fn count_rebalance(consumer: &'static str, rebalance: &rdkafka::consumer::Rebalance<'_>) {
    let kind = match rebalance {
        rdkafka::consumer::Rebalance::Assign(_) => "assign",
        rdkafka::consumer::Rebalance::Revoke(_) => "revoke",
        rdkafka::consumer::Rebalance::Error(_) => "error",
    };
    metrics::counter!("kafka_consumer_rebalances_total", "consumer" => consumer, "kind" => kind)
        .increment(1);
}

/// A consumer context that only counts rebalances ([`count_rebalance`]).
pub struct CountRebalances(pub &'static str);

impl rdkafka::ClientContext for CountRebalances {}

impl rdkafka::consumer::ConsumerContext for CountRebalances {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        count_rebalance(self.0, rebalance);
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, Headers, OwnedHeaders};

    use super::CopiedHeaders;

    fn pairs<H: Headers>(headers: &H) -> Vec<(String, Option<Vec<u8>>)> {
        headers
            .iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn copied_headers_read_as_the_originals() {
        let original = [
            ("ce_id", Some("0193")),
            ("empty", Some("")),
            ("null", None),
            ("", Some("no key")),
            ("ce_id", Some("again")),
        ]
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: value.map(str::as_bytes),
            })
        });
        let copied = CopiedHeaders::of(&original);
        assert_eq!(copied.count(), 5);
        assert_eq!(pairs(&copied), pairs(&original));
        assert!(copied.try_get(5).is_none());
        assert!(copied.try_get(usize::MAX).is_none());
        assert_eq!(pairs(&CopiedHeaders::of(&OwnedHeaders::new())), vec![]);
    }
}
