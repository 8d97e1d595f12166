//! `POST /sagas/{order_id}/retry` and `POST /sagas/{order_id}/resolve`
//! (operators): decisions about a saga parked in `needs_attention`. They
//! travel on `sagas.commands`, keyed by order id, to the saga worker (never
//! to the command processors), which answers on `sagas.replies` like any
//! processor; the answer maps as every other command's does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use events::command::DomainCommand;
use events::domain::SagaCommand;
use events::domain::text::MAX_REASON_CHARS;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::dispatch::{self, Outgoing, Sent};
use super::error::ApiError;
use super::extract::{AdminOnly, ApiJson, ApiPath, Caller, IdempotencyKey, Traceparent};
use super::validate::{Violations, path_order_id};
use crate::bus::CommandBus;
use crate::openapi::{CommandFailed, InvalidRequest, Unauthorized};

/// How the operator settled the saga.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveSagaRequest {
    #[schema(example = "refunded by hand in the provider's dashboard")]
    pub note: String,
}

/// The saga worker accepted the operator's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct SagaCommandAccepted {
    pub order_id: Uuid,
    pub command_id: Uuid,
    /// The saga's version (its stream's sequence) after the decision.
    pub version: u64,
    /// Pass as `X-Consistency-Token` to the query API's `GET /sagas/{order_id}`.
    pub consistency_token: String,
    /// The saga on the query API (also the `Location`).
    pub saga_url: String,
}

/// Tries the parked step again with a fresh retry budget.
#[utoipa::path(
    post,
    path = "/sagas/{order_id}/retry",
    tag = "sagas",
    params(
        ("order_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
    ),
    responses(
        (status = 200, description = "Retrying; the saga's events are committed", body = SagaCommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn retry<B: CommandBus>(
    state: State<AppState<B>>,
    caller: Caller<AdminOnly>,
    key: Option<IdempotencyKey>,
    trace: Traceparent,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    send(state, caller, key, trace, &order_id, SagaCommand::RetrySaga).await
}

/// Marks a parked saga as settled by hand; `note` says how.
#[utoipa::path(
    post,
    path = "/sagas/{order_id}/resolve",
    tag = "sagas",
    request_body = ResolveSagaRequest,
    params(
        ("order_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
    ),
    responses(
        (status = 200, description = "Resolved; the saga's events are committed", body = SagaCommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn resolve<B: CommandBus>(
    state: State<AppState<B>>,
    caller: Caller<AdminOnly>,
    key: Option<IdempotencyKey>,
    trace: Traceparent,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(body): ApiJson<ResolveSagaRequest>,
) -> Result<Response, ApiError> {
    // The path is checked first, as everywhere: a bad id names no saga at all.
    path_order_id(&order_id)?;
    let mut v = Violations::default();
    if !v.text("note", &body.note, MAX_REASON_CHARS) {
        return Err(v.into_error());
    }
    let command = SagaCommand::ResolveSaga { note: body.note };
    send(state, caller, key, trace, &order_id, command).await
}

async fn send<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<AdminOnly>,
    key: Option<IdempotencyKey>,
    trace: Traceparent,
    order_id: &str,
    command: SagaCommand,
) -> Result<Response, ApiError> {
    let order_id = path_order_id(order_id)?;
    let mut out = Outgoing::new(
        DomainCommand::Saga(command),
        order_id.to_string(),
        &caller.principal,
        key.as_ref(),
        None,
    );
    // The saga correlates everything it does by order.
    out.correlation_id = *order_id.as_uuid();
    let accepted = match dispatch::send(&state, caller.principal, trace, out).await? {
        Sent::Accepted(accepted) => accepted,
        Sent::Queued(command_id) => return Ok(dispatch::queued_response(command_id)),
    };
    let saga_url = state.settings.query_url(&format!("/sagas/{order_id}"));
    let body = SagaCommandAccepted {
        order_id: *order_id.as_uuid(),
        command_id: accepted.command_id,
        version: accepted.version,
        consistency_token: accepted.consistency_token(),
        saga_url: saga_url.clone(),
    };
    let response = (StatusCode::OK, Json(body)).into_response();
    Ok(dispatch::with_etag(
        dispatch::with_location(response, &saga_url),
        accepted.version,
    ))
}
