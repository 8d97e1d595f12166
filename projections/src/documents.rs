//! The JSON documents the query API serves for the hot views (order detail,
//! catalog item), and their bulk loaders. They live here, not in `query-api`,
//! because the projector writes the very same documents to the Redis cache
//! after each batch, so a cached answer and a PostgreSQL answer are
//! byte-for-byte the same shape.
//!
//! Each document comes with the version of every stream it reflects, which
//! the cache uses for its version guard and readers compare with consistency
//! tokens.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::AggregateType;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::views::catalog_items::{self, CatalogItem};
use crate::views::order_payments::PaymentRow;
use crate::views::order_shipments::ShipmentRow;
use crate::views::order_timeline::TimelineEntry;
use crate::views::orders::{LineView, OrderRow};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Price {
    pub minor: i64,
    pub currency: String,
}

/// `GET /catalog/items/{sku}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ItemDocument {
    pub sku: String,
    pub name: String,
    pub unit_price: Price,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<CatalogItem> for ItemDocument {
    fn from(item: CatalogItem) -> Self {
        ItemDocument {
            available: item.available(),
            unit_price: Price {
                minor: item.unit_price_minor,
                currency: item.currency,
            },
            sku: item.sku,
            name: item.name,
            on_hand: item.on_hand,
            reserved: item.reserved,
            version: item.version,
            updated_at: item.updated_at,
        }
    }
}

/// `GET /orders/{order_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderDocument {
    pub order_id: Uuid,
    pub customer_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub cancellation_reason: Option<String>,
    pub currency: String,
    pub lines: Vec<LineView>,
    /// Absent until the order is priced from its stock reservations.
    pub total: Option<Price>,
    pub payment_status: Option<String>,
    pub shipment_status: Option<String>,
    pub tracking_ref: Option<String>,
    pub timeline: Vec<TimelineEntry>,
    /// The order aggregate's sequence the view reflects.
    pub version: i64,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The payment and shipment streams' sequences, for the cache's guard
    /// and consistency tokens; not part of the served JSON.
    #[serde(skip)]
    #[schema(ignore)]
    pub payment_version: i64,
    #[serde(skip)]
    #[schema(ignore)]
    pub shipment_version: i64,
}

impl OrderDocument {
    /// The sequence this document reflects of each stream feeding it.
    pub fn versions(&self) -> [(AggregateType, i64); 3] {
        [
            (AggregateType::Order, self.version),
            (AggregateType::Payment, self.payment_version),
            (AggregateType::Shipment, self.shipment_version),
        ]
    }
}

impl From<OrderRow> for OrderDocument {
    fn from(row: OrderRow) -> Self {
        OrderDocument {
            total: row.total_minor.map(|minor| Price {
                minor,
                currency: row.currency.clone(),
            }),
            order_id: row.order_id,
            customer_id: row.customer_id,
            status: row.status,
            status_reason: row.status_reason,
            cancellation_reason: row.cancellation_reason,
            currency: row.currency,
            lines: row.lines.0,
            payment_status: None,
            shipment_status: None,
            tracking_ref: None,
            timeline: Vec::new(),
            version: row.version,
            placed_at: row.placed_at,
            updated_at: row.updated_at,
            payment_version: 0,
            shipment_version: 0,
        }
    }
}

/// The catalog items under `skus` that exist.
pub async fn items(pool: &PgPool, skus: &[String]) -> Result<Vec<ItemDocument>, sqlx::Error> {
    Ok(catalog_items::find_many(pool, skus)
        .await?
        .into_iter()
        .map(ItemDocument::from)
        .collect())
}

