//! Event-time watermarks: how far the worker has read its inputs.
//!
//! A deadline means the other side did not answer in time, never that the
//! worker had not yet read an answer waiting in the log. So the timer fires
//! a deadline only when it is at or below the watermark: the earliest of
//! - every answer partition's watermark: the time of the last record the
//!   worker applied from it, or, once the worker is caught up to the
//!   partition's end, the time it saw itself caught up (an idle partition
//!   keeps up with the clock). Where a partition ends comes from
//!   librdkafka's statistics, the only place rust-rdkafka exposes the last
//!   stable offset without a round trip to the broker;
//! - the oldest saga message still waiting in the outbox (a request not yet
//!   sent cannot have been answered).
//!
//! A partition nobody consumes (its worker died and the group has not
//! reassigned it yet) holds its watermark back, and with it every deadline:
//! stricter than per-saga precision, and simpler, since which partitions
//! carry a saga's answers depends on its SKUs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::statistics::Statistics;
use sqlx::PgPool;

use crate::Pace;
use crate::store::Tx;

/// How often librdkafka reports where each partition ends (its statistics).
pub const STATISTICS_INTERVAL_MS: &str = "100";

/// The worker consumer's context: keeps the latest view of how far the
/// consumer has delivered each partition, from librdkafka's statistics (the
/// last stable offset the broker reported, and the offset after the last
/// record handed to the application, transaction markers included).
#[derive(Default)]
pub struct Progress {
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// How long the worker was busy before it last waited for records.
    busy: chrono::Duration,
    latest: Option<Snapshot>,
}

struct Snapshot {
    /// No later than when librdkafka took the statistics.
    at: DateTime<Utc>,
    /// Per partition: its end (last stable offset) and whether the consumer
    /// has delivered everything before it.
    ends: HashMap<(String, i32), (i64, bool)>,
}

impl Progress {
    /// Statistics are served while the worker waits for records, so those
    /// taken while it was busy arrive late: the worker says how long it was
    /// busy, and a snapshot is dated back by that much.
    pub fn waiting_after(&self, busy: std::time::Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.busy = chrono::Duration::from_std(busy).unwrap_or(chrono::Duration::zero());
    }
}

impl ClientContext for Progress {
    fn stats(&self, statistics: Statistics) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let at = Utc::now() - state.busy;
        let mut ends = HashMap::new();
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                if partition < 0 || p.ls_offset < 0 {
                    continue;
                }
                let caught_up = p.app_offset >= p.ls_offset;
                ends.insert((topic.clone(), partition), (p.ls_offset, caught_up));
            }
        }
        state.latest = Some(Snapshot { at, ends });
    }
}

impl ConsumerContext for Progress {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        events::record::count_rebalance("sagas", rebalance);
    }
}

/// The end of each partition assigned to the worker, and whether the
/// consumer had delivered everything up to it, as of `at`.
#[derive(Debug, Default)]
pub struct Ends {
    at: Option<DateTime<Utc>>,
    topics: Vec<String>,
    partitions: Vec<i32>,
    highs: Vec<i64>,
    caught_up: Vec<bool>,
}

/// How far a watermark may lag the clock: a tenth of a nominal second,
/// within bounds that spare the database. It is also how long the worker
/// waits for records before it moves the watermarks of idle partitions.
pub fn step(pace: Pace) -> Duration {
    Duration::from_millis(u64::from(pace.millis_per_second / 10).clamp(50, 200))
}

/// The latest statistics, for the partitions assigned to the worker now.
pub fn observe(consumer: &StreamConsumer<Progress>) -> Ends {
    let Ok(assignment) = consumer.assignment() else {
        return Ends::default();
    };
    let progress = consumer.context();
    let state = progress.state.lock().unwrap_or_else(|p| p.into_inner());
    let Some(latest) = state.latest.as_ref() else {
        return Ends::default();
    };
    let mut ends = Ends {
        at: Some(latest.at),
        ..Ends::default()
    };
    for element in assignment.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let Some((high, caught_up)) = latest.ends.get(&(topic.to_owned(), partition)) else {
            continue;
        };
        ends.topics.push(topic.to_owned());
        ends.partitions.push(partition);
        ends.highs.push(*high);
        ends.caught_up.push(*caught_up);
    }
    ends
}

