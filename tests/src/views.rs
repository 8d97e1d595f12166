//! The views checked against the log: the catalog, orders, timeline and
//! sales tables must equal the fold of every event, as the projector's pure
//! folds compute it. Shared by the crash and replay tests, with the
//! projector as a process of its own that they can kill; [`traffic`] sends the
//! orders they fold and [`query`] reads the views through the query API.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::domain::{CatalogEvent, OrderEvent, PaymentEvent, ShipmentEvent};
use events::{AggregateType, EventMeta};
use projections::views::{catalog_items, orders, sales};
use uuid::Uuid;

use crate::{TestEnv, eventually, fold, log};

pub mod query;
pub mod traffic;

/// The Redis cache of the test's views, as the query API reads it (its
/// namespace, and entries checked under the tests' signing key).
pub fn cache(env: &TestEnv) -> projections::cache::Cache {
    projections::cache::Cache::new(
        &env.redis_url,
        projections::cache::namespace_for(&env.views_db_url),
        Duration::from_secs(2),
    )
    .expect("the test's cache")
    .with_signing(&crate::auth_config().signing)
}

/// The version of the order `id` in the `orders` view, if it has a row.
pub async fn order_version(views: &sqlx::PgPool, id: Uuid) -> Option<i64> {
    sqlx::query_scalar("SELECT version FROM orders WHERE order_id = $1")
        .bind(id)
        .fetch_optional(views)
        .await
        .unwrap()
}

/// The projector service (`binary`: the test's
/// `CARGO_BIN_EXE_projections-service`) in a process of its own, in the
/// test's consumer group, caching in the Redis at `redis_url`; answers the
/// process and its HTTP address.
pub async fn projector_process(
    binary: &str,
    env: &TestEnv,
    redis_url: &str,
) -> (tokio::process::Child, String) {
    let vars = [
        ("KAFKA_BROKERS", env.kafka.brokers.clone()),
        ("TOPIC_PREFIX", env.kafka.topic_prefix.clone()),
        ("KAFKA_PARTITIONS", env.kafka.partitions.to_string()),
        ("GROUP_ID", format!("t{}-projections", env.id)),
        ("DATABASE_URL", env.views_db_url.clone()),
        ("REDIS_URL", redis_url.to_owned()),
    ];
    crate::spawn_process(binary, &vars).await
}

/// PostgreSQL keeps microseconds.
pub fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap()
}

/// Ok when the views equal the fold of the whole log, else what differs.
pub async fn views_equal_the_fold(env: &TestEnv, pool: &sqlx::PgPool) -> Result<(), String> {
    let catalog = log::<CatalogEvent>(env, AggregateType::CatalogItem).await;
    let mut expected: Vec<_> = catalog
        .values()
        .filter_map(|events| fold(events, catalog_items::evolve))
        .map(|mut item| {
            item.updated_at = micros(item.updated_at);
            item
        })
        .collect();
    expected.sort_by(|a, b| a.sku.cmp(&b.sku));
    let skus: Vec<String> = expected.iter().map(|i| i.sku.clone()).collect();
    let mut items = catalog_items::find_many(pool, &skus)
        .await
        .map_err(|e| e.to_string())?;
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    if items != expected {
        return Err(format!("catalog: {items:?} != {expected:?}"));
    }
    let order_log = log::<OrderEvent>(env, AggregateType::Order).await;
    let mut expected: Vec<_> = order_log
        .values()
        .filter_map(|events| fold(events, orders::evolve))
        .map(|mut order| {
            order.placed_at = micros(order.placed_at);
            order.updated_at = micros(order.updated_at);
            order
        })
        .collect();
    expected.sort_by_key(|o| o.order_id);
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<Uuid> = expected.iter().map(|o| o.order_id).collect();
    let mut rows: Vec<_> = orders::find_many(&mut conn, &ids)
        .await
        .map_err(|e| e.to_string())?
        .into_values()
        .collect();
    rows.sort_by_key(|o| o.order_id);
    if rows != expected || count != expected.len() as i64 {
        let differ = rows.iter().zip(&expected).filter(|(a, b)| a != b).count();
        return Err(format!(
            "{count} order rows, {} expected, {differ} differ",
            expected.len()
        ));
    }
    // The timeline has a row per order, payment and shipment event.
    let payments = log::<PaymentEvent>(env, AggregateType::Payment).await;
    let shipments = log::<ShipmentEvent>(env, AggregateType::Shipment).await;
    let events: usize = order_log.values().map(Vec::len).sum::<usize>()
        + payments.values().map(Vec::len).sum::<usize>()
        + shipments.values().map(Vec::len).sum::<usize>();
    let (timeline,): (i64,) = sqlx::query_as("SELECT count(*) FROM order_timeline")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    if timeline != events as i64 {
        return Err(format!("{timeline} timeline rows for {events} events"));
    }
    let expected = expected_sales(&order_log);
    for bucket in ["minute", "hour", "day"] {
        let stored: (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT sum(orders)::bigint, sum(revenue_minor)::bigint FROM sales WHERE bucket = $1",
        )
        .bind(bucket)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
        if stored != (Some(expected.0), Some(expected.1)) {
            return Err(format!("{bucket} sales {stored:?}, expected {expected:?}"));
        }
    }
    Ok(())
}

/// Confirmed orders and revenue, net of cancellations, by the pure folds.
pub fn expected_sales(order_log: &HashMap<String, Vec<(EventMeta, OrderEvent)>>) -> (i64, i64) {
    let (mut count, mut revenue) = (0, 0);
    for events in order_log.values() {
        let mut row = None;
        for (meta, event) in events {
            if let Some(sale) = sales::delta(row.as_ref(), meta, event) {
                count += sale.orders;
                revenue += sale.revenue_minor;
            }
            row = orders::evolve(row, meta, event);
        }
    }
    (count, revenue)
}

/// Waits (bounded) until the views equal the fold of the log.
pub async fn assert_views_equal_the_fold(env: &TestEnv, pool: &sqlx::PgPool) {
    let equal = eventually(Duration::from_secs(120), || async {
        views_equal_the_fold(env, pool).await.ok()
    })
    .await;
    if equal.is_none() {
        let differs = views_equal_the_fold(env, pool).await.unwrap_err();
        panic!("the views never equalled the fold of the log: {differs}");
    }
}
