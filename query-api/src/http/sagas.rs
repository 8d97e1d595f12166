//! `GET /sagas/{order_id}`: where an order's fulfilment saga is (status,
//! current step, step history, deadline, last error, reason). Admins see any
//! saga; a customer only their own order's (any other answers 404, exactly
//! as a missing one does); carriers none (403).
//!
//! `GET /sagas?status=&limit=&cursor=` (admins): sagas newest first, e.g. the
//! ones parked in `needs_attention`. The cursor has the history's format:
//! base64url of the last row's `started_at` in microseconds and order id.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use events::command::{Principal, Role};
use events::domain::{SagaStatus, StepRecord};
use projections::read::orders::HistoryCursor;
use projections::read::saga_timelines::{self, SagaCursor, SagaRow};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::history::{decode_cursor, encode_cursor, parse_limit};
use super::{AppState, Caller, QueryError, TokenHeader, database_response};
use crate::consistency::Resource;

/// One step of a saga's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct SagaStep {
    /// e.g. `reserving_stock`, `capturing_payment`.
    pub step: String,
    pub started_at: DateTime<Utc>,
    pub attempts: u32,
    /// Absent while the step runs; then `succeeded`, `failed: ...` and so on.
    pub outcome: Option<String>,
}

/// `GET /sagas/{order_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SagaDocument {
    pub order_id: Uuid,
    pub customer_id: String,
    /// `running`, `compensating`, `completed`, `compensated`,
    /// `needs_attention` or `resolved_by_operator`.
    pub status: String,
    pub current_step: String,
    /// Attempt of the current step, from 1.
    pub attempt: i64,
    /// When the current step times out.
    pub deadline: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Why the saga is compensating, compensated or parked.
    pub reason: Option<String>,
    /// The operator's note, once resolved by hand.
    pub note: Option<String>,
    /// The saga event the document reflects, e.g. `SagaNeedsAttention`.
    pub last_event: String,
    pub history: Vec<SagaStep>,
    /// The saga stream's sequence the view reflects.
    pub version: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StepRecord> for SagaStep {
    fn from(step: StepRecord) -> Self {
        SagaStep {
            step: step.step,
            started_at: step.started_at,
            attempts: step.attempts,
            outcome: step.outcome,
        }
    }
}

impl From<SagaRow> for SagaDocument {
    fn from(row: SagaRow) -> Self {
        let history = row.steps().cloned().map(SagaStep::from).collect();
        SagaDocument {
            order_id: row.order_id,
            customer_id: row.customer_id,
            status: row.status,
            current_step: row.current_step,
            attempt: row.attempt,
            deadline: row.deadline_at,
            last_error: row.last_error,
            reason: row.reason,
            note: row.note,
            last_event: row.last_event,
            history,
            version: row.version,
            started_at: row.started_at,
            updated_at: row.updated_at,
        }
    }
}

/// True when `caller` may see the saga of an order of `customer_id`.
fn may_read(caller: &Principal, customer_id: &str) -> bool {
    match caller.role {
        Role::Admin | Role::System => true,
        Role::Customer => caller.subject == customer_id,
        Role::Carrier => false,
    }
}

#[utoipa::path(
    get,
    path = "/sagas/{order_id}",
    tag = "sagas",
    params(("order_id" = String, Path), ("X-Consistency-Token" = Option<String>, Header, pattern = "^[!-~]+$")),
    responses(
        (status = 200, body = SagaDocument),
        crate::openapi::BadRead,
    ),
    security(("bearer" = []))
)]
pub async fn saga(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_id): Path<String>,
    header: TokenHeader,
) -> Result<Response, QueryError> {
    if caller.role == Role::Carrier {
        return Err(QueryError::Forbidden("sagas"));
    }
    let id = Uuid::parse_str(&order_id).map_err(|_| QueryError::BadId(order_id))?;
    let token = state.token(&header, Resource::Order(id))?;
    if token.is_some() {
        // Authorize before waiting: a saga the view already holds is
        // someone else's at once, without a wait.
        let found = saga_timelines::find(&state.pool, id).await?;
        if found.is_some_and(|row| !may_read(&caller, &row.customer_id)) {
            return Err(QueryError::NotFound("saga"));
        }
    }
    state.wait_for(token.as_ref()).await?;
    let row = saga_timelines::find(&state.pool, id)
        .await?
        .filter(|row| may_read(&caller, &row.customer_id))
        .ok_or(QueryError::NotFound("saga"))?;
    Ok(database_response(SagaDocument::from(row)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SagaPage {
    pub sagas: Vec<SagaDocument>,
    /// Present when more sagas follow; pass it back as `cursor`.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/sagas",
    tag = "sagas",
    params(
        ("status" = Option<String>, Query, description = "e.g. needs_attention; all sagas when absent"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("X-Consistency-Token" = Option<String>, Header, pattern = "^[!-~]+$"),
    ),
    responses(
        (status = 200, body = SagaPage),
        crate::openapi::BadRead,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    header: TokenHeader,
) -> Result<Response, QueryError> {
    if !matches!(caller.role, Role::Admin | Role::System) {
        return Err(QueryError::Forbidden("saga lists"));
    }
    let Query(params) = query.map_err(|_| QueryError::InvalidQuery)?;
    let status = params.get("status").map(|s| parse_status(s)).transpose()?;
    let limit = parse_limit(params.get("limit").map(String::as_str))?;
    let cursor = params.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    let cursor = cursor.map(|c| SagaCursor {
        started_at: c.placed_at,
        order_id: c.order_id,
    });
    // Operators only (checked above), before any wait.
    state.read_your_writes(&header, Resource::Any).await?;
    // One row more than asked tells whether another page follows.
    let mut rows = saga_timelines::page(&state.pool, status, cursor, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = rows.last().filter(|_| more).map(|last| {
        encode_cursor(HistoryCursor {
            placed_at: last.started_at,
            order_id: last.order_id,
        })
    });
    let sagas = rows.into_iter().map(SagaDocument::from).collect();
    Ok(Json(SagaPage { sagas, next_cursor }).into_response())
}

/// A saga status by its name (`needs_attention`).
fn parse_status(text: &str) -> Result<&'static str, QueryError> {
    serde_json::from_value::<SagaStatus>(serde_json::Value::String(text.to_owned()))
        .map(|status| status.as_str())
        .map_err(|_| QueryError::InvalidStatus(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_parsed_by_name() {
        assert_eq!(parse_status("needs_attention").unwrap(), "needs_attention");
        assert_eq!(parse_status("running").unwrap(), "running");
        for bad in ["", "NeedsAttention", "parked", "needs attention"] {
            assert!(
                matches!(parse_status(bad), Err(QueryError::InvalidStatus(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn carriers_and_other_customers_may_not_read_a_saga() {
        let who = |role, subject: &str| Principal {
            subject: subject.into(),
            role,
        };
        assert!(may_read(&who(Role::Admin, "ops"), "alice"));
        assert!(may_read(&who(Role::Customer, "alice"), "alice"));
        assert!(!may_read(&who(Role::Customer, "bob"), "alice"));
        assert!(!may_read(&who(Role::Carrier, "dhl"), "alice"));
    }
}
