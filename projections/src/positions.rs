//! Per-partition positions of a projection, kept in the same transaction as
//! the view rows they produced.
//!
//! Kafka's committed offsets are only a hint for where to start fetching;
//! they are written after the PostgreSQL commit, so they never run ahead of
//! the stored positions. A record below its partition's stored position was
//! already applied (by this or another instance) and is skipped. The position
//! rows are locked for the transaction, so two instances that briefly both
//! hold a partition during a rebalance apply each record once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::record::Record;

/// Locks the positions of the batch's partitions and keeps only the records
/// not applied yet.
pub async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    records: Vec<Record>,
) -> Result<Vec<Record>, sqlx::Error> {
    let mut partitions: Vec<(String, i32)> = records
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    partitions.sort();
    partitions.dedup();
    let (topics, numbers): (Vec<String>, Vec<i32>) = partitions.into_iter().unzip();
    sqlx::query(
        "INSERT INTO projection_positions (projection, topic, partition, next_offset)
         SELECT $1, t, p, 0 FROM UNNEST($2::text[], $3::int[]) AS u(t, p)
         ON CONFLICT DO NOTHING",
    )
    .bind(projection)
    .bind(&topics)
    .bind(&numbers)
    .execute(&mut **tx)
    .await?;
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, partition, next_offset FROM projection_positions
         WHERE projection = $1
           AND (topic, partition) IN (SELECT * FROM UNNEST($2::text[], $3::int[]))
         ORDER BY topic, partition
         FOR UPDATE",
    )
    .bind(projection)
    .bind(&topics)
    .bind(&numbers)
    .fetch_all(&mut **tx)
    .await?;
    let next: HashMap<(String, i32), i64> = rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
    Ok(records
        .into_iter()
        .filter(|r| {
            r.offset
                >= next
                    .get(&(r.topic.clone(), r.partition))
                    .copied()
                    .unwrap_or(0)
        })
        .collect())
}

/// The next offset of a partition and when its last record was appended.
type Reached = (i64, Option<DateTime<Utc>>);

/// Moves the positions past the given records, remembering when the broker
/// appended the last of them (for the lag in seconds).
pub async fn advance(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    records: &[Record],
) -> Result<(), sqlx::Error> {
    let mut next: HashMap<(&str, i32), Reached> = HashMap::new();
    for r in records {
        let entry = next
            .entry((r.topic.as_str(), r.partition))
            .or_insert((0, None));
        if r.offset + 1 > entry.0 {
            *entry = (r.offset + 1, r.appended_at);
        }
    }
    let mut topics = Vec::with_capacity(next.len());
    let mut numbers = Vec::with_capacity(next.len());
    let mut offsets = Vec::with_capacity(next.len());
    let mut appended = Vec::with_capacity(next.len());
    for ((topic, partition), (offset, at)) in next {
        topics.push(topic.to_owned());
        numbers.push(partition);
        offsets.push(offset);
        appended.push(at);
    }
    sqlx::query(
        "UPDATE projection_positions AS p
         SET next_offset = u.o, updated_at = now(),
             last_appended_at = COALESCE(u.a, p.last_appended_at)
         FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::timestamptz[]) AS u(t, n, o, a)
         WHERE p.projection = $1 AND p.topic = u.t AND p.partition = u.n",
    )
    .bind(projection)
    .bind(&topics)
    .bind(&numbers)
    .bind(&offsets)
    .bind(&appended)
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