/// The orders under `ids` that exist, read in one snapshot so status,
/// payment, shipment and timeline come from the same committed batches.
pub async fn orders(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<OrderDocument>, sqlx::Error> {
    Ok(order_entries(pool, ids).await?.documents)
}

/// What the cache is written with for `ids` from what PostgreSQL holds: the
/// documents of the orders that exist, and the versions of those with only
/// a payment or shipment row (see [`Unplaced`]). One statement reads it
/// all, so from one snapshot and in one round trip (a cache miss of the
/// query API used to make six: a read-only transaction of four queries).
pub async fn order_entries(pool: &PgPool, ids: &[Uuid]) -> Result<OrderEntries, sqlx::Error> {
    let stored: Vec<Stored> = match ids {
        [id] => sqlx::query_as(STORED_ONE).bind(id).fetch_all(pool).await?,
        _ => sqlx::query_as(STORED).bind(ids).fetch_all(pool).await?,
    };
    let (mut rows, mut payments, mut shipments) = (HashMap::new(), HashMap::new(), HashMap::new());
    let mut timelines = HashMap::new();
    for s in stored {
        if let Some(row) = s.order_row {
            timelines.insert(row.order_id, s.timeline);
            rows.insert(row.order_id, row);
        }
        if let Some(payment) = s.payment {
            payments.insert(payment.order_id, payment);
        }
        if let Some(shipment) = s.shipment {
            shipments.insert(shipment.order_id, shipment);
        }
    }
    Ok(OrderEntries {
        unplaced: unplaced(&rows, &payments, &shipments),
        documents: assemble(rows, payments, shipments, timelines),
        unbuilt: Vec::new(),
    })
}

/// The rows and timeline of one asked-for order with any row.
#[derive(sqlx::FromRow)]
struct Stored {
    #[sqlx(json(nullable))]
    order_row: Option<OrderRow>,
    #[sqlx(json(nullable))]
    payment: Option<PaymentRow>,
    #[sqlx(json(nullable))]
    shipment: Option<ShipmentRow>,
    /// Empty unless the order has its own row: only that makes a document.
    #[sqlx(json)]
    timeline: Vec<TimelineEntry>,
}

/// Each view's row as JSON (a table's columns are its row type's fields;
/// `row_to_json` of a row the outer join did not find is NULL), the
/// timeline's rows as a JSON array, for the ids the statement's `FROM`
/// names. Ids with no row at all are left out.
macro_rules! stored {
    ($ids:literal) => {
        concat!(
            "SELECT row_to_json(o) AS order_row, row_to_json(p) AS payment, \
                    row_to_json(s) AS shipment, coalesce(t.timeline, '[]') AS timeline \
             FROM ",
            $ids,
            " AS ids(order_id) \
             LEFT JOIN orders o ON o.order_id = ids.order_id \
             LEFT JOIN order_payments p ON p.order_id = ids.order_id \
             LEFT JOIN order_shipments s ON s.order_id = ids.order_id \
             LEFT JOIN LATERAL ( \
                 SELECT json_agg(e) AS timeline FROM order_timeline e WHERE e.order_id = o.order_id \
             ) t ON true \
             WHERE o.order_id IS NOT NULL OR p.order_id IS NOT NULL OR s.order_id IS NOT NULL"
        )
    };
}

/// The documents of any number of ids.
const STORED: &str = stored!("unnest($1::uuid[])");
/// The documents of one id: what a query API cache miss asks for. Over an
/// array, PostgreSQL's plan for any array (its generic plan) guesses ten
/// ids, so the statement was planned anew for the one id of each call, and
/// planning cost four times the reads (BENCHMARKS.md, "One order's
/// document, planned once"). Over one id the generic plan is the custom
/// plan, and the prepared statement keeps it from its sixth run on, until
/// an analysis of the tables invalidates it.
const STORED_ONE: &str = stored!("(VALUES ($1::uuid))");

/// What the projector knows of an order whose own row it has not folded:
/// its payment or shipment events came first, because another projector
/// holds the order's partition, or is behind on it. There is nothing to
/// serve, but the cache entry must still learn these versions: the other
/// projector may at this moment build the order's document in a transaction
/// that cannot see them, and once written, that document would otherwise
/// be served as the latest for good (see [`crate::cache`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unplaced {
    pub order_id: Uuid,
    pub payment_version: i64,
    pub shipment_version: i64,
}

impl Unplaced {
    /// The versions an entry without a body is written with (the order
    /// stream's is 0: no row).
    pub fn versions(&self) -> [(AggregateType, i64); 3] {
        [
            (AggregateType::Order, 0),
            (AggregateType::Payment, self.payment_version),
            (AggregateType::Shipment, self.shipment_version),
        ]
    }
}

