//! The projector loop: fetch a batch, apply it and its positions in one
//! PostgreSQL transaction, hand its documents to the cache refresher, then
//! tell Kafka how far we got (a hint only).
//!
//! Most batches commit asynchronously (`synchronous_commit = off`): rows and
//! positions commit together, so a commit PostgreSQL loses in a crash is
//! lost whole and simply applied again from Kafka. That only holds while
//! Kafka's committed offset (where a restarted consumer fetches from) is not
//! past what PostgreSQL holds durably, so the offset hint is taken only
//! after a synchronous commit, which flushes every commit before it too; one
//! batch a second is synchronous. The refresher commits that hint once the
//! batch's documents are in the cache (see `refresh`), so the hint is not
//! past what the cache holds either.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use events::record;
use events::record::CountRebalances;
use events::{KafkaConfig, telemetry};
use futures::future;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dispatch::{self, Applied, Mode, Routes};
use crate::pause::BatchGuard;
use crate::record::Record;

/// The projector's consumer, counting its group's rebalances.
pub type Consumer = StreamConsumer<CountRebalances>;
use crate::refresh::Refresher;
use crate::views::recent_timelines::{self, RecentTimelines};

/// The channel every batch transaction notifies (delivered at its commit,
/// dropped with a rollback): the query API's reads that wait for a
/// consistency token listen on it and check their view once per batch,
/// instead of polling PostgreSQL while they wait.
pub const PROGRESS_CHANNEL: &str = "views_progress";

/// Records per batch when caught up: a batch takes what is buffered, so a
/// projector that keeps up applies small batches with little delay.
const MIN_BATCH: usize = 1000;
/// Records per batch while far behind (each full batch doubles the next).
const MAX_BATCH: usize = 5000;
/// How long the broker may hold a fetch to gather a larger batch: at ten
/// orders a second this cut the projector's PostgreSQL transactions by
/// three quarters, and it adds at most this much to the lag from a commit
/// to a visible view.
const FETCH_WAIT: Duration = Duration::from_millis(25);
/// How often a batch commits synchronously, making the earlier ones durable
/// and letting the Kafka offset hint move.
const DURABLE_EVERY: Duration = Duration::from_secs(1);
/// A batch whose newest record is older than this is applied in
/// [`Mode::CatchUp`]: the projector is catching up (after an outage, or a
/// new one), and the order documents the batch would build are left to
/// PostgreSQL. Far above the lag of a projector that keeps up (a second at
/// p99 on a saturated machine), so a burst never reaches it.
const CATCH_UP_AGE: Duration = Duration::from_secs(10);
/// A [`Mode::CatchUp`] batch is applied as this many transactions at once,
/// each over its own partitions (see [`parts`]).
const CATCH_UP_PARTS: i32 = 2;

