//! The `sales` view: confirmed orders and their revenue per minute, hour and
//! day per currency, in real time. An order counts when it is confirmed
//! (with the total the orders view holds for it) and is taken back, in the
//! bucket of the cancellation, when a confirmed order is cancelled.
//!
//! Buckets are running sums, so each event must be counted exactly once:
//! the fold skips events the order row already reflects, and the positions
//! committed with the sums keep a redelivered batch from being applied again.
//!
//! Sums saturate: a count or a revenue that would leave `i64` stays at
//! `i64::MAX` (or `MIN`), in the fold and in the upsert alike. An overflow
//! cannot happen with the catalog's price bound short of about 180,000
//! orders of the largest possible total in one bucket; if it does, the
//! bucket is pinned at the bound (and `sales_saturated_total` counts it)
//! rather than failing the batch, which would stall every view of the
//! orders stream behind one sum.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use events::EventMeta;
use events::domain::{OrderEvent, OrderStatus};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};

use super::already_applied;
use super::orders::OrderRow;

/// The bucket sizes the view keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Minute, Bucket::Hour, Bucket::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    pub fn parse(text: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == text)
    }

    pub fn width(self) -> TimeDelta {
        match self {
            Bucket::Minute => TimeDelta::minutes(1),
            Bucket::Hour => TimeDelta::hours(1),
            Bucket::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket holding `at`.
    pub fn start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.width()).unwrap_or(at)
    }
}

/// What one event changes in the sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleDelta {
    pub at: DateTime<Utc>,
    pub currency: String,
    pub orders: i64,
    pub revenue_minor: i64,
}

/// The pure part: the change `event` makes to the sales, given the order as
/// it was before the event.
pub fn delta(before: Option<&OrderRow>, meta: &EventMeta, event: &OrderEvent) -> Option<SaleDelta> {
    let row = before?;
    if already_applied(row.version, meta) {
        return None;
    }
    let counted = |status: &str| {
        [
            OrderStatus::Confirmed,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ]
        .iter()
        .any(|s| s.as_str() == status)
    };
    let sign = match event {
        OrderEvent::OrderConfirmed if !counted(&row.status) => 1,
        OrderEvent::OrderCancelled { .. } if counted(&row.status) => -1,
        _ => return None,
    };
    Some(SaleDelta {
        at: meta.occurred_at,
        currency: row.currency.clone(),
        orders: sign,
        revenue_minor: row.total_minor.unwrap_or(0).saturating_mul(sign),
    })
}

/// Sums deltas per bucket, ready to be added to the stored sums.
pub fn bucketed(deltas: &[SaleDelta]) -> BTreeMap<(Bucket, DateTime<Utc>, String), (i64, i64)> {
    let mut sums = BTreeMap::new();
    for d in deltas {
        for bucket in Bucket::ALL {
            let key = (bucket, bucket.start(d.at), d.currency.clone());
            let sum: &mut (i64, i64) = sums.entry(key).or_default();
            let (orders, revenue) = (
                sum.0.checked_add(d.orders),
                sum.1.checked_add(d.revenue_minor),
            );
            if orders.is_none() || revenue.is_none() {
                metrics::counter!("sales_saturated_total").increment(1);
            }
            sum.0 = sum.0.saturating_add(d.orders);
            sum.1 = sum.1.saturating_add(d.revenue_minor);
        }
    }
    sums
}

