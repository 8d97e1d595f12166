//! The `catalog_items` view: price and stock per SKU, from `catalog.events`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::domain::CatalogEvent;
use events::{AggregateType, EventMeta};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};

use super::{already_applied, decode, fold_into, sequence};
use crate::record::Record;

/// The projection name under which the catalog view stores its positions.
pub const PROJECTION: &str = "catalog";

/// One catalog item as the view holds it. `available` is derived, never stored
/// apart from `on_hand` and `reserved` (PostgreSQL computes the column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CatalogItem {
    pub sku: String,
    pub name: String,
    pub unit_price_minor: i64,
    pub currency: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// The sequence of the last catalog event applied.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl CatalogItem {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// The fold: one catalog event applied to the item it names. Events of an
/// item that was never created (a reservation refused as `unknown_sku`) leave
/// it absent, so the view never shows a phantom item.
pub fn evolve(
    item: Option<CatalogItem>,
    meta: &EventMeta,
    event: &CatalogEvent,
) -> Option<CatalogItem> {
    if let Some(item) = &item
        && already_applied(item.version, meta)
    {
        return Some(item.clone());
    }
    let mut item = match (item, event) {
        (
            None,
            CatalogEvent::ItemCreated {
                name,
                unit_price,
                initial_stock,
            },
        ) => CatalogItem {
            sku: meta.aggregate_id.clone(),
            name: name.clone(),
            unit_price_minor: unit_price.minor,
            currency: unit_price.currency.code().to_owned(),
            on_hand: i64::from(*initial_stock),
            reserved: 0,
            version: 0,
            updated_at: meta.occurred_at,
        },
        (None, _) => return None,
        (Some(item), event) => apply(item, event),
    };
    item.version = sequence(meta);
    item.updated_at = meta.occurred_at;
    Some(item)
}

fn apply(mut item: CatalogItem, event: &CatalogEvent) -> CatalogItem {
    match event {
        // The aggregate never creates an item twice; the first creation stands.
        CatalogEvent::ItemCreated { .. } | CatalogEvent::StockReservationRejected { .. } => {}
        CatalogEvent::Restocked { quantity } => item.on_hand += i64::from(*quantity),
        CatalogEvent::PriceChanged { unit_price } => {
            item.unit_price_minor = unit_price.minor;
            item.currency = unit_price.currency.code().to_owned();
        }
        CatalogEvent::StockReserved { quantity, .. } => item.reserved += i64::from(*quantity),
        CatalogEvent::StockReleased { quantity, .. } => {
            item.reserved = (item.reserved - i64::from(*quantity)).max(0);
        }
        CatalogEvent::StockCommitted { quantity, .. } => {
            item.on_hand = (item.on_hand - i64::from(*quantity)).max(0);
            item.reserved = (item.reserved - i64::from(*quantity)).max(0);
        }
    }
    item
}

/// Applies a batch of decoded `catalog.events` records; answers the items
/// they changed, as stored.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    events: &[(EventMeta, CatalogEvent)],
) -> Result<Vec<CatalogItem>, sqlx::Error> {
    let mut skus: Vec<&str> = events
        .iter()
        .map(|(m, _)| m.aggregate_id.as_str())
        .collect();
    skus.sort_unstable();
    skus.dedup();
    let mut items = load(tx, &skus).await?;
    for (meta, event) in events {
        fold_into(&mut items, meta.aggregate_id.clone(), meta, event, evolve);
    }
    let items: Vec<CatalogItem> = items.into_values().collect();
    store(tx, &items).await?;
    Ok(items)
}

/// Decodes one record of `catalog.events`.
pub fn decode_one(record: &Record) -> Result<(EventMeta, CatalogEvent), String> {
    decode::<CatalogEvent>(record, AggregateType::CatalogItem)
}

const COLUMNS: &str =
    "sku, name, unit_price_minor, currency, on_hand, reserved, version, updated_at";

async fn load(
    tx: &mut Transaction<'_, Postgres>,
    skus: &[&str],
) -> Result<HashMap<String, CatalogItem>, sqlx::Error> {
    let rows: Vec<CatalogItem> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM catalog_items WHERE sku = ANY($1)"
    ))
    .bind(skus)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.sku.clone(), r)).collect())
}

async fn store(
    tx: &mut Transaction<'_, Postgres>,
    items: &[CatalogItem],
) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    // A stable order keeps row locks in the same order across instances.
    let mut items: Vec<&CatalogItem> = items.iter().collect();
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    let column = |f: fn(&CatalogItem) -> i64| items.iter().map(|i| f(i)).collect::<Vec<i64>>();
    let text = |f: fn(&CatalogItem) -> &str| items.iter().map(|i| f(i)).collect::<Vec<&str>>();
    let updated: Vec<DateTime<Utc>> = items.iter().map(|i| i.updated_at).collect();
    sqlx::query(&format!(
        "INSERT INTO catalog_items ({COLUMNS})
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[],
                              $5::bigint[], $6::bigint[], $7::bigint[], $8::timestamptz[])
         ON CONFLICT (sku) DO UPDATE SET
           name = EXCLUDED.name, unit_price_minor = EXCLUDED.unit_price_minor,
           currency = EXCLUDED.currency, on_hand = EXCLUDED.on_hand,
           reserved = EXCLUDED.reserved, version = EXCLUDED.version,
           updated_at = EXCLUDED.updated_at
         WHERE catalog_items.version < EXCLUDED.version"
    ))
    .bind(text(|i| &i.sku))
    .bind(text(|i| &i.name))
    .bind(column(|i| i.unit_price_minor))
    .bind(text(|i| &i.currency))
    .bind(column(|i| i.on_hand))
    .bind(column(|i| i.reserved))
    .bind(column(|i| i.version))
    .bind(updated)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The item under `sku`, for readers.