/// Moves the watermark of every partition the worker is caught up on (by
/// its delivery position, or by its stored position) to the time the ends
/// were observed. Call it in the transaction that applies what was
/// delivered before the observation, or when nothing is in flight.
///
/// A watermark moves only once it is `step` behind: a watermark may lag (a
/// deadline then fires that much later, never earlier), and rewriting every
/// partition's row in every batch cost the database thousands of updates a
/// second at a few orders a second.
pub async fn mark(tx: &mut Tx<'_>, ends: &Ends, step: Duration) -> Result<(), sqlx::Error> {
    let Some(at) = ends.at.filter(|_| !ends.topics.is_empty()) else {
        return Ok(());
    };
    let stale = at - chrono::Duration::from_std(step).unwrap_or(chrono::Duration::zero());
    // One round trip: a partition seen for the first time gets its row now
    // and its watermark with the next mark (the update does not see rows
    // inserted by the same statement).
    sqlx::query(
        "WITH new AS (
             INSERT INTO saga_positions (topic, partition, next_offset)
             SELECT t, p, 0 FROM UNNEST($1::text[], $2::int[]) AS u(t, p)
             ORDER BY 1, 2
             ON CONFLICT DO NOTHING
         )
         UPDATE saga_positions AS s SET watermark_at = GREATEST(s.watermark_at, $5)
         FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::bool[]) AS u(t, p, h, c)
         WHERE s.topic = u.t AND s.partition = u.p AND (u.c OR s.next_offset >= u.h)
           AND (s.watermark_at IS NULL OR s.watermark_at <= $6)",
    )
    .bind(&ends.topics)
    .bind(&ends.partitions)
    .bind(&ends.highs)
    .bind(&ends.caught_up)
    .bind(at)
    .bind(stale)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Paces the marks of one worker's batches: a watermark moves only once it
/// is a step behind anyway ([`mark`]), so a batch within a step of the
/// worker's last mark skips the statement. A watermark then lags by up to
/// two steps, and at a few orders a second most batches spare a round trip.
pub struct Marks {
    step: Duration,
    last: Option<Instant>,
}

impl Marks {
    pub fn new(pace: Pace) -> Marks {
        Marks {
            step: step(pace),
            last: None,
        }
    }

    /// The ends the next batch marks: none within a step of the last mark.
    pub fn due(&mut self, consumer: &StreamConsumer<Progress>) -> Ends {
        if self.last.is_some_and(|last| last.elapsed() < self.step) {
            return Ends::default();
        }
        self.last = Some(Instant::now());
        observe(consumer)
    }

    pub fn step(&self) -> Duration {
        self.step
    }
}

/// Marks the caught-up partitions in a transaction of its own (the worker
/// does so when no record arrived for a while).
pub async fn mark_idle(
    pool: &PgPool,
    consumer: &StreamConsumer<Progress>,
    step: Duration,
) -> Result<(), sqlx::Error> {
    let ends = observe(consumer);
    let mut tx = pool.begin().await?;
    mark(&mut tx, &ends, step).await?;
    tx.commit().await
}

/// The time up to which deadlines may fire (see the module docs); `None`
/// while some answer partition has never been read.
pub async fn current(
    tx: &mut Tx<'_>,
    answer_topics: &[String],
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let (unread, read, oldest_unsent): (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE watermark_at IS NULL), min(watermark_at),
                    (SELECT created_at FROM outbox_pending ORDER BY id LIMIT 1)
             FROM saga_positions WHERE topic = ANY($1)",
        )
        .bind(answer_topics)
        .fetch_one(&mut **tx)
        .await?;
    if unread > 0 {
        return Ok(None);
    }
    Ok(match (read, oldest_unsent) {
        (Some(read), Some(unsent)) => Some(read.min(unsent)),
        (read, _) => read,
    })
}
