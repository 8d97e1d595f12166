//! The `saga_timelines` view: where each order's fulfilment saga is, fed by
//! `sagas.events` (keyed by order id).
//!
//! Every saga event carries the saga's current status, step, attempt,
//! deadline and last error, and the steps of its history that changed
//! (from position `history_from` on). A row takes the scalars of its latest
//! event by sequence, and each step of its history from the newest event
//! that wrote that position: the saga's relay may publish an event after
//! newer ones (a hand-off lost to a crash), and such a late event still
//! fills the steps only it carried, while a duplicate changes nothing.
//! `reason` and `note` are carried forward from earlier events, because the
//! events after a compensation or a resolution do not repeat why it happened.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::domain::{SagaEvent, SagaProgress, StepRecord};
use events::{AggregateType, EventMeta};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{already_applied, decode, fold_into, sequence};
use crate::record::Record;

/// The projection name under which the saga view stores its positions.
pub const PROJECTION: &str = "sagas";

/// How many steps a saga's history may have: an event that places a step
/// further is unreadable (the fold would otherwise allocate what it names).
const MAX_STEPS: usize = 10_000;

/// One step of a saga's history in the view, with the sequence of the saga
/// event that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineStep {
    #[serde(flatten)]
    pub record: StepRecord,
    /// Absent in rows folded before saga events carried only what changed:
    /// such a step is as new as its row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SagaRow {
    pub order_id: Uuid,
    pub customer_id: String,
    /// `running`, `compensating`, `completed`, `compensated`,
    /// `needs_attention` or `resolved_by_operator`.
    pub status: String,
    pub current_step: String,
    pub attempt: i64,
    pub deadline_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    /// The type of the event the row reflects, e.g. `SagaNeedsAttention`.
    pub last_event: String,
    /// The steps by position; `None` where the event that carried a step
    /// has not arrived yet (only while a late event is on its way).
    pub history: Json<Vec<Option<TimelineStep>>>,
    /// The saga stream's sequence of that event.
    pub version: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SagaRow {
    /// The steps of the history that have arrived, in order.
    pub fn steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.history.0.iter().flatten().map(|s| &s.record)
    }
}

/// Writes the steps `progress` carries into `history`, each where the event
/// at `seq` is newer than what the position holds (steps without a sequence
/// are as new as `row_version`).
fn merge_steps(
    history: &mut Vec<Option<TimelineStep>>,
    progress: &SagaProgress,
    seq: i64,
    row_version: i64,
) {
    let from = progress.history_from as usize;
    for (at, record) in (from..).zip(&progress.history) {
        if history.len() <= at {
            history.resize(at + 1, None);
        }
        let slot = &mut history[at];
        if slot
            .as_ref()
            .is_none_or(|step| step.seq.unwrap_or(row_version) < seq)
        {
            *slot = Some(TimelineStep {
                record: record.clone(),
                seq: Some(seq),
            });
        }
    }
}

/// The fold: the saga's row after `event`, which names its order in `meta`.
pub fn evolve(row: Option<SagaRow>, meta: &EventMeta, event: &SagaEvent) -> Option<SagaRow> {
    let seq = sequence(meta);
    let progress = event.progress();
    let (reason, note) = match event {
        SagaEvent::SagaCompensating { reason, .. }
        | SagaEvent::SagaCompensated { reason, .. }
        | SagaEvent::SagaNeedsAttention { reason, .. } => (Some(reason.clone()), None),
        SagaEvent::SagaResolved { note, .. } => (None, Some(note.clone())),
        SagaEvent::SagaStarted { .. }
        | SagaEvent::SagaStepStarted { .. }
        | SagaEvent::SagaCompleted { .. } => (None, None),
    };
    let version = row.as_ref().map_or(0, |r| r.version);
    let (mut history, earlier) = match row {
        Some(mut row) => (std::mem::take(&mut row.history.0), Some(row)),
        None => (Vec::new(), None),
    };
    merge_steps(&mut history, progress, seq, version);
    let first_step = match (progress.history_from, progress.history.first()) {
        (0, Some(first)) => Some(first.started_at),
        _ => None,
    };
    let started_at = match (&earlier, first_step) {
        (Some(row), Some(first)) => row.started_at.min(first),
        (Some(row), None) => row.started_at,
        (None, first) => first.unwrap_or(meta.occurred_at),
    };
    let earlier = match earlier {
        // Older or the same event: only its steps, and what the row lacks.
        Some(row) if already_applied(version, meta) => {
            return Some(SagaRow {
                history: Json(history),
                reason: row.reason.or(reason),
                note: row.note.or(note),
                started_at,
                ..row
            });
        }
        earlier => earlier,
    };
    let earlier = earlier.as_ref();
    Some(SagaRow {
        order_id: Uuid::parse_str(&meta.aggregate_id).ok()?,
        customer_id: progress.customer_id.to_string(),
        status: progress.status.as_str().to_owned(),
        current_step: progress.step.clone(),
        attempt: i64::from(progress.attempt),
        deadline_at: progress.deadline,
        last_error: progress.last_error.clone(),
        reason: reason.or_else(|| earlier.and_then(|r| r.reason.clone())),
        note: note.or_else(|| earlier.and_then(|r| r.note.clone())),
        last_event: event.event_type().to_owned(),
        history: Json(history),
        version: seq,
        started_at,
        updated_at: meta.occurred_at,
    })
}

