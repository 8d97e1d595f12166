//! Per-partition positions of a projection, kept in the same transaction as
//! the view rows they produced.
//!
//! Kafka's committed offsets are only a hint for where to start fetching;
//! they are written after the PostgreSQL commit and the cache write, so they
//! never run ahead of the stored positions. A record below its partition's
//! stored position was already applied (by this or another instance) and is
//! skipped; only its cached document is written again (see `refresh`). The position
//! rows are locked for the transaction, so two instances that briefly both
//! hold a partition during a rebalance apply each record once.
//!
//! A batch touches positions twice, each time with one statement for every
//! view set of the batch: [`claim`] locks them (creating missing rows) and
//! reads which of the batch's stream keys are held back behind a dead
//! letter; [`advance`] stores the batch's dead letters and moves the
//! positions past it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::dead_letters::DeadLetter;
use crate::hold::{self, HeldKeys};
use crate::record::Record;

/// A partition of a projection: `(projection, topic, partition)`.
type Partition<'r> = (&'static str, &'r str, i32);

/// The positions of a batch's partitions, locked, and its held keys.
pub struct Claimed<'r> {
    next: HashMap<Partition<'r>, i64>,
    pub held: HeldKeys,
}

impl Claimed<'_> {
    /// True when `record` is at or past its partition's stored position.
    pub fn is_new(&self, projection: &'static str, record: &Record) -> bool {
        let key = (projection, record.topic.as_str(), record.partition);
        record.offset >= self.next.get(&key).copied().unwrap_or(0)
    }
}

/// One row of the claim statement: a locked position (with whether it moved
/// since the statement's snapshot) or a held key.
type ClaimRow = (
    String,
    String,
    Option<i32>,
    Option<i64>,
    Option<bool>,
    Option<String>,
);

/// Locks the positions of every partition `records` come from (creating
/// missing ones at 0), in one fixed order, and reads which of their stream
/// keys have a dead letter, all in one statement.
///
/// The dead letters are read in the statement's snapshot, taken before the
/// locks were granted. A dead letter is only ever stored in the transaction
/// that moves its partition's position, so when no position moved between
/// the snapshot and the lock, the snapshot saw every dead letter; when one
/// did (another instance held the partition until just now), the keys are
/// read again, after the lock.
pub async fn claim<'r>(
    tx: &mut Transaction<'_, Postgres>,
    records: &[(&'static str, &'r Record)],
) -> Result<Claimed<'r>, sqlx::Error> {
    let mut partitions: Vec<Partition<'r>> = records
        .iter()
        .map(|(p, r)| (*p, r.topic.as_str(), r.partition))
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    let candidates = hold::candidates(records);
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "WITH wanted AS (
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[]) AS w(projection, topic, partition)
         ), seen AS (
             SELECT p.projection, p.topic, p.partition, p.next_offset
             FROM projection_positions p JOIN wanted USING (projection, topic, partition)
         ), locked AS (
             INSERT INTO projection_positions (projection, topic, partition, next_offset)
             SELECT projection, topic, partition, 0 FROM wanted ORDER BY projection, topic, partition
             ON CONFLICT (projection, topic, partition)
             DO UPDATE SET next_offset = projection_positions.next_offset
             RETURNING projection, topic, partition, next_offset
         )
         SELECT l.projection, l.topic, l.partition, l.next_offset,
                l.next_offset IS DISTINCT FROM COALESCE(s.next_offset, 0), NULL::text
         FROM locked l LEFT JOIN seen s USING (projection, topic, partition)
         UNION ALL
         SELECT DISTINCT d.projection, d.topic, NULL::int, NULL::bigint, NULL::boolean, d.record_key
         FROM dead_letters d
         JOIN UNNEST($4::text[], $5::text[], $6::text[]) AS k(projection, topic, record_key)
           USING (projection, topic, record_key)",
    )
    .bind(partitions.iter().map(|p| p.0).collect::<Vec<_>>())
    .bind(partitions.iter().map(|p| p.1).collect::<Vec<_>>())
    .bind(partitions.iter().map(|p| p.2).collect::<Vec<_>>())
    .bind(&candidates.projections)
    .bind(&candidates.topics)
    .bind(&candidates.keys)
    .fetch_all(&mut **tx)
    .await?;
    let mut next = HashMap::with_capacity(partitions.len());
    let mut held = HashSet::new();
    let mut moved = false;
    for (projection, topic, partition, offset, changed, key) in rows {
        if let (Some(partition), Some(offset)) = (partition, offset) {
            moved |= changed.unwrap_or(true);
            if let Some(p) = partitions
                .iter()
                .find(|p| (p.0, p.1, p.2) == (projection.as_str(), topic.as_str(), partition))
            {
                next.insert(*p, offset);
            }
        } else if let Some(key) = key {
            held.insert((projection, topic, key));
        }
    }
    if moved {
        held = hold::held_keys(tx, &candidates).await?;
    }
    Ok(Claimed { next, held })
}

