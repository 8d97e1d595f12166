//! The `order_shipments` view: the shipment status of each order, fed by
//! `shipments.events` (whose aggregate id is the order id).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::EventMeta;
use events::domain::{ShipmentEvent, ShipmentStatus};
use serde::Deserialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{already_applied, sequence};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, sqlx::FromRow)]
pub struct ShipmentRow {
    pub order_id: Uuid,
    pub status: String,
    pub tracking_ref: Option<String>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// The fold: one shipment event applied to the shipment it names.
pub fn evolve(
    row: Option<ShipmentRow>,
    meta: &EventMeta,
    event: &ShipmentEvent,
) -> Option<ShipmentRow> {
    if let Some(row) = &row
        && already_applied(row.version, meta)
    {
        return Some(row.clone());
    }
    let status = |s: ShipmentStatus| s.as_str().to_owned();
    let mut row = match (row, event) {
        (None, ShipmentEvent::ShipmentRequested { .. }) => ShipmentRow {
            order_id: Uuid::parse_str(&meta.aggregate_id).ok()?,
            status: status(ShipmentStatus::Requested),
            tracking_ref: None,
            version: 0,
            updated_at: meta.occurred_at,
        },
        (None, _) => return None,
        (Some(mut row), event) => {
            match event {
                ShipmentEvent::ShipmentRequested { .. } => {}
                ShipmentEvent::ShipmentScheduled { tracking_ref, .. } => {
                    row.tracking_ref = Some(tracking_ref.clone());
                    // A late booking leaves a cancelled shipment cancelled.
                    if row.status == ShipmentStatus::Requested.as_str() {
                        row.status = status(ShipmentStatus::Scheduled);
                    }
                }
                ShipmentEvent::ShipmentRefused { .. } => {
                    row.status = status(ShipmentStatus::Refused)
                }
                ShipmentEvent::ShipmentReleased => {
                    // Released only from scheduled, as in the aggregate.
                    if row.status == ShipmentStatus::Scheduled.as_str() {
                        row.status = status(ShipmentStatus::Released);
                    }
                }
                ShipmentEvent::ShipmentCancelled => row.status = status(ShipmentStatus::Cancelled),
                ShipmentEvent::ShipmentDispatched => {
                    row.status = status(ShipmentStatus::Dispatched)
                }
                ShipmentEvent::ShipmentDelivered => row.status = status(ShipmentStatus::Delivered),
            }
            row
        }
    };
    row.version = sequence(meta);
    row.updated_at = meta.occurred_at;
    Some(row)
}

const COLUMNS: &str = "order_id, status, tracking_ref, version, updated_at";

pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    mut rows: Vec<&ShipmentRow>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by_key(|r| r.order_id);
    sqlx::query(&format!(
        "INSERT INTO order_shipments ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
         ON CONFLICT (order_id) DO UPDATE SET
           status = EXCLUDED.status, tracking_ref = EXCLUDED.tracking_ref,
           version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
         WHERE order_shipments.version < EXCLUDED.version"
    ))
    .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.tracking_ref.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The rows of the orders under `ids` that have one.
pub async fn find_many(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ShipmentRow>, sqlx::Error> {
    super::rows_by_order(conn, "order_shipments", COLUMNS, ids, |r: &ShipmentRow| {
        r.order_id
    })
    .await
}

pub async fn version(pool: &PgPool, order_id: Uuid) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT version FROM order_shipments WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map_or(0, |(v,)| v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::testing::meta;
    use events::AggregateType;
    use events::domain::Address;

    const ID: &str = "01900000-0000-7000-8000-000000000003";

    fn fold(events: &[ShipmentEvent]) -> Option<ShipmentRow> {
        events.iter().enumerate().fold(None, |row, (n, event)| {
            evolve(
                row,
                &meta(
                    AggregateType::Shipment,
                    ID,
                    n as u64 + 1,
                    event.event_type(),
                ),
                event,
            )
        })
    }

    fn requested() -> ShipmentEvent {
        let address = Address {
            name: "A".into(),
            line1: "B".into(),
            city: "C".into(),
            postal_code: "1".into(),
            country: "DE".into(),
        };
        ShipmentEvent::ShipmentRequested { address }
    }

    fn scheduled() -> ShipmentEvent {
        ShipmentEvent::ShipmentScheduled {
            tracking_ref: "T-1".into(),
            carrier: None,
        }
    }

    #[test]
    fn a_shipment_runs_from_requested_to_delivered() {
        assert_eq!(fold(&[requested()]).unwrap().status, "requested");
        let row = fold(&[requested(), scheduled()]).unwrap();
        assert_eq!(
            (
                row.status.as_str(),
                row.tracking_ref.as_deref(),
                row.version
            ),
            ("scheduled", Some("T-1"), 2)
        );
        let released = fold(&[requested(), scheduled(), ShipmentEvent::ShipmentReleased]);
        assert_eq!(released.unwrap().status, "released");
        let delivered = fold(&[
            requested(),
            scheduled(),
            ShipmentEvent::ShipmentReleased,
            ShipmentEvent::ShipmentDispatched,
            ShipmentEvent::ShipmentDelivered,
        ]);
        assert_eq!(delivered.unwrap().status, "delivered");
    }

    #[test]
    fn a_late_booking_leaves_a_cancelled_shipment_cancelled() {
        let row = fold(&[requested(), ShipmentEvent::ShipmentCancelled, scheduled()]).unwrap();
        assert_eq!(
            (row.status.as_str(), row.tracking_ref.as_deref()),
            ("cancelled", Some("T-1"))
        );
        let late_release = fold(&[
            requested(),
            scheduled(),
            ShipmentEvent::ShipmentCancelled,
            ShipmentEvent::ShipmentReleased,
        ]);
        assert_eq!(late_release.unwrap().status, "cancelled");
        let refused = fold(&[
            requested(),
            ShipmentEvent::ShipmentRefused {
                reason: "ZZ".into(),
            },
        ]);
        assert_eq!(refused.unwrap().status, "refused");
    }
}