/// An order whose document a batch did not build because the projector
/// was far behind (`dispatch::Mode::CatchUp`), with the versions the batch
/// left its rows at (0 for a stream whose rows the batch did not load).
/// Written as an entry without a body, it takes the body away from an
/// entry older in one of them, so readers go to PostgreSQL for the order
/// until a read of it there or a later batch writes its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbuilt {
    pub order_id: Uuid,
    pub versions: [(AggregateType, i64); 3],
}

/// What a live batch hands the cache for the orders it touched.
#[derive(Debug, Default)]
pub struct OrderEntries {
    pub documents: Vec<OrderDocument>,
    pub unplaced: Vec<Unplaced>,
    pub unbuilt: Vec<Unbuilt>,
}

/// The orders that have a payment or shipment row among those given but
/// no order row.
pub fn unplaced(
    rows: &HashMap<Uuid, OrderRow>,
    payments: &HashMap<Uuid, PaymentRow>,
    shipments: &HashMap<Uuid, ShipmentRow>,
) -> Vec<Unplaced> {
    let ids: std::collections::BTreeSet<Uuid> = payments
        .keys()
        .chain(shipments.keys())
        .filter(|id| !rows.contains_key(id))
        .copied()
        .collect();
    ids.into_iter()
        .map(|order_id| Unplaced {
            order_id,
            payment_version: payments.get(&order_id).map_or(0, |p| p.version),
            shipment_version: shipments.get(&order_id).map_or(0, |s| s.version),
        })
        .collect()
}

/// The versions of the orders `ids` in the rows given (see [`Unbuilt`]).
pub fn unbuilt(
    ids: Vec<Uuid>,
    rows: &HashMap<Uuid, OrderRow>,
    payments: &HashMap<Uuid, PaymentRow>,
    shipments: &HashMap<Uuid, ShipmentRow>,
) -> Vec<Unbuilt> {
    ids.into_iter()
        .map(|order_id| Unbuilt {
            order_id,
            versions: [
                (
                    AggregateType::Order,
                    rows.get(&order_id).map_or(0, |r| r.version),
                ),
                (
                    AggregateType::Payment,
                    payments.get(&order_id).map_or(0, |p| p.version),
                ),
                (
                    AggregateType::Shipment,
                    shipments.get(&order_id).map_or(0, |s| s.version),
                ),
            ],
        })
        .collect()
}

/// Timeline entries grouped by order.
pub fn timelines(entries: Vec<TimelineEntry>) -> HashMap<Uuid, Vec<TimelineEntry>> {
    let mut timelines: HashMap<Uuid, Vec<TimelineEntry>> = HashMap::new();
    for entry in entries {
        timelines.entry(entry.order_id).or_default().push(entry);
    }
    timelines
}

/// The documents of `rows`, with their payment, shipment and timeline: the
/// one way a document is put together, whether a reader loads the rows or
/// the projector has just folded them.
///
/// A document is a function of the stream versions it reports: its timeline
/// holds each stream's entries up to the version of that stream's row (none
/// when the row is absent), oldest first. A reader's snapshot never holds
/// more; the projector, which reads other streams' rows and the timeline in
/// separate statements, may see a newer entry than the row it read, and
/// leaves it out here.
pub fn assemble(
    rows: HashMap<Uuid, OrderRow>,
    mut payments: HashMap<Uuid, PaymentRow>,
    mut shipments: HashMap<Uuid, ShipmentRow>,
    mut timelines: HashMap<Uuid, Vec<TimelineEntry>>,
) -> Vec<OrderDocument> {
    rows.into_values()
        .map(|row| {
            let id = row.order_id;
            let mut document = OrderDocument::from(row);
            if let Some(payment) = payments.remove(&id) {
                document.payment_status = Some(payment.status);
                document.payment_version = payment.version;
            }
            if let Some(shipment) = shipments.remove(&id) {
                document.shipment_status = Some(shipment.status);
                document.tracking_ref = shipment.tracking_ref;
                document.shipment_version = shipment.version;
            }
            let mut timeline = timelines.remove(&id).unwrap_or_default();
            let versions = document.versions();
            timeline.retain(|entry| {
                versions.iter().any(|(stream, version)| {
                    stream.as_str() == entry.source && entry.sequence <= *version
                })
            });
            timeline.sort_by(|a, b| {
                (a.occurred_at, &a.source, a.sequence).cmp(&(b.occurred_at, &b.source, b.sequence))
            });
            document.timeline = timeline;
            document
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
