//! How far each projection is behind the log, in records and in seconds,
//! published as gauges (`projection_lag_events{projection,topic,partition}`,
//! `projection_lag_seconds{projection}`) and in `/health/ready`'s details.
//!
//! The stored positions are the truth about what is applied; the broker's
//! latest offset is where the log ends. A transaction's commit marker takes
//! an offset no consumer ever sees, so a caught-up partition would look one
//! record behind; when this instance's consumer has read up to that end,
//! the partition counts as caught up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Routes;
use crate::positions::{self, Position};

const EVERY: Duration = Duration::from_secs(2);
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag_events: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionLag {
    pub lag_events: i64,
    pub lag_seconds: f64,
    pub partitions: Vec<PartitionLag>,
}

/// The latest report, by projection name.
pub type Report = BTreeMap<&'static str, ProjectionLag>;

/// What the lag of one partition is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Where the log ends (the broker's high watermark).
    pub end: i64,
    /// The consumer's own position, when this instance holds the partition.
    pub read_to: Option<i64>,
}

/// The pure part: a projection's lag from its positions and the samples of
/// its partitions.
pub fn compute(
    topics: &[String],
    positions: &HashMap<(String, i32), Position>,
    samples: &HashMap<(String, i32), Sample>,
    now: DateTime<Utc>,
) -> ProjectionLag {
    let mut lag = ProjectionLag {
        lag_events: 0,
        lag_seconds: 0.0,
        partitions: Vec::new(),
    };
    let mut keys: Vec<&(String, i32)> = samples
        .keys()
        .filter(|(topic, _)| topics.contains(topic))
        .collect();
    keys.sort();
    for key in keys {
        let sample = samples[key];
        let stored = positions.get(key);
        let next = stored.map_or(0, |p| p.next_offset);
        let caught_up = sample.read_to.is_some_and(|read| read >= sample.end);
        let behind = if caught_up {
            0
        } else {
            (sample.end - next).max(0)
        };
        if behind > 0
            && let Some(at) = stored.and_then(|p| p.last_appended_at)
        {
            let seconds = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            lag.lag_seconds = lag.lag_seconds.max(seconds);
        }
        lag.lag_events += behind;
        lag.partitions.push(PartitionLag {
            topic: key.0.clone(),
            partition: key.1,
            lag_events: behind,
        });
    }
    lag
}

/// Refreshes `report` and the gauges every few seconds until `shutdown`.
pub async fn run(
    consumer: Arc<crate::consumer::Consumer>,
    pool: PgPool,
    routes: Routes,
    report: Arc<Mutex<Report>>,
    shutdown: CancellationToken,
) {
    loop {
        match measure(&consumer, &pool, &routes).await {
            Ok(fresh) => {
                publish(&fresh);
                if let Ok(mut slot) = report.lock() {
                    *slot = fresh;
                }
            }
            Err(e) => tracing::debug!(error = %e, "measuring the projection lag failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum MeasureError {
    #[error("reading positions failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("reading watermarks failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the watermark reader stopped")]
    Join(#[from] tokio::task::JoinError),
}

async fn measure(
    consumer: &Arc<crate::consumer::Consumer>,
    pool: &PgPool,
    routes: &Routes,
) -> Result<Report, MeasureError> {
    let positions: HashMap<(String, i32), Position> = positions::all(pool)
        .await?
        .into_iter()
        .map(|p| ((p.topic.clone(), p.partition), p))
        .collect();
    let topics = routes.topics();
    let reader = consumer.clone();
    // librdkafka's metadata, offset and position calls block. The partitions
    // are each topic's own, from the broker (topics created before the
    // configured count changed keep theirs); every partition's end comes
    // from one ListOffsets request (the latest offset is the one asked for
    // with timestamp -1), not two requests per partition.
    let samples = tokio::task::spawn_blocking(move || {
        let read_to = read_positions(&reader);
        let mut latest = TopicPartitionList::new();
        for topic in &topics {
            for partition in events::kafka::partitions_of(&*reader, topic, BROKER_TIMEOUT)? {
                latest.add_partition_offset(topic, partition, Offset::End)?;
            }
        }
        let ends = reader.offsets_for_times(latest, BROKER_TIMEOUT)?;
        let mut samples = HashMap::new();
        for element in ends.elements() {
            let (Offset::Offset(end), Ok(())) = (element.offset(), element.error()) else {
                continue;
            };
            let key = (element.topic().to_owned(), element.partition());
            let read_to = read_to.get(&key).copied();
            samples.insert(key, Sample { end, read_to });
        }
        Ok::<_, rdkafka::error::KafkaError>(samples)
    })
    .await??;
    let now = Utc::now();
    let mut report = Report::new();
    for (set, topics) in routes.view_sets() {
        let of_set: HashMap<(String, i32), Position> = positions
            .iter()
            .filter(|(_, p)| p.projection == set.projection())
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        report.insert(set.projection(), compute(&topics, &of_set, &samples, now));
    }
    Ok(report)
}

/// The consumer's position in each partition it holds.
fn read_positions(consumer: &crate::consumer::Consumer) -> HashMap<(String, i32), i64> {
    let Ok(list) = consumer.position() else {
        return HashMap::new();
    };
    list.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

fn publish(report: &Report) {
    for (projection, lag) in report {
        metrics::gauge!("projection_lag_seconds", "projection" => *projection).set(lag.lag_seconds);
        for p in &lag.partitions {
            metrics::gauge!(
                "projection_lag_events",
                "projection" => *projection,
                "topic" => p.topic.clone(),
                "partition" => p.partition.to_string()
            )
            .set(p.lag_events as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::testing::at;

    fn position(topic: &str, next_offset: i64, seconds: u64) -> ((String, i32), Position) {
        let position = Position {
            projection: "orders".into(),
            topic: topic.into(),
            partition: 0,
            next_offset,
            last_appended_at: Some(at(seconds)),
        };
        ((topic.into(), 0), position)
    }

    fn sample(topic: &str, end: i64, read_to: Option<i64>) -> ((String, i32), Sample) {
        ((topic.into(), 0), Sample { end, read_to })
    }

    #[test]
    fn lag_counts_records_behind_and_the_age_of_the_last_applied_one() {
        let topics = vec!["a".to_owned(), "b".to_owned()];
        let positions = HashMap::from([position("a", 10, 100), position("b", 5, 90)]);
        let samples = HashMap::from([
            sample("a", 15, None),
            sample("b", 8, Some(6)),
            sample("other", 99, None),
        ]);
        let lag = compute(&topics, &positions, &samples, at(130));
        assert_eq!(lag.lag_events, 8);
        assert_eq!(lag.lag_seconds, 40.0);
        assert_eq!(lag.partitions.len(), 2);
    }

    #[test]
    fn a_partition_read_to_its_end_is_caught_up_despite_commit_markers() {
        let topics = vec!["a".to_owned()];
        let positions = HashMap::from([position("a", 10, 100)]);
        let samples = HashMap::from([sample("a", 11, Some(11))]);
        let lag = compute(&topics, &positions, &samples, at(500));
        assert_eq!((lag.lag_events, lag.lag_seconds), (0, 0.0));
    }
}