pub async fn find(pool: &PgPool, sku: &str) -> Result<Option<CatalogItem>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM catalog_items WHERE sku = $1"
    ))
    .bind(sku)
    .fetch_optional(pool)
    .await
}

/// The items under `skus` that exist, for readers and the cache.
pub async fn find_many(pool: &PgPool, skus: &[String]) -> Result<Vec<CatalogItem>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM catalog_items WHERE sku = ANY($1)"
    ))
    .bind(skus)
    .fetch_all(pool)
    .await
}

/// The version the view has reached for `sku` (0 when it has no such item).
pub async fn version(pool: &PgPool, sku: &str) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM catalog_items WHERE sku = $1")
        .bind(sku)
        .fetch_optional(pool)
        .await?;
    Ok(row.map_or(0, |(v,)| v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::testing::meta;
    use events::domain::{Currency, Money, OrderId, ReservationRejectedReason};
    use uuid::Uuid;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::new("USD").unwrap())
    }

    /// Folds `events` (sequences 1..) for SKU-1 from nothing.
    fn fold(events: &[CatalogEvent]) -> Option<CatalogItem> {
        let mut item = None;
        for (n, event) in events.iter().enumerate() {
            let m = meta(
                AggregateType::CatalogItem,
                "SKU-1",
                n as u64 + 1,
                event.event_type(),
            );
            item = evolve(item, &m, event);
        }
        item
    }

    fn created(stock: u32) -> CatalogEvent {
        CatalogEvent::ItemCreated {
            name: "Mug".into(),
            unit_price: usd(1250),
            initial_stock: stock,
        }
    }

    fn order() -> OrderId {
        OrderId::from(Uuid::from_u128(7))
    }

    #[test]
    fn creation_sets_price_stock_and_version() {
        let item = fold(&[created(10)]).unwrap();
        assert_eq!((item.sku.as_str(), item.name.as_str()), ("SKU-1", "Mug"));
        assert_eq!(
            (item.unit_price_minor, item.currency.as_str()),
            (1250, "USD")
        );
        assert_eq!(
            (item.on_hand, item.reserved, item.available(), item.version),
            (10, 0, 10, 1)
        );
    }

    #[test]
    fn reservations_release_and_commit_move_stock() {
        let item = fold(&[
            created(10),
            CatalogEvent::Restocked { quantity: 5 },
            CatalogEvent::StockReserved {
                order_id: order(),
                quantity: 4,
                unit_price: usd(1250),
            },
            CatalogEvent::StockReserved {
                order_id: order(),
                quantity: 2,
                unit_price: usd(1250),
            },
            CatalogEvent::StockReleased {
                order_id: order(),
                quantity: 2,
            },
            CatalogEvent::StockCommitted {
                order_id: order(),
                quantity: 4,
            },
        ])
        .unwrap();
        assert_eq!(
            (item.on_hand, item.reserved, item.available(), item.version),
            (11, 0, 11, 6)
        );
    }

    #[test]
    fn a_price_change_and_a_refused_reservation_only_move_what_they_name() {
        let item = fold(&[
            created(1),
            CatalogEvent::PriceChanged {
                unit_price: usd(990),
            },
            CatalogEvent::StockReservationRejected {
                order_id: order(),
                quantity: 5,
                available: 1,
                reason: ReservationRejectedReason::InsufficientStock,
            },
        ])
        .unwrap();
        assert_eq!(
            (
                item.unit_price_minor,
                item.on_hand,
                item.reserved,
                item.version
            ),
            (990, 1, 0, 3)
        );
    }

    #[test]
    fn an_unknown_sku_never_appears_until_it_is_created() {
        let rejected = CatalogEvent::StockReservationRejected {
            order_id: order(),
            quantity: 1,
            available: 0,
            reason: ReservationRejectedReason::UnknownSku,
        };
        assert_eq!(fold(std::slice::from_ref(&rejected)), None);
        let item = fold(&[rejected, created(3)]).unwrap();
        assert_eq!((item.on_hand, item.version), (3, 2));
    }

    #[test]
    fn a_redelivered_event_changes_nothing() {
        let item = fold(&[created(10), CatalogEvent::Restocked { quantity: 5 }]).unwrap();
        let again = meta(AggregateType::CatalogItem, "SKU-1", 2, "Restocked");
        let redelivered = evolve(
            Some(item.clone()),
            &again,
            &CatalogEvent::Restocked { quantity: 5 },
        );
        assert_eq!(redelivered, Some(item));
    }
}
