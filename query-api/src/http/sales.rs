//! `GET /sales?from=&to=&bucket=minute|hour|day&currency=`: confirmed orders
//! and revenue per bucket (admins only). `from` and `to` are RFC 3339 times;
//! the span is capped per bucket size so one answer stays small.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use events::command::Role;
use events::domain::Currency;
use projections::read::documents::Price;
use projections::read::sales::{self, Bucket, SalesRow};
use serde::Serialize;

use super::{AppState, Caller, QueryError};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SalesBucket {
    pub starts_at: DateTime<Utc>,
    pub currency: String,
    pub orders: i64,
    pub revenue: Price,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SalesReport {
    pub bucket: &'static str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: Option<String>,
    pub buckets: Vec<SalesBucket>,
}

/// A checked `/sales` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesQuery {
    pub bucket: Bucket,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: Option<String>,
}

#[utoipa::path(
    get,
    path = "/sales",
    tag = "sales",
    params(
        ("from" = String, Query, description = "RFC 3339 time"),
        ("to" = String, Query, description = "RFC 3339 time, not before from"),
        ("bucket" = Option<String>, Query, description = "minute (span up to 1 day), hour (31 days, the default) or day (366 days)"),
        ("currency" = Option<String>, Query, description = "ISO 4217 code"),
    ),
    responses(
        (status = 200, body = SalesReport),
        crate::openapi::BadRead,
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, QueryError> {
    if !matches!(caller.role, Role::Admin | Role::System) {
        return Err(QueryError::Forbidden("sales"));
    }
    let Query(params) = query.map_err(|_| QueryError::InvalidQuery)?;
    let q = parse(&params)?;
    let rows = sales::find(&state.pool, q.bucket, q.from, q.to, q.currency.as_deref()).await?;
    Ok(Json(SalesReport {
        bucket: q.bucket.as_str(),
        from: q.from,
        to: q.to,
        currency: q.currency,
        buckets: rows.into_iter().map(SalesBucket::from).collect(),
    })
    .into_response())
}

impl From<SalesRow> for SalesBucket {
    fn from(row: SalesRow) -> Self {
        SalesBucket {
            starts_at: row.starts_at,
            revenue: Price {
                minor: row.revenue_minor,
                currency: row.currency.clone(),
            },
            currency: row.currency,
            orders: row.orders,
        }
    }
}

/// The longest span one answer covers, per bucket size.
fn max_span(bucket: Bucket) -> TimeDelta {
    match bucket {
        Bucket::Minute => TimeDelta::days(1),
        Bucket::Hour => TimeDelta::days(31),
        Bucket::Day => TimeDelta::days(366),
    }
}

pub fn parse(params: &HashMap<String, String>) -> Result<SalesQuery, QueryError> {
    let bucket = match params.get("bucket") {
        None => Bucket::Hour,
        Some(text) => Bucket::parse(text).ok_or_else(|| QueryError::InvalidBucket(text.clone()))?,
    };
    let time = |name: &str| {
        let text = params
            .get(name)
            .ok_or_else(|| QueryError::InvalidRange(format!("{name} is required")))?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| QueryError::InvalidRange(format!("{name} is not an RFC 3339 time")))
    };
    let (from, to) = (time("from")?, time("to")?);
    if from > to {
        return Err(QueryError::InvalidRange("from is after to".into()));
    }
    if to - from > max_span(bucket) {
        return Err(QueryError::InvalidRange(format!(
            "the span is too long for {} buckets",
            bucket.as_str()
        )));
    }
    let currency = params
        .get("currency")
        .map(|c| {
            Currency::new(c)
                .map(|c| c.code().to_owned())
                .map_err(|_| QueryError::InvalidCurrency(c.clone()))
        })
        .transpose()?;
    Ok(SalesQuery {
        bucket,
        from,
        to,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_good_query_parses() {
        let q = parse(&params(&[
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-01-02T00:00:00+00:00"),
            ("bucket", "minute"),
            ("currency", "EUR"),
        ]))
        .unwrap();
        assert_eq!(
            (q.bucket, q.currency.as_deref()),
            (Bucket::Minute, Some("EUR"))
        );
    }

    #[test]
    fn bad_ranges_buckets_and_currencies_are_refused() {
        let from = ("from", "2026-01-02T00:00:00Z");
        let to = ("to", "2026-01-01T00:00:00Z");
        let range =
            |p: &[(&str, &str)]| matches!(parse(&params(p)), Err(QueryError::InvalidRange(_)));
        assert!(range(&[from, to]), "from after to");
        assert!(range(&[("from", "yesterday"), to]), "unparseable");
        assert!(range(&[to]), "from missing");
        let long = [
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-01-03T00:00:00Z"),
        ];
        assert!(
            range(&[long[0], long[1], ("bucket", "minute")]),
            "too long for minutes"
        );
        assert!(parse(&params(&[long[0], long[1], ("bucket", "hour")])).is_ok());
        assert!(matches!(
            parse(&params(&[long[0], long[1], ("bucket", "week")])),
            Err(QueryError::InvalidBucket(_))
        ));
        assert!(matches!(
            parse(&params(&[long[0], long[1], ("currency", "euro")])),
            Err(QueryError::InvalidCurrency(_))
        ));
    }
}
