//! Reads ranges of the log in batches: each partition from a start offset up
//! to (not including) an end offset, read_committed, without a consumer
//! group. A partition is done when a record at or past its end arrives, or
//! when the consumer's position has passed the end (the last offsets of a
//! transactional log are commit markers no consumer ever receives).

use std::collections::HashMap;
use std::time::Duration;

use events::KafkaConfig;
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::ReplayError;
use crate::record::Record;

/// How long to wait for a record before looking at the positions.
const IDLE: Duration = Duration::from_millis(200);
/// How long a partition may deliver nothing before the read fails.
const STALL: Duration = Duration::from_secs(60);

/// Records `start <= offset < end` of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub topic: String,
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn len(&self) -> u64 {
        u64::try_from(self.end - self.start).unwrap_or(0)
    }
}

pub struct Reader {
    consumer: StreamConsumer,
    /// The partitions not done yet, with where they end and where they are.
    open: HashMap<(String, i32), (i64, i64)>,
    last_progress: Instant,
}

impl Reader {
    pub fn open(kafka: &KafkaConfig, spans: &[Span]) -> Result<Reader, ReplayError> {
        // Every consumer's settings, the bounded prefetch included: a
        // rebuild was not slower with it (BENCHMARKS.md, "Prefetch bounded").
        let consumer: StreamConsumer = kafka.consumer("replay").create()?;
        let mut list = TopicPartitionList::new();
        let mut open = HashMap::new();
        for span in spans.iter().filter(|s| s.start < s.end) {
            list.add_partition_offset(&span.topic, span.partition, Offset::Offset(span.start))?;
            open.insert((span.topic.clone(), span.partition), (span.end, span.start));
        }
        consumer.assign(&list)?;
        Ok(Reader {
            consumer,
            open,
            last_progress: Instant::now(),
        })
    }

    /// Up to `max` records (each partition's in log order), or `None` once
    /// every partition is done.
    pub async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Record>>, ReplayError> {
        let mut records = Vec::with_capacity(max.min(100_000));
        // The positions are looked at when nothing is buffered (asking for
        // them locks every partition, too dear for each record): records
        // at or past an end close their partition on arrival.
        let mut look = true;
        loop {
            if look {
                self.close_passed();
            }
            if self.open.is_empty() {
                return Ok((!records.is_empty()).then_some(records));
            }
            if records.len() >= max {
                return Ok(Some(records));
            }
            let next = if records.is_empty() {
                tokio::time::timeout(IDLE, self.consumer.recv()).await.ok()
            } else {
                self.consumer.recv().now_or_never()
            };
            look = !matches!(next, Some(Ok(_)));
            match next {
                Some(Ok(message)) => self.take(Record::from_message(&message), &mut records),
                Some(Err(e)) => return Err(e.into()),
                None if records.is_empty() => self.check_stall()?,
                None => return Ok(Some(records)),
            }
        }
    }

    fn take(&mut self, record: Record, records: &mut Vec<Record>) {
        let key = (record.topic.clone(), record.partition);
        let Some((end, at)) = self.open.get_mut(&key) else {
            return;
        };
        self.last_progress = Instant::now();
        *at = record.offset + 1;
        let (offset, end) = (record.offset, *end);
        if offset < end {
            records.push(record);
        }
        if offset + 1 >= end {
            self.open.remove(&key);
        }
    }

    /// Closes the partitions whose position has passed their end.
    fn close_passed(&mut self) {
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for element in positions.elements() {
            let key = (element.topic().to_owned(), element.partition());
            if let (Offset::Offset(position), Some((end, _))) =
                (element.offset(), self.open.get(&key))
                && position >= *end
            {
                self.open.remove(&key);
            }
        }
    }

    fn check_stall(&self) -> Result<(), ReplayError> {
        if self.last_progress.elapsed() < STALL {
            return Ok(());
        }
        let ((topic, partition), (end, at)) = self
            .open
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), *v))
            .unwrap_or_default();
        Err(ReplayError::Stalled {
            topic,
            partition,
            offset: at,
            end,
        })
    }
}
