//! The `orders` view: order detail, fed by `orders.events`. The customer order
//! history is served from the same table through its
//! `(customer_id, placed_at DESC, order_id DESC)` index, so the two can never
//! disagree.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::EventMeta;
use events::domain::{Money, OrderEvent, OrderLine, OrderStatus, PricedLine};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{already_applied, sequence};

/// One order line; prices appear once the saga has priced the order from its
/// stock reservations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineView {
    pub sku: String,
    pub quantity: u32,
    /// `{minor, currency}`, once priced.
    #[schema(value_type = Option<Object>)]
    pub unit_price: Option<Money>,
    #[schema(value_type = Option<Object>)]
    pub line_total: Option<Money>,
}

impl From<&OrderLine> for LineView {
    fn from(line: &OrderLine) -> Self {
        LineView {
            sku: line.sku.to_string(),
            quantity: line.quantity,
            unit_price: None,
            line_total: None,
        }
    }
}

impl From<&PricedLine> for LineView {
    fn from(line: &PricedLine) -> Self {
        LineView {
            sku: line.sku.to_string(),
            quantity: line.quantity,
            unit_price: Some(line.unit_price),
            line_total: line.line_total().ok(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, sqlx::FromRow)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub customer_id: String,
    pub status: String,
    /// Why the order was rejected or cancelled.
    pub status_reason: Option<String>,
    /// Set when the customer asked to cancel; the saga decides the outcome.
    pub cancellation_reason: Option<String>,
    pub currency: String,
    pub lines: Json<Vec<LineView>>,
    pub total_minor: Option<i64>,
    /// The sequence of the last order event applied.
    pub version: i64,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fold: one order event applied to the order it names. Events of an
/// order whose placement was never seen leave it absent.
pub fn evolve(row: Option<OrderRow>, meta: &EventMeta, event: &OrderEvent) -> Option<OrderRow> {
    if let Some(row) = &row
        && already_applied(row.version, meta)
    {
        return Some(row.clone());
    }
    let mut row = match (row, event) {
        (
            None,
            OrderEvent::OrderPlaced {
                customer_id,
                currency,
                lines,
                ..
            },
        ) => OrderRow {
            order_id: Uuid::parse_str(&meta.aggregate_id).ok()?,
            customer_id: customer_id.to_string(),
            status: OrderStatus::Pending.as_str().to_owned(),
            status_reason: None,
            cancellation_reason: None,
            currency: currency.code().to_owned(),
            lines: Json(lines.iter().map(LineView::from).collect()),
            total_minor: None,
            version: 0,
            placed_at: meta.occurred_at,
            updated_at: meta.occurred_at,
        },
        (None, _) => return None,
        (Some(row), event) => apply(row, event),
    };
    row.version = sequence(meta);
    row.updated_at = meta.occurred_at;
    Some(row)
}

fn apply(mut row: OrderRow, event: &OrderEvent) -> OrderRow {
    let status = |s: OrderStatus| s.as_str().to_owned();
    match event {
        OrderEvent::OrderPlaced { .. } => {}
        OrderEvent::OrderPriced { lines, total } => {
            row.lines = Json(lines.iter().map(LineView::from).collect());
            row.total_minor = Some(total.minor);
        }
        OrderEvent::OrderConfirmed => row.status = status(OrderStatus::Confirmed),
        OrderEvent::OrderRejected { reason } => {
            row.status = status(OrderStatus::Rejected);
            row.status_reason = Some(reason.clone());
        }
        OrderEvent::OrderCancellationRequested { reason } => {
            row.cancellation_reason = Some(reason.clone());
        }
        OrderEvent::OrderCancelled { reason } => {
            row.status = status(OrderStatus::Cancelled);
            row.status_reason = Some(reason.clone());
        }
        OrderEvent::OrderShipped => row.status = status(OrderStatus::Shipped),
        OrderEvent::OrderDelivered => row.status = status(OrderStatus::Delivered),
    }
    row
}

const COLUMNS: &str = "order_id, customer_id, status, status_reason, cancellation_reason, \
                       currency, lines, total_minor, version, placed_at, updated_at";

pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    mut rows: Vec<&OrderRow>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by_key(|r| r.order_id);
    let text = |f: fn(&OrderRow) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let maybe = |f: fn(&OrderRow) -> &Option<String>| {
        rows.iter().map(|r| f(r).as_deref()).collect::<Vec<_>>()
    };
    let times = |f: fn(&OrderRow) -> DateTime<Utc>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let lines: Vec<String> = rows
        .iter()
        // Priced lines are plain data (string keys): serializing cannot fail.
        .map(|r| events::message::encode_plain(&r.lines.0))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO orders ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[]::json[], $8::bigint[], $9::bigint[],
                              $10::timestamptz[], $11::timestamptz[])
         ON CONFLICT (order_id) DO UPDATE SET
           status = EXCLUDED.status, status_reason = EXCLUDED.status_reason,
           cancellation_reason = EXCLUDED.cancellation_reason, lines = EXCLUDED.lines,
           total_minor = EXCLUDED.total_minor, version = EXCLUDED.version,
           updated_at = EXCLUDED.updated_at
         WHERE orders.version < EXCLUDED.version"
    ))
    .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
    .bind(text(|r| &r.customer_id))
    .bind(text(|r| &r.status))
    .bind(maybe(|r| &r.status_reason))
    .bind(maybe(|r| &r.cancellation_reason))
    .bind(text(|r| &r.currency))
    .bind(lines)
    .bind(rows.iter().map(|r| r.total_minor).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(times(|r| r.placed_at))
    .bind(times(|r| r.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The orders under `ids` that exist.
pub async fn find_many(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, OrderRow>, sqlx::Error> {
    super::rows_by_order(conn, "orders", COLUMNS, ids, |r: &OrderRow| r.order_id).await
}

/// Where a page of a customer's history starts: strictly older than this
/// `(placed_at, order_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub placed_at: DateTime<Utc>,
    pub order_id: Uuid,
}

/// Up to `limit` orders of `customer_id`, newest first, after `cursor`.
pub async fn history(
    pool: &PgPool,
    customer_id: &str,
    cursor: Option<HistoryCursor>,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    // Without a cursor the bound is "after everything": the row comparison
    // then keeps one plan that walks the index from its newest entry.
    let (placed_at, order_id) = match cursor {
        Some(c) => (Some(c.placed_at), Some(c.order_id)),
        None => (None, None),
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM orders
         WHERE customer_id = $1
           AND ($2::timestamptz IS NULL OR (placed_at, order_id) < ($2, $3))
         ORDER BY placed_at DESC, order_id DESC
         LIMIT $4"
    ))
    .bind(customer_id)
    .bind(placed_at)
    .bind(order_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn version(pool: &PgPool, order_id: Uuid) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM orders WHERE order_id = $1")
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
    use events::domain::{Address, Currency, CustomerId, Sku};

    const ID: &str = "01900000-0000-7000-8000-000000000001";

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::new("USD").unwrap())
    }

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced {
            customer_id: CustomerId::new("cust-1").unwrap(),
            currency: Currency::new("USD").unwrap(),
            lines: vec![OrderLine {
                sku: Sku::new("SKU-1").unwrap(),
                quantity: 3,
            }],
            shipping_address: Address {
                name: "A".into(),
                line1: "B".into(),
                city: "C".into(),
                postal_code: "1".into(),
                country: "DE".into(),
            },
            payment_token: "tok_ok".into(),
        }
    }

    fn priced() -> OrderEvent {
        let line = PricedLine {
            sku: Sku::new("SKU-1").unwrap(),
            quantity: 3,
            unit_price: usd(1250),
        };
        OrderEvent::OrderPriced {
            lines: vec![line],
            total: usd(3750),
        }
    }

    fn fold(events: &[OrderEvent]) -> Option<OrderRow> {
        events.iter().enumerate().fold(None, |row, (n, event)| {
            evolve(
                row,
                &meta(AggregateType::Order, ID, n as u64 + 1, event.event_type()),
                event,
            )
        })
    }

    #[test]
    fn a_placed_order_is_pending_with_unpriced_lines() {
        let row = fold(&[placed()]).unwrap();
        assert_eq!(row.order_id.to_string(), ID);
        assert_eq!(
            (row.customer_id.as_str(), row.status.as_str(), row.version),
            ("cust-1", "pending", 1)
        );
        assert_eq!(
            row.lines.0,
            vec![LineView {
                sku: "SKU-1".into(),
                quantity: 3,
                unit_price: None,
                line_total: None
            }]
        );
        assert_eq!(row.total_minor, None);
        assert_eq!(row.placed_at, crate::views::testing::at(1));
    }

    #[test]
    fn pricing_and_confirmation_fill_in_prices_and_status() {
        let row = fold(&[placed(), priced(), OrderEvent::OrderConfirmed]).unwrap();
        assert_eq!(row.lines.0[0].unit_price, Some(usd(1250)));
        assert_eq!(row.lines.0[0].line_total, Some(usd(3750)));
        assert_eq!(
            (row.total_minor, row.status.as_str(), row.version),
            (Some(3750), "confirmed", 3)
        );
        assert_eq!(row.placed_at, crate::views::testing::at(1));
        assert_eq!(row.updated_at, crate::views::testing::at(3));
    }

    #[test]
    fn rejection_and_cancellation_keep_their_reason() {
        let rejected = fold(&[
            placed(),
            OrderEvent::OrderRejected {
                reason: "insufficient_stock".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            (rejected.status.as_str(), rejected.status_reason.as_deref()),
            ("rejected", Some("insufficient_stock"))
        );
        let cancelled = fold(&[
            placed(),
            priced(),
            OrderEvent::OrderConfirmed,
            OrderEvent::OrderCancellationRequested {
                reason: "changed mind".into(),
            },
            OrderEvent::OrderCancelled {
                reason: "cancelled_by_customer".into(),
            },
        ])
        .unwrap();
        assert_eq!(cancelled.status, "cancelled");
        assert_eq!(
            cancelled.cancellation_reason.as_deref(),
            Some("changed mind")
        );
    }

    #[test]
    fn shipping_and_delivery_advance_the_status() {
        let row = fold(&[
            placed(),
            priced(),
            OrderEvent::OrderConfirmed,
            OrderEvent::OrderShipped,
            OrderEvent::OrderDelivered,
        ]);
        assert_eq!(row.unwrap().status, "delivered");
    }

    #[test]
    fn events_before_the_placement_and_redeliveries_change_nothing() {
        assert_eq!(
            evolve(
                None,
                &meta(AggregateType::Order, ID, 2, "OrderConfirmed"),
                &OrderEvent::OrderConfirmed
            ),
            None
        );
        let row = fold(&[placed(), OrderEvent::OrderConfirmed]).unwrap();
        let again = evolve(
            Some(row.clone()),
            &meta(AggregateType::Order, ID, 2, "OrderConfirmed"),
            &OrderEvent::OrderConfirmed,
        );
        assert_eq!(again, Some(row));
    }
}
