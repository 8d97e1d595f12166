//! PostgreSQL: batched upserts into a table shaped like the `orders` view
//! (one transaction per batch of 1,000 rows, `INSERT ... SELECT FROM UNNEST
//! ... ON CONFLICT ... WHERE version < EXCLUDED.version`, as the projector
//! writes), and primary-key point reads.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;
use uuid::Uuid;

use crate::load;
use crate::stats::Measured;

/// Rows per transaction, the projector's largest batch.
pub const BATCH: usize = 1_000;

const TABLE: &str = "CREATE TABLE orders (
    order_id uuid PRIMARY KEY, customer_id text NOT NULL, status text NOT NULL,
    status_reason text, cancellation_reason text, currency text NOT NULL,
    lines json NOT NULL, total_minor bigint, version bigint NOT NULL,
    placed_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
  CREATE INDEX orders_customer_history ON orders (customer_id, placed_at DESC, order_id DESC)";

/// A fresh database holding the view-shaped table.
pub async fn fresh(url: &str) -> anyhow::Result<PgPool> {
    drop(sqlx::Postgres::drop_database(url).await);
    sqlx::Postgres::create_database(url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    sqlx::raw_sql(TABLE).execute(&pool).await?;
    Ok(pool)
}

/// Upserts `ids` once as inserts and once as updates (version 2), a batch per
/// transaction: rows per second over both passes.
pub async fn upsert(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<Measured> {
    let lines = serde_json::json!([
        {"sku": "BENCH-003", "quantity": 2, "unit_price": {"minor": 1250, "currency": "USD"}},
        {"sku": "BENCH-011", "quantity": 1, "unit_price": {"minor": 1999, "currency": "USD"}}
    ])
    .to_string();
    let started = Instant::now();
    for version in [1i64, 2] {
        for chunk in ids.chunks(BATCH) {
            let n = chunk.len();
            let now = Utc::now();
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO orders (order_id, customer_id, status, status_reason,
                   cancellation_reason, currency, lines, total_minor, version, placed_at, updated_at)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                      $6::text[], $7::text[]::json[], $8::bigint[], $9::bigint[],
                                      $10::timestamptz[], $11::timestamptz[])
                 ON CONFLICT (order_id) DO UPDATE SET
                   status = EXCLUDED.status, status_reason = EXCLUDED.status_reason,
                   cancellation_reason = EXCLUDED.cancellation_reason, lines = EXCLUDED.lines,
                   total_minor = EXCLUDED.total_minor, version = EXCLUDED.version,
                   updated_at = EXCLUDED.updated_at
                 WHERE orders.version < EXCLUDED.version",
            )
            .bind(chunk)
            .bind(chunk.iter().map(|id| format!("bench-c{}", id.as_u128() % 256)).collect::<Vec<_>>())
            .bind(vec![if version == 1 { "pending" } else { "confirmed" }; n])
            .bind(vec![None::<String>; n])
            .bind(vec![None::<String>; n])
            .bind(vec!["USD"; n])
            .bind(vec![lines.clone(); n])
            .bind(vec![Some(4499i64); n])
            .bind(vec![version; n])
            .bind(vec![now; n])
            .bind(vec![now; n])
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    let rows = 2 * ids.len() as u64;
    Ok(
        Measured::new(rows, 0, started.elapsed(), None).with_note(format!(
            "{BATCH} rows per transaction, inserts then updates"
        )),
    )
}

/// Point reads by primary key from `concurrency` workers.
pub async fn point_reads(
    pool: &PgPool,
    ids: Arc<Vec<Uuid>>,
    concurrency: usize,
    duration: Duration,
) -> Measured {
    let pool = pool.clone();
    load::closed_loop(concurrency, duration / 5, duration, &[], move |i| {
        let (pool, ids) = (pool.clone(), ids.clone());
        async move {
            let id = ids[(i as usize).wrapping_mul(7919) % ids.len()];
            sqlx::query("SELECT * FROM orders WHERE order_id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .is_ok_and(|row| row.is_some())
        }
    })
    .await
}
