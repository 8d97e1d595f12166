//! `POST /catalog/items`, `POST /catalog/items/{sku}/restock` and
//! `PUT /catalog/items/{sku}/price` (operators only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use events::command::DomainCommand;
use events::domain::catalog::MAX_ITEM_NAME_CHARS;
use events::domain::{CatalogCommand, Money, Sku};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::dispatch::{self, Outgoing, Sent};
use super::error::ApiError;
use super::extract::{AdminOnly, ApiJson, ApiPath, Caller, IdempotencyKey, IfMatch, Traceparent};
use super::validate::{Violations, path_sku};
use crate::bus::CommandBus;
use crate::openapi::{CommandFailed, InvalidRequest, Unauthorized};

/// A new catalog item. Prices are integer minor units of `currency`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItemRequest {
    #[schema(example = "SKU-1")]
    pub sku: String,
    pub name: String,
    /// Minor units: 1999 is 19.99 USD, 1500 is 1500 KRW.
    #[schema(minimum = 1, maximum = 100_000_000_000_i64, example = 1999)]
    pub unit_price: i64,
    #[schema(example = "USD")]
    pub currency: String,
    /// Units on hand to start with.
    #[schema(minimum = 0)]
    pub stock: i64,
}

impl CreateItemRequest {
    fn validate(&self) -> Result<(Sku, CatalogCommand), ApiError> {
        let mut v = Violations::default();
        let sku = v.sku("sku", &self.sku);
        v.text("name", &self.name, MAX_ITEM_NAME_CHARS);
        let price = v.price("unit_price", self.unit_price);
        let currency = v.currency("currency", &self.currency);
        let stock = v.count("stock", self.stock, 0, u32::MAX);
        match (sku, price, currency, stock) {
            (Some(sku), Some(price), Some(currency), Some(initial_stock)) if v.is_empty() => {
                let command = CatalogCommand::CreateItem {
                    name: self.name.clone(),
                    unit_price: Money::new(price, currency),
                    initial_stock,
                };
                Ok((sku, command))
            }
            _ => Err(v.into_error()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(minimum = 1)]
    pub quantity: i64,
}

/// A new unit price. `currency` is required: the API does not know the
/// item's currency, and a price change can never change it (the item
/// answers 422 `item_currency_mismatch`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePriceRequest {
    #[schema(minimum = 1, maximum = 100_000_000_000_i64, example = 2499)]
    pub unit_price: i64,
    /// Required (the schema says so too); decoded as optional only so that
    /// its absence is reported with the other invalid fields.
    #[schema(required = true, example = "USD")]
    pub currency: Option<String>,
}

impl ChangePriceRequest {
    fn validate(&self) -> Result<CatalogCommand, ApiError> {
        let mut v = Violations::default();
        let price = v.price("unit_price", self.unit_price);
        let currency = match &self.currency {
            Some(code) => v.currency("currency", code),
            None => {
                v.add(
                    "currency",
                    "required: the item's currency (a price change cannot change it)",
                );
                None
            }
        };
        match (price, currency) {
            (Some(price), Some(currency)) if v.is_empty() => Ok(CatalogCommand::ChangePrice {
                unit_price: Money::new(price, currency),
            }),
            _ => Err(v.into_error()),
        }
    }
}

/// Creates a catalog item (aggregate id = SKU).
#[utoipa::path(
    post,
    path = "/catalog/items",
    tag = "catalog",
    request_body = CreateItemRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
    ),
    responses(
        (status = 201, description = "Created; events committed", body = dispatch::CommandAccepted,
            headers(("Location" = String, description = "The item on the query API"))),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_item<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<AdminOnly>,
    key: Option<IdempotencyKey>,
    trace: Traceparent,
    ApiJson(body): ApiJson<CreateItemRequest>,
) -> Result<Response, ApiError> {
    let (sku, command) = body.validate()?;
    let location = state.settings.query_url(&format!("/catalog/items/{sku}"));
    let out = Outgoing::new(
        DomainCommand::CatalogItem(command),
        sku.to_string(),
        &caller.principal,
        key.as_ref(),
        None,
    );
    Ok(
        match dispatch::send(&state, caller.principal, trace, out).await? {
            Sent::Accepted(accepted) => dispatch::with_location(
                dispatch::accepted_response(StatusCode::CREATED, &accepted),
                &location,
            ),
            Sent::Queued(command_id) => dispatch::queued_response(command_id),
        },
    )
}

/// Adds units to an item's stock.
#[utoipa::path(
    post,
    path = "/catalog/items/{sku}/restock",
    tag = "catalog",
    request_body = RestockRequest,
    params(
        ("sku" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
        ("If-Match" = Option<String>, Header, pattern = "^[!-~]+$", description = "Expected item version, e.g. 3 or \"3\""),
    ),
    responses(
        (status = 200, description = "Restocked; events committed", body = dispatch::CommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn restock<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<AdminOnly>,
    key: Option<IdempotencyKey>,
    if_match: IfMatch,
    trace: Traceparent,
    ApiPath(sku): ApiPath<String>,
    ApiJson(body): ApiJson<RestockRequest>,
) -> Result<Response, ApiError> {
    let sku = path_sku(&sku)?;
    let mut v = Violations::default();
    let Some(quantity) = v.count("quantity", body.quantity, 1, u32::MAX) else {
        return Err(v.into_error());
    };
    let command = DomainCommand::CatalogItem(CatalogCommand::Restock { quantity });
    let out = Outgoing::new(
        command,
        sku.to_string(),
        &caller.principal,
        key.as_ref(),
        if_match.0,
    );
    let sent = dispatch::send(&state, caller.principal, trace, out).await?;
    Ok(dispatch::respond(StatusCode::OK, sent))
}

/// Changes an item's unit price (orders in flight keep their reserved price).
#[utoipa::path(
    put,
    path = "/catalog/items/{sku}/price",
    tag = "catalog",
    request_body = ChangePriceRequest,
    params(
        ("sku" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request safe to retry"),
        ("If-Match" = Option<String>, Header, pattern = "^[!-~]+$", description = "Expected item version, e.g. 3 or \"3\""),
    ),
    responses(
        (status = 200, description = "Price changed; events committed", body = dispatch::CommandAccepted),
        (status = 202, description = "Queued; see the status URL", body = dispatch::CommandQueued),
        Unauthorized, InvalidRequest, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn change_price<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<AdminOnly>,
    key: Option<IdempotencyKey>,
    if_match: IfMatch,
    trace: Traceparent,
    ApiPath(sku): ApiPath<String>,
    ApiJson(body): ApiJson<ChangePriceRequest>,
) -> Result<Response, ApiError> {
    let sku = path_sku(&sku)?;
    let command = DomainCommand::CatalogItem(body.validate()?);
    let out = Outgoing::new(
        command,
        sku.to_string(),
        &caller.principal,
        key.as_ref(),
        if_match.0,
    );
    let sent = dispatch::send(&state, caller.principal, trace, out).await?;
    Ok(dispatch::respond(StatusCode::OK, sent))
}