/// Where a batch leaves each partition it read (with the projection that
/// read it): the next offset, and when the broker appended the partition's
/// last record of the batch (for the lag in seconds).
#[derive(Debug)]
pub struct Moved(Vec<Reached>);

#[derive(Debug)]
struct Reached {
    projection: &'static str,
    topic: String,
    partition: i32,
    next_offset: i64,
    appended_at: Option<DateTime<Utc>>,
}

impl Moved {
    pub fn of(records: &[(&'static str, &Record)]) -> Moved {
        let mut next: HashMap<Partition<'_>, (i64, Option<DateTime<Utc>>)> = HashMap::new();
        for (projection, r) in records {
            let entry = next
                .entry((projection, r.topic.as_str(), r.partition))
                .or_insert((0, None));
            if r.offset + 1 > entry.0 {
                *entry = (r.offset + 1, r.appended_at);
            }
        }
        let mut moved: Vec<Reached> = next
            .into_iter()
            .map(
                |((projection, topic, partition), (next_offset, appended_at))| Reached {
                    projection,
                    topic: topic.to_owned(),
                    partition,
                    next_offset,
                    appended_at,
                },
            )
            .collect();
        moved.sort_unstable_by(|a, b| {
            (a.projection, &a.topic, a.partition).cmp(&(b.projection, &b.topic, b.partition))
        });
        Moved(moved)
    }
}

/// Stores `letters` and moves the positions as far as `moved` says; one
/// statement.
pub async fn advance(
    tx: &mut Transaction<'_, Postgres>,
    moved: &Moved,
    letters: &[DeadLetter],
) -> Result<(), sqlx::Error> {
    let positions = &moved.0;
    crate::dead_letters::log(letters);
    sqlx::query(
        "WITH letters AS (
             INSERT INTO dead_letters (projection, topic, partition, \"offset\", record_key, payload, error)
             SELECT * FROM UNNEST($6::text[], $7::text[], $8::int[], $9::bigint[], $10::text[],
                                  $11::bytea[], $12::text[])
             ON CONFLICT DO NOTHING
         )
         UPDATE projection_positions AS p
         SET next_offset = u.o, updated_at = now(),
             last_appended_at = COALESCE(u.a, p.last_appended_at)
         FROM UNNEST($1::text[], $2::text[], $3::int[], $4::bigint[], $5::timestamptz[])
              AS u(j, t, n, o, a)
         WHERE p.projection = u.j AND p.topic = u.t AND p.partition = u.n",
    )
    .bind(positions.iter().map(|p| p.projection).collect::<Vec<_>>())
    .bind(positions.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>())
    .bind(positions.iter().map(|p| p.partition).collect::<Vec<_>>())
    .bind(positions.iter().map(|p| p.next_offset).collect::<Vec<_>>())
    .bind(positions.iter().map(|p| p.appended_at).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.projection).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.topic.as_str()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.partition).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.offset).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.key.as_deref()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.payload.as_deref()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.error.as_str()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One stored position, for the lag report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Position {
    pub projection: String,
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    pub last_appended_at: Option<DateTime<Utc>>,
}

/// Every stored position.
pub async fn all(pool: &sqlx::PgPool) -> Result<Vec<Position>, sqlx::Error> {
    sqlx::query_as(
        "SELECT projection, topic, partition, next_offset, last_appended_at
         FROM projection_positions",
    )
    .fetch_all(pool)
    .await
}
