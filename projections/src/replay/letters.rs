//! `dead-letters list|retry|skip`: the operator's side of the dead-letter
//! store (`crate::dead_letters`, `crate::hold`).
//!
//! A retry reads the records from the log again (the store keeps their
//! position) and applies them to the live views with the projectors paused,
//! aggregate by aggregate in log order, stopping at the first record of an
//! aggregate that still cannot be read; applied ones leave the store, and
//! the cache entries they touched are removed.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::PgPool;

use super::output::Output;
use super::reader::{Reader, Span};
use super::{Context, ReplayError};
use crate::dead_letters::{self, StoredDeadLetter};
use crate::dispatch::{self, ViewSet};
use crate::hold::HeldKeys;
use crate::pause::Paused;
use crate::record::Record;
use crate::refresh::{Fresh, Touched};

const COLUMNS: &str =
    "id, projection, topic, partition, \"offset\", record_key, payload, error, created_at";

pub async fn list(ctx: &mut Context, limit: i64, out: Output) -> Result<u64, ReplayError> {
    let pool = ctx.pool().await?;
    let letters = dead_letters::page(&pool, None, limit).await?;
    out.header("ID  PROJECTION  TOPIC:PARTITION:OFFSET  KEY  CREATED_AT  ERROR");
    for l in &letters {
        let text = format!(
            "{}  {}  {}:{}:{}  {}  {}  {}",
            l.id,
            l.projection,
            l.topic,
            l.partition,
            l.offset,
            l.record_key.as_deref().unwrap_or("-"),
            l.created_at.to_rfc3339(),
            l.error
        );
        let value = json!({
            "id": l.id, "projection": l.projection, "topic": l.topic, "partition": l.partition,
            "offset": l.offset, "key": l.record_key, "error": l.error, "created_at": l.created_at,
        });
        out.line(&text, &value);
    }
    Ok(letters.len() as u64)
}

/// The dead letters named by `ids` (all when `None`); an unknown id is refused.
async fn select(pool: &PgPool, ids: Option<&[i64]>) -> Result<Vec<StoredDeadLetter>, ReplayError> {
    let found: Vec<StoredDeadLetter> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dead_letters WHERE $1::bigint[] IS NULL OR id = ANY($1)
         ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    if let Some(missing) = ids
        .unwrap_or_default()
        .iter()
        .find(|id| !found.iter().any(|l| l.id == **id))
    {
        return Err(ReplayError::NoSuchDeadLetter(*missing));
    }
    Ok(found)
}

/// Removes the selected dead letters without applying them.
pub async fn skip(ctx: &mut Context, ids: Option<&[i64]>) -> Result<u64, ReplayError> {
    let pool = ctx.pool().await?;
    let chosen: Vec<i64> = select(&pool, ids).await?.iter().map(|l| l.id).collect();
    let done = sqlx::query("DELETE FROM dead_letters WHERE id = ANY($1)")
        .bind(&chosen)
        .execute(&pool)
        .await?;
    Ok(done.rows_affected())
}

/// Outcome of a retry: applied and still failing dead letters.
pub struct Retried {
    pub applied: u64,
    pub failing: u64,
}

pub async fn retry(ctx: &mut Context, ids: Option<&[i64]>) -> Result<Retried, ReplayError> {
    ctx.check_kafka().await?;
    let pool = ctx.pool().await?;
    let cache = ctx.cache().await?;
    let chosen = select(&pool, ids).await?;
    let paused = Paused::pause(&pool).await?;
    let mut outcome = Retried {
        applied: 0,
        failing: 0,
    };
    let mut touched = Touched::default();
    for group in groups(&pool, &chosen).await? {
        let applied = retry_group(ctx, &pool, &group, &mut touched).await?;
        outcome.applied += applied;
        outcome.failing += group.len() as u64 - applied;
    }
    let mut keys: Vec<String> = touched.items.iter().map(|s| cache.item_key(s)).collect();
    keys.extend(touched.orders.iter().map(|id| cache.order_key(*id)));
    let invalidated = cache.delete(keys).await;
    paused.resume().await?;
    invalidated.map_err(|source| ReplayError::CacheNotInvalidated {
        view: "dead letters".into(),
        source,
    })?;
    Ok(outcome)
}

