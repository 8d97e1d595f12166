//! `GET /dead-letters?limit=&cursor=`: the records projections could not
//! apply, newest first, for operators (admins only). The cursor is opaque:
//! base64url of the last entry's id.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use events::command::Role;
use projections::read::dead_letters::{self, StoredDeadLetter};
use serde::Serialize;

use super::history::parse_limit;
use super::{AppState, Caller, QueryError};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterEntry {
    pub id: i64,
    pub projection: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The record's value as text (lossy when it is not UTF-8).
    pub payload: Option<String>,
    pub error: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetterEntry>,
    /// Present when more entries follow; pass it back as `cursor`.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/dead-letters",
    tag = "operations",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, body = DeadLetterPage),
        crate::openapi::BadRead,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, QueryError> {
    if !matches!(caller.role, Role::Admin | Role::System) {
        return Err(QueryError::Forbidden("dead letters"));
    }
    let Query(params) = query.map_err(|_| QueryError::InvalidQuery)?;
    let limit = parse_limit(params.get("limit").map(String::as_str))?;
    let before = params.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    // One row more than asked tells whether another page follows.
    let mut rows = dead_letters::page(&state.pool, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = rows
        .last()
        .filter(|_| more)
        .map(|last| URL_SAFE_NO_PAD.encode(last.id.to_string()));
    Ok(Json(DeadLetterPage {
        dead_letters: rows.into_iter().map(DeadLetterEntry::from).collect(),
        next_cursor,
    })
    .into_response())
}

impl From<StoredDeadLetter> for DeadLetterEntry {
    fn from(row: StoredDeadLetter) -> Self {
        DeadLetterEntry {
            id: row.id,
            projection: row.projection,
            topic: row.topic,
            partition: row.partition,
            offset: row.offset,
            key: row.record_key,
            payload: row
                .payload
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
            error: row.error,
            created_at: row.created_at,
        }
    }
}

fn decode_cursor(text: &str) -> Result<i64, QueryError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or(QueryError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_positive_ids_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("42")).unwrap(), 42);
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("-1"),
            &URL_SAFE_NO_PAD.encode("x"),
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(QueryError::InvalidCursor)),
                "{bad:?}"
            );
        }
    }
}
