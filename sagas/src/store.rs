//! The saga database: saga rows, the outbox, positions and dead letters.
//!
//! Every function takes the caller's transaction: a consumed batch (or a
//! fired deadline, or an operator command) changes sagas, writes the messages
//! it caused and moves the positions in one commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::record::Record;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::machine::Saga;

pub use write::{Writes, save};

mod write;

pub type Tx<'c> = Transaction<'c, Postgres>;

/// Connects to the saga database, creating it when missing, and migrates it.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool, sqlx::Error> {
    events::pg::connect_and_migrate(url, 12, &sqlx::migrate!("./migrations")).await
}

/// A saga as stored, with the number of saga events it emitted so far.
#[derive(Debug, Clone)]
pub struct Stored {
    pub saga: Saga,
    pub version: i64,
}

/// Loads and locks the sagas of `order_ids`, in id order so that concurrent
/// workers lock rows in the same order. `skip_locked` leaves out sagas another
/// transaction holds (the timer uses it).
pub async fn lock(
    tx: &mut Tx<'_>,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Stored>, sqlx::Error> {
    let mut ids = order_ids.to_vec();
    ids.sort();
    ids.dedup();
    let rows: Vec<(Uuid, sqlx::types::Json<Saga>, i64)> = sqlx::query_as(
        "SELECT order_id, state, version FROM sagas
         WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, saga, version)| {
            let saga = saga.0;
            (id, Stored { saga, version })
        })
        .collect())
}

/// Locks `customers` for the rest of the transaction (a PostgreSQL advisory
/// lock each, taken in one order, so two workers cannot deadlock) and counts
/// each one's open sagas. Held until commit, so another worker starting a
/// saga for one of them waits and then counts this one's as well.
pub async fn open_orders(
    tx: &mut Tx<'_>,
    customers: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut keys: Vec<i64> = customers.iter().map(|c| customer_lock(c)).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT customer_id, count(*) FROM sagas
         WHERE status IN ('running', 'compensating') AND customer_id = ANY($1)
         GROUP BY 1",
    )
    .bind(customers)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The advisory lock key of a customer: the first 8 bytes of a UUIDv5 of
/// its id (stable across processes and versions, unlike a hasher's seed).
fn customer_lock(customer: &str) -> i64 {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6f70_656e_2d6f_7264_6572_732d_6361_7000);
    let id = Uuid::new_v5(&NAMESPACE, customer.as_bytes());
    let bytes: [u8; 8] = id.as_bytes()[..8].try_into().unwrap_or_default();
    i64::from_be_bytes(bytes)
}

/// Sagas whose deadline passed, locked; rows another transaction holds are
/// skipped. The deadline is checked again on the saga row itself, so a row
/// a worker moved on meanwhile (its new version is what the lock rechecks)
/// is not fired.
pub async fn lock_due(
    tx: &mut Tx<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<HashMap<Uuid, Stored>, sqlx::Error> {
    let rows: Vec<(Uuid, sqlx::types::Json<Saga>, i64)> = sqlx::query_as(
        "SELECT s.order_id, s.state, s.version
         FROM saga_deadlines d JOIN sagas s ON s.order_id = d.order_id
         WHERE d.deadline_at <= $1 AND s.deadline_at <= $1
         ORDER BY d.deadline_at LIMIT $2
         FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, saga, version)| {
            (
                id,
                Stored {
                    saga: saga.0,
                    version,
                },
            )
        })
        .collect())
}

/// A message for the relay to publish.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub message_id: Uuid,
    pub order_id: Uuid,
    /// The stream whose topic receives it (`events`, `commands` or `replies`
    /// topic, by `kind`).
    pub stream: events::AggregateType,
    pub kind: Kind,
    pub key: String,
    pub payload: Vec<u8>,
    /// The envelope of an event, for its CloudEvents headers.
    pub meta: Option<events::EventMeta>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Command,
    Event,
    Reply,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Event => "event",
            Kind::Reply => "reply",
        }
    }

    pub fn parse(kind: &str) -> Option<Kind> {
        [Kind::Command, Kind::Event, Kind::Reply]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// The orders whose sagas sent the given command ids (to route an event that
/// names no order, such as `Restocked`, back to its saga).
pub async fn orders_of_commands(
    tx: &mut Tx<'_>,
    command_ids: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>, sqlx::Error> {
    if command_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT message_id, order_id FROM outbox WHERE message_id = ANY($1) AND kind = 'command'",
    )
    .bind(command_ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Locks the positions of the batch's partitions and keeps only the records
/// not applied yet (by this or another instance).
///
/// One statement: the no-op update takes the row lock (in partition order,
/// so two workers cannot deadlock) and answers the latest committed
/// position, and a partition read for the first time gets its row.
pub async fn claim(tx: &mut Tx<'_>, records: Vec<Record>) -> Result<Vec<Record>, sqlx::Error> {
    let mut partitions: Vec<(&str, i32)> = records
        .iter()
        .map(|r| (r.topic.as_str(), r.partition))
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    let (topics, numbers): (Vec<&str>, Vec<i32>) = partitions.into_iter().unzip();
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "INSERT INTO saga_positions (topic, partition, next_offset)
         SELECT t, p, 0 FROM UNNEST($1::text[], $2::int[]) AS u(t, p)
         ORDER BY 1, 2
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = saga_positions.next_offset
         RETURNING topic, partition, next_offset",
    )
    .bind(&topics)
    .bind(&numbers)
    .fetch_all(&mut **tx)
    .await?;
    let next: HashMap<(&str, i32), i64> = rows
        .iter()
        .map(|(t, p, o)| ((t.as_str(), *p), *o))
        .collect();
    let fresh = |r: &Record| {
        r.offset
            >= next
                .get(&(r.topic.as_str(), r.partition))
                .copied()
                .unwrap_or(0)
    };
    Ok(records.into_iter().filter(fresh).collect())
}

/// Marks outbox rows published: they leave the list of pending rows (the
/// outbox row itself is written once, and the relay prunes it a day later).
pub(crate) async fn mark_published(
    db: impl sqlx::PgExecutor<'_>,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM outbox_pending WHERE id = ANY($1)")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(())
}

/// A record the worker could not read, kept with its position and error.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: Record,
    pub error: String,
}

pub async fn store_dead_letters(
    tx: &mut Tx<'_>,
    letters: &[DeadLetter],
) -> Result<(), sqlx::Error> {
    for letter in letters {
        let r = &letter.record;
        sqlx::query(
            "INSERT INTO dead_letters (topic, partition, record_offset, error, payload)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&r.topic)
        .bind(r.partition)
        .bind(r.offset)
        .bind(&letter.error)
        .bind(r.payload.as_deref())
        .execute(&mut **tx)
        .await?;
        metrics::counter!("saga_dead_letters_total").increment(1);
        tracing::error!(topic = %r.topic, partition = r.partition, offset = r.offset,
            error = %letter.error, "saga worker dead-lettered a record");
    }
    Ok(())
}

/// Stored reply of an operator command already answered.
pub async fn operator_reply(
    tx: &mut Tx<'_>,
    command_id: Uuid,
) -> Result<Option<events::command::Reply>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<events::command::Reply>,)> =
        sqlx::query_as("SELECT reply FROM operator_replies WHERE command_id = $1")
            .bind(command_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(reply,)| reply.0))
}

pub async fn record_operator_reply(
    tx: &mut Tx<'_>,
    reply: &events::command::Reply,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO operator_replies (command_id, reply) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(reply.command_id)
    .bind(sqlx::types::Json(reply))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