/// Every dead letter of the chosen ones' aggregates (same projection, topic
/// and key), per aggregate in log order.
async fn groups(
    pool: &PgPool,
    chosen: &[StoredDeadLetter],
) -> Result<Vec<Vec<StoredDeadLetter>>, ReplayError> {
    let mut groups: BTreeMap<(String, String, String), Vec<StoredDeadLetter>> = BTreeMap::new();
    for letter in chosen {
        let Some(key) = &letter.record_key else {
            groups.insert(
                (
                    letter.projection.clone(),
                    letter.topic.clone(),
                    format!("#{}", letter.id),
                ),
                vec![letter.clone()],
            );
            continue;
        };
        let group = (letter.projection.clone(), letter.topic.clone(), key.clone());
        if groups.contains_key(&group) {
            continue;
        }
        let all: Vec<StoredDeadLetter> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM dead_letters
             WHERE projection = $1 AND topic = $2 AND record_key = $3
             ORDER BY partition, \"offset\""
        ))
        .bind(&letter.projection)
        .bind(&letter.topic)
        .bind(key)
        .fetch_all(pool)
        .await?;
        groups.insert(group, all);
    }
    Ok(groups.into_values().collect())
}

/// Applies one aggregate's dead letters in order; answers how many applied.
async fn retry_group(
    ctx: &Context,
    pool: &PgPool,
    group: &[StoredDeadLetter],
    touched: &mut Touched,
) -> Result<u64, ReplayError> {
    let Some(first) = group.first() else {
        return Ok(0);
    };
    let set = ViewSet::parse(&first.projection)
        .ok_or_else(|| ReplayError::UnknownProjection(first.projection.clone()))?;
    let records = fetch(ctx, group).await?;
    let mut tx = pool.begin().await?;
    let mut applied = Vec::new();
    for letter in group {
        let Some(record) = records
            .iter()
            .find(|r| (r.partition, r.offset) == (letter.partition, letter.offset))
        else {
            break;
        };
        let mut held = HeldKeys::new();
        let (events, dead) =
            dispatch::Events::divert(&ctx.routes, set, std::slice::from_ref(&record), &mut held);
        if !dead.is_empty() {
            break;
        }
        let mut fresh = Fresh::default();
        dispatch::apply_set(&mut tx, events, dispatch::Mode::Live, None, &mut fresh).await?;
        touched.merge(fresh.touched());
        applied.push(letter.id);
    }
    sqlx::query("DELETE FROM dead_letters WHERE id = ANY($1)")
        .bind(&applied)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(applied.len() as u64)
}

/// The records of `group` read back from the log.
async fn fetch(ctx: &Context, group: &[StoredDeadLetter]) -> Result<Vec<Record>, ReplayError> {
    let mut spans: BTreeMap<(String, i32), Span> = BTreeMap::new();
    for l in group {
        let span = spans.entry((l.topic.clone(), l.partition)).or_insert(Span {
            topic: l.topic.clone(),
            partition: l.partition,
            start: l.offset,
            end: l.offset + 1,
        });
        span.start = span.start.min(l.offset);
        span.end = span.end.max(l.offset + 1);
    }
    let spans: Vec<Span> = spans.into_values().collect();
    let mut reader = Reader::open(ctx.kafka(), &spans)?;
    let mut records = Vec::new();
    while let Some(batch) = reader.next_batch(1000).await? {
        records.extend(batch.into_iter().filter(|r| {
            group.iter().any(|l| {
                (l.topic.as_str(), l.partition, l.offset)
                    == (r.topic.as_str(), r.partition, r.offset)
            })
        }));
    }
    Ok(records)
}