/// Adds `deltas` to the stored sums, locking the buckets in one order (by
/// bucket, start and currency), so batches adding at once never deadlock.
pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    deltas: &[SaleDelta],
) -> Result<(), sqlx::Error> {
    let sums = bucketed(deltas);
    if sums.is_empty() {
        return Ok(());
    }
    let mut buckets = Vec::new();
    let mut starts = Vec::new();
    let mut currencies = Vec::new();
    let mut orders = Vec::new();
    let mut revenue = Vec::new();
    for ((bucket, start, currency), (count, minor)) in sums {
        buckets.push(bucket.as_str().to_owned());
        starts.push(start);
        currencies.push(currency);
        orders.push(count);
        revenue.push(minor);
    }
    sqlx::query(
        "INSERT INTO sales (bucket, starts_at, currency, orders, revenue_minor)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::bigint[], $5::bigint[])
         ON CONFLICT (bucket, starts_at, currency) DO UPDATE SET
           orders = sales_saturating_add(sales.orders, EXCLUDED.orders),
           revenue_minor = sales_saturating_add(sales.revenue_minor, EXCLUDED.revenue_minor)",
    )
    .bind(&buckets)
    .bind(&starts)
    .bind(&currencies)
    .bind(&orders)
    .bind(&revenue)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SalesRow {
    pub starts_at: DateTime<Utc>,
    pub currency: String,
    pub orders: i64,
    pub revenue_minor: i64,
}

/// The buckets of size `bucket` starting in `[from, to]`, oldest first.
pub async fn find(
    pool: &PgPool,
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    currency: Option<&str>,
) -> Result<Vec<SalesRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT starts_at, currency, orders, revenue_minor FROM sales
         WHERE bucket = $1 AND starts_at >= $2 AND starts_at <= $3
           AND ($4::text IS NULL OR currency = $4)
         ORDER BY starts_at, currency",
    )
    .bind(bucket.as_str())
    .bind(bucket.start(from))
    .bind(to)
    .bind(currency)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::testing::{at, meta};
    use events::AggregateType;
    use sqlx::types::Json;
    use uuid::Uuid;

    const ID: &str = "01900000-0000-7000-8000-000000000001";

    fn row(status: OrderStatus, version: i64) -> OrderRow {
        OrderRow {
            order_id: Uuid::parse_str(ID).unwrap(),
            customer_id: "c".into(),
            status: status.as_str().into(),
            status_reason: None,
            cancellation_reason: None,
            currency: "EUR".into(),
            lines: Json(Vec::new()),
            total_minor: Some(2500),
            version,
            placed_at: at(0),
            updated_at: at(0),
        }
    }

    fn event_meta(sequence: u64) -> EventMeta {
        meta(AggregateType::Order, ID, sequence, "x")
    }

    #[test]
    fn a_confirmation_counts_the_total_and_a_cancellation_takes_it_back() {
        let confirmed = delta(
            Some(&row(OrderStatus::Pending, 2)),
            &event_meta(3),
            &OrderEvent::OrderConfirmed,
        )
        .unwrap();
        assert_eq!((confirmed.orders, confirmed.revenue_minor), (1, 2500));
        let cancel = OrderEvent::OrderCancelled { reason: "r".into() };
        let cancelled = delta(
            Some(&row(OrderStatus::Confirmed, 3)),
            &event_meta(4),
            &cancel,
        );
        assert_eq!(cancelled.map(|d| d.revenue_minor), Some(-2500));
    }

    #[test]
    fn unconfirmed_cancellations_and_redeliveries_count_nothing() {
        let cancel = OrderEvent::OrderCancelled { reason: "r".into() };
        assert_eq!(
            delta(Some(&row(OrderStatus::Pending, 2)), &event_meta(3), &cancel),
            None
        );
        let again = delta(
            Some(&row(OrderStatus::Confirmed, 3)),
            &event_meta(3),
            &OrderEvent::OrderConfirmed,
        );
        assert_eq!(again, None);
        assert_eq!(
            delta(None, &event_meta(1), &OrderEvent::OrderConfirmed),
            None
        );
    }

    #[test]
    fn sums_saturate_instead_of_overflowing() {
        let huge = |revenue_minor| SaleDelta {
            at: at(0),
            currency: "EUR".into(),
            orders: 1,
            revenue_minor,
        };
        let sums = bucketed(&[huge(i64::MAX - 1), huge(i64::MAX - 1)]);
        assert_eq!(sums[&(Bucket::Day, at(0), "EUR".into())], (2, i64::MAX));
        let sums = bucketed(&[huge(i64::MIN + 1), huge(-5)]);
        assert_eq!(sums[&(Bucket::Day, at(0), "EUR".into())], (2, i64::MIN));
        // Taking back a total of i64::MIN cannot overflow either.
        let mut confirmed = row(OrderStatus::Confirmed, 3);
        confirmed.total_minor = Some(i64::MIN);
        let cancel = OrderEvent::OrderCancelled { reason: "r".into() };
        let taken_back = delta(Some(&confirmed), &event_meta(4), &cancel).unwrap();
        assert_eq!(taken_back.revenue_minor, i64::MAX);
    }

    #[test]
    fn deltas_land_in_their_minute_hour_and_day() {
        let d = SaleDelta {
            at: at(3725),
            currency: "EUR".into(),
            orders: 1,
            revenue_minor: 100,
        };
        let sums = bucketed(&[d.clone(), d]);
        assert_eq!(sums.len(), 3);
        assert_eq!(sums[&(Bucket::Minute, at(3720), "EUR".into())], (2, 200));
        assert_eq!(sums[&(Bucket::Hour, at(3600), "EUR".into())], (2, 200));
        assert_eq!(sums[&(Bucket::Day, at(0), "EUR".into())], (2, 200));
    }
}
