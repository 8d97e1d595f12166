//! `POST /shipments/{order_id}/dispatch` and `POST /shipments/{order_id}/deliver`
//! (carriers and operators). The shipment aggregate is keyed by order id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use events::command::DomainCommand;
use events::domain::ShipmentCommand;

use super::AppState;
use super::dispatch::{self, Outgoing};
use super::error::ApiError;
use super::extract::{ApiPath, Caller, CarrierOrAdmin, IdempotencyKey, IfMatch, Traceparent};
use super::validate::path_order_id;
use crate::bus::CommandBus;
use crate::openapi::{CommandFailed, InvalidRequest, Unauthorized};

/// The parcel left the warehouse. Only once the saga has captured the
/// payment and released the shipment: before that, 409 `shipment_not_released`.
#[utoipa::path(
    post,
    path = "/shipments/{order_id}/dispatch",
    tag = "shipments",
    params(
        ("order_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
        ("If-Match" = Option<String>, Header, pattern = "^[!-~]+$", description = "Expected shipment version, e.g. 3 or \"3\""),
    ),
    responses(
        (status = 200, description = "Dispatched; events committed", body = dispatch::CommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn dispatch<B: CommandBus>(
    state: State<AppState<B>>,
    caller: Caller<CarrierOrAdmin>,
    key: Option<IdempotencyKey>,
    if_match: IfMatch,
    trace: Traceparent,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    send(
        state,
        caller,
        key,
        if_match,
        trace,
        &order_id,
        ShipmentCommand::Dispatch,
    )
    .await
}

/// The parcel reached the customer.
#[utoipa::path(
    post,
    path = "/shipments/{order_id}/deliver",
    tag = "shipments",
    params(
        ("order_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
        ("If-Match" = Option<String>, Header, pattern = "^[!-~]+$", description = "Expected shipment version, e.g. 3 or \"3\""),
    ),
    responses(
        (status = 200, description = "Delivered; events committed", body = dispatch::CommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn deliver<B: CommandBus>(
    state: State<AppState<B>>,
    caller: Caller<CarrierOrAdmin>,
    key: Option<IdempotencyKey>,
    if_match: IfMatch,
    trace: Traceparent,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    send(
        state,
        caller,
        key,
        if_match,
        trace,
        &order_id,
        ShipmentCommand::Deliver,
    )
    .await
}

async fn send<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<CarrierOrAdmin>,
    key: Option<IdempotencyKey>,
    if_match: IfMatch,
    trace: Traceparent,
    order_id: &str,
    command: ShipmentCommand,
) -> Result<Response, ApiError> {
    let order_id = path_order_id(order_id)?;
    let command = DomainCommand::Shipment(command);
    let out = Outgoing::new(
        command,
        order_id.to_string(),
        &caller.principal,
        key.as_ref(),
        if_match.0,
    );
    let sent = dispatch::send(&state, caller.principal, trace, out).await?;
    Ok(dispatch::respond(StatusCode::OK, sent))
}