pub fn subscribe(
    kafka: &KafkaConfig,
    group_id: &str,
    topics: &[String],
) -> Result<Consumer, KafkaError> {
    let consumer: Consumer = kafka
        .batching_consumer(group_id, FETCH_WAIT)
        .create_with_context(CountRebalances("projections"))?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// Runs until `shutdown`; transient PostgreSQL or Kafka failures are retried,
/// never skipped. After each commit the batch's documents go to the cache.
pub async fn run(
    consumer: std::sync::Arc<Consumer>,
    pool: PgPool,
    routes: Routes,
    refresher: Refresher,
    shutdown: CancellationToken,
) {
    let mut hints = Hints::default();
    let mut last_durable = Instant::now();
    let mut max = MIN_BATCH;
    let recent = RecentTimelines::new(recent_timelines::CAPACITY);
    loop {
        let fetching = Instant::now();
        let Some(mut records) = record::next_batch_or_wait(&consumer, max, &shutdown).await else {
            return;
        };
        phase("fetch", fetching);
        let oldest = records.iter().filter_map(|r| r.appended_at).min();
        record_age("fetched", oldest);
        let mode = mode_for(&records);
        if mode == Mode::CatchUp {
            // Each part's records side by side, each partition's in log order.
            records.sort_by_key(part_of);
        }
        let started = Instant::now();
        max = if records.len() >= max {
            (max * 2).min(MAX_BATCH)
        } else {
            MIN_BATCH
        };
        let durable = last_durable.elapsed() >= DURABLE_EVERY;
        let generation = refresher.generation();
        let applied = record::retry_until(&shutdown, "applying a batch", || {
            apply(&pool, &routes, &records, mode, durable, &recent)
        });
        let Some((mut applied, guard)) = applied.await else {
            return;
        };
        record_age("committed", oldest);
        phase("apply", started);
        hints.extend(&records);
        let due = if durable {
            last_durable = Instant::now();
            std::mem::take(&mut hints)
        } else {
            Hints::default()
        };
        applied.fresh.generation = generation;
        applied.fresh.oldest = oldest;
        let handed = Instant::now();
        refresher.refresh(applied.fresh, due, guard).await;
        phase("handoff", handed);
    }
}

/// Time a batch spent in one phase: `fetch` (from asking for records to
/// holding the batch, idle waits for new records included), `apply` (from
/// its records in hand to its commit, retries included), `handoff` (waiting
/// for room in the cache refresher's queue) and, in the refresher, `cache`
/// (writing Redis).
pub(crate) fn phase(phase: &'static str, since: Instant) {
    metrics::histogram!("projection_batch_phase_seconds", "phase" => phase)
        .record(since.elapsed().as_secs_f64());
}

/// How old a batch's oldest record was (from its append to the log) when
/// the batch was `fetched`, `committed` to PostgreSQL and, in the
/// refresher, `cached`: where the lag from a commit to a visible view goes.
pub(crate) fn record_age(at: &'static str, oldest: Option<DateTime<Utc>>) {
    if let Some(oldest) = oldest {
        let age = (Utc::now() - oldest).num_microseconds().unwrap_or(0).max(0);
        metrics::histogram!("projection_record_age_seconds", "at" => at).record(age as f64 / 1e6);
    }
}

/// [`Mode::CatchUp`] when every record of the batch is older than
/// [`CATCH_UP_AGE`], else [`Mode::Live`].
fn mode_for(records: &[Record]) -> Mode {
    let newest = records.iter().filter_map(|r| r.appended_at).max();
    let behind = newest.is_some_and(|newest| {
        (Utc::now() - newest)
            .to_std()
            .is_ok_and(|age| age > CATCH_UP_AGE)
    });
    if behind { Mode::CatchUp } else { Mode::Live }
}

/// The part of a catch-up batch a record is applied in: its partition's.
fn part_of(record: &Record) -> i32 {
    record.partition.rem_euclid(CATCH_UP_PARTS)
}

/// The transactions `records` are applied in: one, or in [`Mode::CatchUp`]
/// one per part of the partitions (`records` sorted by [`part_of`]), so
/// PostgreSQL works on one while the projector folds another.
///
/// Parts never write the same row but the sales buckets: a view row is
/// written only by the records of its own stream and key, which a topic
/// keeps in one partition, and each part claims and moves its own
/// partitions' positions. A catch-up batch reads only the rows of the
/// streams it writes, so no part reads what another is changing. A live
/// batch reads every stream of its orders to build their documents, which
/// holds only while every topic has as many partitions (the topics are
/// co-partitioned, see `KafkaConfig::partitions`, but a topic keeps the
/// count it was created with), so it stays whole; a key held back in one
/// stream holds its other streams' records only under the same condition
/// (see `hold`). The sales buckets are added to last, so a part waits there
/// for the other's commit, and in one order (see `sales::store`), so the
/// parts cannot deadlock.
fn parts(records: &[Record], mode: Mode) -> Vec<&[Record]> {
    match mode {
        Mode::CatchUp => records.chunk_by(|a, b| part_of(a) == part_of(b)).collect(),
        Mode::Live | Mode::Rebuild => vec![records],
    }
}

async fn apply(
    pool: &PgPool,
    routes: &Routes,
    records: &[Record],
    mode: Mode,
    durable: bool,
    recent: &RecentTimelines,
) -> Result<(Applied, BatchGuard), sqlx::Error> {
    // Generic plans: a batch's statements are the same key lookups and
    // upserts every time, planned once per connection (and again after an
    // analysis) rather than for each execution's arrays, whose custom plans
    // also chose sequential scans while a table was young (BENCHMARKS.md,
    // "Generic plans for the projector's batches").
    let begin = if durable {
        "BEGIN"
    } else {
        "BEGIN; SET LOCAL synchronous_commit = off"
    };
    let begin = format!(
        "{begin}; SET LOCAL plan_cache_mode = force_generic_plan; NOTIFY {PROGRESS_CHANNEL}"
    );
    // The batch's own transactions open while the pause lock is taken; they
    // read and write nothing before the lock is held.
    let (batch, spans) = spans(records);
    let parts = parts(records, mode);
    let (guard, txs) = tokio::join!(
        BatchGuard::enter(pool),
        future::try_join_all(parts.iter().map(|_| pool.begin_with(begin.clone())))
    );
    let (guard, txs) = (guard?, txs?);
    let applied =
        future::try_join_all(txs.into_iter().zip(parts).map(|(mut tx, part)| async move {
            let applied = dispatch::apply_batch(&mut tx, routes, part, mode, Some(recent)).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(applied)
        }))
        .instrument(batch)
        .await?;
    drop(spans);
    let applied = applied.into_iter().fold(Applied::default(), Applied::merge);
    let label = if mode == Mode::CatchUp {
        "catch_up"
    } else {
        "live"
    };
    metrics::counter!("projection_batches_total", "mode" => label).increment(1);
    for (set, count) in &applied.counts {
        metrics::counter!("projection_events_applied_total", "projection" => set.projection())
            .increment(*count as u64);
    }
    Ok((applied, guard))
}

/// The span of a batch, linked to the records it applies (of many traces),
/// and a span per record in the record's own trace, linked back to the
/// batch, so each order's trace shows when its events reached the views.
fn spans(records: &[Record]) -> (tracing::Span, Vec<tracing::Span>) {
    let batch = tracing::info_span!(
        target: telemetry::TARGET,
        "projector batch",
        otel.name = "projector batch",
        records = records.len(),
    );
    if batch.is_disabled() {
        return (batch, Vec::new());
    }
    let batch_context = telemetry::context_of(&batch).map(|(parent, _)| parent);
    let spans = records
        .iter()
        .map(|record| {
            let event_type = record
                .headers
                .as_ref()
                .and_then(|h| events::kafka::from_headers(h).ok())
                .map(|meta| meta.event_type)
                .unwrap_or_default();
            let span = tracing::info_span!(
                target: telemetry::TARGET,
                "projector apply",
                otel.name = %format_args!("project {event_type}"),
                otel.kind = "consumer",
                messaging.destination.name = %record.topic,
                messaging.kafka.offset = record.offset,
            );
            telemetry::continue_from_kafka(&span, record.headers.as_ref(), None);
            telemetry::link_to(&span, batch_context.as_deref());
            if let Some((parent, _)) = telemetry::context_of(&span) {
                telemetry::link_to(&batch, Some(&parent));
            }
            span
        })
        .collect();
    (batch, spans)
}

/// The next offset of every partition applied since the last hint, by topic.
#[derive(Debug, Default)]
pub struct Hints(HashMap<String, HashMap<i32, i64>>);

impl Hints {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes in `other`, keeping the further offset of each partition.
    pub fn merge(&mut self, other: Hints) {
        for (topic, partitions) in other.0 {
            let mine = self.0.entry(topic).or_default();
            for (partition, next) in partitions {
                let held = mine.entry(partition).or_insert(next);
                *held = (*held).max(next);
            }
        }
    }

    fn extend(&mut self, records: &[Record]) {
        for r in records {
            let partitions = match self.0.get_mut(r.topic.as_str()) {
                Some(partitions) => partitions,
                None => self.0.entry(r.topic.clone()).or_default(),
            };
            let next = partitions.entry(r.partition).or_insert(0);
            *next = (*next).max(r.offset + 1);
        }
    }

    /// Commits the offsets to Kafka asynchronously; a lost hint costs a
    /// re-read on restart, nothing more.
    pub fn commit(self, consumer: &Consumer) {
        let mut list = TopicPartitionList::new();
        for (topic, partitions) in self.0 {
            for (partition, offset) in partitions {
                if let Err(e) = list.add_partition_offset(&topic, partition, Offset::Offset(offset))
                {
                    tracing::debug!(error = %e, "building the offset hint failed");
                    return;
                }
            }
        }
        if list.count() > 0
            && let Err(e) = consumer.commit(&list, CommitMode::Async)
        {
            tracing::debug!(error = %e, "committing the offset hint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, partition: i32, offset: i64) -> Record {
        Record {
            topic: topic.into(),
            partition,
            offset,
            key: None,
            headers: None,
            payload: None,
            appended_at: None,
        }
    }

    #[test]
    fn a_batch_is_caught_up_unless_even_its_newest_record_is_old() {
        let aged = |seconds: i64| Record {
            appended_at: Some(Utc::now() - chrono::Duration::seconds(seconds)),
            ..record("a", 0, 0)
        };
        assert_eq!(mode_for(&[aged(60), aged(30)]), Mode::CatchUp);
        assert_eq!(
            mode_for(&[aged(60), aged(1)]),
            Mode::Live,
            "one fresh record"
        );
        assert_eq!(mode_for(&[aged(0)]), Mode::Live);
        assert_eq!(mode_for(&[record("a", 0, 0)]), Mode::Live, "no time");
    }

    #[test]
    fn hints_keep_the_next_offset_of_each_partition() {
        let mut hints = Hints::default();
        hints.extend(&[record("a", 0, 4), record("a", 1, 2), record("a", 0, 7)]);
        hints.extend(&[record("b", 0, 1), record("a", 0, 5)]);
        assert_eq!(hints.0["a"], HashMap::from([(0, 8), (1, 3)]));
        assert_eq!(hints.0["b"], HashMap::from([(0, 2)]));
        let mut later = Hints::default();
        later.extend(&[record("a", 0, 6), record("a", 1, 9), record("c", 3, 0)]);
        hints.merge(later);
        assert_eq!(hints.0["a"], HashMap::from([(0, 8), (1, 10)]));
        assert_eq!(hints.0["c"], HashMap::from([(3, 1)]));
    }
}
