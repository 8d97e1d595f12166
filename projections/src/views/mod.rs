//! The business views, one file each. Every view is a pure fold,
//! `evolve(Option<Row>, &EventMeta, &Event) -> Option<Row>`, plus the SQL that
//! loads the rows a batch touches and writes them back with one bulk statement.
//!
//! A batch is applied as load, fold, store: the rows the batch's events name
//! are read in one query, every event is folded in memory in log order, and
//! the results are upserted with `INSERT ... SELECT FROM UNNEST ... ON CONFLICT`.
//! Each view row is fed by exactly one event stream (payment and shipment
//! status have their own tables keyed by order id), so the only writer of a
//! row is whoever holds that stream's partition position, and no ordering
//! between topics is ever assumed.
//!
//! - [`catalog_items`]: stock and price per SKU.
//! - [`orders`]: order detail, also serving the customer order history.
//! - [`order_payments`], [`order_shipments`]: payment and shipment status per order.
//! - [`order_timeline`]: every order, payment and shipment event of an order.
//! - [`sales`]: confirmed orders and revenue per minute, hour and day.
//! - [`order_set`]: applies a batch to the order tables and the sales.
//! - [`recent_timelines`]: the timelines of the documents a projector built lately.
//! - [`saga_timelines`]: where each order's fulfilment saga is, from `sagas.events`.

pub mod catalog_items;
pub mod order_payments;
pub mod order_set;
pub mod order_set_csv;
pub mod order_shipments;
pub mod order_timeline;
pub mod orders;
pub mod recent_timelines;
pub mod saga_timelines;
pub mod sales;

use std::collections::HashMap;
use std::hash::Hash;

use chrono::SubsecRound;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use events::message::EventPayload;
use events::{AggregateType, EventMeta};

use crate::record::Record;

/// Reads a record as an event of family `E` from the stream `expected`,
/// upcasting old schema versions; the error becomes the dead letter's text.
pub fn decode<E: EventPayload>(
    record: &Record,
    expected: AggregateType,
) -> Result<(EventMeta, E), String> {
    let mut meta = record.meta().map_err(|e| e.to_string())?;
    // PostgreSQL keeps microseconds; folding the stored precision keeps the
    // rows folded in memory (and the cached documents built from them)
    // equal to what a reader loads back.
    meta.occurred_at = meta.occurred_at.trunc_subsecs(6);
    if meta.aggregate_type != expected {
        return Err(format!(
            "a {} event on the {} stream",
            meta.aggregate_type, expected
        ));
    }
    let payload = record.payload.as_deref().ok_or("record has no payload")?;
    let event = E::decode(&meta, payload).map_err(|e| e.to_string())?;
    Ok((meta, event))
}

/// The aggregate sequence as PostgreSQL stores it.
pub fn sequence(meta: &EventMeta) -> i64 {
    i64::try_from(meta.sequence).unwrap_or(i64::MAX)
}

/// Folds one event into the row it names. Views never delete rows, so an
/// `evolve` that answers `None` leaves the key absent (an event of an entity
/// the view does not show, such as a reservation refused for an unknown SKU).
pub fn fold_into<K, R, E>(
    rows: &mut HashMap<K, R>,
    key: K,
    meta: &EventMeta,
    event: &E,
    evolve: impl Fn(Option<R>, &EventMeta, &E) -> Option<R>,
) where
    K: Hash + Eq,
{
    let current = rows.remove(&key);
    if let Some(next) = evolve(current, meta, event) {
        rows.insert(key, next);
    }
}

/// True when `row_version` already reflects `meta` (a redelivery); folds then
/// leave the row alone, which makes every fold idempotent on its own.
pub fn already_applied(row_version: i64, meta: &EventMeta) -> bool {
    sequence(meta) <= row_version
}

/// The rows of `table` (its `columns`) for the orders under `ids`, by order
/// id: the one read every order-keyed view needs, in a batch transaction or a
/// reader's snapshot alike.
pub async fn rows_by_order<R>(
    conn: &mut sqlx::PgConnection,
    table: &str,
    columns: &str,
    ids: &[Uuid],
    order_id: fn(&R) -> Uuid,
) -> Result<HashMap<Uuid, R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let rows: Vec<R> = sqlx::query_as(&format!(
        "SELECT {columns} FROM {table} WHERE order_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (order_id(&r), r)).collect())
}

#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, TimeZone, Utc};
    use events::{AggregateType, EventMeta};
    use uuid::Uuid;

    /// Metadata of the `sequence`th event of `id`, at a fixed time plus `sequence` seconds.
    pub fn meta(aggregate: AggregateType, id: &str, sequence: u64, event_type: &str) -> EventMeta {
        EventMeta {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            aggregate_type: aggregate,
            aggregate_id: id.into(),
            sequence,
            occurred_at: at(sequence),
            command_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            causation_id: Uuid::nil(),
            traceparent: None,
        }
    }

    pub fn at(seconds: u64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            + chrono::Duration::seconds(i64::try_from(seconds).unwrap())
    }
}
