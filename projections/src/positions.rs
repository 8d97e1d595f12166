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

/// Moves the positions past the given records.
pub async fn advance(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    records: &[Record],
) -> Result<(), sqlx::Error> {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for r in records {
        let entry = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *entry = (*entry).max(r.offset + 1);
    }
    let mut topics = Vec::with_capacity(next.len());
    let mut numbers = Vec::with_capacity(next.len());
    let mut offsets = Vec::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        topics.push(topic.to_owned());
        numbers.push(partition);
        offsets.push(offset);
    }
    sqlx::query(
        "UPDATE projection_positions AS p
         SET next_offset = u.o, updated_at = now()
         FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS u(t, n, o)
         WHERE p.projection = $1 AND p.topic = u.t AND p.partition = u.n",
    )
    .bind(projection)
    .bind(&topics)
    .bind(&numbers)
    .bind(&offsets)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