/// Applies a batch of decoded `sagas.events` records.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    events: &[(Uuid, EventMeta, SagaEvent)],
) -> Result<(), sqlx::Error> {
    let mut ids: Vec<Uuid> = events.iter().map(|(id, _, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows = find_many(tx, &ids).await?;
    for (id, meta, event) in events {
        fold_into(&mut rows, *id, meta, event, evolve);
    }
    store(tx, rows.into_values().collect()).await
}

/// Decodes one record of `sagas.events`; an aggregate id that is not an
/// order id makes it unreadable, so a poisoned saga is held back like any
/// other stream.
pub fn decode_one(record: &Record) -> Result<(Uuid, EventMeta, SagaEvent), String> {
    let (meta, event) = decode::<SagaEvent>(record, AggregateType::Saga)?;
    let id = Uuid::parse_str(&meta.aggregate_id)
        .map_err(|_| format!("aggregate id {:?} is not an order id", meta.aggregate_id))?;
    let progress = event.progress();
    let steps = progress.history_from as usize + progress.history.len();
    if steps > MAX_STEPS {
        return Err(format!(
            "a saga history of {steps} steps is more than the {MAX_STEPS} a saga may have"
        ));
    }
    Ok((id, meta, event))
}

const COLUMNS: &str = "order_id, customer_id, status, current_step, attempt, deadline_at, \
                       last_error, reason, note, last_event, history, version, started_at, \
                       updated_at";

async fn store(
    tx: &mut Transaction<'_, Postgres>,
    mut rows: Vec<SagaRow>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    // A stable order keeps row locks in the same order across instances.
    rows.sort_by_key(|r| r.order_id);
    let text = |f: fn(&SagaRow) -> &str| rows.iter().map(f).map(str::to_owned).collect::<Vec<_>>();
    let maybe =
        |f: fn(&SagaRow) -> &Option<String>| rows.iter().map(f).cloned().collect::<Vec<_>>();
    let times = |f: fn(&SagaRow) -> DateTime<Utc>| rows.iter().map(f).collect::<Vec<_>>();
    let numbers = |f: fn(&SagaRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let history: Vec<String> = rows
        .iter()
        // Step records are plain data (string keys): serializing cannot fail.
        .map(|r| events::message::encode_plain(&r.history.0))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO saga_timelines ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                              $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::text[]::json[], $12::bigint[], $13::timestamptz[], $14::timestamptz[])
         ON CONFLICT (order_id) DO UPDATE SET
           customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
           current_step = EXCLUDED.current_step, attempt = EXCLUDED.attempt,
           deadline_at = EXCLUDED.deadline_at, last_error = EXCLUDED.last_error,
           reason = EXCLUDED.reason, note = EXCLUDED.note, last_event = EXCLUDED.last_event,
           history = EXCLUDED.history, version = EXCLUDED.version,
           started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at
         WHERE saga_timelines.version <= EXCLUDED.version"
    ))
    .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
    .bind(text(|r| &r.customer_id))
    .bind(text(|r| &r.status))
    .bind(text(|r| &r.current_step))
    .bind(numbers(|r| r.attempt))
    .bind(rows.iter().map(|r| r.deadline_at).collect::<Vec<_>>())
    .bind(maybe(|r| &r.last_error))
    .bind(maybe(|r| &r.reason))
    .bind(maybe(|r| &r.note))
    .bind(text(|r| &r.last_event))
    .bind(history)
    .bind(numbers(|r| r.version))
    .bind(times(|r| r.started_at))
    .bind(times(|r| r.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The sagas of the orders under `ids` that exist.
pub async fn find_many(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, SagaRow>, sqlx::Error> {
    super::rows_by_order(conn, "saga_timelines", COLUMNS, ids, |r: &SagaRow| {
        r.order_id
    })
    .await
}

/// The saga of `order_id`, for readers.
pub async fn find(pool: &PgPool, order_id: Uuid) -> Result<Option<SagaRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM saga_timelines WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(pool)
    .await
}

/// Where a page of sagas starts: strictly older than this `(started_at, order_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaCursor {
    pub started_at: DateTime<Utc>,
    pub order_id: Uuid,
}

/// Up to `limit` sagas, with `status` when given, newest first, after `cursor`.
pub async fn page(
    pool: &PgPool,
    status: Option<&str>,
    cursor: Option<SagaCursor>,
    limit: i64,
) -> Result<Vec<SagaRow>, sqlx::Error> {
    let (started_at, order_id) = match cursor {
        Some(c) => (Some(c.started_at), Some(c.order_id)),
        None => (None, None),
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM saga_timelines
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::timestamptz IS NULL OR (started_at, order_id) < ($2, $3))
         ORDER BY started_at DESC, order_id DESC
         LIMIT $4"
    ))
    .bind(status)
    .bind(started_at)
    .bind(order_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The version the view has reached for the saga of `order_id` (0 when none).
pub async fn version(pool: &PgPool, order_id: Uuid) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT version FROM saga_timelines WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map_or(0, |(v,)| v))
}

#[cfg(test)]
mod tests;
