//! A saga transaction's writes: the sagas, their deadlines, the positions
//! and the outbox, in one statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::record::Record;
use uuid::Uuid;

use super::{OutboxMessage, Stored, Tx};

/// What one saga transaction writes besides its locks: the sagas it
/// changed, the messages they caused, and the records it consumed.
#[derive(Default)]
pub struct Writes<'a> {
    pub sagas: Vec<(Uuid, &'a Stored)>,
    pub messages: Vec<OutboxMessage>,
    pub consumed: &'a [Record],
}

/// Writes in one statement, one round trip where there were three:
/// inserts or updates the sagas, and moves their rows in the deadlines'
/// index (`saga_deadlines`) where a deadline changed;
/// moves the positions past the consumed records, and each partition's
/// watermark up to the time of the last record read from it; adds the
/// messages to the outbox, leaving a message id already there as it is.
/// Answers the outbox rows it inserted (and listed as pending) with their
/// ids, in the order of `messages`, for the publisher to produce after the
/// commit.
///
/// The parts touch different tables. The rows of the sagas and the
/// positions are already locked by this transaction (`lock`, `claim`), and
/// a saga's rows in `saga_deadlines` are written only by the transaction
/// that holds its saga row, so running them as one statement's parts
/// changes no lock order. Every part reads the rows as they were before the
/// statement: `before` is the sagas' stored deadlines, which the new ones
/// replace.
pub async fn save(
    tx: &mut Tx<'_>,
    writes: Writes<'_>,
) -> Result<Vec<(i64, OutboxMessage)>, sqlx::Error> {
    let Writes {
        sagas,
        messages,
        consumed,
    } = writes;
    if sagas.is_empty() && messages.is_empty() && consumed.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(sagas.len());
    let mut customers = Vec::with_capacity(sagas.len());
    let mut states = Vec::with_capacity(sagas.len());
    let mut statuses = Vec::with_capacity(sagas.len());
    let mut deadlines = Vec::with_capacity(sagas.len());
    let mut versions = Vec::with_capacity(sagas.len());
    let encode = |e: serde_json::Error| sqlx::Error::Encode(e.into());
    for (id, stored) in &sagas {
        ids.push(*id);
        customers.push(stored.saga.customer_id().as_str());
        states.push(serde_json::to_string(&stored.saga).map_err(encode)?);
        statuses.push(stored.saga.status().as_str());
        deadlines.push(stored.saga.deadline());
        versions.push(stored.version);
    }
    type Progress = (i64, Option<DateTime<Utc>>);
    let mut next: HashMap<(&str, i32), Progress> = HashMap::new();
    for r in consumed {
        let entry = next.entry((r.topic.as_str(), r.partition)).or_default();
        entry.0 = entry.0.max(r.offset + 1);
        entry.1 = entry.1.max(r.appended_at);
    }
    let mut topics = Vec::with_capacity(next.len());
    let mut numbers = Vec::with_capacity(next.len());
    let mut offsets = Vec::with_capacity(next.len());
    let mut times = Vec::with_capacity(next.len());
    for ((topic, partition), (offset, time)) in next {
        topics.push(topic);
        numbers.push(partition);
        offsets.push(offset);
        times.push(time);
    }
    let message_ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    let orders: Vec<Uuid> = messages.iter().map(|m| m.order_id).collect();
    let streams: Vec<&str> = messages.iter().map(|m| m.stream.as_str()).collect();
    let kinds: Vec<&str> = messages.iter().map(|m| m.kind.as_str()).collect();
    let keys: Vec<&str> = messages.iter().map(|m| m.key.as_str()).collect();
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    let metas = messages
        .iter()
        .map(|m| m.meta.as_ref().map(serde_json::to_string).transpose())
        .collect::<Result<Vec<Option<String>>, _>>()
        .map_err(encode)?;
    // The state and the envelopes go in as text for `json` columns, which
    // check it without building a `jsonb` tree (migration 0005).
    let inserted: Vec<(i64, Uuid)> = sqlx::query_as(
        "WITH before AS (
             SELECT order_id, deadline_at FROM sagas WHERE order_id = ANY($1)
         ), saved AS (
             INSERT INTO sagas (order_id, customer_id, state, status, deadline_at, version)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[]::json[], $4::text[],
                                  $5::timestamptz[], $6::bigint[])
             ON CONFLICT (order_id) DO UPDATE
             SET state = EXCLUDED.state, status = EXCLUDED.status,
                 deadline_at = EXCLUDED.deadline_at, version = EXCLUDED.version,
                 updated_at = now()
         ), due AS (
             SELECT n.order_id, n.deadline_at, b.deadline_at AS was
             FROM UNNEST($1::uuid[], $5::timestamptz[]) AS n(order_id, deadline_at)
             LEFT JOIN before b ON b.order_id = n.order_id
             WHERE n.deadline_at IS DISTINCT FROM b.deadline_at
         ), passed AS (
             DELETE FROM saga_deadlines d USING due
             WHERE d.deadline_at = due.was AND d.order_id = due.order_id
         ), waiting AS (
             INSERT INTO saga_deadlines (deadline_at, order_id)
             SELECT deadline_at, order_id FROM due WHERE deadline_at IS NOT NULL
             ORDER BY 1, 2
             ON CONFLICT DO NOTHING
         ), moved AS (
             UPDATE saga_positions AS p SET next_offset = u.o, updated_at = now(),
                 watermark_at = GREATEST(p.watermark_at, u.w)
             FROM UNNEST($7::text[], $8::int[], $9::bigint[], $10::timestamptz[]) AS u(t, n, o, w)
             WHERE p.topic = u.t AND p.partition = u.n
         ), written AS (
             INSERT INTO outbox (message_id, order_id, topic_stream, kind, message_key, payload, meta)
             SELECT * FROM UNNEST($11::uuid[], $12::uuid[], $13::text[], $14::text[], $15::text[],
                                  $16::bytea[], $17::text[]::json[])
             ORDER BY 1
             ON CONFLICT (message_id) DO NOTHING
             RETURNING id, message_id, created_at
         ), pending AS (
             INSERT INTO outbox_pending (id, created_at) SELECT id, created_at FROM written
         )
         SELECT id, message_id FROM written",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&states)
    .bind(&statuses)
    .bind(&deadlines)
    .bind(&versions)
    .bind(&topics)
    .bind(&numbers)
    .bind(&offsets)
    .bind(&times)
    .bind(&message_ids)
    .bind(&orders)
    .bind(&streams)
    .bind(&kinds)
    .bind(&keys)
    .bind(&payloads)
    .bind(&metas)
    .fetch_all(&mut **tx)
    .await?;
    // A message listed twice was inserted once: it is handed off once.
    let mut row_of: HashMap<Uuid, i64> = inserted.into_iter().map(|(id, m)| (m, id)).collect();
    Ok(messages
        .into_iter()
        .filter_map(|m| Some((row_of.remove(&m.message_id)?, m)))
        .collect())
}
