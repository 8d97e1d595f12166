//! The `saga_timelines` view: where each order's fulfilment saga is, fed by
//! `sagas.events` (keyed by order id).
//!
//! Every saga event carries the saga's whole progress, so a row is simply
//! the latest event of its saga by sequence: an older or duplicated event
//! (the saga worker's relay may publish one twice after a crash) never
//! replaces a newer one, in the fold and in the upsert alike. Only `reason`
//! and `note` are carried forward from earlier events, because the events
//! after a compensation or a resolution do not repeat why it happened.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::domain::{SagaEvent, StepRecord};
use events::{AggregateType, EventMeta};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{already_applied, decode, fold_into, sequence};
use crate::record::Record;

/// The projection name under which the saga view stores its positions.
pub const PROJECTION: &str = "sagas";

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
    pub history: Json<Vec<StepRecord>>,
    /// The saga stream's sequence of that event.
    pub version: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fold: the saga's row after `event`, which names its order in `meta`.
pub fn evolve(row: Option<SagaRow>, meta: &EventMeta, event: &SagaEvent) -> Option<SagaRow> {
    if let Some(row) = &row
        && already_applied(row.version, meta)
    {
        return Some(row.clone());
    }
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
    let earlier = row.as_ref();
    let started_at = earlier
        .map(|r| r.started_at)
        .or_else(|| progress.history.first().map(|s| s.started_at))
        .unwrap_or(meta.occurred_at);
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
        history: Json(progress.history.clone()),
        version: sequence(meta),
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
    let history: Vec<serde_json::Value> = rows
        .iter()
        // Step records are plain data (string keys): serializing cannot fail.
        .map(|r| events::message::value_plain(&r.history.0))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO saga_timelines ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                              $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::jsonb[], $12::bigint[], $13::timestamptz[], $14::timestamptz[])
         ON CONFLICT (order_id) DO UPDATE SET
           customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
           current_step = EXCLUDED.current_step, attempt = EXCLUDED.attempt,
           deadline_at = EXCLUDED.deadline_at, last_error = EXCLUDED.last_error,
           reason = EXCLUDED.reason, note = EXCLUDED.note, last_event = EXCLUDED.last_event,
           history = EXCLUDED.history, version = EXCLUDED.version,
           updated_at = EXCLUDED.updated_at
         WHERE saga_timelines.version < EXCLUDED.version"
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
mod tests {
    use super::*;
    use crate::views::testing::{at, meta};
    use events::domain::{CustomerId, SagaProgress, SagaStatus};

    const ID: &str = "01900000-0000-7000-8000-000000000002";

    fn progress(status: SagaStatus, step: &str, attempt: u32) -> SagaProgress {
        SagaProgress {
            customer_id: CustomerId::new("cust-1").unwrap(),
            status,
            step: step.into(),
            attempt,
            deadline: Some(at(100)),
            last_error: (attempt > 1).then(|| "capture failed".to_owned()),
            history: vec![StepRecord {
                step: "reserving_stock".into(),
                started_at: at(1),
                attempts: 1,
                outcome: Some("succeeded".into()),
            }],
        }
    }

    fn apply(row: Option<SagaRow>, sequence: u64, event: &SagaEvent) -> Option<SagaRow> {
        evolve(
            row,
            &meta(AggregateType::Saga, ID, sequence, event.event_type()),
            event,
        )
    }

    fn started() -> SagaEvent {
        SagaEvent::SagaStarted {
            progress: progress(SagaStatus::Running, "reserving_stock", 1),
        }
    }

    fn parked() -> SagaEvent {
        SagaEvent::SagaNeedsAttention {
            reason: "void keeps failing".into(),
            progress: progress(SagaStatus::NeedsAttention, "voiding_payment", 5),
        }
    }

    #[test]
    fn a_row_is_the_latest_event_with_its_whole_progress() {
        let row = apply(apply(None, 1, &started()), 2, &parked()).unwrap();
        assert_eq!(row.order_id.to_string(), ID);
        assert_eq!(
            (row.status.as_str(), row.current_step.as_str(), row.attempt),
            ("needs_attention", "voiding_payment", 5)
        );
        assert_eq!(row.reason.as_deref(), Some("void keeps failing"));
        assert_eq!(row.last_error.as_deref(), Some("capture failed"));
        assert_eq!(row.deadline_at, Some(at(100)));
        assert_eq!(
            (row.version, row.last_event.as_str()),
            (2, "SagaNeedsAttention")
        );
        assert_eq!(row.history.0.len(), 1);
        assert_eq!((row.started_at, row.updated_at), (at(1), at(2)));
    }

    #[test]
    fn older_and_duplicated_events_change_nothing() {
        let latest = apply(None, 3, &parked()).unwrap();
        assert_eq!(
            apply(Some(latest.clone()), 1, &started()),
            Some(latest.clone())
        );
        assert_eq!(apply(Some(latest.clone()), 3, &parked()), Some(latest));
    }

    #[test]
    fn a_resolution_keeps_the_reason_and_adds_the_note() {
        let parked = apply(None, 4, &parked());
        let resolved = SagaEvent::SagaResolved {
            note: "refunded by hand".into(),
            progress: progress(SagaStatus::ResolvedByOperator, "voiding_payment", 5),
        };
        let row = apply(parked, 5, &resolved).unwrap();
        assert_eq!(row.status, "resolved_by_operator");
        assert_eq!(row.reason.as_deref(), Some("void keeps failing"));
        assert_eq!(row.note.as_deref(), Some("refunded by hand"));
    }

    #[test]
    fn a_saga_first_seen_midway_starts_with_its_first_step() {
        let mut event = parked();
        if let SagaEvent::SagaNeedsAttention { progress, .. } = &mut event {
            progress.history.clear();
        }
        let row = apply(None, 7, &event).unwrap();
        assert_eq!(row.started_at, at(7), "without history, the event's time");
        let row = apply(None, 7, &parked()).unwrap();
        assert_eq!(row.started_at, at(1));
    }
}
