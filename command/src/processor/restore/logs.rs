//! What a restore checks the tables an earlier session left against: the
//! first record and the ends of a partition's events and replies.

use std::time::{Duration, Instant};

use events::KafkaConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::read::{END_WITHIN, TIMEOUT, consumer};
use crate::processor::ProcessorError;
use crate::processor::cold::Resume;
use crate::processor::snapshot::SNAPSHOT_LAG;

/// How far the events may have moved past a partition's tables (others
/// wrote while it was away) for them to be resumed: a restore from the
/// snapshots reads about as many events after their checkpoint.
const RESUME_WITHIN: i64 = SNAPSHOT_LAG;

/// A partition's logs as a restore starts: what it checks the tables an
/// earlier session left against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Log {
    /// The events partition's first record (offset, timestamp in ms).
    pub origin: Option<(i64, i64)>,
    events_end: i64,
    replies_end: i64,
}

impl Log {
    /// Whether tables that end at `resume` belong to this partition (the
    /// same first record; nothing they hold is past the ends) and are
    /// recent enough to resume from.
    pub fn resumes(&self, resume: &Resume) -> bool {
        resume.origin.is_some()
            && resume.origin == self.origin
            && resume.events_end <= self.events_end
            && self.events_end - resume.events_end <= RESUME_WITHIN
            && resume.replies_end.is_none_or(|end| end <= self.replies_end)
    }
}

/// The first record and the ends of a partition's events and replies.
pub(super) fn log(
    kafka: &KafkaConfig,
    events_topic: &str,
    replies_topic: &str,
    partition: i32,
) -> Result<Log, ProcessorError> {
    let consumer = consumer(kafka, events_topic)?;
    let (low, events_end) = consumer.fetch_watermarks(events_topic, partition, TIMEOUT)?;
    let (_, replies_end) = consumer.fetch_watermarks(replies_topic, partition, TIMEOUT)?;
    let mut log = Log {
        origin: None,
        events_end,
        replies_end,
    };
    if low >= events_end {
        return Ok(log);
    }
    let mut first = TopicPartitionList::new();
    first.add_partition_offset(events_topic, partition, Offset::Offset(low))?;
    consumer.assign(&first)?;
    let deadline = Instant::now() + END_WITHIN;
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            None if Instant::now() >= deadline => {
                return Err(ProcessorError::Restore(format!(
                    "{events_topic}/{partition}: no first record within {END_WITHIN:?}"
                )));
            }
            None => {}
            // Only aborted records: no first committed one yet.
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(log),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let timestamp = m.timestamp().to_millis().unwrap_or_default();
                log.origin = Some((m.offset(), timestamp));
                return Ok(log);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Log, RESUME_WITHIN, Resume};

    const ORIGIN: Option<(i64, i64)> = Some((0, 1_765_000_000_000));

    fn log(events_end: i64, replies_end: i64) -> Log {
        Log {
            origin: ORIGIN,
            events_end,
            replies_end,
        }
    }

    #[test]
    fn tables_resume_only_on_the_same_partition_and_not_far_behind() {
        let resume = Resume::new(ORIGIN, Some(500), 1_000, Some(900));
        assert!(log(1_000, 900).resumes(&resume), "nothing since");
        assert!(
            log(1_000 + RESUME_WITHIN, 5_000).resumes(&resume),
            "others wrote a little"
        );
        assert!(
            !log(1_001 + RESUME_WITHIN, 5_000).resumes(&resume),
            "too far behind: the snapshots are quicker"
        );
        assert!(
            !log(999, 900).resumes(&resume),
            "events the log does not hold: a topic made again"
        );
        assert!(
            !log(1_000, 899).resumes(&resume),
            "replies the log does not hold"
        );
        let recreated = Log {
            origin: Some((0, 1_765_000_000_001)),
            ..log(2_000, 2_000)
        };
        assert!(!recreated.resumes(&resume), "another first record");
        let unknown = Resume::new(None, None, 0, None);
        assert!(
            !log(0, 0).resumes(&unknown),
            "tables of an empty partition that never learned its first record"
        );
    }
}
