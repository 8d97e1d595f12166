//! `POST /orders` (customers, with a required Idempotency-Key) and
//! `POST /orders/{order_id}/cancel` (the order's customer, or an operator).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use events::command::DomainCommand;
use events::domain::order::{MAX_LINE_QUANTITY, MAX_ORDER_LINES};
use events::domain::text::{MAX_REASON_CHARS, MAX_REFERENCE_CHARS};
use events::domain::{Address, CustomerId, OrderCommand, OrderLine};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::dispatch::{self, Outgoing, Sent, derived_id};
use super::error::ApiError;
use super::extract::{
    ApiJson, ApiPath, Caller, CustomerOnly, CustomerOrAdmin, IdempotencyKey, IfMatch, Traceparent,
};
use super::validate::{Violations, path_order_id};
use crate::auth::AuthError;
use crate::bus::CommandBus;
use crate::openapi::{CommandFailed, InvalidRequest, Unauthorized};

/// An order as the customer places it. Lines carry no prices and the body no
/// status: prices come from the stock reservations, and unknown fields are refused.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(example = "USD")]
    pub currency: String,
    pub lines: Vec<OrderLineRequest>,
    pub shipping_address: AddressRequest,
    pub payment: PaymentRequest,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    #[schema(example = "SKU-1")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    pub name: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    #[schema(example = "DE")]
    pub country: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The payment provider's token; the sandbox knows `tok_ok`, `tok_decline`, ...
    #[schema(example = "tok_ok")]
    pub token: String,
}

impl PlaceOrderRequest {
    fn validate(&self, customer_id: CustomerId) -> Result<OrderCommand, ApiError> {
        let mut v = Violations::default();
        let currency = v.currency("currency", &self.currency);
        let lines = validate_lines(&mut v, &self.lines);
        let shipping_address = self.shipping_address.validate(&mut v);
        v.text("payment.token", &self.payment.token, MAX_REFERENCE_CHARS);
        match (currency, lines) {
            (Some(currency), Some(lines)) if v.is_empty() => Ok(OrderCommand::PlaceOrder {
                customer_id,
                currency,
                lines,
                shipping_address,
                payment_token: self.payment.token.clone(),
            }),
            _ => Err(v.into_error()),
        }
    }
}

fn validate_lines(v: &mut Violations, lines: &[OrderLineRequest]) -> Option<Vec<OrderLine>> {
    if lines.is_empty() || lines.len() > MAX_ORDER_LINES {
        v.add("lines", format!("expected 1 to {MAX_ORDER_LINES} lines"));
        return None;
    }
    let mut seen = HashMap::new();
    let mut valid = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let sku = v.sku(&format!("lines[{i}].sku"), &line.sku);
        let quantity = v.count(
            &format!("lines[{i}].quantity"),
            line.quantity,
            1,
            MAX_LINE_QUANTITY,
        );
        if let Some(first) = seen.get(line.sku.as_str()) {
            v.add(
                format!("lines[{i}].sku"),
                format!("duplicate of lines[{first}].sku"),
            );
        } else {
            seen.insert(line.sku.as_str(), i);
        }
        if let (Some(sku), Some(quantity)) = (sku, quantity) {
            valid.push(OrderLine { sku, quantity });
        }
    }
    (valid.len() == lines.len()).then_some(valid)
}

impl AddressRequest {
    fn validate(&self, v: &mut Violations) -> Address {
        v.text("shipping_address.name", &self.name, Address::MAX_NAME_CHARS);
        v.text(
            "shipping_address.line1",
            &self.line1,
            Address::MAX_LINE1_CHARS,
        );
        v.text("shipping_address.city", &self.city, Address::MAX_CITY_CHARS);
        v.text(
            "shipping_address.postal_code",
            &self.postal_code,
            Address::MAX_POSTAL_CODE_CHARS,
        );
        // The same rule as `Address::validate`, which stops at the first bad field.
        let country = &self.country;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            v.add(
                "shipping_address.country",
                "expected an ISO 3166-1 alpha-2 code such as DE",
            );
        }
        Address {
            name: self.name.clone(),
            line1: self.line1.clone(),
            city: self.city.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
        }
    }
}

/// The answer to a placed order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    /// Always `pending`: the saga confirms or rejects the order later.
    pub status: String,
    pub version: u64,
    /// Pass as `X-Consistency-Token` to the query API to read the order.
    pub consistency_token: String,
    pub command_id: Uuid,
}

/// Places an order. The Idempotency-Key (with the caller) derives the order
/// id: a retry answers the same, the same key with another body 422.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    request_body = PlaceOrderRequest,
    params(
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "Required; retries with the same key and body get the same answer"),
    ),
    responses(
        (status = 201, description = "Placed; events committed", body = OrderPlaced,
            headers(("Location" = String, description = "The order on the query API"))),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn place_order<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<CustomerOnly>,
    key: IdempotencyKey,
    trace: Traceparent,
    ApiJson(body): ApiJson<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let customer_id = CustomerId::new(caller.principal.subject.clone())
        .map_err(|_| ApiError::Unauthenticated(AuthError::InvalidClaim("sub")))?;
    let command = body.validate(customer_id)?;
    let order_id = derived_id("order-id", &caller.principal, &key);
    let command_id = derived_id("command:orders:PlaceOrder", &caller.principal, &key);
    let out = Outgoing {
        command: DomainCommand::Order(command),
        aggregate_id: order_id.to_string(),
        command_id,
        correlation_id: order_id,
        expected_version: None,
    };
    let accepted = match dispatch::send(&state, caller.principal, trace, out).await? {
        Sent::Accepted(accepted) => accepted,
        Sent::Queued(command_id) => {
            return Ok(dispatch::queued_order_response(command_id, Some(order_id)));
        }
    };
    let body = OrderPlaced {
        order_id,
        status: "pending".to_owned(),
        version: accepted.version,
        consistency_token: accepted.consistency_token(),
        command_id,
    };
    let location = state.settings.query_url(&format!("/orders/{order_id}"));
    let response = (StatusCode::CREATED, Json(body)).into_response();
    Ok(dispatch::with_etag(
        dispatch::with_location(response, &location),
        accepted.version,
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrderRequest {
    #[schema(example = "changed my mind")]
    pub reason: String,
}

/// Asks to cancel an order; the saga compensates. A customer reaches only
/// their own orders (another's answers 404).
#[utoipa::path(
    post,
    path = "/orders/{order_id}/cancel",
    tag = "orders",
    request_body = CancelOrderRequest,
    params(
        ("order_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
        ("If-Match" = Option<String>, Header, pattern = "^[!-~]+$", description = "Expected order version, e.g. 3 or \"3\"; 409 when stale"),
    ),
    responses(
        (status = 200, description = "Cancellation requested; events committed", body = dispatch::CommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn cancel_order<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<CustomerOrAdmin>,
    key: Option<IdempotencyKey>,
    if_match: IfMatch,
    trace: Traceparent,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(body): ApiJson<CancelOrderRequest>,
) -> Result<Response, ApiError> {
    let order_id = path_order_id(&order_id)?;
    let mut v = Violations::default();
    if !v.text("reason", &body.reason, MAX_REASON_CHARS) {
        return Err(v.into_error());
    }
    let command = DomainCommand::Order(OrderCommand::RequestCancellation {
        reason: body.reason,
    });
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
