//! `GET /customers/{customer_id}/orders?limit=&cursor=`: a customer's orders,
//! newest first, in pages. The cursor is opaque to clients: base64url
//! (no padding) of `<placed_at in microseconds>:<order_id>` of the last row
//! of the previous page. A customer reads only their own history (another's
//! answers 404); admins read any; carriers none (403).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use events::command::Role;
use projections::read::orders::{self, HistoryCursor, OrderRow};
use serde::Serialize;
use uuid::Uuid;

use super::{AppState, Caller, QueryError, TokenHeader};
use crate::consistency::Resource;
use projections::read::documents::Price;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub order_id: Uuid,
    pub status: String,
    pub currency: String,
    pub total: Option<Price>,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub orders: Vec<HistoryEntry>,
    /// Present when more orders follow; pass it back as `cursor`.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/customers/{customer_id}/orders",
    tag = "orders",
    params(
        ("customer_id" = String, Path),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("X-Consistency-Token" = Option<String>, Header, pattern = "^[!-~]+$"),
    ),
    responses(
        (status = 200, body = HistoryPage),
        crate::openapi::BadRead,
    ),
    security(("bearer" = []))
)]
pub async fn customer_orders(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(customer_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    header: TokenHeader,
) -> Result<Response, QueryError> {
    // No customer id holds a control character (PostgreSQL refuses a NUL
    // in text outright): such a path names nobody.
    if events::domain::CustomerId::new(customer_id.as_str()).is_err() {
        return Err(QueryError::BadId("customer_id".into()));
    }
    match caller.role {
        Role::Admin | Role::System => {}
        Role::Customer if caller.subject == customer_id => {}
        Role::Customer => return Err(QueryError::NotFound("customer")),
        Role::Carrier => return Err(QueryError::Forbidden("order histories")),
    }
    let Query(params) = query.map_err(|_| QueryError::InvalidQuery)?;
    let limit = parse_limit(params.get("limit").map(String::as_str))?;
    let cursor = params.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    // Authorized above, before any wait.
    state.read_your_writes(&header, Resource::History).await?;
    // One row more than asked tells whether another page follows.
    let mut rows = orders::history(&state.pool, &customer_id, cursor, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = rows.last().filter(|_| more).map(|last| {
        encode_cursor(HistoryCursor {
            placed_at: last.placed_at,
            order_id: last.order_id,
        })
    });
    let orders = rows.into_iter().map(HistoryEntry::from).collect();
    Ok(Json(HistoryPage {
        orders,
        next_cursor,
    })
    .into_response())
}

impl From<OrderRow> for HistoryEntry {
    fn from(row: OrderRow) -> Self {
        HistoryEntry {
            total: row.total_minor.map(|minor| Price {
                minor,
                currency: row.currency.clone(),
            }),
            order_id: row.order_id,
            status: row.status,
            currency: row.currency,
            placed_at: row.placed_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

pub(super) fn parse_limit(text: Option<&str>) -> Result<i64, QueryError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    text.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| QueryError::InvalidLimit(text.to_owned()))
}

pub fn encode_cursor(cursor: HistoryCursor) -> String {
    let text = format!(
        "{}:{}",
        cursor.placed_at.timestamp_micros(),
        cursor.order_id
    );
    URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_cursor(text: &str) -> Result<HistoryCursor, QueryError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| QueryError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| QueryError::InvalidCursor)?;
    let (micros, order_id) = text.split_once(':').ok_or(QueryError::InvalidCursor)?;
    let placed_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or(QueryError::InvalidCursor)?;
    let order_id = Uuid::parse_str(order_id).map_err(|_| QueryError::InvalidCursor)?;
    Ok(HistoryCursor {
        placed_at,
        order_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = HistoryCursor {
            placed_at: DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap(),
            order_id: Uuid::from_u128(42),
        };
        assert_eq!(decode_cursor(&encode_cursor(cursor)).unwrap(), cursor);
        for bad in [
            "",
            "!!",
            "bm9wZQ",
            &URL_SAFE_NO_PAD.encode("1:not-a-uuid"),
            &URL_SAFE_NO_PAD.encode("x:1"),
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(QueryError::InvalidCursor)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_default_and_are_capped() {
        assert_eq!(parse_limit(None).unwrap(), 20);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(
                matches!(parse_limit(Some(bad)), Err(QueryError::InvalidLimit(_))),
                "{bad:?}"
            );
        }
    }
}
